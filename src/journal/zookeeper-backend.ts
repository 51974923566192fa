import { z } from 'zod';
import { GraywaveError } from '../errors.js';
import { isZkError, Zk, zkJoin } from '../providers/zk.js';
import { duration } from '../util/duration.js';
import type { StateBackend } from './backend.js';
import { chunkLines, clusterLockHeld, parseChunks, parseLock, refuseLiveHolder } from './etcd-backend.js';
import { Journal, type JournalStore } from './journal.js';
import { currentActor, type LockInfo } from './lock.js';
import type { ControlRequest, JournalRecord } from './records.js';

/** `state: {type: zookeeper, ...}` (durations in ms after parsing). */
export const zookeeperStateOptions = z
  .object({
    /** Ensemble, `zk1:2181,zk2:2181`. */
    connect: z.string().regex(/^[^\s/,]+(,[^\s/,]+)*(\/\S*)?$/, 'must be host:port[,host:port...] (an optional /chroot at the end)'),
    /** Every znode of a release lives under `<root>/<release>/`. */
    root: z.string().regex(/^\/\S*$/, 'must be an absolute znode path such as /graywave').default('/graywave'),
    /** Session of the lock's ephemeral node: how long after its holder dies (or loses ZooKeeper) the lock frees itself. */
    sessionTimeout: duration.default('10s'),
    /** Time allowed to connect, and for each request. */
    connectTimeout: duration.default('10s'),
  })
  .strict();
export type ZookeeperStateOptions = z.infer<typeof zookeeperStateOptions>;

const JOURNAL_PREFIX = 'r-';

/**
 * Release state in ZooKeeper, under `<root>/<release>/`:
 * - `lock`: an ephemeral znode with the LockInfo JSON; it dies with the holder's session (process killed, or
 *   cut off from ZooKeeper for longer than `sessionTimeout`).
 * - `journal/r-<counter>`: persistent sequential znodes, one per append (split only when over 256 KiB), whose data
 *   are the appended lines; read back by sorted child name. Before each append the holder checks that the lock
 *   node is still owned by its own session: after a session loss it halts instead of writing next to a new holder.
 * - `control/<id>`: ControlRequests (abort, promote).
 * - `archive/<ms>/journal/…`, `archive/<ms>/control/…`: an archived journal (copied, then the originals deleted,
 *   newest first; not atomic, unlike etcd's single delete transaction).
 */
export class ZookeeperBackend implements StateBackend {
  readonly where: string;
  private readonly zk: Zk;
  private readonly base: string;
  /** Session that owns our lock node (its stat.ephemeralOwner), while we hold the lock. */
  private owner?: Buffer;

  constructor(
    private readonly options: ZookeeperStateOptions,
    release: string,
  ) {
    this.base = zkJoin(options.root, release);
    this.where = `zookeeper ${options.connect} ${this.base}`;
    this.zk = new Zk({ connect: options.connect, sessionTimeoutMs: options.sessionTimeout, connectTimeoutMs: options.connectTimeout, label: `state in ZooKeeper` });
  }

  private get lockPath() {
    return `${this.base}/lock`;
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

  async acquireLock(info: { command: string; reason?: string }, unlockHint: string): Promise<() => Promise<void>> {
    const mine: LockInfo = { ...currentActor(), startedAt: new Date().toISOString(), command: info.command, reason: info.reason };
    const expiry = `its ZooKeeper session expires at most ${Math.round(this.options.sessionTimeout / 1000)}s after it stopped`;
    await this.call(async () => {
      await this.ensure(this.base);
      for (let attempt = 1; ; attempt++) {
        try {
          await this.zk.createNode(this.lockPath, JSON.stringify(mine), 'ephemeral');
          break;
        } catch (err) {
          if (!isZkError(err, 'NODE_EXISTS')) throw err;
          const node = await this.zk.get(this.lockPath);
          // The holder let go between our create and our read: try once more.
          if (!node && attempt < 3) continue;
          throw clusterLockHeld(this.lockPath, node ? parseLock(node.data.toString('utf8')) : undefined, expiry, unlockHint);
        }
      }
      this.owner = (await this.zk.get(this.lockPath))?.stat.ephemeralOwner;
    });
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      const owner = this.owner;
      this.owner = undefined;
      const node = await this.zk.get(this.lockPath).catch(() => undefined);
      if (node && owner && node.stat.ephemeralOwner.equals(owner)) await this.zk.remove(this.lockPath, node.version).catch(() => undefined);
    };
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
      try {
        // Only the node we looked at: a new holder that came in between keeps its lock.
        await this.zk.multi([{ op: 'remove', path: this.lockPath, version: node.version }]);
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
    await this.call(() => this.ensure(this.journalPath));
    return new Journal(new ZkJournalStore(this), records);
  }

  async readRecords(): Promise<JournalRecord[]> {
    return this.readJournalNodes();
  }

  async appendLines(lines: string[]): Promise<void> {
    await this.call(async () => {
      if (this.owner) {
        const node = await this.zk.get(this.lockPath);
        if (!node || !node.stat.ephemeralOwner.equals(this.owner)) {
          throw new GraywaveError(`lost the release lock ${this.lockPath} (ZooKeeper session ended, or unlock --force): no further side effect is taken`, 1, 'another process may hold the release now; check `graywave status`');
        }
      }
      // One sequential znode per chunk, created in order: the counter keeps the order across writers.
      for (const chunk of chunkLines(lines)) await this.zk.createNode(`${this.journalPath}/${JOURNAL_PREFIX}`, chunk, 'persistent-sequential');
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
        for (const n of [...names].reverse()) await this.zk.remove(`${from}/${n}`);
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
