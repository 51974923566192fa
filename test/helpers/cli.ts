import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(ROOT, 'bin/graywave.js');
export const DIST_MAIN = join(ROOT, 'dist/cli/main.js');

/**
 * Tests that spawn the CLI run it from dist/. Call once per file: fails the file clearly when dist is missing
 * (the suite's command is `tsc && vitest run`; alone, run `npm run build` first).
 */
export function requireBuiltCli(): void {
  beforeAll(() => {
    if (!existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: run \`npm run build\` before these tests (they spawn the built CLI)`);
  });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Runs `graywave ARGS` to completion (never through a shell). */
export function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const child = startCli(args, opts);
  return finished(child, opts.timeoutMs ?? 30_000);
}

/** Starts `graywave ARGS`; the child's pid is node's own (so kill -9 hits graywave, not a wrapper). */
export function startCli(args: string[], opts: CliOptions = {}): ChildProcess & { out: { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { out: { stdout: string; stderr: string } };
  child.out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (child.out.stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (child.out.stderr += c));
  return child;
}

export function finished(child: ReturnType<typeof startCli>, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`graywave did not finish within ${timeoutMs}ms; stdout:\n${child.out.stdout}\nstderr:\n${child.out.stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout: child.out.stdout, stderr: child.out.stderr });
    });
  });
}

/** JSON lines of stdout (non-JSON lines are skipped). */
export function events(stdout: string): Record<string, any>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

/** A fresh temp directory per test, removed after the file. */
export function tempDirs(prefix = 'gw-'): () => string {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    made.push(d);
    return d;
  };
}

export function writePlaybook(dir: string, text: string, name = 'playbook.yaml'): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A `hosts:` block of N local hosts named h-01…; `extra` adds YAML per host (e.g. vars). */
export function hostsYaml(n: number, extra = ''): string {
  return Array.from({ length: n }, (_, i) => `  - { name: h-${String(i + 1).padStart(2, '0')}, address: 10.0.0.${i + 1}${extra ? `, ${extra}` : ''} }`).join(
    '\n',
  );
}

/** Whether any stack-trace line leaked into a CLI's output. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+\(.+:\d+:\d+\)$/m.test(text) || /^\s+at (file|node):/m.test(text) || /Error: .*\n\s+at /.test(text);
}

/**
 * Rebuilds dist/ when any of these sources (paths under src/) is newer than its output — for running one
 * integration file alone after an edit; under `npm test` dist is fresh and this does nothing.
 */
export function ensureBuilt(files: string[]): void {
  const stale = files.some((f) => {
    const out = join(ROOT, 'dist', f.replace(/\.ts$/, '.js'));
    return !existsSync(out) || statSync(out).mtimeMs < statSync(join(ROOT, 'src', f)).mtimeMs;
  });
  if (!stale) return;
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', ROOT], { stdio: 'ignore' });
  } catch {
    /* type errors elsewhere still emit JavaScript */
  }
}
