import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type HostServer } from '../../src/sandbox/host.js';
import { listen, startRegistry, type RunningServer } from '../../src/sandbox/registry.js';
import { Router } from '../../src/sandbox/router.js';
import { waitFor } from '../helpers/wait.js';

/** The sandbox parts in process: host metrics and drain, the registry's Nacos gotchas, the router's weights and groups. */
type Reg = Awaited<ReturnType<typeof startRegistry>>;
let reg: Reg;
const hosts: HostServer[] = [];
let router: Router;
let front: RunningServer;

async function api(method: string, path: string, params: Record<string, string>) {
  const res = await fetch(`${reg.url}${path}?${new URLSearchParams(params)}`, { method });
  return { status: res.status, text: await res.text() };
}
const base = { serviceName: 'svc', groupName: 'DEFAULT_GROUP', namespaceId: 'public', clusterName: 'DEFAULT' };

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  return { status: res.status, body: (await res.json()) as { host?: string; group?: string } };
}

beforeAll(async () => {
  reg = await startRegistry();
  for (const [i, group] of [
    ['1', 'BLUE'],
    ['2', 'BLUE'],
    ['3', 'GREEN'],
  ] as const) {
    const h = await startHost({ name: `h0${i}`, address: '127.0.0.1', port: 0, version: group === 'GREEN' ? '2.0.0' : '1.0.0', group, workMs: [1, 2] });
    hosts.push(h);
    await api('POST', '/nacos/v1/ns/instance', { ...base, ip: '127.0.0.1', port: String(h.port), metadata: JSON.stringify({ group, version: '1' }) });
  }
  router = new Router({ registry: reg.registry, service: 'svc' });
  front = await listen(http.createServer(router.handle), '127.0.0.1', 0);
});
afterAll(async () => {
  await Promise.all([...hosts.map((h) => h.close()), reg.close(), front.close()]);
});

describe('sandbox host', () => {
  it('counts only application requests in flight, and a stuck request keeps it above 0', async () => {
    const h = hosts[0]!;
    const metrics = async () => (await fetch(`${h.url}/metrics`)).text();
    // A request that outlasts any wait here; the test ends it by hanging up (counted out on close, as a finished one).
    const hangUp = new AbortController();
    const slow = fetch(`${h.url}/?ms=60000`, { signal: hangUp.signal }).catch(() => undefined);
    // Only the application request counts: the /metrics scrapes themselves never show up in flight.
    await waitFor(
      async () => /^sandbox_requests_in_flight\{host="h01",version="1.0.0",group="BLUE"\} 1$/m.test(await metrics()),
      'the request in flight in /metrics',
      { timeoutMs: 10_000 },
    );
    hangUp.abort();
    await slow;
    await waitFor(async () => /^sandbox_requests_in_flight\{.*\} 0$/m.test(await metrics()), 'no request in flight once it ended', { timeoutMs: 10_000 });
    await fetch(`${h.url}/_admin/fault`, { method: 'POST', body: JSON.stringify({ stuck: true }) });
    expect(await (await fetch(`${h.url}/metrics`)).text()).toMatch(/^sandbox_requests_in_flight\{.*\} 1$/m);
    await fetch(`${h.url}/_admin/fault`, { method: 'POST', body: JSON.stringify({ stuck: false }) });
  });

  it('suspends and resumes its consumer and scheduler membership', async () => {
    const h = hosts[1]!;
    await fetch(`${h.url}/_admin/consumer/suspend`, { method: 'POST' });
    await fetch(`${h.url}/_admin/scheduler/offline`, { method: 'POST' });
    expect(await (await fetch(`${h.url}/_admin/status`)).json()).toMatchObject({ consumer: 'suspended', scheduler: 'offline' });
    await fetch(`${h.url}/_admin/consumer/resume`, { method: 'POST' });
    await fetch(`${h.url}/_admin/scheduler/online`, { method: 'POST' });
    expect(await (await fetch(`${h.url}/_admin/status`)).json()).toMatchObject({ consumer: 'consuming', scheduler: 'online' });
  });

  it('finishes the request in flight when stopped, and refuses new connections', async () => {
    const h = await startHost({ name: 'hx', address: '127.0.0.1', port: 0, version: '1', group: 'BLUE' });
    const slow = fetch(`${h.url}/?ms=1000`);
    await waitFor(() => h.state.inFlight === 1, 'the request to reach the host', { timeoutMs: 10_000, everyMs: 5 });
    expect(h.state.inFlight).toBe(1); // still in flight as the stop begins (same tick: its timer cannot have fired)
    const closing = h.drainAndClose(30_000);
    // The listener is closed before drainAndClose first waits: a new connection is refused at once.
    await expect(fetch(`${h.url}/`)).rejects.toThrow();
    expect((await slow).status).toBe(200);
    await closing;
  });
});

describe('sandbox registry (Nacos gotchas)', () => {
  it('a PUT replaces weight, enabled and metadata in full; the list hides disabled instances; the override survives re-registration', async () => {
    const port = String(hosts[1]!.port);
    await api('PUT', '/nacos/v1/ns/instance', { ...base, ip: '127.0.0.1', port, enabled: 'false' });
    const list = JSON.parse((await api('GET', '/nacos/v1/ns/instance/list', base)).text) as { hosts: { port: number; metadata: object }[] };
    expect(list.hosts.map((x) => x.port)).not.toContain(Number(port));
    const detail = JSON.parse((await api('GET', '/nacos/v1/ns/instance', { ...base, ip: '127.0.0.1', port })).text);
    expect(detail).not.toHaveProperty('enabled');
    expect(detail.metadata).toEqual({}); // metadata not sent → emptied
    await api('POST', '/nacos/v1/ns/instance', { ...base, ip: '127.0.0.1', port, metadata: JSON.stringify({ group: 'BLUE' }) });
    expect(reg.registry.snapshot('svc').find((i) => i.port === Number(port))).toMatchObject({ effEnabled: false });
    await api('PUT', '/nacos/v1/ns/instance', { ...base, ip: '127.0.0.1', port, enabled: 'true', weight: '1', metadata: JSON.stringify({ group: 'BLUE' }) });
  });

  it('answers 410 to v1 updates in Nacos 3.x mode and accepts the v3 admin API', async () => {
    const r3 = await startRegistry({ nacos3: true });
    try {
      const p = { ...base, ip: '10.0.0.1', port: '80' };
      expect((await fetch(`${r3.url}/nacos/v1/ns/instance?${new URLSearchParams(p)}`, { method: 'POST' })).status).toBe(200);
      expect((await fetch(`${r3.url}/nacos/v1/ns/instance?${new URLSearchParams({ ...p, weight: '0' })}`, { method: 'PUT' })).status).toBe(410);
      const ok = await fetch(`${r3.url}/nacos/v3/admin/ns/instance?${new URLSearchParams({ ...p, weight: '0' })}`, { method: 'PUT' });
      expect(await ok.json()).toEqual({ code: 0, message: 'success', data: 'ok' });
    } finally {
      await r3.close();
    }
  });
});

describe('sandbox router', () => {
  it('spreads public traffic over the default group by weight; weight 0 gets nothing; the gray entry reaches GREEN only', async () => {
    const seen: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const r = await get(front.url);
      seen[r.body.host!] = (seen[r.body.host!] ?? 0) + 1;
    }
    expect(Object.keys(seen).sort()).toEqual(['h01', 'h02']);

    await api('PUT', '/nacos/v1/ns/instance', {
      ...base,
      ip: '127.0.0.1',
      port: String(hosts[0]!.port),
      weight: '0',
      metadata: JSON.stringify({ group: 'BLUE' }),
    });
    for (let i = 0; i < 20; i++) expect((await get(front.url)).body.host).toBe('h02');

    for (let i = 0; i < 10; i++) expect((await get(front.url, { 'x-gray-group': 'GREEN' })).body.host).toBe('h03');
    expect((await get(front.url, { cookie: 'a=b; gray=GREEN' })).body.host).toBe('h03');
    router.defaultGroup = 'GREEN';
    expect((await get(front.url)).body.group).toBe('GREEN');
    router.defaultGroup = 'BLUE';
    expect((await get(front.url, { 'x-gray-group': 'NOPE' })).status).toBe(503);
  });
});
