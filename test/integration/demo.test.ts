import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, isOurs } from '../../src/sandbox/supervisor.js';
import { removeDir, tempDir } from './helpers/process.js';
import { ensureBuilt } from '../helpers/cli.js';
import { requireTmux, Terminal } from '../cli/tty/tmux.js';

/** `graywave demo --json` end to end: the bundled playbook on the sandbox, the summary line last. Uses 127.0.1.0/24. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'bin', 'graywave.js');
let dir: string;

beforeAll(() => {
  ensureBuilt([
    'cli/main.ts',
    'cli/demo.ts',
    'cli/demo-steps.ts',
    'cli/sandbox.ts',
    'sandbox/supervisor.ts',
    'sandbox/http.ts',
    'sandbox/host.ts',
    'sandbox/hub.ts',
  ]);
  dir = tempDir('demo');
}, 60_000);
requireTmux();
afterAll(async () => {
  await down({ dir: join(dir, 'sandbox') });
  await down({ dir: join(dir, 'sandbox-int') });
  await down({ dir: join(dir, 'sandbox-fault') });
  await down({ dir: join(dir, 'sandbox-tty') });
  removeDir(dir);
}, 30_000);

describe('graywave demo', () => {
  it('releases 8 hosts in 5 waves under load with 0 failed requests, prints demo.summary last and brings the sandbox down', async () => {
    const { code, lines, stderr } = await new Promise<{ code: number; lines: string[]; stderr: string }>((done) => {
      const child = spawn(process.execPath, [cli, 'demo', '--json', '--state-dir', join(dir, 'state')], {
        cwd: dir,
        env: { ...process.env, GRAYWAVE_SANDBOX_DIR: join(dir, 'sandbox'), FORCE_COLOR: '0' },
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      child.on('close', (c) => done({ code: c ?? -1, lines: out.trim().split('\n'), stderr: err }));
    });
    expect(code, stderr).toBe(0);
    // stdout holds JSON lines only.
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.some((e) => e.event === 'run.done')).toBe(true);
    const summary = events.at(-1)!;
    expect(summary).toMatchObject({ event: 'demo.summary', hosts: 8, waves: 5, failedRequests: 0, green: 8, version: '2.0.0' });
    expect(summary.requests as number).toBeGreaterThan(100);
    expect(existsSync(join(dir, 'sandbox', 'sandbox.json'))).toBe(false);
  }, 120_000);

  it('Ctrl-C halts the release cleanly (exit 1, journal halted, no lock) and brings the sandbox down: no process is left', async () => {
    const sb = join(dir, 'sandbox-int');
    const state = join(dir, 'state-int');
    const pids = new Set<number>();
    const collect = () => {
      try {
        const hub = JSON.parse(readFileSync(join(sb, 'sandbox.json'), 'utf8')) as { hubPid?: number };
        if (hub.hubPid) pids.add(hub.hubPid);
        for (const f of readdirSync(join(sb, 'hosts'))) {
          const h = JSON.parse(readFileSync(join(sb, 'hosts', f), 'utf8')) as { pid?: number };
          if (h.pid) pids.add(h.pid);
        }
      } catch {
        /* not up yet, or a file being replaced */
      }
    };
    const { code, lines, stderr } = await new Promise<{ code: number; lines: string[]; stderr: string }>((done) => {
      const child = spawn(process.execPath, [cli, 'demo', '--json', '--state-dir', state], {
        cwd: dir,
        env: { ...process.env, GRAYWAVE_SANDBOX_DIR: sb, FORCE_COLOR: '0' },
      });
      let out = '';
      let err = '';
      let sent = false;
      const poll = setInterval(collect, 50);
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        if (!sent && /"event":"wave\.start","release":"demo","wave":2/.test(out)) ((sent = true), collect(), child.kill('SIGINT'));
      });
      child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      child.on('close', (c) => (clearInterval(poll), done({ code: c ?? -1, lines: out.trim().split('\n'), stderr: err })));
    });
    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(/demo interrupted \(Ctrl-C\); the sandbox is down/);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ event: 'demo.summary', hosts: 8, failedRequests: 0, exitCode: 1 });
    expect(existsSync(join(sb, 'sandbox.json'))).toBe(false);
    expect(pids.size).toBeGreaterThanOrEqual(9); // the hub and 8 hosts
    for (const pid of pids) expect(isOurs(pid, 'host-main') || isOurs(pid, 'hub-main'), `pid ${pid} still running`).toBe(false);
    const records = readFileSync(join(state, 'demo', 'journal.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; phase?: string; reason?: string });
    expect(records.filter((r) => r.type === 'run').at(-1)).toMatchObject({ phase: 'halted', reason: 'interrupted (Ctrl-C)' });
    expect(existsSync(join(state, 'demo', 'lock'))).toBe(false);
  }, 120_000);

  it('--fault errors:h04:1: the gray-entry check really probes (sandbox probe --version), the release halts (exit 1)', async () => {
    const sb = join(dir, 'sandbox-fault');
    const { code, lines, stderr } = await new Promise<{ code: number; lines: string[]; stderr: string }>((done) => {
      const child = spawn(process.execPath, [cli, 'demo', '--json', '--fault', 'errors:h04:1', '--state-dir', join(dir, 'state-fault')], {
        cwd: dir,
        env: { ...process.env, GRAYWAVE_SANDBOX_DIR: sb, FORCE_COLOR: '0' },
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      child.on('close', (c) => done({ code: c ?? -1, lines: out.trim().split('\n'), stderr: err }));
    });
    expect(code, stderr).toBe(1);
    const events = lines.map((l) => JSON.parse(l) as Record<string, any>);
    // Every gate that passed probed GREEN through the gray entry; the first wave with h04 GREEN (wave 3) fails it.
    const failed = events.find((e) => e.event === 'verify.failed');
    expect(failed).toMatchObject({ check: 'gray-entry' });
    expect(failed!.wave).toBeGreaterThanOrEqual(3);
    expect(failed!.wave).toBeLessThanOrEqual(4);
    expect(events.some((e) => e.event === 'run.halted')).toBe(true);
    expect(events.some((e) => e.event === 'run.done')).toBe(false);
    expect(events.at(-1)).toMatchObject({ event: 'demo.summary', exitCode: 1 });
    const log = readFileSync(join(dir, 'state-fault', 'demo', 'logs', '_release.log'), 'utf8');
    expect(log).toMatch(/probe \(gray entry, group GREEN\): \d+\/30 ok/);
    await down({ dir: sb });
  }, 180_000);

  it('Ctrl-C in the live view (a real terminal): the demo halts cleanly and brings its sandbox down (exit 1, not 127)', async () => {
    const sb = join(dir, 'sandbox-tty');
    const state = join(dir, 'state-tty');
    const t = Terminal.start(['demo', '--state-dir', state], { cwd: dir, env: { GRAYWAVE_SANDBOX_DIR: sb } });
    try {
      await t.waitFor(/Wave 2 \(2 hosts\)[\s\S]*h0[23] ›/, 90_000);
      const hub = JSON.parse(readFileSync(join(sb, 'sandbox.json'), 'utf8')) as { hubPid?: number };
      t.keys(['C-c']);
      await t.waitFor(/stopping the demo at the next safe point, then the sandbox goes down \(Ctrl-C again to force\)/, 5_000);
      const code = await t.exitCode(60_000);
      const screen = t.screen();
      expect(code, screen).toBe(1);
      expect(screen).toMatch(/HALTED: interrupted \(Ctrl-C\)/);
      expect(screen).toMatch(/sandbox down/);
      expect(existsSync(join(sb, 'sandbox.json'))).toBe(false);
      expect(isOurs(hub.hubPid!, 'hub-main')).toBe(false);
      expect(existsSync(join(state, 'demo', 'lock'))).toBe(false);
    } finally {
      t.close();
    }
  }, 180_000);
});
