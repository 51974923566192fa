import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, hubCall, status, up, type SandboxConfig } from '../../src/sandbox/supervisor.js';
import { trainTraffic, type Traffic } from '../../src/sandbox/traffic.js';
import { ensureBuilt } from '../helpers/cli.js';
import { removeDir, tempDir } from './helpers/process.js';

/**
 * The train sandbox (127.0.3.0/24) with the built CLI: the app playbooks of playbooks/train/ each released on their
 * own, under public and gray-entry load. Both parts of this file use the same addresses, so they run one after the
 * other in this one file.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'bin', 'graywave.js');
let dir: string;

beforeAll(() => {
  ensureBuilt([
    'cli/main.ts',
    'cli/demo.ts',
    'cli/demo-train.ts',
    'cli/demo-sandbox.ts',
    'cli/demo-steps.ts',
    'cli/sandbox.ts',
    'sandbox/supervisor.ts',
    'sandbox/http.ts',
    'sandbox/host.ts',
    'sandbox/hub.ts',
    'sandbox/chain.ts',
    'sandbox/router.ts',
    'sandbox/loadgen.ts',
    'gates/green-only.ts',
  ]);
  dir = tempDir('train');
}, 180_000);
afterAll(async () => {
  await down({ dir: join(dir, 'sandbox') });
  await down({ dir: join(dir, 'sandbox-demo') });
  removeDir(dir);
}, 30_000);

function cliRun(args: string[], env: Record<string, string>): Promise<{ code: number; events: Record<string, any>[]; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: dir, env: { ...process.env, ...env, FORCE_COLOR: '0' } });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.on('close', (c) =>
      done({
        code: c ?? -1,
        events: out
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, any>),
        stderr: err,
      }),
    );
  });
}

/** When the first event of a kind (that matches) was emitted, ms since the epoch. */
function at(events: Record<string, any>[], event: string, match: (e: Record<string, any>) => boolean = () => true): number {
  const e = events.find((x) => x.event === event && match(x));
  expect(e, `no ${event} event`).toBeDefined();
  return Date.parse(e!.ts);
}

/**
 * The requests a load of `rps` sends in [from, to], at least half of them (the load generator keeps its rate; the
 * window's edges are the events' times, not the load's), and at least 20: traffic really flowed all along.
 */
const steady = (rps: number, from: number, to: number) => Math.max(20, Math.floor((rps * (to - from)) / 1000 / 2));

describe('train sandbox and its app playbooks', () => {
  it('bfe.yaml, order.yaml and account.yaml each run standalone (all three at once): every host GREEN on 2.0.0, each wave verified GREEN through the gray entry, 0 failed requests', async () => {
    const sb = join(dir, 'sandbox');
    const c: SandboxConfig = await up({ dir: sb, train: true, rps: 20 });
    expect(c.apps?.map((a) => [a.name, a.hosts.length])).toEqual([
      ['bfe', 4],
      ['order', 4],
      ['account', 4],
    ]);
    await hubCall(c, 'loadgen/reset', 'POST');
    const apps = ['bfe', 'order', 'account'];
    const runs = await Promise.all(
      apps.map((a) =>
        cliRun(['run', join(root, 'playbooks', 'train', `${a}.yaml`), '--yes', '--json', '--state-dir', join(dir, 'state')], { GRAYWAVE_SANDBOX_DIR: sb }),
      ),
    );
    runs.forEach((r, i) => {
      expect(r.code, `${apps[i]}: ${r.stderr}`).toBe(0);
      const verified = r.events.filter((e) => e.event === 'verify.done' && e.check === `gray-${apps[i]}-green`);
      expect(verified.map((e) => e.wave)).toEqual([1, 2, 3, 4]);
      expect(verified[0]!.observed).toMatch(/^10\/10 served by GREEN only/);
    });
    await hubCall(c, 'loadgen/settle', 'POST');
    const traffic = await hubCall<Traffic>(c, 'traffic');
    const t = trainTraffic(traffic, { group: 'GREEN', apps });
    // Steady load all along the releases (20/s public, 10/s gray).
    const from = Math.min(...runs.map((r) => at(r.events, 'run.start')));
    const to = Math.max(...runs.map((r) => at(r.events, 'run.done')));
    expect(t.publicRequests).toBeGreaterThanOrEqual(steady(20, from, to));
    expect(t.grayRequests).toBeGreaterThanOrEqual(steady(10, from, to));
    expect(t.failedRequests, JSON.stringify([...traffic.public, ...traffic.gray].filter((r) => r.status !== 200).slice(0, 3))).toBe(0);
    // Every host released and labelled GREEN; now the gray entry is GREEN end to end.
    const s = await status({ dir: sb });
    expect(s.hosts.map((h) => `${h.name} ${h.version} ${h.registeredGroup} ${h.weight}`)).toEqual(s.hosts.map((h) => `${h.name} 2.0.0 GREEN 1`));
    const last = traffic.gray.at(-1)!;
    expect(last.servedBy).toMatch(/^bfe=GREEN@127\.0\.3\.\d+,order=GREEN@127\.0\.3\.1\d,account=GREEN@127\.0\.3\.2\d$/);
    await down({ dir: sb });
    expect(existsSync(join(sb, 'sandbox.json'))).toBe(false);
  }, 300_000);

  it("demo --train refuses a playbook whose hosts are not the train sandbox's (exit 2, nothing started)", async () => {
    const sb = join(dir, 'sandbox-demo');
    const r = await cliRun(['demo', '--train', '--json', '--playbook', join(root, 'playbooks', 'demo.yaml'), '--state-dir', join(dir, 'state-bad')], {
      GRAYWAVE_SANDBOX_DIR: sb,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/demo\.yaml: host h01 \(127\.0\.1\.1\) is not a host of the train sandbox/);
    expect(r.stderr).toMatch(/bfe-01 127\.0\.3\.1/);
    expect(existsSync(join(sb, 'sandbox.json'))).toBe(false);
  });

  it('graywave demo --train releases the train (bfe, order after account, account not deployed) under load: 0 failed requests, GREEN-only gray traffic after the canary wave, public traffic to GREEN at the switchover', async () => {
    const sb = join(dir, 'sandbox-demo');
    const r = await cliRun(['demo', '--train', '--json', '--state-dir', join(dir, 'state-demo')], { GRAYWAVE_SANDBOX_DIR: sb });
    expect(r.code, r.stderr).toBe(0);
    const summary = r.events.at(-1)!;
    expect(summary, JSON.stringify(summary)).toMatchObject({
      event: 'demo.summary',
      train: true,
      group: 'GREEN',
      hosts: 12,
      green: 12,
      waves: 4,
      failedRequests: 0,
      exitCode: 0,
    });
    expect(summary.apps).toEqual([
      { name: 'bfe', hosts: 4, green: 4, versions: ['2.0.0'] },
      { name: 'order', hosts: 4, green: 4, versions: ['2.0.0'] },
      // deploy: false — relabelled GREEN, still on the version it had
      { name: 'account', hosts: 4, green: 4, versions: ['1.0.0'] },
    ]);
    // Steady load all along the release (20/s public, 10/s through the gray entry), however fast it went.
    const start = at(r.events, 'run.start');
    const end = at(r.events, 'run.done');
    const switched = Date.parse(summary.switchedAt);
    const canaryDone = at(r.events, 'wave.done', (e) => e.wave === 1 && !('app' in e));
    expect(start < canaryDone && canaryDone < switched && switched < end, JSON.stringify({ start, canaryDone, switched, end })).toBe(true);
    expect(summary.publicRequests).toBeGreaterThanOrEqual(steady(20, start, end));
    expect(summary.grayRequests).toBeGreaterThanOrEqual(steady(10, start, end));
    // After the canary wave every gray-entry request was served by GREEN instances of every app.
    expect(summary.grayAfterCanary.requests).toBeGreaterThanOrEqual(steady(10, canaryDone, end));
    expect(summary.grayAfterCanary).toEqual({ requests: summary.grayAfterCanary.requests, greenOnly: summary.grayAfterCanary.requests });
    // Public traffic: BLUE end to end until the switchover, GREEN end to end after it (a request sent just before
    // the switch may have arrived after it); never mixed, never failed.
    expect(Object.keys(summary.publicBeforeSwitchover).filter((g) => g !== 'GREEN')).toEqual(['BLUE']);
    expect(summary.publicBeforeSwitchover.BLUE).toBeGreaterThanOrEqual(steady(20, start, switched));
    // Requests in flight at the switch: a handful (the load generator keeps ~10 in flight; more on a busy machine).
    expect(summary.publicBeforeSwitchover.GREEN ?? 0).toBeLessThanOrEqual(Math.max(10, Math.ceil(summary.publicBeforeSwitchover.BLUE * 0.02)));
    expect(Object.keys(summary.publicAfterSwitchover)).toEqual(['GREEN']);
    expect(summary.publicAfterSwitchover.GREEN).toBeGreaterThanOrEqual(steady(20, switched, end));
    // The switchover came after wave 2 (GREEN carries 50% of every app), the train's green-only check passed after every wave.
    expect(r.events.find((e) => e.event === 'switchover.done')).toMatchObject({ afterWave: 2 });
    expect(r.events.filter((e) => e.event === 'verify.done' && e.check === 'gray-green-only').map((e) => e.wave)).toEqual([1, 2, 3, 4]);
    // account was not deployed; order's part of each wave started after account's was done.
    const steps = r.events.filter((e) => e.event === 'step.start' || e.event === 'host.done');
    expect(steps.some((e) => e.event === 'step.start' && String(e.host).startsWith('account/') && e.step === 'deploy')).toBe(false);
    expect(steps.some((e) => e.event === 'step.start' && String(e.host).startsWith('bfe/') && e.step === 'deploy')).toBe(true);
    for (const wave of [1, 2, 3, 4]) {
      const accountDone = steps.findIndex((e) => e.event === 'host.done' && e.wave === wave && String(e.host).startsWith('account/'));
      const orderStart = steps.findIndex((e) => e.event === 'step.start' && e.wave === wave && String(e.host).startsWith('order/'));
      expect(accountDone, `wave ${wave}`).toBeGreaterThanOrEqual(0);
      expect(orderStart, `wave ${wave}`).toBeGreaterThan(accountDone);
    }
    expect(existsSync(join(sb, 'sandbox.json'))).toBe(false);
  }, 300_000);
});
