import { afterEach, describe, expect, it, vi } from 'vitest';
import { nacosProviderType, type NacosOptions } from '../../src/providers/registry/nacos.js';
import type { Provider } from '../../src/providers/types.js';
import { startRegistry, type Registry, type RegistryOptions } from '../../src/sandbox/registry.js';
import { makeContext, makeEnv, makeHost, makeStepContext } from '../helpers/contexts.js';
import { restoreAction } from '../../src/actions/provider-steps.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The nacos provider against a local server answering the documented Nacos shapes (shared/reference/protocols.md §2):
 * the sandbox registry, which also records every request so the tests assert what graywave sends.
 */

let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.map((c) => c()));
  closers = [];
});

const host = makeHost('app-01', '10.0.0.5', { vars: { port: 8080 } });

async function setup(opts: RegistryOptions = {}, options: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) {
  const srv = await startRegistry(opts);
  closers.push(srv.close);
  const reg = srv.registry;
  // Two instances of the service: the host's (with metadata to keep) and another host's.
  register(reg, '10.0.0.5', 8080, { version: '1.0.0', zone: 'a' });
  register(reg, '10.0.0.6', 8080, { version: '1.0.0' });
  const parsed = nacosProviderType.options.parse({ url: srv.url, services: ['order-service'], ...options }) as NacosOptions;
  const provider = nacosProviderType.create(parsed, makeEnv({ env })) as Provider;
  reg.requests.length = 0;
  return { reg, provider, url: srv.url };
}

function register(reg: Registry, ip: string, port: number, metadata: Record<string, string>) {
  reg.add({ service: 'DEFAULT_GROUP@@order-service', ip, port, metadata });
}

const inst = (reg: Registry, ip = '10.0.0.5') => reg.snapshot('order-service').find((i) => i.ip === ip)!;

describe('nacos provider, mode weight, v1', () => {
  it('drains with one full update that keeps enabled and metadata, reads back weight 0, restores the weight', async () => {
    const { reg, provider } = await setup({}, { mode: 'weight' });
    const ctx = makeContext({ host });
    const saved = await provider.drain(ctx);
    expect(saved).toEqual({
      instances: [
        { service: 'order-service', ip: '10.0.0.5', port: 8080, cluster: 'DEFAULT', weight: 1, enabled: true, metadata: { version: '1.0.0', zone: 'a' } },
      ],
    });

    const [list, put] = reg.requests;
    expect(list).toMatchObject({
      method: 'GET',
      path: '/nacos/v1/ns/instance/list',
      params: { serviceName: 'order-service', groupName: 'DEFAULT_GROUP', namespaceId: 'public', clusters: 'DEFAULT', healthyOnly: 'false' },
    });
    expect(put).toMatchObject({ method: 'PUT', path: '/nacos/v1/ns/instance' });
    expect(put!.params).toEqual({
      serviceName: 'order-service',
      groupName: 'DEFAULT_GROUP',
      namespaceId: 'public',
      ip: '10.0.0.5',
      port: '8080',
      clusterName: 'DEFAULT',
      ephemeral: 'true',
      weight: '0',
      enabled: 'true',
      metadata: JSON.stringify({ version: '1.0.0', zone: 'a' }),
    });
    expect(inst(reg)).toMatchObject({ effWeight: 0, effEnabled: true, metadata: { version: '1.0.0', zone: 'a' } });
    expect(inst(reg, '10.0.0.6').effWeight).toBe(1);
    expect(await provider.isDrained(ctx)).toMatchObject({ done: true });

    // Relabel in between: restore must keep the group it wrote.
    await provider.relabel!(ctx, 'GREEN');
    expect(await provider.isRestored!(ctx, saved)).toMatchObject({ done: false, observed: 'order-service 10.0.0.5:8080 weight=0 (want 1)' });
    await provider.restore(ctx, saved);
    expect(inst(reg)).toMatchObject({ effWeight: 1, effEnabled: true, metadata: { version: '1.0.0', zone: 'a', group: 'GREEN' } });
    expect(await provider.isDrained(ctx)).toMatchObject({ done: false });
    expect(await provider.isRestored!(ctx, saved)).toMatchObject({ done: true, observed: 'order-service 10.0.0.5:8080 weight=1 enabled=true' });
  });

  it('a repeated drain (resume) keeps the originally saved weight instead of the drained one', async () => {
    const { reg, provider } = await setup({}, { mode: 'weight' });
    const first = await provider.drain(makeContext({ host }));
    const again = await provider.drain(makeContext({ host, previous: first }));
    expect(again).toEqual(first);
    await provider.restore(makeContext({ host }), again);
    expect(inst(reg).effWeight).toBe(1);
  });

  it('relabel writes metadata group and keeps the rest; restoreLabel puts back the old value', async () => {
    const { reg, provider } = await setup();
    const ctx = makeContext({ host });
    const saved = await provider.relabel!(ctx, 'GREEN');
    expect(inst(reg).metadata).toEqual({ version: '1.0.0', zone: 'a', group: 'GREEN' });
    const put = reg.requests.find((r) => r.method === 'PUT')!;
    expect(put.params).toMatchObject({ weight: '1', enabled: 'true' });
    // Repeating is a no-op write.
    reg.requests.length = 0;
    await provider.relabel!(makeContext({ host, previous: saved }), 'GREEN');
    expect(reg.requests.filter((r) => r.method === 'PUT')).toHaveLength(0);
    await provider.restoreLabel!(ctx, saved);
    expect(inst(reg).metadata).toEqual({ version: '1.0.0', zone: 'a' });
  });

  it('fails clearly when the host has no instance, and reports unknown state as not drained', async () => {
    const { provider } = await setup();
    const stranger = makeHost('app-99', '10.0.0.99');
    await expect(provider.drain(makeContext({ host: stranger }))).rejects.toThrow(/no instance of order-service with ip 10\.0\.0\.99/);
    expect(await provider.isDrained(makeContext({ host: stranger }))).toMatchObject({ done: false });
    const dead = nacosProviderType.create(nacosProviderType.options.parse({ url: 'http://127.0.0.1:1', services: ['s'] }), makeEnv()) as Provider;
    const check = await dead.isDrained(makeContext({ host }));
    expect(check.done).toBe(false);
    expect(check.observed).toMatch(/state unknown/);
  });
});

describe('nacos provider, mode disable', () => {
  it('disables, finds the hidden instance by detail on its port, and re-enables explicitly', async () => {
    const { reg, provider } = await setup({}, { mode: 'disable', port: '{{host.vars.port}}' });
    const ctx = makeContext({ host });
    const saved = await provider.drain(ctx);
    expect(inst(reg)).toMatchObject({ effEnabled: false, effWeight: 1 });
    reg.requests.length = 0;
    expect(await provider.isDrained(ctx)).toMatchObject({ done: true, observed: 'order-service 10.0.0.5:8080 enabled=false' });
    // The list hides it, so the detail call (v1 names the cluster `cluster`) tells it still exists.
    expect(reg.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /nacos/v1/ns/instance/list', 'GET /nacos/v1/ns/instance']);
    expect(reg.requests[1]!.params).toMatchObject({ ip: '10.0.0.5', port: '8080', cluster: 'DEFAULT', serviceName: 'order-service' });
    await provider.restore(ctx, saved);
    expect(inst(reg)).toMatchObject({ effEnabled: true, effWeight: 1 });
    const put = reg.requests.find((r) => r.method === 'PUT')!;
    expect(put.params).toMatchObject({ enabled: 'true', weight: '1', metadata: JSON.stringify({ version: '1.0.0', zone: 'a' }) });
  });

  it('v2 uses the Result envelope paths', async () => {
    const { reg, provider } = await setup({}, { mode: 'disable', apiVersion: 'v2' });
    await provider.drain(makeContext({ host }));
    expect(reg.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /nacos/v2/ns/instance/list', 'PUT /nacos/v2/ns/instance']);
    expect(await provider.isDrained(makeContext({ host }))).toMatchObject({ done: true });
  });
});

describe('nacos provider against Nacos 3.x and with auth', () => {
  it('switches to /nacos/v3/admin after HTTP 410 and keeps using it', async () => {
    const { reg, provider } = await setup({ nacos3: true }, { mode: 'weight' });
    const ctx = makeContext({ host });
    const saved = await provider.drain(ctx);
    expect(inst(reg).effWeight).toBe(0);
    const paths = reg.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual(['GET /nacos/v1/ns/instance/list', 'PUT /nacos/v1/ns/instance', 'PUT /nacos/v3/admin/ns/instance']);
    expect(ctx.lines.join('\n')).toMatch(/HTTP 410.*v3\/admin/);
    reg.requests.length = 0;
    await provider.restore(ctx, saved);
    expect(reg.requests.every((r) => r.path.startsWith('/nacos/v3/admin/'))).toBe(true);
    expect(inst(reg).effWeight).toBe(1);
  });

  it('logs in with the secret credentials, sends accessToken, keeps the token out of logs and errors', async () => {
    const { reg, provider } = await setup(
      { auth: { username: 'nacos', password: 's3cret-pw' } },
      { mode: 'weight', username: { env: 'NACOS_USER' }, password: { env: 'NACOS_PASSWORD' } },
      { NACOS_USER: 'nacos', NACOS_PASSWORD: 's3cret-pw' },
    );
    const ctx = makeContext({ host });
    await provider.drain(ctx);
    const [login, list] = reg.requests;
    expect(login).toMatchObject({ method: 'POST', path: '/nacos/v1/auth/login', params: { username: 'nacos', password: 's3cret-pw' } });
    expect(list!.params.accessToken).toMatch(/.{20,}/);
    const token = list!.params.accessToken!;
    expect(ctx.lines.join('\n')).not.toContain(token);
    expect(ctx.lines.join('\n')).not.toContain('s3cret-pw');
    // One login serves later calls while the token is fresh.
    await provider.isDrained(ctx);
    expect(reg.requests.filter((r) => r.path.endsWith('/login'))).toHaveLength(1);
  });

  it('logs in again before the token expires', async () => {
    const { reg, provider } = await setup(
      { auth: { username: 'nacos', password: 'pw-123', tokenTtlSeconds: 1 } },
      { mode: 'weight', username: 'nacos', password: { env: 'NACOS_PASSWORD' } },
      { NACOS_PASSWORD: 'pw-123' },
    );
    const ctx = makeContext({ host });
    // Only Date is faked (client and server read it; the sockets run for real): 900 ms later, exactly, the token
    // still has 100 ms to live, so a second login can only be the client's own refresh, never a retry after a 403.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      await provider.isDrained(ctx);
      vi.setSystemTime(Date.now() + 900);
      expect(await provider.isDrained(ctx)).toMatchObject({ done: false, observed: expect.stringContaining('weight=1') });
    } finally {
      vi.useRealTimers();
    }
    expect(reg.requests.map((r) => r.path.replace(/.*\//, ''))).toEqual(['login', 'list', 'login', 'list']);
  });

  it('a wrong password fails without showing it', async () => {
    const { provider } = await setup({ auth: { username: 'nacos', password: 'right-pw' } }, { username: 'nacos', password: { env: 'P' } }, { P: 'wrong-pw' });
    const err = await provider.drain(makeContext({ host })).catch((e: Error) => e);
    expect(String(err)).toMatch(/login as nacos failed: HTTP 403/);
    expect(String(err)).not.toContain('wrong-pw');
  });

  it('rejects unknown options and a user without a password', () => {
    expect(nacosProviderType.options.safeParse({ url: 'http://n:8848', services: ['s'], weigth: 0 }).success).toBe(false);
    expect(nacosProviderType.options.safeParse({ url: 'http://n:8848', services: ['s'], username: 'u' }).success).toBe(false);
    expect(nacosProviderType.options.safeParse({ url: 'http://n:8848', services: [] }).success).toBe(false);
  });
});

describe('nacos provider against Nacos 2.x instance metadata (overrides outlive the instance)', () => {
  const key = 'public|DEFAULT_GROUP@@order-service|10.0.0.5#8080#DEFAULT';
  /** The app on the host restarts: it deregisters and registers again with its own data (weight 1, its metadata). */
  async function restart(url: string, metadata: Record<string, string>) {
    const q = (extra: Record<string, string>) => new URLSearchParams({ serviceName: 'order-service', ip: '10.0.0.5', port: '8080', ...extra });
    expect((await fetch(`${url}/nacos/v1/ns/instance?${q({})}`, { method: 'DELETE' })).status).toBe(200);
    expect((await fetch(`${url}/nacos/v1/ns/instance?${q({ weight: '1', metadata: JSON.stringify(metadata) })}`, { method: 'POST' })).status).toBe(200);
  }

  it('a re-registered instance comes back at weight 0 with the drain-time metadata; restore puts back exactly the weight and metadata it had, isRestored checks both', async () => {
    const { reg, provider, url } = await setup({ nacos2: true }, { mode: 'weight' });
    // The host had weight 5 set through the API before the release (an operator's choice): that is what comes back.
    await fetch(
      `${url}/nacos/v1/ns/instance?${new URLSearchParams({ serviceName: 'order-service', ip: '10.0.0.5', port: '8080', weight: '5', metadata: JSON.stringify({ version: '1.0.0', zone: 'a' }) })}`,
      { method: 'PUT' },
    );
    const ctx = makeContext({ host });
    const saved = await provider.drain(ctx);
    expect(inst(reg).effWeight).toBe(0);

    await restart(url, { version: '2.0.0', build: '77' });
    // Nacos 2.x: the update API's values outlive the deregistration: back at weight 0, drain-time metadata laid over.
    expect(reg.instances.get(key)).toMatchObject({ weight: 1, metadata: { version: '2.0.0', build: '77' } });
    expect(inst(reg)).toMatchObject({ effWeight: 0, metadata: { version: '1.0.0', zone: 'a', build: '77' } });
    expect(await provider.isRestored!(ctx, saved)).toMatchObject({ done: false, observed: expect.stringContaining('weight=0 (want 5)') });

    await provider.relabel!(ctx, 'GREEN');
    await provider.restore(ctx, saved);
    expect(inst(reg)).toMatchObject({ effWeight: 5, effEnabled: true, metadata: { version: '1.0.0', zone: 'a', build: '77', group: 'GREEN' } });
    expect(await provider.isRestored!(ctx, saved)).toMatchObject({ done: true, observed: 'order-service 10.0.0.5:8080 weight=5 enabled=true' });

    // Someone rewrites the metadata through the API afterwards, dropping a key the host had: isRestored says so.
    await fetch(
      `${url}/nacos/v1/ns/instance?${new URLSearchParams({ serviceName: 'order-service', ip: '10.0.0.5', port: '8080', weight: '5', metadata: JSON.stringify({ group: 'GREEN' }) })}`,
      { method: 'PUT' },
    );
    expect(inst(reg).metadata).toEqual({ version: '2.0.0', build: '77', group: 'GREEN' });
    expect(await provider.isRestored!(ctx, saved)).toEqual({ done: false, observed: 'order-service 10.0.0.5:8080 metadata zone missing (had "a")' });
    // Restore again puts it back.
    await provider.restore(ctx, saved);
    expect(inst(reg).metadata).toEqual({ version: '2.0.0', build: '77', zone: 'a', group: 'GREEN' });
    expect(await provider.isRestored!(ctx, saved)).toMatchObject({ done: true });
  });

  it('the restore step waits for the restarted instance to register again, then confirms it (and fails when it never does)', async () => {
    const { reg, provider, url } = await setup({ nacos2: true }, { mode: 'disable', port: 8080 });
    const saved = await provider.drain(makeContext({ host }));
    const step = makeStepContext({ host, providers: { reg: provider } });
    step.savedOf = (action, name) => (action === 'drain' && name === 'reg' ? saved : undefined);
    // Deregistered during the deploy; it registers again a little later.
    reg.instances.delete(key);
    // It registers again once the step has seen it missing.
    const notYet = () => step.progressLines.some((l) => /instance is not registered \(yet\)/.test(l));
    const restarted = waitFor(notYet, 'the step to see the instance missing').then(() => restart(url, { version: '2.0.0' }));
    await restoreAction.do(step, restoreAction.params.parse({ provider: 'reg', restoreTimeout: '30s' }));
    await restarted;
    expect(inst(reg)).toMatchObject({ effEnabled: true, effWeight: 1 });

    // Never comes back: the step fails within its restoreTimeout and says why.
    reg.instances.delete(key);
    const t0 = Date.now();
    const err = await restoreAction.do(step, restoreAction.params.parse({ provider: 'reg', restoreTimeout: '1500ms' })).catch((e: Error) => e);
    expect(String(err)).toMatch(/instance is not registered \(yet\)/);
    expect(Date.now() - t0).toBeLessThan(15_000); // generous: bounded by its restoreTimeout (1.5 s), not the 30 s before
  });

  it('an override left by a deregistered instance expires (expired-metadata cleaner): a late re-registration comes back with its own values', async () => {
    const { reg, provider, url } = await setup({ nacos2: true, expiredMetadataMs: 200 }, { mode: 'weight' });
    await provider.drain(makeContext({ host }));
    await fetch(`${url}/nacos/v1/ns/instance?${new URLSearchParams({ serviceName: 'order-service', ip: '10.0.0.5', port: '8080' })}`, { method: 'DELETE' });
    // The cleaner's clock (Date) moves past the 200 ms expiry at once instead of the test sleeping through it.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      vi.setSystemTime(Date.now() + 201);
      await restart(url, { version: '2.0.0' });
    } finally {
      vi.useRealTimers();
    }
    expect(inst(reg)).toMatchObject({ effWeight: 1, metadata: { version: '2.0.0' } });
  });
});
