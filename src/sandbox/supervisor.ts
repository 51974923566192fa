import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraywaveError } from '../errors.js';
import { request, type SandboxResponse } from './http.js';
import type { LoadStats } from './loadgen.js';

/**
 * The sandbox supervisor: starts and stops the hub and host processes by PID and keeps the sandbox state
 * (addresses, ports, PIDs, versions, injected faults) in a state dir, so that separate CLI invocations
 * (`sandbox up`, then `sandbox deploy` from a playbook step, then `sandbox down`) share one fleet.
 *
 * Layout:  sandbox.json (fleet config + hub PID) · hosts/<name>.json (one file per host: parallel deploys never
 * write the same file) · faults/<name>.json · logs/<name>.log
 */

export const SANDBOX_DIR_ENV = 'GRAYWAVE_SANDBOX_DIR';
const DEFAULT_REL = join('.graywave', 'sandbox');

export interface SandboxConfig {
  dir: string;
  /** First three octets of the loopback block: hosts are NET.1…NET.n, the hub NET.100. */
  net: string;
  hostPort: number;
  hubAddress: string;
  registryPort: number;
  routerPort: number;
  service: string;
  hosts: string[];
  rps: number;
  initialVersion: string;
  hubPid?: number;
  createdAt: string;
  /** The train sandbox: its apps (the first is the web tier behind the router), and the router's gray entry. */
  apps?: SandboxApp[];
  grayPort?: number;
  grayRps?: number;
}

export interface SandboxApp {
  name: string;
  /** Its service name in the registry. */
  service: string;
  hosts: string[];
  /** Services each request calls through the registry (the BFE tier). */
  calls?: string[];
}

/**
 * The train sandbox's shape (the runbook's): a router with a public and a gray entry in front of a BFE tier, which
 * calls two APP services through the registry. Hosts are NET.first … NET.first+hosts-1, named app-01 ….
 */
export const TRAIN_APPS: { name: string; hosts: number; first: number; calls?: string[] }[] = [
  { name: 'bfe', hosts: 4, first: 1, calls: ['order', 'account'] },
  { name: 'order', hosts: 4, first: 11 },
  { name: 'account', hosts: 4, first: 21 },
];
export const TRAIN_NET = '127.0.3';

export interface HostRecord {
  name: string;
  address: string;
  port: number;
  version: string;
  group: string;
  pid?: number;
  /** What the last deploy replaced: undeploy goes back to it. */
  previous?: { version: string; group: string };
  /** Train sandbox: the host's app (its registry service) and the services it calls. */
  service?: string;
  calls?: string[];
}

export interface HostFaults {
  /** The next N deploys of this host fail (before the old version is stopped). */
  deploy?: number;
  /** The next N deploys come up failing their health check. */
  health?: number;
  /** Error rate (0–1) the host returns once in group GREEN. */
  errorRate?: number;
}

export interface UpOptions {
  dir?: string;
  hosts?: number;
  net?: string;
  hostPort?: number;
  registryPort?: number;
  routerPort?: number;
  rps?: number;
  version?: string;
  service?: string;
  log?: (line: string) => void;
  /** The train sandbox (TRAIN_APPS; `hosts` and `service` do not apply), its gray entry port and gray-entry rate. */
  train?: boolean;
  grayPort?: number;
  grayRps?: number;
}

// ---------------------------------------------------------------- state dir

/**
 * Where the sandbox lives: an explicit --dir, else $GRAYWAVE_SANDBOX_DIR, else the nearest `.graywave/sandbox`
 * holding a sandbox from here upwards (playbook steps run in the playbook's directory, below the repo root where
 * the sandbox was brought up), else `.graywave/sandbox` under the cwd.
 */
export function sandboxDir(explicit?: string, cwd = process.cwd()): string {
  if (explicit) return resolve(cwd, explicit);
  if (process.env[SANDBOX_DIR_ENV]) return resolve(cwd, process.env[SANDBOX_DIR_ENV]!);
  for (let d = resolve(cwd); ; d = dirname(d)) {
    if (existsSync(join(d, DEFAULT_REL, 'sandbox.json'))) return join(d, DEFAULT_REL);
    if (dirname(d) === d) break;
  }
  // The bundled demo keeps its sandbox next to playbooks/demo.yaml: find it from anywhere in the checkout.
  const demo = join(dirname(fileURLToPath(import.meta.url)), '../../playbooks', DEFAULT_REL);
  if (existsSync(join(demo, 'sandbox.json'))) return demo;
  return resolve(cwd, DEFAULT_REL);
}

function writeJson(file: string, data: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  // Write then rename: a reader never sees half a file.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
  renameSync(tmp, file);
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function loadConfig(dir: string): SandboxConfig {
  const c = readJson<SandboxConfig>(join(dir, 'sandbox.json'));
  if (!c) throw new GraywaveError(`no sandbox in ${dir}`, 1, 'start one with: graywave sandbox up');
  return { ...c, dir };
}

export function loadHost(dir: string, name: string): HostRecord {
  const h = readJson<HostRecord>(join(dir, 'hosts', `${name}.json`));
  if (!h) throw new GraywaveError(`the sandbox in ${dir} has no host ${JSON.stringify(name)}`, 2);
  return h;
}

const saveHost = (dir: string, h: HostRecord) => writeJson(join(dir, 'hosts', `${h.name}.json`), h);
export const loadFaults = (dir: string, name: string): HostFaults => readJson<HostFaults>(join(dir, 'faults', `${name}.json`)) ?? {};
const saveFaults = (dir: string, name: string, f: HostFaults) => writeJson(join(dir, 'faults', `${name}.json`), f);

// ---------------------------------------------------------------- processes

/** The compiled entry scripts (dist/sandbox/*.js), also when this module runs from src under vitest. */
function scriptPath(name: 'host-main' | 'hub-main'): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, `${name}.js`), resolve(here, '../../dist/sandbox', `${name}.js`)]) {
    if (existsSync(p)) return p;
  }
  throw new GraywaveError(`sandbox script ${name}.js not found`, 1, 'build first: npm run build');
}

/** True when PID runs one of our sandbox scripts (guards against a PID reused by an unrelated process). */
export function isOurs(pid: number | undefined, script: 'host-main' | 'hub-main'): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${script}.js`);
  } catch {
    return true; // no /proc: trust the PID
  }
}

function spawnDetached(script: 'host-main' | 'hub-main', env: Record<string, string>, logFile: string): number {
  mkdirSync(dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [scriptPath(script)], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...env },
  });
  closeSync(fd);
  child.unref();
  if (!child.pid) throw new GraywaveError(`cannot start ${script}`);
  return child.pid;
}

async function stopPid(pid: number | undefined, script: 'host-main' | 'hub-main', graceMs = 35_000): Promise<void> {
  if (!isOurs(pid, script)) return;
  try {
    process.kill(pid!, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + graceMs;
  while (isOurs(pid, script)) {
    if (Date.now() > end) {
      try {
        process.kill(pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(25);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, chars = 1500): string {
  try {
    return readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}

// Generous: on a loaded 2-core machine (a whole test suite beside it) a just-started sandbox process can take
// several seconds to answer.
const HUB_TIMEOUT_MS = 20_000;

async function getJson<T>(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: T }> {
  let res: SandboxResponse;
  try {
    res = await request(url, { ...init, timeoutMs: HUB_TIMEOUT_MS });
  } catch (err) {
    // A plain Error: readiness loops retry these; callers that give up turn them into GraywaveErrors.
    throw new Error(`sandbox: ${init.method ?? 'GET'} ${url}: ${(err as Error).message}`);
  }
  let body: unknown = res.text;
  try {
    body = JSON.parse(res.text);
  } catch {
    /* keep text */
  }
  return { status: res.status, body: body as T };
}

const hostLog = (dir: string, name: string) => join(dir, 'logs', `${name}.log`);

function startHostProcess(c: SandboxConfig, h: HostRecord, faults: { health: boolean; errorRate: number }): number {
  return spawnDetached(
    'host-main',
    {
      SANDBOX_HOST: h.name,
      SANDBOX_ADDRESS: h.address,
      SANDBOX_PORT: String(h.port),
      VERSION: h.version,
      GROUP: h.group,
      SANDBOX_REGISTRY: `http://${c.hubAddress}:${c.registryPort}`,
      SANDBOX_SERVICE: h.service ?? c.service,
      ...(h.calls?.length ? { SANDBOX_CALLS: h.calls.join(',') } : {}),
      // The train sandbox's APP hosts answer faster: a BFE request waits for two of them.
      ...(h.service ? { SANDBOX_WORK_MS: '5,25' } : {}),
      SANDBOX_FAULT_HEALTH: faults.health ? '1' : '0',
      SANDBOX_FAULT_ERRORS: String(faults.errorRate),
    },
    hostLog(c.dir, h.name),
  );
}

/**
 * Wait until the host answers /health with 200 and is registered. Fails fast when the process dies, and when
 * it keeps answering non-200 for 2 s (an unhealthy deploy does not get better by waiting the full timeout).
 */
async function waitHealthy(c: SandboxConfig, h: HostRecord, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let badSince: number | undefined;
  let last = 'no answer';
  for (;;) {
    if (!isOurs(h.pid, 'host-main')) {
      throw new GraywaveError(`${h.name} exited while starting (version ${h.version})\n${tail(hostLog(c.dir, h.name))}`);
    }
    try {
      const r = await getJson<{ status?: string; reason?: string }>(`http://${h.address}:${h.port}/health`);
      if (r.status === 200) {
        const reg = await getJson<{ code?: number }>(
          `http://${c.hubAddress}:${c.registryPort}/nacos/v1/ns/instance?serviceName=${encodeURIComponent(h.service ?? c.service)}&ip=${h.address}&port=${h.port}&cluster=DEFAULT`,
        );
        if (reg.status === 200) return;
        last = 'not registered yet';
      } else {
        badSince ??= Date.now();
        last = `HTTP ${r.status} ${JSON.stringify(r.body)}`;
        if (Date.now() - badSince > 2000) throw new GraywaveError(`${h.name} version ${h.version} is unhealthy after deploy: /health answered ${last}`);
      }
    } catch (err) {
      if (err instanceof GraywaveError) throw err;
      last = (err as Error).message;
    }
    if (Date.now() > end) throw new GraywaveError(`${h.name} version ${h.version} not healthy after ${timeoutMs} ms (${last})`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------- operations

export function isUp(dir: string): boolean {
  const c = readJson<SandboxConfig>(join(dir, 'sandbox.json'));
  return !!c && isOurs(c.hubPid, 'hub-main');
}

export async function up(o: UpOptions = {}): Promise<SandboxConfig> {
  const dir = o.dir ? resolve(o.dir) : sandboxDir();
  const log = o.log ?? (() => {});
  if (isUp(dir)) throw new GraywaveError(`a sandbox is already up in ${dir}`, 1, 'stop it first: graywave sandbox down');
  if (existsSync(join(dir, 'sandbox.json'))) await down({ dir }); // leftovers of a crashed sandbox
  const n = o.hosts ?? 8;
  if (!Number.isInteger(n) || n < 1 || n > 99) throw new GraywaveError(`--hosts must be 1–99, got ${n}`, 2);
  const net = o.net ?? (o.train ? TRAIN_NET : '127.0.1');
  if (!/^127\.\d{1,3}\.\d{1,3}$/.test(net)) throw new GraywaveError(`--net must be three octets inside 127.0.0.0/8 (e.g. 127.0.1), got ${net}`, 2);
  const c: SandboxConfig = {
    dir,
    net,
    hostPort: o.hostPort ?? 8080,
    hubAddress: `${net}.100`,
    registryPort: o.registryPort ?? 8848,
    routerPort: o.routerPort ?? 8000,
    service: o.train ? TRAIN_APPS[0]!.name : (o.service ?? 'demo-service'),
    hosts: o.train ? TRAIN_APPS.flatMap((a) => appHosts(a).map((h) => h.name)) : Array.from({ length: n }, (_, i) => `h${String(i + 1).padStart(2, '0')}`),
    rps: o.rps ?? 20,
    initialVersion: o.version ?? '1.0.0',
    createdAt: new Date().toISOString(),
    ...(o.train
      ? {
          apps: TRAIN_APPS.map((a) => ({ name: a.name, service: a.name, hosts: appHosts(a).map((h) => h.name), ...(a.calls ? { calls: a.calls } : {}) })),
          grayPort: o.grayPort ?? 8001,
          grayRps: o.grayRps ?? Math.ceil((o.rps ?? 20) / 2),
        }
      : {}),
  };
  mkdirSync(dir, { recursive: true });
  c.hubPid = spawnDetached(
    'hub-main',
    {
      SANDBOX_HUB_ADDRESS: c.hubAddress,
      SANDBOX_REGISTRY_PORT: String(c.registryPort),
      SANDBOX_ROUTER_PORT: String(c.routerPort),
      SANDBOX_SERVICE: c.service,
      // The load starts once every host is registered (below), not before: no 503s at start-up.
      SANDBOX_RPS: '0',
      ...(c.apps ? { SANDBOX_GRAY_PORT: String(c.grayPort), SANDBOX_FRONT_APP: c.apps[0]!.name, SANDBOX_GRAY_RPS: String(c.grayRps) } : {}),
    },
    join(dir, 'logs', 'hub.log'),
  );
  writeJson(join(dir, 'sandbox.json'), c);
  try {
    // The hosts start while the hub does (each retries its registration until the registry answers): the two
    // process starts overlap instead of adding up.
    const shapes: { name: string; octet: number; app?: string; calls?: string[] }[] = o.train
      ? TRAIN_APPS.flatMap(appHosts)
      : c.hosts.map((name, i) => ({ name, octet: i + 1 }));
    const hosts = shapes.map(({ name, octet, app, calls }) => {
      const h: HostRecord = {
        name,
        address: `${net}.${octet}`,
        port: c.hostPort,
        version: c.initialVersion,
        group: 'BLUE',
        ...(app ? { service: app } : {}),
        ...(calls ? { calls } : {}),
      };
      h.pid = startHostProcess(c, h, { health: false, errorRate: 0 });
      saveHost(dir, h);
      return h;
    });
    const end = Date.now() + 15_000;
    for (;;) {
      if (!isOurs(c.hubPid, 'hub-main')) throw new GraywaveError(`the sandbox hub exited while starting\n${tail(join(dir, 'logs', 'hub.log'))}`);
      try {
        if ((await getJson(`http://${c.hubAddress}:${c.routerPort}/_sandbox/status`)).status === 200) break;
      } catch {
        /* not yet */
      }
      if (Date.now() > end) throw new GraywaveError(`the sandbox hub did not come up on ${c.hubAddress}:${c.routerPort}`);
      await sleep(50);
    }
    log(`registry (Nacos API) on http://${c.hubAddress}:${c.registryPort}, router on http://${c.hubAddress}:${c.routerPort}`);
    await Promise.all(hosts.map((h) => waitHealthy(c, h)));
    log(`${hosts.length} hosts up: ${hosts[0]!.address}…${hosts[hosts.length - 1]!.address} port ${c.hostPort}, version ${c.initialVersion}, group BLUE`);
    for (const a of c.apps ?? []) log(`  ${a.name}: ${a.hosts.join(' ')}${a.calls ? ` (calls ${a.calls.join(' and ')} through the registry)` : ''}`);
    if (c.rps > 0) {
      await hubCall(c, `loadgen/start?rps=${c.rps}${c.grayRps ? `&grayRps=${c.grayRps}` : ''}`, 'POST');
      log(
        `load generator: ${c.rps} requests/s through the router${c.apps ? ` (public entry :${c.routerPort}) + ${c.grayRps}/s through the gray entry :${c.grayPort}` : ''}`,
      );
    }
  } catch (err) {
    await down({ dir });
    throw err;
  }
  return c;
}

/** The hosts of one app of TRAIN_APPS: names and last address octets. */
function appHosts(a: (typeof TRAIN_APPS)[number]): { name: string; octet: number; app: string; calls?: string[] }[] {
  return Array.from({ length: a.hosts }, (_, i) => ({
    name: `${a.name}-${String(i + 1).padStart(2, '0')}`,
    octet: a.first + i,
    app: a.name,
    ...(a.calls ? { calls: a.calls } : {}),
  }));
}

export async function down(o: { dir?: string; log?: (line: string) => void } = {}): Promise<boolean> {
  const dir = o.dir ? resolve(o.dir) : sandboxDir();
  const c = readJson<SandboxConfig>(join(dir, 'sandbox.json'));
  if (!c) return false;
  const hostFiles = existsSync(join(dir, 'hosts')) ? readdirSync(join(dir, 'hosts')).filter((f) => f.endsWith('.json')) : [];
  await Promise.all(
    hostFiles.map(async (f) => {
      const h = readJson<HostRecord>(join(dir, 'hosts', f));
      await stopPid(h?.pid, 'host-main', 5000);
    }),
  );
  await stopPid(c.hubPid, 'hub-main', 5000);
  rmSync(dir, { recursive: true, force: true });
  o.log?.(`sandbox in ${dir} is down`);
  return true;
}

export async function hubCall<T = unknown>(c: SandboxConfig, path: string, method = 'GET'): Promise<T> {
  let r: { status: number; body: T };
  try {
    r = await getJson<T>(`http://${c.hubAddress}:${c.routerPort}/_sandbox/${path}`, { method });
  } catch (err) {
    throw new GraywaveError((err as Error).message, 1, 'graywave sandbox status shows what is up; graywave sandbox down cleans up');
  }
  if (r.status !== 200) throw new GraywaveError(`sandbox hub ${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export interface HostStatus extends HostRecord {
  running: boolean;
  consumer?: string;
  scheduler?: string;
  inFlight?: number;
  requests?: number;
  errors?: number;
  weight?: number;
  enabled?: boolean;
  registeredGroup?: string;
  registeredVersion?: string;
}

export interface SandboxStatus {
  dir: string;
  up: boolean;
  defaultGroup?: string;
  router?: string;
  registry?: string;
  hosts: HostStatus[];
  load?: LoadStats;
  /** Train sandbox: the gray entry and its load. */
  grayEntry?: string;
  grayLoad?: LoadStats;
}

export async function status(o: { dir?: string } = {}): Promise<SandboxStatus> {
  const dir = o.dir ? resolve(o.dir) : sandboxDir();
  const c = readJson<SandboxConfig>(join(dir, 'sandbox.json'));
  if (!c) return { dir, up: false, hosts: [] };
  const cfg = { ...c, dir };
  const hub = await hubCall<{
    defaultGroup: string;
    instances: { service?: string; ip: string; port: number; weight: number; enabled: boolean; metadata: Record<string, string> }[];
    load: LoadStats;
    grayLoad?: LoadStats;
  }>(cfg, 'status').catch(() => undefined);
  const hosts = await Promise.all(
    c.hosts.map(async (name): Promise<HostStatus> => {
      const h = loadHost(dir, name);
      const running = isOurs(h.pid, 'host-main');
      const s: HostStatus = { ...h, running };
      if (running) {
        const a = await getJson<Record<string, unknown>>(`http://${h.address}:${h.port}/_admin/status`).catch(() => undefined);
        if (a?.status === 200)
          Object.assign(s, {
            consumer: a.body.consumer,
            scheduler: a.body.scheduler,
            inFlight: a.body.inFlight,
            requests: a.body.requests,
            errors: a.body.errors,
          });
      }
      const inst = hub?.instances.find((i) => i.ip === h.address && i.port === h.port && (!h.service || i.service === h.service));
      if (inst)
        Object.assign(s, { weight: inst.weight, enabled: inst.enabled, registeredGroup: inst.metadata.group, registeredVersion: inst.metadata.version });
      return s;
    }),
  );
  return {
    dir,
    up: !!hub,
    defaultGroup: hub?.defaultGroup,
    router: `http://${c.hubAddress}:${c.routerPort}`,
    registry: `http://${c.hubAddress}:${c.registryPort}`,
    hosts,
    load: hub?.load,
    ...(hub?.grayLoad ? { grayLoad: hub.grayLoad, grayEntry: `http://${c.hubAddress}:${c.grayPort}` } : {}),
  };
}

/** Restart a host on a version and group, gracefully; idempotent when it already runs them healthily. */
async function switchHost(
  c: SandboxConfig,
  h: HostRecord,
  version: string,
  group: string,
  faults: { health: boolean; errorRate: number },
  log: (l: string) => void,
): Promise<HostRecord> {
  if (h.version === version && h.group === group && isOurs(h.pid, 'host-main') && !faults.health) {
    try {
      await waitHealthy(c, h, 3000);
      log(`${h.name} already runs version ${version} in group ${group}`);
      return h;
    } catch {
      /* unhealthy: restart below */
    }
  }
  log(`${h.name}: stopping pid ${h.pid ?? '-'} gracefully (version ${h.version}, group ${h.group})`);
  await stopPid(h.pid, 'host-main');
  const changed = h.version !== version || h.group !== group;
  const next: HostRecord = { ...h, version, group, previous: changed ? { version: h.version, group: h.group } : h.previous, pid: undefined };
  next.pid = startHostProcess(c, next, faults);
  saveHost(c.dir, next);
  log(`${h.name}: started pid ${next.pid} (version ${version}, group ${group}), waiting until healthy`);
  await waitHealthy(c, next);
  log(`${h.name}: healthy on version ${version}, group ${group}`);
  return next;
}

export async function deploy(o: { dir?: string; host: string; version: string; group?: string; log?: (l: string) => void }): Promise<HostRecord> {
  const c = loadConfig(o.dir ? resolve(o.dir) : sandboxDir());
  const log = o.log ?? (() => {});
  const h = loadHost(c.dir, o.host);
  const faults = loadFaults(c.dir, h.name);
  if ((faults.deploy ?? 0) > 0) {
    saveFaults(c.dir, h.name, { ...faults, deploy: faults.deploy! - 1 });
    throw new GraywaveError(`injected fault: deploy of ${h.name} failed (artifact ${o.version} could not be installed); the old version keeps running`);
  }
  const health = (faults.health ?? 0) > 0;
  if (health) saveFaults(c.dir, h.name, { ...faults, health: faults.health! - 1 });
  return switchHost(c, h, o.version, o.group ?? h.group, { health, errorRate: faults.errorRate ?? 0 }, log);
}

/** Go back to what the last deploy replaced. Idempotent: without a previous version there is nothing to do. */
export async function undeploy(o: { dir?: string; host: string; log?: (l: string) => void }): Promise<HostRecord> {
  const c = loadConfig(o.dir ? resolve(o.dir) : sandboxDir());
  const log = o.log ?? (() => {});
  const h = loadHost(c.dir, o.host);
  if (!h.previous) {
    log(`${h.name}: no earlier deploy to undo (version ${h.version}, group ${h.group})`);
    return h;
  }
  const faults = loadFaults(c.dir, h.name);
  const back = await switchHost(c, h, h.previous.version, h.previous.group, { health: false, errorRate: faults.errorRate ?? 0 }, log);
  const done = { ...back, previous: undefined };
  saveHost(c.dir, done);
  return done;
}

export const FAULT_KINDS = ['deploy', 'health', 'stuck', 'unstuck', 'errors', 'clear'] as const;

/** Inject a fault: `deploy[:N]`, `health[:N]`, `stuck`, `unstuck`, `errors[:RATE]`, `clear`. */
export async function fault(o: { dir?: string; host: string; spec: string }): Promise<string> {
  const c = loadConfig(o.dir ? resolve(o.dir) : sandboxDir());
  const h = loadHost(c.dir, o.host);
  const [kind, arg] = o.spec.split(':', 2) as [string, string | undefined];
  const f = loadFaults(c.dir, h.name);
  const live = async (body: object) => {
    if (!isOurs(h.pid, 'host-main')) return;
    await getJson(`http://${h.address}:${h.port}/_admin/fault`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
  };
  const count = () => {
    const n = arg === undefined ? 1 : Number(arg);
    if (!Number.isInteger(n) || n < 1) throw new GraywaveError(`fault ${kind}: count must be a positive integer, got ${arg}`, 2);
    return n;
  };
  switch (kind) {
    case 'deploy':
      saveFaults(c.dir, h.name, { ...f, deploy: count() });
      return `${h.name}: the next ${count()} deploy(s) fail`;
    case 'health':
      saveFaults(c.dir, h.name, { ...f, health: count() });
      return `${h.name}: the next ${count()} deploy(s) come up unhealthy`;
    case 'stuck':
      await live({ stuck: true });
      return `${h.name}: holds a request that never finishes (in flight stays above 0)`;
    case 'unstuck':
      await live({ stuck: false });
      return `${h.name}: the stuck request is released`;
    case 'errors': {
      const rate = arg === undefined ? 0.5 : Number(arg);
      if (!(rate >= 0 && rate <= 1)) throw new GraywaveError(`fault errors: rate must be between 0 and 1, got ${arg}`, 2);
      saveFaults(c.dir, h.name, { ...f, errorRate: rate });
      await live({ errorRate: rate });
      return `${h.name}: answers ${Math.round(rate * 100)}% of requests with HTTP 500 while GREEN`;
    }
    case 'clear':
      rmSync(join(c.dir, 'faults', `${h.name}.json`), { force: true });
      await live({ stuck: false, errorRate: 0, health: true });
      return `${h.name}: no faults`;
    default:
      throw new GraywaveError(`unknown fault ${JSON.stringify(kind)}: use one of ${FAULT_KINDS.join(', ')}`, 2);
  }
}

export async function switchGroup(o: { dir?: string; group: string }): Promise<void> {
  const c = loadConfig(o.dir ? resolve(o.dir) : sandboxDir());
  await hubCall(c, `switch?group=${encodeURIComponent(o.group)}`, 'POST');
}

export interface ProbeResult {
  ok: number;
  failed: number;
  versions: Record<string, number>;
  groups: Record<string, number>;
  errors: string[];
}

/**
 * Requests in flight at once in a probe: a smoke check's handful, not a load test. One after another, the 30
 * requests of the demo's gray-entry check took ~2 s per wave (a sandbox host takes 10-60 ms per request).
 */
const PROBE_PARALLEL = 5;

/** Requests through the router (optionally through the gray entry for a group), PROBE_PARALLEL at a time. */
export async function probe(o: { dir?: string; group?: string; count?: number }): Promise<ProbeResult> {
  const c = loadConfig(o.dir ? resolve(o.dir) : sandboxDir());
  const r: ProbeResult = { ok: 0, failed: 0, versions: {}, groups: {}, errors: [] };
  const one = async () => {
    try {
      const res = await getJson<{ version?: string; group?: string; error?: string }>(`http://${c.hubAddress}:${c.routerPort}/`, {
        headers: o.group ? { 'x-gray-group': o.group } : {},
      });
      if (res.status === 200 && (!o.group || res.body.group === o.group)) {
        r.ok++;
        r.versions[res.body.version ?? '?'] = (r.versions[res.body.version ?? '?'] ?? 0) + 1;
        r.groups[res.body.group ?? '?'] = (r.groups[res.body.group ?? '?'] ?? 0) + 1;
      } else {
        r.failed++;
        r.errors.push(
          res.status === 200 ? `answered by group ${res.body.group}, not ${o.group}` : `HTTP ${res.status}: ${JSON.stringify(res.body).slice(0, 120)}`,
        );
      }
    } catch (err) {
      r.failed++;
      r.errors.push((err as Error).message);
    }
  };
  const count = o.count ?? 10;
  let sent = 0;
  await Promise.all(
    Array.from({ length: Math.min(PROBE_PARALLEL, count) }, async () => {
      while (sent++ < count) await one();
    }),
  );
  return r;
}
