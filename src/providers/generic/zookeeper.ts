import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import type { Check, Provider, ProviderContext, ProviderType } from '../types.js';
import { CREATED_BY_GRAYWAVE, ZkProviderBase, removeOurEmptyParents, withCas, zkConnectionOptions, zkOptionsOf } from '../zk.js';

/*
 * A znode as an on/off switch, for home-grown schedulers and services that watch ZooKeeper.
 *
 *   mode create   drain creates <path> with <value> (and missing parents), restore deletes it (and those parents);
 *                 isDrained = the node exists
 *   mode set      drain writes <value> into <path> (created when missing), restore writes back the previous bytes
 *                 (or deletes the node when it did not exist); isDrained = the node holds <value>
 * `path` and `value` are templates ({{host.address}}, {{host.name}}, {{host.vars.x}} …).
 */

const options = z
  .object({
    ...zkConnectionOptions,
    path: z.string().regex(/^\/./, 'must be an absolute znode path'),
    value: z.string().default(''),
    mode: z.enum(['create', 'set']).default('create'),
  })
  .strict();
type Options = z.infer<typeof options>;

type Saved =
  | { mode: 'create'; path: string; created: boolean }
  /** previous: base64 of the bytes before, null when the node did not exist. */
  | { mode: 'set'; path: string; value: string; previous: string | null; changed: boolean };

class GenericZookeeper extends ZkProviderBase implements Provider {
  private readonly label = 'zookeeper';
  constructor(private readonly o: Options) {
    super(zkOptionsOf(o, `zookeeper (${o.path})`));
  }

  async drain(ctx: ProviderContext): Promise<Saved> {
    const path = ctx.render(this.o.path);
    const value = ctx.render(this.o.value);
    const prev = ctx.previous as Saved | undefined;
    if (this.o.mode === 'create') {
      if (await this.zk.exists(path)) {
        const created = prev?.mode === 'create' && prev.path === path && prev.created;
        ctx.log(`zookeeper: ${path} already exists${created ? '' : ' (not created by graywave: left in place on restore)'}`);
        return { mode: 'create', path, created };
      }
      await withCas(this.label, `drain ${ctx.host.name}`, () => this.zk.createWithParents(path, value, CREATED_BY_GRAYWAVE));
      ctx.log(`zookeeper: created ${path}`);
      return { mode: 'create', path, created: true };
    }
    return withCas(this.label, `drain ${ctx.host.name}`, async () => {
      const node = await this.zk.get(path);
      if (node && node.data.toString('utf8') === value) {
        // Already set: by an interrupted earlier attempt (keep what it recorded) or by someone else (nothing to undo).
        if (prev?.mode === 'set' && prev.path === path) return prev;
        return { mode: 'set', path, value, previous: node.data.toString('base64'), changed: false };
      }
      if (node) await this.zk.set(path, value, node.version);
      else await this.zk.createWithParents(path, value, CREATED_BY_GRAYWAVE);
      ctx.log(`zookeeper: ${path} := ${JSON.stringify(value)}`);
      return { mode: 'set', path, value, previous: node ? node.data.toString('base64') : null, changed: true };
    });
  }

  async isDrained(ctx: ProviderContext): Promise<Check> {
    const path = ctx.render(this.o.path);
    try {
      const node = await this.zk.get(path);
      if (this.o.mode === 'create') return node ? { done: true, observed: `${path} exists` } : { done: false, observed: `${path} does not exist` };
      const value = ctx.render(this.o.value);
      if (!node) return { done: false, observed: `${path} does not exist` };
      const now = node.data.toString('utf8');
      return now === value
        ? { done: true, observed: `${path} = ${JSON.stringify(value)}` }
        : { done: false, observed: `${path} = ${JSON.stringify(now.slice(0, 80))}` };
    } catch (err) {
      return { done: false, observed: `cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }

  async restore(ctx: ProviderContext, saved: unknown): Promise<void> {
    const s = saved as Saved | undefined;
    if (!s || (s.mode !== 'create' && s.mode !== 'set') || typeof s.path !== 'string') {
      throw new ProviderError(`${this.label}: restore of ${ctx.host.name} got no drain record it understands`, false);
    }
    if (s.mode === 'create') {
      if (!s.created) return;
      await this.zk.remove(s.path);
      await removeOurEmptyParents(this.zk, s.path, '/');
      return ctx.log(`zookeeper: deleted ${s.path}`);
    }
    if (!s.changed) return;
    await withCas(this.label, `restore ${ctx.host.name}`, async () => {
      const node = await this.zk.get(s.path);
      if (!node || node.data.toString('utf8') !== s.value) return ctx.log(`zookeeper: ${s.path} was changed by someone else since the drain, left as is`);
      if (s.previous === null) {
        await this.zk.remove(s.path, node.version);
        await removeOurEmptyParents(this.zk, s.path, '/');
      } else await this.zk.set(s.path, Buffer.from(s.previous, 'base64'), node.version);
      ctx.log(`zookeeper: ${s.path} restored`);
    });
  }

  /** Serving again: the switch no longer reads drained (create: the node is gone; set: it no longer holds the value). */
  async isRestored(_ctx: ProviderContext, saved: unknown): Promise<Check> {
    const s = saved as Saved | undefined;
    if (!s || (s.mode !== 'create' && s.mode !== 'set') || typeof s.path !== 'string')
      return { done: false, observed: 'saved drain data is missing or malformed' };
    try {
      const node = await this.zk.get(s.path);
      if (s.mode === 'create') {
        if (!s.created) return { done: true, observed: `${s.path} was there before the drain: left in place` };
        return node ? { done: false, observed: `${s.path} still exists` } : { done: true, observed: `${s.path} gone` };
      }
      if (!s.changed) return { done: true, observed: `${s.path} held the value before the drain: left so` };
      if (node && node.data.toString('utf8') === s.value) return { done: false, observed: `${s.path} still holds ${JSON.stringify(s.value)}` };
      return { done: true, observed: node ? `${s.path} = ${JSON.stringify(node.data.toString('utf8').slice(0, 80))}` : `${s.path} gone` };
    } catch (err) {
      return { done: false, observed: `state unknown: cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }
}

export const genericZookeeper: ProviderType<Options> = {
  type: 'zookeeper',
  role: 'drain',
  options,
  doc: {
    summary: 'A home-grown switch in ZooKeeper: drain creates (or sets) a templated znode; restore removes it (or puts the old value back).',
    checkedAgainst: 'real ZooKeeper 3.8 (Debian)',
    example: 'type: zookeeper\nconnect: zk1:2181\npath: /switches/order/offline/{{host.address}}\n# value: "1"\n# mode: create        # or set',
    options: {
      connect: 'ZooKeeper connection string.',
      path: 'The znode (a template).',
      value: 'Data written to it.',
      mode: '`create`: the node exists while drained; `set`: an existing node gets `value`.',
    },
  },
  describe: (o, c) => ({
    drain: `ZooKeeper ${o.connect}: ${o.mode === 'create' ? 'creates' : 'sets'} ${c.render(o.path)}${o.value ? ` = ${JSON.stringify(c.render(o.value))}` : ''}`,
    check: `reads ${c.render(o.path)} back`,
    restore: o.mode === 'create' ? `deletes ${c.render(o.path)}` : `writes back its previous value`,
  }),
  create: (o) => new GenericZookeeper(o),
};
