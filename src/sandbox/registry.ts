import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { NacosInstanceFields } from '../providers/registry/nacos.js';

/**
 * The sandbox registry: an in-memory service registry speaking the subset of the Nacos Open API that the
 * `nacos` provider uses (shared/reference/protocols.md §2), with the same request and response shapes and the
 * same gotchas, so that one provider drives both the sandbox and a real Nacos:
 *  - an update (PUT) replaces weight, enabled and metadata in full (missing weight → 1, enabled → true, metadata → {});
 *  - /instance/list hides disabled instances (v1/v2), the detail call has no `enabled` field (v1/v2);
 *  - weight/enabled written through the update API outlive a re-registration (Nacos 2.x instance metadata);
 *  - with `nacos2: true`, the whole Nacos 2.x `InstanceMetadata` (naming/core/v2/metadata: weight, enabled and
 *    extendData = the metadata sent): laid over what the client registered (metadata key by key), outliving a
 *    re-registration and, for `expiredMetadataMs` (nacos.naming.clean.expired-metadata.expired-time, default 60 s),
 *    a deregistration — an app restarted after a weight-0 drain comes back at weight 0 with the API-written metadata.
 *    Without it an update writes metadata into the registration itself (as the sandbox always did);
 *  - optionally behaves like Nacos 3.x: the v1/v2 admin calls answer HTTP 410, /nacos/v3/admin works;
 *  - optionally requires a token from /nacos/v1/auth/login.
 */

/** An instance as registered (weight, enabled, metadata: as the client registered them). */
export interface Instance extends NacosInstanceFields {
  namespace: string;
  healthy: boolean;
  /** Written by the update API; wins over the registered values (metadata: laid over key by key) and survives re-registration. */
  override?: { weight: number; enabled: boolean; metadata?: Record<string, string> };
}

export interface RecordedRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  authorization?: string;
}

export interface RegistryOptions {
  /** Answer like Nacos 3.x with the admin compatibility switch off. */
  nacos3?: boolean;
  /** Require a token (username/password for /auth/login). */
  auth?: { username: string; password: string; tokenTtlSeconds?: number };
  /** Model Nacos 2.x instance metadata in full (see the top of this file). */
  nacos2?: boolean;
  /** With nacos2: how long an override outlives its deregistered instance (Nacos 2.x default 60000 ms). */
  expiredMetadataMs?: number;
}

type ApiVersion = 'v1' | 'v2' | 'v3';
/** How a call answers: v1 in plain text or bare JSON, v2/v3 in a `{code, message, data}` envelope. */
interface Reply {
  ok: (data: unknown) => void;
  fail: (status: number, message: string) => void;
}
/** What an update sent (undefined: not sent). */
interface Sent {
  weight?: number;
  enabled?: string;
  metadata?: Record<string, string>;
}

const effective = (i: Instance) => ({
  weight: i.override?.weight ?? i.weight,
  enabled: i.override?.enabled ?? i.enabled,
  metadata: { ...i.metadata, ...(i.override?.metadata ?? {}) },
});

export class Registry {
  readonly instances = new Map<string, Instance>();
  readonly requests: RecordedRequest[] = [];
  /** Overrides of deregistered instances, kept until they expire (Nacos 2.x ExpiredMetadataCleaner). */
  private readonly leftovers = new Map<string, { override: NonNullable<Instance['override']>; goneAt: number }>();
  private readonly tokens = new Map<string, number>();

  constructor(readonly options: RegistryOptions = {}) {}

  /** Instances of a service as a consumer sees them (enabled + effective weight), for the router. */
  snapshot(service?: string): (Instance & { effWeight: number; effEnabled: boolean })[] {
    return [...this.instances.values()]
      .filter((i) => !service || i.service === service || i.service.endsWith(`@@${service}`))
      .map((i) => ({ ...i, metadata: effective(i).metadata, effWeight: effective(i).weight, effEnabled: effective(i).enabled }));
  }

  /**
   * Puts an instance in the registry as if it had registered (namespace public, cluster DEFAULT, weight 1, enabled,
   * ephemeral, healthy and no metadata unless given): how tests and the sandbox seed a registry without a client.
   */
  add(i: Pick<Instance, 'service' | 'ip' | 'port'> & Partial<Instance>): Instance {
    const inst: Instance = { namespace: 'public', cluster: 'DEFAULT', weight: 1, enabled: true, ephemeral: true, healthy: true, metadata: {}, ...i };
    this.instances.set(this.key(inst.namespace, inst.service, inst.ip, inst.port, inst.cluster), inst);
    return inst;
  }

  private key(ns: string, service: string, ip: string, port: number, cluster: string) {
    return `${ns}|${service}|${ip}#${port}#${cluster}`;
  }

  handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://registry');
      const params: Record<string, string> = Object.fromEntries(url.searchParams);
      const body = Buffer.concat(chunks).toString('utf8');
      if (body && String(req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
        Object.assign(params, Object.fromEntries(new URLSearchParams(body)));
      }
      const recorded: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, params };
      if (req.headers.authorization) recorded.authorization = req.headers.authorization;
      this.requests.push(recorded);
      if (this.requests.length > 5000) this.requests.splice(0, 1000);
      try {
        this.route(recorded, req, res);
      } catch (err) {
        send(res, 500, `caused: ${(err as Error).message}`);
      }
    });
  };

  private route(r: RecordedRequest, req: http.IncomingMessage, res: http.ServerResponse): void {
    const m = /^\/nacos\/(v1|v2|v3)\/(?:(admin)\/)?ns\/instance(\/list)?$/.exec(r.path);
    if (r.path === '/nacos/v1/auth/login' || r.path === '/nacos/v1/auth/users/login' || r.path === '/nacos/v3/auth/user/login') {
      return this.login(r, res);
    }
    if (!m) return send(res, 404, 'not found');
    const ver = m[1] as ApiVersion;
    const isList = !!m[3];
    if (ver === 'v3' && !m[2]) return send(res, 404, 'not found');
    if (ver !== 'v3' && m[2]) return send(res, 404, 'not found');
    if (this.options.auth) {
      const token = r.params.accessToken ?? /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const exp = token ? this.tokens.get(token) : undefined;
      if (!exp || exp < Date.now()) return send(res, 403, 'unknown user!');
    }
    // Nacos 3.x: the v1/v2 "admin" calls (update, detail, v2 list) are switched off and answer 410.
    if (this.options.nacos3 && ver !== 'v3') {
      const admin = r.method === 'PUT' || r.method === 'PATCH' || (r.method === 'GET' && !isList) || (isList && ver === 'v2');
      if (admin) {
        return sendJson(res, 410, { code: 410, message: `API deprecated, use /nacos/v3/admin/ns/instance${isList ? '/list' : ''} instead`, data: null });
      }
    }
    const reply: Reply = {
      ok: (data) =>
        ver === 'v1' ? (typeof data === 'string' ? send(res, 200, data) : sendJson(res, 200, data)) : sendJson(res, 200, { code: 0, message: 'success', data }),
      fail: (status, message) =>
        ver === 'v1' ? send(res, status, `caused: ${message}`) : sendJson(res, status, { code: status === 404 ? 20004 : 10000, message, data: null }),
    };
    const p = r.params;
    const ns = p.namespaceId || 'public';
    const group = p.groupName || 'DEFAULT_GROUP';
    const rawName = p.serviceName ?? '';
    if (!rawName) return reply.fail(400, "Required parameter 'serviceName' type String is not present");
    const service = rawName.includes('@@') ? rawName : `${group}@@${rawName}`;
    if (isList) return this.list(r, ver, ns, service, reply);
    return this.instance(r, ver, ns, service, reply);
  }

  /** `/instance/list`: a service's instances. */
  private list(r: RecordedRequest, ver: ApiVersion, ns: string, service: string, { ok, fail }: Reply): void {
    const p = r.params;
    if (r.method !== 'GET') return fail(405, 'method not allowed');
    const clusters = (p.clusters ?? '').split(',').filter(Boolean);
    const healthyOnly = p.healthyOnly === 'true';
    const hosts = [...this.instances.values()]
      .filter((i) => i.namespace === ns && i.service === service)
      .filter((i) => clusters.length === 0 || clusters.includes(i.cluster))
      .filter((i) => !healthyOnly || i.healthy)
      // v1/v2 lists only enabled instances (enableOnly=true); the v3 admin list shows all, with `enabled`.
      .filter((i) => ver === 'v3' || effective(i).enabled)
      .map((i) => this.view(i, ver === 'v3'));
    if (ver === 'v3') return ok(hosts);
    return ok({
      name: service,
      groupName: service.split('@@')[0],
      clusters: clusters.join(','),
      cacheMillis: 10000,
      hosts,
      lastRefTime: Date.now(),
      checksum: '',
      allIPs: false,
      reachProtectionThreshold: false,
      valid: true,
    });
  }

  /** `/instance`: register (POST), deregister (DELETE), update (PUT, PATCH) or read (GET) one instance. */
  private instance(r: RecordedRequest, ver: ApiVersion, ns: string, service: string, { ok, fail }: Reply): void {
    const p = r.params;
    const ip = p.ip;
    const port = Number(p.port);
    const cluster = p.clusterName || p.cluster || 'DEFAULT';
    if (!ip || !Number.isInteger(port) || port <= 0) return fail(400, 'ip and port are required');
    const key = this.key(ns, service, ip, port, cluster);
    const existing = this.instances.get(key);
    const metadata = parseMetadata(p.metadata);
    const enabledParam = p.enabled ?? p.enable;
    const weight = p.weight === undefined ? undefined : Number(p.weight);
    if (weight !== undefined && (!Number.isFinite(weight) || weight < 0 || weight > 10000)) return fail(400, `illegal weight value: ${p.weight}`);

    switch (r.method) {
      case 'POST': {
        const inst: Instance = {
          namespace: ns,
          service,
          ip,
          port,
          cluster,
          weight: weight ?? 1,
          enabled: enabledParam === undefined ? true : enabledParam === 'true',
          ephemeral: p.ephemeral === undefined ? true : p.ephemeral === 'true',
          healthy: p.healthy === undefined ? true : p.healthy === 'true',
          metadata: metadata ?? {},
          // Overrides written through the update API survive a re-registration (the restart gotcha).
          override: existing?.override ?? this.leftover(key),
        };
        this.leftovers.delete(key);
        this.instances.set(key, inst);
        return ok('ok');
      }
      case 'DELETE':
        if (existing?.override && this.options.nacos2) this.leftovers.set(key, { override: existing.override, goneAt: Date.now() });
        this.instances.delete(key);
        return ok('ok');
      case 'PUT':
      case 'PATCH':
        if (!existing) return fail(404, `no ips found for cluster ${cluster} in service ${service}`);
        return this.update(r, existing, { weight, enabled: enabledParam, metadata }, ns, service, { ok, fail });
      case 'GET': {
        if (!existing) return fail(404, `no matched ip found! ip: ${ip}:${port}`);
        const e = effective(existing);
        const d: Record<string, unknown> = {
          service,
          ip,
          port,
          clusterName: cluster,
          weight: e.weight,
          healthy: existing.healthy,
          instanceId: `${ip}#${port}#${cluster}#${service}`,
          metadata: e.metadata,
        };
        if (ver !== 'v1') d.serviceName = service.split('@@')[1];
        if (ver === 'v3') ((d.enabled = e.enabled), (d.ephemeral = existing.ephemeral));
        return ok(d);
      }
      default:
        return fail(405, 'method not allowed');
    }
  }

  /** PUT replaces weight, enabled and metadata in full; PATCH changes what it sends. */
  private update(r: RecordedRequest, existing: Instance, sent: Sent, ns: string, service: string, { ok, fail }: Reply): void {
    const p = r.params;
    const { weight, enabled: enabledParam, metadata } = sent;
    const eph = p.ephemeral === undefined ? true : p.ephemeral === 'true';
    if (eph !== existing.ephemeral) return fail(400, `service not found, namespace: ${ns}, service: ${service}`);
    const cur = effective(existing);
    if (r.method === 'PUT') {
      // Full replacement: what is not sent falls back to the defaults.
      existing.override = { weight: weight ?? 1, enabled: enabledParam === undefined ? true : enabledParam === 'true' };
      if (this.options.nacos2) existing.override.metadata = metadata ?? {};
      else existing.metadata = metadata ?? {};
    } else if (!this.options.nacos2) {
      existing.override = { weight: weight ?? cur.weight, enabled: enabledParam === undefined ? cur.enabled : enabledParam === 'true' };
      if (metadata) existing.metadata = { ...existing.metadata, ...metadata };
    } else {
      existing.override = {
        weight: weight ?? cur.weight,
        enabled: enabledParam === undefined ? cur.enabled : enabledParam === 'true',
        metadata: { ...(existing.override?.metadata ?? {}), ...(metadata ?? {}) },
      };
    }
    return ok('ok');
  }

  private view(i: Instance, withEnabledExplicit: boolean) {
    const e = effective(i);
    return {
      instanceId: `${i.ip}#${i.port}#${i.cluster}#${i.service}`,
      ip: i.ip,
      port: i.port,
      weight: e.weight,
      healthy: i.healthy,
      enabled: withEnabledExplicit ? e.enabled : true,
      ephemeral: i.ephemeral,
      clusterName: i.cluster,
      serviceName: i.service,
      metadata: e.metadata,
      instanceHeartBeatInterval: 5000,
      instanceHeartBeatTimeOut: 15000,
      ipDeleteTimeout: 30000,
      instanceIdGenerator: 'simple',
    };
  }

  /** The override a deregistered instance left behind, if it has not expired yet. */
  private leftover(key: string): Instance['override'] {
    const l = this.leftovers.get(key);
    if (!l) return undefined;
    if (Date.now() - l.goneAt > (this.options.expiredMetadataMs ?? 60_000)) {
      this.leftovers.delete(key);
      return undefined;
    }
    return l.override;
  }

  private login(r: RecordedRequest, res: http.ServerResponse): void {
    const a = this.options.auth;
    if (r.method !== 'POST') return send(res, 405, 'method not allowed');
    if (r.path.startsWith('/nacos/v1') && this.options.nacos3) return sendJson(res, 410, { code: 410, message: 'use /nacos/v3/auth/user/login', data: null });
    if (!a || r.params.username !== a.username || r.params.password !== a.password) return send(res, 403, 'unknown user!');
    const token = randomBytes(24).toString('base64url');
    const ttl = a.tokenTtlSeconds ?? 18000;
    this.tokens.set(token, Date.now() + ttl * 1000);
    sendJson(res, 200, { accessToken: token, tokenTtl: ttl, globalAdmin: true, username: a.username });
  }
}

function parseMetadata(raw: string | undefined): Record<string, string> | undefined {
  if (raw === undefined || raw === '') return undefined;
  const t = raw.trim();
  if (t.startsWith('{')) {
    const obj = JSON.parse(t) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, String(v)]));
  }
  // Nacos also accepts k1=v1,k2=v2.
  return Object.fromEntries(
    t
      .split(',')
      .filter(Boolean)
      .map((kv) => kv.split('=', 2) as [string, string]),
  );
}

function send(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

export function sendJson(res: http.ServerResponse, status: number, data: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(data));
}

export interface RunningServer {
  server: http.Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

export function listen(server: http.Server, host: string, port: number): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const p = (server.address() as AddressInfo).port;
      resolve({
        server,
        port: p,
        url: `http://${host}:${p}`,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

/** A registry on its own HTTP server (tests, and the sandbox hub). */
export async function startRegistry(opts: RegistryOptions & { host?: string; port?: number } = {}): Promise<RunningServer & { registry: Registry }> {
  const registry = new Registry(opts);
  const running = await listen(http.createServer(registry.handle), opts.host ?? '127.0.0.1', opts.port ?? 0);
  return { ...running, registry };
}
