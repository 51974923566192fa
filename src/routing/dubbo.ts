/**
 * Dubbo routing rules in the ZooKeeper config centre (shared/reference/protocols.md §1.5), on the connection
 * settings of a `dubbo-zookeeper` provider of the playbook (`provider: NAME`).
 *
 *   type: dubbo-tag        <configRoot>/<application>.tag-router: enabled, `force` as given, and the tag (default
 *                          the release group, GREEN) present, so requests tagged GREEN reach the providers that
 *                          relabel puts into it. Widening needs no change: relabel adds each host as it goes GREEN.
 *   type: dubbo-condition  <configRoot>/<application>.condition-router: for the chosen consumers
 *                          (`consumers: { hosts: [...], applications: [...] }`) one condition each,
 *                          `host = 10.0.0.9 => host = <GREEN provider IPs>`, rewritten after every wave with the
 *                          hosts GREEN so far (none yet before wave 1: nothing is written then).
 *
 * Writes are read-modify-write with version checks: others' tags, conditions and keys stay. The first graywave edit
 * records the node's original bytes ("# graywave-baseline: …", the same mechanism as relabel); undo reverses just
 * its own change, and when the rule then means what it meant before, the original bytes come back (or the node goes
 * when there was none).
 */
import YAML from 'yaml';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { dubboZookeeper, parseRule, ruleText, settle, tagRouterSkeleton, type RuleText } from '../providers/registry/dubbo-zookeeper.js';
import { CREATED_BY_GRAYWAVE, removeOurEmptyParents, withCas, Zk, zkJoin, zkOptionsOf } from '../providers/zk.js';
import type { RoutingChange, RoutingContext, RoutingPoint, RoutingRule } from './types.js';

export const dubboTagOptions = z
  .object({
    provider: z.string().min(1),
    /** Tag name; default the release group. */
    tag: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .optional(),
    /** true: a request tagged GREEN never falls back to BLUE providers when no GREEN provider is up. */
    force: z.boolean().default(false),
  })
  .strict();

export const dubboConditionOptions = z
  .object({
    provider: z.string().min(1),
    consumers: z
      .object({
        hosts: z
          .array(z.string().regex(/^[0-9A-Fa-f.:*]+$/, 'an IP address'))
          .min(1)
          .optional(),
        applications: z
          .array(z.string().regex(/^[A-Za-z0-9_.-]+$/))
          .min(1)
          .optional(),
      })
      .strict()
      .refine((c) => c.hosts || c.applications, { message: 'name consumer hosts or applications' }),
    force: z.boolean().default(false),
  })
  .strict();

interface DubboConn {
  zk: Zk;
  root: string;
  configRoot: string;
  application: string;
  label: string;
}

/** The ZooKeeper connection and paths of the playbook's dubbo-zookeeper provider `name`. */
export function dubboConnection(ctx: RoutingContext, name: string, rule: string): DubboConn {
  const spec = ctx.playbook.providers[name];
  if (!spec || spec.type !== 'dubbo-zookeeper') throw new ProviderError(`routing ${rule}: provider ${name} is not a dubbo-zookeeper provider`, false);
  const o = dubboZookeeper.options.parse(spec.options) as {
    root: string;
    configRoot?: string;
    application: string;
    connect: string;
    sessionTimeout: number;
    connectTimeout: number;
  };
  const label = `routing ${rule} (dubbo ${o.application})`;
  return { zk: new Zk(zkOptionsOf(o, label)), root: o.root, configRoot: o.configRoot ?? zkJoin(o.root, 'config', 'dubbo'), application: o.application, label };
}

/** Top-level keys a change set, with what they held before (undefined: absent). */
type Keys = Record<string, { had: boolean; value?: unknown }>;

interface Saved {
  path: string;
  createdNode: boolean;
  keys: Keys;
  /** dubbo-tag: the tag this change added (undo drops it again when it is empty). */
  createdTag?: string;
  /** dubbo-condition: conditions this change added, and the ones (of ours) it replaced. */
  added?: string[];
  removed?: string[];
}

function setKeys(doc: YAML.Document, want: Record<string, unknown>, created: boolean): Keys {
  const keys: Keys = {};
  for (const [k, v] of Object.entries(want)) {
    const cur = doc.get(k);
    if (isDeepStrictEqual(cur, v)) continue;
    if (!created) keys[k] = doc.has(k) ? { had: true, value: cur } : { had: false };
    doc.set(k, v);
  }
  return keys;
}

function unsetKeys(doc: YAML.Document, keys: Keys): void {
  for (const [k, prev] of Object.entries(keys)) {
    if (prev.had) doc.set(k, prev.value);
    else doc.delete(k);
  }
}

abstract class DubboRule implements RoutingRule {
  private conn?: DubboConn;

  constructor(
    protected readonly name: string,
    protected readonly provider: string,
    protected readonly kind: 'tag-router' | 'condition-router',
  ) {}

  protected c(ctx: RoutingContext): DubboConn {
    this.conn ??= dubboConnection(ctx, this.provider, this.name);
    return this.conn;
  }

  protected path(ctx: RoutingContext): string {
    const c = this.c(ctx);
    return zkJoin(c.configRoot, `${c.application}.${this.kind}`);
  }

  protected abstract skeleton(app: string): Record<string, unknown>;
  /** Edits the parsed rule for `point`; returns the undo fields, or undefined when nothing needs to change. */
  protected abstract edit(
    r: RuleText,
    created: boolean,
    point: RoutingPoint,
    ctx: RoutingContext,
    prior: Saved | undefined,
  ): Omit<Saved, 'path' | 'createdNode'> | undefined;
  protected abstract revert(r: RuleText, saved: Saved): void;

  async apply(point: RoutingPoint, ctx: RoutingContext, prior?: unknown): Promise<RoutingChange | undefined> {
    const { zk, label } = this.c(ctx);
    const path = this.path(ctx);
    return withCas(label, `update ${path}`, async () => {
      const node = await zk.get(path);
      const text = node?.data.toString('utf8');
      const r: RuleText = text === undefined ? { doc: new YAML.Document(this.skeleton(this.c(ctx).application)) } : parseRule(text, `${label}: rule ${path}`);
      const change = this.edit(r, !node, point, ctx, prior as Saved | undefined);
      if (!change) return undefined;
      const next = ruleText(r, text);
      if (node) await zk.set(path, next, node.version);
      else await zk.createWithParents(path, next, CREATED_BY_GRAYWAVE);
      const saved: Saved = { path, createdNode: !node, ...change };
      return { summary: `${path} updated`, data: saved };
    });
  }

  async undo(data: unknown, ctx: RoutingContext): Promise<void> {
    const s = data as Saved;
    if (!s || typeof s.path !== 'string') throw new ProviderError(`routing ${this.name}: the journal entry of the change is not readable`, false);
    const { zk, label, root } = this.c(ctx);
    await withCas(label, `undo on ${s.path}`, async () => {
      const node = await zk.get(s.path);
      if (!node) return;
      const r = parseRule(node.data.toString('utf8'), `${label}: rule ${s.path}`);
      unsetKeys(r.doc, s.keys);
      this.revert(r, s);
      const out = settle(r, this.skeleton(this.c(ctx).application));
      if (out.kind === 'delete') {
        await zk.remove(s.path, node.version);
        await removeOurEmptyParents(zk, s.path, root);
      } else if (out.text !== node.data.toString('utf8')) await zk.set(s.path, out.text, node.version);
    });
  }

  /** The rule as stored now (parsed), or undefined. */
  protected async current(ctx: RoutingContext): Promise<Record<string, unknown> | undefined> {
    const { zk, label } = this.c(ctx);
    const path = this.path(ctx);
    const node = await zk.get(path);
    if (!node) return undefined;
    return (parseRule(node.data.toString('utf8'), `${label}: rule ${path}`).doc.toJS() ?? {}) as Record<string, unknown>;
  }

  abstract verify(point: RoutingPoint, ctx: RoutingContext): Promise<string>;

  async close(): Promise<void> {
    await this.conn?.zk.close();
    this.conn = undefined;
  }
}

export class DubboTagRule extends DubboRule {
  constructor(
    name: string,
    private readonly o: z.infer<typeof dubboTagOptions>,
  ) {
    super(name, o.provider, 'tag-router');
  }

  private tag(ctx: RoutingContext): string {
    return this.o.tag ?? ctx.playbook.group;
  }

  protected skeleton(app: string) {
    return tagRouterSkeleton(app);
  }

  protected edit(r: RuleText, created: boolean, point: RoutingPoint, ctx: RoutingContext) {
    if (point.phase !== 'publish') return undefined;
    const doc = r.doc;
    const keys = setKeys(doc, { enabled: true, force: this.o.force }, created);
    let tags = doc.get('tags');
    if (!YAML.isSeq(tags)) {
      tags = doc.createNode([]);
      doc.set('tags', tags);
    }
    const tag = this.tag(ctx);
    const has = (tags as YAML.YAMLSeq).items.some((t) => YAML.isMap(t) && t.get('name') === tag);
    if (!has) (tags as YAML.YAMLSeq).add(doc.createNode({ name: tag, addresses: [] }));
    if (!created && has && Object.keys(keys).length === 0) return undefined;
    return { keys, createdTag: has ? undefined : tag };
  }

  protected revert(r: RuleText, s: Saved): void {
    if (!s.createdTag) return;
    const tags = r.doc.get('tags');
    if (!YAML.isSeq(tags)) return;
    const i = tags.items.findIndex((t) => YAML.isMap(t) && t.get('name') === s.createdTag);
    const list = i >= 0 ? (tags.items[i] as YAML.YAMLMap).get('addresses') : undefined;
    if (i >= 0 && (!YAML.isSeq(list) || list.items.length === 0)) tags.items.splice(i, 1);
  }

  async verify(_point: RoutingPoint, ctx: RoutingContext): Promise<string> {
    const rule = await this.current(ctx);
    const tag = this.tag(ctx);
    const entry = (rule?.tags as { name?: unknown; addresses?: unknown }[] | undefined)?.find?.((t) => t?.name === tag);
    if (!rule || rule.enabled !== true || !entry)
      throw new ProviderError(
        `routing ${this.name}: ${this.path(ctx)} does not route tag ${tag} (read back: ${rule ? `enabled ${String(rule.enabled)}, tag ${entry ? 'present' : 'missing'}` : 'no rule'})`,
      );
    const n = Array.isArray(entry.addresses) ? entry.addresses.length : 0;
    return `tag ${tag} routed (${n} address(es))`;
  }
}

/** The conditions that send the chosen consumers to `greenIps`. */
export function greenConditions(consumers: { hosts?: string[]; applications?: string[] }, greenIps: string[]): string[] {
  if (greenIps.length === 0) return [];
  const to = `=> host = ${greenIps.join(',')}`;
  const out: string[] = [];
  if (consumers.hosts) out.push(`host = ${consumers.hosts.join(',')} ${to}`);
  if (consumers.applications) out.push(`application = ${consumers.applications.join(',')} ${to}`);
  return out;
}

export class DubboConditionRule extends DubboRule {
  constructor(
    name: string,
    private readonly o: z.infer<typeof dubboConditionOptions>,
  ) {
    super(name, o.provider, 'condition-router');
  }

  protected skeleton(app: string) {
    return { configVersion: 'v2.7', scope: 'application', force: false, runtime: true, enabled: true, priority: 1, key: app, conditions: [] as string[] };
  }

  private want(point: RoutingPoint): string[] {
    return greenConditions(this.o.consumers, [...new Set(point.greenHosts.map((h) => h.address))]);
  }

  protected edit(r: RuleText, created: boolean, point: RoutingPoint, _ctx: RoutingContext, prior: Saved | undefined) {
    const want = this.want(point);
    const mine = prior?.added ?? [];
    if (want.length === 0 && mine.length === 0) return undefined;
    const doc = r.doc;
    let seq = doc.get('conditions');
    if (!YAML.isSeq(seq)) {
      seq = doc.createNode([]);
      doc.set('conditions', seq);
    }
    const list = seq as YAML.YAMLSeq;
    const values = () => list.items.map((n) => (YAML.isScalar(n) ? n.value : n));
    if (isDeepStrictEqual(want, mine) && want.every((w) => values().includes(w))) return undefined;
    const removed = mine.filter((m) => values().includes(m));
    for (const m of removed) list.items.splice(values().indexOf(m), 1);
    const added = want.filter((w) => !values().includes(w));
    for (const w of added) list.add(doc.createNode(w));
    const keys = want.length ? setKeys(doc, { enabled: true, force: this.o.force }, created) : {};
    return { keys, added, removed };
  }

  protected revert(r: RuleText, s: Saved): void {
    const seq = r.doc.get('conditions');
    if (!YAML.isSeq(seq)) return;
    const values = () => seq.items.map((n) => (YAML.isScalar(n) ? n.value : n));
    for (const a of s.added ?? []) {
      const i = values().indexOf(a);
      if (i >= 0) seq.items.splice(i, 1);
    }
    for (const m of s.removed ?? []) if (!values().includes(m)) seq.add(r.doc.createNode(m));
  }

  async verify(point: RoutingPoint, ctx: RoutingContext): Promise<string> {
    const want = this.want(point);
    const rule = await this.current(ctx);
    if (want.length === 0) return 'no GREEN hosts yet: no condition';
    const have = Array.isArray(rule?.conditions) ? (rule!.conditions as unknown[]) : [];
    const missing = want.filter((w) => !have.includes(w));
    if (!rule || rule.enabled !== true || missing.length)
      throw new ProviderError(`routing ${this.name}: ${this.path(ctx)} does not hold ${missing.length ? missing.join('; ') : 'an enabled rule'}`);
    return `${want.length} condition(s) to ${point.greenHosts.length} GREEN host(s)`;
  }
}

/** For the reference (graywave explain, docs/reference.md). */
export const dubboTagDoc: import('../reference/doc.js').TypeDoc = {
  options: {
    provider: 'A dubbo-zookeeper provider of the playbook: its ZooKeeper and application.',
    tag: 'Tag name; default the release group (GREEN).',
    force: 'true: a request tagged GREEN never falls back to BLUE providers when no GREEN provider is up.',
  },
  summary:
    'Dubbo tag routing: GREEN hosts carry the tag; consumers that ask for the tag (dubbo.tag) reach GREEN only. Published before wave 1 in the tag-router rule of the application.',
  checkedAgainst: 'real ZooKeeper 3.8; Dubbo 2.7/3 tag-router format',
  example: 'name: dubbo-gray\ntype: dubbo-tag\nprovider: dubbo',
};
export const dubboConditionDoc: import('../reference/doc.js').TypeDoc = {
  options: {
    provider: 'A dubbo-zookeeper provider of the playbook: its ZooKeeper and application.',
    consumers: 'Which consumers are sent to the GREEN hosts: hosts, applications or both.',
    'consumers.hosts': 'Consumer IP addresses (* wildcards allowed).',
    'consumers.applications': 'Consumer application names.',
    force: 'true: those consumers fail rather than fall back to BLUE when no GREEN provider is up.',
  },
  summary:
    "Dubbo condition routing: a condition rule (the listed consumer hosts or applications go to the GREEN hosts) published in the application's condition-router and removed or kept at the end.",
  checkedAgainst: 'real ZooKeeper 3.8; Dubbo 2.7/3 condition-router format',
  example: 'name: dubbo-cond\ntype: dubbo-condition\nprovider: dubbo\nconsumers: { applications: [checkout-web] }',
};
