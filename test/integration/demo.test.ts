import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down } from '../../src/sandbox/supervisor.js';
import { removeDir, tempDir } from './helpers/process.js';
import { ensureBuilt } from '../helpers/cli.js';

/** `graywave demo --json` end to end: the bundled playbook on the sandbox, the summary line last. Uses 127.0.1.0/24. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'bin', 'graywave.js');
let dir: string;


beforeAll(() => {
  ensureBuilt(['cli/main.ts', 'cli/demo.ts', 'cli/sandbox.ts', 'sandbox/supervisor.ts', 'sandbox/host.ts', 'sandbox/hub.ts']);
  dir = tempDir('demo');
}, 60_000);
afterAll(async () => {
  await down({ dir: join(dir, 'sandbox') });
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
});
