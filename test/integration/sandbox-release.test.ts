import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadStats } from '../../src/sandbox/loadgen.js';
import { down, hubCall, loadConfig, status } from '../../src/sandbox/supervisor.js';
import { removeDir, tempDir } from './helpers/process.js';
import { ensureBuilt } from '../helpers/cli.js';

/**
 * A real multi-process sandbox release: 8 host processes, the hub (registry + router + load generator), steady
 * load through the router for the whole release, and the bundled demo playbook (moved to 127.0.2.0/24 so it does not
 * clash with a demo someone runs) driven through the real CLI.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'bin', 'graywave.js');
const NET = '127.0.2';

/** `npm test` builds first; a plain `npx vitest run` of this file builds when dist is missing or older than src. */

let dir: string;
let sandbox: string;
let playbook: string;
const env = () => ({ ...process.env, GRAYWAVE_SANDBOX_DIR: sandbox, FORCE_COLOR: '0' });

function cliRun(args: string[]): Promise<{ code: number; events: Record<string, any>[]; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: dir, env: env() });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.on('close', (code) => {
      const events = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, any>);
      resolveRun({ code: code ?? -1, events, stderr: err });
    });
  });
}

async function sandboxUp(): Promise<void> {
  await down({ dir: sandbox });
  execFileSync(process.execPath, [cli, 'sandbox', 'up', '--dir', sandbox, '--net', NET, '--rps', '40'], { env: env(), stdio: 'pipe' });
  await hubCall(loadConfig(sandbox), 'loadgen/reset', 'POST');
}

const load = () => hubCall<LoadStats>(loadConfig(sandbox), 'loadgen/settle', 'POST');
const wavesOf = (events: Record<string, any>[]) => events.filter((e) => e.event === 'wave.start').map((e) => e.hosts as string[]);

beforeAll(() => {
  ensureBuilt([
    'cli/main.ts',
    'cli/sandbox.ts',
    'sandbox/supervisor.ts',
    'sandbox/host.ts',
    'sandbox/hub.ts',
    'sandbox/registry.ts',
    'providers/registry/nacos.ts',
  ]);
  dir = tempDir('sbx');
  sandbox = join(dir, 'sandbox');
  playbook = join(dir, 'release.yaml');
  const text = readFileSync(join(root, 'playbooks', 'demo.yaml'), 'utf8')
    .replaceAll('127.0.1.', `${NET}.`)
    .replaceAll('node ../bin/graywave.js', `node ${cli}`);
  writeFileSync(playbook, text);
}, 60_000);

afterAll(async () => {
  await down({ dir: sandbox });
  removeDir(dir);
}, 30_000);

describe('sandbox release (8 host processes under load)', () => {
  it('halts on a failed deploy with the host still drained, then resumes to a full release with 0 failed requests', async () => {
    await sandboxUp();
    execFileSync(process.execPath, [cli, 'sandbox', 'fault', 'h05', 'deploy', '--dir', sandbox], { env: env() });

    const first = await cliRun(['run', playbook, '--yes', '--json', '--state-dir', join(dir, 'state1')]);
    expect(first.code, first.stderr).toBe(1);
    expect(first.events.at(-1)).toMatchObject({ event: 'run.halted', stillDrained: ['h05'] });
    let s = await status({ dir: sandbox });
    const h05 = s.hosts.find((h) => h.name === 'h05')!;
    expect(h05).toMatchObject({ version: '1.0.0', weight: 0, consumer: 'suspended', scheduler: 'offline', running: true });

    const second = await cliRun(['resume', playbook, '--yes', '--json', '--state-dir', join(dir, 'state1')]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.events.at(-1)).toMatchObject({ event: 'run.done', hosts: 8, waves: 5 });

    // The waves in the planned order: the canary, then quarters of the fleet.
    expect([...wavesOf(first.events), ...wavesOf(second.events).filter((w) => !w.includes('h04'))]).toEqual([
      ['h01'],
      ['h02', 'h03'],
      ['h04', 'h05'],
      ['h06', 'h07'],
      ['h08'],
    ]);

    const stats = await load();
    expect(stats.failures).toEqual([]);
    expect(stats.failed).toBe(0);
    expect(stats.ok).toBeGreaterThan(200);
    expect(stats.byVersion['2.0.0']).toBeGreaterThan(0);

    s = await status({ dir: sandbox });
    expect(s.defaultGroup).toBe('GREEN');
    for (const h of s.hosts) {
      expect(h, h.name).toMatchObject({
        running: true,
        version: '2.0.0',
        group: 'GREEN',
        registeredGroup: 'GREEN',
        registeredVersion: '2.0.0',
        weight: 1,
        enabled: true,
        consumer: 'consuming',
        scheduler: 'online',
      });
    }
  }, 150_000);

  it('an unhealthy deploy halts the wave; rollback brings the wave hosts back in, on the old version where deployed, without failed requests', async () => {
    await sandboxUp();
    execFileSync(process.execPath, [cli, 'sandbox', 'fault', 'h03', 'health', '--dir', sandbox], { env: env() });
    const state = join(dir, 'state2');
    const run = await cliRun(['run', playbook, '--yes', '--json', '--state-dir', state]);
    expect(run.code, run.stderr).toBe(1);
    const failed = run.events.find((e) => e.event === 'step.failed');
    expect(failed).toMatchObject({ host: 'h03', step: 'deploy' });
    expect(wavesOf(run.events)).toEqual([['h01'], ['h02', 'h03']]);

    const back = await cliRun(['rollback', playbook, '--yes', '--json', '--state-dir', state]);
    expect(back.code, back.stderr).toBe(0);
    const s = await status({ dir: sandbox });
    // h02 completed its steps: every one is undone. (h03's deploy step failed, so what the engine undoes for it is
    // the engine's policy for failed steps, not asserted here.)
    const h02 = s.hosts.find((x) => x.name === 'h02')!;
    expect(h02).toMatchObject({
      running: true,
      version: '1.0.0',
      group: 'BLUE',
      registeredGroup: 'BLUE',
      weight: 1,
      enabled: true,
      consumer: 'consuming',
      scheduler: 'online',
    });
    expect(s.hosts.find((x) => x.name === 'h03')).toMatchObject({ running: true, consumer: 'consuming', scheduler: 'online' });
    // The canary wave was not rolled back: h01 stays on the new version.
    expect(s.hosts.find((x) => x.name === 'h01')).toMatchObject({ version: '2.0.0', group: 'GREEN', weight: 1 });
    const stats = await load();
    expect(stats.failures).toEqual([]);
  }, 120_000);
});
