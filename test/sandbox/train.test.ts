import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseServedBy } from '../../src/gates/green-only.js';
import { startHost, type HostServer } from '../../src/sandbox/host.js';
import { listen, startRegistry, type RunningServer } from '../../src/sandbox/registry.js';
import { Router } from '../../src/sandbox/router.js';
import { chainGroup, trainTraffic } from '../../src/sandbox/traffic.js';

/**
 * The train sandbox's parts in process: a router with a public and a gray entry in front of two BFE hosts, which
 * call order and account (two hosts each) through the registry. Each host on its own loopback address.
 */
type Reg = Awaited<ReturnType<typeof startRegistry>>;
let reg: Reg;
let router: Router;
let pub: RunningServer;
let gray: RunningServer;
const hosts = new Map<string, HostServer>();
const addr = new Map<string, string>();

const base = { groupName: 'DEFAULT_GROUP', namespaceId: 'public', clusterName: 'DEFAULT' };
async function put(name: string, params: Record<string, string>) {
  const [service] = name.split('-');
  const h = hosts.get(name)!;
  const res = await fetch(
    `${reg.url}/nacos/v1/ns/instance?${new URLSearchParams({ ...base, serviceName: service!, ip: addr.get(name)!, port: String(h.port), ...params })}`,
    { method: 'PUT' },
  );
  expect(res.status).toBe(200);
}
const label = (name: string, group: string, weight = '1') => put(name, { weight, metadata: JSON.stringify({ group }) });

async function get(entry: RunningServer) {
  const res = await fetch(`${entry.url}/`);
  return { status: res.status, servedBy: res.headers.get('x-graywave-served-by') ?? '', body: (await res.json()) as Record<string, unknown> };
}
async function many(entry: RunningServer, n: number) {
  const out: Awaited<ReturnType<typeof get>>[] = [];
  for (let i = 0; i < n; i++) out.push(await get(entry));
  return out;
}
const servedBy = (rs: { servedBy: string }[], app: string) =>
  new Set(rs.map((r) => parseServedBy(r.servedBy)?.find((s) => s.app === app)).map((s) => s && `${s.group}@${s.instance}`));

beforeAll(async () => {
  reg = await startRegistry({ host: '127.0.9.100' });
  const shape: [string, number][] = [
    ['bfe-1', 1],
    ['bfe-2', 2],
    ['order-1', 11],
    ['order-2', 12],
    ['account-1', 21],
    ['account-2', 22],
  ];
  for (const [name, octet] of shape) {
    const service = name.split('-')[0]!;
    const address = `127.0.9.${octet}`;
    const h = await startHost({
      name,
      address,
      port: 0,
      version: '1.0.0',
      group: 'BLUE',
      workMs: [1, 3],
      ...(service === 'bfe' ? { calls: { registry: reg.url, services: ['order', 'account'] } } : {}),
    });
    hosts.set(name, h);
    addr.set(name, address);
    const res = await fetch(`${reg.url}/nacos/v1/ns/instance`, {
      method: 'POST',
      body: new URLSearchParams({ ...base, serviceName: service, ip: address, port: String(h.port), metadata: JSON.stringify({ group: 'BLUE' }) }),
    });
    expect(res.status).toBe(200);
  }
  router = new Router({ registry: reg.registry, service: 'bfe', app: 'bfe', fallback: true });
  pub = await listen(http.createServer(router.handle), '127.0.9.100', 0);
  gray = await listen(
    http.createServer((req, res) => router.handle(req, res, 'GREEN')),
    '127.0.9.100',
    0,
  );
});
afterAll(async () => {
  await Promise.all([...[...hosts.values()].map((h) => h.close()), reg.close(), pub.close(), gray.close()]);
});

describe('train sandbox: router, BFE tier and APP services', () => {
  it('names the instance and group of every app in x-graywave-served-by; all BLUE at first, the gray entry falling through to BLUE', async () => {
    const r = await get(pub);
    expect(r.status).toBe(200);
    expect(r.servedBy).toMatch(/^bfe=BLUE@127\.0\.9\.[12],order=BLUE@127\.0\.9\.1[12],account=BLUE@127\.0\.9\.2[12]$/);
    expect(r.body).toMatchObject({ group: 'BLUE', calls: { order: { group: 'BLUE' }, account: { group: 'BLUE' } } });
    expect((await get(gray)).servedBy).toMatch(/^bfe=BLUE@[^,]+,order=BLUE@[^,]+,account=BLUE@[^,]+$/);
  });

  it('a gray request goes to the GREEN instance of each app that has one (the mark travels through the BFE), public requests never do', async () => {
    await label('order-2', 'GREEN');
    const g = await many(gray, 12);
    expect(g.every((r) => r.status === 200)).toBe(true);
    expect(servedBy(g, 'order')).toEqual(new Set(['GREEN@127.0.9.12']));
    expect(servedBy(g, 'bfe')).toEqual(new Set(['BLUE@127.0.9.1', 'BLUE@127.0.9.2']));
    const p = await many(pub, 12);
    expect(servedBy(p, 'order')).toEqual(new Set(['BLUE@127.0.9.11']));
    // Every app with GREEN: the gray entry is GREEN end to end, the public entry BLUE end to end.
    await label('bfe-2', 'GREEN');
    await label('account-1', 'GREEN');
    const all = await many(gray, 10);
    expect(new Set(all.map((r) => r.servedBy))).toEqual(new Set(['bfe=GREEN@127.0.9.2,order=GREEN@127.0.9.12,account=GREEN@127.0.9.21']));
    expect(new Set((await many(pub, 10)).map((r) => r.servedBy))).toEqual(new Set(['bfe=BLUE@127.0.9.1,order=BLUE@127.0.9.11,account=BLUE@127.0.9.22']));
  });

  it('the switchover sends public traffic to GREEN (and is recorded); a weight-0 instance gets nothing', async () => {
    router.switchTo('GREEN');
    expect(router.switches.at(-1)).toMatchObject({ group: 'GREEN' });
    expect(new Set((await many(pub, 6)).map((r) => r.servedBy))).toEqual(new Set(['bfe=GREEN@127.0.9.2,order=GREEN@127.0.9.12,account=GREEN@127.0.9.21']));
    router.switchTo('BLUE');
    await label('order-1', 'BLUE', '0');
    // BLUE order has no routable instance left: the BLUE chain falls through to GREEN order (not to weight 0).
    expect(servedBy(await many(pub, 8), 'order')).toEqual(new Set(['GREEN@127.0.9.12']));
    await label('order-1', 'BLUE', '1');
  });

  it('an instance that stopped before its registration changed costs no request: the call is retried on another', async () => {
    await label('account-1', 'BLUE');
    const stopped = hosts.get('account-2')!;
    await stopped.close();
    const rs = await many(pub, 16);
    expect(rs.map((r) => r.status)).toEqual(Array(16).fill(200));
    expect(servedBy(rs, 'account')).toEqual(new Set(['BLUE@127.0.9.21']));
    // With no instance left that answers, the request fails (502) and says why.
    await hosts.get('account-1')!.close();
    const bad = await get(pub);
    expect(bad.status).toBe(502);
    expect(String(bad.body.error)).toMatch(/^account: 127\.0\.9\.2[12]:\d+: connect ECONNREFUSED/);
  });
});

describe('train traffic summary', () => {
  const rec = (t: number, servedBy?: string, status = 200) => ({ t, ms: 5, status, servedBy });
  const G = 'bfe=GREEN@a,order=GREEN@b,account=GREEN@c';
  const B = 'bfe=BLUE@a,order=BLUE@b,account=BLUE@c';
  const M = 'bfe=GREEN@a,order=BLUE@b,account=GREEN@c';
  const apps = ['bfe', 'order', 'account'];

  it('groups a request by the one group of its whole chain', () => {
    expect(chainGroup(rec(0, G), apps)).toBe('GREEN');
    expect(chainGroup(rec(0, M), apps)).toBe('mixed');
    expect(chainGroup(rec(0, M), ['bfe', 'account'])).toBe('GREEN');
    expect(chainGroup(rec(0, 'bfe=GREEN@a,order=GREEN@b'), apps)).toBe('none');
    expect(chainGroup(rec(0, G, 502), apps)).toBe('none');
    expect(chainGroup({ t: 0, ms: 5 }, apps)).toBe('none');
  });

  it('splits gray traffic at the canary wave and public traffic at the switchover', () => {
    const t = trainTraffic(
      {
        public: [rec(1, B), rec(2, B), rec(5, G), rec(6, G), rec(7, undefined, 503)],
        gray: [rec(1, B), rec(2, M), rec(3, G), rec(4, M), rec(5, G)],
        switches: [{ at: 5, group: 'GREEN' }],
      },
      { group: 'GREEN', apps, canaryDoneAt: 3 },
    );
    expect(t).toEqual({
      publicRequests: 5,
      grayRequests: 5,
      failedRequests: 1,
      switchedAt: 5,
      publicBeforeSwitchover: { BLUE: 2 },
      publicAfterSwitchover: { GREEN: 2, none: 1 },
      grayAfterCanary: { requests: 3, greenOnly: 2, firstOther: M },
    });
    const never = trainTraffic({ public: [rec(1, B)], gray: [rec(1, B)], switches: [{ at: 0, group: 'BLUE' }] }, { group: 'GREEN', apps });
    expect(never).toMatchObject({ switchedAt: undefined, publicBeforeSwitchover: { BLUE: 1 }, publicAfterSwitchover: {} });
    expect(never.grayAfterCanary).toBeUndefined();
  });
});
