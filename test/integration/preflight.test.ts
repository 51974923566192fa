/**
 * Preflight against a real Prometheus and the Nacos-shaped registry, through the built CLI: `graywave check` finds
 * an unregistered host and a query without data for another host (and an unreachable monitor for a gate) in one
 * table, exits 1 and changes nothing; `graywave run` does the same before anything is touched (no journal, no
 * registry write, no step run), and starts with --skip-preflight. With Dubbo providers in a real ZooKeeper, an
 * unregistered Dubbo host is caught by dubbo-zookeeper and dubbo-qos alike.
 */
import { existsSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry } from '../../src/sandbox/registry.js';
import { cli, finished, requireBuiltCli, startCli, tempDirs } from '../helpers/cli.js';
import { hasPrometheus, MetricTarget, startPrometheus, type Prometheus } from './helpers/prometheus.js';
import { removeDir, tempDir, waitFor } from './helpers/process.js';
import { javaUrlEncode } from '../../src/providers/registry/dubbo-zookeeper.js';
import { Zk } from '../../src/providers/zk.js';
import { mk, providerUrl } from './helpers/dubbo-seed.js';
import { ZooKeeperServer, dumpTree, hasZookeeper } from './helpers/zookeeper.js';

requireBuiltCli();
const has = hasPrometheus();
const temp = tempDirs('gw-preflight-');

describe.skipIf(!has)('preflight (graywave check, and before run) with a real Prometheus', () => {
  let promDir: string;
  let prom: Prometheus;
  let reg: Awaited<ReturnType<typeof startRegistry>>;
  const t1 = new MetricTarget(() => ({ rps: 20 }));
  const t2 = new MetricTarget(() => ({ rps: 20 }));

  beforeAll(async () => {
    promDir = tempDir('prom-preflight');
    await t1.start();
    await t2.start();
    prom = await startPrometheus(promDir, [{ job: 'app', targets: [t1.address, t2.address] }]);
    await prom.waitForSeries('rate(app_requests_total[3s])', 2);
    reg = await startRegistry({ nacos2: true });
    // h-01 and h-03 are registered; h-02 is not.
    for (const ip of ['10.0.9.1', '10.0.9.3']) {
      reg.registry.add({ service: 'DEFAULT_GROUP@@order-service', ip, port: 8080 });
    }
  });
  afterAll(async () => {
    await reg?.close();
    await prom?.stop();
    await t1.stop();
    await t2.stop();
    if (promDir) removeDir(promDir);
  });

  function playbook(extra = ''): { dir: string; file: string } {
    const dir = temp();
    writeFileSync(join(dir, 'app-2.0.tgz'), 'x'.repeat(4096));
    const file = join(dir, 'pb.yaml');
    writeFileSync(
      file,
      `name: pre
version: "2.0"
hosts:
  - { name: h-01, address: 127.0.0.1, vars: { ip: 10.0.9.1, port: ${t1.port} } }
  - { name: h-02, address: 127.0.0.1, vars: { ip: 10.0.9.2, port: ${t2.port} } }
  - { name: h-03, address: 127.0.0.1, vars: { ip: 10.0.9.3, port: 1 } }
waves: { size: 1 }
providers:
  reg: { type: nacos, url: "${reg.url}", services: [order-service], mode: weight, port: 8080, ip: "{{host.vars.ip}}" }
  prom: { type: prometheus, url: "${prom.url}", timeout: 2s }
steps:
  - drain: reg
  - waitDrained: { monitor: prom, query: 'sum(rate(app_requests_total{instance="127.0.0.1:{{host.vars.port}}"}[3s]))' }
  - name: mark
    run: touch touched-{{host.name}}
  - deploy: { artifact: "app-{{version}}.tgz", to: "${dir}/app" }
  - restore: reg
${extra}
`,
    );
    return { dir, file };
  }

  it('graywave check: every problem at once in a host x check table, exit 1, nothing changed; --json', async () => {
    const { dir, file } = playbook();
    reg.registry.requests.length = 0;
    const r = await cli(['check', file]);
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^host +reach +artifact +space +registered:reg +data:waitDrained:prom$/);
    expect(lines[1]).toMatch(/^h-01 +ok +ok +ok +ok +ok$/);
    expect(lines[2]).toMatch(/^h-02 +ok +ok +ok +FAIL +ok$/);
    expect(lines[3]).toMatch(/^h-03 +ok +ok +ok +ok +FAIL$/);
    expect(r.stdout).toMatch(/2 problem\(s\):\n {2}h-02 registered:reg: no instance of order-service with ip 10\.0\.9\.2 in Nacos/);
    expect(r.stdout).toMatch(
      / {2}h-03 data:waitDrained:prom: prom: no data \(empty result\) \(query sum\(rate\(app_requests_total\{instance="127\.0\.0\.1:1"\}\[3s\]\)\)\)/,
    );
    expect(r.stderr).toMatch(/preflight: 2 problem\(s\); nothing was changed/);
    // Read-only: no update reached the registry, no journal, no step ran.
    expect(reg.registry.requests.filter((q) => q.method !== 'GET')).toEqual([]);
    expect(existsSync(join(dir, '.graywave'))).toBe(false);

    const j = await cli(['check', file, '--json']);
    expect(j.code).toBe(1);
    const report = JSON.parse(j.stdout) as { ok: boolean; cells: { host: string; check: string; ok: boolean; detail: string }[] };
    expect(report.ok).toBe(false);
    expect(report.cells.filter((c) => !c.ok).map((c) => `${c.host} ${c.check}`)).toEqual(['h-02 registered:reg', 'h-03 data:waitDrained:prom']);
    // The free space is that of the nearest existing directory of `to` (app/ does not exist yet): the kernel's statfs
    // is the oracle (other work on the machine moves it a little between the two readings).
    const space = report.cells.find((c) => c.host === 'h-01' && c.check === 'space')!;
    const free = /^(\d+) MiB free at .*\/app, need \d+ MiB$/.exec(space.detail);
    expect(free, space.detail).not.toBeNull();
    const st = statfsSync(dir);
    expect(Math.abs(Number(free![1]) - (st.bavail * st.bsize) / 2 ** 20)).toBeLessThan(1024);
  });

  it('a gate whose monitor does not answer and a missing artifact are problems; "no data" from a gate monitor is not', async () => {
    const { file, dir } = playbook(`verify:
  - query: { monitor: prom, expr: 'sum(rate(app_errors_total{job="nothing-yet"}[1m]))', max: 0 }
  - query: { monitor: dead, expr: 'up', max: 1 }`);
    writeFileSync(
      file,
      (await import('node:fs'))
        .readFileSync(file, 'utf8')
        .replace('  prom: {', '  dead: { type: prometheus, url: "http://127.0.0.1:1", timeout: 1s }\n  prom: {')
        .replace('app-{{version}}.tgz', 'app-{{version}}-missing.tgz'),
    );
    const r = await cli(['check', file, '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { cells: { host: string; check: string; ok: boolean; detail: string }[] };
    const bad = report.cells.filter((c) => !c.ok).map((c) => `${c.host} ${c.check}`);
    expect(bad).toEqual(expect.arrayContaining(['h-01 artifact', 'h-02 artifact', 'h-03 artifact', '(release) gate:query:dead']));
    expect(bad).not.toContain('(release) gate:query:prom');
    expect(report.cells.find((c) => c.check === 'gate:query:prom')!.detail).toMatch(/answers \(no data/);
    expect(report.cells.find((c) => c.host === 'h-01' && c.check === 'space')).toMatchObject({ ok: false, detail: 'not asked: no artifact' });
    expect(existsSync(join(dir, '.graywave'))).toBe(false);
  });

  it('graywave run stops before anything is touched; --skip-preflight starts the release', async () => {
    const { dir, file } = playbook();
    reg.registry.requests.length = 0;
    const r = await cli(['run', file, '--yes', '--plain']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/h-02 registered:reg: no instance/);
    expect(r.stderr).toMatch(/the release did not start/);
    expect(existsSync(join(dir, '.graywave/pre/journal.jsonl'))).toBe(false);
    expect(existsSync(join(dir, 'touched-h-01'))).toBe(false);
    expect(reg.registry.requests.filter((q) => q.method !== 'GET')).toEqual([]);

    // Skipped: the release starts (h-01 is drained), and is stopped here with Ctrl-C.
    const child = startCli(['run', file, '--yes', '--plain', '--skip-preflight']);
    await waitFor(() => existsSync(join(dir, '.graywave/pre/journal.jsonl')) && reg.registry.requests.some((q) => q.method === 'PUT'), 'the release started', {
      timeoutMs: 20_000,
    });
    child.kill('SIGINT');
    expect((await finished(child, 30_000)).code).toBe(1);
  });
});

describe.skipIf(!hasZookeeper())('preflight with Dubbo providers in a real ZooKeeper (dubbo-zookeeper and dubbo-qos)', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  const APP = 'pay-service';
  const IFACE = 'com.acme.pay.PayService';

  beforeAll(async () => {
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 3000, label: 'test' });
    // h-01 registered at interface level (by its alias 10.0.8.1), h-03 only at application level (Dubbo 3 instance),
    // h-02 not at all (and another application's provider on its IP must not count).
    await mk(zk, `/dubbo/${javaUrlEncode(IFACE)}/providers/${javaUrlEncode(providerUrl('10.0.8.1', 20880, IFACE, APP))}`);
    await mk(zk, `/dubbo/${javaUrlEncode(IFACE)}/providers/${javaUrlEncode(providerUrl('10.0.8.2', 20880, IFACE, 'other-service'))}`);
    await mk(zk, `/services/${APP}/10.0.8.3:20880`, JSON.stringify({ name: APP, id: '10.0.8.3:20880', address: '10.0.8.3', port: 20880, payload: {} }));
  }, 60_000);
  afterAll(async () => {
    await zk?.close();
    await server?.stop();
  });

  it('graywave check: the unregistered Dubbo host is caught in both providers, nothing is written to ZooKeeper', async () => {
    const dir = temp();
    const file = join(dir, 'pb.yaml');
    writeFileSync(
      file,
      `name: pre-dubbo
version: "2.0"
hosts:
  - { name: h-01, address: 127.0.0.1, aliases: [10.0.8.1] }
  - { name: h-02, address: 127.0.0.1, aliases: [10.0.8.2] }
  - { name: h-03, address: 127.0.0.1, aliases: [10.0.8.3] }
waves: { size: 1 }
providers:
  dubbo: { type: dubbo-zookeeper, connect: "${server.connect}", application: ${APP}, connectTimeout: 3s }
  qos: { type: dubbo-qos, connect: "${server.connect}", application: ${APP}, connectTimeout: 3s }
steps:
  - drain: dubbo
  - drain: qos
  - restore: qos
  - restore: dubbo
`,
    );
    const before = await dumpTree(zk);
    const r = await cli(['check', file]);
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^host +reach +registered:dubbo +registered:qos$/);
    expect(lines[1]).toMatch(/^h-01 +ok +ok +ok$/);
    expect(lines[2]).toMatch(/^h-02 +ok +FAIL +FAIL$/);
    expect(lines[3]).toMatch(/^h-03 +ok +ok +ok$/);
    expect(r.stdout).toMatch(/h-02 registered:dubbo: no provider of application pay-service registered from 127\.0\.0\.1 \/ 10\.0\.8\.2/);
    expect(r.stdout).toMatch(/h-02 registered:qos: nothing of pay-service registered from 127\.0\.0\.1 \/ 10\.0\.8\.2/);
    const j = JSON.parse((await cli(['check', file, '--json'])).stdout) as { cells: { host: string; check: string; ok: boolean; detail: string }[] };
    expect(j.cells.find((c) => c.host === 'h-03' && c.check === 'registered:dubbo')!.detail).toMatch(
      /10\.0\.8\.3:20880 registered: 1 application-level instance/,
    );
    expect(await dumpTree(zk)).toEqual(before);
    expect(existsSync(join(dir, '.graywave'))).toBe(false);
  });
});
