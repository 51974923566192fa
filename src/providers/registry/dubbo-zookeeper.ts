import { isDeepStrictEqual } from 'node:util';
import YAML from 'yaml';
import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import type { Check, Provider, ProviderContext, ProviderType } from '../types.js';
import {
  addressOf,
  colonKey,
  consumerRisks,
  consumerView,
  effective,
  formatDubboUrl,
  hostMatches,
  isWeightKey,
  parseDubboUrl,
  parseRuleText,
  serviceKey,
  serving,
  servingMethods,
  stateText,
  type Configurator,
  type DubboUrl,
  type Effective,
} from './dubbo-rules.js';
import {
  CREATED_BY_GRAYWAVE,
  Zk,
  ZkProviderBase,
  removeOurEmptyParents,
  withCas,
  zkConnectionOptions,
  zkJoin,
  zkOptionsOf,
  type ZkNode,
  type ZkOp,
} from '../zk.js';

/*
 * Dubbo providers registered in ZooKeeper (reference protocols.md §1).
 *
 *   drain        weight 0 (mode: weight) or disabled=true (mode: disable) for this host's provider addresses of
 *                `application`, written as
 *                  style config-rule  (Dubbo 2.7+/3): one item appended to <configRoot>/<application>.configurators
 *                  style override-url (Dubbo 2.6):    one override:// znode per interface and address under
 *                                                     <root>/<interface>/configurators, node data "graywave"
 *   isDrained    read back from ZooKeeper: every provider URL of the host, with the rules and overrides that apply
 *                to it, has weight 0 (every callable method too) or disabled, and (awaitProviderUrl, the default)
 *                consumers route on that now: the provider re-registered with it / published it in its MetadataInfo
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
// Rule documents (configurators, tag-router) with the baseline comment

export { formatDubboUrl, parseDubboUrl, serviceKey, type DubboUrl, type Effective } from './dubbo-rules.js';

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
    throw new ProviderError(
      `${where} is not a YAML rule (${doc.errors[0]?.message ?? 'not a mapping'}); fix or remove it by hand, graywave will not overwrite it`,
      false,
    );
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
  // A foreign tool rewrote the rule without graywave's baseline line: write it back without one (touch nothing else).
  return { kind: 'write', text: b ? ruleText(r, undefined) : r.doc.toString() };
}

/**
 * The parameters of graywave's drain: weight 0 (and `<method>.weight: 0` for each method that has a weight > 0 of its
 * own, which would otherwise keep its calls: URL.getMethodParameter), or disabled=true.
 */
export function drainParams(mode: 'weight' | 'disable', methods: string[] = []): Record<string, number | boolean> {
  if (mode === 'disable') return { disabled: true };
  const p: Record<string, number | boolean> = { weight: 0 };
  for (const m of [...methods].sort()) p[`${m}.weight`] = 0;
  return p;
}

/** The configurator item graywave appends for one host (`services`: full service keys `[group/]interface[:version]`). */
export function drainItem(addresses: string[], mode: 'weight' | 'disable', services?: string[], methods?: string[]): Record<string, unknown> {
  const item: Record<string, unknown> = { addresses: [...addresses], side: 'provider' };
  if (services?.length) item.services = [...services];
  item.parameters = drainParams(mode, methods);
  return item;
}

/**
 * The same drain in the JSON-array form of a rule (ConfigParser.parseJsonArray: `["override://…", …]`): one 2.6-style
 * override URL per address and service (`*` for every service), which Dubbo matches by host and port.
 */
export function drainUrls(addresses: string[], mode: 'weight' | 'disable', services?: string[], methods?: string[]): string[] {
  const set = Object.entries(drainParams(mode, methods)).map(([k, v]) => `${k}=${v}`);
  const out: string[] = [];
  for (const a of addresses) {
    for (const s of services?.length ? services : ['*']) {
      const g = s.indexOf('/');
      const group = g > 0 ? s.slice(0, g) : undefined;
      const rest = g > 0 ? s.slice(g + 1) : s;
      const c = rest.indexOf(':');
      const iface = c > 0 ? rest.slice(0, c) : rest;
      const version = c > 0 ? rest.slice(c + 1) : undefined;
      const q = [group && `group=${group}`, version && `version=${version}`, 'category=configurators', 'dynamic=false', 'enabled=true', ...set]
        .filter(Boolean)
        .join('&');
      out.push(`override://${a}/${iface}?${q}`);
    }
  }
  return out;
}

/**
 * graywave's drain item (drainItem or drainUrls) with the weights of a warm-up step instead of 0: `weights` maps each
 * weight key of the item (`weight`, `<method>.weight`) to its value; a plain number sets `weight` only.
 */
export function warmItem(item: Record<string, unknown> | string[], weights: number | Record<string, number>): Record<string, unknown> | string[] {
  const w = typeof weights === 'number' ? { weight: weights } : weights;
  if (Array.isArray(item))
    return item.map((u) => u.replace(/([?&])([^=&?]+)=0(?=&|$)/g, (all, sep: string, k: string) => (k in w ? `${sep}${k}=${w[k]}` : all)));
  const params = { ...(item.parameters as Record<string, unknown>) };
  for (const [k, v] of Object.entries(w)) if (k in params) params[k] = v;
  return { ...item, parameters: params };
}

/** The weight keys graywave's item sets (`weight`, `<method>.weight`). */
export function itemWeightKeys(item: Record<string, unknown> | string[]): string[] {
  if (Array.isArray(item)) return [...new Set(item.flatMap((u) => Object.keys(parseDubboUrl(u)?.params ?? {}).filter(isWeightKey)))];
  return Object.keys((item.parameters as Record<string, unknown>) ?? {}).filter(isWeightKey);
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

export const configuratorSkeleton = (key: string, configs: unknown[] = [], scope: 'application' | 'service' = 'application') => ({
  configVersion: 'v2.7',
  scope,
  key,
  enabled: true,
  configs,
});

/**
 * The text with item `i` of a block sequence cut out line-wise (its `- ` line through the line before the next item),
 * so that nothing else of a hand-written rule changes. Undefined when that cannot be done safely (flow style, last item).
 */
function cutBlockItem(text: string, seq: YAML.YAMLSeq, i: number): string | undefined {
  if (seq.flow || seq.items.length < 2) return undefined;
  const m = BASELINE_LINE.exec(text);
  const offset = m ? m[0].length : 0;
  const node = seq.items[i] as YAML.Node | undefined;
  if (!node?.range) return undefined;
  const body = text.slice(offset);
  const start = body.lastIndexOf('\n', node.range[0] - 1) + 1;
  const nextNode = seq.items[i + 1] as YAML.Node | undefined;
  let end: number;
  if (nextNode?.range) end = body.lastIndexOf('\n', nextNode.range[0] - 1) + 1;
  else {
    end = node.range[2];
    if (end < body.length && body[end - 1] !== '\n') end = body.indexOf('\n', end) + 1 || body.length;
  }
  if (end <= start) return undefined;
  return text.slice(0, offset) + body.slice(0, start) + body.slice(end);
}

export type RuleForm = 'yaml' | 'json' | 'json-urls';

/** Which of Dubbo's accepted forms a rule node is written in (graywave writes back in the same form). */
export function ruleForm(text: string): RuleForm {
  const t = text.trim();
  if (t.startsWith('[') || t.startsWith('{')) {
    try {
      const v = JSON.parse(t) as unknown;
      if (Array.isArray(v)) return 'json-urls';
      if (v && typeof v === 'object') return 'json';
    } catch {
      // YAML flow style
    }
  }
  return 'yaml';
}

/** JSON written back in the style it had: one line when it was one line, else two-space indented. */
const jsonText = (v: unknown, like: string) =>
  like.trim().includes('\n') ? JSON.stringify(v, null, 2) + (like.endsWith('\n') ? '\n' : '') : JSON.stringify(v);

/**
 * Adds graywave's `item` to a configurators rule (undefined text: no node yet, created in YAML). The item is an object
 * for the YAML and JSON-object forms and a list of override URLs (drainUrls) for the JSON-array form. Returns the new
 * text, or undefined when the item is already there. `key`/`scope`: the new rule's key and scope when there is none.
 */
export function addConfigItem(
  text: string | undefined,
  key: string,
  item: Record<string, unknown> | string[],
  where: string,
  scope: 'application' | 'service' = 'application',
): string | undefined {
  if (text !== undefined) {
    const form = ruleForm(text);
    if (form === 'json-urls') {
      if (!Array.isArray(item)) throw new ProviderError(`${where} is a JSON list of override URLs; graywave writes URLs there`, false);
      const list = JSON.parse(text) as string[];
      const add = item.filter((u) => !list.includes(u));
      return add.length ? jsonText([...list, ...add], text) : undefined;
    }
    if (Array.isArray(item)) throw new ProviderError(`${where} is not a JSON list of override URLs`, false);
    if (form === 'json') {
      const o = JSON.parse(text) as Record<string, unknown>;
      if (o.enabled !== undefined && String(o.enabled).toLowerCase() !== 'true')
        throw new ProviderError(
          `${where} is switched off (enabled: false): an item added to it would not apply; switch it on or use style override-url`,
          false,
        );
      const configs = Array.isArray(o.configs) ? o.configs : [];
      if (configs.some((c) => isDeepStrictEqual(c, item))) return undefined;
      return jsonText({ ...o, configs: [...configs, item] }, text);
    }
  }
  if (Array.isArray(item)) throw new ProviderError(`${where}: a URL list goes only into a JSON-array rule`, false);
  const r: RuleText = text === undefined ? { doc: new YAML.Document(configuratorSkeleton(key, [], scope)) } : parseRule(text, where);
  const doc = r.doc;
  const enabled = doc.get('enabled');
  if (text !== undefined && enabled !== undefined && enabled !== null && String(enabled).toLowerCase() !== 'true') {
    throw new ProviderError(`${where} is switched off (enabled: false): an item added to it would not apply; switch it on or use style override-url`, false);
  }
  const seq = configsSeq(doc);
  if (indexOfItem(seq, item) >= 0) return undefined;
  seq.add(doc.createNode(item));
  return ruleText(r, text);
}

/** Takes `item` out of the rule, in whatever form the rule now has. Returns what to do with the node, or undefined when the item is not there. */
export function removeConfigItem(
  text: string,
  key: string,
  item: Record<string, unknown> | string[],
  where: string,
  scope: 'application' | 'service' = 'application',
) {
  const form = ruleForm(text);
  if (form === 'json-urls') {
    if (!Array.isArray(item)) return undefined;
    const list = JSON.parse(text) as string[];
    const rest = list.filter((u) => !item.includes(u));
    return rest.length === list.length ? undefined : { kind: 'write' as const, text: jsonText(rest, text) };
  }
  if (Array.isArray(item)) return undefined;
  if (form === 'json') {
    const o = JSON.parse(text) as Record<string, unknown>;
    const configs = Array.isArray(o.configs) ? o.configs : [];
    const i = configs.findIndex((c) => isDeepStrictEqual(c, item));
    if (i < 0) return undefined;
    return { kind: 'write' as const, text: jsonText({ ...o, configs: configs.filter((_, j) => j !== i) }, text) };
  }
  const r = parseRule(text, where);
  const seq = r.doc.get('configs');
  const i = YAML.isSeq(seq) ? indexOfItem(seq, item) : -1;
  if (i < 0) return undefined;
  const cut = cutBlockItem(text, seq as YAML.YAMLSeq, i);
  (seq as YAML.YAMLSeq).items.splice(i, 1);
  const out = settle(r, configuratorSkeleton(key, [], scope));
  // Not the original bytes: keep the rest of the text as it is (a foreign tool's layout) where the item can be cut out.
  if (out.kind === 'write' && cut !== undefined && !(r.baseline && 'text' in r.baseline && out.text === r.baseline.text)) {
    const check = YAML.parse(cut.replace(BASELINE_LINE, '')) as unknown;
    if (isDeepStrictEqual(check, r.doc.toJS())) return { kind: 'write' as const, text: cut };
  }
  return out;
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
// The provider

/** The host's names as a registry may list it: its address and its `aliases:` (host names, other IPs). */
export function hostNames(host: { address: string; aliases?: string[] }): string[] {
  return [host.address, ...(host.aliases ?? [])];
}

/** One registration of a provider: an interface-level URL or a Dubbo 3 application-level instance. */
export interface Found {
  level: 'interface' | 'application';
  /** Interface folder name as stored (URL-encoded); '' for an application-level instance. */
  folder: string;
  /** Interface name; '' for an application-level instance. */
  iface: string;
  url: DubboUrl;
  /** The znode. */
  path: string;
  /** Application level: the instance's metadata (Curator payload.metadata: dubbo.metadata.revision, storage-type, …). */
  meta?: Record<string, string>;
}

/**
 * Reads what Dubbo registered in ZooKeeper:
 *   interface level    <root>/<URL.encode(interface)>/providers/<URL.encode(url)>   (every application, `interfaces` filter)
 *   application level  <servicesRoot>/<application>/<id>, Curator ServiceInstance JSON {name, address, port, payload}
 *                      (ZookeeperServiceDiscovery; only for the applications asked for)
 */
export async function readRegistrations(zk: Zk, o: { root: string; servicesRoot: string; interfaces?: string[]; applications: string[] }): Promise<Found[]> {
  const folders = (await zk.children(o.root)) ?? [];
  const wanted = o.interfaces ? new Set(o.interfaces) : undefined;
  const scan = folders.filter((f) => !['config', 'metadata', 'mapping'].includes(f) && (!wanted || wanted.has(javaUrlDecode(f)))); // config center / Dubbo 3 dirs
  // One request per interface, pipelined on the one connection (large registries have thousands of interfaces).
  const lists = await Promise.all(scan.map((folder) => zk.children(zkJoin(o.root, folder, 'providers'))));
  const out: Found[] = [];
  scan.forEach((folder, i) => {
    const iface = javaUrlDecode(folder);
    for (const child of lists[i] ?? []) {
      const url = parseDubboUrl(javaUrlDecode(child));
      if (url) out.push({ level: 'interface', folder, iface, url, path: zkJoin(o.root, folder, 'providers', child) });
    }
  });
  for (const app of new Set(o.applications)) {
    const dir = zkJoin(o.servicesRoot, app);
    const ids = (await zk.children(dir)) ?? [];
    const nodes = await Promise.all(ids.map((id) => zk.get(zkJoin(dir, id))));
    ids.forEach((id, i) => {
      let inst: { address?: unknown; port?: unknown; payload?: { metadata?: unknown } } | undefined;
      try {
        inst = JSON.parse(nodes[i]?.data.toString('utf8') ?? '') as typeof inst;
      } catch {
        inst = undefined;
      }
      // The node name is the instance id, `ip:port` (ZookeeperServiceDiscovery); the JSON carries address and port.
      let host = typeof inst?.address === 'string' ? inst.address : undefined;
      let port = typeof inst?.port === 'number' ? inst.port : Number(inst?.port);
      if (!host || !Number.isInteger(port)) {
        const c = id.lastIndexOf(':');
        if (c <= 0) return;
        host = id.slice(0, c);
        port = Number(id.slice(c + 1));
        if (!Number.isInteger(port)) return;
      }
      const raw = inst?.payload?.metadata;
      const meta: Record<string, string> = {};
      if (raw && typeof raw === 'object') for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') meta[k] = v;
      out.push({
        level: 'application',
        folder: '',
        iface: '',
        url: { protocol: 'dubbo', host, port, path: '', params: { application: app, side: 'provider' } },
        path: zkJoin(dir, id),
        meta,
      });
    });
  }
  return out;
}

/**
 * Preflight (isRegistered) of dubbo-zookeeper and dubbo-qos: the host's registrations found at interface level and/or
 * application level. None found is `done: false` with `notFound` (what was looked for).
 */
export function registeredCheck(mine: Found[], notFound: string): Check {
  if (mine.length === 0) return { done: false, observed: notFound };
  const addrs = [...new Set(mine.map((f) => addressOf(f.url)))];
  const iface = new Set(mine.filter((f) => f.level === 'interface').map((f) => serviceKey(f.url))).size;
  const app = mine.filter((f) => f.level === 'application').length;
  const parts = [
    iface ? `${iface} service${iface > 1 ? 's' : ''} at interface level` : '',
    app ? `${app} application-level instance${app > 1 ? 's' : ''}` : '',
  ].filter(Boolean);
  return { done: true, observed: `${addrs.slice(0, 5).join(', ')}${addrs.length > 5 ? ` (+${addrs.length - 5})` : ''} registered: ${parts.join(', ')}` };
}

/** Where a Dubbo application registers in ZooKeeper: the options of dubbo-zookeeper and dubbo-qos alike. */
export const dubboRegistryOptions = {
  ...zkConnectionOptions,
  /** Registry root, "/" + the registry URL's `group` param. */
  root: z.string().regex(/^\//, 'must start with /').default('/dubbo'),
  /** Dubbo 3 application-level discovery root (ZookeeperServiceDiscovery: /services/<application>/<ip:port>). */
  servicesRoot: z.string().regex(/^\//, 'must start with /').default('/services'),
  /** Provider application name (the `application` URL param, the /services/<application> folder): only its registrations on the host count. */
  application: z.string().min(1),
};

const options = z
  .object({
    ...dubboRegistryOptions,
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
    /**
     * isDrained also reads what consumers route on now: the URL the provider re-registered (interface level) and the
     * MetadataInfo its application-level instance points to, which show the rule only once the provider applied it
     * (Dubbo 2.7+ providers re-export). false trusts the rule as soon as it is written (unsafe; for registrations that
     * nobody re-exports).
     */
    awaitProviderUrl: z.boolean().default(true),
    /** Dubbo 3 metadata report root in this ZooKeeper (metadata-type remote: <metadataRoot>/<application>/<revision>). Default <root>/metadata. */
    metadataRoot: z.string().regex(/^\//, 'must start with /').optional(),
  })
  .strict();
type Options = z.infer<typeof options>;

/** A provider URL written by Dubbo 2.6 or older (no `release` param, `dubbo=2.6.x`): it applies only 2.6 override URLs. */
export function isDubbo26(u: DubboUrl): boolean {
  if (u.params.release) return false;
  const m = /^(\d+)\.(\d+)/.exec(u.params.dubbo ?? '');
  return !!m && (Number(m[1]) < 2 || (Number(m[1]) === 2 && Number(m[2]) < 7 && u.params.dubbo !== '2.0.2'));
}

/** One rule node graywave added an item to. `item`: an object (YAML/JSON rule) or override URLs (JSON-array rule). */
interface RuleEdit {
  path: string;
  scope: 'application' | 'service';
  /** The key a rule graywave creates gets (application name, or `[group/]interface[:version]`). */
  key: string;
  item: Record<string, unknown> | string[];
}

interface DrainSaved {
  style: 'config-rule' | 'override-url';
  addresses: string[];
  /** Effective weight of each address before the drain (for the journal reader; restore does not need it). */
  before: Record<string, Effective>;
  /** config-rule: the items graywave added (the application rule, and service rules where those would win otherwise). */
  rules?: RuleEdit[];
  /** config-rule, journals written before `rules`: the application rule and its item (null: not ours). */
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

/** Rule nodes as read for one judgement: path -> text (undefined: no node), with the znode version for conditional writes. */
type RuleNodes = Map<string, ZkNode | undefined>;

/** What consumers route on now for one registration (or one service of an application-level instance). */
interface Published {
  f: Found;
  /** undefined: cannot be read (an application-level instance with its MetadataInfo in the provider only). */
  serving: boolean | undefined;
  text: string;
}

interface Judged {
  f: Found;
  /** Service key judged (an application-level instance is judged once per service it is known to provide). */
  key: string;
  eff: Effective;
  /** Consumer-side items that can route to it at some consumer. */
  risks: string[];
}

class DubboZookeeper extends ZkProviderBase implements Provider {
  private readonly label: string;
  private readonly configRoot: string;
  private readonly metadataRoot: string;

  constructor(private readonly o: Options) {
    const label = `dubbo-zookeeper (${o.application})`;
    super(zkOptionsOf(o, label));
    this.label = label;
    this.configRoot = o.configRoot ?? zkJoin(o.root, 'config', 'dubbo');
    this.metadataRoot = o.metadataRoot ?? zkJoin(o.root, 'metadata');
  }

  private get rulePath() {
    return zkJoin(this.configRoot, `${this.o.application}.configurators`);
  }

  private get tagPath() {
    return zkJoin(this.configRoot, `${this.o.application}.tag-router`);
  }

  /** The service rule of a provider URL: <configRoot>/<interface>:<version>:<group>.configurators (DynamicConfiguration.getRuleKey). */
  private serviceRulePath(u: DubboUrl) {
    return zkJoin(this.configRoot, `${colonKey(u)}.configurators`);
  }

  private allProviders(): Promise<Found[]> {
    return readRegistrations(this.zk, {
      root: this.o.root,
      servicesRoot: this.o.servicesRoot,
      interfaces: this.o.interfaces,
      applications: [this.o.application],
    });
  }

  /**
   * `inventory: {provider, service}`: the distinct provider addresses registered under <root>/<interface>/providers.
   * `service` is either an interface (`com.foo.OrderService`, optionally as a service key `group/interface:version`)
   * or an application name (the `application` URL param: every interface it provides, within `interfaces` when set;
   * its Dubbo 3 application-level instances under <servicesRoot>/<application> too).
   * One host per IP: name and address = the IP, vars.port = its (lowest) provider port (vars.ports when several);
   * labels: `application` and, when the provider URL has them, `tag` (its `dubbo.tag`), `group`, `version` (the last
   * two only when listing an interface: an application's interfaces may differ in them). Consumers, routers
   * and configurators are not hosts. Nothing registered is an error, naming where it looked.
   */
  async listHosts(service: string): Promise<{ name: string; address: string; labels: Record<string, string>; vars: Record<string, unknown> }[]> {
    const isKey = /[/:]/.test(service);
    let all = await readRegistrations(this.zk, {
      root: this.o.root,
      servicesRoot: this.o.servicesRoot,
      interfaces: this.o.interfaces,
      applications: isKey ? [] : [service],
    });
    let found = all.filter((f) => f.level === 'interface' && (f.iface === service || (isKey && serviceKey(f.url) === service)));
    const how = found.length ? 'interface' : 'application';
    if (!found.length) found = all.filter((f) => f.url.params.application === service);
    all = [];
    found = found.filter(
      (f) =>
        f.url.host && f.url.port > 0 && (f.url.params.category ?? 'providers') === 'providers' && (this.o.port === undefined || f.url.port === this.o.port),
    );
    if (found.length === 0) {
      throw new ProviderError(
        `${this.label}: no provider registered for ${service} under ${this.o.root}/<interface>/providers or ${this.o.servicesRoot}/${service} on ${this.o.connect} ` +
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
      for (const [k, param] of [
        ['application', 'application'],
        ['tag', 'dubbo.tag'],
        ...(how === 'interface'
          ? [
              ['group', 'group'],
              ['version', 'version'],
            ]
          : []),
      ] as const) {
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
    return (
      hostMatches(f.url.host, hostNames(ctx.host)) &&
      f.url.params.application === this.o.application &&
      (this.o.port === undefined || f.url.port === this.o.port)
    );
  }

  private async mine(ctx: ProviderContext): Promise<{ all: Found[]; mine: Found[] }> {
    const all = await this.allProviders();
    return { all, mine: all.filter((f) => this.isMine(ctx, f)) };
  }

  private notFound(ctx: ProviderContext): string {
    const port = this.o.port ? ` port ${this.o.port}` : '';
    const names = hostNames(ctx.host);
    return (
      `no provider of application ${this.o.application} registered from ${names.join(' / ')}${port} under ${this.o.root}/<interface>/providers or ${zkJoin(this.o.servicesRoot, this.o.application)}` +
      (names.length === 1 ? ' (a provider registered by another name or IP of this host needs `aliases:` on the host)' : '')
    );
  }

  /** Overrides under <root>/<folder>/configurators (2.6 style) as configurators. */
  private async overridesOf(folder: string): Promise<Configurator[]> {
    const dir = zkJoin(this.o.root, folder, 'configurators');
    const names = (await this.zk.children(dir)) ?? [];
    const out: Configurator[] = [];
    for (const n of names) {
      const url = parseDubboUrl(javaUrlDecode(n));
      // ZookeeperRegistry delivers only overrides that match the subscriber (UrlUtils.isMatch: enabled, category).
      if (url && (url.params.category ?? 'configurators') === 'configurators' && (url.params.enabled ?? 'true') !== 'false')
        out.push({ url, source: zkJoin(dir, n) });
    }
    return out;
  }

  private async readNode(nodes: RuleNodes, path: string): Promise<ZkNode | undefined> {
    if (!nodes.has(path)) nodes.set(path, await this.zk.get(path));
    return nodes.get(path);
  }

  /** The configurators of a rule node as Dubbo would use them (an unreadable rule: none, like Dubbo). */
  private async rule(nodes: RuleNodes, path: string): Promise<Configurator[]> {
    const node = await this.readNode(nodes, path);
    if (!node) return [];
    const text = node.data.toString('utf8');
    return parseRuleText(text.replace(BASELINE_LINE, ''), path).configurators;
  }

  /**
   * Other applications' rules (<configRoot>/<app>.configurators, no ':' in the name): a consumer application applies
   * its own rule to the providers it calls (RegistryDirectory's ConsumerConfigurationListener), so its consumer-side
   * items can route to this host. Read once per judgement, pipelined.
   */
  private async consumerAppRules(nodes: RuleNodes): Promise<Configurator[]> {
    const names = ((await this.zk.children(this.configRoot)) ?? []).filter(
      (n) => n.endsWith('.configurators') && !n.includes(':') && n !== `${this.o.application}.configurators`,
    );
    const paths = names.map((n) => zkJoin(this.configRoot, n)).filter((p) => !nodes.has(p));
    const read = await Promise.all(paths.map((p) => this.zk.get(p)));
    paths.forEach((p, i) => nodes.set(p, read[i]));
    const out: Configurator[] = [];
    for (const n of names) out.push(...(await this.rule(nodes, zkJoin(this.configRoot, n))).filter((c) => c.url.params.side === 'consumer'));
    return out;
  }

  /**
   * The state Dubbo gives each registration of this host (dubbo-rules.ts `effective`): interface-level URLs with their
   * interface's 2.6 overrides, the application rule and their service rule; application-level instances once per
   * service the same address provides at interface level (or once for the application when none is known).
   */
  private async judge(mine: Found[], all: Found[], nodes: RuleNodes): Promise<Judged[]> {
    const overrides = new Map<string, Configurator[]>();
    const out: Judged[] = [];
    const app = await this.rule(nodes, this.rulePath);
    const consumerApps = mine.length ? await this.consumerAppRules(nodes) : [];
    const judgeUrl = async (f: Found, url: DubboUrl, ov: Configurator[], appLevel: boolean) => {
      const service = await this.rule(nodes, this.serviceRulePath(url));
      // A Dubbo 2.6 provider reads no config-center rule, so its application rule never reaches consumers.
      const legacy = f.level === 'interface' && isDubbo26(url);
      const eff = effective(url, { overrides: ov, application: legacy ? [] : app, service }, appLevel);
      if (legacy && serving(eff)) eff.decidedBy ??= 'a Dubbo 2.6 provider (no config-center rules; use style: override-url)';
      const risks = consumerRisks(url, [...app, ...consumerApps, ...service]).map(
        (c) => `${c.source} (side: consumer, ${'weight' in c.url.params ? `weight ${c.url.params.weight}` : `disabled ${c.url.params.disabled}`})`,
      );
      out.push({ f, key: serviceKey(url), eff, risks });
    };
    for (const f of mine) {
      if (f.level === 'interface') {
        if (!overrides.has(f.folder)) overrides.set(f.folder, await this.overridesOf(f.folder));
        await judgeUrl(f, f.url, overrides.get(f.folder)!, false);
        continue;
      }
      const same = all.filter(
        (g) =>
          g.level === 'interface' &&
          g.url.params.application === f.url.params.application &&
          hostMatches(g.url.host, [f.url.host]) &&
          g.url.port === f.url.port,
      );
      if (same.length === 0) await judgeUrl(f, f.url, [], true);
      for (const g of same) {
        const p = g.url.params;
        const params: Record<string, string> = { ...f.url.params, interface: g.iface };
        if (p.group) params.group = p.group;
        if (p.version) params.version = p.version;
        await judgeUrl(f, { ...f.url, path: g.iface, params }, [], true);
      }
    }
    return out;
  }

  /**
   * What consumers route on now (awaitProviderUrl, the default). Interface-level consumers route on the URL the provider
   * registered, which carries the provider application's rule only once the provider applied it and re-registered
   * (RegistryProtocol.OverrideListener -> reExport: unregister the old URL, register the configured one); they apply the
   * 2.6 overrides and the service rule themselves (dubbo-rules.ts consumerView). Application-level consumers route on
   * the MetadataInfo of the revision the instance points to (instanceServices), with the service rule applied by
   * themselves. One entry per registration (and service of an instance): serving, or undefined when it cannot be read.
   */
  private async published(mine: Found[], nodes: RuleNodes): Promise<Published[]> {
    const out: Published[] = [];
    const overrides = new Map<string, Configurator[]>();
    for (const f of mine) {
      if (f.level === 'interface') {
        if (!overrides.has(f.folder)) overrides.set(f.folder, await this.overridesOf(f.folder));
        const service = await this.rule(nodes, this.serviceRulePath(f.url));
        const e = consumerView(f.url, { overrides: overrides.get(f.folder)!, application: [], service });
        out.push({ f, serving: serving(e), text: `${addressOf(f.url)} ${serviceKey(f.url)} is registered with ${stateText(e)}` });
        continue;
      }
      const inst = await this.instanceServices(f);
      if ('unknown' in inst) {
        out.push({ f, serving: undefined, text: `${addressOf(f.url)} application-level instance ${f.path}: ${inst.unknown}` });
        continue;
      }
      // With `interfaces:` only those services of the instance are drained (as at interface level).
      for (const u of inst.urls.filter((x) => !this.o.interfaces || this.o.interfaces.includes(x.path))) {
        const service = await this.rule(nodes, this.serviceRulePath(u));
        const e = consumerView(u, { overrides: [], application: [], service }, true);
        out.push({ f, serving: serving(e), text: `${addressOf(f.url)} ${serviceKey(u)} at application level: ${stateText(e)} in ${inst.path}` });
      }
    }
    return out;
  }

  /**
   * The services of an application-level instance as Dubbo 3 consumers see them (InstanceAddressURL): the parameters of
   * the provider's MetadataInfo for the revision in the instance metadata (`dubbo.metadata.revision`), each ServiceInfo
   * on the instance's port (or without one), a parameter the service lacks taken from the instance metadata. Dubbo
   * keeps MetadataInfo in ZooKeeper only with `dubbo.metadata.storage-type` remote (ZookeeperMetadataReport:
   * <metadataRoot>/<application>/<revision>); with local (the default) consumers ask the provider's MetadataService,
   * which graywave cannot: unknown.
   */
  private async instanceServices(f: Found): Promise<{ urls: DubboUrl[]; path: string } | { unknown: string }> {
    const meta = f.meta ?? {};
    const storage = meta['dubbo.metadata.storage-type'] || 'local';
    const app = f.url.params.application ?? this.o.application;
    if (storage !== 'remote') {
      // Where consumers fetch it (ServiceInstanceMetadataUtils: dubbo.metadata-service.url-params, e.g. {"port":"20880","protocol":"dubbo"}).
      const ms = meta['dubbo.metadata-service.url-params'];
      return {
        unknown:
          `its weight is in the provider's own MetadataService (dubbo.metadata.storage-type ${storage}${ms ? `, served at ${f.url.host} ${ms}` : ''}), not in ZooKeeper, so graywave cannot see whether Dubbo 3 consumers still route to it. ` +
          `Run the providers with metadata-type remote (MetadataInfo under ${this.metadataRoot}), or set awaitProviderUrl: false to trust the rule once written`,
      };
    }
    const rev = meta['dubbo.metadata.revision'];
    if (!rev) return { unknown: 'no dubbo.metadata.revision in its instance metadata' };
    const path = zkJoin(this.metadataRoot, app, rev);
    const node = await this.zk.get(path);
    if (!node) return { unknown: `its MetadataInfo ${path} is not in ZooKeeper` };
    let info: { services?: unknown } | undefined;
    try {
      info = JSON.parse(node.data.toString('utf8')) as typeof info;
    } catch {
      return { unknown: `its MetadataInfo ${path} is not JSON` };
    }
    const urls: DubboUrl[] = [];
    const services = info?.services && typeof info.services === 'object' ? Object.values(info.services as Record<string, unknown>) : [];
    for (const raw of services) {
      const sv = (raw && typeof raw === 'object' ? raw : {}) as {
        name?: unknown;
        group?: unknown;
        version?: unknown;
        protocol?: unknown;
        port?: unknown;
        params?: unknown;
      };
      // ServiceDiscoveryRegistryDirectory: serviceInfo.getPort() <= 0 || serviceInfo.getPort() == instance port.
      const port = typeof sv.port === 'number' ? sv.port : -1;
      if (port > 0 && port !== f.url.port) continue;
      const name = typeof sv.name === 'string' ? sv.name : '';
      if (!name) continue;
      const params: Record<string, string> = {};
      for (const k of ['weight', 'disabled', 'enabled']) if (meta[k]) params[k] = meta[k]!;
      if (sv.params && typeof sv.params === 'object')
        for (const [k, v] of Object.entries(sv.params)) if (v !== null && v !== undefined && String(v) !== '') params[k] = String(v);
      delete params.group;
      delete params.version;
      if (typeof sv.group === 'string' && sv.group) params.group = sv.group;
      if (typeof sv.version === 'string' && sv.version) params.version = sv.version;
      Object.assign(params, { interface: name, application: app, side: 'provider' });
      urls.push({ protocol: typeof sv.protocol === 'string' ? sv.protocol : 'dubbo', host: f.url.host, port: f.url.port, path: name, params });
    }
    if (urls.length === 0) return { unknown: `its MetadataInfo ${path} lists no service on port ${f.url.port}` };
    return { urls, path };
  }

  private describe(j: Judged): string {
    const state = stateText(j.eff);
    const lvl = j.f.level === 'application' ? ` (application-level ${j.f.path})` : '';
    return `${addressOf(j.f.url)} ${j.key || this.o.application}${lvl} ${state}${j.eff.decidedBy ? ` by ${j.eff.decidedBy}` : ''}${j.risks.length ? `; routed by consumer-side ${j.risks.join(', ')}` : ''}`;
  }

  private stillServing(judged: Judged[]): Judged[] {
    return judged.filter((j) => serving(j.eff) || j.risks.length > 0);
  }

  /** Refuse to drain when, for some service, no provider outside this host would keep serving (reference §1.4). */
  private async guardLast(ctx: ProviderContext, all: Found[], mine: Found[], nodes: RuleNodes): Promise<void> {
    if (this.o.allowDrainLast) return;
    const mineSet = new Set(mine);
    const problems: string[] = [];
    for (const key of new Set(mine.filter((f) => f.level === 'interface').map((f) => serviceKey(f.url)))) {
      const others = all.filter((f) => !mineSet.has(f) && f.level === 'interface' && serviceKey(f.url) === key);
      const judged = await this.judge(others, all, nodes);
      if (!judged.some((j) => serving(j.eff))) {
        const seen = judged.map((j) => `${addressOf(j.f.url)} ${stateText(j.eff)}`);
        problems.push(`${key} (other providers: ${seen.length ? seen.join(', ') : 'none'})`);
      }
    }
    // Application-level discovery: the other instances of the application must keep serving.
    if (mine.some((f) => f.level === 'application')) {
      const others = all.filter((f) => !mineSet.has(f) && f.level === 'application');
      const judged = await this.judge(others, all, nodes);
      if (!judged.some((j) => serving(j.eff))) {
        problems.push(
          `${this.o.application} at application level (other instances: ${others.length ? [...new Set(judged.map((j) => `${addressOf(j.f.url)} ${stateText(j.eff)}`))].join(', ') : 'none'})`,
        );
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

  /** The rule nodes as they would be after `edits` (for the prediction; nothing is written). */
  private planned(nodes: RuleNodes, edits: RuleEdit[]): RuleNodes {
    const next: RuleNodes = new Map(nodes);
    for (const e of edits) {
      const node = nodes.get(e.path);
      const text = node?.data.toString('utf8');
      const t = addConfigItem(text, e.key, e.item, `${this.label}: rule ${e.path}`, e.scope);
      if (t !== undefined) next.set(e.path, { data: Buffer.from(t), version: node?.version ?? -1 } as ZkNode);
    }
    return next;
  }

  /** The item for a rule node in its form (a URL list for a JSON-array rule). */
  private async itemFor(
    nodes: RuleNodes,
    path: string,
    addresses: string[],
    services: string[] | undefined,
    methods: string[],
  ): Promise<Record<string, unknown> | string[]> {
    const node = await this.readNode(nodes, path);
    const text = node?.data.toString('utf8');
    if (text !== undefined && ruleForm(text) === 'json-urls') return drainUrls(addresses, this.o.mode, services, methods);
    return drainItem(addresses, this.o.mode, services, methods);
  }

  async drain(ctx: ProviderContext): Promise<DrainSaved> {
    const previous = ctx.previous as DrainSaved | undefined;
    return withCas(this.label, `drain ${ctx.host.name}`, async () => {
      const { all, mine } = await this.mine(ctx);
      if (mine.length === 0)
        throw new ProviderError(`${this.label}: cannot drain ${ctx.host.name}: ${this.notFound(ctx)}. Is the application running there?`, true);
      const nodes: RuleNodes = new Map();
      const judged = await this.judge(mine, all, nodes);
      const addresses = [...new Set(mine.map((f) => addressOf(f.url)))].sort();
      const before: Record<string, Effective> = { ...(previous?.before ?? {}) };
      for (const j of judged)
        before[addressOf(j.f.url)] ??= { weight: j.eff.weight, disabled: j.eff.disabled, ...(j.eff.methods ? { methods: j.eff.methods } : {}) };
      // Methods with a weight > 0 of their own keep their calls at weight 0: the item gives them weight 0 too.
      const methods = this.o.mode === 'weight' ? [...new Set(judged.flatMap((j) => servingMethods(j.eff)))].sort() : [];
      await this.guardLast(ctx, all, mine, nodes);
      if (this.o.style === 'override-url') return this.drainOverrides(ctx, mine, addresses, before, nodes, methods);

      // Full service keys (group/interface:version): Dubbo compares those, an interface name alone would not match.
      const services = this.o.interfaces ? [...new Set(mine.filter((f) => f.level === 'interface').map((f) => serviceKey(f.url)))].sort() : undefined;
      if (services && services.length === 0) {
        throw new ProviderError(
          `${this.label}: cannot drain ${ctx.host.name} for interfaces ${this.o.interfaces!.join(', ')}: none of them is registered from it at interface level, so their full service keys (group/interface:version) are unknown`,
          false,
        );
      }
      const edits: RuleEdit[] = [
        { path: this.rulePath, scope: 'application', key: this.o.application, item: await this.itemFor(nodes, this.rulePath, addresses, services, methods) },
      ];
      // Predict Dubbo's result with the application item. Where a service rule still wins, add the item there too
      // (applied after the application rule); what still wins then (a 2.6 override, a consumer-side item) is refused.
      let after = await this.judge(mine, all, this.planned(nodes, edits));
      for (const j of this.stillServing(after)) {
        const by = j.eff.decidedBy ?? '';
        const url = j.f.level === 'interface' ? j.f.url : undefined;
        const path = url ? this.serviceRulePath(url) : undefined;
        if (!url || !path || !by.startsWith(path + ' ') || j.risks.length > 0) continue;
        const addr = addressOf(j.f.url);
        const existing = edits.find((e) => e.path === path);
        if (existing) {
          if (!Array.isArray(existing.item) && !(existing.item.addresses as string[]).includes(addr)) (existing.item.addresses as string[]).push(addr);
          continue;
        }
        edits.push({ path, scope: 'service', key: serviceKey(url), item: await this.itemFor(nodes, path, [addr], undefined, methods) });
      }
      if (edits.length > 1) after = await this.judge(mine, all, this.planned(nodes, edits));
      const losing = this.stillServing(after);
      if (losing.length > 0) {
        throw new ProviderError(
          `${this.label}: refusing to drain ${ctx.host.name}: Dubbo would keep routing to it after graywave's rule, because another rule wins: ` +
            `${losing
              .slice(0, 5)
              .map((j) => this.describe(j))
              .join('; ')}${losing.length > 5 ? ` (+${losing.length - 5})` : ''}. ` +
            `Remove or change that rule (it is applied after ${this.rulePath}), then run again.`,
          false,
        );
      }
      // Every node in one transaction, each on the version judged above.
      const { ops, mineEdits } = await this.ruleOps(ctx, edits, nodes, previous);
      // The application rule is where concurrent drains of one application meet: even when this drain writes nothing
      // there, its version must still be the one judged (the last-provider guard above depends on it).
      const appNode = nodes.get(this.rulePath);
      if (ops.length > 0 && appNode && !ops.some((o) => o.path === this.rulePath)) ops.push({ op: 'check', path: this.rulePath, version: appNode.version });
      await this.zk.multi(ops);
      for (const e of mineEdits)
        ctx.log(
          `dubbo: ${this.o.mode === 'weight' ? `weight 0${methods.length ? ` (and ${methods.map((m) => `${m}.weight`).join(', ')} 0)` : ''}` : 'disabled'} for ${addresses.join(', ')} in ${e.path}`,
        );
      return { style: 'config-rule', addresses, before, rules: mineEdits };
    });
  }

  /** The transaction's writes for the rule edits (each node on the version judged) and the edits that are graywave's. */
  private async ruleOps(
    ctx: ProviderContext,
    edits: RuleEdit[],
    nodes: RuleNodes,
    previous: DrainSaved | undefined,
  ): Promise<{ ops: ZkOp[]; mineEdits: RuleEdit[] }> {
    const ops: ZkOp[] = [];
    const mineEdits: RuleEdit[] = [];
    for (const e of edits) {
      const node = nodes.get(e.path);
      let text = node?.data.toString('utf8');
      // Drained again after a warm-up step (a failing watch check, rollback): graywave's item at its warm-up weight goes.
      const warm = previous && text !== undefined ? this.withoutOurs(text, e, previous, false) : undefined;
      if (warm) text = warm.next.kind === 'write' ? warm.next.text : undefined;
      const next = addConfigItem(text, e.key, e.item, `${this.label}: rule ${e.path}`, e.scope) ?? (warm ? (text ?? '') : undefined);
      if (next === undefined) {
        // The same item is already there: ours from an interrupted attempt, or someone else's (then not ours to remove).
        const prevEdits = previous?.rules ?? (previous?.rule?.item ? [{ path: previous.rule.path, item: previous.rule.item }] : []);
        const ours = prevEdits.some((p) => p.path === e.path && isDeepStrictEqual(p.item, e.item)) || this.notInBaseline(text!, e.item);
        ctx.log(`dubbo: ${e.path} already has that item (${ours ? 'written by graywave' : 'not ours, left alone on restore'})`);
        if (ours) mineEdits.push(e);
        continue;
      }
      if (node) ops.push({ op: 'set', path: e.path, data: next, version: node.version });
      else {
        await this.ensureParent(e.path);
        ops.push({ op: 'create', path: e.path, data: next });
      }
      mineEdits.push(e);
    }
    return { ops, mineEdits };
  }

  /** True when the rule carries a graywave baseline in which `item` does not appear: then graywave added it. */
  private notInBaseline(text: string, item: Record<string, unknown> | string[]): boolean {
    if (ruleForm(text) !== 'yaml') return false;
    const b = parseRule(text, this.rulePath).baseline;
    if (!b) return false;
    if ('absent' in b) return true;
    const configs = (YAML.parse(b.text) as { configs?: unknown[] } | null)?.configs ?? [];
    return !configs.some((c) => isDeepStrictEqual(c, item));
  }

  private async ensureParent(path: string): Promise<void> {
    const parent = path.slice(0, path.lastIndexOf('/'));
    if (!(await this.zk.exists(parent))) await this.zk.createWithParents(parent, CREATED_BY_GRAYWAVE, CREATED_BY_GRAYWAVE);
  }

  private async createRule(path: string, text: string): Promise<void> {
    await this.ensureParent(path);
    await this.zk.create(path, text);
  }

  private overrideUrl(f: Found, methods: string[]): string {
    const params: Record<string, string> = { category: 'configurators', dynamic: 'false', enabled: 'true' };
    if (f.url.params.group) params.group = f.url.params.group;
    if (f.url.params.version) params.version = f.url.params.version;
    for (const [k, v] of Object.entries(drainParams(this.o.mode, methods))) params[k] = String(v);
    return formatDubboUrl({ protocol: 'override', host: f.url.host, port: f.url.port, path: f.iface, params });
  }

  private async drainOverrides(
    ctx: ProviderContext,
    mine: Found[],
    addresses: string[],
    before: Record<string, Effective>,
    nodes: RuleNodes,
    methods: string[],
  ): Promise<DrainSaved> {
    const appLevel = mine.filter((f) => f.level === 'application');
    if (appLevel.length > 0) {
      // ServiceDiscoveryRegistryDirectory applies no 2.6 overrides: application-level consumers would not see it.
      throw new ProviderError(
        `${this.label}: cannot drain ${ctx.host.name} with style override-url: it is registered at application level (${appLevel.map((f) => f.path).join(', ')}), where Dubbo applies no 2.6 override URLs; use style config-rule`,
        false,
      );
    }
    const ops: ZkOp[] = [];
    const paths: string[] = [];
    const dirs = new Map<string, { version: number; data: Buffer } | undefined>();
    for (const f of mine) {
      const dir = zkJoin(this.o.root, f.folder, 'configurators');
      const path = zkJoin(dir, javaUrlEncode(this.overrideUrl(f, methods)));
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
    // Predict: overrides come first in Dubbo's order, so a rule after them may still win.
    const all = mine;
    const judgedNow = await this.judge(mine, all, nodes);
    const predicted = judgedNow.map((j) => {
      const url = {
        ...j.f.url,
        params: { ...j.f.url.params, ...Object.fromEntries(Object.entries(drainParams(this.o.mode, methods)).map(([k, v]) => [k, String(v)])) },
      };
      return { j, url };
    });
    const losing: string[] = [];
    for (const { j, url } of predicted) {
      const service = await this.rule(nodes, this.serviceRulePath(url));
      const app = await this.rule(nodes, this.rulePath);
      const eff = effective(url, { overrides: [], application: app, service });
      if (serving(eff) || j.risks.length) losing.push(this.describe({ ...j, eff }));
    }
    if (losing.length > 0) {
      throw new ProviderError(
        `${this.label}: refusing to drain ${ctx.host.name}: Dubbo would keep routing to it after graywave's override URLs, because a later rule wins: ${losing.slice(0, 5).join('; ')}. Remove or change that rule, then run again.`,
        false,
      );
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
      const nodes: RuleNodes = new Map();
      const judged = await this.judge(mine, all, nodes);
      const still = this.stillServing(judged);
      if (still.length > 0) {
        const what = [...new Set(still.map((j) => this.describe(j)))];
        return { done: false, observed: `still serving: ${what.slice(0, 5).join(', ')}${what.length > 5 ? ` (+${what.length - 5})` : ''}` };
      }
      // The rules alone must drain it: a registered URL can still carry weight=0 from a rule taken away meanwhile
      // (the provider re-exports without it in a moment). Judged again from the URLs without their weight/disabled values.
      const bare = mine.map((f) => ({
        ...f,
        url: { ...f.url, params: Object.fromEntries(Object.entries(f.url.params).filter(([k]) => !isWeightKey(k) && k !== 'disabled' && k !== 'enabled')) },
      }));
      const stale = this.stillServing(await this.judge(bare, all, nodes));
      if (stale.length > 0) {
        const what = [...new Set(stale.map((j) => this.describe(j)))];
        return {
          done: false,
          observed: `no rule keeps it drained (its registered weight is left from a rule that is gone; the provider re-exports without it): ${what.slice(0, 3).join(', ')}${what.length > 3 ? ` (+${what.length - 3})` : ''}`,
        };
      }
      if (this.o.awaitProviderUrl) {
        const unseen = (await this.published(mine, nodes))
          .filter((x) => x.serving !== false)
          .map((x) => (x.serving ? `${x.text} (the provider has not ${x.f.level === 'interface' ? 're-registered with' : 'published'} the rule yet)` : x.text));
        if (unseen.length > 0)
          return {
            done: false,
            observed: `the rules drain it, but consumers still route to it: ${unseen.slice(0, 3).join('; ')}${unseen.length > 3 ? ` (+${unseen.length - 3})` : ''}`,
          };
      }
      const addrs = [...new Set(mine.map((f) => addressOf(f.url)))];
      const app = mine.some((f) => f.level === 'application') ? ' (and its application-level instance)' : '';
      return {
        done: true,
        observed: `${addrs.join(', ')}: ${this.o.mode === 'weight' ? 'weight 0' : 'disabled'} on ${new Set(judged.map((j) => j.key)).size} services${app}`,
      };
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
    const edits = this.editsOf(s);
    if (edits.length === 0) {
      ctx.log(`dubbo: nothing to restore (the weight item was not written by graywave)`);
      return;
    }
    for (const e of edits) {
      await withCas(this.label, `restore ${ctx.host.name}`, async () => {
        const node = await this.zk.get(e.path);
        if (!node) return ctx.log(`dubbo: ${e.path} is gone; nothing to restore there`);
        // Whatever form the rule has now (a foreign tool may have rewritten it): only graywave's item goes (at weight 0,
        // or at the weight a warm-up step gave it).
        const next = this.withoutOurs(node.data.toString('utf8'), e, s, true)?.next;
        if (!next) return ctx.log(`dubbo: the item for ${s.addresses.join(', ')} is no longer in ${e.path}`);
        if (next.kind === 'delete') {
          await this.zk.remove(e.path, node.version);
          await removeOurEmptyParents(this.zk, e.path, this.o.root);
        } else {
          await this.zk.set(e.path, next.text, node.version);
        }
        ctx.log(`dubbo: item for ${s.addresses.join(', ')} removed from ${e.path}`);
      });
    }
  }

  /** The rule items a drain record says graywave added (journals from before `rules`: the application rule's item). */
  private editsOf(s: DrainSaved): RuleEdit[] {
    return s.rules ?? (s.rule?.item ? [{ path: s.rule.path, scope: 'application', key: this.o.application, item: s.rule.item }] : []);
  }

  /**
   * The weights the host had before the drain, per weight key of graywave's item: `weight` (what Dubbo gave its
   * provider URLs then: the URL's `weight` param, default 100, with the rules of that time) and `<method>.weight` for
   * the methods drain gave weight 0. undefined when its addresses had different weights (one item cannot say both).
   */
  private hadWeights(s: DrainSaved, keys: string[] = ['weight']): Record<string, number> | undefined {
    const out: Record<string, number> = {};
    for (const k of keys) {
      const m = k === 'weight' ? undefined : k.slice(0, -'.weight'.length);
      const ws = [
        ...new Set(
          s.addresses.map((a) =>
            s.before?.[a]?.disabled ? 0 : m === undefined ? (s.before?.[a]?.weight ?? 100) : (s.before?.[a]?.methods?.[m] ?? s.before?.[a]?.weight ?? 100),
          ),
        ),
      ];
      if (ws.length !== 1) return undefined;
      out[k] = ws[0]!;
    }
    return out;
  }

  /** A warm-up step's weights: round(percent × what each key had), at least 1 where it had > 0. */
  private static warmWeights(had: Record<string, number>, percent: number): Record<string, number> {
    return Object.fromEntries(Object.entries(had).map(([k, w]) => [k, w > 0 ? Math.max(1, Math.round((w * percent) / 100)) : 0]));
  }

  /**
   * Takes graywave's item of edit `e` out of `text`: the item as drained (withDrained) or with the weights a warm-up
   * step gave it (percent 1–99). Returns what to write and the weights it had, or undefined when not there.
   */
  private withoutOurs(text: string, e: RuleEdit, s: DrainSaved, withDrained: boolean) {
    const had = this.hadWeights(s, itemWeightKeys(e.item));
    const where = `${this.label}: rule ${e.path}`;
    const tried = new Set<string>();
    const candidates: Record<string, number>[] = withDrained ? [{}] : [];
    for (let p = 1; p < 100 && had && Object.values(had).some((w) => w > 0); p++) candidates.push(DubboZookeeper.warmWeights(had, p));
    for (const w of candidates) {
      const key = JSON.stringify(w);
      if (tried.has(key)) continue;
      tried.add(key);
      const next = removeConfigItem(text, e.key, Object.keys(w).length === 0 ? e.item : warmItem(e.item, w), where, e.scope);
      if (next) return { next, weights: key };
    }
    return undefined;
  }

  /**
   * Warm-up (mode weight, style config-rule): graywave's own item(s) get round(percent × the weight the host had) instead
   * of 0 (each method weight drain set to 0: percent of that method's own weight), in place of the drain item; restore
   * then removes the item whatever weights it has now.
   */
  async setWeight(ctx: ProviderContext, saved: unknown, percent: number): Promise<void> {
    const s = saved as DrainSaved | undefined;
    if (!s || s.style !== 'config-rule' || this.o.mode !== 'weight') {
      throw new ProviderError(
        `${this.label}: warm-up needs mode weight and style config-rule (this drain: ${s?.style ?? 'no record'}, mode ${this.o.mode})`,
        false,
      );
    }
    for (const e of this.editsOf(s)) {
      const had = this.hadWeights(s, itemWeightKeys(e.item));
      if (had === undefined)
        throw new ProviderError(
          `${this.label}: cannot warm ${ctx.host.name} up: its addresses had different weights (${s.addresses.map((a) => `${a} ${s.before?.[a] ? stateText(s.before[a]!) : '?'}`).join(', ')})`,
          false,
        );
      if (Object.values(had).every((w) => w === 0)) {
        ctx.log(`dubbo: ${s.addresses.join(', ')} had weight 0 before the drain: nothing to warm up`);
        continue;
      }
      const w = DubboZookeeper.warmWeights(had, percent);
      await withCas(this.label, `warm up ${ctx.host.name}`, async () => {
        const node = await this.zk.get(e.path);
        const text = node?.data.toString('utf8');
        const ours = text === undefined ? undefined : this.withoutOurs(text, e, s, true);
        if (ours?.weights === JSON.stringify(w)) return;
        const base = ours ? (ours.next.kind === 'write' ? ours.next.text : undefined) : text;
        const next = addConfigItem(base, e.key, warmItem(e.item, w), `${this.label}: rule ${e.path}`, e.scope);
        if (next === undefined) return;
        if (node) await this.zk.set(e.path, next, node.version);
        else await this.createRule(e.path, next);
      });
      ctx.log(
        `dubbo: ${Object.entries(w)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} (${percent}% of ${Object.values(had).join('/')}) for ${s.addresses.join(', ')} in ${e.path}`,
      );
    }
  }

  /**
   * Restored = every address drained is registered again (interface- or application-level) and Dubbo routes to each of
   * its registrations again (the same computation as isDrained: not disabled, weight > 0), with graywave's items gone.
   */
  async isRestored(ctx: ProviderContext, saved: unknown): Promise<Check> {
    const s = saved as DrainSaved | undefined;
    try {
      const { all, mine } = await this.mine(ctx);
      const have = new Set(mine.map((f) => addressOf(f.url)));
      const missing = (s?.addresses ?? []).filter((a) => !have.has(a));
      if (mine.length === 0 || missing.length > 0)
        return { done: false, observed: missing.length ? `not registered again: ${missing.join(', ')}` : this.notFound(ctx) };
      for (const e of s ? this.editsOf(s) : []) {
        const node = await this.zk.get(e.path);
        if (node && this.withoutOurs(node.data.toString('utf8'), e, s!, true)) return { done: false, observed: `graywave's item is still in ${e.path}` };
      }
      for (const p of s?.overrides ?? [])
        if ((await this.zk.get(p))?.data.toString('utf8') === OVERRIDE_DATA)
          return { done: false, observed: `override ${javaUrlDecode(p.split('/').pop()!)} still there` };
      const nodes: RuleNodes = new Map();
      const judged = await this.judge(mine, all, nodes);
      const out = judged.filter((j) => !serving(j.eff));
      if (out.length > 0)
        return {
          done: false,
          observed: `not serving: ${out
            .slice(0, 5)
            .map((j) => this.describe(j))
            .join(', ')}`,
        };
      // What consumers route on now: an application-level instance whose MetadataInfo still says weight 0 (the provider
      // has not published the restore yet) is not back. One whose MetadataInfo cannot be read is judged by the rules.
      if (this.o.awaitProviderUrl) {
        const off = (await this.published(mine, nodes)).filter((x) => x.serving === false);
        if (off.length > 0)
          return {
            done: false,
            observed: `not serving yet: ${off
              .slice(0, 3)
              .map((x) => x.text)
              .join('; ')} (the provider has not re-exported without graywave's item yet)`,
          };
      }
      const weights = [...new Set(judged.map((j) => `${addressOf(j.f.url)} weight ${j.eff.weight}`))];
      return { done: true, observed: `serving again: ${weights.slice(0, 5).join(', ')}${weights.length > 5 ? ` (+${weights.length - 5})` : ''}` };
    } catch (err) {
      return { done: false, observed: `cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }

  /** Preflight (read-only): the host's providers of the application, at interface and/or application level. */
  async isRegistered(ctx: ProviderContext): Promise<Check> {
    try {
      return registeredCheck((await this.mine(ctx)).mine, this.notFound(ctx));
    } catch (err) {
      return { done: false, observed: `cannot read ZooKeeper: ${(err as Error).message}` };
    }
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
    if (!s || !s.path || !Array.isArray(s.added))
      throw new ProviderError(`${this.label}: restoreLabel of ${ctx.host.name} got no relabel record it understands`, false);
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
}

export const dubboZookeeper: ProviderType<Options> = {
  type: 'dubbo-zookeeper',
  role: 'drain',
  options,
  doc: {
    summary:
      "Dubbo services registered in ZooKeeper: drain gives the host's provider addresses weight 0 (or disabled) through an override rule; relabel adds them to a tag route; restore removes exactly the rule item drain added.",
    checkedAgainst: 'real ZooKeeper 3.8 (Debian); rule formats of Dubbo 2.6 (override URLs) and 2.7/3.x (config rules, tag-router), read from the Dubbo source',
    example:
      'type: dubbo-zookeeper\nconnect: zk1:2181,zk2:2181\napplication: order-service\n# interfaces: [com.acme.OrderService]   # default: every interface of the application on the host\n# mode: weight                          # or disable',
    options: {
      servicesRoot: 'Where Dubbo 3 application-level instances live (<servicesRoot>/<application>/<id>).',
      connect: 'ZooKeeper connection string, `zk1:2181,zk2:2181`.',
      sessionTimeout: 'ZooKeeper session timeout.',
      connectTimeout: 'Limit to (re)connect and for each request.',
      root: 'Registry root: "/" + the registry URL\'s `group` parameter.',
      application: 'Provider application name (the `application` URL parameter): only its URLs on the host are drained.',
      style:
        '`config-rule` (Dubbo 2.7+/3: <configRoot>/<application>.configurators) or `override-url` (Dubbo 2.6: <root>/<interface>/configurators/override://…).',
      mode: '`weight`: weight 0; `disable`: disabled=true (the stronger drain).',
      port: 'Only the provider URLs on this port (one protocol of several). Default: every port of the application on the host.',
      interfaces: 'Only these interfaces (not `services`). Default: every interface the application provides from the host.',
      configRoot: 'Config-center path of the rules. Default <root>/config/dubbo.',
      allowDrainLast: 'Drain even when no other provider of a service keeps weight > 0.',
      awaitProviderUrl:
        'Default true: drained only once consumers route on the drain, i.e. the provider re-registered its URL with it (interface level) and published it in the MetadataInfo its application-level instance points to (needs metadata-type remote; with local metadata the host never reads drained). false (unsafe): trust the rule as soon as it is written, for registrations nobody re-exports.',
      metadataRoot: 'Dubbo 3 metadata report root in this ZooKeeper (metadata-type remote: <metadataRoot>/<application>/<revision>). Default <root>/metadata.',
    },
  },
  describe: (o, c) => {
    const cfg = o.configRoot ?? `${o.root.replace(/\/$/, '')}/config/dubbo`;
    const where = `${o.application} on ${c.host.address}${o.port ? `:${o.port}` : ':*'}${o.interfaces ? ` (${o.interfaces.join(', ')})` : ''}`;
    const rule = o.style === 'config-rule' ? `${cfg}/${o.application}.configurators` : `${o.root}/<interface>/configurators/override://${c.host.address}…`;
    return {
      drain: `ZooKeeper ${o.connect}: ${o.mode === 'weight' ? 'weight=0' : 'disabled=true'} for ${where} in ${rule}`,
      check: `reads ${rule} and ${o.root}/<interface>/providers: every URL of ${where} ${o.mode === 'weight' ? 'at weight 0' : 'disabled'}`,
      restore: `removes that rule item from ${rule}`,
      relabel: `adds ${c.host.address} to tag <group> in ${cfg}/${o.application}.tag-router`,
    };
  },
  create: (o) => new DubboZookeeper(o),
};
