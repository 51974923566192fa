import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { http, type HttpResponse } from '../../transport/http.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../../transport/tls.js';
import { duration } from '../../util/duration.js';
import { secretRef, type SecretRef } from '../../util/secrets.js';
import type { Check, Provider, ProviderContext, ProviderType } from '../types.js';

/**
 * `type: nacos` — drain a host's instances of the listed services in Nacos (shared/reference/protocols.md §2).
 *
 * Every write is a read-modify-write: the update call replaces weight, enabled and metadata in full, so the
 * current values are read first and sent back. The instance list hides disabled instances, so an instance
 * missing from the list is looked up by ip:port with the detail call (ports come from the `port` option or from
 * what drain saw). Nacos 3.x answers HTTP 410 to the v1/v2 admin calls: graywave then switches to /nacos/v3/admin.
 */
export const nacosOptions = z
  .object({
    url: z.string().url(),
    namespace: z.string().min(1).default('public'),
    group: z.string().min(1).default('DEFAULT_GROUP'),
    services: z.array(z.string().min(1)).min(1),
    cluster: z.string().min(1).default('DEFAULT'),
    /** disable: enabled=false (hidden from consumers); weight: weight 0 (still listed, picked by nobody). */
    mode: z.enum(['disable', 'weight']).default('disable'),
    apiVersion: z.enum(['v1', 'v2']).default('v1'),
    // A user name is not always secret; a plain string is accepted so that e.g. "nacos" is not masked in every log line.
    username: z.union([z.string().min(1), secretRef]).optional(),
    password: secretRef.optional(),
    /** IP of the host's instances (template); defaults to the host address. */
    ip: z.string().min(1).default('{{host.address}}'),
    /** Port of the host's instances (number or template). Without it every instance with the host's IP is the host's. */
    port: z.union([z.number().int().positive(), z.string().min(1)]).optional(),
    /** Must match how the instances were registered (Nacos looks the service up by it). */
    ephemeral: z.boolean().default(true),
    timeout: duration.default('10s'),
    /** HTTPS: CA file(s), client certificate, insecureSkipVerify (src/transport/tls.ts). */
    tls: tlsOptions.optional(),
  })
  .strict()
  .refine((o) => (o.username === undefined) === (o.password === undefined), {
    message: 'username and password go together',
  });
export type NacosOptions = z.infer<typeof nacosOptions>;

type Ver = 'v1' | 'v2' | 'v3';
/** What a call needs of its caller: a provider context, or just a signal and a log (listHosts). */
type Io = Pick<ProviderContext, 'signal' | 'log'>;

/** The fields of a Nacos instance (its open API's JSON); the sandbox's Nacos-shaped registry keeps the same. */
export interface NacosInstanceFields {
  /** `group@@name`, as Nacos keys services. */
  service: string;
  ip: string;
  port: number;
  cluster: string;
  weight: number;
  enabled: boolean;
  ephemeral: boolean;
  metadata: Record<string, string>;
}

/** One instance as graywave sees it (read back from Nacos). */
interface Instance extends NacosInstanceFields {
  /** In the instance list (what consumers get); false when only the detail call found it. */
  listed?: boolean;
  healthy?: boolean;
}

type Key = Pick<Instance, 'service' | 'ip' | 'port' | 'cluster'>;
interface SavedDrain {
  /** metadata: as the instance had it at drain time (older journals lack it: then only weight/enabled are put back). */
  instances: (Key & { weight: number; enabled: boolean; metadata?: Record<string, string> })[];
}
interface SavedLabel {
  instances: (Key & { label: string | null })[];
}

const LABEL_KEY = 'group';

const keyOf = (i: Key) => `${i.service}|${i.ip}:${i.port}|${i.cluster}`;
const show = (i: Key) => `${i.service} ${i.ip}:${i.port}`;

function isKeyList(v: unknown, field: string): boolean {
  const list = (v as { instances?: unknown })?.instances;
  return Array.isArray(list) && list.every((i) => typeof i?.service === 'string' && typeof i?.port === 'number' && field in i);
}

class NacosProvider implements Provider {
  private readonly base: string;
  /** Set once Nacos answered 410 to a v1/v2 admin call (Nacos 3.x): all calls then use /nacos/v3/admin. */
  private v3 = false;
  private token?: { value: string; refreshAt: number };
  /** Ports seen per service+ip: disabled instances vanish from the list, so later reads need the port for the detail call. */
  private readonly knownPorts = new Map<string, Set<number>>();

  constructor(
    private readonly o: NacosOptions,
    private readonly user?: string,
    private readonly password?: string,
    private readonly addSecret: (v: string) => void = () => {},
    private readonly tls?: TlsSettings,
  ) {
    this.base = o.url.replace(/\/+$/, '');
  }

  private ver(): Ver {
    return this.v3 ? 'v3' : this.o.apiVersion;
  }

  private path(kind: 'instance' | 'list', ver: Ver): string {
    const root = ver === 'v3' ? '/nacos/v3/admin/ns/instance' : `/nacos/${ver}/ns/instance`;
    return kind === 'list' ? `${root}/list` : root;
  }

  private async login(signal: AbortSignal): Promise<string | undefined> {
    if (this.user === undefined || this.password === undefined) return undefined;
    if (this.token && Date.now() < this.token.refreshAt) return this.token.value;
    const form = new URLSearchParams({ username: this.user, password: this.password });
    const paths = this.v3 ? ['/nacos/v3/auth/user/login'] : ['/nacos/v1/auth/login', '/nacos/v3/auth/user/login'];
    let last = '';
    for (const p of paths) {
      const res = await http(this.base + p, { method: 'POST', body: form, signal, timeoutMs: this.o.timeout, tls: this.tls });
      if (res.status === 404 || res.status === 410) {
        last = `HTTP ${res.status}`;
        continue;
      }
      if (res.status !== 200) throw new ProviderError(`Nacos login as ${this.user} failed: HTTP ${res.status}`, res.status >= 500);
      const body = res.json<{ accessToken?: string; tokenTtl?: number; data?: { accessToken?: string; tokenTtl?: number } }>();
      const value = body.accessToken ?? body.data?.accessToken;
      if (!value) throw new ProviderError('Nacos login answered without an accessToken', false);
      this.addSecret(value);
      const ttl = body.tokenTtl ?? body.data?.tokenTtl ?? 18_000;
      // Log in again well before the token expires (at 80% of its life) rather than after a 403.
      this.token = { value, refreshAt: Date.now() + ttl * 800 };
      return value;
    }
    throw new ProviderError(`Nacos login failed: no login endpoint answered (${last})`, false);
  }

  /** One call with the token; follows a 410 to the v3 admin API once and re-logs in once on 403. */
  private async call(ctx: Io, method: string, kind: 'instance' | 'list', params: Record<string, string>): Promise<{ res: HttpResponse; ver: Ver }> {
    for (let attempt = 0; ; attempt++) {
      const ver = this.ver();
      const q = new URLSearchParams(params);
      // v1 detail names the cluster `cluster`; every other call `clusterName`.
      if (ver === 'v1' && kind === 'instance' && method === 'GET' && q.has('clusterName')) {
        q.set('cluster', q.get('clusterName')!);
        q.delete('clusterName');
      }
      const token = await this.login(ctx.signal);
      if (token) q.set('accessToken', token);
      const res = await http(`${this.base}${this.path(kind, ver)}?${q}`, {
        method,
        signal: ctx.signal,
        timeoutMs: this.o.timeout,
        tls: this.tls,
        log: ctx.log,
      });
      if (res.status === 410 && ver !== 'v3' && attempt < 2) {
        this.v3 = true;
        ctx.log(`Nacos answered HTTP 410 to ${method} ${this.path(kind, ver)} (Nacos 3.x, admin compatibility off): using /nacos/v3/admin from now on`);
        continue;
      }
      if (res.status === 403 && token && attempt < 2) {
        this.token = undefined;
        continue;
      }
      return { res, ver };
    }
  }

  /** The `data` of a v2/v3 Result envelope, or the v1 body; throws on an HTTP error or a non-zero code. */
  private unwrap(res: HttpResponse, ver: Ver, what: string): unknown {
    if (res.status < 200 || res.status >= 300) {
      throw new ProviderError(`Nacos ${what}: HTTP ${res.status}: ${res.text.slice(0, 200)}`, res.status >= 500 || res.status === 429);
    }
    if (ver === 'v1') return res.text.trim().startsWith('{') || res.text.trim().startsWith('[') ? res.json() : res.text;
    const env = res.json<{ code?: number; message?: string; data?: unknown }>();
    if (env.code !== undefined && env.code !== 0) throw new ProviderError(`Nacos ${what}: code ${env.code}: ${env.message ?? ''}`);
    return env.data;
  }

  private ipFor(ctx: ProviderContext): string {
    return ctx.render(this.o.ip);
  }

  private portFor(ctx: ProviderContext): number | undefined {
    if (this.o.port === undefined) return undefined;
    if (typeof this.o.port === 'number') return this.o.port;
    const n = Number(ctx.render(this.o.port));
    if (!Number.isInteger(n) || n <= 0) throw new ProviderError(`nacos: port ${JSON.stringify(this.o.port)} renders to ${n}, not a port`, false);
    return n;
  }

  private remember(service: string, ip: string, port: number): void {
    const k = `${service}|${ip}`;
    if (!this.knownPorts.has(k)) this.knownPorts.set(k, new Set());
    this.knownPorts.get(k)!.add(port);
  }

  private common(service: string): Record<string, string> {
    return { namespaceId: this.o.namespace, groupName: this.o.group, serviceName: service };
  }

  /** The host's instances of one service: enabled ones from the list, disabled ones by detail on known ports. */
  private async readService(ctx: ProviderContext, service: string, ip: string, port: number | undefined): Promise<Instance[]> {
    const { res, ver } = await this.call(ctx, 'GET', 'list', {
      ...this.common(service),
      clusters: this.o.cluster,
      healthyOnly: 'false',
    });
    const data = this.unwrap(res, ver, `list of ${service}`);
    const hosts = (Array.isArray(data) ? data : (data as { hosts?: unknown[] })?.hosts) as Record<string, unknown>[] | undefined;
    if (!Array.isArray(hosts)) throw new ProviderError(`Nacos list of ${service}: answer has no host list`);
    const found: Instance[] = [];
    for (const h of hosts) {
      if (h.ip !== ip || (port !== undefined && h.port !== port)) continue;
      const cluster = typeof h.clusterName === 'string' ? h.clusterName : this.o.cluster;
      if (cluster !== this.o.cluster) continue;
      found.push({
        service,
        ip,
        port: Number(h.port),
        cluster,
        weight: Number(h.weight ?? 1),
        // The v1/v2 list only holds enabled instances; the v3 admin list says so explicitly.
        enabled: h.enabled === undefined ? true : h.enabled === true,
        ephemeral: typeof h.ephemeral === 'boolean' ? h.ephemeral : this.o.ephemeral,
        metadata: { ...((h.metadata as Record<string, string>) ?? {}) },
        listed: ver !== 'v3' || h.enabled !== false,
        healthy: typeof h.healthy === 'boolean' ? h.healthy : undefined,
      });
      this.remember(service, ip, Number(h.port));
    }
    const ports = new Set<number>(port !== undefined ? [port] : (this.knownPorts.get(`${service}|${ip}`) ?? []));
    for (const p of ports) {
      if (found.some((f) => f.port === p)) continue;
      const d = await this.detail(ctx, service, ip, p);
      if (d) found.push(d);
    }
    return found;
  }

  /** Detail of one instance; null when Nacos does not know it. Absent from the list + present here = disabled. */
  private async detail(ctx: ProviderContext, service: string, ip: string, port: number): Promise<Instance | null> {
    const { res, ver } = await this.call(ctx, 'GET', 'instance', {
      ...this.common(service),
      ip,
      port: String(port),
      clusterName: this.o.cluster,
    });
    if (res.status === 404 || /not found|no ips|no matched/i.test(res.status >= 400 ? res.text : '')) return null;
    const d = this.unwrap(res, ver, `detail of ${service} ${ip}:${port}`) as Record<string, unknown> | null;
    if (!d || typeof d !== 'object') return null;
    return {
      service,
      ip,
      port,
      cluster: this.o.cluster,
      weight: Number(d.weight ?? 1),
      enabled: typeof d.enabled === 'boolean' ? d.enabled : false,
      ephemeral: typeof d.ephemeral === 'boolean' ? d.ephemeral : this.o.ephemeral,
      metadata: { ...((d.metadata as Record<string, string>) ?? {}) },
      listed: false,
      healthy: typeof d.healthy === 'boolean' ? d.healthy : undefined,
    };
  }

  private async readAll(ctx: ProviderContext): Promise<Instance[]> {
    const ip = this.ipFor(ctx);
    const port = this.portFor(ctx);
    const all: Instance[] = [];
    for (const s of this.o.services) all.push(...(await this.readService(ctx, s, ip, port)));
    return all;
  }

  private async readOne(ctx: ProviderContext, k: Key): Promise<Instance | null> {
    this.remember(k.service, k.ip, k.port);
    const list = await this.readService(ctx, k.service, k.ip, k.port);
    return list.find((i) => i.port === k.port) ?? null;
  }

  /** The full update: weight, enabled and metadata are all sent, since Nacos replaces the three together. */
  private async write(ctx: ProviderContext, i: Instance, change: Partial<Pick<Instance, 'weight' | 'enabled' | 'metadata'>>): Promise<void> {
    const next = { ...i, ...change };
    const { res, ver } = await this.call(ctx, 'PUT', 'instance', {
      ...this.common(i.service),
      ip: i.ip,
      port: String(i.port),
      clusterName: i.cluster,
      ephemeral: String(i.ephemeral),
      weight: String(next.weight),
      enabled: String(next.enabled),
      metadata: JSON.stringify(next.metadata),
    });
    this.unwrap(res, ver, `update of ${show(i)}`);
    ctx.log(`nacos: ${show(i)} weight=${next.weight} enabled=${next.enabled} metadata=${JSON.stringify(next.metadata)}`);
  }

  /**
   * `inventory: {provider, service}`: the instances Nacos has for `service` (this provider's namespace, group and
   * cluster), one host per IP: name and address = the IP, vars.port = its (lowest) port (vars.ports when it has
   * several), vars.enabled = false when every instance of the IP is disabled, labels = the instance metadata.
   *
   * Disabled instances: the v1/v2 list hides them (it always filters enabled-only) and the detail call needs an
   * ip:port that nothing tells us, so the Nacos 3.x admin list (/nacos/v3/admin/ns/instance/list, which shows every
   * instance with its `enabled`) is asked first. A server without it (Nacos 1.x/2.x answer 404, or anything not 2xx)
   * is asked the configured v1/v2 list instead, and then a disabled (e.g. drained) instance is NOT in the inventory.
   * No instance at all is an error (an inventory must not silently be empty).
   */
  async listHosts(
    service: string,
    signal: AbortSignal,
  ): Promise<{ name: string; address: string; labels: Record<string, string>; vars: Record<string, unknown> }[]> {
    const io: Io = { signal, log: () => {} };
    const params = { ...this.common(service), clusters: this.o.cluster, healthyOnly: 'false' };
    let data = await this.adminList(io, params);
    let hidden = false;
    if (data === undefined) {
      const { res, ver } = await this.call(io, 'GET', 'list', params);
      data = this.unwrap(res, ver, `list of ${service}`);
      hidden = ver !== 'v3';
    }
    const raw = (Array.isArray(data) ? data : (data as { hosts?: unknown[] })?.hosts) as Record<string, unknown>[] | undefined;
    if (!Array.isArray(raw)) throw new ProviderError(`Nacos list of ${service}: answer has no host list`, false);
    const byIp = new Map<string, { ports: number[]; enabled: boolean[]; metadata: Record<string, string> }>();
    for (const h of raw) {
      if (typeof h.ip !== 'string' || !h.ip) continue;
      if (typeof h.clusterName === 'string' && h.clusterName !== this.o.cluster) continue;
      const e = byIp.get(h.ip) ?? { ports: [], enabled: [], metadata: {} };
      byIp.set(h.ip, e);
      if (Number.isInteger(Number(h.port)) && Number(h.port) > 0) e.ports.push(Number(h.port));
      e.enabled.push(h.enabled === undefined ? true : h.enabled === true);
      for (const [k, v] of Object.entries((h.metadata as Record<string, unknown>) ?? {})) if (typeof v === 'string' && !(k in e.metadata)) e.metadata[k] = v;
    }
    if (byIp.size === 0) {
      throw new ProviderError(
        `Nacos ${this.base} lists no instance of service ${service} (namespace ${this.o.namespace}, group ${this.o.group}, cluster ${this.o.cluster})` +
          (hidden ? "; disabled instances are hidden from this server's list" : ''),
        false,
      );
    }
    return [...byIp].map(([ip, e]) => {
      const ports = [...new Set(e.ports)].sort((a, b) => a - b);
      const vars: Record<string, unknown> = {};
      if (ports.length) vars.port = ports[0];
      if (ports.length > 1) vars.ports = ports;
      if (e.enabled.every((x) => !x)) vars.enabled = false;
      return { name: ip.replace(/[^A-Za-z0-9._-]/g, '-'), address: ip, labels: e.metadata, vars };
    });
  }

  /** The v3 admin instance list (every instance, with `enabled`), or undefined when the server has none. */
  private async adminList(io: Io, params: Record<string, string>): Promise<unknown> {
    const q = new URLSearchParams(params);
    const token = await this.login(io.signal);
    if (token) q.set('accessToken', token);
    const res = await http(`${this.base}${this.path('list', 'v3')}?${q}`, {
      method: 'GET',
      signal: io.signal,
      timeoutMs: this.o.timeout,
      tls: this.tls,
      log: io.log,
    });
    if (res.status < 200 || res.status >= 300) return undefined;
    try {
      const env = res.json<{ code?: number; data?: unknown }>();
      return env.code === 0 && Array.isArray(env.data) ? env.data : undefined;
    } catch {
      return undefined;
    }
  }

  private isOut(i: Instance): boolean {
    return this.o.mode === 'disable' ? !i.enabled : i.weight === 0;
  }

  private noInstance(ctx: ProviderContext): string {
    return `no instance of ${this.o.services.join(', ')} with ip ${this.ipFor(ctx)} in Nacos (namespace ${this.o.namespace}, group ${this.o.group}, cluster ${this.o.cluster})`;
  }

  async drain(ctx: ProviderContext): Promise<SavedDrain> {
    // On resume keep the values the first attempt saved: the live ones are already our drained state.
    const previous = isKeyList(ctx.previous, 'weight') ? (ctx.previous as SavedDrain) : undefined;
    for (const p of previous?.instances ?? []) this.remember(p.service, p.ip, p.port);
    const current = await this.readAll(ctx);
    if (current.length === 0) throw new ProviderError(this.noInstance(ctx));
    const saved: SavedDrain = { instances: [...(previous?.instances ?? [])] };
    for (const i of current) {
      if (!saved.instances.some((s) => keyOf(s) === keyOf(i))) {
        saved.instances.push({
          service: i.service,
          ip: i.ip,
          port: i.port,
          cluster: i.cluster,
          weight: i.weight,
          enabled: i.enabled,
          metadata: { ...i.metadata },
        });
        if (this.isOut(i))
          ctx.log(`nacos: ${show(i)} was already out before the drain (weight=${i.weight} enabled=${i.enabled}); restore brings back exactly that`);
      }
      if (this.isOut(i)) continue;
      await this.write(ctx, i, this.o.mode === 'disable' ? { enabled: false } : { weight: 0 });
    }
    return saved;
  }

  async isDrained(ctx: ProviderContext): Promise<Check> {
    let current: Instance[];
    try {
      current = await this.readAll(ctx);
    } catch (err) {
      return { done: false, observed: `state unknown: ${(err as Error).message}` };
    }
    if (current.length === 0) {
      return { done: false, observed: `${this.noInstance(ctx)} (a disabled instance is hidden from the list: set \`port\` so it can be looked up)` };
    }
    const observed = current.map((i) => `${show(i)} ${this.o.mode === 'disable' ? `enabled=${i.enabled}` : `weight=${i.weight}`}`).join(', ');
    return current.every((i) => this.isOut(i)) ? { done: true, observed } : { done: false, observed };
  }

  /**
   * What restore writes for one saved instance: exactly the weight and enabled it had when drained, and its metadata
   * with every key it had put back. Nacos 2.x keeps what the update API wrote (weight, enabled, metadata) as an
   * override that outlives the instance: an instance that re-registered after the deploy still shows the drained
   * weight, so all three are sent every time. Keys the instance has now (a new version's own, relabel's group) keep
   * their current value: on Nacos 1.x the update writes into the registration itself, and the drain-time `version`
   * must not overwrite the new one. `percent` scales the weight (warm-up).
   */
  private wanted(s: SavedDrain['instances'][number], cur: Instance, percent = 100): Pick<Instance, 'weight' | 'enabled' | 'metadata'> {
    const metadata = { ...(s.metadata ?? {}), ...cur.metadata };
    if (!(LABEL_KEY in cur.metadata)) delete metadata[LABEL_KEY];
    const weight = percent >= 100 ? s.weight : Math.round(s.weight * percent) / 100;
    return { weight, enabled: s.enabled, metadata };
  }

  private differences(want: Pick<Instance, 'weight' | 'enabled' | 'metadata'>, cur: Instance): string[] {
    const out: string[] = [];
    if (cur.weight !== want.weight) out.push(`weight=${cur.weight} (want ${want.weight})`);
    if (cur.enabled !== want.enabled) out.push(`enabled=${cur.enabled} (want ${want.enabled})`);
    // Every key the instance had is back (its value may be a newer one: a new version's own, relabel's group).
    for (const k of Object.keys(want.metadata)) {
      if (!(k in cur.metadata)) out.push(`metadata ${k} missing (had ${JSON.stringify(want.metadata[k])})`);
    }
    return out;
  }

  private async putBack(ctx: ProviderContext, saved: unknown, percent: number): Promise<void> {
    if (!isKeyList(saved, 'weight')) throw new ProviderError('nacos: saved drain data is missing or malformed', false);
    for (const s of (saved as SavedDrain).instances) {
      const cur = await this.readOne(ctx, s);
      // After a deploy the instance may not be registered again yet: retryable (the restore step tries again).
      if (!cur) throw new ProviderError(`nacos: cannot restore ${show(s)}: instance is not registered (yet)`, true, true);
      const want = this.wanted(s, cur, percent);
      // Sent even when it reads back right: the override must hold our values, not the drained ones (Nacos 2.x).
      await this.write(ctx, cur, want);
    }
  }

  async restore(ctx: ProviderContext, saved: unknown): Promise<void> {
    await this.putBack(ctx, saved, 100);
  }

  async setWeight(ctx: ProviderContext, saved: unknown, percent: number): Promise<void> {
    await this.putBack(ctx, saved, percent);
  }

  /** Serving again: every saved instance listed (enabled, healthy) with exactly the weight and metadata it had. */
  async isRestored(ctx: ProviderContext, saved: unknown): Promise<Check> {
    if (!isKeyList(saved, 'weight')) return { done: false, observed: 'nacos: saved drain data is missing or malformed' };
    const seen: string[] = [];
    const wrong: string[] = [];
    for (const s of (saved as SavedDrain).instances) {
      let cur: Instance | null;
      try {
        cur = await this.readOne(ctx, s);
      } catch (err) {
        return { done: false, observed: `state unknown: ${(err as Error).message}` };
      }
      if (!cur) {
        wrong.push(`${show(s)} not registered`);
        continue;
      }
      const diff = this.differences(this.wanted(s, cur), cur);
      if (s.enabled && !cur.listed) diff.unshift('not in the instance list');
      if (cur.healthy === false) diff.push('unhealthy');
      if (diff.length) wrong.push(`${show(s)} ${diff.join(', ')}`);
      else seen.push(`${show(s)} weight=${cur.weight} enabled=${cur.enabled}`);
    }
    return wrong.length ? { done: false, observed: wrong.join('; ') } : { done: true, observed: seen.join(', ') };
  }

  async isRegistered(ctx: ProviderContext): Promise<Check> {
    try {
      const all = await this.readAll(ctx);
      const missing = this.o.services.filter((svc) => !all.some((i) => i.service === svc));
      if (missing.length) return { done: false, observed: `${this.noInstance(ctx).replace(this.o.services.join(', '), missing.join(', '))}` };
      return { done: true, observed: all.map((i) => show(i)).join(', ') };
    } catch (err) {
      return { done: false, observed: `state unknown: ${(err as Error).message}` };
    }
  }

  async relabel(ctx: ProviderContext, group: string): Promise<SavedLabel> {
    const previous = isKeyList(ctx.previous, 'label') ? (ctx.previous as SavedLabel) : undefined;
    const current = await this.readAll(ctx);
    if (current.length === 0) throw new ProviderError(this.noInstance(ctx));
    const saved: SavedLabel = { instances: [...(previous?.instances ?? [])] };
    for (const i of current) {
      if (!saved.instances.some((s) => keyOf(s) === keyOf(i))) {
        saved.instances.push({ service: i.service, ip: i.ip, port: i.port, cluster: i.cluster, label: i.metadata[LABEL_KEY] ?? null });
      }
      if (i.metadata[LABEL_KEY] === group) continue;
      await this.write(ctx, i, { metadata: { ...i.metadata, [LABEL_KEY]: group } });
    }
    return saved;
  }

  async restoreLabel(ctx: ProviderContext, saved: unknown): Promise<void> {
    if (!isKeyList(saved, 'label')) throw new ProviderError('nacos: saved relabel data is missing or malformed', false);
    for (const s of (saved as SavedLabel).instances) {
      const cur = await this.readOne(ctx, s);
      if (!cur) {
        ctx.log(`nacos: ${show(s)} is no longer registered: no label to restore`);
        continue;
      }
      const metadata = { ...cur.metadata };
      if (s.label === null) delete metadata[LABEL_KEY];
      else metadata[LABEL_KEY] = s.label;
      if (metadata[LABEL_KEY] === cur.metadata[LABEL_KEY]) continue;
      await this.write(ctx, cur, { metadata });
    }
  }

  async close(): Promise<void> {
    await this.tls?.close();
  }
}

export const nacosProviderType: ProviderType<NacosOptions> = {
  type: 'nacos',
  role: 'drain',
  options: nacosOptions,
  doc: {
    summary:
      "Nacos naming: drain sets the host's instances of each service to enabled=false (or weight 0) by read-modify-write of the instance; relabel writes the metadata `group`.",
    checkedAgainst: 'a local server answering the Nacos Open API v1/v2 (and v3 admin) request and response shapes (Nacos does not install here)',
    example:
      'type: nacos\nurl: http://nacos:8848\nservices: [order-service]\n# namespace: public\n# mode: disable         # or weight\n# username: nacos\n# password: { env: NACOS_PASSWORD }',
    options: {
      namespace: 'Nacos namespace id of the services.',
      group: 'Nacos group of the services.',
      cluster: "Cluster of the instances; instances of other clusters are not the host's.",
      apiVersion: 'Open API to use: v1 (Nacos 1.x/2.x) or v2 (Nacos 2.2+); Nacos 3.x is followed after its HTTP 410.',
      username: 'Nacos user (a plain name or a secret { env: NAME }); goes with password.',
      password: 'Nacos password, a secret: { env: NAME } or { file: PATH }.',
      timeout: 'How long one Nacos request may take.',
      url: 'Nacos server base URL.',
      services: 'Service names whose instances on the host are drained.',
      mode: '`disable`: enabled=false (hidden from consumers); `weight`: weight 0 (still listed).',
      ip: "IP of the host's instances (a template).",
      port: "Port of the host's instances; without it every instance with the host's IP.",
      ephemeral: 'Must match how the instances were registered.',
    },
  },
  describe: (o, c) => {
    const who = `${c.render(o.ip)}${o.port !== undefined ? `:${c.render(String(o.port))}` : ''}`;
    const svc = `${o.namespace}/${o.group}/${o.services.join(',')}`;
    return {
      drain: `Nacos ${o.url}: PUT /nacos/${o.apiVersion}/ns/instance ${o.mode === 'disable' ? 'enabled=false' : 'weight=0'} for ${who} in ${svc}`,
      check: `GET /nacos/${o.apiVersion}/ns/instance/list?serviceName=…: ${who} ${o.mode === 'disable' ? 'disabled' : 'at weight 0'}`,
      restore: `PUT the enabled/weight values drain saw`,
      relabel: `PUT metadata group=<group> for ${who}`,
    };
  },
  create(options, env) {
    const user =
      options.username === undefined ? undefined : typeof options.username === 'string' ? options.username : env.secrets.resolve(options.username as SecretRef);
    const password = options.password === undefined ? undefined : env.secrets.resolve(options.password);
    return new NacosProvider(options, user, password, (v) => env.secrets.add(v), resolveTls(options.tls, env));
  },
};
