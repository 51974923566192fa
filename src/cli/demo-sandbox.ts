import { setMaxListeners } from 'node:events';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { runRelease } from '../app/run.js';
import type { EngineEvent } from '../engine/events.js';
import { EXIT, GraywaveError } from '../errors.js';
import { down, isUp, SANDBOX_DIR_ENV, up, type SandboxConfig, type UpOptions } from '../sandbox/supervisor.js';
import { interruptSignal } from './signals.js';

/** What `graywave demo` and `graywave demo --train` share: a sandbox's life around one release. */

/** The package root (holds playbooks/ and bin/), from dist/cli or src/cli. */
export function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../..');
}

/** In JSON mode stdout carries only JSON lines: the demo's own messages go to stderr. */
export function sayer(json: boolean): (line: string) => void {
  return (line: string) => void (json ? process.stderr : process.stdout).write(line + '\n');
}

export interface DemoOptions {
  json?: boolean;
  plain?: boolean;
  keep?: boolean;
  stateDir?: string;
}

/**
 * Brings a demo sandbox up next to the playbook (or in $GRAYWAVE_SANDBOX_DIR), so `graywave resume <playbook>`
 * later finds the same sandbox from the playbook's directory (sandboxDir walks up from the cwd of each step) without
 * any environment. Ctrl-C (or SIGTERM) from here on halts the release at the next safe point, as `graywave run` does,
 * and then the demo brings its sandbox down: an interrupted demo leaves no process behind. A second one stops the
 * sandbox at once.
 */
export async function startSandbox(
  file: string,
  say: (line: string) => void,
  upOptions: Omit<UpOptions, 'dir' | 'log'>,
): Promise<{ dir: string; c: SandboxConfig; stop: AbortSignal }> {
  const dir = process.env[SANDBOX_DIR_ENV] ? resolve(process.env[SANDBOX_DIR_ENV]!) : join(dirname(file), '.graywave', 'sandbox');
  process.env[SANDBOX_DIR_ENV] = dir; // the engine's step commands inherit it
  if (isUp(dir)) {
    say(`an earlier demo sandbox is still up in ${dir}: replacing it`);
    await down({ dir });
  }
  const stop = interruptSignal({ what: 'the demo', then: 'then the sandbox goes down', force: () => down({ dir }).then(() => undefined) });
  setMaxListeners(0, stop);
  const c = await up({ ...upOptions, dir, log: say });
  if (stop.aborted) {
    await down({ dir });
    say('sandbox down');
    throw new GraywaveError(`demo ${(stop.reason as Error).message} before the release started`, EXIT.halted);
  }
  return { dir, c, stop };
}

/**
 * Runs the release with the demo's output choice. A fresh demo starts from a clean journal: the previous demo's
 * state is set aside (a finished journal of the same plan would otherwise make this run "already done").
 */
export async function releaseOn(file: string, o: DemoOptions, stop: AbortSignal, onEvent: (e: EngineEvent) => void): Promise<number> {
  const releaseDir = join(
    resolve(o.stateDir ?? join(dirname(file), '.graywave')),
    String((parse(readFileSync(file, 'utf8')) as { name?: unknown }).name ?? 'demo'),
  );
  if (existsSync(releaseDir)) {
    rmSync(`${releaseDir}.previous`, { recursive: true, force: true });
    renameSync(releaseDir, `${releaseDir}.previous`);
  }
  return runRelease({ file, stateDir: o.stateDir, yes: true, output: o.json ? 'json' : o.plain ? 'plain' : 'auto', onEvent, force: true, signal: stop });
}

/** After the summary: the sandbox goes down (done, or interrupted), or stays up with the commands to try on it. */
export async function finishDemo(a: {
  file: string;
  dir: string;
  code: number;
  stop: AbortSignal;
  o: DemoOptions;
  say: (line: string) => void;
}): Promise<void> {
  const { file, dir, code, o, say } = a;
  const interrupted = a.stop.aborted;
  const pbArg = relative(process.cwd(), file) || file;
  const stateArg = o.stateDir ? ` --state-dir ${o.stateDir}` : '';
  if ((code === 0 && !o.keep) || interrupted) {
    await down({ dir });
    say('sandbox down');
  } else {
    say(
      code === 0
        ? `the sandbox stays up (--keep): graywave sandbox status --dir ${relative(process.cwd(), dir) || dir}`
        : 'the sandbox stays up, as a real fleet would, so you can try:',
    );
    if (code !== 0) {
      say(`  graywave resume ${pbArg}${stateArg}      # continue where it stopped`);
      say(`  graywave rollback ${pbArg}${stateArg}    # undo the current wave only (the one that halted)`);
      say(`  graywave rollback ${pbArg} --all${stateArg}    # undo every wave: the whole release`);
      say(`  graywave sandbox status --dir ${relative(process.cwd(), dir) || dir}`);
      say(`  graywave sandbox down --dir ${relative(process.cwd(), dir) || dir}`);
    }
  }
  if (code !== 0)
    throw new GraywaveError(
      `demo ${interrupted ? `${(a.stop.reason as Error).message}; the sandbox is down` : code === 4 ? 'paused' : 'halted'} (exit ${code})`,
      code,
    );
}
