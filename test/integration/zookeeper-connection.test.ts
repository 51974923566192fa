import YAML from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { dubboZookeeper } from '../../src/providers/registry/dubbo-zookeeper.js';
import type { Provider } from '../../src/providers/types.js';
import { Zk } from '../../src/providers/zk.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';
import { FOREIGN_CONFIGURATORS, ORDER_HOSTS, SeedReexporter, seedDubbo } from './helpers/dubbo-seed.js';
import { ZooKeeperServer, hasZookeeper } from './helpers/zookeeper.js';

const has = hasZookeeper();
const RULE = '/dubbo/config/dubbo/order-service.configurators';

/** ZooKeeper going away under a drain: the step fails as retryable (or is retried) and the rule is never half-written. */
describe.skipIf(!has)('ZooKeeper connection loss', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  let p: Provider;
  const ctx = (i: number) => makeContext({ host: makeHost(`order-${i + 1}`, ORDER_HOSTS[i]!) });
  const ruleText = async () => (await zk.get(RULE))?.data.toString('utf8');

  beforeAll(async () => {
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 3000, label: 'test' });
    await seedDubbo(zk);
    p = dubboZookeeper.create(
      dubboZookeeper.options.parse({ connect: server.connect, application: 'order-service', connectTimeout: '1500ms', sessionTimeout: '4s' }),
      makeEnv(),
    ) as Provider;
  });
  afterAll(async () => {
    await p?.close?.();
    await zk?.close();
    await server?.stop();
  });
  afterEach(() => vi.restoreAllMocks());

  it('ZooKeeper killed right before the rule write: drain fails retryable, the rule is untouched, the retry after restart drains', async () => {
    expect((await p.isDrained(ctx(0))).done).toBe(false); // the provider's session is open now
    const real = Zk.prototype.multi;
    vi.spyOn(Zk.prototype, 'multi').mockImplementationOnce(async function (this: Zk, ...args) {
      await server.kill();
      return real.apply(this, args);
    });
    const err = await p.drain(ctx(0)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(true);
    expect((err as Error).message).toMatch(/ZooKeeper 127\.0\.0\.1:\d+/);
    // While ZooKeeper is down: not drained (unknown), never a fake "done".
    expect(await p.isDrained(ctx(0))).toMatchObject({ done: false, observed: expect.stringContaining('cannot read ZooKeeper') });
    await server.restart();
    expect(await ruleText()).toBe(FOREIGN_CONFIGURATORS);
    // The engine's retry: the same provider instance reconnects by itself.
    const saved = await p.drain(ctx(0));
    await new SeedReexporter(zk).pass(); // the provider applies the rule (Dubbo 2.7+ re-export)
    expect((await p.isDrained(ctx(0))).done).toBe(true);
    await p.restore(ctx(0), saved);
    expect(await ruleText()).toBe(FOREIGN_CONFIGURATORS);
  });

  it('ZooKeeper restarted while the write is in flight: the rule is either the old or the complete new one, and a retry converges', async () => {
    const real = Zk.prototype.multi;
    vi.spyOn(Zk.prototype, 'multi').mockImplementationOnce(async function (this: Zk, ...args) {
      const write = real.apply(this, args);
      write.catch(() => undefined); // observed below through drain's own result
      await server.kill();
      return write;
    });
    const first = await p.drain(ctx(1)).then(
      (v) => ({ ok: true as const, v }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    if (!first.ok) expect((first.e as ProviderError).retryable).toBe(true);
    await server.restart();
    const text = (await ruleText())!;
    const configs = YAML.parse(text.replace(/^# graywave-baseline: .*\n/, '')).configs as { addresses: string[] }[];
    // Old rule (1 item) or complete new rule (2 items), nothing in between.
    expect(text === FOREIGN_CONFIGURATORS || configs.length === 2).toBe(true);
    const saved = await p.drain(ctx(1));
    const after = YAML.parse((await ruleText())!.replace(/^# graywave-baseline: .*\n/, '')).configs as { addresses: string[] }[];
    expect(after.map((c) => c.addresses[0])).toEqual(['127.0.0.99:20880', '127.0.0.12:20880']);
    await p.restore(ctx(1), saved);
    expect(await ruleText()).toBe(FOREIGN_CONFIGURATORS);
  });

  it('ZooKeeper down for good: drain fails within the connect timeout with a message naming the ensemble', async () => {
    await server.kill();
    const t0 = Date.now();
    const err = await p.drain(ctx(2)).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((err as ProviderError).retryable).toBe(true);
    expect((err as Error).message).toMatch(/dubbo-zookeeper \(order-service\).*ZooKeeper 127\.0\.0\.1:\d+/);
    await server.restart();
  });
});
