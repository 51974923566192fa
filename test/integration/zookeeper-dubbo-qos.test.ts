import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dubboQos } from '../../src/providers/registry/dubbo-qos.js';
import { javaUrlEncode } from '../../src/providers/registry/dubbo-zookeeper.js';
import type { Provider } from '../../src/providers/types.js';
import { Zk } from '../../src/providers/zk.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';
import { waitFor } from '../helpers/wait.js';
import { startDubboApp, type DubboApp } from './helpers/dubbo-app.js';
import { mk, providerUrl } from './helpers/dubbo-seed.js';
import { ZooKeeperServer, hasZookeeper, removeTree } from './helpers/zookeeper.js';

/*
 * dubbo-qos against the Dubbo-shaped test application (QoS HTTP commands as dubbo-qos answers them) and a real
 * ZooKeeper: drained / restored are read from the registry, never from the QoS answer.
 * The test contexts use the local transport, so `via: host` runs curl here against 127.0.0.1 like it would on a host.
 */

const has = hasZookeeper();
const ORDER = 'com.acme.order.OrderService';
const REFUND = 'com.acme.order.RefundService';
const SERVICES = [{ iface: ORDER, group: 'online', version: '1.0.0' }, { iface: REFUND }];

describe.skipIf(!has)('dubbo-qos against the Dubbo-shaped app and a real ZooKeeper', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  const apps: DubboApp[] = [];
  const providers: Provider[] = [];

  const qos = (app: DubboApp, extra: Record<string, unknown> = {}) => {
    const p = dubboQos.create(
      dubboQos.options.parse({ connect: server.connect, application: 'order-service', connectTimeout: '3s', qosPort: app.qosPort, ...extra }),
      makeEnv(),
    ) as Provider;
    providers.push(p);
    return p;
  };
  const start = async (host: string, extra: Partial<Parameters<typeof startDubboApp>[0]> = {}) => {
    const a = await startDubboApp({ zk: server.connect, app: 'order-service', host, port: 20880, services: SERVICES, ...extra });
    apps.push(a);
    return a;
  };
  /** Polls the check until done (or `timeoutMs`, then the last answer: a test that expects "not done" says how long). */
  const poll = async (p: Provider, fn: 'isDrained' | 'isRestored', ctx: ReturnType<typeof makeContext>, saved?: unknown, timeoutMs = 30_000) => {
    let last: Awaited<ReturnType<Provider['isDrained']>> | undefined;
    const check = async () => (last = fn === 'isDrained' ? await p.isDrained(ctx) : await p.isRestored!(ctx, saved)).done;
    await waitFor(check, `${fn} to be done`, { timeoutMs }).catch(() => undefined);
    return last!;
  };

  beforeAll(async () => {
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 3000, label: 'test' });
  });
  afterAll(async () => {
    for (const a of apps) await a.stop();
    await zk?.close();
    await server?.stop();
  });
  afterEach(async () => {
    for (const p of providers.splice(0)) await p.close?.();
  });

  it('via host (curl to 127.0.0.1): offline takes both levels out of the registry, online brings them back', async () => {
    const app = await start('127.0.0.31');
    const p = qos(app);
    const ctx = makeContext({ host: makeHost('a', '127.0.0.31') });
    const first = await p.isDrained(ctx);
    expect(first.done).toBe(false);
    expect(first.observed).toMatch(
      /interface-level .*online\/com\.acme\.order\.OrderService:1\.0\.0@127\.0\.0\.31:20880.*application-level \/services\/order-service\/127\.0\.0\.31:20880/,
    );
    const saved = (await p.drain(ctx)) as { before: string[] };
    expect(saved.before).toEqual(['app 127.0.0.31:20880', `iface ${REFUND}@127.0.0.31:20880`, `iface online/${ORDER}:1.0.0@127.0.0.31:20880`]);
    expect(await poll(p, 'isDrained', ctx)).toMatchObject({ done: true });
    expect(await zk.children('/services/order-service')).not.toContain('127.0.0.31:20880');
    expect((await p.isRestored!(ctx, saved)).done).toBe(false);
    await p.restore(ctx, saved);
    expect(await poll(p, 'isRestored', ctx, saved)).toMatchObject({ done: true });
    expect((await p.isDrained(ctx)).done).toBe(false);
  });

  it('offlineApp leaves the interface-level URLs: not drained, and it says why', async () => {
    const app = await start('127.0.0.32');
    const p = qos(app, { command: 'offlineApp' });
    const ctx = makeContext({ host: makeHost('b', '127.0.0.32') });
    const saved = await p.drain(ctx);
    // The application-level instance goes ...
    await waitFor(async () => !((await zk.children('/services/order-service')) ?? []).includes('127.0.0.32:20880'), 'the application-level instance to go');
    // ... but interface-level consumers still route to the host.
    const r = await p.isDrained(ctx);
    expect(r.done).toBe(false);
    expect(r.observed).toMatch(/offlineApp takes only the application-level instance down/);
    await p.restore(ctx, saved);
    expect(await poll(p, 'isRestored', ctx, saved)).toMatchObject({ done: true });
  });

  it('via direct to an IPv6 loopback provider (::1, registered as 0:0:0:0:0:0:0:1) with a service pattern, interface-level only', async () => {
    const app = await start('0:0:0:0:0:0:0:1', { qosHost: '::1', registerMode: 'interface' });
    const p = qos(app, { via: 'direct', services: `online/${ORDER.replace(/\./g, '\\.')}:1\\.0\\.0` });
    const ctx = makeContext({ host: makeHost('v6', '::1') });
    const saved = await p.drain(ctx);
    expect(await poll(p, 'isDrained', ctx)).toMatchObject({ done: true });
    // Only the matching service went; RefundService is still registered.
    const refund = (await zk.children(`/dubbo/${javaUrlEncode(REFUND)}/providers`)) ?? [];
    expect(refund.some((n) => decodeURIComponent(n).startsWith('dubbo://0:0:0:0:0:0:0:1:20880/'))).toBe(true);
    await p.restore(ctx, saved);
    expect(await poll(p, 'isRestored', ctx, saved)).toMatchObject({ done: true });
  });

  it('the QoS answer alone never counts: OK from the app while a registration of the host stays is not drained', async () => {
    const app = await start('127.0.0.33', { registerMode: 'interface' });
    // Another registration from the same host and application (a second protocol the app's QoS does not manage).
    const leftover = `/dubbo/${javaUrlEncode(REFUND)}/providers/${javaUrlEncode(providerUrl('127.0.0.33', 20881, REFUND, 'order-service'))}`;
    await mk(zk, leftover);
    try {
      const p = qos(app);
      const ctx = makeContext({ host: makeHost('c', '127.0.0.33') });
      const saved = await p.drain(ctx);
      const r = await poll(p, 'isDrained', ctx, undefined, 3000); // still not drained 3 s on
      expect(r.done).toBe(false);
      expect(r.observed).toContain('127.0.0.33:20881');
      await p.restore(ctx, saved);
    } finally {
      await removeTree(zk, leftover);
    }
  });

  it('clear errors: a pattern that matches nothing ("service not found"), nothing registered, QoS port closed', async () => {
    const app = await start('127.0.0.34', { registerMode: 'interface' });
    const ctx = makeContext({ host: makeHost('d', '127.0.0.34') });
    await expect(qos(app, { services: 'com\\.nope\\..*' }).drain(ctx)).rejects.toThrow(/nothing of order-service registered/);
    await expect(qos(app, { services: 'com\\.nope\\..*' }).restore(ctx, { command: 'offline', before: [] })).rejects.toThrow(/service not found for pattern/);
    await expect(qos(app).drain(makeContext({ host: makeHost('x', '127.0.0.35') }))).rejects.toThrow(/nothing of order-service registered from 127\.0\.0\.35/);
    await expect(qos({ ...app, qosPort: 1 }).drain(ctx)).rejects.toThrow(/QoS offline on d \(curl http:\/\/127\.0\.0\.1:1\/offline\): exit 7/);
  });

  it('options are strict', () => {
    expect(dubboQos.options.safeParse({ connect: 'zk', application: 'a', via: 'ssh' }).success).toBe(false);
    expect(dubboQos.options.safeParse({ connect: 'zk', application: 'a', commnd: 'offline' }).success).toBe(false);
    expect(dubboQos.options.parse({ connect: 'zk', application: 'a' })).toMatchObject({
      qosPort: 22222,
      via: 'host',
      command: 'offline',
      root: '/dubbo',
      servicesRoot: '/services',
    });
  });
});
