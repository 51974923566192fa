// A small Dubbo-shaped provider application for the tests, run as a child process:
//   node dubbo-app.mjs '<json config>'
// It registers like a Dubbo 3 provider with register-mode=all in a real ZooKeeper:
//   interface level    ephemeral <root>/<URL.encode(iface)>/providers/<URL.encode(provider url)>   (ZookeeperRegistry)
//   application level  ephemeral <servicesRoot>/<app>/<host:port>, Curator ServiceInstance JSON     (ZookeeperServiceDiscovery)
// and answers the QoS HTTP commands the way dubbo-qos does (apache/dubbo 3.3, dubbo-plugin/dubbo-qos):
//   GET /<cmd> or /<cmd>?service=<pattern>   (HttpCommandDecoder: the query values are the arguments)
//   offline / offlineApp / offlineInterface, online / onlineApp / onlineInterface (BaseOffline / BaseOnline):
//     pattern (Java String.matches, default ".*") against the service key and the display key;
//     body "OK", or "service not found" when no service matches; HTTP 200 either way
//   ls (Ls): "As Provider side:" table of service keys and their registered state
//   unknown command: 404 (HttpProcessHandler). A non-loopback client when acceptForeignIp is false gets the
//   ForeignHostPermitHandler text and the connection closes (no HTTP response).
// The instance node goes when no service is registered at application level any more (ServiceDiscoveryRegistry).
// Kill it with SIGTERM (nodes removed, session closed) or SIGKILL (ephemeral nodes go when the session expires).
import http from 'node:http';
import { createRequire } from 'node:module';
import YAML from 'yaml';

const require = createRequire(import.meta.url);
const zookeeper = require('node-zookeeper-client');

const cfg = JSON.parse(process.argv[2]);
const root = cfg.root ?? '/dubbo';
const servicesRoot = cfg.servicesRoot ?? '/services';
const mode = cfg.registerMode ?? 'all'; // all | interface | instance

const enc = (s) => encodeURIComponent(s).replace(/[!'()~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()).replace(/%20/g, '+');
const serviceKey = (s) => `${s.group ? s.group + '/' : ''}${s.iface}${s.version ? ':' + s.version : ''}`;
const displayKey = (s) => `${s.iface}:${s.version ?? null}`;

function providerUrl(s) {
  const params = {
    anyhost: 'true',
    application: cfg.app,
    deprecated: 'false',
    dubbo: '2.0.2',
    dynamic: 'true',
    generic: 'false',
    interface: s.iface,
    methods: 'get,list',
    pid: String(process.pid),
    release: '3.3.0',
    side: 'provider',
    timestamp: String(Date.now()),
    ...(s.group ? { group: s.group } : {}),
    ...(s.version ? { version: s.version } : {}),
    ...(cfg.params ?? {}),
    ...(st_extra(s) ?? {}),
  };
  const q = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
  return `dubbo://${cfg.host}:${cfg.port}/${s.iface}?${q}`;
}

// With `reexport: true` the app behaves like a Dubbo 2.7+/3 provider that applies its application rule and its service
// rules (side: provider items for its address) and re-registers its URL with the resulting weight/disabled
// (RegistryProtocol.OverrideListener -> reExport). A deliberately small version: YAML rules, addresses/services only.
const configRoot = cfg.configRoot ?? `${root}/config/dubbo`;
const extras = new Map();
const st_extra = (s) => extras.get(serviceKey(s));

// RegisterStatedURL per service and registry: interface-level and service-discovery (application-level).
const state = cfg.services.map((s) => ({ s, iface: mode !== 'instance', app: mode !== 'interface', node: undefined }));

const client = zookeeper.createClient(cfg.zk, { sessionTimeout: cfg.sessionTimeout ?? 4000, retries: 0 });
const call = (fn, ...args) => new Promise((resolve, reject) => client[fn](...args, (err, res) => (err ? reject(err) : resolve(res))));
const exists = async (p) => !!(await call('exists', p));
async function mkdirs(p) {
  if (await exists(p)) return;
  await call('mkdirp', p, Buffer.from(''), zookeeper.CreateMode.PERSISTENT).catch((e) => {
    if (e.getCode?.() !== zookeeper.Exception.NODE_EXISTS) throw e;
  });
}
const instancePath = () => `${servicesRoot}/${cfg.app}/${cfg.host}:${cfg.port}`;

async function registerIface(st) {
  const dir = `${root}/${enc(st.s.iface)}/providers`;
  await mkdirs(dir);
  st.node = `${dir}/${enc(providerUrl(st.s))}`;
  if (!(await exists(st.node))) await call('create', st.node, Buffer.from(''), zookeeper.CreateMode.EPHEMERAL);
}
async function unregisterIface(st) {
  if (st.node && (await exists(st.node))) await call('remove', st.node, -1);
}
async function syncInstance() {
  const want = state.some((st) => st.app);
  const p = instancePath();
  if (want && !(await exists(p))) {
    await mkdirs(`${servicesRoot}/${cfg.app}`);
    const id = `${cfg.host}:${cfg.port}`;
    const body = {
      name: cfg.app,
      id,
      address: cfg.host,
      port: cfg.port,
      sslPort: null,
      payload: { '@class': 'org.apache.dubbo.registry.zookeeper.ZookeeperInstance', id, name: cfg.app, metadata: { 'dubbo.metadata.revision': 'r' + Date.now(), 'dubbo.metadata.storage-type': 'local' } },
      registrationTimeUTC: Date.now(),
      serviceType: 'DYNAMIC',
      uriSpec: null,
    };
    await call('create', p, Buffer.from(JSON.stringify(body)), zookeeper.CreateMode.EPHEMERAL);
  } else if (!want && (await exists(p))) await call('remove', p, -1);
}

// Polled (every 100 ms) rather than watched: simple, and a rule node created later is seen too.
function readRule(path) {
  return new Promise((resolve) => client.getData(path, (err, data) => resolve(err ? undefined : data.toString('utf8'))));
}

function applyRule(text, s, params) {
  let rule;
  try {
    rule = YAML.parse(text.replace(/^# graywave-baseline: .*\n/, ''));
  } catch {
    return;
  }
  if (!rule || rule.enabled === false || !Array.isArray(rule.configs)) return;
  for (const item of rule.configs) {
    if (item?.side !== 'provider' || !item.parameters) continue;
    const addrs = Array.isArray(item.addresses) && item.addresses.length ? item.addresses.map(String) : ['0.0.0.0'];
    if (!addrs.some((a) => a === `${cfg.host}:${cfg.port}` || a === cfg.host || a === '0.0.0.0')) continue;
    const services = Array.isArray(item.services) && item.services.length ? item.services.map(String) : ['*'];
    if (rule.scope === 'application' && !services.some((x) => x === '*' || x === serviceKey(s))) continue;
    for (const k of ['weight', 'disabled']) if (item.parameters[k] !== undefined) params[k] = String(item.parameters[k]);
  }
}

let reexporting = Promise.resolve();
let busy = false;
function reexport() {
  if (!cfg.reexport || busy) return reexporting;
  busy = true;
  reexporting = reexporting.then(async () => {
    const appText = await readRule(`${configRoot}/${cfg.app}.configurators`);
    for (const st of state) {
      const svcText = await readRule(`${configRoot}/${st.s.iface}:${st.s.version ?? ''}:${st.s.group ?? ''}.configurators`);
      const params = {};
      if (appText) applyRule(appText, st.s, params);
      if (svcText) applyRule(svcText, st.s, params);
      const before = JSON.stringify(extras.get(serviceKey(st.s)) ?? {});
      if (before === JSON.stringify(params)) continue;
      extras.set(serviceKey(st.s), params);
      if (st.iface) {
        await unregisterIface(st);
        await registerIface(st);
      }
    }
  }).catch((e) => console.error('reexport failed', e)).finally(() => (busy = false));
  return reexporting;
}

function matching(pattern) {
  let re;
  try {
    re = new RegExp(`^(?:${pattern})$`);
  } catch {
    return [];
  }
  return state.filter((st) => re.test(serviceKey(st.s)) || re.test(displayKey(st.s)));
}

async function command(name, args) {
  const pattern = args[0] ?? '.*';
  const off = { offline: ['iface', 'app'], offlineApp: ['app'], offlineInterface: ['iface'] }[name];
  const on = { online: ['iface', 'app'], onlineApp: ['app'], onlineInterface: ['iface'] }[name];
  if (off || on) {
    const hit = matching(pattern);
    if (hit.length === 0) return 'service not found';
    for (const st of hit) {
      for (const level of off ?? on) {
        // Only registries the service was exported to (register-mode) are switched.
        if (level === 'iface' && mode === 'instance') continue;
        if (level === 'app' && mode === 'interface') continue;
        if (level === 'iface') {
          if (off) await unregisterIface(st);
          else await registerIface(st);
        }
        st[level] = !off;
      }
    }
    await syncInstance();
    return 'OK';
  }
  if (name === 'ls') {
    const rows = state.map((st) => `|${serviceKey(st.s)}|${[mode !== 'instance' ? `zookeeper-I(${st.iface ? 'Y' : 'N'})` : '', mode !== 'interface' ? `zookeeper-A(${st.app ? 'Y' : 'N'})` : ''].filter(Boolean).join('/')}|`);
    return `As Provider side:\n|Provider Service Name|PUB|\n${rows.join('\n')}\nAs Consumer side:\n|Consumer Service Name|NUM|\n`;
  }
  return undefined;
}

const server = http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://x');
  const parts = u.pathname.split('/');
  const args = [...u.searchParams.values()];
  if (parts.length === 3 && parts[2]) args.unshift(decodeURIComponent(parts[2]));
  const name = parts[1];
  try {
    const out = parts.length <= 3 ? await command(name, args) : undefined;
    if (out === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(out);
  } catch (e) {
    res.writeHead(500).end(String(e?.message ?? e));
  }
});
server.on('connection', (socket) => {
  const ip = socket.remoteAddress ?? '';
  const loopback = ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
  if (!cfg.acceptForeignIp && !loopback) {
    socket.end('Foreign Ip Not Permitted, Consider Config It In Whitelist.\r\n');
  }
});

client.once('connected', async () => {
  try {
    for (const st of state) if (st.iface) await registerIface(st);
    await syncInstance();
    if (cfg.reexport) {
      await reexport();
      setInterval(() => void reexport(), 100).unref();
    }
    server.listen(cfg.qosPort, cfg.qosHost ?? '127.0.0.1', () => console.log(`ready qos ${cfg.qosPort}`));
  } catch (e) {
    console.error('start failed', e);
    process.exit(1);
  }
});
client.connect();

process.on('SIGTERM', async () => {
  server.close();
  try {
    for (const st of state) await unregisterIface(st);
    if (await exists(instancePath())) await call('remove', instancePath(), -1);
  } catch {
    // going anyway
  }
  client.close();
  setTimeout(() => process.exit(0), 50);
});
