import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ASIDE_SUFFIX, etcdProvider } from '../../src/providers/registry/etcd.js';
import type { Provider } from '../../src/providers/types.js';
import { cli, requireBuiltCli } from '../helpers/cli.js';
import { makeEnv } from '../helpers/contexts.js';
import { hasEtcd, startEtcd, type EtcdServer } from './helpers/etcd.js';
import { freePort } from './helpers/process.js';

/** inventory: {provider: <etcd>, service} against a real etcd, through `graywave plan --json`. */

const has = hasEtcd();
requireBuiltCli();

describe.skipIf(!has)('inventory from an etcd provider (real etcd)', () => {
  let etcd: EtcdServer;
  let client: Etcd3;
  const dir = mkdtempSync(join(tmpdir(), 'gw-invetcd-'));

  beforeAll(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.endpoint });
    const put = (k: string, v: unknown) => client.put(k).value(typeof v === 'string' ? v : JSON.stringify(v));
    await put('/services/order/127.0.0.11:8080', { weight: 100, metadata: { zone: 'a' } });
    await put('/services/order/127.0.0.12:8081', { weight: 100, metadata: { zone: 'b' }, group: 'GREEN' });
    // Drained by a `remove` drain: the registration sits aside, the host still belongs to the fleet.
    await put(`/services/order/127.0.0.13:8080${ASIDE_SUFFIX}`, { weight: 100, metadata: { zone: 'a' } });
    // Not of the key template's shape: not a host.
    await put('/services/order/config', { lb: 'rr' });
    await put('/services/pay/127.0.0.21:9090', { weight: 100, metadata: { zone: 'a' } });
    // Another layout, for servicePrefix: one key per instance id, the address in the value.
    await put('/registry/billing/instances/i-1', { ip: '127.0.0.31', port: 7001, labels: { zone: 'a' } });
    await put('/registry/billing/instances/i-2', '127.0.0.32:7002');
  }, 30_000);
  afterAll(async () => {
    client?.close();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function playbook(name: string, service: string, provider: string): string {
    const f = join(dir, name);
    writeFileSync(
      f,
      [
        'name: inv',
        'version: 2.0.0',
        'providers:',
        `  reg: { type: etcd, ${provider}, timeout: 2s }`,
        `inventory: { provider: reg, service: ${service}, timeout: 20 }`,
        'waves: { by: zone, order: [a, b] }',
        'steps:',
        '  - run: "echo {{host.address}}:{{host.vars.port}} {{host.labels.zone}}"',
        '',
      ].join('\n'),
    );
    return f;
  }
  const orderProvider = () => `endpoints: ["${etcd.endpoint}"], key: "/services/order/{{host.address}}:{{host.vars.port}}"`;

  it('key template: the keys under its literal prefix, read back through the template (address, vars.port), metadata as labels', async () => {
    const r = await cli(['plan', playbook('order.yaml', 'order', orderProvider()), '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as { waves: { hosts: string[] }[]; hosts: Record<string, { command: string }[]> };
    expect(plan.waves.map((w) => w.hosts)).toEqual([['127.0.0.11', '127.0.0.13'], ['127.0.0.12']]);
    expect(plan.hosts['127.0.0.12']![0]!.command).toMatch(/echo 127\.0\.0\.12:8081 b/);
    expect(plan.hosts['127.0.0.13']![0]!.command).toMatch(/echo 127\.0\.0\.13:8080 a/);
  }, 20_000);

  it('listHosts: the group field becomes a label, an aside key counts as drained; servicePrefix reads address and port from values', async () => {
    const p = etcdProvider.create(
      etcdProvider.options.parse({ endpoints: [etcd.endpoint], key: '/services/order/{{host.address}}:{{host.vars.port}}' }),
      makeEnv(),
    ) as Provider;
    const q = etcdProvider.create(
      etcdProvider.options.parse({
        endpoints: [etcd.endpoint],
        key: '/registry/billing/instances/{{host.vars.id}}',
        servicePrefix: '/registry/{{service}}/instances/',
      }),
      makeEnv(),
    ) as Provider;
    try {
      const hosts = await p.listHosts!('order', AbortSignal.timeout(5000));
      expect(hosts).toEqual([
        { name: '127.0.0.11', address: '127.0.0.11', labels: { zone: 'a' }, vars: { port: 8080 } },
        { name: '127.0.0.12', address: '127.0.0.12', labels: { zone: 'b', group: 'GREEN' }, vars: { port: 8081 } },
        { name: '127.0.0.13', address: '127.0.0.13', labels: { zone: 'a' }, vars: { port: 8080, drained: true } },
      ]);
      expect(await q.listHosts!('billing', AbortSignal.timeout(5000))).toEqual([
        { name: '127.0.0.31', address: '127.0.0.31', labels: { zone: 'a' }, vars: { id: 'i-1', port: 7001 } },
        { name: '127.0.0.32', address: '127.0.0.32', labels: {}, vars: { id: 'i-2', port: 7002 } },
      ]);
      // The derived prefix must name the service: listing "pay" through the order key template is refused.
      await expect(p.listHosts!('pay', AbortSignal.timeout(5000))).rejects.toThrow(/does not name pay as a path segment; set servicePrefix/);
    } finally {
      await p.close?.();
      await q.close?.();
    }
  });

  it('no registration under the prefix, or etcd unreachable: FILE:LINE:COL at the inventory key, exit 2', async () => {
    const none = await cli([
      'plan',
      playbook('none.yaml', 'ghost', `endpoints: ["${etcd.endpoint}"], key: "/services/{{host.name}}/x", servicePrefix: "/services/{{service}}/"`),
      '--json',
    ]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(
      /none\.yaml:5:\d+: inventory from provider reg \(service ghost\) failed \(exit 1\): .*no registration of service ghost under \/services\/ghost\//,
    );
    const down = await cli([
      'plan',
      playbook('down.yaml', 'order', `endpoints: ["http://127.0.0.1:${await freePort()}"], key: "/services/order/{{host.address}}:8080"`),
      '--json',
    ]);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(
      /down\.yaml:5:\d+: inventory from provider reg \(service order\) failed \(exit 1\): etcd http:\/\/127\.0\.0\.1:\d+: listing \/services\/order\/\* failed/,
    );
  }, 30_000);
});
