import { execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Zk } from '../../src/providers/zk.js';
import { FOREIGN_CONFIGURATORS, ORDER_HOSTS, SeedReexporter, seedDubbo } from './helpers/dubbo-seed.js';
import { removeDir, tempDir } from './helpers/process.js';
import { ZooKeeperServer, dumpTree, hasZookeeper } from './helpers/zookeeper.js';

/**
 * Dubbo warm-up through a whole release against a real ZooKeeper, with the built CLI: `run` ramps each restored host
 * through 10% and 50% of its weight (graywave's own rule item, in place) before the plain restore; the run is
 * SIGKILLed in the middle of a ramp, `resume` continues the ramp where the journal says (never back to weight 0), and
 * `rollback --all` drains the hosts again and then leaves ZooKeeper byte for byte as it was. The seeded providers
 * re-export like Dubbo 2.7+ providers (SeedReexporter), so the strict isDrained / isRestored see what a fleet does.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'bin/graywave.js');
const HOSTS = ORDER_HOSTS.slice(0, 4);
const RULE = '/dubbo/config/dubbo/order-service.configurators';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((ok) => child.on('close', (code) => ok({ code, stdout, stderr })));
  return { child, done };
}
const cli = (args: string[]) => start(args).done;

describe.skipIf(!hasZookeeper())('Dubbo warm-up through run, kill -9 and resume, rollback (real ZooKeeper, built CLI)', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  let rx: SeedReexporter;
  let dir: string;
  let playbook: string;
  let initial: Record<string, string>;
  /** Every distinct weight graywave's item had for each host, in order (sampled from the rule node). */
  const seen = new Map<string, number[]>();
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();

  const itemWeights = (text: string | undefined) => {
    const out = new Map<string, number>();
    if (!text) return out;
    const rule = YAML.parse(text.replace(/^# graywave-baseline: .*\n/, '')) as {
      configs?: { addresses?: string[]; parameters?: { weight?: number } }[];
    } | null;
    for (const c of rule?.configs ?? []) {
      const a = c.addresses?.[0];
      if (a && HOSTS.some((h) => a === `${h}:20880`) && typeof c.parameters?.weight === 'number') out.set(a, c.parameters.weight);
    }
    return out;
  };
  const sample = async () => {
    const now = itemWeights((await zk.get(RULE))?.data.toString('utf8'));
    for (const [a, w] of now) {
      const list = seen.get(a) ?? [];
      if (list[list.length - 1] !== w) list.push(w);
      seen.set(a, list);
    }
    return now;
  };
  const until = async (what: string, cond: () => Promise<boolean>, ms = 30_000) => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/cli/main.js')))
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 3000, label: 'test' });
    await seedDubbo(zk, { orderHosts: HOSTS });
    rx = new SeedReexporter(zk);
    await rx.pass();
    rx.start(50);
    initial = await dumpTree(zk);
    sampler = (async () => {
      while (sampling) {
        await sample().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    dir = tempDir('zkwarm');
    playbook = join(dir, 'warm.yaml');
    writeFileSync(
      playbook,
      YAML.stringify({
        name: 'order-warm',
        version: '3.3.0',
        hosts: HOSTS.map((address, i) => ({ name: `order-${i + 1}`, address })),
        transport: { type: 'local' },
        waves: { canary: 1, size: '50%', concurrency: 1, maxFailures: 0, pause: 'none' },
        providers: { dubbo: { type: 'dubbo-zookeeper', connect: server.connect, application: 'order-service', connectTimeout: '3s' } },
        steps: [
          { drain: 'dubbo' },
          { name: 'deploy', run: 'true' },
          { restore: { provider: 'dubbo', restoreTimeout: '20s', warmup: { weights: [10, 50, 100], every: '1500ms' } } },
        ],
      }),
    );
  }, 60_000);
  afterAll(async () => {
    sampling = false;
    await sampler;
    await rx?.stop();
    await zk?.close();
    await server?.stop();
    if (dir) removeDir(dir);
  });

  it('ramps 10% -> 50% -> restore per host, resumes a killed ramp where it stopped, and rollback --all leaves ZooKeeper as it was', async () => {
    const state = ['--state-dir', join(dir, 'state')];
    const first = `${HOSTS[0]}:20880`;
    const second = `${HOSTS[1]}:20880`;
    const run = start(['run', playbook, '--yes', '--json', '--skip-preflight', ...state]);
    // Kill -9 while the second host is at its 10% step (the canary host finished its whole ramp before).
    await until('the second host at 10%', async () => (await sample()).get(second) === 10 || run.child.exitCode !== null);
    expect(run.child.exitCode, 'the run ended before the kill').toBeNull();
    run.child.kill('SIGKILL');
    await run.done;
    expect(seen.get(first)).toEqual([0, 10, 50]);
    expect(itemWeights((await zk.get(RULE))!.data.toString('utf8')).has(first)).toBe(false); // restored: graywave's item gone
    expect((await sample()).get(second)).toBe(10);

    // The dead holder's lock is reported and cleared, then resume goes on with the ramp (10% again, 50%, restore).
    expect((await cli(['resume', playbook, '--yes', ...state])).code).toBe(3);
    expect((await cli(['unlock', playbook, '--force', ...state])).code).toBe(0);
    const resumed = await cli(['resume', playbook, '--yes', '--json', ...state]);
    expect(resumed.code, resumed.stderr + resumed.stdout.slice(-3000)).toBe(0);
    const events = resumed.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string; host?: string; step?: string; observed?: string });
    const order2 = events.filter((e) => e.host === 'order-2' && e.event.startsWith('step.'));
    // The killed host goes on inside its restore step (its drain is not repeated), from the journalled ramp step.
    expect(order2[0]).toMatchObject({ event: 'step.start', step: 'restore:dubbo' });
    expect(order2.filter((e) => e.event === 'step.progress').map((e) => e.observed)).toEqual([
      'warm-up 10% (step 1 of 2), next in 1.5s',
      'warm-up 50% (step 2 of 2), next in 1.5s',
    ]);
    // Never back to weight 0 on resume: 0 (drain), 10, 50, then the item goes.
    expect(seen.get(second)).toEqual([0, 10, 50]);
    for (const h of HOSTS.slice(2)) expect(seen.get(`${h}:20880`)).toEqual([0, 10, 50]);
    await rx.pass();
    expect(await dumpTree(zk)).toEqual(initial);
    expect((await zk.get(RULE))!.data.toString('utf8')).toBe(FOREIGN_CONFIGURATORS);

    // rollback --all: each restore is undone by draining again (weight 0 back in place), then the drain is undone.
    const back = await cli(['rollback', playbook, '--all', '--yes', '--json', ...state]);
    expect(back.code, back.stderr + back.stdout.slice(-3000)).toBe(0);
    const undone = back.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string; host?: string; step?: string });
    for (const step of ['restore:dubbo', 'drain:dubbo'])
      expect(new Set(undone.filter((e) => e.event === 'undo.done' && e.step === step).map((e) => e.host)).size, `undo ${step}`).toBe(4);
    // (The weight-0 item of the re-drain lives only until the drain's undo right after it: the sampler may not see it.)
    for (const h of HOSTS) expect(seen.get(`${h}:20880`)!.slice(0, 3)).toEqual([0, 10, 50]);
    await rx.pass();
    expect(await dumpTree(zk)).toEqual(initial);
  }, 120_000);
});
