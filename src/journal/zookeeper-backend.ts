import { z } from 'zod';
import { GraywaveError } from '../errors.js';
import { isZkError, Zk, ZkError, zkJoin, type ZkOp, type ZkOpResult } from '../providers/zk.js';
import { duration } from '../util/duration.js';
import type { StateBackend, StateBackendType } from './backend.js';
import { chunkLines, clusterLockHeld, parseChunks, parseLock } from './etcd-backend.js';
import { Journal, type JournalStore } from './journal.js';
import { currentActor, refuseLiveHolder, type LockInfo } from './lock.js';
import type { ControlRequest, JournalRecord } from './records.js';

/** `state: {type: zookeeper, ...}` (durations in ms after parsing). */
export const zookeeperStateOptions = z
  .object({
    /** Ensemble, `zk1:2181,zk2:2181`. */
    connect: z.string().regex(/^[^\s/,]+(,[^\s/,]+)*(\/\S*)?$/, 'must be host:port[,host:port...] (an optional /chroot at the end)'),
    /** Every znode of a release lives under `<root>/<release>/`. */
    root: z
      .string()
      .regex(/^\/\S*$/, 'must be an absolute znode path such as /graywave')
      .default('/graywave'),
    /** Session of the lock's ephemeral node: how long after its holder dies (or loses ZooKeeper) the lock frees itself. */
    sessionTimeout: duration.default('10s'),
    /** Time allowed to connect (and to reconnect after a cut: requests wait that long), and for each request. */
    connectTimeout: duration.default('10s'),
  })
  .strict();
export type ZookeeperStateOptions = z.infer<typeof zookeeperStateOptions>;

const JOURNAL_PREFIX = 'r-';

/**
 * Release state in ZooKeeper, under `<root>/<release>/`:
 * - `lock`: an ephemeral znode with the LockInfo JSON; it dies with the holder's session (process killed, or
 *   cut off from ZooKeeper for longer than `sessionTimeout`). A shorter cut keeps the session, and so the lock:
 *   the client reconnects with the same session (requests made meanwhile wait for it, at most `connectTimeout`).
 * - `holder`: a persistent znode whose version is the fencing token. Taking the lock is one multi (create `lock`,
 *   set `holder`: version V+1, data the new holder's LockInfo), and so is `unlock --force` (delete `lock`, set
 *   `holder`). The holder remembers V and puts `check(holder, V)` first in the multi of every write it makes (appends,
 *   archive deletes), so a process that lost the lock (another one took it, or it was force-unlocked) cannot write
 *   anything next to the new holder, not even a record it checked for just before: it gets "lost the release lock"
 *   and halts. When the holder's session expired but V still matches (nobody took the lock since), it creates `lock`
 *   again (multi with `check(holder, V)`) on a new session as soon as it is back, and carries on. A release written
 *   by an older graywave (no `holder`) gets one with the next lock; its lock holder is not fenced (run one version).
 * - `journal/r-<counter>`: persistent sequential znodes, one per append (split only when over 256 KiB), whose data
 *   are the appended lines; read back by sorted child name. A locked append is one multi: `check(holder, V)`, set
 *   `journal` at the version it last saw (each append moves it on by one), create `r-`. An answer lost with the
 *   connection is retried with the same multi: the version check makes it land exactly once.
 * - `control/<id>`: ControlRequests (abort, promote).
 * - `archive/<ms>/journal/…`, `archive/<ms>/control/…`: an archived journal (copied, then the originals deleted,
 *   newest first, each delete fenced like an append; not atomic, unlike etcd's single delete transaction).
 */
export class ZookeeperBackend implements StateBackend {
  readonly where: string;
  private readonly zk: Zk;
  private readonly base: string;
  /** While we hold the lock: the fencing token (the version of `holder` our lock acquisition wrote) and our LockInfo. */
  private held?: { token: number; info: LockInfo };
  /** Session that owns our lock node (its stat.ephemeralOwner), while we hold the lock. */
  private owner?: Buffer;
  /** Set once an append found the lock taken by someone else: every later write fails the same way. */
  private lost?: GraywaveError;
  /** The lock node being re-created after a session expiry (one at a time). */
  private relocking?: Promise<void>;
  /** While we hold the lock: the version of the `journal` znode, which each of our appends moves on by one. */
  private journalVersion?: number;

  constructor(
    private readonly options: ZookeeperStateOptions,
    release: string,
  ) {
    this.base = zkJoin(options.root, release);
    this.where = `zookeeper ${options.connect} ${this.base}`;
    this.zk = new Zk({
      connect: options.connect,
      sessionTimeoutMs: options.sessionTimeout,
      connectTimeoutMs: options.connectTimeout,
      label: `state in ZooKeeper`,
      // A network blip must not cost the lock; an expired session gets its lock node back while the token matches.
      keepSession: true,
      onSessionExpired: () => {
        if (this.held && !this.lost) this.ensureLockNode().catch(() => undefined); // the next append tries again
      },
    });
  }

  private get lockPath() {
    return `${this.base}/lock`;
  }
  private get holderPath() {
    return `${this.base}/holder`;
  }
  private get journalPath() {
    return `${this.base}/journal`;
  }
  private get controlPath() {
    return `${this.base}/control`;
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof GraywaveError) throw err;
      throw new GraywaveError((err as Error).message, 1, 'check that ZooKeeper is reachable from here (state: in the playbook)');
    }
  }

  private async ensure(path: string): Promise<void> {
    await this.zk.createWithParents(path, '', '');
  }

  private lostLock(why: string): GraywaveError {
    this.lost ??= new GraywaveError(
      `lost the release lock ${this.lockPath} (${why}): no further side effect is taken`,
      1,
      'another process may hold the release now; check `graywave status`',
    );
    return this.lost;
  }

  async acquireLock(info: { command: string; reason?: string }, unlockHint: string): Promise<() => Promise<void>> {
    const mine: LockInfo = { ...currentActor(), startedAt: new Date().toISOString(), command: info.command, reason: info.reason };
    const expiry = `its ZooKeeper session expires at most ${Math.round(this.options.sessionTimeout / 1000)}s after it stopped`;
    this.lost = undefined;
    this.journalVersion = undefined;
    await this.call(async () => {
      await this.ensure(this.holderPath); // a release from an older graywave has none yet
      const t0 = Date.now();
      for (let attempt = 1; ; attempt++) {
        try {
          // One multi: the lock, and a new fencing token (holder's version) that fences out every earlier holder.
          const [, set] = await this.zk.multi([
            { op: 'create', path: this.lockPath, data: JSON.stringify(mine), mode: 'ephemeral' },
            { op: 'set', path: this.holderPath, data: JSON.stringify(mine), version: -1 },
          ]);
          const token = set?.version ?? (await this.zk.get(this.holderPath))?.version;
          if (token === undefined)
            throw new GraywaveError(`${this.holderPath} vanished right after taking the lock`, 1, 'check that nothing else deletes graywave znodes');
          this.held = { token, info: mine };
          break;
        } catch (err) {
          // An answer lost with the connection (the session lives on): the multi may have landed, NODE_EXISTS below tells.
          const lostAnswer = isZkError(err, 'CONNECTION_LOSS') || isZkError(err, 'SESSION_EXPIRED');
          if (lostAnswer && attempt < 3 && Date.now() - t0 < this.options.connectTimeout) continue;
          if (isZkError(err, 'NO_NODE') && attempt < 3) {
            await this.ensure(this.holderPath);
            continue;
          }
          if (!isZkError(err, 'NODE_EXISTS')) throw err;
          const node = await this.zk.get(this.lockPath);
          // The holder let go between our create and our read: try once more.
          if (!node && attempt < 3) continue;
          // Ours already: a multi whose answer was lost on a connection cut (the session survives those).
          if (node && node.stat.ephemeralOwner.equals(await this.zk.sessionId())) {
            const holder = await this.zk.get(this.holderPath);
            if (holder && holder.data.equals(Buffer.from(JSON.stringify(mine)))) {
              this.held = { token: holder.version, info: mine };
              break;
            }
          }
          throw clusterLockHeld(this.lockPath, node ? parseLock(node.data.toString('utf8')) : undefined, expiry, unlockHint);
        }
      }
      this.owner = (await this.zk.get(this.lockPath))?.stat.ephemeralOwner;
    });
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      await this.relocking?.catch(() => undefined);
      const owner = this.owner;
      this.held = undefined;
      this.owner = undefined;
      this.lost = undefined;
      this.journalVersion = undefined;
      const node = await this.zk.get(this.lockPath).catch(() => undefined);
      if (node && owner && node.stat.ephemeralOwner.equals(owner)) await this.zk.remove(this.lockPath, node.version).catch(() => undefined);
    };
  }

  /**
   * While we hold the lock: make sure its node is there on our current session. After a session expiry it is gone;
   * it is created again only while the fencing token still matches (nobody took the lock since), else the lock is lost.
   */
  private ensureLockNode(): Promise<void> {
    return (this.relocking ??= (async () => {
      try {
        const held = this.held;
        if (!held) return;
        const session = await this.zk.sessionId();
        if (this.held !== held || this.owner?.equals(session)) return;
        try {
          await this.zk.multi([
            { op: 'check', path: this.holderPath, version: held.token },
            { op: 'create', path: this.lockPath, data: JSON.stringify(held.info), mode: 'ephemeral' },
          ]);
        } catch (err) {
          if (isZkError(err, 'BAD_VERSION') || isZkError(err, 'NO_NODE')) throw this.lostLock('another process took it since, or unlock --force');
          if (!isZkError(err, 'NODE_EXISTS')) throw err;
          // Someone else's lock (one that does not bump the token: an older graywave), or ours from a lost answer.
          const node = await this.zk.get(this.lockPath);
          if (!node || !node.stat.ephemeralOwner.equals(session)) throw this.lostLock('our ZooKeeper session expired and another process holds it now');
        }
        if (this.held === held) this.owner = (await this.zk.get(this.lockPath))?.stat.ephemeralOwner;
      } finally {
        this.relocking = undefined;
      }
    })());
  }

  async readLock(): Promise<LockInfo | undefined> {
    const node = await this.call(() => this.zk.get(this.lockPath));
    return node ? parseLock(node.data.toString('utf8')) : undefined;
  }

  async forceUnlock(): Promise<LockInfo | undefined> {
    return this.call(async () => {
      const node = await this.zk.get(this.lockPath);
      if (!node) return undefined;
      const holder = parseLock(node.data.toString('utf8'));
      refuseLiveHolder(holder);
      // Only the node we looked at: a new holder that came in between keeps its lock. A new token fences out the
      // one we remove (a release from an older graywave has no `holder` yet: its holder checks the lock node instead).
      const ops: ZkOp[] = [{ op: 'remove', path: this.lockPath, version: node.version }];
      if (await this.zk.exists(this.holderPath))
        ops.push({ op: 'set', path: this.holderPath, data: JSON.stringify({ unlockedBy: currentActor(), t: new Date().toISOString() }), version: -1 });
      try {
        await this.zk.multi(ops);
      } catch (err) {
        if (isZkError(err, 'NO_NODE') || isZkError(err, 'BAD_VERSION')) return undefined;
        throw err;
      }
      return holder;
    });
  }

  private async readJournalNodes(): Promise<JournalRecord[]> {
    return this.call(async () => {
      const names = ((await this.zk.children(this.journalPath)) ?? []).filter((n) => n.startsWith(JOURNAL_PREFIX)).sort();
      const chunks: string[] = [];
      for (let i = 0; i < names.length; i += 64) {
        const part = await Promise.all(names.slice(i, i + 64).map((n) => this.zk.get(`${this.journalPath}/${n}`)));
        part.forEach((node) => node && chunks.push(node.data.toString('utf8')));
      }
      return parseChunks(chunks, (i) => `${this.options.connect} ${this.journalPath}/${names[i]}`);
    });
  }

  async openJournal(): Promise<Journal> {
    const records = await this.readJournalNodes();
    const version = await this.call(() => this.journalNodeVersion());
    if (this.held) this.journalVersion = version;
    return new Journal(new ZkJournalStore(this), records);
  }

  async readRecords(): Promise<JournalRecord[]> {
    return this.readJournalNodes();
  }

  /** A write under the lock: one multi with `check(holder, token)` first (see the class comment). Results as the multi's. */
  private async fenced(ops: ZkOp[]): Promise<ZkOpResult[]> {
    const held = this.held;
    if (this.lost) throw this.lost;
    if (!held) throw new GraywaveError(`release lock ${this.lockPath} not held`, 1);
    await this.ensureLockNode();
    try {
      return await this.zk.multi([{ op: 'check', path: this.holderPath, version: held.token }, ...ops]);
    } catch (err) {
      if (err instanceof ZkError && err.failedOp === 0) throw this.lostLock('another process took it since, or unlock --force');
      throw err;
    }
  }

  private async journalNodeVersion(): Promise<number> {
    await this.ensure(this.journalPath);
    const node = await this.zk.get(this.journalPath);
    if (!node) throw new GraywaveError(`${this.journalPath} vanished`, 1, 'check that nothing else deletes graywave znodes');
    return node.version;
  }

  /**
   * One chunk under the lock, exactly once: the multi also sets the `journal` znode at the version we last saw, so
   * after an answer lost with the connection (the session lives on) the same multi can be sent again: if the first
   * one landed, the version check fails and tells us so. Retried while within `connectTimeout` of the first try.
   */
  private async appendChunk(chunk: string): Promise<void> {
    const t0 = Date.now();
    let unsure = false;
    for (let attempt = 1; ; attempt++) {
      const version = (this.journalVersion ??= await this.journalNodeVersion());
      try {
        const res = await this.fenced([
          { op: 'set', path: this.journalPath, data: '', version },
          { op: 'create', path: `${this.journalPath}/${JOURNAL_PREFIX}`, data: chunk, mode: 'persistent-sequential' },
        ]);
        this.journalVersion = res[1]?.version ?? version + 1;
        return;
      } catch (err) {
        if (err instanceof ZkError && err.failedOp === 1 && isZkError(err, 'BAD_VERSION')) {
          // Nobody but the token's holder moves that version: after a lost answer, it means our earlier try landed.
          if (unsure) {
            this.journalVersion = version + 1;
            return;
          }
          this.journalVersion = undefined;
          throw new GraywaveError(
            `another process appended to the journal ${this.journalPath} under our lock: two writers on one release`,
            1,
            'check `graywave status` for the lock holder',
          );
        }
        const lostAnswer = isZkError(err, 'CONNECTION_LOSS') || isZkError(err, 'SESSION_EXPIRED');
        if (!lostAnswer || attempt >= 3 || Date.now() - t0 >= this.options.connectTimeout) throw err;
        unsure = true;
      }
    }
  }

  async appendLines(lines: string[]): Promise<void> {
    await this.call(async () => {
      // One sequential znode per chunk, created in order: the counter keeps the order across writers.
      for (const chunk of chunkLines(lines)) {
        if (this.held || this.lost) await this.appendChunk(chunk);
        else await this.zk.createNode(`${this.journalPath}/${JOURNAL_PREFIX}`, chunk, 'persistent-sequential');
      }
    });
  }

  async archiveJournal(): Promise<void> {
    const dest = `${this.base}/archive/${Date.now()}`;
    await this.call(async () => {
      for (const dir of ['journal', 'control']) {
        const from = `${this.base}/${dir}`;
        const names = ((await this.zk.children(from)) ?? []).sort();
        if (!names.length) continue;
        await this.ensure(`${dest}/${dir}`);
        for (const n of names) {
          const node = await this.zk.get(`${from}/${n}`);
          if (node) await this.zk.create(`${dest}/${dir}/${n}`, node.data);
        }
        // Newest first: a crash half-way leaves a prefix of the old journal (an older, consistent state), archived again next time.
        for (const n of [...names].reverse()) {
          if (!this.held && !this.lost) {
            await this.zk.remove(`${from}/${n}`);
            continue;
          }
          try {
            await this.fenced([{ op: 'remove', path: `${from}/${n}`, version: -1 }]);
          } catch (err) {
            if (!(isZkError(err, 'NO_NODE') && (err as ZkError).failedOp === 1)) throw err;
          }
        }
      }
    });
  }

  async postControl(request: ControlRequest): Promise<void> {
    await this.call(async () => {
      await this.ensure(this.controlPath);
      await this.zk.create(`${this.controlPath}/${request.id}`, JSON.stringify(request));
    });
  }

  async readControls(): Promise<ControlRequest[]> {
    return this.call(async () => {
      const names = ((await this.zk.children(this.controlPath)) ?? []).sort();
      const out: ControlRequest[] = [];
      for (const n of names) {
        const node = await this.zk.get(`${this.controlPath}/${n}`);
        try {
          if (node) out.push(JSON.parse(node.data.toString('utf8')) as ControlRequest);
        } catch {
          /* not ours */
        }
      }
      return out;
    });
  }

  async close(): Promise<void> {
    await this.zk.close();
  }
}

class ZkJournalStore implements JournalStore {
  readonly where: string;
  constructor(private readonly backend: ZookeeperBackend) {
    this.where = backend.where + '/journal';
  }

  async append(lines: string[]): Promise<void> {
    await this.backend.appendLines(lines);
  }

  async close(): Promise<void> {}
}

/** `state: {type: zookeeper, …}`: the journal, lock and controls in ZooKeeper (one line in src/journal/backends.ts). */
export const zookeeperState: StateBackendType<ZookeeperStateOptions> = {
  doc: {
    summary:
      'Journal and lock in ZooKeeper: the lock is an ephemeral node; every journal write carries a fencing token, so a holder that lost the lock cannot write beside the new one.',
    checkedAgainst: 'real ZooKeeper 3.8 (Debian)',
    example: 'type: zookeeper\nconnect: zk1:2181,zk2:2181\n# root: /graywave',
    options: {
      connectTimeout:
        'How long to connect, and how long a request waits for the connection to come back (the session survives cuts shorter than sessionTimeout).',
      connect: 'Ensemble, zk1:2181,zk2:2181 (optional /chroot).',
      root: 'Every znode of a release lives under <root>/<release>/.',
      sessionTimeout: "Session of the lock's ephemeral node.",
    },
  },
  type: 'zookeeper',
  options: zookeeperStateOptions,
  create: (o, env) => new ZookeeperBackend(o, env.release),
};
