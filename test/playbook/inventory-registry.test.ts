import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nacosProviderType } from '../../src/providers/registry/nacos.js';
import type { Provider } from '../../src/providers/types.js';
import { listen, startRegistry, type Registry, type RunningServer } from '../../src/sandbox/registry.js';
import { cli, requireBuiltCli } from '../helpers/cli.js';
import { makeEnv } from '../helpers/contexts.js';

/**
 * inventory: {provider: <nacos>, service} against the local server that answers the recorded Nacos shapes
 * (src/sandbox/registry.ts, shared/reference/protocols.md §2). The CLI runs as a child (plan --json), so the
 * server in this process keeps answering while the playbook loads.
 */

requireBuiltCli();
const dir = mkdtempSync(join(tmpdir(), 'gw-invreg-'));
let srv: RunningServer & { registry: Registry };
/** The same registry seen as a Nacos 2.x server: no /nacos/v3 (404), everything else passed through. */
let old: RunningServer;

function register(
  reg: Registry,
  service: string,
  ip: string,
  port: number,
  opts: { enabled?: boolean; metadata?: Record<string, string>; cluster?: string } = {},
) {
  const cluster = opts.cluster ?? 'DEFAULT';
  reg.add({ service: `DEFAULT_GROUP@@${service}`, ip, port, cluster, enabled: opts.enabled ?? true, metadata: opts.metadata ?? {} });
}

beforeAll(async () => {
  srv = await startRegistry();
  const reg = srv.registry;
  register(reg, 'order-service', '127.0.0.11', 8080, { metadata: { zone: 'a', version: '1.0.0' } });
  register(reg, 'order-service', '127.0.0.12', 8080, { metadata: { zone: 'b' } });
  register(reg, 'order-service', '127.0.0.12', 8081, { metadata: { zone: 'b' } });
  // Drained earlier (enabled=false): hidden from the v1/v2 list, shown by the v3 admin list.
  register(reg, 'order-service', '127.0.0.13', 8080, { enabled: false, metadata: { zone: 'a' } });
  // Another cluster and another service: not part of the inventory.
  register(reg, 'order-service', '127.0.0.14', 8080, { cluster: 'OTHER', metadata: { zone: 'a' } });
  register(reg, 'pay-service', '127.0.0.15', 8080, { metadata: { zone: 'a' } });
  old = await listen(
    http.createServer((req, res) => {
      if ((req.url ?? '').startsWith('/nacos/v3/')) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('No static resource');
      const fwd = http.request(`${srv.url}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(fwd);
    }),
    '127.0.0.1',
    0,
  );
});

afterAll(async () => {
  await old?.close();
  await srv?.close();
  rmSync(dir, { recursive: true, force: true });
});

function playbook(url: string, service: string, name = 'p.yaml', extra = ''): string {
  const f = join(dir, name);
  writeFileSync(
    f,
    [
      'name: inv',
      'version: 2.0.0',
      'providers:',
      `  reg: { type: nacos, url: "${url}", services: [order-service] }`,
      `inventory: { provider: reg, service: ${service}, timeout: 20 }`,
      'waves: { by: zone, order: [a, b] }',
      'steps:',
      '  - run: "echo {{host.address}}:{{host.vars.port}} zone={{host.labels.zone}}"',
      extra,
    ].join('\n'),
  );
  return f;
}

const commands = (plan: { hosts: Record<string, { command: string }[]> }) => Object.fromEntries(Object.entries(plan.hosts).map(([h, s]) => [h, s[0]!.command]));

describe('inventory: {provider: nacos, service}', () => {
  it('lists every instance of the service in the provider cluster, disabled ones too (v3 admin list); metadata feeds label waves', async () => {
    const r = await cli(['plan', playbook(srv.url, 'order-service'), '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.waves.map((w: { hosts: string[] }) => w.hosts)).toEqual([['127.0.0.11', '127.0.0.13'], ['127.0.0.12']]);
    expect(commands(plan)).toEqual({
      '127.0.0.11': expect.stringMatching(/127\.0\.0\.11:8080 zone=a/),
      '127.0.0.12': expect.stringMatching(/127\.0\.0\.12:8080 zone=b/),
      '127.0.0.13': expect.stringMatching(/127\.0\.0\.13:8080 zone=a/),
    });
    const lists = srv.registry.requests.filter((q) => q.path.endsWith('/instance/list'));
    expect(lists.at(-1)).toMatchObject({
      path: '/nacos/v3/admin/ns/instance/list',
      params: { serviceName: 'order-service', namespaceId: 'public', groupName: 'DEFAULT_GROUP' },
    });
  }, 20_000);

  it('without the v3 admin list (Nacos 2.x) it falls back to the v1 list, where a disabled instance is missing', async () => {
    const r = await cli(['plan', playbook(old.url, 'order-service', 'old.yaml'), '--json']);
    expect(r.code).toBe(0);
    expect(Object.keys(JSON.parse(r.stdout).hosts).sort()).toEqual(['127.0.0.11', '127.0.0.12']);
    expect(srv.registry.requests.at(-1)).toMatchObject({ path: '/nacos/v1/ns/instance/list', params: { serviceName: 'order-service', clusters: 'DEFAULT' } });
  }, 20_000);

  it('a service with no instance, or an unreachable Nacos, is a config error at the inventory key (exit 2)', async () => {
    const none = await cli(['plan', playbook(srv.url, 'ghost-service', 'none.yaml'), '--json']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(
      /none\.yaml:5:\d+: inventory from provider reg \(service ghost-service\) failed \(exit 1\): .*lists no instance of service ghost-service \(namespace public, group DEFAULT_GROUP, cluster DEFAULT\)/,
    );
    const down = await cli(['plan', playbook('http://127.0.0.1:1', 'order-service', 'down.yaml'), '--json']);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/down\.yaml:5:\d+: inventory from provider reg \(service order-service\) failed \(exit 1\): .*127\.0\.0\.1:1/);
    expect(down.stdout).toBe('');
  }, 20_000);
});

describe('nacos listHosts (direct)', () => {
  it('one host per IP: lowest port as vars.port, all ports in vars.ports, enabled=false only for a fully disabled IP', async () => {
    const p = nacosProviderType.create(nacosProviderType.options.parse({ url: srv.url, services: ['order-service'] }), makeEnv()) as Provider;
    const hosts = await p.listHosts!('order-service', AbortSignal.timeout(5000));
    expect(hosts).toEqual([
      { name: '127.0.0.11', address: '127.0.0.11', labels: { zone: 'a', version: '1.0.0' }, vars: { port: 8080 } },
      { name: '127.0.0.12', address: '127.0.0.12', labels: { zone: 'b' }, vars: { port: 8080, ports: [8080, 8081] } },
      { name: '127.0.0.13', address: '127.0.0.13', labels: { zone: 'a' }, vars: { port: 8080, enabled: false } },
    ]);
    // The provider's cluster decides which instances are hosts.
    const other = nacosProviderType.create(
      nacosProviderType.options.parse({ url: srv.url, services: ['order-service'], cluster: 'OTHER' }),
      makeEnv(),
    ) as Provider;
    expect((await other.listHosts!('order-service', AbortSignal.timeout(5000))).map((h) => h.name)).toEqual(['127.0.0.14']);
  });
});
