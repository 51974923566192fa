import YAML from 'yaml';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { dubboZookeeper, javaUrlDecode, javaUrlEncode } from '../../src/providers/registry/dubbo-zookeeper.js';
import type { Provider } from '../../src/providers/types.js';
import { Zk } from '../../src/providers/zk.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';
import { FOREIGN_CONFIGURATORS, FOREIGN_TAG_ROUTER, ORDER_HOSTS, SeedReexporter, mk, seedDubbo } from './helpers/dubbo-seed.js';
import { ZooKeeperServer, dumpTree, hasZookeeper, removeTree } from './helpers/zookeeper.js';

const has = hasZookeeper();
const RULE = '/dubbo/config/dubbo/order-service.configurators';
const TAGS = '/dubbo/config/dubbo/order-service.tag-router';

describe.skipIf(!has)('dubbo-zookeeper against a real ZooKeeper', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  /** The seeded providers re-export like Dubbo 2.7+ providers when a test calls rx.pass() (they applied the rules). */
  let rx: SeedReexporter;
  const providers: Provider[] = [];

  const dubbo = (extra: Record<string, unknown> = {}) => {
    const o = dubboZookeeper.options.parse({ connect: server.connect, application: 'order-service', connectTimeout: '3s', ...extra });
    const p = dubboZookeeper.create(o, makeEnv()) as Provider;
    providers.push(p);
    return p;
  };
  const ctxFor = (i: number, previous?: unknown) => makeContext({ host: makeHost(`order-${i + 1}`, ORDER_HOSTS[i]!), previous });
  const text = async (path: string) => (await zk.get(path))?.data.toString('utf8');

  beforeAll(async () => {
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 3000, label: 'test' });
  });
  afterAll(async () => {
    await zk?.close();
    await server?.stop();
  });
  beforeEach(async () => {
    await removeTree(zk, '/dubbo');
    await seedDubbo(zk);
    // A running fleet has applied the rules already (payment-service's timeout rule is in its registered URLs).
    rx = new SeedReexporter(zk);
    await rx.pass();
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const p of providers.splice(0)) await p.close?.();
  });

  it('config-rule: drain adds one weight-0 item next to the foreign ones, isDrained reads it back, restore leaves the tree byte for byte', async () => {
    const before = await dumpTree(zk);
    const p = dubbo();
    const ctx = ctxFor(0);
    expect((await p.isDrained(ctx)).done).toBe(false);
    const saved = await p.drain(ctx);
    // Strict by default: the rule alone is not enough while the provider's registered URL still says weight 100.
    expect(await p.isDrained(ctx)).toMatchObject({
      done: false,
      observed: expect.stringMatching(/127\.0\.0\.11:20880 .*registered with weight 100 .*has not re-registered/),
    });
    await rx.pass();
    const registered = (await zk.children(`/dubbo/${javaUrlEncode('com.acme.order.RefundService')}/providers`))!
      .map(javaUrlDecode)
      .filter((u) => u.includes('127.0.0.11:'));
    expect(registered).toHaveLength(1);
    expect(registered[0]).toMatch(/[?&]weight=0(&|$)/);
    const rule = YAML.parse((await text(RULE))!);
    expect(rule.configs).toHaveLength(2);
    expect(rule.configs[0]).toEqual({
      addresses: ['127.0.0.99:20880'],
      side: 'provider',
      type: 'balancing',
      enabled: true,
      parameters: { loadbalance: 'leastactive' },
    });
    expect(rule.configs[1]).toEqual({ addresses: ['127.0.0.11:20880'], side: 'provider', parameters: { weight: 0 } });
    expect(await p.isDrained(ctx)).toMatchObject({ done: true });
    // Another host of the same application is not drained by it; the other application's rule is untouched.
    expect((await p.isDrained(ctxFor(1))).done).toBe(false);
    expect(await text('/dubbo/config/dubbo/payment-service.configurators')).toBe(
      before['/dubbo/config/dubbo/payment-service.configurators'] &&
        Buffer.from(before['/dubbo/config/dubbo/payment-service.configurators']!, 'base64').toString(),
    );
    // The journal gets the weight it had before.
    expect(JSON.parse(JSON.stringify(saved))).toMatchObject({
      style: 'config-rule',
      addresses: ['127.0.0.11:20880'],
      before: { '127.0.0.11:20880': { weight: 100, disabled: false } },
    });
    await p.restore(ctx, saved);
    // The provider has not re-exported yet (its URL still says weight=0), but no rule drains it any more: not drained.
    expect(await p.isDrained(ctx)).toMatchObject({
      done: false,
      observed: expect.stringMatching(/^no rule keeps it drained.*127\.0\.0\.11:20880 .*weight 100/),
    });
    await rx.pass();
    expect(await dumpTree(zk)).toEqual(before);
    expect(await text(RULE)).toBe(FOREIGN_CONFIGURATORS);
    expect((await p.isDrained(ctx)).done).toBe(false);
  });

  it('drain is idempotent (resume repeats it) and restore still removes the item', async () => {
    const before = await dumpTree(zk);
    const p = dubbo();
    const first = await p.drain(ctxFor(2));
    // A resume without the saved data (crash after the write, before the journal): the baseline comment proves it is ours.
    const again = await dubbo().drain(ctxFor(2));
    expect(YAML.parse((await text(RULE))!).configs).toHaveLength(2);
    expect(again).toMatchObject({ rules: (first as { rules: unknown }).rules, addresses: ['127.0.0.13:20880'] });
    await p.restore(ctxFor(2), again);
    expect(await dumpTree(zk)).toEqual(before);
  });

  it('a rule created by graywave (none before) is deleted again on restore, with the folders it had to create', async () => {
    await removeTree(zk, '/dubbo/config');
    const before = await dumpTree(zk);
    const p = dubbo();
    const saved = await p.drain(ctxFor(3));
    expect(YAML.parse((await text(RULE))!)).toMatchObject({
      scope: 'application',
      key: 'order-service',
      enabled: true,
      configs: [{ addresses: ['127.0.0.14:20880'] }],
    });
    await p.restore(ctxFor(3), saved);
    expect(await dumpTree(zk)).toEqual(before);
  });

  it('concurrent drains of several hosts all land (version checks, retry on BadVersion) and restores in any order give the original bytes', async () => {
    const before = await dumpTree(zk);
    const idx = [0, 1, 2, 3];
    const ps = idx.map(() => dubbo());
    const saved = await Promise.all(idx.map((i) => ps[i]!.drain(ctxFor(i))));
    const addrs = YAML.parse((await text(RULE))!).configs.flatMap((c: { addresses: string[] }) => c.addresses);
    expect(addrs.sort()).toEqual(['127.0.0.11:20880', '127.0.0.12:20880', '127.0.0.13:20880', '127.0.0.14:20880', '127.0.0.99:20880']);
    await rx.pass();
    for (const i of idx) expect((await ps[i]!.isDrained(ctxFor(i))).done).toBe(true);
    await Promise.all([2, 0, 3, 1].map((i) => ps[i]!.restore(ctxFor(i), saved[i])));
    await rx.pass();
    expect(await dumpTree(zk)).toEqual(before);
  });

  it('a concurrent foreign writer between read and write: our write fails BadVersion, is redone on fresh data, the foreign edit survives restore', async () => {
    const p = dubbo();
    const real = Zk.prototype.multi;
    let raced = false;
    const spy = vi.spyOn(Zk.prototype, 'multi').mockImplementation(async function (this: Zk, ops) {
      if (!raced && ops.some((o) => o.path === RULE)) {
        raced = true;
        const cur = (await zk.get(RULE))!;
        const doc = YAML.parseDocument(cur.data.toString());
        (doc.get('configs') as YAML.YAMLSeq).add(doc.createNode({ addresses: ['127.0.0.98:20880'], side: 'provider', parameters: { timeout: 500 } }));
        await zk.set(RULE, doc.toString(), cur.version);
      }
      return real.call(this, ops);
    });
    const saved = await p.drain(ctxFor(4));
    expect(raced).toBe(true);
    expect(spy.mock.calls.filter((c) => c[0].some((o) => o.path === RULE)).length).toBeGreaterThanOrEqual(2);
    const after = YAML.parse((await text(RULE))!).configs.map((c: { addresses: string[] }) => c.addresses[0]);
    expect(after).toEqual(['127.0.0.99:20880', '127.0.0.98:20880', '127.0.0.15:20880']);
    spy.mockRestore();
    await p.restore(ctxFor(4), saved);
    const restored = YAML.parse((await text(RULE))!);
    expect(restored.configs.map((c: { addresses: string[] }) => c.addresses[0])).toEqual(['127.0.0.99:20880', '127.0.0.98:20880']);
  });

  it('refuses to drain the last provider of a service with weight > 0, unless allowDrainLast', async () => {
    await removeTree(zk, '/dubbo');
    await seedDubbo(zk, { orderHosts: ORDER_HOSTS.slice(0, 2) });
    const before = await dumpTree(zk);
    const p = dubbo();
    const s1 = await p.drain(ctxFor(0));
    const err = await p.drain(ctxFor(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/last provider with weight > 0 of .*com\.acme\.order\.OrderService.*127\.0\.0\.11:20880 weight 0.*allowDrainLast/);
    // Nothing was written for the refused host.
    expect(await text(RULE)).not.toContain('127.0.0.12');
    const forced = await dubbo({ allowDrainLast: true }).drain(ctxFor(1));
    expect(await text(RULE)).toContain('127.0.0.12:20880');
    await p.restore(ctxFor(1), forced);
    await p.restore(ctxFor(0), s1);
    expect(await dumpTree(zk)).toEqual(before);
  });

  it('a provider disabled by a foreign 2.6 override does not count as serving', async () => {
    await removeTree(zk, '/dubbo');
    await seedDubbo(zk, { orderHosts: ORDER_HOSTS.slice(0, 2) });
    for (const iface of ['com.acme.order.OrderService', 'com.acme.order.RefundService']) {
      await mk(
        zk,
        `/dubbo/${javaUrlEncode(iface)}/configurators/${javaUrlEncode(`override://127.0.0.12:20880/${iface}?category=configurators&dynamic=false&enabled=true&disabled=true`)}`,
      );
    }
    await expect(dubbo().drain(ctxFor(0))).rejects.toThrow(/127\.0\.0\.12:20880 disabled/);
  });

  it('override-url style: one override znode per interface, marked as ours; restore deletes exactly those', async () => {
    const before = await dumpTree(zk);
    const p = dubbo({ style: 'override-url' });
    const saved = (await p.drain(ctxFor(5))) as { overrides: string[] };
    expect(saved.overrides).toHaveLength(2);
    const names = saved.overrides.map((o) => javaUrlDecode(o.split('/').pop()!)).sort();
    expect(names).toEqual([
      'override://127.0.0.16:20880/com.acme.order.OrderService?category=configurators&dynamic=false&enabled=true&group=online&version=1.0.0&weight=0',
      'override://127.0.0.16:20880/com.acme.order.RefundService?category=configurators&dynamic=false&enabled=true&weight=0',
    ]);
    for (const o of saved.overrides) expect(await text(o)).toBe('graywave');
    // Interface-level consumers apply 2.6 overrides themselves: drained without waiting for the provider.
    expect(await p.isDrained(ctxFor(5))).toMatchObject({ done: true });
    expect((await p.isDrained(ctxFor(6))).done).toBe(false);
    expect(await p.drain(ctxFor(5))).toMatchObject({ overrides: saved.overrides });
    await p.restore(ctxFor(5), saved);
    expect(await dumpTree(zk)).toEqual(before);
  });

  it('mode disable writes disabled: true and reads it back', async () => {
    const p = dubbo({ mode: 'disable', port: 20880 });
    const saved = await p.drain(ctxFor(6));
    expect(YAML.parse((await text(RULE))!).configs[1]).toEqual({ addresses: ['127.0.0.17:20880'], side: 'provider', parameters: { disabled: true } });
    expect((await p.isDrained(ctxFor(6))).done).toBe(false);
    await rx.pass();
    expect((await p.isDrained(ctxFor(6))).done).toBe(true);
    await p.restore(ctxFor(6), saved);
    expect(await text(RULE)).toBe(FOREIGN_CONFIGURATORS);
  });

  it('drained only once the provider re-registered with weight=0 (the default); awaitProviderUrl: false trusts the rule', async () => {
    const p = dubbo({ interfaces: ['com.acme.order.RefundService'] });
    const ctx = ctxFor(7);
    await p.drain(ctx);
    const check = await p.isDrained(ctx);
    expect(check).toMatchObject({
      done: false,
      observed: expect.stringMatching(/127\.0\.0\.18:20880 com\.acme\.order\.RefundService is registered with weight 100 \(the provider has not re-registered/),
    });
    expect(await dubbo({ awaitProviderUrl: false, interfaces: ['com.acme.order.RefundService'] }).isDrained(ctx)).toMatchObject({ done: true });
    // What a 2.7 provider does when it applies the rule: unregister, register the URL with weight=0.
    const dir = `/dubbo/${javaUrlEncode('com.acme.order.RefundService')}/providers`;
    const [old] = (await zk.children(dir))!.filter((n) => javaUrlDecode(n).includes('127.0.0.18'));
    await zk.remove(`${dir}/${old}`);
    await zk.create(`${dir}/${javaUrlEncode(javaUrlDecode(old!) + '&weight=0')}`);
    expect((await p.isDrained(ctx)).done).toBe(true);
  });

  it('relabel puts the host into the tag next to foreign tags; restoreLabel takes out only what it added', async () => {
    const before = await dumpTree(zk);
    const p = dubbo();
    const s1 = await p.relabel!(ctxFor(0), 'GREEN');
    const s2 = await p.relabel!(ctxFor(1), 'GREEN');
    expect(await p.relabel!(ctxFor(1), 'GREEN')).toMatchObject({ added: [] });
    const rule = YAML.parse((await text(TAGS))!);
    expect(rule.tags).toEqual([
      { name: 'blue', addresses: ['127.0.0.99:20880'] },
      { name: 'GREEN', addresses: ['127.0.0.11:20880', '127.0.0.12:20880'] },
    ]);
    await p.restoreLabel!(ctxFor(0), s1);
    expect(YAML.parse((await text(TAGS))!).tags[1]).toEqual({ name: 'GREEN', addresses: ['127.0.0.12:20880'] });
    await p.restoreLabel!(ctxFor(1), s2);
    expect(await text(TAGS)).toBe(FOREIGN_TAG_ROUTER);
    expect(await dumpTree(zk)).toEqual(before);
  });

  it('a host with no provider registered: drain fails with a clear message, isDrained is not done', async () => {
    const p = dubbo();
    const ctx = makeContext({ host: makeHost('ghost', '127.0.0.77') });
    await expect(p.drain(ctx)).rejects.toThrow(/no provider of application order-service registered from 127\.0\.0\.77 under \/dubbo/);
    expect(await p.isDrained(ctx)).toMatchObject({ done: false, observed: expect.stringContaining('no provider') });
  });

  it('the other application on the same host is never touched', async () => {
    const before = await dumpTree(zk);
    const p = dubbo();
    await p.drain(ctxFor(0));
    const after = await dumpTree(zk);
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
    expect(changed).toEqual([RULE]);
  });
});
