import { execFile, execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Zk } from '../../src/providers/zk.js';
import { FOREIGN_CONFIGURATORS, ORDER_HOSTS, SeedReexporter, mk, seedDubbo } from './helpers/dubbo-seed.js';
import { removeDir, tempDir } from './helpers/process.js';
import { ZooKeeperServer, dumpTree, hasZookeeper } from './helpers/zookeeper.js';

/**
 * A whole release through the CLI: 8 hosts, each drained from Dubbo and LTS, relabelled GREEN and restored, in waves;
 * then `rollback --all` must leave ZooKeeper byte for byte as it was before the release.
 * Uses the built CLI (dist/): `npm test` builds first; when dist is missing this file builds it once.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'bin/graywave.js');
const has = hasZookeeper();

/** The CLI as a child process; asynchronous, so that the seeded providers keep re-exporting (SeedReexporter) meanwhile. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 45_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

describe.skipIf(!has)('release of 8 hosts through Dubbo and LTS in ZooKeeper, then rollback --all', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  let dir: string;
  let playbook: string;
  let initial: Record<string, string>;
  /** The 8 seeded order-service providers behave like Dubbo 2.7+ providers: they re-export when a rule changes. */
  let rx: SeedReexporter;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/cli/main.js'))) {
      try {
        execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
      } catch {
        /* type errors elsewhere still emit JS; the existence check below decides */
      }
    }
    expect(existsSync(join(ROOT, 'dist/cli/main.js')), 'the CLI is not built (npm run build)').toBe(true);
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 3000, label: 'test' });
    await seedDubbo(zk);
    rx = new SeedReexporter(zk);
    await rx.pass();
    rx.start(50);
    for (const [i, h] of ORDER_HOSTS.entries()) {
      await mk(
        zk,
        `/LTS/order_cluster/NODES/TASK_TRACKER/TASK_TRACKER:\\\\${h}?group=order_tt&clusterName=order_cluster&threads=4&identity=TT_${i}&createTime=1700000000000&isAvailable=true&hostName=order-${i + 1}`,
      );
    }
    initial = await dumpTree(zk);
    dir = tempDir('zkrel');
    playbook = join(dir, 'release.yaml');
    writeFileSync(
      playbook,
      YAML.stringify({
        name: 'order-release',
        version: '3.2.0',
        group: 'GREEN',
        hosts: ORDER_HOSTS.map((address, i) => ({ name: `order-${i + 1}`, address })),
        transport: { type: 'local' },
        waves: { canary: 1, size: '50%', concurrency: 2, maxFailures: 0, pause: 'none' },
        providers: {
          dubbo: { type: 'dubbo-zookeeper', connect: server.connect, root: '/dubbo', application: 'order-service', style: 'config-rule', connectTimeout: '3s' },
          jobs: { type: 'lts-zookeeper', connect: server.connect, cluster: 'order_cluster', connectTimeout: '3s' },
        },
        steps: [
          { drain: 'dubbo' },
          { drain: 'jobs' },
          { name: 'deploy', run: 'true' },
          { relabel: { provider: 'dubbo', group: 'GREEN' } },
          { restore: 'jobs' },
          { restore: 'dubbo' },
        ],
      }),
    );
  });
  afterAll(async () => {
    await rx?.stop();
    await zk?.close();
    await server?.stop();
    if (dir) removeDir(dir);
  });

  it('run drains and restores every host; only the GREEN tag remains; rollback --all restores ZooKeeper byte for byte', async () => {
    const state = join(dir, 'state');
    // --skip-preflight: preflight has its own test (test/integration/preflight.test.ts).
    const run = await cli(['run', playbook, '--yes', '--json', '--state-dir', state, '--skip-preflight']);
    expect(run.code, `run failed:\n${run.stderr}\n${run.stdout.slice(-3000)}`).toBe(0);
    const events = (out: string) =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { event: string; step?: string; host?: string; skipped?: boolean });
    const doneBy = (evs: ReturnType<typeof events>, kind: string, step: string) =>
      new Set(evs.filter((e) => e.event === kind && e.step === step && !e.skipped).map((e) => e.host)).size;
    const ran = events(run.stdout);
    for (const step of ['drain:dubbo', 'drain:jobs', 'relabel:dubbo', 'restore:jobs', 'restore:dubbo']) expect(doneBy(ran, 'step.done', step), step).toBe(8);

    await rx.pass();
    const after = await dumpTree(zk);
    const changed = Object.keys({ ...after, ...initial }).filter((k) => after[k] !== initial[k]);
    expect(changed).toEqual(['/dubbo/config/dubbo/order-service.tag-router']);
    expect((await zk.get('/dubbo/config/dubbo/order-service.configurators'))!.data.toString()).toBe(FOREIGN_CONFIGURATORS);
    const tags = YAML.parse((await zk.get('/dubbo/config/dubbo/order-service.tag-router'))!.data.toString().replace(/^# graywave-baseline: .*\n/, ''));
    const green = tags.tags.find((t: { name: string }) => t.name === 'GREEN');
    expect([...green.addresses].sort()).toEqual(ORDER_HOSTS.map((h) => `${h}:20880`));

    const back = await cli(['rollback', playbook, '--all', '--yes', '--json', '--state-dir', state]);
    expect(back.code, `rollback failed:\n${back.stderr}\n${back.stdout.slice(-3000)}`).toBe(0);
    const undone = events(back.stdout);
    for (const step of ['drain:dubbo', 'drain:jobs', 'relabel:dubbo', 'restore:jobs', 'restore:dubbo'])
      expect(doneBy(undone, 'undo.done', step), `undo ${step}`).toBe(8);
    await rx.pass();
    expect(await dumpTree(zk)).toEqual(initial);
    expect(rx.count).toBeGreaterThanOrEqual(32); // each host re-registered at drain and restore, in the run and in the rollback
  });
});
