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
import { createHash } from 'node:crypto';
import { formatUrl, parseUrl, reexported, serviceInfo, serviceRuleName } from './dubbo-provider-sim.mjs';

const require = createRequire(import.meta.url);
const zookeeper = require('node-zookeeper-client');

const cfg = JSON.parse(process.argv[2]);
const root = cfg.root ?? '/dubbo';
const servicesRoot = cfg.servicesRoot ?? '/services';
const mode = cfg.registerMode ?? 'all'; // all | interface | instance

const enc = (s) =>
  encodeURIComponent(s)
    .replace(/[!'()~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
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
  };
  const q = Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
  return `dubbo://${cfg.host}:${cfg.port}/${s.iface}?${q}`;
}

// With `reexport` the app behaves like a Dubbo 2.7+/3 provider: it applies the 2.6 overrides of each interface, its
// application rule and its service rules to its origin URLs (dubbo-provider-sim.mjs, written from Dubbo's source) and
// re-registers a changed URL (RegistryProtocol.reExport: unregister the old, register the new). At application level
// the configured URL goes into its MetadataInfo, whose revision the instance node then points to; with
// `metadataType: 'remote'` the MetadataInfo is published to <root>/metadata/<app>/<revision> (ZookeeperMetadataReport),
// with 'local' (Dubbo's default) it stays in the process. `reexport: true` re-exports every 100 ms (a running
// provider's rule listener); 'on-sync' only when a test asks (GET /sync, not a Dubbo command): deterministic tests.
const configRoot = cfg.configRoot ?? `${root}/config/dubbo`;
const metadataType = cfg.metadataType ?? 'local';

// RegisterStatedURL per service and registry: interface-level and service-discovery (application-level).
const state = cfg.services.map((s) => {
  const origin = providerUrl(s);
  return { s, iface: mode !== 'instance', app: mode !== 'interface', node: undefined, origin, url: origin };
});

const client = zookeeper.createClient(cfg.zk, { sessionTimeout: cfg.sessionTimeout ?? 4000, retries: 0 });
const call = (fn, ...args) => new Promise((resolve, reject) => client[fn](...args, (err, res) => (err ? reject(err) : resolve(res))));
const exists = async (p) => !!(await call('exists', p));
async function mkdirs(p) {
  if (await exists(p)) return;
  await call('mkdirp', p, Buffer.from(''), zookeeper.CreateMode.PERSISTENT).catch((e) => {
    if (e.getCode?.() !== zookeeper.Exception.NODE_EXISTS) throw e;
  });
}
const registeredAt = Date.now();
const instancePath = () => `${servicesRoot}/${cfg.app}/${cfg.host}:${cfg.port}`;

async function registerIface(st) {
  const dir = `${root}/${enc(st.s.iface)}/providers`;
  await mkdirs(dir);
  st.node = `${dir}/${enc(st.url)}`;
  if (!(await exists(st.node))) await call('create', st.node, Buffer.from(''), zookeeper.CreateMode.EPHEMERAL);
}
async function unregisterIface(st) {
  if (st.node && (await exists(st.node))) await call('remove', st.node, -1);
}
/** MetadataInfo of the services exported at application level, and its revision (Dubbo: an MD5 over the services). */
function metadataInfo() {
  const services = {};
  for (const st of state.filter((x) => x.app)) {
    const info = serviceInfo(parseUrl(st.url));
    services[`${info.group ? info.group + '/' : ''}${info.name}${info.version ? ':' + info.version : ''}:${info.protocol}`] = info;
  }
  const revision = createHash('md5').update(JSON.stringify(services)).digest('hex');
  return { app: cfg.app, revision, services };
}

let publishedRevision;
async function syncInstance() {
  const want = state.some((st) => st.app);
  const p = instancePath();
  if (!want) {
    if (await exists(p)) await call('remove', p, -1);
    publishedRevision = undefined;
    return;
  }
  const info = metadataInfo();
  if (metadataType === 'remote') {
    const mp = `${root}/metadata/${cfg.app}/${info.revision}`;
    await mkdirs(`${root}/metadata/${cfg.app}`);
    if (!(await exists(mp))) await call('create', mp, Buffer.from(JSON.stringify(info)), zookeeper.CreateMode.PERSISTENT).catch(() => undefined);
  }
  const id = `${cfg.host}:${cfg.port}`;
  const body = {
    name: cfg.app,
    id,
    address: cfg.host,
    port: cfg.port,
    sslPort: null,
    payload: {
      '@class': 'org.apache.dubbo.registry.zookeeper.ZookeeperInstance',
      id,
      name: cfg.app,
      metadata: { ...(cfg.instanceMetadata ?? {}), 'dubbo.metadata.revision': info.revision, 'dubbo.metadata.storage-type': metadataType },
    },
    registrationTimeUTC: registeredAt,
    serviceType: 'DYNAMIC',
    uriSpec: null,
  };
  if (!(await exists(p))) {
    await mkdirs(`${servicesRoot}/${cfg.app}`);
    await call('create', p, Buffer.from(JSON.stringify(body)), zookeeper.CreateMode.EPHEMERAL);
  } else if (publishedRevision !== info.revision) await call('setData', p, Buffer.from(JSON.stringify(body)), -1);
  publishedRevision = info.revision;
}

// Rules are read on each re-export (polled, or on /sync) rather than watched: simple, and a rule node created later is seen too.
function readRule(path) {
  return new Promise((resolve) => client.getData(path, (err, data) => resolve(err ? undefined : data.toString('utf8'))));
}
function children(path) {
  return new Promise((resolve) => client.getChildren(path, (err, list) => resolve(err ? [] : list)));
}

let reexporting = Promise.resolve();
function reexport() {
  reexporting = reexporting
    .then(async () => {
      const appText = await readRule(`${configRoot}/${cfg.app}.configurators`);
      let changed = false;
      for (const st of state) {
        const origin = parseUrl(st.origin);
        // ZookeeperRegistry delivers the enabled override URLs of category configurators.
        const overrides = (await children(`${root}/${enc(st.s.iface)}/configurators`))
          .map((n) => decodeURIComponent(n.replace(/\+/g, ' ')))
          .filter((u) => !/[?&]enabled=false(&|$)/.test(u) && (/[?&]category=configurators(&|$)/.test(u) || !/[?&]category=/.test(u)));
        const next = reexported(origin, { overrides, application: appText, service: await readRule(`${configRoot}/${serviceRuleName(origin)}`) });
        const url = JSON.stringify(next.params) === JSON.stringify(origin.params) ? st.origin : formatUrl(next);
        if (url === st.url) continue;
        st.url = url;
        changed = true;
        if (st.iface) {
          await unregisterIface(st);
          await registerIface(st);
        }
      }
      if (changed) await syncInstance();
    })
    .catch((e) => console.error('reexport failed', e));
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
  if (name === 'sync') {
    if (cfg.reexport) await reexport();
    return 'OK';
  }
  if (name === 'ls') {
    const rows = state.map(
      (st) =>
        `|${serviceKey(st.s)}|${[mode !== 'instance' ? `zookeeper-I(${st.iface ? 'Y' : 'N'})` : '', mode !== 'interface' ? `zookeeper-A(${st.app ? 'Y' : 'N'})` : ''].filter(Boolean).join('/')}|`,
    );
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
    if (cfg.reexport) await reexport();
    if (cfg.reexport === true) setInterval(() => void reexport(), 100).unref();
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
