import { createRequire } from 'node:module';
import type { Client, Stat, Transaction, TransactionResult } from 'node-zookeeper-client';
import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { duration } from '../util/duration.js';

/**
 * A small promise wrapper over node-zookeeper-client, shared by the ZooKeeper providers and the state backend.
 *
 * Why the extra care: node-zookeeper-client queues requests while it is disconnected and sends them once it
 * reconnects, possibly long after we gave up on them. So every call has a timeout, and after a timeout or a
 * connection loss the client is thrown away (closed) and a fresh one is opened on the next call: a write we
 * reported as failed can never land later behind our back. A write that was in flight when the connection
 * dropped may or may not have been applied; callers therefore write whole values with version checks and
 * re-read the state on retry (every provider method is idempotent).
 *
 * With `keepSession` (the state backend, whose release lock is an ephemeral node) a connection loss does not end
 * the session: node-zookeeper-client reconnects with the same session by itself while it has not expired. The same
 * guarantee is kept another way: a request is handed to the client only while it is connected (a call made while
 * it is not waits for the reconnection, at most `connectTimeoutMs`, then fails retryable with nothing sent), and on
 * a disconnect whatever the client still had queued is failed rather than sent later. A request that gets no answer
 * within `connectTimeoutMs` resets the connection (not the session), which fails it for good. Only the session's
 * expiry (or `close`) drops the client; the next call then opens a new session.
 */

export interface ZkOptions {
  /** Ensemble string, `zk1:2181,zk2:2181` (an optional chroot suffix `/path` is passed through). */
  connect: string;
  sessionTimeoutMs: number;
  /** Time allowed to (re)connect, and for each single request once connected. */
  connectTimeoutMs: number;
  /** Name used in error messages, e.g. `dubbo-zookeeper provider "dubbo"`. */
  label: string;
  /** Keep the session across connection losses (see the file comment); default false: drop it on any disconnect. */
  keepSession?: boolean;
  /** With keepSession: called after a session that was established has expired (the client is dropped by then). */
  onSessionExpired?: () => void;
}

export interface ZkNode {
  data: Buffer;
  version: number;
  stat: Stat;
}

export type ZkCreateMode = 'persistent' | 'ephemeral' | 'persistent-sequential';

export type ZkOp =
  /** mode: persistent unless told; persistent-sequential takes `path` as the name prefix (ZooKeeper appends a 10-digit counter). */
  | { op: 'create'; path: string; data?: Buffer | string; mode?: ZkCreateMode }
  | { op: 'set'; path: string; data: Buffer | string; version: number }
  | { op: 'remove'; path: string; version: number }
  | { op: 'check'; path: string; version: number };

/** What one op of a multi did: the path created (sequential: with its counter), the version a set wrote. */
export interface ZkOpResult {
  path?: string;
  version?: number;
}

/** The parts of node-zookeeper-client's internals that keepSession relies on (checked at run time, see `internals`). */
interface ClientInternals {
  getSessionId(): Buffer;
  connectionManager?: {
    socket?: { destroy(): void };
    packetQueue?: { queue?: { callback?: (err: unknown) => void }[] };
  };
}

// Loaded on first use: most commands and playbooks never talk to ZooKeeper, and the client is 40 modules to load.
const requireCjs = createRequire(import.meta.url);
let zkLib: typeof import('node-zookeeper-client') | undefined;
const zookeeper = (): typeof import('node-zookeeper-client') => (zkLib ??= requireCjs('node-zookeeper-client') as typeof import('node-zookeeper-client'));
const E = () => zookeeper().Exception;
/** Marks the ops after the failed one in a failed multi's results. */
const RUNTIME_INCONSISTENCY = -2;

/** A ZooKeeper error with the server's code, e.g. `isZkError(err, 'BAD_VERSION')`. */
export class ZkError extends ProviderError {
  constructor(
    message: string,
    readonly code: number,
    retryable: boolean,
    /** For a failed multi: the index of the op that failed. */
    readonly failedOp?: number,
  ) {
    super(message, retryable);
    this.name = 'ZkError';
  }
}

type Code = 'NO_NODE' | 'NODE_EXISTS' | 'BAD_VERSION' | 'NOT_EMPTY' | 'CONNECTION_LOSS' | 'SESSION_EXPIRED' | 'NO_AUTH';

export function isZkError(err: unknown, code: Code): boolean {
  return err instanceof ZkError && err.code === E()[code];
}

const toBuf = (d: Buffer | string | undefined): Buffer => (d === undefined ? Buffer.alloc(0) : Buffer.isBuffer(d) ? d : Buffer.from(d, 'utf8'));

const createMode = (mode: ZkCreateMode = 'persistent'): number => {
  const m = zookeeper().CreateMode;
  return mode === 'ephemeral' ? m.EPHEMERAL : mode === 'persistent-sequential' ? m.PERSISTENT_SEQUENTIAL : m.PERSISTENT;
};

/** node-zookeeper-client's internals, when they look as keepSession expects (version 1.x); else undefined. */
function internals(c: Client): ClientInternals | undefined {
  const i = c as unknown as ClientInternals;
  return typeof i.getSessionId === 'function' && Array.isArray(i.connectionManager?.packetQueue?.queue) ? i : undefined;
}

const isConnected = (c: Client): boolean => c.getState().name === 'SYNC_CONNECTED';

/** Transaction.setData/remove/check turn version 0 into -1 (unconditional): put back the version asked for. */
function exactVersion(t: Transaction, version: number): void {
  const ops = (t as unknown as { ops?: { version?: number }[] }).ops;
  const last = Array.isArray(ops) ? ops[ops.length - 1] : undefined;
  if (last) last.version = version;
}

export class Zk {
  private client?: Client;
  private connecting?: Promise<Client>;
  /** keepSession: calls waiting for the client to reconnect, woken on every state change and on drop. */
  private readonly waiting = new Set<() => void>();
  /** keepSession: the client whose connection we reset, until it has seen the disconnect (it still says connected until then). */
  private resetting?: Client;
  /** Counts close() calls: a call that was waiting for a reconnection gives up when we are closed meanwhile. */
  private closes = 0;

  constructor(private readonly opts: ZkOptions) {}

  /** Node data and version, or undefined when the node does not exist. */
  async get(path: string): Promise<ZkNode | undefined> {
    try {
      return await this.call<ZkNode>(`read ${path}`, (c, done) =>
        c.getData(path, (err, data, stat) => done(err, { data: data ?? Buffer.alloc(0), version: stat?.version, stat })),
      );
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return undefined;
      throw err;
    }
  }

  /** Child names, or undefined when the node does not exist. */
  async children(path: string): Promise<string[] | undefined> {
    try {
      return await this.call<string[]>(`list ${path}`, (c, done) => c.getChildren(path, (err, children) => done(err, children)));
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return undefined;
      throw err;
    }
  }

  async exists(path: string): Promise<boolean> {
    const stat = await this.call<Stat | null>(`check ${path}`, (c, done) => c.exists(path, done));
    return !!stat;
  }

  /** Conditional write: fails with BAD_VERSION when someone wrote the node since `version` was read (-1: unconditional). Returns the new version. */
  async set(path: string, data: Buffer | string, version: number): Promise<number> {
    const stat = await this.call<Stat>(`write ${path}`, (c, done) => c.setData(path, toBuf(data), version, done));
    return stat.version;
  }

  /** Create a persistent node (parent must exist). Fails with NODE_EXISTS. */
  async create(path: string, data?: Buffer | string): Promise<void> {
    await this.call<string>(`create ${path}`, (c, done) =>
      c.create(path, toBuf(data), zookeeper().ACL.OPEN_ACL_UNSAFE, zookeeper().CreateMode.PERSISTENT, done),
    );
  }

  /**
   * Create an ephemeral node (gone when this client's session ends: close, expiry, or — without keepSession — a
   * connection loss, after which this wrapper opens a new session) or a persistent sequential one (`path` is the
   * name prefix; ZooKeeper appends a 10-digit counter). Parent must exist. Returns the path created.
   */
  async createNode(path: string, data: Buffer | string, mode: 'ephemeral' | 'persistent-sequential'): Promise<string> {
    return this.call<string>(`create ${path}`, (c, done) => c.create(path, toBuf(data), zookeeper().ACL.OPEN_ACL_UNSAFE, createMode(mode), done));
  }

  /**
   * Create a persistent node and whatever parents are missing, each parent with `parentData`.
   * Returns the paths it created (parents first), so that the caller can remove exactly those later.
   * A node that already exists is left alone (and not returned).
   */
  async createWithParents(path: string, data: Buffer | string, parentData: Buffer | string): Promise<string[]> {
    const parts = path.split('/').filter(Boolean);
    const created: string[] = [];
    for (let i = 1; i <= parts.length; i++) {
      const p = '/' + parts.slice(0, i).join('/');
      const last = i === parts.length;
      // Most parents exist: ask first, so that a read-only ACL on /LTS etc. does not fail a create we do not need.
      if (!last && (await this.exists(p))) continue;
      try {
        await this.create(p, last ? data : parentData);
        created.push(p);
      } catch (err) {
        if (!isZkError(err, 'NODE_EXISTS')) throw err;
      }
    }
    return created;
  }

  /** Delete a node (version -1: whatever its version). Resolves false when it did not exist. */
  async remove(path: string, version = -1): Promise<boolean> {
    try {
      await this.call<void>(`delete ${path}`, (c, done) => c.remove(path, version, (err) => done(err, undefined)));
      return true;
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return false;
      throw err;
    }
  }

  /**
   * All-or-nothing batch (ZooKeeper multi): either every op is applied or none. Resolves with one result per op
   * (the path a create made, the version a set wrote); on failure the ZkError is the failed op's, its index in
   * `failedOp`. Versions are exact, 0 included.
   */
  async multi(ops: ZkOp[]): Promise<ZkOpResult[]> {
    if (ops.length === 0) return [];
    const what = `update ${ops.map((o) => o.path).join(', ')}`;
    const results = await this.call<TransactionResult[]>(what, (c, done) => {
      const t = c.transaction();
      for (const o of ops) {
        if (o.op === 'create') t.create(o.path, toBuf(o.data), zookeeper().ACL.OPEN_ACL_UNSAFE, createMode(o.mode));
        else if (o.op === 'set') exactVersion(t.setData(o.path, toBuf(o.data), o.version), o.version);
        else if (o.op === 'remove') exactVersion(t.remove(o.path, o.version), o.version);
        else exactVersion(t.check(o.path, o.version), o.version);
      }
      t.commit((err, res) => {
        // ZooKeeper answers a failed multi with one result per op: OK before the culprit, RUNTIME_INCONSISTENCY after.
        if (err && Array.isArray(res)) {
          const i = res.findIndex((r) => typeof r?.err === 'number' && r.err !== E().OK && r.err !== RUNTIME_INCONSISTENCY);
          if (i >= 0) (err as { failedOp?: number }).failedOp = i;
        }
        done(err, res);
      });
    });
    return results.map((r) => ({ path: r.path, version: r.stat?.version }));
  }

  /** The current session id (connecting first if need be), to compare with a node's `stat.ephemeralOwner`. */
  async sessionId(): Promise<Buffer> {
    const c = await this.ready('session');
    return Buffer.from((c as unknown as ClientInternals).getSessionId());
  }

  async close(): Promise<void> {
    this.closes++;
    this.drop();
  }

  /** Close the current client (if any) so the next call connects afresh. */
  private drop(): void {
    const c = this.client;
    this.client = undefined;
    this.connecting = undefined;
    if (c) {
      c.removeAllListeners();
      try {
        c.close();
      } catch {
        /* already closed */
      }
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiting]) w();
  }

  /** Whether `c` keeps its session across disconnects (keepSession, and the client's internals are as expected). */
  private keeps(c: Client): boolean {
    return !!this.opts.keepSession && internals(c) !== undefined;
  }

  /** keepSession: the session ended; drop the client (the next call opens a new session) and tell the owner once. */
  private expired(c: Client): void {
    if (this.client !== c) return;
    this.drop();
    if (this.opts.onSessionExpired) setImmediate(this.opts.onSessionExpired);
  }

  /** keepSession, on a disconnect: fail what the client still has queued rather than let it go out after the reconnect. */
  private purge(c: Client): void {
    const queue = internals(c)?.connectionManager?.packetQueue?.queue;
    if (!queue) {
      if (this.client === c) this.drop();
      return;
    }
    for (const p of queue.splice(0)) p.callback?.((E() as unknown as { create(code: number): Error }).create(E().CONNECTION_LOSS));
  }

  /** keepSession, a request unanswered: reset the connection (not the session), which fails whatever is in flight on it. */
  private reset(c: Client): void {
    if (this.client !== c) return;
    const socket = internals(c)?.connectionManager?.socket;
    if (typeof socket?.destroy !== 'function') return this.drop();
    if (isConnected(c)) this.resetting = c; // cleared by the state change the destroy brings
    socket.destroy();
  }

  private connect(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const { connect, sessionTimeoutMs, connectTimeoutMs, label } = this.opts;
    const client = zookeeper().createClient(connect, { sessionTimeout: sessionTimeoutMs, spinDelay: 200, retries: 0 });
    this.connecting = new Promise<Client>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.removeAllListeners();
        client.close();
        this.connecting = undefined;
        reject(
          new ZkError(
            `${label}: cannot connect to ZooKeeper ${connect} within ${connectTimeoutMs} ms; check the address and that the ensemble is up`,
            E().CONNECTION_LOSS,
            true,
          ),
        );
      }, connectTimeoutMs);
      client.once('connected', () => {
        clearTimeout(timer);
        this.client = client;
        this.connecting = undefined;
        if (this.keeps(client)) {
          // The client reconnects with the same session by itself; only its expiry ends it (see the file comment).
          client.on('state', () => {
            if (this.resetting === client) this.resetting = undefined;
            this.wake();
          });
          client.on('disconnected', () => this.purge(client));
          client.on('expired', () => this.expired(client));
        } else {
          // Losing the session or the connection: start afresh on the next call (see the file comment).
          const lost = () => {
            if (this.client === client) this.drop();
          };
          client.on('disconnected', lost);
          client.on('expired', lost);
        }
        resolve(client);
      });
      client.once('authenticationFailed', () => {
        clearTimeout(timer);
        client.close();
        this.connecting = undefined;
        reject(new ZkError(`${label}: ZooKeeper ${connect} rejected the authentication`, E().AUTH_FAILED, false));
      });
    });
    client.connect();
    return this.connecting;
  }

  /** A connected client. keepSession: while the client reconnects, wait for it (at most connectTimeoutMs; nothing is sent meanwhile). */
  private async ready(what: string): Promise<Client> {
    const client = await this.connect();
    const live = () => isConnected(client) && this.resetting !== client;
    if (!this.keeps(client) || live()) return client;
    const { label, connect, connectTimeoutMs } = this.opts;
    const closes = this.closes;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.client === client && !live()) return;
        clearTimeout(timer);
        this.waiting.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.delete(check);
        reject(
          new ZkError(
            `${label}: ZooKeeper ${connect} unreachable for ${connectTimeoutMs} ms (${what}); nothing was sent, the session is kept while the client reconnects`,
            E().CONNECTION_LOSS,
            true,
          ),
        );
      }, connectTimeoutMs);
      this.waiting.add(check);
    });
    if (this.closes !== closes) throw new ZkError(`${label}: ${what}: closed while waiting for ZooKeeper ${connect}`, E().CONNECTION_LOSS, true);
    // Reconnected, or the session expired meanwhile: then a new session.
    return this.client === client ? client : this.ready(what);
  }

  private async call<T>(what: string, fn: (c: Client, done: (err: unknown, value: T) => void) => void): Promise<T> {
    const { label, connect, connectTimeoutMs } = this.opts;
    const client = await this.ready(what);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        if (this.keeps(client)) this.reset(client);
        else if (this.client === client) this.drop();
        reject(
          new ZkError(
            `${label}: ZooKeeper ${connect} did not answer within ${connectTimeoutMs} ms (${what}); the change may or may not have been applied, a retry reads it back`,
            E().CONNECTION_LOSS,
            true,
          ),
        );
      }, connectTimeoutMs);
      fn(client, (err, value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!err) return resolve(value);
        reject(this.wrap(err, what, client));
      });
    });
  }

  private wrap(err: unknown, what: string, client: Client): Error {
    const { label, connect } = this.opts;
    const code = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : undefined;
    if (code === undefined) return new ProviderError(`${label}: ZooKeeper ${connect}: ${what} failed: ${(err as Error).message}`);
    if (code === E().CONNECTION_LOSS || code === E().SESSION_EXPIRED || code === E().OPERATION_TIMEOUT) {
      // keepSession: the client reconnects with the same session by itself; only an expired one is dropped.
      if (!this.keeps(client)) {
        if (this.client === client) this.drop();
      } else if (code === E().SESSION_EXPIRED) this.expired(client);
      return new ZkError(
        `${label}: lost the connection to ZooKeeper ${connect} during ${what}; the change may or may not have been applied, a retry reads it back`,
        code,
        true,
      );
    }
    const failedOp = (err as { failedOp?: number }).failedOp;
    const name = (err as { name?: string }).name ?? String(code);
    if (code === E().NO_AUTH)
      return new ZkError(`${label}: ZooKeeper ${connect} denied ${what} (NO_AUTH): the node's ACL does not allow it`, code, false, failedOp);
    return new ZkError(`${label}: ZooKeeper ${connect}: ${what} failed: ${name}`, code, code === E().BAD_VERSION, failedOp);
  }
}

/** Join znode path segments, tolerating slashes at either end. */
export function zkJoin(...parts: string[]): string {
  return (
    '/' +
    parts
      .map((p) => p.replace(/^\/+|\/+$/g, ''))
      .filter(Boolean)
      .join('/')
  );
}

/**
 * Optimistic-concurrency loop: `attempt` reads, decides and writes with version checks; when another writer got in
 * between (BAD_VERSION, or NODE_EXISTS/NO_NODE on a create/delete race) it runs again on fresh data.
 */
export async function withCas<T>(label: string, what: string, attempt: () => Promise<T>, tries = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      const race = isZkError(err, 'BAD_VERSION') || isZkError(err, 'NODE_EXISTS') || isZkError(err, 'NO_NODE') || isZkError(err, 'NOT_EMPTY');
      if (!race) throw err;
      if (i >= tries) throw new ProviderError(`${label}: ${what}: ZooKeeper kept changing under us (${tries} conflicting writes in a row); retry later`, true);
      await new Promise((r) => setTimeout(r, 20 * i + Math.random() * 30));
    }
  }
}

/** Provider options shared by every ZooKeeper provider. */
export function zkOptionsOf(o: { connect: string; sessionTimeout: number; connectTimeout: number }, label: string): ZkOptions {
  return { connect: o.connect, sessionTimeoutMs: o.sessionTimeout, connectTimeoutMs: o.connectTimeout, label };
}

/** Connection options every ZooKeeper provider accepts (spread into its strict zod object). */
export const zkConnectionOptions = {
  /** `zk1:2181,zk2:2181` */
  connect: z.string().min(1).describe('ZooKeeper ensemble, e.g. zk1:2181,zk2:2181 (an optional /chroot after the last host).'),
  sessionTimeout: duration.default('30s').describe('ZooKeeper session timeout asked of the server (it clamps it to its own min/max).'),
  /** To (re)connect, and for each single request. */
  connectTimeout: duration.default('5s').describe('How long to wait for a (re)connection, and for each single request.'),
};

/** Data graywave puts into parent znodes it had to create, so that it removes those (and only those) again. */
export const CREATED_BY_GRAYWAVE = 'created-by-graywave';

/**
 * Remove the parents of `path` (deepest first, never `stopAt` or above) that graywave created (data marker) and that
 * are now empty. Stops at the first parent that is not ours or not empty. Version-checked, so a concurrent writer wins.
 */
export async function removeOurEmptyParents(zk: Zk, path: string, stopAt: string): Promise<void> {
  let p = path.slice(0, path.lastIndexOf('/'));
  const stop = stopAt.replace(/\/+$/, '');
  while (p && p !== stop && p.startsWith(stop + '/')) {
    const node = await zk.get(p);
    if (!node || node.data.toString('utf8') !== CREATED_BY_GRAYWAVE || node.stat.numChildren > 0) return;
    try {
      await zk.remove(p, node.version);
    } catch (err) {
      if (isZkError(err, 'NOT_EMPTY') || isZkError(err, 'BAD_VERSION')) return;
      throw err;
    }
    p = p.slice(0, p.lastIndexOf('/'));
  }
}

/**
 * What every ZooKeeper provider shares: its client, opened on first use (most playbooks load providers they never
 * call in a given command) and dropped by `close()` (a later call opens a fresh one). Providers extend it.
 */
export class ZkProviderBase {
  private zkc?: Zk;
  constructor(private readonly zkOpts: ZkOptions) {}

  protected get zk(): Zk {
    this.zkc ??= new Zk(this.zkOpts);
    return this.zkc;
  }

  async close(): Promise<void> {
    const zk = this.zkc;
    this.zkc = undefined;
    await zk?.close();
  }
}
