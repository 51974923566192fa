import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dubboZookeeper, javaUrlEncode } from '../../src/providers/registry/dubbo-zookeeper.js';
import type { Provider } from '../../src/providers/types.js';
import { Zk } from '../../src/providers/zk.js';
import { cli, requireBuiltCli } from '../helpers/cli.js';
import { makeEnv } from '../helpers/contexts.js';
import { ORDER_HOSTS, mk, providerUrl, seedDubbo } from './helpers/dubbo-seed.js';
import { freePort } from './helpers/process.js';
import { ZooKeeperServer, hasZookeeper } from './helpers/zookeeper.js';

/** inventory: {provider: <dubbo-zookeeper>, service} against a real ZooKeeper, through `graywave plan --json`. */

const has = hasZookeeper();
requireBuiltCli();

describe.skipIf(!has)('inventory from a dubbo-zookeeper provider (real ZooKeeper)', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  const dir = mkdtempSync(join(tmpdir(), 'gw-invzk-'));

  beforeAll(async () => {
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 3000, label: 'test' });
    await seedDubbo(zk);
    // A second port of the same application on one host, and a statically tagged provider.
    const iface = 'com.acme.order.RefundService';
    await mk(zk, `/dubbo/${javaUrlEncode(iface)}/providers/${javaUrlEncode(providerUrl(ORDER_HOSTS[0]!, 20890, iface, 'order-service'))}`);
    await mk(
      zk,
      `/dubbo/${javaUrlEncode(iface)}/providers/${javaUrlEncode(providerUrl('127.0.0.30', 20880, iface, 'order-service', { 'dubbo.tag': 'gray' }))}`,
    );
  }, 40_000);
  afterAll(async () => {
    await zk?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function playbook(name: string, service: string, connect = server.connect): string {
    const f = join(dir, name);
    writeFileSync(
      f,
      [
        'name: inv',
        'version: 2.0.0',
        'providers:',
        `  zk: { type: dubbo-zookeeper, connect: "${connect}", application: order-service, connectTimeout: 2s }`,
        `inventory: { provider: zk, service: "${service}", timeout: 20 }`,
        'waves: { size: 50% }',
        'steps:',
        '  - run: "echo {{host.address}}:{{host.vars.port}} {{host.labels.application}}"',
        '',
      ].join('\n'),
    );
    return f;
  }
  const plan = async (f: string) => {
    const r = await cli(['plan', f, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as { waves: { hosts: string[] }[]; hosts: Record<string, { command: string }[]> };
  };

  it('an interface: one host per provider IP (consumers are not hosts), named after the IP, with vars.port and the application label', async () => {
    const p = await plan(playbook('iface.yaml', 'com.acme.order.OrderService'));
    expect(Object.keys(p.hosts).sort()).toEqual([...ORDER_HOSTS].sort());
    expect(p.waves.map((w) => w.hosts.length)).toEqual([4, 4]);
    expect(p.hosts['127.0.0.11']![0]!.command).toMatch(/echo 127\.0\.0\.11:20880 order-service/);
  }, 20_000);

  it('an application name: every interface it provides; a service key group/interface:version; the other application on its own port', async () => {
    const app = await plan(playbook('app.yaml', 'order-service'));
    expect(Object.keys(app.hosts).sort()).toEqual([...ORDER_HOSTS, '127.0.0.30'].sort());
    const key = await plan(playbook('key.yaml', 'online/com.acme.order.OrderService:1.0.0'));
    expect(Object.keys(key.hosts)).toHaveLength(ORDER_HOSTS.length);
    const pay = await plan(playbook('pay.yaml', 'payment-service'));
    expect(Object.keys(pay.hosts).sort()).toEqual(ORDER_HOSTS.slice(0, 2));
    expect(pay.hosts['127.0.0.12']![0]!.command).toMatch(/127\.0\.0\.12:20881 payment-service/);
  }, 30_000);

  it('listHosts: several ports of one IP become vars.ports (lowest is vars.port); dubbo.tag becomes label tag', async () => {
    const p = dubboZookeeper.create(dubboZookeeper.options.parse({ connect: server.connect, application: 'order-service' }), makeEnv()) as Provider;
    try {
      const hosts = await p.listHosts!('com.acme.order.RefundService', AbortSignal.timeout(5000));
      expect(hosts.find((h) => h.name === '127.0.0.11')).toEqual({
        name: '127.0.0.11',
        address: '127.0.0.11',
        labels: { application: 'order-service' },
        vars: { port: 20880, ports: [20880, 20890] },
      });
      expect(hosts.find((h) => h.name === '127.0.0.30')).toMatchObject({ labels: { application: 'order-service', tag: 'gray' }, vars: { port: 20880 } });
      expect(hosts).toHaveLength(ORDER_HOSTS.length + 1);
    } finally {
      await p.close?.();
    }
  });

  it('nothing registered for the service, or ZooKeeper unreachable: FILE:LINE:COL at the inventory key, exit 2', async () => {
    const none = await cli(['plan', playbook('none.yaml', 'com.acme.Nope'), '--json']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(
      /none\.yaml:5:\d+: inventory from provider zk \(service com\.acme\.Nope\) failed \(exit 1\): .*no provider registered for com\.acme\.Nope under \/dubbo\/<interface>\/providers/,
    );
    const down = await cli(['plan', playbook('down.yaml', 'order-service', `127.0.0.1:${await freePort()}`), '--json']);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(
      /down\.yaml:5:\d+: inventory from provider zk \(service order-service\) failed \(exit 1\): .*cannot connect to ZooKeeper 127\.0\.0\.1:\d+ within 2000 ms/,
    );
  }, 20_000);

  it('graywave init --from-registry zookeeper://… --service APP writes the registered providers as hosts (the same as inventory: {provider}), a dubbo provider for that ZooKeeper, and plans', async () => {
    const out = mkdtempSync(join(tmpdir(), 'gw-initzk-'));
    try {
      const [first, ...rest] = server.connect.split(',');
      const url = `zookeeper://${first}${rest.length ? `?backup=${rest.join(',')}` : ''}`;
      const r = await cli(['init', '--from-registry', url, '--service', 'order-service', '--stack', 'dubbo,prometheus'], { cwd: out });
      expect(r.code, r.stderr).toBe(0);
      const text = readFileSync(join(out, 'playbook.yaml'), 'utf8');
      const pb = parse(text) as {
        name: string;
        hosts: { name: string; address: string; vars: { port: number }; labels: Record<string, string> }[];
        providers: Record<string, unknown>;
        steps: unknown[];
      };
      // The oracle: what `inventory: { provider, service }` lists at load time for the same service.
      const listed = await plan(playbook('oracle.yaml', 'order-service'));
      expect(pb.hosts.map((h) => h.name).sort()).toEqual(Object.keys(listed.hosts).sort());
      expect(pb.hosts.map((h) => h.name).sort()).toEqual([...ORDER_HOSTS, '127.0.0.30'].sort());
      expect(pb.hosts.find((h) => h.name === '127.0.0.30')).toMatchObject({
        address: '127.0.0.30',
        labels: { application: 'order-service', tag: 'gray' },
        vars: { port: 20880 },
      });
      expect(pb.name).toBe('order-service');
      expect(pb.providers.dubbo).toEqual({ type: 'dubbo-zookeeper', connect: server.connect, application: 'order-service' });
      expect(pb.steps[0]).toEqual({ drain: 'dubbo' });
      expect(text).toContain('# To read them again at every run instead: inventory: { provider: dubbo, service: "order-service" }');
      const p = await cli(['plan', 'playbook.yaml', '--json'], { cwd: out });
      expect(p.code, p.stderr).toBe(0);
      expect(Object.keys(JSON.parse(p.stdout).hosts)).toHaveLength(ORDER_HOSTS.length + 1);

      // An interface: the application is the one its providers name.
      const iface = await cli(['init', '--from-registry', `zookeeper://${server.connect}`, '--service', 'com.acme.order.OrderService', '--out', '-'], {
        cwd: out,
      });
      expect(iface.code, iface.stderr).toBe(0);
      expect((parse(iface.stdout) as { providers: { dubbo: { application: string } } }).providers.dubbo.application).toBe('order-service');

      // Nothing registered: exit 1, the registry's own words, nothing written.
      const none = await cli(['init', '--from-registry', `zookeeper://${server.connect}`, '--service', 'com.acme.Nope', '--out', 'none.yaml'], { cwd: out });
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/graywave: init --from-registry zookeeper:\/\/\S+ --service com\.acme\.Nope: .*no provider registered for com\.acme\.Nope/);
      expect(existsSync(join(out, 'none.yaml'))).toBe(false);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
