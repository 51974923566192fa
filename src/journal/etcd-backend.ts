import { createRequire } from 'node:module';
import type { Etcd3, IKeyValue, Lease } from 'etcd3';
import { z } from 'zod';
import { GraywaveError, LockHeldError } from '../errors.js';
import { duration } from '../util/duration.js';
import { secretRef, Secrets } from '../util/secrets.js';
import type { StateBackend, StateBackendType } from './backend.js';
import { Journal, type JournalStore } from './journal.js';
import { currentActor, holderDeadHere, refuseLiveHolder, type LockInfo } from './lock.js';
import type { ControlRequest, JournalRecord } from './records.js';

// etcd3 pulls in gRPC and protobuf (~0.2 s): load it only when a playbook keeps its state in etcd.
const requireCjs = createRequire(import.meta.url);

/** `state: {type: etcd, ...}` (durations in ms after parsing). */
export const etcdStateOptions = z
  .object({
    endpoints: z.array(z.string().min(1)).min(1),
    /** Every key of a release lives under `<prefix>/<release>/`. */
    prefix: z
      .string()
      .regex(/^\/[^\s]*$/, 'must be an absolute key prefix such as /graywave')
      .default('/graywave'),
    /** Lease of the lock: how long after its holder dies (or loses etcd) the lock frees itself. Whole seconds, at least 2 s. */
    ttl: duration.default('10s').refine((ms) => ms >= 2000 && ms % 1000 === 0, 'ttl must be whole seconds, at least 2s'),
    username: z.union([z.string().min(1), secretRef]).optional(),
    password: secretRef.optional(),
    /** Deadline of each etcd call. */
    timeout: duration.default('10s'),
  })
  .strict()
  .refine((o) => (o.username === undefined) === (o.password === undefined), {
    message: 'username and password go together (password as { env: NAME } or { file: PATH })',
    path: ['password'],
  });
export type EtcdStateOptions = z.infer<typeof etcdStateOptions>;

// ---------------------------------------------------------------------------------------------------------------
// Shared by the etcd and ZooKeeper backends.

/** Journal lines are stored in chunks (one key / znode each) of at most this many bytes. */
export const CHUNK_BYTES = 256 * 1024;

/** Splits lines into chunks of at most CHUNK_BYTES (a longer single line is a chunk of its own). Order is kept. */
export function chunkLines(lines: string[], max = CHUNK_BYTES): string[] {
  const chunks: string[] = [];
  let cur = '';
  for (const line of lines) {
    if (cur && Buffer.byteLength(cur) + Buffer.byteLength(line) > max) {
      chunks.push(cur);
      cur = '';
    }
    cur += line;
  }
  if (cur) chunks.push(cur);
  return chunks;
}

/** Parses journal chunks (already in order) into records; `where(i)` names chunk i in the error. */
export function parseChunks(chunks: string[], where: (i: number) => string): JournalRecord[] {
  const records: JournalRecord[] = [];
  chunks.forEach((text, i) => {
    text.split('\n').forEach((line, j) => {
      if (line.trim() === '') return;
      try {
        records.push(JSON.parse(line) as JournalRecord);
      } catch {
        throw new GraywaveError(
          `journal ${where(i)} is corrupt at line ${j + 1}`,
          1,
          'the journal is append-only: restore that key from a backup, or archive the release to start it again',
        );
      }
    });
  });
  return records;
}

export function holderText(h: LockInfo): string {
  return `pid ${h.pid} on ${h.host} (user ${h.user}, ${h.command} since ${h.startedAt}${h.reason ? `, reason: ${h.reason}` : ''})`;
}

export function parseLock(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as LockInfo;
    return v && typeof v === 'object' && typeof v.pid === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The LockHeldError for a lock kept in a cluster: same wording as the file lock, plus when it frees itself. */
export function clusterLockHeld(where: string, holder: LockInfo | undefined, expiry: string, unlockHint: string): LockHeldError {
  if (!holder) return new LockHeldError(`release is locked (${where}, unreadable)`, `if no graywave is running for it: ${unlockHint}`);
  const who = holderText(holder);
  if (holderDeadHere(holder)) {
    return new LockHeldError(
      `release is locked by ${who}, which is no longer running (stale lock; ${expiry})`,
      `wait for that, or check nothing else is releasing it, then: ${unlockHint}`,
    );
  }
  return new LockHeldError(`release is locked by ${who}`, `wait for it to finish; if it is gone, its lock frees itself (${expiry}), or: ${unlockHint}`);
}

// ---------------------------------------------------------------------------------------------------------------

const SEQ_DIGITS = 16;
const seqKey = (n: number) => String(n).padStart(SEQ_DIGITS, '0');
/** At most this many chunk puts and bytes per transaction (etcd's defaults: 128 ops, 1.5 MiB per request). */
const TXN_OPS = 64;
const TXN_BYTES = 1024 * 1024;

/** Splits items into transactions of at most TXN_OPS items and TXN_BYTES (an item bigger than that goes alone). */
function txnGroups<T>(items: T[], size: (item: T) => number): T[][] {
  const groups: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const b = size(item);
    if (cur.length && (cur.length >= TXN_OPS || bytes + b > TXN_BYTES)) {
      groups.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(item);
    bytes += b;
  }
  if (cur.length) groups.push(cur);
  return groups;
}

/**
 * Release state in etcd (v3 API), under `<prefix>/<release>/`:
 * - `lock`: the LockInfo JSON, put on a lease the holder keeps alive; taken with a transaction that requires the
 *   key not to exist (create revision 0). When the holder dies, the lease expires after `ttl` and the key goes.
 * - `journal/<seq>`: the journal in chunks of whole lines, seq zero-padded so that key order is journal order.
 *   Each append is one transaction per ≤1 MiB that requires its new keys not to exist (two writers can never
 *   interleave) and, while this process holds the lock, the lock key to still be on its lease (a holder that lost
 *   its lock — lease expired, or `unlock --force` — cannot append any more: it halts).
 * - `control/<id>`: ControlRequests (abort, promote) posted by other processes.
 * - `archive/<ms>/journal/…`, `archive/<ms>/control/…`: an archived journal (copied there, then deleted in one
 *   transaction; a crash in between leaves the journal in place and a spare copy in the archive).
 */
export class EtcdBackend implements StateBackend {
  readonly where: string;
  private client?: Etcd3;
  private readonly base: string;
  private lease?: Lease;
  private leaseId?: string;
  private leaseLost = false;
  private readonly endpoints: string;

  constructor(
    private readonly options: EtcdStateOptions,
    release: string,
    secrets: Secrets,
  ) {
    this.base = `${options.prefix.replace(/\/+$/, '')}/${release}`;
    this.endpoints = options.endpoints.join(',');
    this.where = `etcd ${this.endpoints} ${this.base}`;
    this.auth =
      options.username !== undefined && options.password !== undefined
        ? { username: typeof options.username === 'string' ? options.username : secrets.resolve(options.username), password: secrets.resolve(options.password) }
        : undefined;
  }

  private readonly auth?: { username: string; password: string };

  private get lockKey() {
    return `${this.base}/lock`;
  }
  private get journalPrefix() {
    return `${this.base}/journal/`;
  }
  private get controlPrefix() {
    return `${this.base}/control/`;
  }

  private etcd(): Etcd3 {
    const { timeout } = this.options;
    return (this.client ??= new (requireCjs('etcd3') as typeof import('etcd3')).Etcd3({
      hosts: this.options.endpoints,
      auth: this.auth,
      dialTimeout: timeout,
      defaultCallOptions: () => ({ deadline: new Date(Date.now() + timeout) }),
    }));
  }

  /** Every etcd call goes through here: failures name the cluster and what was being done. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof GraywaveError) throw err;
      throw new GraywaveError(
        `state in etcd ${this.endpoints}: ${what} failed: ${(err as Error).message ?? String(err)}`,
        1,
        'check that etcd is reachable from here and the credentials are right (state: in the playbook)',
      );
    }
  }

  private get ttlSeconds(): number {
    return Math.round(this.options.ttl / 1000);
  }

  async acquireLock(info: { command: string; reason?: string }, unlockHint: string): Promise<() => Promise<void>> {
    const mine: LockInfo = { ...currentActor(), startedAt: new Date().toISOString(), command: info.command, reason: info.reason };
    const etcd = this.etcd();
    const lease = etcd.lease(this.ttlSeconds);
    lease.on('lost', () => (this.leaseLost = true));
    const id = await this.call('granting a lease', () => lease.grant());
    const res = await this.call(`taking the lock ${this.lockKey}`, () =>
      etcd
        .if(this.lockKey, 'Create', '==', 0)
        .then(etcd.put(this.lockKey).value(JSON.stringify(mine)).lease(id))
        .else(etcd.get(this.lockKey))
        .commit(),
    );
    if (!res.succeeded) {
      await lease.revoke().catch(() => undefined);
      const kv = res.responses[0]?.response_range?.kvs?.[0];
      throw clusterLockHeld(
        this.lockKey,
        kv ? parseLock(kv.value.toString('utf8')) : undefined,
        `its etcd lease expires at most ${this.ttlSeconds}s after it stopped`,
        unlockHint,
      );
    }
    this.lease = lease;
    this.leaseId = id;
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      this.lease = undefined;
      this.leaseId = undefined;
      try {
        // Delete the key only while it is still ours (someone may have force-unlocked and locked again).
        await etcd.if(this.lockKey, 'Lease', '==', id).then(etcd.delete().key(this.lockKey)).commit();
      } finally {
        await lease.revoke().catch(() => lease.release());
      }
    };
  }

  async readLock(): Promise<LockInfo | undefined> {
    const kv = await this.get(this.lockKey);
    return kv ? parseLock(kv.value.toString('utf8')) : undefined;
  }

  async forceUnlock(): Promise<LockInfo | undefined> {
    const kv = await this.get(this.lockKey);
    if (!kv) return undefined;
    const holder = parseLock(kv.value.toString('utf8'));
    refuseLiveHolder(holder);
    const etcd = this.etcd();
    // Only the lock we looked at: a new holder that came in between keeps its lock.
    const res = await this.call(`deleting the lock ${this.lockKey}`, () =>
      etcd.if(this.lockKey, 'Mod', '==', kv.mod_revision).then(etcd.delete().key(this.lockKey)).commit(),
    );
    return res.succeeded ? holder : undefined;
  }

  private async get(key: string): Promise<IKeyValue | undefined> {
    return this.call(`reading ${key}`, async () => (await this.etcd().get(key).exec()).kvs[0]);
  }

  /** Every key under `prefix`, in key order, read in pages (a long journal never needs one huge response). */
  private async list(prefix: string): Promise<IKeyValue[]> {
    const out: IKeyValue[] = [];
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    let start: string | Buffer = prefix;
    for (;;) {
      const from = start;
      const res = await this.call(`reading ${prefix}`, () => this.etcd().getAll().inRange({ start: from, end }).sort('Key', 'Ascend').limit(500).exec());
      out.push(...res.kvs);
      if (!res.more || res.kvs.length === 0) return out;
      // Next page: just after the last key (the key plus a zero byte).
      start = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
  }

  private async readJournalKeys(): Promise<{ records: JournalRecord[]; next: number }> {
    const kvs = await this.list(this.journalPrefix);
    const keys = kvs.map((kv) => kv.key.toString('utf8'));
    const records = parseChunks(
      kvs.map((kv) => kv.value.toString('utf8')),
      (i) => `${this.endpoints} ${keys[i]}`,
    );
    const last = keys.length ? Number(keys[keys.length - 1]!.slice(this.journalPrefix.length)) : 0;
    return { records, next: last + 1 };
  }

  async openJournal(): Promise<Journal> {
    const { records, next } = await this.readJournalKeys();
    return new Journal(new EtcdJournalStore(this, next), records);
  }

  async readRecords(): Promise<JournalRecord[]> {
    return (await this.readJournalKeys()).records;
  }

  /**
   * The lock as etcd has it now, after it refused an append. When it cannot be read either, whether this process still
   * holds the release is unknown: that is said as such (never as a lost lock), and nothing more is done.
   */
  private async lockAfterRefusal(): Promise<IKeyValue | undefined> {
    try {
      return await this.get(this.lockKey);
    } catch (err) {
      throw new GraywaveError(
        `etcd refused the journal append to ${this.journalPrefix}, and the release lock ${this.lockKey} could not be read back (${(err as Error).message}): whether this process still holds the release is unknown; no further side effect is taken`,
        1,
        'check `graywave status` once etcd answers, then resume',
      );
    }
  }

  /** One append: chunk puts in as few transactions as fit, each guarded as described on the class. */
  async appendChunks(next: number, lines: string[]): Promise<number> {
    if (this.leaseLost)
      throw new GraywaveError(
        `lost the release lock ${this.lockKey}: its etcd lease expired`,
        1,
        'another process may hold the release now; check `graywave status`, then resume',
      );
    const etcd = this.etcd();
    for (const group of txnGroups(chunkLines(lines), (c) => Buffer.byteLength(c))) {
      const keys = group.map((_, j) => this.journalPrefix + seqKey(next + j));
      const txn = etcd.if(keys[0]!, 'Create', '==', 0);
      for (const k of keys.slice(1)) txn.and(k, 'Create', '==', 0);
      if (this.leaseId) txn.and(this.lockKey, 'Lease', '==', this.leaseId);
      const res = await this.call(`appending to ${this.journalPrefix}`, () => txn.then(...group.map((c, j) => etcd.put(keys[j]!).value(c))).commit());
      if (!res.succeeded) {
        const lock = this.leaseId ? await this.lockAfterRefusal() : undefined;
        if (this.leaseId && (!lock || String(lock.lease) !== String(this.leaseId))) {
          throw new GraywaveError(
            `lost the release lock ${this.lockKey} (expired or removed by unlock --force): no further side effect is taken`,
            1,
            'another process may hold the release now; check `graywave status`',
          );
        }
        throw new GraywaveError(
          `another process appended to the journal ${this.journalPrefix} (key ${keys[0]} exists): two writers on one release`,
          1,
          'check `graywave status` for the lock holder',
        );
      }
      next += group.length;
    }
    return next;
  }

  async archiveJournal(): Promise<void> {
    const stamp = Date.now();
    const dest = `${this.base}/archive/${stamp}/`;
    const etcd = this.etcd();
    const kvs = [...(await this.list(this.journalPrefix)), ...(await this.list(this.controlPrefix))];
    for (const part of txnGroups(kvs, (kv) => kv.value.length)) {
      await this.call(`copying the journal to ${dest}`, () =>
        etcd
          .if(this.lockKey, 'Create', '>', -1)
          .then(...part.map((kv) => etcd.put(dest + kv.key.toString('utf8').slice(this.base.length + 1)).value(kv.value)))
          .commit(),
      );
    }
    const txn = this.leaseId ? etcd.if(this.lockKey, 'Lease', '==', this.leaseId) : etcd.if(this.lockKey, 'Create', '>', -1);
    const res = await this.call(`clearing ${this.journalPrefix}`, () =>
      txn.then(etcd.delete().prefix(this.journalPrefix), etcd.delete().prefix(this.controlPrefix)).commit(),
    );
    if (!res.succeeded) throw new GraywaveError(`lost the release lock ${this.lockKey} while archiving the journal`, 1, 'check `graywave status`');
  }

  async postControl(request: ControlRequest): Promise<void> {
    await this.call('posting a control request', () =>
      this.etcd()
        .put(this.controlPrefix + request.id)
        .value(JSON.stringify(request))
        .exec(),
    );
  }

  async readControls(): Promise<ControlRequest[]> {
    return (await this.list(this.controlPrefix)).flatMap((kv) => {
      try {
        return [JSON.parse(kv.value.toString('utf8')) as ControlRequest];
      } catch {
        return [];
      }
    });
  }

  async close(): Promise<void> {
    this.lease?.release();
    this.client?.close();
    this.client = undefined;
  }
}

class EtcdJournalStore implements JournalStore {
  readonly where: string;
  constructor(
    private readonly backend: EtcdBackend,
    private next: number,
  ) {
    this.where = backend.where + '/journal';
  }

  async append(lines: string[]): Promise<void> {
    this.next = await this.backend.appendChunks(this.next, lines);
  }

  async close(): Promise<void> {}
}

/** `state: {type: etcd, …}`: the journal, lock and controls in an etcd cluster (one line in src/journal/backends.ts). */
export const etcdState: StateBackendType<EtcdStateOptions> = {
  doc: {
    summary: 'Journal and lock in etcd, shared by every machine: the lock is a lease that dies with its holder; writes are fenced by the lock.',
    checkedAgainst: 'real etcd 3.4 (Debian)',
    example: 'type: etcd\nendpoints: ["http://etcd1:2379"]\n# prefix: /graywave',
    options: {
      username: 'etcd user (a plain name or a secret reference); goes with password.',
      password: 'Its password, a secret: { env: NAME } or { file: PATH }.',
      timeout: 'Deadline of each etcd call.',
      endpoints: 'etcd client URLs.',
      prefix: 'Every key of a release lives under <prefix>/<release>/.',
      ttl: 'Lease of the lock: how long after its holder dies the lock frees itself.',
    },
  },
  type: 'etcd',
  options: etcdStateOptions,
  create: (o, env) => new EtcdBackend(o, env.release, new Secrets(env.playbookDir)),
};
