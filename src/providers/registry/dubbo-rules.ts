import net from 'node:net';
import YAML from 'yaml';

/*
 * Dubbo's configurator logic, re-done in TypeScript so that graywave judges "drained" exactly as Dubbo routes.
 * Read in apache/dubbo 3.3 (references in each function):
 *   URLStrParser.parseURLBody                       how "override://<address>/..." splits host and port (IPv6, %zone)
 *   ConfigParser.parseConfigurators                 rule text (JSON array of URLs | YAML/JSON object) -> override URLs
 *   Configurator.toConfigurators / compareTo        "empty://" clears, anyhost-only dropped, sorted by host then priority
 *   AbstractConfigurator.configure/configureIfMatch v2.7+ and deprecated (2.6) matching, providerAddresses,
 *     isV27ConditionMatchOrUnset, isDeprecatedConditionMatch, application, full service key, v3.0 `match`
 *   ConditionMatch / AddressMatch / ListStringMatch / StringMatch / ParamMatch   the v3.0 `match` block
 *   OverrideConfigurator.doConfigure                parameters of the rule replace the URL's (condition keys removed)
 *   RegistryProtocol.OverrideListener.doOverrideIfNecessary   provider: 2.6 overrides, application rule, service rule
 *   RegistryDirectory.overrideWithConfigurator      consumer: 2.6 overrides, consumer-app rule, service rule again
 *   RegistryDirectory.toInvokers                    disabled=true (or, without it, enabled=false) drops the invoker
 *   AbstractLoadBalance.getWeight                   weight param, default 100; 0 = no share while others have weight
 */

export interface DubboUrl {
  protocol: string;
  host: string;
  /** 0 when the URL has none. */
  port: number;
  path: string;
  params: Record<string, string>;
  /** Only a v3.0 rule item's `match` block (ConfiguratorConfig.MATCH_CONDITION attribute). */
  match?: unknown;
}

/**
 * Parses a URL the way URLStrParser.parseURLBody does (no decoding): `proto://[user@]host[:port]/path?k=v&…`.
 * The port is what follows the last ':' unless a '%' (IPv6 zone) comes after that ':'. So `dubbo://2001:db8::15:20880/x`
 * is host 2001:db8::15, port 20880, and `override://fe80::1%eth0/x` has no port. Brackets are kept as part of the host.
 */
export function parseDubboUrl(text: string): DubboUrl | undefined {
  let body = text;
  const hash = body.indexOf('#');
  if (hash >= 0) body = body.slice(0, hash);
  const q = body.indexOf('?');
  const query = q >= 0 ? body.slice(q + 1) : '';
  if (q >= 0) body = body.slice(0, q);
  const proto = body.indexOf('://');
  if (proto <= 0 || !/^[A-Za-z][\w+.-]*$/.test(body.slice(0, proto))) return undefined;
  const protocol = body.slice(0, proto);
  let rest = body.slice(proto + 3);
  let path = '';
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    path = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
  }
  const at = rest.lastIndexOf('@');
  if (at >= 0) rest = rest.slice(at + 1);
  let port = 0;
  const colon = rest.lastIndexOf(':');
  if (colon > 0 && colon < rest.length - 1 && rest.lastIndexOf('%') < colon) {
    const p = rest.slice(colon + 1);
    if (!/^\d+$/.test(p)) return undefined; // Java: NumberFormatException, the URL is unusable
    port = Number(p);
    rest = rest.slice(0, colon);
  }
  const params: Record<string, string> = {};
  for (const pair of query.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    if (eq < 0) params[pair] = pair;
    else if (eq > 0) params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { protocol, host: rest, port, path, params };
}

export function formatDubboUrl(u: DubboUrl): string {
  const q = Object.entries(u.params)
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return `${u.protocol}://${u.host}${u.port ? `:${u.port}` : ''}/${u.path}${q ? `?${q}` : ''}`;
}

/** URL.getServiceInterface: the `interface` param, else the path. */
export const serviceInterface = (u: DubboUrl) => u.params.interface ?? u.path;

/** URL.getServiceKey (BaseServiceMetadata.buildServiceKey): `[group/]interface[:version]`. */
export function serviceKey(u: DubboUrl): string {
  const g = u.params.group;
  const v = u.params.version;
  return `${g ? g + '/' : ''}${serviceInterface(u)}${v ? ':' + v : ''}`;
}

/** URL.getColonSeparatedKey: `interface:version:group` (both colons always), the service rule's node name. */
export function colonKey(u: DubboUrl): string {
  return `${serviceInterface(u)}:${u.params.version?.trim() ? u.params.version : ''}:${u.params.group?.trim() ? u.params.group : ''}`;
}

/** URLAddress.getAddress: `host:port`, or the host alone without a port (no brackets added for IPv6). */
export const addressOf = (u: { host: string; port: number }) => (u.port > 0 ? `${u.host}:${u.port}` : u.host);

// ---------------------------------------------------------------------------------------------------------------
// Host identity: a provider registered as 0:0:0:0:0:0:0:1, ::1, [::1], fe80::1%eth0 or by host name.

/** Canonical form for comparing hosts (not for writing rules: rules carry the host exactly as Dubbo registered it). */
export function canonicalHost(h: string): string {
  let s = h.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const pct = s.indexOf('%');
  const zone = pct >= 0 ? s.slice(pct) : '';
  const bare = pct >= 0 ? s.slice(0, pct) : s;
  if (net.isIPv6(bare)) {
    const groups = expandIPv6(bare);
    // IPv4-mapped (::ffff:a.b.c.d) is the IPv4 host.
    if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff)
      return `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
    return groups.map((g) => g.toString(16)).join(':') + zone;
  }
  if (net.isIPv4(bare)) return bare;
  return s.toLowerCase().replace(/\.$/, '');
}

function expandIPv6(s: string): number[] {
  let text = s;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}

/** True when provider host `registered` is one of `names` (the host's address and aliases), zone-tolerant for IPv6. */
export function hostMatches(registered: string, names: string[]): boolean {
  const r = canonicalHost(registered);
  const rBare = r.replace(/%.*$/, '');
  return names.some((n) => {
    const c = canonicalHost(n);
    if (c === r) return true;
    // One side without a zone: fe80::1 and fe80::1%eth0 are the same interface address as far as the playbook can say.
    return (!c.includes('%') || !r.includes('%')) && c.replace(/%.*$/, '') === rBare && rBare.includes(':');
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Rule text -> configurator URLs (ConfigParser)

export interface Configurator {
  url: DubboUrl;
  /** Where it comes from, for messages: `<zk path> configs[i]` or `<zk path>` (a 2.6 override node). */
  source: string;
  /** The item as written (YAML/JSON), when from a rule. */
  item?: unknown;
}

export interface ParsedRule {
  form: 'yaml' | 'json' | 'json-urls';
  scope?: 'application' | 'service';
  configurators: Configurator[];
  /** Set when Dubbo would reject the whole rule (ConfigParser throws, AbstractConfiguratorListener ignores it). */
  error?: string;
}

/** ConfigParser.parseConfigurators: a JSON array of override URL strings, or a YAML (or JSON) ConfiguratorConfig. */
export function parseRuleText(text: string, where: string): ParsedRule {
  const trimmed = text.trim();
  const urlList = trimmed.startsWith('[') ? parseUrlList(trimmed, where) : undefined;
  if (urlList) return urlList;
  const form = trimmed.startsWith('{') ? 'json' : 'yaml';
  let map: unknown;
  try {
    const doc = YAML.parseDocument(text);
    if (doc.errors.length > 0) return { form, configurators: [], error: doc.errors[0]!.message };
    map = doc.toJS();
  } catch (e) {
    return { form, configurators: [], error: (e as Error).message };
  }
  if (!map || typeof map !== 'object' || Array.isArray(map)) return { form, configurators: [], error: 'not a mapping' };
  const cfg = map as Record<string, unknown>;
  const scope = cfg.scope === 'application' ? 'application' : 'service';
  const configs = Array.isArray(cfg.configs) ? (cfg.configs as unknown[]) : [];
  const out: Configurator[] = [];
  // ConfiguratorConfig.enabled: Boolean.parseBoolean(value.toString()), default true.
  const ruleEnabled = cfg.enabled === undefined || cfg.enabled === null ? true : jBool(cfg.enabled);
  const version = cfg.configVersion === undefined || cfg.configVersion === null ? 'null' : String(cfg.configVersion);
  const key = cfg.key === undefined || cfg.key === null ? '' : String(cfg.key);
  for (const [i, raw] of configs.entries()) {
    const item = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    const params =
      item.parameters && typeof item.parameters === 'object' && !Array.isArray(item.parameters) ? (item.parameters as Record<string, unknown>) : undefined;
    if (!params || Object.keys(params).length === 0) {
      return { form, scope, configurators: [], error: `configs[${i}] has no parameters (Dubbo rejects the whole rule)` };
    }
    if (!key) return { form, scope, configurators: [], error: 'no key (Dubbo rejects the whole rule)' };
    const urls = itemUrls(item, params, { scope, key, ruleEnabled, version });
    for (const u of urls) {
      const url = parseDubboUrl(u);
      if (!url) return { form, scope, configurators: [], error: `configs[${i}]: address does not make a URL (${u})` };
      if (item.match && typeof item.match === 'object') url.match = item.match;
      out.push({ url, source: `${where} configs[${i}]`, item: raw });
    }
  }
  return { form, scope, configurators: out };
}

/** A JSON array of override URL strings (Dubbo 2.6 style); undefined when the text is not one (Dubbo then reads it as YAML). */
function parseUrlList(trimmed: string, where: string): ParsedRule | undefined {
  try {
    const list = JSON.parse(trimmed) as unknown;
    if (Array.isArray(list) && list.length > 0 && list.every((x) => typeof x === 'string')) {
      const configurators: Configurator[] = [];
      for (const [i, s] of (list as string[]).entries()) {
        const url = parseDubboUrl(s);
        if (!url) return { form: 'json-urls', configurators: [], error: `entry ${i} is not a URL` };
        configurators.push({ url, source: `${where} [${i}]`, item: s });
      }
      return { form: 'json-urls', configurators };
    }
  } catch {
    // not JSON: Dubbo falls through to the YAML parser
  }
  return undefined;
}

/** ConfigParser: the override URLs of one `configs` item (per address, and per service or application). */
function itemUrls(
  item: Record<string, unknown>,
  params: Record<string, unknown>,
  rule: { scope: 'application' | 'service'; key: string; ruleEnabled: boolean; version: string },
): string[] {
  const { scope, key, ruleEnabled, version } = rule;
  const list = (v: unknown) => (Array.isArray(v) ? v.map((x) => String(x)) : undefined);
  const addresses = list(item.addresses)?.length ? list(item.addresses)! : ['0.0.0.0'];
  const side = item.side === undefined || item.side === null ? undefined : String(item.side);
  const type = item.type === undefined || item.type === null ? undefined : String(item.type);
  // parseEnabled: a general item (no type) follows the whole rule; a typed item only its own `enabled` (absent: "null" = false).
  const enabled =
    type === undefined || type === 'general' ? String(ruleEnabled) : item.enabled === undefined || item.enabled === null ? 'null' : String(jBool(item.enabled));
  // toParameterString
  let ps = `category=dynamicconfigurators${side !== undefined ? `&side=${side}` : ''}`;
  for (const [k, v] of Object.entries(params)) ps += `&${k}=${v === null ? 'null' : String(v)}`;
  const providerAddresses = list(item.providerAddresses);
  if (providerAddresses?.length) ps += `&providerAddresses=${providerAddresses.join(',')}`;
  else if (side === 'provider') ps += `&providerAddresses=${addresses.join(',')}`;
  const urls: string[] = [];
  if (scope === 'application') {
    const services = list(item.services)?.length ? list(item.services)! : ['*'];
    for (const addr of addresses)
      for (const s of services)
        urls.push(
          `override://${addr}/${appendService(s)}${ps}&application=${key}&enabled=${enabled}&category=appdynamicconfigurators&configVersion=${version}`,
        );
  } else {
    const apps = list(item.applications);
    for (const addr of addresses) {
      const base = `override://${addr}/${appendService(key)}${ps}&enabled=${enabled}&configVersion=${version}`;
      if (apps?.length) for (const a of apps) urls.push(`${base}&application=${a}`);
      else urls.push(base);
    }
  }
  return urls;
}

/** Boolean.parseBoolean(String.valueOf(v)). */
const jBool = (v: unknown) => String(v).toLowerCase() === 'true';

/** ConfigParser.appendService: `[group/]interface[:version]` -> `interface?group=..&version=..&`. */
function appendService(key: string): string {
  let iface = key;
  let q = '';
  const i = iface.indexOf('/');
  if (i > 0) {
    q += `group=${iface.slice(0, i)}&`;
    iface = iface.slice(i + 1);
  }
  const j = iface.indexOf(':');
  if (j > 0) {
    q += `version=${iface.slice(j + 1)}&`;
    iface = iface.slice(0, j);
  }
  return `${iface}?${q}`;
}

/** A 2.6 override node (the node name, decoded) as a configurator. */
export function overrideConfigurator(url: DubboUrl, source: string): Configurator {
  return { url, source };
}

/** Configurator.toConfigurators: `empty://` clears the list, anyhost-only URLs are dropped, stable sort by host then priority. */
export function toConfigurators(list: Configurator[]): Configurator[] {
  const out: Configurator[] = [];
  for (const c of list) {
    if (c.url.protocol === 'empty') return [];
    const keys = Object.keys(c.url.params).filter((k) => k !== 'anyhost');
    if (keys.length === 0) continue;
    out.push(c);
  }
  const prio = (c: Configurator) => {
    const n = Number.parseInt(c.url.params.priority ?? '0', 10);
    return Number.isNaN(n) ? 0 : n;
  };
  // Array.prototype.sort is stable, like Collections.sort; String.compareTo compares UTF-16 units like `<`.
  return out.sort((a, b) => (a.url.host < b.url.host ? -1 : a.url.host > b.url.host ? 1 : prio(a) - prio(b)));
}

// ---------------------------------------------------------------------------------------------------------------
// Matching (AbstractConfigurator)

const CONDITION_KEYS = [
  'category',
  'check',
  'dynamic',
  'enabled',
  'group',
  'version',
  'application',
  'side',
  'configVersion',
  'compatible_config',
  'interfaces',
];

/** URL.getParameter(key, boolean default): empty -> default, else Boolean.parseBoolean. */
const boolParam = (u: DubboUrl, k: string, d: boolean) => (u.params[k] === undefined || u.params[k] === '' ? d : jBool(u.params[k]));

/**
 * AbstractConfigurator.configure for a URL as Dubbo holds it (side=provider: the provider itself, and the provider URL
 * a consumer holds before merging its own parameters). Returns the configured URL, or undefined when the configurator
 * does not apply. `localHost` is NetUtils.getLocalHost() of the process doing it (only used for consumer-side items).
 */
export function configure(c: Configurator, url: DubboUrl, localHost?: string): DubboUrl | undefined {
  const cu = c.url;
  if (!boolParam(cu, 'enabled', true) || !cu.host || !url.host) return undefined;
  const apiVersion = cu.params.configVersion;
  if (apiVersion) {
    const current = url.params.side;
    const side = cu.params.side;
    if (current === side && side === 'consumer') return localHost === undefined ? undefined : configureIfMatch(c, localHost, url);
    if (current === side && side === 'provider') return configureIfMatch(c, url.host, url);
    return undefined;
  }
  // configureDeprecated
  if (cu.port !== 0) return url.port === cu.port ? configureIfMatch(c, url.host, url) : undefined;
  const urlSide = url.params.side ?? 'provider';
  if (urlSide === 'consumer') return localHost === undefined ? undefined : configureIfMatch(c, localHost, url);
  if ((url.params.side ?? 'consumer') === 'provider') return configureIfMatch(c, '0.0.0.0', url);
  return undefined;
}

function configureIfMatch(c: Configurator, host: string, url: DubboUrl): DubboUrl | undefined {
  const cu = c.url;
  if (cu.host !== '0.0.0.0' && host !== cu.host) return undefined;
  if (!v27ConditionMatchOrUnset(cu, url)) return undefined;
  const keys = new Set(CONDITION_KEYS);
  const apiVersion = cu.params.configVersion;
  if (apiVersion && apiVersion.startsWith('v3.0')) {
    if (cu.match !== undefined && !conditionMatch(cu.match, host, url)) return undefined;
  } else if (!deprecatedConditionMatch(cu, url, keys)) return undefined;
  // OverrideConfigurator.doConfigure: url.addParameters(configUrl minus condition keys)
  const params = { ...url.params };
  for (const [k, v] of Object.entries(cu.params)) if (!keys.has(k)) params[k] = v;
  return { ...url, params };
}

/** AbstractConfigurator.isV27ConditionMatchOrUnset: providerAddresses, application, full service key. */
function v27ConditionMatchOrUnset(cu: DubboUrl, url: DubboUrl): boolean {
  const providers = cu.params.providerAddresses;
  if (providers) {
    const ok = providers.split(',').some((a) => a === addressOf(url) || a === '0.0.0.0' || a === '0.0.0.0:*' || a === `0.0.0.0:${url.port}` || a === url.host);
    if (!ok) return false;
  }
  const app = cu.params.application;
  if (app && app !== '*' && app !== url.params.application) return false;
  const key = serviceKey(cu);
  if (key !== '*' && key !== serviceKey(url)) return false;
  return true;
}

/** AbstractConfigurator.isDeprecatedConditionMatch: `~key`, application and side must equal the URL's. */
function deprecatedConditionMatch(cu: DubboUrl, url: DubboUrl, keys: Set<string>): boolean {
  for (const [k, v] of Object.entries(cu.params)) {
    const tilde = k.startsWith('~');
    if (tilde || k === 'application' || k === 'side') {
      if (tilde) keys.add(k);
      if (v !== '*' && v !== url.params[tilde ? k.slice(1) : k]) return false;
    }
  }
  return true;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);

/** ConditionMatch.isMatch (v3.0 `match`: address, providerAddress, service, app, param). */
export function conditionMatch(m: unknown, host: string, url: DubboUrl): boolean {
  const cm = obj(m);
  if (!cm) return true;
  if (cm.address !== undefined && !addressMatch(obj(cm.address), host)) return false;
  if (cm.providerAddress !== undefined && !addressMatch(obj(cm.providerAddress), addressOf(url))) return false;
  if (cm.service !== undefined && !listStringMatch(obj(cm.service), serviceKey(url))) return false;
  if (cm.app !== undefined && !listStringMatch(obj(cm.app), url.params.application)) return false;
  if (Array.isArray(cm.param)) {
    for (const p of cm.param) {
      const pm = obj(p);
      if (!pm || pm.key === undefined || pm.value === undefined) return false;
      if (!stringMatch(obj(pm.value), url.params[String(pm.key)])) return false;
    }
  }
  return true;
}

/** AddressMatch.isMatch: cird (exact or CIDR), wildcard (0.0.0.0 / * / glob), exact. */
export function addressMatch(a: Obj | undefined, input: string | undefined): boolean {
  if (!a || input === undefined) return false;
  if (a.cird !== undefined && a.cird !== null) {
    const cird = String(a.cird);
    if (input === cird || cidrMatch(cird, input)) return true;
    // Java returns false here unless the expression is malformed; then it goes on to wildcard/exact.
    if (parseCidr(cird)) return false;
  }
  if (a.wildcard !== undefined && a.wildcard !== null) {
    const w = String(a.wildcard);
    if (w === '0.0.0.0' || w === '*') return true;
    return globMatch(w, input);
  }
  if (a.exact !== undefined && a.exact !== null) return input === String(a.exact);
  return false;
}

function parseCidr(expr: string): { net: string; bits: number; family: 'ipv4' | 'ipv6' } | undefined {
  const m = /^(.+)\/(\d+)$/.exec(expr);
  if (!m) return undefined;
  const fam = net.isIPv4(m[1]!) ? 'ipv4' : net.isIPv6(m[1]!) ? 'ipv6' : undefined;
  return fam ? { net: m[1]!, bits: Number(m[2]), family: fam } : undefined;
}

function cidrMatch(expr: string, input: string): boolean {
  const c = parseCidr(expr);
  if (!c) return false;
  const host = input.replace(/:\d+$/, (p) => (net.isIP(input) ? p : '')).replace(/^\[|\]$/g, '');
  const fam = net.isIPv4(host) ? 'ipv4' : net.isIPv6(host.replace(/%.*$/, '')) ? 'ipv6' : undefined;
  if (!fam || fam !== c.family) return false;
  const bl = new net.BlockList();
  bl.addSubnet(c.net, c.bits, c.family);
  return bl.check(host.replace(/%.*$/, ''), fam);
}

/** UrlUtils.isMatchGlobPattern: one '*' at the start, end or middle. */
export function globMatch(pattern: string, value: string | undefined): boolean {
  if (pattern === '*') return true;
  if (!pattern && !value) return true;
  if (!pattern || !value) return false;
  const i = pattern.lastIndexOf('*');
  if (i === -1) return value === pattern;
  if (i === pattern.length - 1) return value.startsWith(pattern.slice(0, i));
  if (i === 0) return value.endsWith(pattern.slice(1));
  return value.startsWith(pattern.slice(0, i)) && value.endsWith(pattern.slice(i + 1));
}

function listStringMatch(l: Obj | undefined, input: string | undefined): boolean {
  const oneof = Array.isArray(l?.oneof) ? l!.oneof : [];
  return oneof.some((s) => stringMatch(obj(s), input));
}

/** StringMatch.isMatch: exact, prefix, regex (whole string, like String.matches), wildcard, empty, noempty. */
export function stringMatch(s: Obj | undefined, input: string | undefined): boolean {
  if (!s) return false;
  const has = (k: string) => s[k] !== undefined && s[k] !== null;
  if (has('exact') && input !== undefined) return input === String(s.exact);
  if (has('prefix') && input !== undefined) return input.startsWith(String(s.prefix));
  if (has('regex') && input !== undefined) {
    try {
      return new RegExp(`^(?:${String(s.regex)})$`).test(input);
    } catch {
      return false;
    }
  }
  if (has('wildcard') && input !== undefined) return input === String(s.wildcard) || String(s.wildcard) === '*';
  if (has('empty')) return input === undefined || input === '';
  if (has('noempty')) return input !== undefined && input.length > 0;
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Effective state

export interface Effective {
  /** The service-level `weight` (default 100, negative read as 0). */
  weight: number;
  disabled: boolean;
  /**
   * Methods with a weight of their own (`<method>.weight`, URL.getMethodParameter), among the methods a consumer can
   * call (the URL's `methods` list; every method named in a `<method>.weight` key when the URL has no list).
   */
  methods?: Record<string, number>;
  /** True when every callable method has its own weight: the service-level `weight` then reaches no call. */
  allMethodsOwn?: boolean;
  /** The configurator that last set weight or disabled (undefined: the provider URL's own value). */
  decidedBy?: string;
}

/** Integer.parseInt: an optional sign and digits only; anything else is NaN (Java throws). */
function jInt(v: string): number {
  return /^[+-]?\d+$/.test(v) ? Number(v) : Number.NaN;
}

/** A weight as AbstractLoadBalance.getWeight reads it: empty -> default, max(w, 0); unparseable (Java throws) -> 100, never "drained". */
const weightOf = (v: string | undefined, d: number) => {
  if (v === undefined || v === '') return d;
  const n = jInt(v);
  return Number.isNaN(n) ? 100 : Math.max(n, 0);
};

/** Parameters that set a weight: `weight` and `<method>.weight` (one dot, as URLParam records method parameters). */
export const isWeightKey = (k: string) => k === 'weight' || /^[^.]+\.weight$/.test(k);

/**
 * Method-level weights the way Dubbo 3 reads them (URLParam): a key `<method>.weight` is method `<method>`'s weight
 * (URLParam.parse / addParameters keep it as METHOD_PARAMETERS[weight][method]); getMethodParameterStrict returns it
 * only when the URL has no `methods` list or the list (as a string: String.contains) contains the method name;
 * getMethodParameter falls back to `weight` when it is empty. The methods a consumer calls are the `methods` list.
 */
export function methodWeights(params: Record<string, string>, base: number): { methods: Record<string, number>; allOwn: boolean } {
  const list = params.methods ?? '';
  const own: Record<string, number> = {};
  if (list !== '') {
    const callable = list.split(',').filter((m) => m !== '');
    let all = callable.length > 0;
    for (const m of callable) {
      const v = list.includes(m) ? params[`${m}.weight`] : undefined;
      if (v === undefined || v === '') {
        all = false;
        continue;
      }
      own[m] = weightOf(v, base);
    }
    return { methods: own, allOwn: all };
  }
  for (const [k, v] of Object.entries(params)) {
    const m = /^([^.]+)\.weight$/.exec(k);
    if (m && v !== '') own[m[1]!] = weightOf(v, base);
  }
  return { methods: own, allOwn: false };
}

/** What a consumer's load balancer gets: RegistryDirectory.toInvokers (disabled/enabled), AbstractLoadBalance.getWeight. */
export function stateOf(u: DubboUrl, decidedBy?: string): Effective {
  const weight = weightOf(u.params.weight, 100);
  const disabled =
    u.params.disabled !== undefined ? jBool(u.params.disabled) : u.params.enabled !== undefined && u.params.enabled !== '' ? !jBool(u.params.enabled) : false;
  const e: Effective = { weight, disabled, decidedBy };
  const mw = methodWeights(u.params, weight);
  if (Object.keys(mw.methods).length > 0) {
    e.methods = mw.methods;
    if (mw.allOwn) e.allMethodsOwn = true;
  }
  return e;
}

/** A consumer routes calls to it: not disabled, and some callable method has weight > 0 (its own, else the service's). */
export const serving = (e: Effective) => !e.disabled && ((!e.allMethodsOwn && e.weight > 0) || Object.values(e.methods ?? {}).some((w) => w > 0));

/** The methods whose own weight is > 0 (drain has to give them weight 0 too). */
export const servingMethods = (e: Effective) =>
  Object.entries(e.methods ?? {})
    .filter(([, w]) => w > 0)
    .map(([m]) => m);

/** "weight 0", "weight 0, get 200", "disabled": the state in words. */
export function stateText(e: Effective): string {
  if (e.disabled) return 'disabled';
  const m = Object.entries(e.methods ?? {}).map(([k, w]) => `${k}.weight ${w}`);
  return [...(e.allMethodsOwn ? [] : [`weight ${e.weight}`]), ...m].join(', ');
}

/** Applies configurators in order; remembers the last one that touched weight or disabled. */
export function applyAll(list: Configurator[], url: DubboUrl, decided?: string): { url: DubboUrl; decidedBy?: string } {
  let cur = url;
  let by = decided;
  for (const c of list) {
    const next = configure(c, cur);
    if (!next) continue;
    if (Object.keys(c.url.params).some((k) => isWeightKey(k) || k === 'disabled' || k === 'methods')) by = c.source;
    cur = next;
  }
  return { url: cur, decidedBy: by };
}

export interface RuleSet {
  /** 2.6 override URLs under <root>/<interface>/configurators (interface-level consumers and the provider). */
  overrides: Configurator[];
  /** The provider application's rule (<app>.configurators). */
  application: Configurator[];
  /** The service rule (<interface>:<version>:<group>.configurators). */
  service: Configurator[];
}

/**
 * The state consumers route on, for one provider URL as registered:
 *   provider   RegistryProtocol: overrides, then its application rule, then the service rule (it re-exports the result)
 *   consumer   RegistryDirectory: overrides again, then the service rule again, on the URL the provider exported
 * (the consumer's own application rule holds provider-side items only for that application, see consumerRisks).
 * Application-level consumers (ServiceDiscoveryRegistryDirectory) apply no 2.6 overrides: `appLevel` leaves them out
 * of the consumer pass.
 */
export function effective(url: DubboUrl, rules: RuleSet, appLevel = false): Effective {
  const o = toConfigurators(rules.overrides);
  const a = toConfigurators(rules.application);
  const s = toConfigurators(rules.service);
  let r = applyAll(o, url);
  r = applyAll(a, r.url, r.decidedBy);
  r = applyAll(s, r.url, r.decidedBy);
  if (!appLevel) r = applyAll(o, r.url, r.decidedBy);
  r = applyAll(s, r.url, r.decidedBy);
  return stateOf(r.url, r.decidedBy);
}

/**
 * What consumers route on right now, from the URL as the provider published it (its own re-export of the rules it
 * applied, or not yet): the consumer pass alone, without the provider application's rule, which only the provider
 * applies (RegistryProtocol.OverrideListener -> reExport).
 *   interface level    RegistryDirectory.overrideWithConfigurator: 2.6 overrides, then the service rule
 *   application level  ServiceDiscoveryRegistryDirectory.overrideWithConfigurator: the service rule (no 2.6 overrides),
 *                      on the parameters of the provider's MetadataInfo (see dubbo-zookeeper.ts instanceUrls)
 * The consumer application's own rule counts through consumerRisks.
 */
export function consumerView(published: DubboUrl, rules: RuleSet, appLevel = false): Effective {
  let r: { url: DubboUrl; decidedBy?: string } = { url: published };
  if (!appLevel) r = applyAll(toConfigurators(rules.overrides), r.url);
  r = applyAll(toConfigurators(rules.service), r.url, r.decidedBy);
  return stateOf(r.url, r.decidedBy ?? 'the URL the provider published');
}

/**
 * Consumer-side items (`side: consumer`) are applied by consumers on the merged URL, at consumer hosts graywave cannot
 * enumerate (AbstractConfigurator.configure with NetUtils.getLocalHost). One that may hold for this provider
 * (providerAddresses / match.providerAddress / service) and sets a weight > 0 or disabled=false can route traffic to it
 * at some consumer: listed as a risk.
 */
export function consumerRisks(url: DubboUrl, rules: Configurator[]): Configurator[] {
  const out: Configurator[] = [];
  for (const c of rules) {
    const cu = c.url;
    if (cu.params.side !== 'consumer' || !cu.params.configVersion || !boolParam(cu, 'enabled', true)) continue;
    const providers = cu.params.providerAddresses;
    if (
      providers &&
      !providers.split(',').some((a) => a === addressOf(url) || a === '0.0.0.0' || a === '0.0.0.0:*' || a === `0.0.0.0:${url.port}` || a === url.host)
    )
      continue;
    const key = serviceKey(cu);
    if (key !== '*' && key !== serviceKey(url)) continue;
    const m = obj(cu.match);
    if (cu.params.configVersion.startsWith('v3.0') && m) {
      if (m.providerAddress !== undefined && !addressMatch(obj(m.providerAddress), addressOf(url))) continue;
      if (m.service !== undefined && !listStringMatch(obj(m.service), serviceKey(url))) continue;
    }
    const reEnables =
      Object.entries(cu.params).some(([k, v]) => isWeightKey(k) && weightOf(v, 100) > 0) || ('disabled' in cu.params && !jBool(cu.params.disabled));
    if (reEnables) out.push(c);
  }
  return out;
}
