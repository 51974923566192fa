import YAML from 'yaml';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dubboZookeeper, javaUrlEncode } from '../../src/providers/registry/dubbo-zookeeper.js';
import type { Provider } from '../../src/providers/types.js';
import { Zk } from '../../src/providers/zk.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';
import { waitFor } from '../helpers/wait.js';
import { startDubboApp, type DubboApp } from './helpers/dubbo-app.js';
import { SeedReexporter, mk, providerUrl } from './helpers/dubbo-seed.js';
import { ZooKeeperServer, dumpTree, hasZookeeper, removeTree } from './helpers/zookeeper.js';

/*
 * Dubbo's rule precedence against a real ZooKeeper, with providers registered by the Dubbo-shaped test application
 * (interface level and Dubbo 3 application level, IPv4, IPv6 loopback as Dubbo writes it, a host name).
 */

const has = hasZookeeper();
const CFG = '/dubbo/config/dubbo';
const APP_RULE = `${CFG}/order-service.configurators`;
const ORDER = 'com.acme.order.OrderService';
const REFUND = 'com.acme.order.RefundService';
// DynamicConfiguration.getRuleKey = URL.getColonSeparatedKey: interface:version:group
const SVC_RULE = `${CFG}/${ORDER}:1.0.0:online.configurators`;
const SERVICES = [{ iface: ORDER, group: 'online', version: '1.0.0' }, { iface: REFUND }];

describe.skipIf(!has)('dubbo-zookeeper: Dubbo rule precedence against a real ZooKeeper and the Dubbo-shaped app', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  const apps: DubboApp[] = [];
  const providers: Provider[] = [];

  const dubbo = (extra: Record<string, unknown> = {}) => {
    const p = dubboZookeeper.create(
      dubboZookeeper.options.parse({ connect: server.connect, application: 'order-service', connectTimeout: '3s', ...extra }),
      makeEnv(),
    ) as Provider;
    providers.push(p);
    return p;
  };
  const text = async (path: string) => (await zk.get(path))?.data.toString('utf8');
  /** The providers apply their rules now (re-export), as a running Dubbo 2.7+ provider does within milliseconds. */
  const sync = async (...more: DubboApp[]) => {
    await Promise.all([...apps, ...more].map((a) => a.sync()));
  };
  /** The tree without the MetadataInfo revisions (Dubbo's metadata report keeps old revisions too). */
  const tree = async (root = '/') => Object.fromEntries(Object.entries(await dumpTree(zk, root)).filter(([k]) => !k.startsWith('/dubbo/metadata')));
  const waitRegistered = async (n: number) => {
    await waitFor(async () => ((await zk.children('/services/order-service')) ?? []).length >= n, `${n} test apps to register`);
  };

  beforeAll(async () => {
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 3000, label: 'test' });
    // Three providers of order-service: IPv4, IPv6 loopback (Dubbo writes it in full, no brackets), another IPv4.
    for (const host of ['127.0.0.11', '0:0:0:0:0:0:0:1', '127.0.0.12']) {
      apps.push(
        await startDubboApp({ zk: server.connect, app: 'order-service', host, port: 20880, services: SERVICES, reexport: 'on-sync', metadataType: 'remote' }),
      );
    }
    await waitRegistered(3);
  }, 60_000);
  afterAll(async () => {
    for (const a of apps) await a.stop();
    await zk?.close();
    await server?.stop();
  });
  beforeEach(async () => {
    await removeTree(zk, '/dubbo/config');
    await sync();
  });
  afterEach(async () => {
    for (const p of providers.splice(0)) await p.close?.();
  });

  it('IPv6 loopback: a host given as ::1 finds 0:0:0:0:0:0:0:1 (interface and application level), drains it, restore leaves the tree as it was', async () => {
    const before = await tree();
    const p = dubbo();
    const ctx = makeContext({ host: makeHost('v6', '::1') });
    expect((await p.isDrained(ctx)).done).toBe(false);
    const saved = (await p.drain(ctx)) as { addresses: string[] };
    expect(saved.addresses).toEqual(['0:0:0:0:0:0:0:1:20880']);
    expect(YAML.parse((await text(APP_RULE))!.replace(/^#.*\n/, '')).configs).toEqual([
      { addresses: ['0:0:0:0:0:0:0:1:20880'], side: 'provider', parameters: { weight: 0 } },
    ]);
    // Not before the provider applied it: its registered URL and its MetadataInfo still say weight 100.
    const early = await p.isDrained(ctx);
    expect(early.done).toBe(false);
    expect(early.observed).toMatch(/0:0:0:0:0:0:0:1:20880 .*registered with weight 100/);
    expect(early.observed).toMatch(/at application level: weight 100 in \/dubbo\/metadata\/order-service\//);
    await sync();
    const drained = await p.isDrained(ctx);
    expect(drained).toMatchObject({ done: true });
    expect(drained.observed).toMatch(/application-level/);
    // The other hosts are untouched.
    expect((await p.isDrained(makeContext({ host: makeHost('a', '127.0.0.11') }))).done).toBe(false);
    expect((await p.isRestored!(ctx, saved)).done).toBe(false);
    await p.restore(ctx, saved);
    await sync();
    expect(await p.isRestored!(ctx, saved)).toMatchObject({ done: true });
    expect(await tree()).toEqual(before);
  });

  it('isRegistered (preflight): finds the host at interface and application level by address and aliases; an unregistered host is not registered', async () => {
    const p = dubbo();
    const v6 = await p.isRegistered!(makeContext({ host: makeHost('v6', '::1') }));
    expect(v6).toMatchObject({ done: true });
    expect(v6.observed).toBe('0:0:0:0:0:0:0:1:20880 registered: 2 services at interface level, 1 application-level instance');
    const by = await p.isRegistered!(makeContext({ host: makeHost('b', '10.9.9.9', { aliases: ['127.0.0.12'] }) }));
    expect(by).toMatchObject({ done: true, observed: expect.stringMatching(/^127\.0\.0\.12:20880 registered/) });
    const none = await p.isRegistered!(makeContext({ host: makeHost('x', '127.0.0.99') }));
    expect(none.done).toBe(false);
    expect(none.observed).toMatch(/no provider of application order-service registered from 127\.0\.0\.99 .*aliases:/);
    // Another application's providers on the same host do not count; nor does a port the playbook does not drain.
    expect((await dubbo({ application: 'other-service' }).isRegistered!(makeContext({ host: makeHost('a', '127.0.0.11') }))).done).toBe(false);
    expect((await dubbo({ port: 20881 }).isRegistered!(makeContext({ host: makeHost('a', '127.0.0.11') }))).done).toBe(false);
    // Unknown is never registered.
    const down = dubbo({ connect: '127.0.0.1:1', connectTimeout: '300ms' });
    expect(await down.isRegistered!(makeContext({ host: makeHost('a', '127.0.0.11') }))).toMatchObject({
      done: false,
      observed: expect.stringMatching(/^cannot read ZooKeeper/),
    });
  });

  it('a service-scope rule (weight 200 for the address) beats the application rule: isDrained says so; drain adds its item to the service rule too and restore takes out only those', async () => {
    const foreign = `configVersion: v2.7\nscope: service\nkey: online/${ORDER}:1.0.0\nenabled: true\nconfigs:\n- addresses: ["127.0.0.11:20880"]\n  side: provider\n  parameters: {weight: 200}\n`;
    await mk(zk, SVC_RULE, foreign);
    const ctx = makeContext({ host: makeHost('a', '127.0.0.11') });
    // What graywave used to write alone: weight 0 in the application rule. Dubbo applies the service rule after it.
    await mk(
      zk,
      APP_RULE,
      `configVersion: v2.7\nscope: application\nkey: order-service\nenabled: true\nconfigs:\n- addresses: ["127.0.0.11:20880"]\n  side: provider\n  parameters: {weight: 0}\n`,
    );
    const p = dubbo();
    const r = await p.isDrained(ctx);
    expect(r.done).toBe(false);
    expect(r.observed).toContain(`online/${ORDER}:1.0.0`);
    expect(r.observed).toContain('weight 200');
    expect(r.observed).toContain(SVC_RULE);
    await removeTree(zk, APP_RULE);

    await sync();
    const before = await tree();
    const saved = (await p.drain(ctx)) as { rules: { path: string }[] };
    expect(saved.rules.map((e) => e.path)).toEqual([APP_RULE, SVC_RULE]);
    const svc = YAML.parse((await text(SVC_RULE))!.replace(/^#.*\n/, ''));
    expect(svc.configs).toEqual([
      { addresses: ['127.0.0.11:20880'], side: 'provider', parameters: { weight: 200 } },
      { addresses: ['127.0.0.11:20880'], side: 'provider', parameters: { weight: 0 } },
    ]);
    await sync();
    expect(await p.isDrained(ctx)).toMatchObject({ done: true });
    await p.restore(ctx, saved);
    await sync();
    expect(await tree()).toEqual(before);
    expect(await text(SVC_RULE)).toBe(foreign);
  });

  it('a rule graywave cannot beat (consumer-side item with providerAddresses; 2.6 override re-applied by consumers): drain refuses, naming it, and writes nothing', async () => {
    await mk(
      zk,
      SVC_RULE,
      `configVersion: v2.7\nscope: service\nkey: online/${ORDER}:1.0.0\nenabled: true\nconfigs:\n- addresses: ["0.0.0.0"]\n  providerAddresses: ["127.0.0.11:20880"]\n  side: consumer\n  parameters: {weight: 100}\n`,
    );
    const ctx = makeContext({ host: makeHost('a', '127.0.0.11') });
    const before = await dumpTree(zk);
    await expect(dubbo().drain(ctx)).rejects.toThrow(
      new RegExp(`refusing to drain a: .*${SVC_RULE.replace(/[.]/g, '\\.')} configs\\[0\\] \\(side: consumer, weight 100\\)`),
    );
    expect(await dumpTree(zk)).toEqual(before);
    await removeTree(zk, SVC_RULE);

    const override = `/dubbo/${javaUrlEncode(REFUND)}/configurators/${javaUrlEncode(`override://127.0.0.11:20880/${REFUND}?category=configurators&dynamic=false&enabled=true&weight=100`)}`;
    await mk(zk, override);
    try {
      const before2 = await dumpTree(zk);
      await expect(dubbo().drain(ctx)).rejects.toThrow(
        /127\.0\.0\.11:20880 com\.acme\.order\.RefundService weight 100 by \/dubbo\/com\.acme\.order\.RefundService\/configurators\/override/,
      );
      expect(await dumpTree(zk)).toEqual(before2);
    } finally {
      await removeTree(zk, override);
    }
  });

  it("a consumer application's own rule with a consumer-side item for the host (RegistryDirectory applies it at that consumer): not drained, drain refuses", async () => {
    const web = `${CFG}/web-app.configurators`;
    await mk(
      zk,
      web,
      'configVersion: v2.7\nscope: application\nkey: web-app\nenabled: true\nconfigs:\n- side: consumer\n  providerAddresses: ["127.0.0.12:20880"]\n  parameters: {weight: 100}\n',
    );
    const ctx = makeContext({ host: makeHost('c', '127.0.0.12') });
    await expect(dubbo().drain(ctx)).rejects.toThrow(/web-app\.configurators configs\[0\] \(side: consumer, weight 100\)/);
    // Another host is not concerned by it.
    const other = makeContext({ host: makeHost('a', '127.0.0.11') });
    const p = dubbo();
    const saved = await p.drain(other);
    await sync();
    expect(await p.isDrained(other)).toMatchObject({ done: true });
    await p.restore(other, saved);
  });

  it('IPv6 link-local with a zone (fe80:0:0:0:0:0:0:1%eth0 as Dubbo writes it) is found from fe80::1, and the rule carries the zone', async () => {
    const app = await startDubboApp({
      zk: server.connect,
      app: 'll-service',
      host: 'fe80:0:0:0:0:0:0:1%eth0',
      port: 20880,
      services: [{ iface: 'com.acme.LinkLocal' }],
      reexport: 'on-sync',
      metadataType: 'remote',
    });
    try {
      const p = dubbo({ application: 'll-service', allowDrainLast: true });
      const ctx = makeContext({ host: makeHost('ll', 'fe80::1') });
      const saved = (await p.drain(ctx)) as { addresses: string[] };
      expect(saved.addresses).toEqual(['fe80:0:0:0:0:0:0:1%eth0:20880']);
      await app.sync();
      expect(await p.isDrained(ctx)).toMatchObject({ done: true });
      await p.restore(ctx, saved);
      expect((await p.isDrained(ctx)).done).toBe(false);
    } finally {
      await app.stop();
    }
  });

  it('interfaces: writes full service keys (group/interface:version), which Dubbo matches', async () => {
    const p = dubbo({ interfaces: [ORDER] });
    const ctx = makeContext({ host: makeHost('c', '127.0.0.12') });
    const saved = await p.drain(ctx);
    expect(YAML.parse((await text(APP_RULE))!.replace(/^#.*\n/, '')).configs[0].services).toEqual([`online/${ORDER}:1.0.0`]);
    await sync();
    expect(await p.isDrained(ctx)).toMatchObject({ done: true });
    // The same item with the bare interface name is what Dubbo would not apply.
    await p.restore(ctx, saved);
    await mk(
      zk,
      APP_RULE,
      `configVersion: v2.7\nscope: application\nkey: order-service\nconfigs:\n- addresses: ["127.0.0.12:20880"]\n  side: provider\n  services: [${ORDER}]\n  parameters: {weight: 0}\n`,
    );
    await sync();
    expect((await p.isDrained(ctx)).done).toBe(false);
  });

  it("a foreign tool rewrites the rule between drain and restore (JSON, reordered, its own item added): restore removes exactly graywave's item", async () => {
    await mk(
      zk,
      APP_RULE,
      JSON.stringify({
        configVersion: 'v2.7',
        scope: 'application',
        key: 'order-service',
        enabled: true,
        configs: [{ addresses: ['127.0.0.99:20880'], side: 'provider', parameters: { timeout: 1000 } }],
      }),
    );
    const p = dubbo();
    const ctx = makeContext({ host: makeHost('a', '127.0.0.11') });
    const saved = await p.drain(ctx);
    const drained = JSON.parse((await text(APP_RULE))!);
    expect(drained.configs).toHaveLength(2); // still JSON: a JSON rule stays JSON
    await sync();
    expect(await p.isDrained(ctx)).toMatchObject({ done: true });
    // The foreign tool: YAML now, keys reordered, graywave's item's keys reordered, a new item of its own.
    const rewritten = `# rewritten by ops-tool\nkey: order-service\nscope: application\nconfigVersion: v2.7\nenabled: true\nconfigs:\n- parameters: {weight: 0}\n  side: provider\n  addresses: ["127.0.0.11:20880"]\n- addresses: ["127.0.0.98:20880"]\n  side: provider\n  parameters: {timeout: 7}\n- addresses: ["127.0.0.99:20880"]\n  side: provider\n  parameters: {timeout: 1000}\n`;
    await zk.set(APP_RULE, rewritten, (await zk.get(APP_RULE))!.version);
    await p.restore(ctx, saved);
    const after = (await text(APP_RULE))!;
    expect(after).toBe(rewritten.replace('- parameters: {weight: 0}\n  side: provider\n  addresses: ["127.0.0.11:20880"]\n', ''));
    // Until the provider re-registered without weight=0, consumers still skip it.
    expect((await p.isRestored!(ctx, saved)).done).toBe(false);
    await sync();
    expect(await p.isRestored!(ctx, saved)).toMatchObject({ done: true });
  });

  it('the JSON-array form (a list of override URLs): graywave adds URLs, Dubbo matches them, restore gives the exact bytes back', async () => {
    const original = JSON.stringify(['override://127.0.0.99:20880/*?category=configurators&enabled=true&weight=50']);
    await mk(zk, APP_RULE, original);
    const p = dubbo();
    const ctx = makeContext({ host: makeHost('a', '127.0.0.11') });
    const saved = await p.drain(ctx);
    expect(JSON.parse((await text(APP_RULE))!)).toEqual([
      ...JSON.parse(original),
      'override://127.0.0.11:20880/*?category=configurators&dynamic=false&enabled=true&weight=0',
    ]);
    await sync();
    expect(await p.isDrained(ctx)).toMatchObject({ done: true });
    await p.restore(ctx, saved);
    expect(await text(APP_RULE)).toBe(original);
  });

  it("a provider registered by host name is found through the host's aliases (and the error says so without them)", async () => {
    const app = await startDubboApp({
      zk: server.connect,
      app: 'name-service',
      host: 'localhost',
      port: 20990,
      services: [{ iface: 'com.acme.NameService' }],
      registerMode: 'interface',
      reexport: 'on-sync',
    });
    try {
      const p = dubbo({ application: 'name-service', allowDrainLast: true });
      await expect(p.drain(makeContext({ host: makeHost('n', '127.0.0.1') }))).rejects.toThrow(/aliases:/);
      const ctx = makeContext({ host: makeHost('n', '127.0.0.1', { aliases: ['LOCALHOST'] }) });
      const saved = await p.drain(ctx);
      expect((saved as { addresses: string[] }).addresses).toEqual(['localhost:20990']);
      await app.sync();
      expect(await p.isDrained(ctx)).toMatchObject({ done: true });
      await p.restore(ctx, saved);
    } finally {
      await app.stop();
    }
  });

  it('a method weight > 0 left by another rule (get.weight 200) keeps calls coming at weight 0: drain gives get.weight 0 too, warm-up ramps both, restore gives the bytes back', async () => {
    const foreign = `configVersion: v2.7\nscope: application\nkey: order-service\nenabled: true\nconfigs:\n- addresses: ["127.0.0.11:20880"]\n  side: provider\n  parameters: {get.weight: 200}\n`;
    await mk(zk, APP_RULE, foreign);
    await sync();
    const before = await tree();
    const p = dubbo();
    const ctx = makeContext({ host: makeHost('a', '127.0.0.11') });
    // What a weight-0 item alone would leave: Dubbo still routes get() calls to it.
    await mk(
      zk,
      SVC_RULE,
      `configVersion: v2.7\nscope: service\nkey: online/${ORDER}:1.0.0\nenabled: true\nconfigs:\n- addresses: ["127.0.0.11:20880"]\n  side: provider\n  parameters: {weight: 0}\n`,
    );
    const half = await p.isDrained(ctx);
    expect(half.done).toBe(false);
    expect(half.observed).toMatch(new RegExp(`127\\.0\\.0\\.11:20880 online/${ORDER.replace(/\./g, '\\.')}:1\\.0\\.0 weight 0, get\\.weight 200`));
    await removeTree(zk, SVC_RULE);

    const saved = (await p.drain(ctx)) as { before: Record<string, unknown> };
    expect(saved.before['127.0.0.11:20880']).toEqual({ weight: 100, disabled: false, methods: { get: 200 } });
    const configs = YAML.parse((await text(APP_RULE))!.replace(/^#.*\n/, '')).configs;
    expect(configs[1]).toEqual({ addresses: ['127.0.0.11:20880'], side: 'provider', parameters: { weight: 0, 'get.weight': 0 } });
    expect((await p.isDrained(ctx)).done).toBe(false);
    await sync();
    expect(await p.isDrained(ctx)).toMatchObject({ done: true });
    const registered = (await zk.children(`/dubbo/${javaUrlEncode(REFUND)}/providers`))!
      .map((n) => decodeURIComponent(n))
      .filter((u) => u.includes('127.0.0.11:'));
    expect(registered).toHaveLength(1);
    expect(registered[0]).toMatch(/[?&]get\.weight=0(&|$)/);
    expect(registered[0]).toMatch(/[?&]weight=0(&|$)/);
    // Warm-up: each weight at its share of what it had (weight 100 -> 25, get.weight 200 -> 50).
    await p.setWeight!(ctx, saved, 25);
    expect(YAML.parse((await text(APP_RULE))!.replace(/^#.*\n/, '')).configs[1]).toEqual({
      addresses: ['127.0.0.11:20880'],
      side: 'provider',
      parameters: { weight: 25, 'get.weight': 50 },
    });
    await p.restore(ctx, saved);
    expect(await text(APP_RULE)).toBe(foreign);
    await sync();
    expect(await p.isRestored!(ctx, saved)).toMatchObject({ done: true });
    expect(await tree()).toEqual(before);
  });

  it('Dubbo 3 application-level instance with its MetadataInfo kept in the provider (metadata-type local, the default): never drained, and it says why', async () => {
    const app = await startDubboApp({
      zk: server.connect,
      app: 'local-service',
      host: '127.0.0.22',
      port: 20880,
      services: [{ iface: 'com.acme.LocalService' }],
      registerMode: 'instance',
      reexport: 'on-sync',
      metadataType: 'local',
      instanceMetadata: { 'dubbo.metadata-service.url-params': '{"port":"20880","protocol":"dubbo"}' },
    });
    try {
      const ctx = makeContext({ host: makeHost('l', '127.0.0.22') });
      const p = dubbo({ application: 'local-service', allowDrainLast: true });
      const saved = await p.drain(ctx);
      await app.sync();
      const r = await p.isDrained(ctx);
      expect(r.done).toBe(false);
      expect(r.observed).toMatch(
        /application-level instance \/services\/local-service\/127\.0\.0\.22:20880: its weight is in the provider's own MetadataService \(dubbo\.metadata\.storage-type local, served at 127\.0\.0\.22 \{"port":"20880","protocol":"dubbo"\}\).*metadata-type remote.*awaitProviderUrl: false/,
      );
      // The explicit opt-out trusts the application rule once written.
      expect(await dubbo({ application: 'local-service', awaitProviderUrl: false }).isDrained(ctx)).toMatchObject({ done: true });
      await p.restore(ctx, saved);
    } finally {
      await app.stop();
    }
  });

  it('a provider that re-exports on its own (Dubbo 2.7+, every 100 ms): isDrained waits for its URL with weight=0; restore is confirmed only once it re-registered without it', async () => {
    const app = await startDubboApp({
      zk: server.connect,
      app: 're-service',
      host: '127.0.0.41',
      port: 20880,
      services: [{ iface: 'com.acme.ReService' }],
      registerMode: 'interface',
      reexport: true,
    });
    const poll = async (fn: () => Promise<{ done: boolean; observed?: string }>) => {
      let last: { done: boolean; observed?: string } | undefined;
      await waitFor(async () => (last = await fn()).done, 'the check to be done').catch(() => undefined);
      return last!;
    };
    try {
      const p = dubbo({ application: 're-service', allowDrainLast: true });
      const ctx = makeContext({ host: makeHost('r', '127.0.0.41') });
      const saved = await p.drain(ctx);
      expect(await poll(() => p.isDrained(ctx))).toMatchObject({ done: true });
      const providers = (await zk.children(`/dubbo/${javaUrlEncode('com.acme.ReService')}/providers`))!.map((n) => decodeURIComponent(n));
      expect(providers.some((u) => /[?&]weight=0(&|$)/.test(u))).toBe(true);
      // The provider paused (SIGSTOP) before it can re-export: the rule is gone but its URL still says weight=0,
      // which is what consumers route on: not restored yet.
      process.kill(app.server.pid, 'SIGSTOP');
      try {
        await p.restore(ctx, saved);
        const early = await p.isRestored!(ctx, saved);
        expect(early.done).toBe(false);
        expect(early.observed).toMatch(/not serving: 127\.0\.0\.41:20880 com\.acme\.ReService weight 0/);
      } finally {
        process.kill(app.server.pid, 'SIGCONT');
      }
      const restored = await poll(() => p.isRestored!(ctx, saved));
      expect(restored).toMatchObject({ done: true });
      expect(restored.observed).toContain('127.0.0.41:20880 weight 100');
    } finally {
      await app.stop();
    }
  });

  it('a Dubbo 2.6 provider reads no config-center rule: config-rule style refuses (and says to use override-url), override-url drains it', async () => {
    const url = providerUrl('127.0.0.51', 20880, 'com.acme.Old', 'old-service', { dubbo: '2.6.2', release: '' });
    const node = `/dubbo/${javaUrlEncode('com.acme.Old')}/providers/${javaUrlEncode(url)}`;
    await mk(zk, node);
    try {
      const ctx = makeContext({ host: makeHost('o', '127.0.0.51') });
      await expect(dubbo({ application: 'old-service', allowDrainLast: true }).drain(ctx)).rejects.toThrow(
        /a Dubbo 2\.6 provider \(no config-center rules; use style: override-url\)/,
      );
      const p = dubbo({ application: 'old-service', allowDrainLast: true, style: 'override-url' });
      const saved = await p.drain(ctx);
      expect(await p.isDrained(ctx)).toMatchObject({ done: true });
      await p.restore(ctx, saved);
      expect(await p.isRestored!(ctx, saved)).toMatchObject({ done: true });
    } finally {
      await removeTree(zk, `/dubbo/${javaUrlEncode('com.acme.Old')}`);
    }
  });

  it('application-level only (register-mode instance): drained by an application-scope rule; override-url style is refused (no 2.6 overrides at that level)', async () => {
    const app = await startDubboApp({
      zk: server.connect,
      app: 'inst-service',
      host: '127.0.0.21',
      port: 20880,
      services: [{ iface: 'com.acme.InstService' }],
      registerMode: 'instance',
      reexport: 'on-sync',
      metadataType: 'remote',
    });
    try {
      const ctx = makeContext({ host: makeHost('i', '127.0.0.21') });
      await expect(dubbo({ application: 'inst-service', allowDrainLast: true, style: 'override-url' }).drain(ctx)).rejects.toThrow(
        /application level.*no 2\.6 override/,
      );
      // The only instance of the application: the last-provider guard holds at application level too.
      await expect(dubbo({ application: 'inst-service' }).drain(ctx)).rejects.toThrow(
        /last provider with weight > 0 of inst-service at application level \(other instances: none\)/,
      );
      const p = dubbo({ application: 'inst-service', allowDrainLast: true });
      expect((await p.isDrained(ctx)).done).toBe(false);
      const saved = await p.drain(ctx);
      // Application-level consumers route on the MetadataInfo the instance points to: drained once the provider published weight 0 there.
      expect(await p.isDrained(ctx)).toMatchObject({
        done: false,
        observed: expect.stringMatching(
          /com\.acme\.InstService at application level: weight 100 in \/dubbo\/metadata\/inst-service\/\w+ \(the provider has not published/,
        ),
      });
      await app.sync();
      expect(await p.isDrained(ctx)).toMatchObject({ done: true });
      await p.restore(ctx, saved);
      // Back only once its MetadataInfo no longer says weight 0.
      expect(await p.isRestored!(ctx, saved)).toMatchObject({
        done: false,
        observed: expect.stringMatching(
          /not serving yet: 127\.0\.0\.21:20880 com\.acme\.InstService at application level: weight 0 in \/dubbo\/metadata\/inst-service\//,
        ),
      });
      await app.sync();
      expect(await p.isRestored!(ctx, saved)).toMatchObject({ done: true });
    } finally {
      await app.stop();
    }
  });

  it("warm-up (setWeight): graywave's own item goes to percent x the weight the host had (URL weight=200), in place; drained again and restored byte for byte", async () => {
    const W = 'com.acme.warm.WarmService';
    const WRULE = `${CFG}/warm-service.configurators`;
    const WSVC = `${CFG}/${W}:2.0.0:.configurators`;
    const foreign = `# kept by hand\nconfigVersion: v2.7\nscope: application\nkey: warm-service\nenabled: true\nconfigs:\n- addresses: ["127.0.0.99:20880"]\n  side: provider\n  parameters: {timeout: 3000}\n`;
    // A service rule raising the host to 300 (it wins over the application rule): drain adds graywave's item there too.
    const svc = `configVersion: v2.7\nscope: service\nkey: ${W}:2.0.0\nenabled: true\nconfigs:\n- addresses: ["127.0.0.51"]\n  side: provider\n  parameters: {weight: 300}\n`;
    for (const [host, weight] of [
      ['127.0.0.51', '200'],
      ['127.0.0.52', '100'],
    ]) {
      await mk(
        zk,
        `/dubbo/${javaUrlEncode(W)}/providers/${javaUrlEncode(providerUrl(host!, 20880, W, 'warm-service', { version: '2.0.0', weight: weight! }))}`,
      );
    }
    // The seeded providers re-export like Dubbo 2.7+ providers when rx.pass() runs.
    const rx = new SeedReexporter(zk, { interfaces: [W] });
    try {
      await mk(zk, WRULE, foreign);
      await rx.pass();
      const p = dubbo({ application: 'warm-service' });
      const ctx = makeContext({ host: makeHost('w', '127.0.0.51') });
      const before = await tree('/dubbo');
      const saved = await p.drain(ctx);
      await rx.pass();
      expect(await p.isDrained(ctx)).toMatchObject({ done: true });
      const items = async (path: string) =>
        (YAML.parse((await text(path))!.replace(/^#.*\n/, '')) as { configs: { addresses: string[]; parameters: Record<string, unknown> }[] }).configs.filter(
          (c) => c.addresses.includes('127.0.0.51:20880'),
        );
      await p.setWeight!(ctx, saved, 10);
      // The host had weight 200 (its URL's weight param); graywave's item is at 10% of it, the one item, nothing added.
      expect(await items(WRULE)).toEqual([{ addresses: ['127.0.0.51:20880'], side: 'provider', parameters: { weight: 20 } }]);
      const warm = await p.isDrained(ctx);
      expect(warm.done).toBe(false);
      expect(warm.observed).toMatch(/weight 20/);
      await p.setWeight!(ctx, saved, 50);
      await p.setWeight!(ctx, saved, 50);
      expect(await items(WRULE)).toEqual([{ addresses: ['127.0.0.51:20880'], side: 'provider', parameters: { weight: 100 } }]);
      // A failing watch check drains again with the saved record: weight 0 in place of the warm item.
      await p.drain({ ...ctx, previous: saved });
      expect(await items(WRULE)).toEqual([{ addresses: ['127.0.0.51:20880'], side: 'provider', parameters: { weight: 0 } }]);
      await rx.pass();
      expect(await p.isDrained(ctx)).toMatchObject({ done: true });
      await p.setWeight!(ctx, saved, 10);
      expect(await p.isRestored!(ctx, saved)).toMatchObject({ done: false, observed: expect.stringMatching(/graywave's item is still in/) });
      // The last step: restore takes the warm item out exactly as it takes the drain item out.
      await p.restore(ctx, saved);
      await rx.pass();
      expect(await tree('/dubbo')).toEqual(before);
      expect(await text(WRULE)).toBe(foreign);
      expect(await p.isRestored!(ctx, saved)).toMatchObject({ done: true, observed: expect.stringContaining('127.0.0.51:20880 weight 200') });

      // With a service rule that wins, graywave's items in both rules ramp; restore leaves both as they were.
      await mk(zk, WSVC, svc);
      await rx.pass();
      const before2 = await tree('/dubbo');
      const saved2 = (await p.drain(ctx)) as { rules: { path: string }[] };
      expect(saved2.rules.map((r) => r.path).sort()).toEqual([WSVC, WRULE].sort());
      await p.setWeight!(ctx, saved2, 10);
      // The host had weight 300 then (the service rule's): 10% of it, next to the service rule's own item.
      expect((await items(WSVC)).map((c) => c.parameters)).toEqual([{ weight: 30 }]);
      expect(await text(WSVC)).toMatch(/parameters: \{ ?weight: 300 ?\}/);
      expect((await items(WRULE)).map((c) => c.parameters)).toEqual([{ weight: 30 }]);
      const w2 = await p.isDrained(ctx);
      expect(w2.observed).toMatch(/weight 30/);
      await p.restore(ctx, saved2);
      await rx.pass();
      expect(await tree('/dubbo')).toEqual(before2);
      // mode disable cannot ramp a weight.
      await expect(dubbo({ application: 'warm-service', mode: 'disable' }).setWeight!(ctx, saved, 10)).rejects.toThrow(/warm-up needs mode weight/);
    } finally {
      await removeTree(zk, `/dubbo/${javaUrlEncode(W)}`);
    }
  });
});
