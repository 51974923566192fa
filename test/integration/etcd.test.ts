import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdProvider, etcdOptions, etcdProvider, type EtcdHooks } from '../../src/providers/registry/etcd.js';
import type { Provider } from '../../src/providers/types.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';
import { hasEtcd, startEtcd, type EtcdServer } from './helpers/etcd.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { freePort, removeDir, tempDir } from './helpers/process.js';

const has = hasEtcd();

describe.skipIf(!has)('etcd provider against a real etcd', () => {
  let etcd: EtcdServer;
  let client: Etcd3;
  const providers: Provider[] = [];
  let seq = 0;

  beforeAll(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.endpoint });
  });
  afterAll(async () => {
    for (const p of providers) await p.close?.();
    client?.close();
    await etcd?.stop();
  });

  /** A provider for one test, on its own host address so that keys never collide between tests. */
  function setup(opts: Record<string, unknown> = {}, hooks?: EtcdHooks) {
    const address = `127.0.0.${10 + ++seq}`;
    const options = etcdOptions.parse({ endpoints: [etcd.endpoint], key: '/services/order/{{host.address}}:8080', ...opts });
    const provider = createEtcdProvider(options, makeEnv(), hooks);
    providers.push(provider);
    const host = makeHost(`app-${seq}`, address);
    return { provider, key: `/services/order/${address}:8080`, ctx: (previous?: unknown) => makeContext({ host, previous }) };
  }

  async function readKey(key: string) {
    const kv = (await client.get(key).exec()).kvs[0];
    return kv ? { value: JSON.parse(kv.value.toString()) as Record<string, unknown>, lease: kv.lease } : undefined;
  }

  /** Registers like an app does: on a lease kept alive by the app. */
  async function register(key: string, value: object, ttl = 60) {
    const lease = client.lease(ttl, { autoKeepAlive: false });
    const id = await lease.grant();
    await lease.put(key).value(JSON.stringify(value));
    return { lease, id };
  }

  it('registers as type etcd with strict options', () => {
    expect(etcdProvider.type).toBe('etcd');
    expect(() => etcdOptions.parse({ endpoints: ['http://x:2379'], key: '/k', bogus: 1 })).toThrow(/bogus/);
    expect(() => etcdOptions.parse({ endpoints: ['http://x:2379'], key: '/k', password: 'plain' })).toThrow();
  });

  it('weight mode: drain sets weight 0 on the same lease, relabel writes GREEN, restore brings the weight back and keeps GREEN', async () => {
    const { provider, key, ctx } = setup({ mode: 'weight' });
    const { id } = await register(key, { weight: 100, group: 'BLUE', port: 8080 });

    expect((await provider.isDrained(ctx())).done).toBe(false);
    const saved = await provider.drain(ctx());
    expect(saved).toEqual({ mode: 'weight', key, field: 'weight', existed: true, had: true, previous: 100 });
    expect(await readKey(key)).toEqual({ value: { weight: 0, group: 'BLUE', port: 8080 }, lease: id });
    expect(await provider.isDrained(ctx())).toMatchObject({ done: true });

    // A repeated drain (resume) keeps the original weight rather than the 0 it wrote itself.
    expect(await provider.drain(ctx(saved))).toEqual(saved);

    const label = await provider.relabel!(ctx(), 'GREEN');
    expect(label).toEqual({ key, field: 'group', group: 'GREEN', had: true, previous: 'BLUE' });
    expect(await provider.isRestored!(ctx(), saved)).toEqual({ done: false, observed: `${key} weight=0 (want 100)` });
    // Warm-up: a share of the saved weight, on the same lease.
    await provider.setWeight!(ctx(), saved, 25);
    expect(await readKey(key)).toEqual({ value: { weight: 25, group: 'GREEN', port: 8080 }, lease: id });
    expect(await provider.isRestored!(ctx(), saved)).toMatchObject({ done: true });
    await provider.restore(ctx(), saved);
    expect(await readKey(key)).toEqual({ value: { weight: 100, group: 'GREEN', port: 8080 }, lease: id });
    expect((await provider.isDrained(ctx())).done).toBe(false);
    expect(await provider.isRestored!(ctx(), saved)).toEqual({ done: true, observed: `${key} weight=100` });
    expect(await provider.isRegistered!(ctx())).toMatchObject({ done: true });

    // Restore again (resume) changes nothing; rollback of relabel puts BLUE back.
    await provider.restore(ctx(), saved);
    await provider.restoreLabel!(ctx(), label);
    expect(await readKey(key)).toEqual({ value: { weight: 100, group: 'BLUE', port: 8080 }, lease: id });
  });

  it('CAS race: a concurrent write between read and write is re-read, not overwritten', async () => {
    let raced = 0;
    const hooks: EtcdHooks = {
      async afterRead(k, attempt) {
        // The app re-registers with a new weight and version right after graywave read the key, once per operation.
        if (attempt === 1 && raced < 2) {
          raced++;
          await client
            .put(k)
            .value(JSON.stringify({ weight: 50 + raced, version: `v${raced}`, group: 'BLUE' }))
            .ignoreLease();
        }
      },
    };
    const { provider, key, ctx } = setup({ mode: 'weight' }, hooks);
    const { id } = await register(key, { weight: 100, version: 'v0', group: 'BLUE' });

    const saved = await provider.drain(ctx());
    // The weight restore brings back is the one the concurrent writer set, and its other change is kept.
    expect(saved).toMatchObject({ previous: 51 });
    expect(await readKey(key)).toEqual({ value: { weight: 0, version: 'v1', group: 'BLUE' }, lease: id });

    // During restore the writer sets weight 52: the field is no longer ours to put back, so theirs stays.
    await provider.restore(ctx(), saved);
    expect(raced).toBe(2);
    expect(await readKey(key)).toEqual({ value: { weight: 52, version: 'v2', group: 'BLUE' }, lease: id });
  });

  it('disable mode: enabled false and back; an absent field is removed again on restore', async () => {
    const { provider, key, ctx } = setup({ mode: 'disable' });
    await client.put(key).value(JSON.stringify({ weight: 10 }));
    const saved = await provider.drain(ctx());
    expect(saved).toMatchObject({ field: 'enabled', had: false });
    expect((await readKey(key))!.value).toEqual({ weight: 10, enabled: false });
    expect(await provider.isDrained(ctx())).toMatchObject({ done: true });
    await provider.restore(ctx(), saved);
    expect((await readKey(key))!.value).toEqual({ weight: 10 });
  });

  it('remove mode: key moved aside and back on its live lease, carrying the group relabel wrote meanwhile', async () => {
    const { provider, key, ctx } = setup({ mode: 'remove' });
    const { id } = await register(key, { weight: 100, group: 'BLUE' });

    const c = ctx();
    const saved = await provider.drain(c);
    expect(saved).toEqual({ mode: 'remove', key, existed: true, lease: id });
    expect(await readKey(key)).toBeUndefined();
    // The copy has no lease: it must survive the app's session.
    expect(await readKey(`${key}.graywave-drained`)).toEqual({ value: { weight: 100, group: 'BLUE' }, lease: '0' });
    expect(await provider.isDrained(ctx())).toMatchObject({ done: true });
    expect(await provider.drain(ctx(saved))).toEqual(saved);

    await provider.relabel!(ctx(), 'GREEN');
    expect((await readKey(`${key}.graywave-drained`))!.value).toEqual({ weight: 100, group: 'GREEN' });

    expect(await provider.isRestored!(ctx(), saved)).toEqual({
      done: false,
      observed: `${key} is not registered (still moved aside to ${key}.graywave-drained)`,
    });
    expect(await provider.isRegistered!(ctx())).toEqual({ done: true, observed: `${key} moved aside (drained)` });
    await provider.restore(ctx(), saved);
    expect(await readKey(key)).toEqual({ value: { weight: 100, group: 'GREEN' }, lease: id });
    expect(await readKey(`${key}.graywave-drained`)).toBeUndefined();
    expect(await provider.isRestored!(ctx(), saved)).toEqual({ done: true, observed: `${key} registered` });
    expect((await provider.isDrained(ctx())).done).toBe(false);
  });

  it('remove mode: an expired lease means the key comes back without a lease, and the host log says so', async () => {
    const { provider, key, ctx } = setup({ mode: 'remove' });
    const { lease, id } = await register(key, { weight: 100 });
    const saved = await provider.drain(ctx());
    await lease.revoke();
    const c = ctx();
    await provider.restore(c, saved);
    expect(await readKey(key)).toEqual({ value: { weight: 100 }, lease: '0' });
    expect(c.lines.join('\n')).toMatch(new RegExp(`WITHOUT a lease.*${id} expired`));
  });

  it('remove mode: an app that re-registered while drained keeps its own registration', async () => {
    const { provider, key, ctx } = setup({ mode: 'remove' });
    await register(key, { weight: 100, build: 'old' });
    const saved = await provider.drain(ctx());
    const again = await register(key, { weight: 100, build: 'new' });
    await provider.restore(ctx(), saved);
    expect(await readKey(key)).toEqual({ value: { weight: 100, build: 'new' }, lease: again.id });
    expect(await readKey(`${key}.graywave-drained`)).toBeUndefined();
  });

  it('unknown state is never drained: non-JSON value, unreachable etcd', async () => {
    const { provider, key, ctx } = setup();
    await client.put(key).value('not json');
    expect(await provider.isDrained(ctx())).toMatchObject({ done: false, observed: expect.stringMatching(/not JSON/) });
    await expect(provider.drain(ctx())).rejects.toThrow(/not JSON/);

    const port = await freePort();
    const dead = createEtcdProvider(etcdOptions.parse({ endpoints: [`http://127.0.0.1:${port}`], key: '/k', timeout: '1s' }), makeEnv());
    providers.push(dead);
    const check = await dead.isDrained(ctx());
    expect(check.done).toBe(false);
    expect(check.observed).toMatch(new RegExp(`127.0.0.1:${port}`));
  });

  it('a released host ends restored and GREEN on its lease; rollback undoes relabel too', async () => {
    const keys = ['127.0.0.51', '127.0.0.52'].map((a) => `/services/order/${a}:8080`);
    const lease = client.lease(120, { autoKeepAlive: false });
    const id = await lease.grant();
    for (const k of keys) await lease.put(k).value(JSON.stringify({ weight: 100, group: 'BLUE' }));
    const dir = tempDir('etcd-e2e');
    const file = join(dir, 'release.yaml');
    writeFileSync(
      file,
      [
        'name: etcd-e2e',
        'version: "2.0.0"',
        'group: GREEN',
        'hosts:',
        '  - { name: app-51, address: 127.0.0.51 }',
        '  - { name: app-52, address: 127.0.0.52 }',
        'transport: { type: local }',
        'waves: { size: 100%, concurrency: 2, maxFailures: 0, pause: none }',
        'providers:',
        '  reg:',
        '    type: etcd',
        `    endpoints: [${etcd.endpoint}]`,
        '    key: /services/order/{{host.address}}:8080',
        '    mode: weight',
        '    groupField: group',
        'steps:',
        '  - drain: reg',
        '  - run: "true"',
        '  - relabel: { provider: reg }',
        '  - restore: reg',
        '',
      ].join('\n'),
    );
    expect(await main(['node', 'graywave', 'run', file, '--yes', '--plain'])).toBe(0);
    for (const k of keys) expect(await readKey(k)).toEqual({ value: { weight: 100, group: 'GREEN' }, lease: id });

    expect(await main(['node', 'graywave', 'rollback', file, '--all', '--yes', '--plain'])).toBe(0);
    for (const k of keys) expect(await readKey(k)).toEqual({ value: { weight: 100, group: 'BLUE' }, lease: id });
    removeDir(dir);
  });
});
