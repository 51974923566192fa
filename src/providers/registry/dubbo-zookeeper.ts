import { isDeepStrictEqual } from 'node:util';
import YAML from 'yaml';
import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import type { Check, Provider, ProviderContext, ProviderType } from '../types.js';
import { CREATED_BY_GRAYWAVE, Zk, removeOurEmptyParents, withCas, zkConnectionOptions, zkJoin, zkOptionsOf, type ZkNode, type ZkOp } from '../zk.js';

/*
 * Dubbo providers registered in ZooKeeper (reference protocols.md §1).
 *
 *   drain        weight 0 (mode: weight) or disabled=true (mode: disable) for this host's provider addresses of
 *                `application`, written as
 *                  style config-rule  (Dubbo 2.7+/3): one item appended to <configRoot>/<application>.configurators
 *                  style override-url (Dubbo 2.6):    one override:// znode per interface and address under
 *                                                     <root>/<interface>/configurators, node data "graywave"
 *   isDrained    read back from ZooKeeper: every provider URL of the host, with the rules and overrides that apply
 *                to it, has weight 0 or disabled (awaitProviderUrl: the provider itself re-exported with it)
 *   restore      removes what drain added, nothing else
 *   relabel      adds the host's addresses to tag <group> in <configRoot>/<application>.tag-router
 *
 * Rule nodes are edited read-modify-write with version checks (other people's items survive). The first graywave
 * edit of a rule node records the node's original bytes in a YAML comment ("# graywave-baseline: …", ignored by
 * Dubbo); when the last graywave change is taken out again and the rule means the same as that original, the
 * original bytes are written back (or the node deleted when it did not exist), so that a release leaves no trace.
 */

// ---------------------------------------------------------------------------------------------------------------
// URL encoding exactly like java.net.URLEncoder / URLDecoder (UTF-8): Dubbo names znodes with it.

/** java.net.URLEncoder.encode(s, "UTF-8"): keeps A-Z a-z 0-9 . - * _, space → +, everything else %XX of the UTF-8 bytes. */
export function javaUrlEncode(s: string): string {
  // Java encodes an unpaired surrogate as '?'; encodeURIComponent would throw on it.
  const wellFormed = s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '?');
  return encodeURIComponent(wellFormed)
    .replace(/[!'()~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
}

/** java.net.URLDecoder.decode(s, "UTF-8"). */
export function javaUrlDecode(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

// ---------------------------------------------------------------------------------------------------------------
// Dubbo URLs

export interface DubboUrl {
  protocol: string;
  host: string;
  /** 0 when the URL has none. */
  port: number;
  path: string;
  params: Record<string, string>;
}

/** Parses `dubbo://10.0.0.5:20880/com.foo.BarService?k=v&…` (hand-written: Node's URL would lowercase and re-encode). */
export function parseDubboUrl(text: string): DubboUrl | undefined {
  const m = /^([A-Za-z][\w+.-]*):\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/?]*)(?::(\d+))?(\/[^?]*)?(?:\?(.*))?$/.exec(text);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const pair of (m[5] ?? '').split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    if (eq < 0) params[pair] = pair;
    else params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { protocol: m[1]!, host: m[2]!, port: m[3] ? Number(m[3]) : 0, path: (m[4] ?? '/').slice(1), params };
}

export function formatDubboUrl(u: DubboUrl): string {
  const q = Object.entries(u.params).map(([k, v]) => `${k}=${v}`).join('&');
  return `${u.protocol}://${u.host}${u.port ? `:${u.port}` : ''}/${u.path}${q ? `?${q}` : ''}`;
}

/** Service identity: interface + group + version (group and version are URL params, not path segments). */
export function serviceKey(u: DubboUrl): string {
  const iface = u.params.interface ?? u.path;
  return `${u.params.group ? u.params.group + '/' : ''}${iface}${u.params.version ? ':' + u.params.version : ''}`;
}

const addressOf = (u: { host: string; port: number }) => `${u.host}:${u.port}`;

// ---------------------------------------------------------------------------------------------------------------
// Rule documents (configurators, tag-router) with the baseline comment

const BASELINE_LINE = /^# graywave-baseline: (\S+)\n/;
export type Baseline = { absent: true } | { text: string };

/**
 * A rule node's text split into graywave's baseline line (always the first line when present) and the YAML body.
 * Handled as text, not as a YAML comment, so that the YAML library cannot move it around.
 */
export interface RuleText {
  baseline?: Baseline;
  doc: YAML.Document;
}

export function parseRule(text: string, where: string): RuleText {
  const m = BASELINE_LINE.exec(text);
  const body = m ? text.slice(m[0].length) : text;
  const doc = YAML.parseDocument(body);
  if (doc.errors.length > 0 || (doc.contents !== null && !YAML.isMap(doc.contents))) {
    throw new ProviderError(`${where} is not a YAML rule (${doc.errors[0]?.message ?? 'not a mapping'}); fix or remove it by hand, graywave will not overwrite it`, false);
  }
  let baseline: Baseline | undefined;
  if (m) baseline = m[1] === 'absent' ? { absent: true } : { text: Buffer.from(m[1]!, 'base64').toString('utf8') };
  return { baseline, doc };
}

/** The text to store: the baseline line (the original content, recorded by the first graywave edit) and the YAML. */
export function ruleText(r: RuleText, original: string | undefined): string {
  const b = r.baseline ?? (original === undefined ? { absent: true as const } : { text: original });
  const line = `# graywave-baseline: ${'absent' in b ? 'absent' : Buffer.from(b.text, 'utf8').toString('base64')}\n`;
  return line + r.doc.toString();
}

/** What to write after taking graywave's change out: the original bytes when the rule means what it meant before. */
export function settle(r: RuleText, emptySkeleton: unknown): { kind: 'write'; text: string } | { kind: 'delete' } {
  const now = r.doc.toJS();
  const b = r.baseline;
  if (b && 'absent' in b && isDeepStrictEqual(now, emptySkeleton)) return { kind: 'delete' };
  if (b && 'text' in b) {
    let then: unknown;
    try {
      then = YAML.parse(b.text);
    } catch {
      then = undefined;
    }
    if (isDeepStrictEqual(now, then)) return { kind: 'write', text: b.text };
  }
  return { kind: 'write', text: ruleText(r, undefined) };
}

/** The configurator item graywave appends for one host. */
export function drainItem(addresses: string[], mode: 'weight' | 'disable', services?: string[]): Record<string, unknown> {
  const item: Record<string, unknown> = { addresses: [...addresses], side: 'provider' };
  if (services?.length) item.services = [...services];
  item.parameters = mode === 'weight' ? { weight: 0 } : { disabled: true };
  return item;
}

function configsSeq(doc: YAML.Document): YAML.YAMLSeq {
  let seq = doc.get('configs');
  if (!YAML.isSeq(seq)) {
    seq = doc.createNode([]);
    doc.set('configs', seq);
  }
  return seq as YAML.YAMLSeq;
}

function indexOfItem(seq: YAML.YAMLSeq, item: unknown): number {
  return seq.items.findIndex((n) => isDeepStrictEqual(YAML.isNode(n) ? n.toJS(new YAML.Document()) : n, item));
}

export const configuratorSkeleton = (app: string, configs: unknown[] = []) => ({
  configVersion: 'v2.7',
  scope: 'application',
  key: app,
  enabled: true,
  configs,
});

/** Adds `item` to the configurators rule text (undefined: no node yet). Returns the new text, or undefined when the item is already there. */
export function addConfigItem(text: string | undefined, app: string, item: Record<string, unknown>, where: string): string | undefined {
  const r: RuleText = text === undefined ? { doc: new YAML.Document(configuratorSkeleton(app)) } : parseRule(text, where);
  const doc = r.doc;
  if (text !== undefined && doc.get('enabled') === false) {
    throw new ProviderError(`${where} is switched off (enabled: false): an item added to it would not apply; switch it on or use style override-url`, false);
  }
  const seq = configsSeq(doc);
  if (indexOfItem(seq, item) >= 0) return undefined;
  seq.add(doc.createNode(item));
  return ruleText(r, text);
}

/** Takes `item` out of the rule. Returns what to do with the node, or undefined when the item is not there. */
export function removeConfigItem(text: string, app: string, item: Record<string, unknown>, where: string) {
  const r = parseRule(text, where);
  const seq = r.doc.get('configs');
  const i = YAML.isSeq(seq) ? indexOfItem(seq, item) : -1;
  if (i < 0) return undefined;
  (seq as YAML.YAMLSeq).items.splice(i, 1);
  return settle(r, configuratorSkeleton(app));
}

export const tagRouterSkeleton = (app: string, tags: unknown[] = []) => ({
  configVersion: 'v2.7',
  force: false,
  runtime: true,
  enabled: true,
  priority: 1,
  key: app,
  tags,
});

/** Adds addresses to tag `tag`. Returns the new text and the addresses that were not there yet (plus whether the tag was new). */
export function addTagAddresses(text: string | undefined, app: string, tag: string, addresses: string[], where: string) {
  const r: RuleText = text === undefined ? { doc: new YAML.Document(tagRouterSkeleton(app)) } : parseRule(text, where);
  const doc = r.doc;
  let tags = doc.get('tags');
  if (!YAML.isSeq(tags)) {
    tags = doc.createNode([]);
    doc.set('tags', tags);
  }
  const seq = tags as YAML.YAMLSeq;
  let entry = seq.items.find((t) => YAML.isMap(t) && t.get('name') === tag) as YAML.YAMLMap | undefined;
  const createdTag = !entry;
  if (!entry) {
    entry = doc.createNode({ name: tag, addresses: [] }) as YAML.YAMLMap;
  }
  let list = entry.get('addresses');
  if (!YAML.isSeq(list)) {
    list = doc.createNode([]);
    entry.set('addresses', list);
  }
  const have = new Set((list as YAML.YAMLSeq).toJSON() as string[]);
  const added = addresses.filter((a) => !have.has(a));
  if (added.length === 0 && !createdTag) return { text: undefined, added, createdTag };
  if (createdTag) seq.add(entry);
  for (const a of added) (list as YAML.YAMLSeq).add(doc.createNode(a));
  return { text: ruleText(r, text), added, createdTag };
}

/** Takes addresses out of tag `tag` (and the tag itself when graywave created it and it is now empty). */
export function removeTagAddresses(text: string, app: string, tag: string, addresses: string[], dropEmptyTag: boolean, where: string) {
  const r = parseRule(text, where);
  const tags = r.doc.get('tags');
  if (!YAML.isSeq(tags)) return undefined;
  const idx = tags.items.findIndex((t) => YAML.isMap(t) && t.get('name') === tag);
  if (idx < 0) return undefined;
  const entry = tags.items[idx] as YAML.YAMLMap;
  const list = entry.get('addresses');
  let changed = false;
  if (YAML.isSeq(list)) {
    for (const a of addresses) {
      const i = list.items.findIndex((n) => (YAML.isScalar(n) ? n.value : n) === a);
      if (i >= 0) {
        list.items.splice(i, 1);
        changed = true;
      }
    }
  }
  // An emptied tag goes when graywave created it (this host, or any host when the original rule did not have it).
  const original = r.baseline && 'text' in r.baseline ? (YAML.parse(r.baseline.text) as { tags?: { name?: unknown }[] } | null) : null;
  const inOriginal = !!original?.tags?.some?.((t) => t?.name === tag);
  if ((dropEmptyTag || (r.baseline && !inOriginal)) && (!YAML.isSeq(list) || list.items.length === 0)) {
    tags.items.splice(idx, 1);
    changed = true;
  }
  if (!changed) return undefined;
  return settle(r, tagRouterSkeleton(app));
}

// ---------------------------------------------------------------------------------------------------------------
// Effective weight, as a consumer would compute it (reference §1.2–1.4; approximation, see README of the provider)

interface RuleItem {
  addresses?: unknown;
  side?: unknown;
  services?: unknown;
  type?: unknown;
  enabled?: unknown;
  parameters?: Record<string, unknown>;
}

export interface Effective {
  weight: number;
  disabled: boolean;
}

/** Weight and disabled flag of provider `u` after the 2.6 overrides and the 2.7+ application rule that match it. */
export function effectiveOf(u: DubboUrl, overrides: DubboUrl[], rule: Record<string, unknown> | undefined): Effective {
  const num = (v: unknown, dflt: number) => (v === undefined || v === null || v === '' || Number.isNaN(Number(v)) ? dflt : Number(v));
  const eff: Effective = {
    weight: num(u.params.weight, 100),
    disabled: u.params.disabled !== undefined ? u.params.disabled === 'true' : u.params.enabled === 'false',
  };
  const apply = (p: Record<string, unknown>) => {
    if (p.weight !== undefined) eff.weight = num(p.weight, eff.weight);
    if (p.disabled !== undefined) eff.disabled = String(p.disabled) === 'true';
  };
  for (const o of overrides) {
    if (o.params.enabled === 'false') continue;
    if (o.host !== '0.0.0.0' && o.host !== u.host) continue;
    if (o.port && o.port !== u.port) continue;
    if (o.params.group && o.params.group !== (u.params.group ?? '')) continue;
    if (o.params.version && o.params.version !== (u.params.version ?? '')) continue;
    apply(o.params);
  }
  if (rule && rule.enabled !== false && Array.isArray(rule.configs)) {
    const iface = u.params.interface ?? u.path;
    for (const raw of rule.configs as RuleItem[]) {
      if (!raw || typeof raw !== 'object' || !raw.parameters || typeof raw.parameters !== 'object') continue;
      if (raw.side !== undefined && raw.side !== 'provider') continue;
      if (raw.type && raw.type !== 'general' && raw.enabled === false) continue;
      const addrs = Array.isArray(raw.addresses) ? raw.addresses.map(String) : [];
      const hit = addrs.length === 0 || addrs.some((a) => [addressOf(u), u.host, '0.0.0.0', '0.0.0.0:*', `0.0.0.0:${u.port}`].includes(a));
      if (!hit) continue;
      const services = Array.isArray(raw.services) ? raw.services.map(String) : [];
      if (services.length > 0 && !services.includes('*') && !services.includes(iface) && !services.includes(serviceKey(u))) continue;
      apply(raw.parameters);
    }
  }
  return eff;
}

const serving = (e: Effective) => !e.disabled && e.weight > 0;

// ---------------------------------------------------------------------------------------------------------------
// The provider

const options = z
  .object({
    ...zkConnectionOptions,
    /** Registry root, "/" + the registry URL's `group` param. */
    root: z.string().regex(/^\//, 'must start with /').default('/dubbo'),
    /** Provider application name (the `application` URL param): only its URLs on the host are drained. */
    application: z.string().min(1),
    style: z.enum(['config-rule', 'override-url']).default('config-rule'),
    /** weight: weight 0 (still reachable by a consumer whose other providers are all at 0); disable: disabled=true, the stronger drain. */
    mode: z.enum(['weight', 'disable']).default('weight'),
    /** Only the provider URLs on this port (one Dubbo protocol of several). Default: every port of the application on the host. */
    port: z.number().int().min(1).max(65535).optional(),
    /** Only these interfaces. Default: every interface the application provides from the host. */
    interfaces: z.array(z.string().min(1)).min(1).optional(),
    /** Config-center path of the rules. Default <root>/config/dubbo (namespace = root, group "dubbo"). */
    configRoot: z.string().regex(/^\//, 'must start with /').optional(),
    /** Drain even when no other provider of a service keeps weight > 0 (weight 0 everywhere spreads traffic evenly again). */
    allowDrainLast: z.boolean().default(false),
    /** isDrained also waits until the provider re-registered its URL with weight=0/disabled=true (Dubbo 2.7+ providers do). */
    awaitProviderUrl: z.boolean().default(false),
  })
  .strict();
type Options = z.infer<typeof options>;

interface Found {
  /** Interface folder name as stored (URL-encoded). */
  folder: string;
  iface: string;
  url: DubboUrl;
}

interface DrainSaved {
  style: 'config-rule' | 'override-url';
  addresses: string[];
  /** Effective weight of each address before the drain (for the journal reader; restore does not need it). */
  before: Record<string, Effective>;
  /** config-rule: the rule node and the item graywave added (undefined: the item was already there, nothing to undo). */
  rule?: { path: string; item: Record<string, unknown> | null };
  /** override-url: the override znodes graywave created. */
  overrides?: string[];
}

interface LabelSaved {
  path: string;
  group: string;
  added: string[];
  createdTag: boolean;
}

const OVERRIDE_DATA = 'graywave';
/** Stands for "read, and the node does not exist" (undefined means "not read"). */
const NO_NODE = null as unknown as ZkNode;

class DubboZookeeper implements Provider {
  private zkc?: Zk;
  private readonly label: string;
  private readonly configRoot: string;

  constructor(private readonly o: Options) {
    this.label = `dubbo-zookeeper (${o.application})`;
    this.configRoot = o.configRoot ?? zkJoin(o.root, 'config', 'dubbo');
  }

  private get zk(): Zk {
    this.zkc ??= new Zk(zkOptionsOf(this.o, this.label));
    return this.zkc;
  }

  private get rulePath() {
    return zkJoin(this.configRoot, `${this.o.application}.configurators`);
  }

  private get tagPath() {
    return zkJoin(this.configRoot, `${this.o.application}.tag-router`);
  }

  /** Every provider URL under <root>/<interface>/providers (filtered by `interfaces`). */
  private async allProviders(): Promise<Found[]> {
    const folders = (await this.zk.children(this.o.root)) ?? [];
    const wanted = this.o.interfaces ? new Set(this.o.interfaces) : undefined;
    const scan = folders.filter((f) => !['config', 'metadata', 'mapping'].includes(f) && (!wanted || wanted.has(javaUrlDecode(f)))); // config center / Dubbo 3 dirs
    // One request per interface, pipelined on the one connection (large registries have thousands of interfaces).
    const lists = await Promise.all(scan.map((folder) => this.zk.children(zkJoin(this.o.root, folder, 'providers'))));
    const out: Found[] = [];
    scan.forEach((folder, i) => {
      const iface = javaUrlDecode(folder);
      for (const child of lists[i] ?? []) {
        const url = parseDubboUrl(javaUrlDecode(child));
        if (url) out.push({ folder, iface, url });
      }
    });
    return out;
  }

  /**
   * `inventory: {provider, service}`: the distinct provider addresses registered under <root>/<interface>/providers.
   * `service` is either an interface (`com.foo.OrderService`, optionally as a service key `group/interface:version`)
   * or an application name (the `application` URL param: every interface it provides, within `interfaces` when set).
   * One host per IP: name and address = the IP, vars.port = its (lowest) provider port (vars.ports when several);
   * labels: `application` and, when the provider URL has them, `tag` (its `dubbo.tag`), `group`, `version` (the last
   * two only when listing an interface: an application's interfaces may differ in them). Consumers, routers
   * and configurators are not hosts. Nothing registered is an error, naming where it looked.
   */
  async listHosts(service: string): Promise<{ name: string; address: string; labels: Record<string, string>; vars: Record<string, unknown> }[]> {
    const all = await this.allProviders();
    const isKey = /[/:]/.test(service);
    let found = all.filter((f) => f.iface === service || (isKey && serviceKey(f.url) === service));
    const how = found.length ? 'interface' : 'application';
    if (!found.length) found = all.filter((f) => f.url.params.application === service);
    found = found.filter((f) => f.url.host && f.url.port > 0 && (f.url.params.category ?? 'providers') === 'providers' && (this.o.port === undefined || f.url.port === this.o.port));
    if (found.length === 0) {
      throw new ProviderError(
        `${this.label}: no provider registered for ${service} under ${this.o.root}/<interface>/providers on ${this.o.connect} ` +
          `(looked for it as an interface, a service key group/interface:version and an application name${this.o.interfaces ? `, within interfaces ${this.o.interfaces.join(', ')}` : ''})`,
        false,
      );
    }
    const byIp = new Map<string, { ports: Set<number>; labels: Record<string, string> }>();
    for (const f of found) {
      const e = byIp.get(f.url.host) ?? { ports: new Set<number>(), labels: {} };
      byIp.set(f.url.host, e);
      e.ports.add(f.url.port);
      // Label names usable as {{host.labels.X}} (a dot would read as a path): `tag` holds the static `dubbo.tag`.
      for (const [k, param] of [['application', 'application'], ['tag', 'dubbo.tag'], ...(how === 'interface' ? [['group', 'group'], ['version', 'version']] : [])] as const) {
        const v = f.url.params[param];
        if (v && !(k in e.labels)) e.labels[k] = v;
      }
    }
    return [...byIp].map(([ip, e]) => {
      const ports = [...e.ports].sort((a, b) => a - b);
      const vars: Record<string, unknown> = { port: ports[0] };
      if (ports.length > 1) vars.ports = ports;
      return { name: ip.replace(/[^A-Za-z0-9._-]/g, '-'), address: ip, labels: e.labels, vars };
    });
  }

  private isMine(ctx: ProviderContext, f: Found): boolean {
    return f.url.host === ctx.host.address && f.url.params.application === this.o.application && (this.o.port === undefined || f.url.port === this.o.port);
  }

  private async mine(ctx: ProviderContext): Promise<{ all: Found[]; mine: Found[] }> {
    const all = await this.allProviders();
    return { all, mine: all.filter((f) => this.isMine(ctx, f)) };
  }

  private notFound(ctx: ProviderContext): string {
    const port = this.o.port ? ` port ${this.o.port}` : '';
    return `no provider of application ${this.o.application} registered from ${ctx.host.address}${port} under ${this.o.root}`;
  }

  /** Overrides under <root>/<folder>/configurators (2.6 style), parsed. */
  private async overridesOf(folder: string): Promise<DubboUrl[]> {
    const names = (await this.zk.children(zkJoin(this.o.root, folder, 'configurators'))) ?? [];
    return names.map((n) => parseDubboUrl(javaUrlDecode(n))).filter((u): u is DubboUrl => !!u);
  }

  /** The 2.7+ application rules of every application involved, parsed (undefined: none or unreadable). */
  private async rulesOf(apps: Iterable<string>, own?: ZkNode): Promise<Map<string, Record<string, unknown> | undefined>> {
    const out = new Map<string, Record<string, unknown> | undefined>();
    for (const app of apps) {
      if (out.has(app)) continue;
      // Our own application's rule may have been read already: judge on exactly the version we are about to write over.
      const node = app === this.o.application && own !== undefined ? (own ?? undefined) : await this.zk.get(zkJoin(this.configRoot, `${app}.configurators`));
      let rule: Record<string, unknown> | undefined;
      if (node) {
        const doc = YAML.parseDocument(node.data.toString('utf8'));
        if (doc.errors.length === 0 && YAML.isMap(doc.contents)) rule = doc.toJS() as Record<string, unknown>;
      }
      out.set(app, rule);
    }
    return out;
  }

  /** Effective weight of every provider URL, grouped by service key. */
  private async effectiveAll(all: Found[], own?: ZkNode): Promise<Map<Found, Effective>> {
    const rules = await this.rulesOf(all.map((f) => f.url.params.application ?? ''), own);
    const overrides = new Map<string, DubboUrl[]>();
    const out = new Map<Found, Effective>();
    for (const f of all) {
      if (!overrides.has(f.folder)) overrides.set(f.folder, await this.overridesOf(f.folder));
      out.set(f, effectiveOf(f.url, overrides.get(f.folder)!, rules.get(f.url.params.application ?? '')));
    }
    return out;
  }

  /** Refuse to drain when, for some service, no provider outside this host would keep serving (reference §1.4). */
  private guardLast(ctx: ProviderContext, all: Found[], mine: Found[], eff: Map<Found, Effective>): void {
    if (this.o.allowDrainLast) return;
    const mineSet = new Set(mine);
    const problems: string[] = [];
    for (const key of new Set(mine.map((f) => serviceKey(f.url)))) {
      const others = all.filter((f) => !mineSet.has(f) && serviceKey(f.url) === key);
      if (!others.some((f) => serving(eff.get(f)!))) {
        const seen = others.map((f) => `${addressOf(f.url)} ${eff.get(f)!.disabled ? 'disabled' : `weight ${eff.get(f)!.weight}`}`);
        problems.push(`${key} (other providers: ${seen.length ? seen.join(', ') : 'none'})`);
      }
    }
    if (problems.length > 0) {
      throw new ProviderError(
        `${this.label}: refusing to drain ${ctx.host.name} (${ctx.host.address}): it is the last provider with weight > 0 of ${problems.join('; ')}. ` +
          `With every provider at weight 0 Dubbo spreads traffic evenly again, so the drain would not work. ` +
          `Restore or start another provider first, or set allowDrainLast: true on the provider to drain anyway.`,
        false,
      );
    }
  }

  async drain(ctx: ProviderContext): Promise<DrainSaved> {
    const previous = ctx.previous as DrainSaved | undefined;
    return withCas(this.label, `drain ${ctx.host.name}`, async () => {
      const { all, mine } = await this.mine(ctx);
      if (mine.length === 0) throw new ProviderError(`${this.label}: cannot drain ${ctx.host.name}: ${this.notFound(ctx)}. Is the application running there?`, true);
      // config-rule: read our rule first, so the "last provider" judgement and the conditional write see the same version.
      const node = this.o.style === 'config-rule' ? await this.zk.get(this.rulePath) : undefined;
      const eff = await this.effectiveAll(all, this.o.style === 'config-rule' ? (node ?? NO_NODE) : undefined);
      const addresses = [...new Set(mine.map((f) => addressOf(f.url)))].sort();
      const before: Record<string, Effective> = { ...(previous?.before ?? {}) };
      for (const f of mine) before[addressOf(f.url)] ??= eff.get(f)!;
      this.guardLast(ctx, all, mine, eff);
      if (this.o.style === 'config-rule') {
        const item = drainItem(addresses, this.o.mode, this.o.interfaces);
        const text = node?.data.toString('utf8');
        const next = addConfigItem(text, this.o.application, item, `${this.label}: rule ${this.rulePath}`);
        let ours = next !== undefined;
        if (next !== undefined) {
          if (node) await this.zk.set(this.rulePath, next, node.version);
          else await this.createRule(this.rulePath, next);
          ctx.log(`dubbo: weight rule for ${addresses.join(', ')} added to ${this.rulePath}`);
        } else {
          // The same item is already there: ours from an interrupted attempt, or someone else's (then not ours to remove).
          ours = isDeepStrictEqual(previous?.rule?.item, item) || this.notInBaseline(text!, item);
          ctx.log(`dubbo: ${this.rulePath} already has that item (${ours ? 'written by graywave' : 'not ours, left alone on restore'})`);
        }
        return { style: 'config-rule', addresses, before, rule: { path: this.rulePath, item: ours ? item : null } };
      }
      return this.drainOverrides(ctx, mine, addresses, before);
    });
  }

  /** True when the rule carries a graywave baseline in which `item` does not appear: then graywave added it. */
  private notInBaseline(text: string, item: Record<string, unknown>): boolean {
    const b = parseRule(text, this.rulePath).baseline;
    if (!b) return false;
    if ('absent' in b) return true;
    const configs = (YAML.parse(b.text) as { configs?: unknown[] } | null)?.configs ?? [];
    return !configs.some((c) => isDeepStrictEqual(c, item));
  }

  private async createRule(path: string, text: string): Promise<void> {
    const parent = path.slice(0, path.lastIndexOf('/'));
    if (!(await this.zk.exists(parent))) await this.zk.createWithParents(parent, CREATED_BY_GRAYWAVE, CREATED_BY_GRAYWAVE);
    await this.zk.create(path, text);
  }

  private overrideUrl(f: Found): string {
    const params: Record<string, string> = { category: 'configurators', dynamic: 'false', enabled: 'true' };
    if (f.url.params.group) params.group = f.url.params.group;
    if (f.url.params.version) params.version = f.url.params.version;
    if (this.o.mode === 'weight') params.weight = '0';
    else params.disabled = 'true';
    return formatDubboUrl({ protocol: 'override', host: f.url.host, port: f.url.port, path: f.iface, params });
  }

  private async drainOverrides(ctx: ProviderContext, mine: Found[], addresses: string[], before: Record<string, Effective>): Promise<DrainSaved> {
    const ops: ZkOp[] = [];
    const paths: string[] = [];
    const dirs = new Map<string, { version: number; data: Buffer } | undefined>();
    for (const f of mine) {
      const dir = zkJoin(this.o.root, f.folder, 'configurators');
      const path = zkJoin(dir, javaUrlEncode(this.overrideUrl(f)));
      if (paths.includes(path)) continue;
      paths.push(path);
      if (!dirs.has(dir)) {
        const node = await this.zk.get(dir);
        dirs.set(dir, node ? { version: node.version, data: node.data } : undefined);
        // Rewriting the folder's data unchanged bumps its version: two graywave writers on one interface serialise here,
        // so the "last provider" decision above cannot be raced by another host's drain.
        if (node) ops.push({ op: 'set', path: dir, data: node.data, version: node.version });
        else ops.push({ op: 'create', path: dir, data: CREATED_BY_GRAYWAVE });
      }
      const existing = await this.zk.get(path);
      if (existing) {
        if (existing.data.toString('utf8') !== OVERRIDE_DATA) ctx.log(`dubbo: ${javaUrlDecode(path.split('/').pop()!)} already exists (not ours, left alone)`);
        continue;
      }
      ops.push({ op: 'create', path, data: OVERRIDE_DATA });
    }
    await this.zk.multi(ops);
    const ours: string[] = [];
    for (const p of paths) if ((await this.zk.get(p))?.data.toString('utf8') === OVERRIDE_DATA) ours.push(p);
    ctx.log(`dubbo: override URLs for ${addresses.join(', ')}: ${ours.length} in place`);
    return { style: 'override-url', addresses, before, overrides: ours };
  }

  async isDrained(ctx: ProviderContext): Promise<Check> {
    try {
      const { all, mine } = await this.mine(ctx);
      if (mine.length === 0) return { done: false, observed: this.notFound(ctx) };
      const eff = await this.effectiveAll(all);
      const still = mine.filter((f) => serving(eff.get(f)!));
      if (still.length > 0) {
        const what = [...new Set(still.map((f) => `${addressOf(f.url)} ${f.iface} weight ${eff.get(f)!.weight}`))];
        return { done: false, observed: `still serving: ${what.slice(0, 5).join(', ')}${what.length > 5 ? ` (+${what.length - 5})` : ''}` };
      }
      if (this.o.awaitProviderUrl) {
        const unseen = mine.filter((f) => f.url.params.disabled !== 'true' && f.url.params.weight !== '0');
        if (unseen.length > 0) return { done: false, observed: `rule written, provider has not re-registered with it yet: ${[...new Set(unseen.map((f) => addressOf(f.url)))].join(', ')}` };
      }
      const addrs = [...new Set(mine.map((f) => addressOf(f.url)))];
      return { done: true, observed: `${addrs.join(', ')}: ${this.o.mode === 'weight' ? 'weight 0' : 'disabled'} on ${new Set(mine.map((f) => serviceKey(f.url))).size} services` };
    } catch (err) {
      return { done: false, observed: `cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }

  async restore(ctx: ProviderContext, saved: unknown): Promise<void> {
    const s = saved as DrainSaved | undefined;
    if (!s || (s.style !== 'config-rule' && s.style !== 'override-url')) {
      throw new ProviderError(`${this.label}: restore of ${ctx.host.name} got no drain record it understands`, false);
    }
    if (s.style === 'override-url') {
      for (const path of s.overrides ?? []) {
        const node = await this.zk.get(path);
        if (node && node.data.toString('utf8') === OVERRIDE_DATA) await this.zk.remove(path, node.version);
        await removeOurEmptyParents(this.zk, path, this.o.root);
      }
      ctx.log(`dubbo: removed ${s.overrides?.length ?? 0} override URLs for ${s.addresses.join(', ')}`);
      return;
    }
    const item = s.rule?.item;
    if (!s.rule || !item) {
      ctx.log(`dubbo: nothing to restore (the weight item was not written by graywave)`);
      return;
    }
    const path = s.rule.path;
    await withCas(this.label, `restore ${ctx.host.name}`, async () => {
      const node = await this.zk.get(path);
      if (!node) return ctx.log(`dubbo: ${path} is gone; nothing to restore`);
      const next = removeConfigItem(node.data.toString('utf8'), this.o.application, item, `${this.label}: rule ${path}`);
      if (!next) return ctx.log(`dubbo: the weight item for ${s.addresses.join(', ')} is no longer in ${path}`);
      if (next.kind === 'delete') {
        await this.zk.remove(path, node.version);
        await removeOurEmptyParents(this.zk, path, this.o.root);
      } else {
        await this.zk.set(path, next.text, node.version);
      }
      ctx.log(`dubbo: weight item for ${s.addresses.join(', ')} removed from ${path}`);
    });
  }

  async relabel(ctx: ProviderContext, group: string): Promise<LabelSaved> {
    const previous = ctx.previous as LabelSaved | undefined;
    return withCas(this.label, `relabel ${ctx.host.name}`, async () => {
      const { mine } = await this.mine(ctx);
      if (mine.length === 0) throw new ProviderError(`${this.label}: cannot relabel ${ctx.host.name}: ${this.notFound(ctx)}`, true);
      const addresses = [...new Set(mine.map((f) => addressOf(f.url)))].sort();
      const node = await this.zk.get(this.tagPath);
      const text = node?.data.toString('utf8');
      const r = addTagAddresses(text, this.o.application, group, addresses, `${this.label}: rule ${this.tagPath}`);
      if (r.text !== undefined) {
        if (node) await this.zk.set(this.tagPath, r.text, node.version);
        else await this.createRule(this.tagPath, r.text);
      }
      // An interrupted earlier attempt may have added some already: those stay ours.
      const prev = previous && previous.group === group ? previous : undefined;
      const added = [...new Set([...(prev?.added ?? []), ...r.added])];
      ctx.log(`dubbo: ${addresses.join(', ')} in tag ${group} of ${this.tagPath}${added.length ? ` (added ${added.join(', ')})` : ' (already there)'}`);
      return { path: this.tagPath, group, added, createdTag: r.createdTag || !!prev?.createdTag };
    });
  }

  async restoreLabel(ctx: ProviderContext, saved: unknown): Promise<void> {
    const s = saved as LabelSaved | undefined;
    if (!s || !s.path || !Array.isArray(s.added)) throw new ProviderError(`${this.label}: restoreLabel of ${ctx.host.name} got no relabel record it understands`, false);
    if (s.added.length === 0 && !s.createdTag) return;
    await withCas(this.label, `restore label of ${ctx.host.name}`, async () => {
      const node = await this.zk.get(s.path);
      if (!node) return;
      const next = removeTagAddresses(node.data.toString('utf8'), this.o.application, s.group, s.added, s.createdTag, `${this.label}: rule ${s.path}`);
      if (!next) return;
      if (next.kind === 'delete') {
        await this.zk.remove(s.path, node.version);
        await removeOurEmptyParents(this.zk, s.path, this.o.root);
      } else await this.zk.set(s.path, next.text, node.version);
      ctx.log(`dubbo: ${s.added.join(', ')} taken out of tag ${s.group} in ${s.path}`);
    });
  }

  async close(): Promise<void> {
    await this.zkc?.close();
    this.zkc = undefined;
  }
}

export const dubboZookeeper: ProviderType<Options> = {
  type: 'dubbo-zookeeper',
  role: 'drain',
  options,
  create: (o) => new DubboZookeeper(o),
};
