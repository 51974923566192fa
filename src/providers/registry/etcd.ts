import { createRequire } from 'node:module';
import type { Etcd3, IKeyValue } from 'etcd3';

// etcd3 pulls in gRPC and protobuf (~0.2 s): load it only when a playbook really talks to etcd, not on every CLI start.
const requireCjs = createRequire(import.meta.url);
import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { duration } from '../../util/duration.js';
import { secretRef } from '../../util/secrets.js';
import type { Check, Provider, ProviderContext, ProviderEnv, ProviderType } from '../types.js';

/**
 * etcd (v3 API) as a service registry: each host has one registration key whose value is a JSON object.
 * Drain sets `weight` to 0, `enabled` to false, or moves the key aside; restore puts back exactly the
 * previous value of that one field (or the key), so anything else written in between (relabel's group,
 * the app's own updates) stays. Every write is a compare-and-swap on the key's mod revision and keeps the
 * key's lease, so a concurrent writer is never overwritten and an app's TTL registration stays TTL-bound.
 */

const fieldName = z.string().min(1);

export const etcdOptions = z
  .object({
    endpoints: z.array(z.string().min(1)).min(1),
    /** The host's registration key (templated, e.g. /services/order/{{host.address}}:8080). */
    key: z.string().min(1),
    mode: z.enum(['weight', 'disable', 'remove']).default('weight'),
    groupField: fieldName.default('group'),
    /** Field set to 0 in mode `weight`. */
    weightField: fieldName.default('weight'),
    /** Field set to false in mode `disable`. */
    enabledField: fieldName.default('enabled'),
    username: z.union([z.string().min(1), secretRef]).optional(),
    password: secretRef.optional(),
    /** Deadline of each etcd call. */
    timeout: duration.default('10s'),
    /**
     * Where `inventory: {provider, service}` looks, with {{service}} for the service (e.g. /services/{{service}}/).
     * Default: the literal start of `key` (up to its first {{…}}), which must then contain the service as a path segment.
     */
    servicePrefix: z.string().min(1).optional(),
  })
  .strict()
  .refine((o) => (o.username === undefined) === (o.password === undefined), {
    message: 'username and password go together (password as { env: NAME } or { file: PATH })',
    path: ['password'],
  });
export type EtcdOptions = z.infer<typeof etcdOptions>;

/** Suffix of the key a `remove` drain copies the registration to. */
export const ASIDE_SUFFIX = '.graywave-drained';

/** What drain returns (journal): enough to put back the one thing it changed. No secrets. */
export type EtcdDrained =
  | { mode: 'weight' | 'disable'; key: string; field: string; existed: boolean; had: boolean; previous?: unknown }
  | { mode: 'remove'; key: string; existed: boolean; lease: string };

/** What relabel returns: the group field's previous value, and the group written (to know whether it is still ours). */
export interface EtcdRelabeled {
  key: string;
  field: string;
  group: string;
  had: boolean;
  previous?: unknown;
}

/** Test hooks: lets a test make a concurrent write land between our read and our compare-and-swap. */
export interface EtcdHooks {
  afterRead?(key: string, attempt: number): Promise<void> | void;
}

type Json = Record<string, unknown>;

/** How often a compare-and-swap is retried when another writer keeps changing the key. */
const CAS_ATTEMPTS = 10;

function parseObject(kv: IKeyValue, key: string): Json {
  const text = kv.value.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProviderError(
      `etcd key ${key}: value is not JSON (starts with ${JSON.stringify(text.slice(0, 40))}); graywave edits JSON registrations only`,
      false,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProviderError(`etcd key ${key}: value is not a JSON object; graywave edits a field of it`, false);
  }
  return value as Json;
}

const TAG = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g;
type Capture = { kind: 'address' | 'name' | 'port' | 'var' | 'label' | 'other'; field?: string };

/** The key template as a regex over whole keys: each {{…}} becomes a group (host.address, host.name, host.vars.X …). */
export function keyPattern(template: string): { re: RegExp; captures: Capture[] } {
  const captures: Capture[] = [];
  let src = '';
  let last = 0;
  for (const m of template.matchAll(TAG)) {
    src += template.slice(last, m.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    last = m.index! + m[0].length;
    const name = m[1]!;
    const c: Capture =
      name === 'host.address'
        ? { kind: 'address' }
        : name === 'host.name'
          ? { kind: 'name' }
          : name === 'host.port'
            ? { kind: 'port' }
            : name.startsWith('host.vars.')
              ? { kind: 'var', field: name.slice(10) }
              : name.startsWith('host.labels.')
                ? { kind: 'label', field: name.slice(12) }
                : { kind: 'other' };
    captures.push(c);
    src += c.kind === 'port' ? '(\\d+)' : '([^/]+?)';
  }
  src += template.slice(last).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return { re: new RegExp(`^${src}$`), captures };
}

/** Parses `ip:port`, `[v6]:port` or a bare address. */
function splitAddress(s: string): { address: string; port?: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(s);
  return m ? { address: m[1]!, port: Number(m[2]) } : { address: s };
}

function hasLease(kv: IKeyValue): boolean {
  return kv.lease !== undefined && kv.lease !== '0' && kv.lease !== '';
}

/** Where `inventory: {provider, service}` lists a service's keys (see listHosts). */
function listPrefix(options: EtcdOptions, service: string): string {
  if (options.servicePrefix !== undefined) {
    const prefix = options.servicePrefix.replace(/\{\{\s*service\s*\}\}/g, service);
    if (prefix.includes('{{')) throw new ProviderError(`etcd: servicePrefix ${options.servicePrefix} may only use {{service}}`, false);
    return prefix;
  }
  const prefix = options.key.split('{{')[0]!;
  if (!prefix.split('/').includes(service)) {
    throw new ProviderError(
      `etcd: cannot list service ${service}: the key template ${options.key} puts hosts under ${prefix || '(no fixed prefix)'}, ` +
        `which does not name ${service} as a path segment; set servicePrefix (e.g. /services/{{service}}/)`,
      false,
    );
  }
  return prefix;
}

/** A registration's value as an object: JSON object as is, a JSON string or plain text as its address. */
function registrationValue(kv: IKeyValue): Json {
  try {
    const v = JSON.parse(kv.value.toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Json;
    if (typeof v === 'string') return { address: v };
    return {};
  } catch {
    return { address: kv.value.toString('utf8').trim() };
  }
}

type ListedHost = { name: string; address: string; port?: number; labels: Record<string, string>; vars: Record<string, unknown> };

/** What the key template's {{…}} places say of a key's host (undefined: the key is not of the template's shape). */
function fromKey(
  key: string,
  pattern: ReturnType<typeof keyPattern>,
): { address?: string; name?: string; port?: number; vars: Record<string, unknown>; labels: Record<string, string> } | undefined {
  const m = pattern.re.exec(key);
  if (!m) return undefined;
  const out: { address?: string; name?: string; port?: number; vars: Record<string, unknown>; labels: Record<string, string> } = { vars: {}, labels: {} };
  pattern.captures.forEach((c, i) => {
    const v = m[i + 1]!;
    if (c.kind === 'address') out.address = v;
    else if (c.kind === 'name') out.name = v;
    else if (c.kind === 'port') out.port = Number(v);
    else if (c.kind === 'var') out.vars[c.field!] = /^\d+$/.test(v) ? Number(v) : v;
    else if (c.kind === 'label') out.labels[c.field!] = v;
  });
  return out;
}

/** One listed key as a host (see listHosts), or undefined when it is not one. */
function hostOfKv(kv: IKeyValue, options: EtcdOptions, pattern: ReturnType<typeof keyPattern>): ListedHost | undefined {
  let key = kv.key.toString('utf8');
  const aside = key.endsWith(ASIDE_SUFFIX);
  if (aside) key = key.slice(0, -ASIDE_SUFFIX.length);
  const value = registrationValue(kv);
  const m = fromKey(key, pattern);
  if (!m && options.servicePrefix === undefined) return undefined; // not a registration of the key template's shape
  const { vars, labels } = m ?? { vars: {}, labels: {} };
  const fromValue = ['address', 'ip', 'host'].map((f) => value[f]).find((v): v is string => typeof v === 'string' && v.length > 0);
  const last = splitAddress(key.slice(key.lastIndexOf('/') + 1));
  const fromAddr = fromValue ? splitAddress(fromValue) : undefined;
  const address = m?.address ?? fromAddr?.address ?? (m ? undefined : last.address);
  if (!address) return undefined;
  const port =
    m?.port ??
    (typeof vars.port === 'number' ? vars.port : Number.isInteger(value.port) ? (value.port as number) : (fromAddr?.port ?? (m ? undefined : last.port)));
  for (const bag of [value.labels, value.metadata]) {
    if (bag && typeof bag === 'object' && !Array.isArray(bag)) {
      for (const [k, v] of Object.entries(bag as Json)) if (['string', 'number', 'boolean'].includes(typeof v) && !(k in labels)) labels[k] = String(v);
    }
  }
  const g = value[options.groupField];
  if (typeof g === 'string' && !(options.groupField in labels)) labels[options.groupField] = g;
  if (port !== undefined && vars.port === undefined) vars.port = port;
  if (aside) vars.drained = true;
  return { name: m?.name ?? address.replace(/[^A-Za-z0-9._-]/g, '-'), address, port, labels, vars };
}

/** The hosts of the listed keys, one per name (the first key wins; the ports of all its keys go to vars.ports). */
function hostsOfKeys(kvs: IKeyValue[], options: EtcdOptions): Omit<ListedHost, 'port'>[] {
  const pattern = keyPattern(options.key);
  const hosts = new Map<string, Omit<ListedHost, 'port'>>();
  const ports = new Map<string, Set<number>>();
  for (const kv of kvs) {
    const h = hostOfKv(kv, options, pattern);
    if (!h) continue;
    const { port, ...host } = h;
    if (!hosts.has(host.name)) hosts.set(host.name, host);
    if (port !== undefined) ports.set(host.name, (ports.get(host.name) ?? new Set()).add(port));
  }
  for (const [name, set] of ports) if (set.size > 1) hosts.get(name)!.vars.ports = [...set].sort((a, b) => a - b);
  return [...hosts.values()];
}

/**
 * The provider's door to etcd: the client (opened on first use), `call` (failures name the endpoints, the key and
 * what to check), `read`, `casEdit` (read-modify-write with a compare-and-swap), lease look-ups and `close`.
 */
function etcdKv(options: EtcdOptions, env: ProviderEnv, hooks: EtcdHooks) {
  const auth =
    options.username !== undefined && options.password !== undefined
      ? {
          username: typeof options.username === 'string' ? options.username : env.secrets.resolve(options.username),
          password: env.secrets.resolve(options.password),
        }
      : undefined;
  let client: Etcd3 | undefined;
  const etcd = (): Etcd3 =>
    (client ??= new (requireCjs('etcd3') as typeof import('etcd3')).Etcd3({
      hosts: options.endpoints,
      auth,
      dialTimeout: options.timeout,
      defaultCallOptions: () => ({ deadline: new Date(Date.now() + options.timeout) }),
    }));
  const where = options.endpoints.join(',');

  /** Every etcd call goes through here, so that failures name the endpoint and the key and say what to check. */
  async function call<T>(what: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      const msg = (err as Error).message ?? String(err);
      throw new ProviderError(`etcd ${where}: ${what} ${key} failed: ${msg} (is etcd reachable and are the credentials right?)`);
    }
  }

  const read = (key: string) => call('reading', key, async () => (await etcd().get(key).exec()).kvs[0]);

  /**
   * Read-modify-write of a JSON registration with a compare-and-swap on its mod revision; the key keeps its
   * lease (ignore_lease). `edit` sees the freshest value on every attempt and returns the new object, or
   * undefined to write nothing. Returns what `edit` last saw (undefined: the key does not exist).
   */
  async function casEdit(key: string, edit: (value: Json, kv: IKeyValue) => Json | undefined): Promise<IKeyValue | undefined> {
    for (let attempt = 1; attempt <= CAS_ATTEMPTS; attempt++) {
      const kv = await read(key);
      if (!kv) return undefined;
      await hooks.afterRead?.(key, attempt);
      const next = edit(parseObject(kv, key), kv);
      if (next === undefined) return kv;
      const res = await call('writing', key, () =>
        etcd()
          .if(key, 'Mod', '==', kv.mod_revision)
          .then(etcd().put(key).value(JSON.stringify(next)).ignoreLease())
          .commit(),
      );
      if (res.succeeded) return kv;
      // Someone else wrote the key between our read and our write: read again and re-apply on top of their change.
    }
    throw new ProviderError(`etcd key ${key}: changed concurrently ${CAS_ATTEMPTS} times in a row; try again`);
  }

  async function leaseAlive(lease: string): Promise<boolean> {
    if (lease === '0') return false;
    const res = await call('asking the lease of', lease, () => etcd().leaseClient.leaseTimeToLive({ ID: lease }));
    return Number(res.TTL) > 0;
  }

  function close(): void {
    client?.close();
    client = undefined;
  }

  return { etcd, where, call, read, casEdit, leaseAlive, close };
}

export function createEtcdProvider(options: EtcdOptions, env: ProviderEnv, hooks: EtcdHooks = {}): Provider {
  const store = etcdKv(options, env, hooks);
  const { etcd, where, call, read, casEdit, leaseAlive } = store;

  const drainedValue = () => (options.mode === 'weight' ? 0 : false);
  const drainField = () => (options.mode === 'weight' ? options.weightField : options.enabledField);

  async function drainField_(ctx: ProviderContext, key: string): Promise<EtcdDrained> {
    const field = drainField();
    const prev = ctx.previous as EtcdDrained | undefined;
    let saved: EtcdDrained | undefined;
    const kv = await casEdit(key, (value) => {
      // A repeated drain (resume) must keep the value recorded by the first one, not the 0 it wrote itself.
      saved =
        prev && prev.mode === options.mode && prev.key === key
          ? prev
          : { mode: options.mode as 'weight' | 'disable', key, field, existed: true, had: field in value, previous: value[field] };
      if (value[field] === drainedValue()) return undefined;
      return { ...value, [field]: drainedValue() };
    });
    if (!kv) {
      ctx.log(`etcd: ${key} is not registered; nothing to drain`);
      return prev && prev.mode === options.mode && prev.key === key
        ? prev
        : { mode: options.mode as 'weight' | 'disable', key, field, existed: false, had: false };
    }
    const s = saved!;
    if (s.mode !== 'remove' && s.previous === drainedValue() && !prev) {
      ctx.log(`etcd: ${key} already had ${field}=${JSON.stringify(s.previous)} before drain; restore will leave it so`);
    } else {
      ctx.log(`etcd: ${key} ${field} ${JSON.stringify(s.mode !== 'remove' ? s.previous : undefined)} -> ${JSON.stringify(drainedValue())}`);
    }
    return s;
  }

  async function drainRemove(ctx: ProviderContext, key: string): Promise<EtcdDrained> {
    const aside = key + ASIDE_SUFFIX;
    const prev = ctx.previous as EtcdDrained | undefined;
    for (let attempt = 1; attempt <= CAS_ATTEMPTS; attempt++) {
      const kv = await read(key);
      if (!kv) {
        const copy = await read(aside);
        if (copy) return prev && prev.mode === 'remove' && prev.key === key ? prev : { mode: 'remove', key, existed: true, lease: '0' };
        ctx.log(`etcd: ${key} is not registered; nothing to drain`);
        return { mode: 'remove', key, existed: false, lease: '0' };
      }
      await hooks.afterRead?.(key, attempt);
      // The copy is written without a lease: it must outlive the app's session so restore can put it back.
      const res = await call('moving aside', key, () =>
        etcd().if(key, 'Mod', '==', kv.mod_revision).then(etcd().put(aside).value(kv.value), etcd().delete().key(key)).commit(),
      );
      if (res.succeeded) {
        const lease = hasLease(kv) ? String(kv.lease) : '0';
        ctx.log(`etcd: ${key} moved aside to ${aside}${lease !== '0' ? ` (lease ${lease} kept for restore)` : ''}`);
        return { mode: 'remove', key, existed: true, lease };
      }
    }
    throw new ProviderError(`etcd key ${key}: changed concurrently ${CAS_ATTEMPTS} times in a row; try again`);
  }

  async function restoreRemove(ctx: ProviderContext, saved: Extract<EtcdDrained, { mode: 'remove' }>): Promise<void> {
    const { key } = saved;
    const aside = key + ASIDE_SUFFIX;
    for (let attempt = 1; attempt <= CAS_ATTEMPTS; attempt++) {
      const copy = await read(aside);
      const current = await read(key);
      if (!copy) {
        if (!current && saved.existed) ctx.log(`etcd: neither ${key} nor ${aside} exists; the app is not registered (nothing to put back)`);
        return;
      }
      if (current) {
        // The app registered again by itself while drained: its fresh registration wins; drop our copy.
        await call('deleting', aside, () => etcd().if(aside, 'Mod', '==', copy.mod_revision).then(etcd().delete().key(aside)).commit());
        ctx.log(`etcd: ${key} was re-registered by the app; left as is, removed ${aside}`);
        return;
      }
      const alive = await leaseAlive(saved.lease);
      const put = etcd().put(key).value(copy.value);
      if (alive) put.lease(saved.lease);
      const res = await call('restoring', key, () =>
        etcd().if(key, 'Create', '==', 0).and(aside, 'Mod', '==', copy.mod_revision).then(put, etcd().delete().key(aside)).commit(),
      );
      if (res.succeeded) {
        if (alive) ctx.log(`etcd: ${key} restored on its lease ${saved.lease}`);
        else if (saved.lease !== '0')
          ctx.log(`etcd: ${key} restored WITHOUT a lease: its lease ${saved.lease} expired while drained (the key no longer expires with the app)`);
        else ctx.log(`etcd: ${key} restored`);
        return;
      }
    }
    throw new ProviderError(`etcd key ${key}: changed concurrently ${CAS_ATTEMPTS} times in a row; try again`);
  }

  return {
    async drain(ctx) {
      const key = ctx.render(options.key);
      return options.mode === 'remove' ? drainRemove(ctx, key) : drainField_(ctx, key);
    },

    async isDrained(ctx): Promise<Check> {
      const key = ctx.render(options.key);
      let kv: IKeyValue | undefined;
      try {
        kv = await read(key);
      } catch (err) {
        return { done: false, observed: (err as Error).message };
      }
      if (!kv) return { done: true, observed: `${key} not registered` };
      if (options.mode === 'remove') return { done: false, observed: `${key} still registered` };
      let value: Json;
      try {
        value = parseObject(kv, key);
      } catch (err) {
        return { done: false, observed: (err as Error).message };
      }
      const field = drainField();
      if (value[field] === drainedValue()) return { done: true, observed: `${field}=${JSON.stringify(value[field])}` };
      return { done: false, observed: `${key} ${field}=${JSON.stringify(value[field])}` };
    },

    async restore(ctx, saved) {
      const s = saved as EtcdDrained;
      if (!s || typeof s !== 'object' || !('mode' in s)) throw new ProviderError('etcd restore: saved drain data is missing or malformed', false);
      if (s.mode === 'remove') return restoreRemove(ctx, s);
      if (!s.existed) return;
      if (s.had && s.previous === drainedValue()) return; // drain changed nothing
      const kv = await casEdit(s.key, (value) => {
        // Put back only what we wrote (the drained value, or a warm-up share of the saved weight): if someone
        // changed the field since, theirs stays.
        const v = value[s.field];
        const warmup = s.mode === 'weight' && typeof v === 'number' && typeof s.previous === 'number' && v > 0 && v < s.previous;
        if (v !== drainedValue() && !warmup) return undefined;
        const next = { ...value };
        if (s.had) next[s.field] = s.previous;
        else delete next[s.field];
        return next;
      });
      if (!kv) ctx.log(`etcd: ${s.key} is not registered any more; nothing to restore`);
      else ctx.log(`etcd: ${s.key} ${s.field} restored to ${s.had ? JSON.stringify(s.previous) : '(absent)'}`);
    },

    /** Serving again: the key is registered, and the drained field no longer holds the drained value (0 / false). */
    async isRestored(_ctx, saved): Promise<Check> {
      const s = saved as EtcdDrained;
      if (!s || typeof s !== 'object' || !('mode' in s)) return { done: false, observed: 'etcd: saved drain data is missing or malformed' };
      if (!s.existed) return { done: true, observed: `${s.key} was not registered when drained: nothing to wait for` };
      let kv: IKeyValue | undefined;
      try {
        kv = await read(s.key);
        if (!kv)
          return {
            done: false,
            observed: `${s.key} is not registered${s.mode === 'remove' && (await read(s.key + ASIDE_SUFFIX)) ? ` (still moved aside to ${s.key}${ASIDE_SUFFIX})` : ''}`,
          };
        if (s.mode === 'remove') return { done: true, observed: `${s.key} registered` };
        const value = parseObject(kv, s.key);
        if (s.had && s.previous === drainedValue())
          return { done: true, observed: `${s.field}=${JSON.stringify(value[s.field])} (it was so before the drain)` };
        if (value[s.field] === drainedValue())
          return { done: false, observed: `${s.key} ${s.field}=${JSON.stringify(value[s.field])} (want ${s.had ? JSON.stringify(s.previous) : 'absent'})` };
        return { done: true, observed: `${s.key} ${s.field}=${JSON.stringify(value[s.field] ?? null)}` };
      } catch (err) {
        return { done: false, observed: `state unknown: ${(err as Error).message}` };
      }
    },

    /** Warm-up (mode weight): the weight field at `percent` of the weight saved at drain time (an integer, at least 1). */
    async setWeight(ctx, saved, percent) {
      const s = saved as EtcdDrained;
      if (!s || typeof s !== 'object' || s.mode !== 'weight')
        throw new ProviderError(`etcd: warm-up needs mode weight (this provider drains by ${options.mode})`, false);
      if (!s.existed || (s.had && s.previous === 0)) return;
      const full = s.had ? Number(s.previous) : 1;
      if (!Number.isFinite(full))
        throw new ProviderError(`etcd: ${s.key} had ${s.field}=${JSON.stringify(s.previous)}, not a number: cannot warm it up`, false);
      const target = Number.isInteger(full) ? Math.max(1, Math.round((full * percent) / 100)) : (full * percent) / 100;
      const kv = await casEdit(s.key, (value) => (value[s.field] === target ? undefined : { ...value, [s.field]: target }));
      if (!kv) throw new ProviderError(`etcd: ${s.key} is not registered (yet): cannot set its weight`, true, true);
      ctx.log(`etcd: ${s.key} ${s.field}=${target} (${percent}% of ${full})`);
    },

    async isRegistered(ctx): Promise<Check> {
      const key = ctx.render(options.key);
      try {
        if (await read(key)) return { done: true, observed: `${key} registered` };
        if (options.mode === 'remove' && (await read(key + ASIDE_SUFFIX))) return { done: true, observed: `${key} moved aside (drained)` };
        return { done: false, observed: `${key} is not registered in etcd ${where}` };
      } catch (err) {
        return { done: false, observed: `state unknown: ${(err as Error).message}` };
      }
    },

    async relabel(ctx, group) {
      const key = ctx.render(options.key);
      const field = options.groupField;
      const prev = ctx.previous as EtcdRelabeled | undefined;
      // In mode remove the registration lives in its aside copy while drained: the group goes there, and restore carries it back.
      const target = options.mode === 'remove' && !(await read(key)) ? key + ASIDE_SUFFIX : key;
      let saved: EtcdRelabeled | undefined;
      const kv = await casEdit(target, (value) => {
        saved = prev && prev.key === key && prev.group === group ? prev : { key, field, group, had: field in value, previous: value[field] };
        if (value[field] === group) return undefined;
        return { ...value, [field]: group };
      });
      if (!kv) throw new ProviderError(`etcd: cannot relabel ${ctx.host.name}: ${key} is not registered${target !== key ? ` and has no ${target}` : ''}`);
      ctx.log(`etcd: ${target} ${field} ${JSON.stringify(saved!.previous)} -> ${JSON.stringify(group)}`);
      return saved;
    },

    async restoreLabel(ctx, saved) {
      const s = saved as EtcdRelabeled;
      if (!s || typeof s !== 'object' || !('group' in s)) throw new ProviderError('etcd restoreLabel: saved relabel data is missing or malformed', false);
      if (s.had && s.previous === s.group) return;
      const target = options.mode === 'remove' && !(await read(s.key)) ? s.key + ASIDE_SUFFIX : s.key;
      const kv = await casEdit(target, (value) => {
        if (value[s.field] !== s.group) return undefined; // someone else relabelled since: theirs stays
        const next = { ...value };
        if (s.had) next[s.field] = s.previous;
        else delete next[s.field];
        return next;
      });
      if (!kv) ctx.log(`etcd: ${s.key} is not registered any more; no label to restore`);
      else ctx.log(`etcd: ${target} ${s.field} restored to ${s.had ? JSON.stringify(s.previous) : '(absent)'}`);
    },

    /**
     * `inventory: {provider, service}`: one host per registration key under a prefix. The prefix is `servicePrefix`
     * with {{service}} replaced, or else the literal start of the `key` template (everything before its first {{…}}),
     * which must contain the service as one path segment (key /services/order/{{host.address}}:8080 lists service
     * `order` under /services/order/). A key is read back through the `key` template: the parts in the place of
     * {{host.address}}, {{host.name}}, {{host.port}}, {{host.vars.X}} and {{host.labels.X}} become the host's address,
     * name, port, vars and labels, so the template renders every listed host's key again. Keys that do not match it
     * are not hosts (skipped) — except under a `servicePrefix`, where address and port come from the value's
     * `address`/`ip`/`host` and `port` fields or the key's last segment (`ip:port`). A key a `remove` drain moved
     * aside (…${ASIDE_SUFFIX}) counts as its original key (vars.drained = true). Labels: the value's `labels` or
     * `metadata` object and its group field. Nothing found is an error.
     */
    async listHosts(service) {
      const prefix = listPrefix(options, service);
      const res = await call('listing', `${prefix}*`, () => etcd().getAll().prefix(prefix).exec());
      const hosts = hostsOfKeys(res.kvs, options);
      if (hosts.length === 0) {
        throw new ProviderError(`etcd ${where}: no registration of service ${service} under ${prefix} (keys like ${options.key})`, false);
      }
      return hosts;
    },

    async close() {
      store.close();
    },
  };
}

export const etcdProvider: ProviderType<EtcdOptions> = {
  type: 'etcd',
  role: 'drain',
  options: etcdOptions,
  doc: {
    summary:
      'Services registered in etcd as JSON values: drain sets the weight field to 0, the enabled field to false, or moves the key aside; compare-and-swap on the mod revision, the lease kept.',
    checkedAgainst: 'real etcd 3.4 (Debian)',
    example: 'type: etcd\nendpoints: ["http://etcd1:2379"]\nkey: /services/order/{{host.address}}:8080\n# mode: weight          # or disable, remove',
    options: {
      username: 'etcd user (a plain name or a secret { env: NAME }); goes with password.',
      password: 'etcd password, a secret: { env: NAME } or { file: PATH }.',
      timeout: 'Dial timeout and deadline of each etcd call.',
      endpoints: 'etcd client URLs.',
      key: "The host's registration key (a template).",
      mode: '`weight`: weightField = 0; `disable`: enabledField = false; `remove`: the key is moved aside and put back on restore.',
      groupField: 'Field relabel writes the group into.',
      weightField: 'Field set to 0 in mode weight.',
      enabledField: 'Field set to false in mode disable.',
      servicePrefix: 'Where `inventory: {provider, service}` looks ({{service}} for the service).',
    },
  },
  describe: (o, c) => {
    const key = c.render(o.key);
    return {
      drain: `etcd ${o.endpoints.join(',')}: ${o.mode === 'weight' ? `${key} .${o.weightField} = 0` : o.mode === 'disable' ? `${key} .${o.enabledField} = false` : `moves ${key} aside`}`,
      check: `reads ${key} back`,
      restore: `puts back what drain changed in ${key}`,
      relabel: `${key} .${o.groupField} = <group>`,
    };
  },
  create: (options, env) => createEtcdProvider(options, env),
};
