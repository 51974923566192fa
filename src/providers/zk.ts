import { createRequire } from 'node:module';
import type { Client, Stat, Transaction } from 'node-zookeeper-client';
import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { duration } from '../util/duration.js';

/**
 * A small promise wrapper over node-zookeeper-client, shared by the ZooKeeper providers.
 *
 * Why the extra care: node-zookeeper-client queues requests while it is disconnected and sends them once it
 * reconnects, possibly long after we gave up on them. So every call has a timeout, and after a timeout or a
 * connection loss the client is thrown away (closed) and a fresh one is opened on the next call: a write we
 * reported as failed can never land later behind our back. A write that was in flight when the connection
 * dropped may or may not have been applied; callers therefore write whole values with version checks and
 * re-read the state on retry (every provider method is idempotent).
 */

export interface ZkOptions {
  /** Ensemble string, `zk1:2181,zk2:2181` (an optional chroot suffix `/path` is passed through). */
  connect: string;
  sessionTimeoutMs: number;
  /** Time allowed to (re)connect, and for each single request once connected. */
  connectTimeoutMs: number;
  /** Name used in error messages, e.g. `dubbo-zookeeper provider "dubbo"`. */
  label: string;
}

export interface ZkNode {
  data: Buffer;
  version: number;
  stat: Stat;
}

export type ZkOp =
  | { op: 'create'; path: string; data?: Buffer | string }
  | { op: 'set'; path: string; data: Buffer | string; version: number }
  | { op: 'remove'; path: string; version: number }
  | { op: 'check'; path: string; version: number };

// Loaded on first use: most commands and playbooks never talk to ZooKeeper, and the client is 40 modules to load.
const requireCjs = createRequire(import.meta.url);
let zkLib: typeof import('node-zookeeper-client') | undefined;
const zookeeper = (): typeof import('node-zookeeper-client') => (zkLib ??= requireCjs('node-zookeeper-client') as typeof import('node-zookeeper-client'));
const E = () => zookeeper().Exception;

/** A ZooKeeper error with the server's code, e.g. `isZkError(err, 'BAD_VERSION')`. */
export class ZkError extends ProviderError {
  constructor(
    message: string,
    readonly code: number,
    retryable: boolean,
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

export class Zk {
  private client?: Client;
  private connecting?: Promise<Client>;

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
   * Create an ephemeral node (gone when this client's session ends: close, expiry, or a connection loss, after
   * which this wrapper opens a new session) or a persistent sequential one (`path` is the name prefix; ZooKeeper
   * appends a 10-digit counter). Parent must exist. Returns the path created.
   */
  async createNode(path: string, data: Buffer | string, mode: 'ephemeral' | 'persistent-sequential'): Promise<string> {
    const m = mode === 'ephemeral' ? zookeeper().CreateMode.EPHEMERAL : zookeeper().CreateMode.PERSISTENT_SEQUENTIAL;
    return this.call<string>(`create ${path}`, (c, done) => c.create(path, toBuf(data), zookeeper().ACL.OPEN_ACL_UNSAFE, m, done));
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

  /** All-or-nothing batch (ZooKeeper multi): either every op is applied or none. */
  async multi(ops: ZkOp[]): Promise<void> {
    if (ops.length === 0) return;
    const what = `update ${ops.map((o) => o.path).join(', ')}`;
    await this.call<unknown>(what, (c, done) => {
      let t: Transaction = c.transaction();
      for (const o of ops) {
        if (o.op === 'create') t = t.create(o.path, toBuf(o.data), zookeeper().ACL.OPEN_ACL_UNSAFE, zookeeper().CreateMode.PERSISTENT);
        else if (o.op === 'set') t = t.setData(o.path, toBuf(o.data), o.version);
        else if (o.op === 'remove') t = t.remove(o.path, o.version);
        else t = t.check(o.path, o.version);
      }
      t.commit(done);
    });
  }

  async close(): Promise<void> {
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
        reject(new ZkError(`${label}: cannot connect to ZooKeeper ${connect} within ${connectTimeoutMs} ms; check the address and that the ensemble is up`, E().CONNECTION_LOSS, true));
      }, connectTimeoutMs);
      client.once('connected', () => {
        clearTimeout(timer);
        this.client = client;
        this.connecting = undefined;
        // Losing the session or the connection: start afresh on the next call (see the file comment).
        const lost = () => {
          if (this.client === client) this.drop();
        };
        client.on('disconnected', lost);
        client.on('expired', lost);
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

  private async call<T>(what: string, fn: (c: Client, done: (err: unknown, value: T) => void) => void): Promise<T> {
    const { label, connect, connectTimeoutMs } = this.opts;
    const client = await this.connect();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.drop();
        reject(new ZkError(`${label}: ZooKeeper ${connect} did not answer within ${connectTimeoutMs} ms (${what}); the change may or may not have been applied, a retry reads it back`, E().CONNECTION_LOSS, true));
      }, connectTimeoutMs);
      fn(client, (err, value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!err) return resolve(value);
        reject(this.wrap(err, what));
      });
    });
  }

  private wrap(err: unknown, what: string): Error {
    const { label, connect } = this.opts;
    const code = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : undefined;
    if (code === undefined) return new ProviderError(`${label}: ZooKeeper ${connect}: ${what} failed: ${(err as Error).message}`);
    if (code === E().CONNECTION_LOSS || code === E().SESSION_EXPIRED || code === E().OPERATION_TIMEOUT) {
      this.drop();
      return new ZkError(`${label}: lost the connection to ZooKeeper ${connect} during ${what}; the change may or may not have been applied, a retry reads it back`, code, true);
    }
    const name = (err as { name?: string }).name ?? String(code);
    if (code === E().NO_AUTH) return new ZkError(`${label}: ZooKeeper ${connect} denied ${what} (NO_AUTH): the node's ACL does not allow it`, code, false);
    return new ZkError(`${label}: ZooKeeper ${connect}: ${what} failed: ${name}`, code, code === E().BAD_VERSION);
  }
}

/** Join znode path segments, tolerating slashes at either end. */
export function zkJoin(...parts: string[]): string {
  return '/' + parts.map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/');
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
  connect: z.string().min(1),
  sessionTimeout: duration.default('30s'),
  /** To (re)connect, and for each single request. */
  connectTimeout: duration.default('5s'),
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
