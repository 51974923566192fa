// What a Dubbo 2.7+/3 provider re-registers after a configurator change, for the tests' simulated providers (the
// Dubbo-shaped app dubbo-app.mjs and the static seeds' re-exporter in dubbo-seed.ts). Written from apache/dubbo 3.3,
// on purpose NOT with graywave's own dubbo-rules.ts, so that the tests do not check graywave against itself:
//   RegistryProtocol.OverrideListener.doOverrideIfNecessary   origin URL -> 2.6 overrides of the interface -> the
//       application rule (<app>.configurators) -> the service rule (<iface>:<version>:<group>.configurators); when the
//       result differs from the registered URL: reExport = unregister the old URL, register the new one
//       (ServiceDiscoveryRegistry: the new URL goes into MetadataInfo, whose revision the instance then points to)
//   ConfigParser.parseConfigurators      YAML / JSON object rule -> override URLs; JSON list of override URL strings
//   Configurator.toConfigurators         empty:// clears, anyhost-only dropped, sorted by host then priority
//   AbstractConfigurator.configure       side, host (0.0.0.0 or the provider's), providerAddresses, application, full
//       service key, the 2.6 rules (port, application/side equality); OverrideConfigurator adds the configurator's
//       parameters minus the condition keys (so weight, disabled, <method>.weight, and also providerAddresses)
// Not covered (a test needing them sees the provider keep serving, never the reverse): v3.0 `match`, `~key` conditions.
import YAML from 'yaml';

const CONDITION_KEYS = new Set([
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
]);

/** `proto://host[:port]/path?k=v` (IPv6 without brackets: the port follows the last ':' unless a '%' zone comes after it). */
export function parseUrl(text) {
  let body = text.split('#')[0];
  const q = body.indexOf('?');
  const query = q >= 0 ? body.slice(q + 1) : '';
  if (q >= 0) body = body.slice(0, q);
  const p = body.indexOf('://');
  if (p <= 0) return undefined;
  const protocol = body.slice(0, p);
  let rest = body.slice(p + 3);
  let path = '';
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    path = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
  }
  let port = 0;
  const colon = rest.lastIndexOf(':');
  if (colon > 0 && colon < rest.length - 1 && rest.lastIndexOf('%') < colon) {
    port = Number(rest.slice(colon + 1));
    rest = rest.slice(0, colon);
  }
  const params = {};
  for (const kv of query.split('&')) {
    if (!kv) continue;
    const eq = kv.indexOf('=');
    if (eq < 0) params[kv] = kv;
    else if (eq > 0) params[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { protocol, host: rest, port, path, params };
}

export function formatUrl(u) {
  const q = Object.keys(u.params)
    .sort()
    .map((k) => `${k}=${u.params[k]}`)
    .join('&');
  return `${u.protocol}://${u.host}${u.port ? `:${u.port}` : ''}/${u.path}${q ? `?${q}` : ''}`;
}

const iface = (u) => u.params.interface ?? u.path;
export const serviceKeyOf = (u) => `${u.params.group ? u.params.group + '/' : ''}${iface(u)}${u.params.version ? ':' + u.params.version : ''}`;
/** The service rule's node name for a provider URL: interface:version:group. */
export const serviceRuleName = (u) => `${iface(u)}:${u.params.version ?? ''}:${u.params.group ?? ''}.configurators`;

/** A provider written by Dubbo 2.6 or older reads no config-center rule and never re-exports for one. */
export function isLegacy(u) {
  if (u.params.release) return false;
  const m = /^(\d+)\.(\d+)/.exec(u.params.dubbo ?? '');
  return !!m && u.params.dubbo !== '2.0.2' && (Number(m[1]) < 2 || (Number(m[1]) === 2 && Number(m[2]) < 7));
}

/** Rule text (node data) -> override URLs, like ConfigParser. An invalid rule gives none (Dubbo ignores it). */
export function ruleConfigurators(text) {
  if (text === undefined) return [];
  const t = text.replace(/^# graywave-baseline: .*\n/, '').trim();
  if (t.startsWith('[')) {
    try {
      const list = JSON.parse(t);
      if (Array.isArray(list)) return list.map(parseUrl).filter(Boolean);
    } catch {
      // not JSON: YAML below
    }
  }
  let rule;
  try {
    rule = YAML.parse(t);
  } catch {
    return [];
  }
  if (!rule || typeof rule !== 'object' || !rule.key || !Array.isArray(rule.configs)) return [];
  const out = [];
  const ruleEnabled = rule.enabled === undefined || rule.enabled === null ? true : String(rule.enabled).toLowerCase() === 'true';
  for (const item of rule.configs) {
    if (!item || !item.parameters || Object.keys(item.parameters).length === 0) return []; // Dubbo rejects the whole rule
    const typed = item.type !== undefined && item.type !== null && item.type !== 'general';
    const enabled = typed ? String(item.enabled).toLowerCase() === 'true' : ruleEnabled;
    const addresses = Array.isArray(item.addresses) && item.addresses.length ? item.addresses.map(String) : ['0.0.0.0'];
    const params = { category: 'dynamicconfigurators', enabled: String(enabled), configVersion: String(rule.configVersion ?? 'null') };
    if (item.side !== undefined && item.side !== null) params.side = String(item.side);
    for (const [k, v] of Object.entries(item.parameters)) params[k] = String(v);
    if (Array.isArray(item.providerAddresses) && item.providerAddresses.length) params.providerAddresses = item.providerAddresses.join(',');
    else if (item.side === 'provider') params.providerAddresses = addresses.join(',');
    const keyed = (key) => {
      let path = key;
      const extra = {};
      const slash = path.indexOf('/');
      if (slash > 0) [extra.group, path] = [path.slice(0, slash), path.slice(slash + 1)];
      const colon = path.indexOf(':');
      if (colon > 0) [path, extra.version] = [path.slice(0, colon), path.slice(colon + 1)];
      return { path, extra };
    };
    for (const address of addresses) {
      const host = parseUrl(`override://${address}/x`);
      if (rule.scope === 'application') {
        const services = Array.isArray(item.services) && item.services.length ? item.services.map(String) : ['*'];
        for (const s of services) {
          const { path, extra } = keyed(s);
          out.push({ protocol: 'override', host: host.host, port: host.port, path, params: { ...params, ...extra, application: String(rule.key) } });
        }
      } else {
        const { path, extra } = keyed(String(rule.key));
        const apps = Array.isArray(item.applications) && item.applications.length ? item.applications.map(String) : [undefined];
        for (const a of apps)
          out.push({ protocol: 'override', host: host.host, port: host.port, path, params: { ...params, ...extra, ...(a ? { application: a } : {}) } });
      }
    }
  }
  return out;
}

function sorted(list) {
  const out = [];
  for (const c of list) {
    if (c.protocol === 'empty') return [];
    if (Object.keys(c.params).some((k) => k !== 'anyhost')) out.push(c);
  }
  const prio = (c) => Number.parseInt(c.params.priority ?? '0', 10) || 0;
  return out.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : prio(a) - prio(b)));
}

function applies(c, u) {
  if ((c.params.enabled ?? 'true') === 'false') return false;
  if (c.params.configVersion) {
    if (c.params.side !== 'provider' || u.params.side !== 'provider') return false;
    if (c.host !== '0.0.0.0' && c.host !== u.host) return false;
  } else {
    if (c.port ? c.port !== u.port || (c.host !== '0.0.0.0' && c.host !== u.host) : c.host !== '0.0.0.0') return false;
    for (const k of ['application', 'side']) if (c.params[k] && c.params[k] !== '*' && c.params[k] !== u.params[k]) return false;
  }
  const pa = c.params.providerAddresses;
  if (pa && !pa.split(',').some((a) => [`${u.host}:${u.port}`, u.host, '0.0.0.0', '0.0.0.0:*', `0.0.0.0:${u.port}`].includes(a))) return false;
  if (c.params.application && c.params.application !== '*' && c.params.application !== u.params.application) return false;
  const key = serviceKeyOf(c);
  return key === '*' || key === serviceKeyOf(u);
}

/**
 * The URL a provider registers for `origin` under the given rules: `{ overrides, application, service }` are the 2.6
 * override URL strings of its interface and the texts of its application and service rule nodes (undefined: none).
 */
export function reexported(origin, rules) {
  if (isLegacy(origin)) return origin;
  let u = origin;
  const lists = [
    sorted((rules.overrides ?? []).map(parseUrl).filter(Boolean)),
    sorted(ruleConfigurators(rules.application)),
    sorted(ruleConfigurators(rules.service)),
  ];
  for (const list of lists) {
    for (const c of list) {
      if (!applies(c, u)) continue;
      const params = { ...u.params };
      for (const [k, v] of Object.entries(c.params)) if (!CONDITION_KEYS.has(k)) params[k] = v;
      u = { ...u, params };
    }
  }
  return u;
}

/** MetadataInfo.ServiceInfo params of a provider URL (DefaultMetadataParamsFilter: these keys are left out). */
const EXCLUDED = new Set([
  'monitor',
  'bind.ip',
  'bind.port',
  'qos.enable',
  'qos.host',
  'qos.port',
  'qos.accept.foreign.ip',
  'validation',
  'interfaces',
  'pid',
  'timestamp',
  'heartbeat.timeout',
  'ipv6',
]);
export function serviceInfo(u) {
  const params = Object.fromEntries(Object.entries(u.params).filter(([k]) => !EXCLUDED.has(k)));
  return { name: iface(u), group: u.params.group, version: u.params.version, protocol: u.protocol, port: u.port, path: u.path, params };
}
