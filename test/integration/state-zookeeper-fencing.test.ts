/**
 * `state: {type: zookeeper}` when the holder's connection goes away, against a real ZooKeeper: a cut shorter than
 * the session timeout keeps the session and the lock; the fencing token (version of `<release>/holder`) keeps a
 * holder that lost the lock from appending next to the new one; an expired holder nobody replaced gets its lock back.
 * The holder talks to ZooKeeper through a TCP proxy that the test cuts; everything else connects directly.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ZookeeperBackend, zookeeperStateOptions } from '../../src/journal/zookeeper-backend.js';
import type { JournalRecord } from '../../src/journal/records.js';
import { isZkError, Zk, ZkError } from '../../src/providers/zk.js';
import { waitFor } from '../helpers/wait.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { hasZookeeper, ZooKeeperServer } from './helpers/zookeeper.js';

const has = hasZookeeper();

const until = async (probe: () => Promise<boolean> | boolean, what: string) => {
  await waitFor(probe, what, { timeoutMs: 30_000 });
};

const rec = (reason: string): JournalRecord => ({ type: 'run', t: new Date().toISOString(), phase: 'start', reason });
const reasons = (records: JournalRecord[]) => records.map((r) => (r as { reason?: string }).reason);

describe.skipIf(!has)('state: zookeeper, connection cuts and fencing', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  let proxy: TcpProxy;
  const open: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 4000, connectTimeoutMs: 5000, label: 'test' });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const o of open.splice(0)) await o.close().catch(() => undefined);
  });
  afterAll(async () => {
    await zk?.close();
    await server?.stop();
  });

  /**
   * A backend on `release`, through a fresh proxy (`via: 'proxy'`) or directly. A direct one's session is never
   * waited out here: it is long, so a loaded machine cannot starve a live holder past it; one through the proxy is
   * short (4 s), as the tests that cut it wait for it to expire (watching the lock node, not the clock).
   */
  async function backend(release: string, via: 'proxy' | 'direct', extra: Record<string, unknown> = {}) {
    if (via === 'proxy') {
      proxy = await TcpProxy.start(server.port);
      open.push(proxy);
    }
    const b = new ZookeeperBackend(
      zookeeperStateOptions.parse({
        connect: via === 'proxy' ? proxy.connect : server.connect,
        root: '/gwf',
        sessionTimeout: via === 'proxy' ? '4s' : '10s',
        connectTimeout: '3s',
        ...extra,
      }),
      release,
    );
    open.push(b);
    return b;
  }
  const lockOwner = async (release: string) => (await zk.get(`/gwf/${release}/lock`))?.stat.ephemeralOwner;

  it('a cut shorter than sessionTimeout keeps the session: the lock node stays ours, an append made during the cut lands after it, appends go on', async () => {
    const a = await backend('cut', 'proxy', { sessionTimeout: '6s' });
    await a.acquireLock({ command: 'run' }, 'unlock');
    const journal = await a.openJournal();
    await journal.append(rec('a1'));
    const owner = await lockOwner('cut');
    expect(owner).toBeDefined();

    proxy.cut();
    expect(proxy.connections).toBe(0);
    const atTheCut = journal.append(rec('a2')); // most likely sent before the client sees the cut: retried
    await until(() => proxy.refused > 0, 'the client to see the cut (a refused reconnection)');
    const during = journal.append(rec('a3')); // made while cut off: waits for the reconnection (connectTimeout 3s)
    const refused = proxy.refused;
    await until(() => proxy.refused >= refused + 2, 'reconnections refused while a3 waits');
    proxy.restore();
    await Promise.all([atTheCut, during]);
    await journal.append(rec('a4'));

    expect(proxy.connections).toBe(1); // it did reconnect through the proxy
    expect((await lockOwner('cut'))?.equals(owner!)).toBe(true);
    expect(reasons(await a.readRecords())).toEqual(['a1', 'a2', 'a3', 'a4']);
  });

  it('an append whose answer is lost with the connection is sent again and lands exactly once', async () => {
    const a = await backend('lost-answer', 'proxy', { sessionTimeout: '6s' });
    await a.acquireLock({ command: 'run' }, 'unlock');
    const journal = await a.openJournal();
    await journal.append(rec('a1'));
    const owner = await lockOwner('lost-answer');

    proxy.muteReplies();
    const append = journal.append(rec('a2'));
    await until(async () => ((await zk.children('/gwf/lost-answer/journal')) ?? []).length === 2, 'the append to land');
    proxy.cut(); // the answer never comes: the connection goes, the session stays
    await until(() => proxy.refused > 0, 'the client to see the cut (a refused reconnection)');
    proxy.restore();
    await append;
    await journal.append(rec('a3'));
    expect(reasons(await a.readRecords())).toEqual(['a1', 'a2', 'a3']);
    expect((await lockOwner('lost-answer'))?.equals(owner!)).toBe(true);
  });

  it('keepSession: a call made while cut off fails after connectTimeout (retryable, nothing sent, not even later); one unanswered resets the connection, not the session', async () => {
    proxy = await TcpProxy.start(server.port);
    open.push(proxy);
    const kz = new Zk({ connect: proxy.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 1000, label: 'kept', keepSession: true });
    open.push(kz);
    await kz.createNode('/kept-eph', 'x', 'ephemeral');
    const session = await kz.sessionId();

    proxy.cut();
    await until(() => proxy.refused > 0, 'the client to see the cut (a refused reconnection)');
    let t0 = Date.now();
    const err = await kz.create('/kept-late', 'x').catch((e: unknown) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900); // it waited connectTimeout for the reconnection ...
    expect(Date.now() - t0).toBeLessThan(8000); // ... and not until the session would expire (generous: that is 10 s)
    expect(err).toBeInstanceOf(ZkError);
    expect((err as ZkError).retryable).toBe(true);
    expect(isZkError(err, 'CONNECTION_LOSS')).toBe(true);
    expect((err as Error).message).toMatch(/unreachable for 1000 ms \(create \/kept-late\); nothing was sent/);

    proxy.restore();
    expect(await kz.exists('/kept-eph')).toBe(true);
    expect((await kz.sessionId()).equals(session)).toBe(true);
    // A session's requests are sent and applied in order: had the failed create been queued for after the reconnect,
    // it would have landed before the exists just answered.
    expect(await zk.exists('/kept-late')).toBe(false);

    // A black hole: the request goes out and nothing comes back.
    proxy.stall();
    t0 = Date.now();
    const err2 = await kz.get('/kept-eph').catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(8000); // generous: connectTimeout (1 s), not the session timeout (10 s)
    expect((err2 as ZkError).retryable).toBe(true);
    expect((err2 as Error).message).toMatch(/did not answer within 1000 ms/);
    proxy.restore();
    expect((await kz.get('/kept-eph'))?.stat.ephemeralOwner.equals(session)).toBe(true);
    expect((await kz.sessionId()).equals(session)).toBe(true);
  });

  it("fencing: A passed its lock check, then B took the lock before A's append went out: the append is refused, nothing of A lands after B took over", async () => {
    const a = await backend('race', 'direct');
    const b = await backend('race', 'direct');
    await a.acquireLock({ command: 'run' }, 'unlock');
    const ja = await a.openJournal();
    await ja.append(rec('a1'));

    // Right before A's next journal write leaves: A's lock node goes (as if its session ended) and B takes the lock.
    let takeover: Promise<unknown> | undefined;
    const steal = async () => {
      await zk.remove('/gwf/race/lock');
      await b.acquireLock({ command: 'resume' }, 'unlock');
    };
    for (const m of ['multi', 'createNode'] as const) {
      const real = Zk.prototype[m] as (...args: unknown[]) => Promise<unknown>;
      vi.spyOn(Zk.prototype, m).mockImplementation(async function (this: Zk, ...args: unknown[]): Promise<never> {
        if (JSON.stringify(args).includes('/gwf/race/journal/r-') && !takeover) await (takeover = steal());
        return real.apply(this, args) as never;
      });
    }
    await expect(ja.append(rec('a2'))).rejects.toThrow(/lost the release lock/);
    vi.restoreAllMocks();
    expect(takeover).toBeDefined();

    const jb = await b.openJournal();
    await jb.append(rec('b1'));
    expect(reasons(await b.readRecords())).toEqual(['a1', 'b1']);
    await expect(ja.append(rec('a3'))).rejects.toThrow(/lost the release lock/);
    expect(reasons(await b.readRecords())).toEqual(['a1', 'b1']);
  });

  it('fencing: A\'s session expires, B takes the lock; A comes back: its next append fails "lost the release lock", the lock stays B\'s', async () => {
    const a = await backend('expire', 'proxy');
    await a.acquireLock({ command: 'run' }, 'unlock');
    const ja = await a.openJournal();
    await ja.append(rec('a1'));

    proxy.cut(); // longer than sessionTimeout (4s): ZooKeeper expires A's session and its lock node
    await until(async () => !(await zk.exists('/gwf/expire/lock')), "A's session to expire");
    const b = await backend('expire', 'direct');
    await b.acquireLock({ command: 'resume' }, 'unlock');
    const bOwner = await lockOwner('expire');
    const jb = await b.openJournal();
    await jb.append(rec('b1'));

    proxy.restore();
    await until(() => proxy.connections > 0, 'A to reconnect');
    await expect(ja.append(rec('a2'))).rejects.toThrow(/lost the release lock/);
    await jb.append(rec('b2'));
    expect(reasons(await b.readRecords())).toEqual(['a1', 'b1', 'b2']);
    expect((await lockOwner('expire'))?.equals(bOwner!)).toBe(true);
  });

  it("fencing: A's session expires, B takes the lock and lets it go; A comes back: it does not take the lock again, its append fails", async () => {
    const a = await backend('gone', 'proxy');
    await a.acquireLock({ command: 'run' }, 'unlock');
    const ja = await a.openJournal();
    await ja.append(rec('a1'));

    proxy.cut();
    await until(async () => !(await zk.exists('/gwf/gone/lock')), "A's session to expire");
    const b = await backend('gone', 'direct');
    const releaseB = await b.acquireLock({ command: 'resume' }, 'unlock');
    await (await b.openJournal()).append(rec('b1'));
    await releaseB();

    proxy.restore();
    await until(() => proxy.connections > 0, 'A to reconnect');
    // A tries to put its lock back when it learns of the expiry, and an append waits for that try (or makes it):
    // once the append has failed, A has had its chance to take the lock again.
    await expect(ja.append(rec('a2'))).rejects.toThrow(/lost the release lock/);
    expect(await zk.exists('/gwf/gone/lock')).toBe(false);
    expect(reasons(await b.readRecords())).toEqual(['a1', 'b1']);
  });

  it('an expired session whose token still matches gets its lock node back (status shows the holder again) and appends go on', async () => {
    const a = await backend('relock', 'proxy');
    await a.acquireLock({ command: 'run', reason: 'nightly' }, 'unlock');
    const ja = await a.openJournal();
    await ja.append(rec('a1'));
    const before = await lockOwner('relock');
    const token = (await zk.get('/gwf/relock/holder'))!.version;

    proxy.cut();
    await until(async () => !(await zk.exists('/gwf/relock/lock')), "A's session to expire");
    proxy.restore();
    // No append needed: A learns of the expiry on reconnecting and puts its lock node back on its new session.
    await until(async () => !!(await zk.exists('/gwf/relock/lock')), 'the lock node to come back');
    const after = await lockOwner('relock');
    expect(after?.equals(before!)).toBe(false);
    const other = await backend('relock', 'direct');
    expect(await other.readLock()).toMatchObject({ pid: process.pid, command: 'run', reason: 'nightly' });

    await ja.append(rec('a2'));
    expect(reasons(await other.readRecords())).toEqual(['a1', 'a2']);
    expect((await zk.get('/gwf/relock/holder'))!.version).toBe(token); // same token: nobody else took the lock
  });

  it('a release written by an older graywave (no holder node) opens, locks, appends and force-unlocks', async () => {
    await zk.createWithParents('/gwf/legacy/journal', '', '');
    await zk.createNode('/gwf/legacy/journal/r-', JSON.stringify(rec('old')) + '\n', 'persistent-sequential');
    const other = { user: 'u', host: 'elsewhere', pid: 1, startedAt: 't', command: 'run' };
    // An old holder's lock, and no holder node: unlock --force removes it without one.
    const old = new Zk({ connect: server.connect, sessionTimeoutMs: 4000, connectTimeoutMs: 5000, label: 'old' });
    open.push(old);
    await old.createNode('/gwf/legacy/lock', JSON.stringify(other), 'ephemeral');
    const a = await backend('legacy', 'direct');
    expect(reasons(await a.readRecords())).toEqual(['old']);
    expect((await a.forceUnlock())?.host).toBe('elsewhere');
    expect(await zk.exists('/gwf/legacy/holder')).toBe(false);

    const release = await a.acquireLock({ command: 'resume' }, 'unlock');
    const journal = await a.openJournal();
    expect(reasons(journal.records)).toEqual(['old']);
    await journal.append(rec('new'));
    expect(reasons(await a.readRecords())).toEqual(['old', 'new']);
    expect((await zk.get('/gwf/legacy/holder'))!.version).toBeGreaterThan(0);
    await release();
    expect(await zk.exists('/gwf/legacy/lock')).toBe(false);
  });

  it('Zk.multi: a version-0 condition is exact (node-zookeeper-client would make it unconditional); sequential and ephemeral creates', async () => {
    await zk.create('/multi-v0', 'a');
    await zk.set('/multi-v0', 'b', 0); // now version 1
    const err = await zk
      .multi([
        { op: 'check', path: '/multi-v0', version: 0 },
        { op: 'create', path: '/multi-seq-', mode: 'persistent-sequential' },
      ])
      .catch((e: unknown) => e);
    expect(isZkError(err, 'BAD_VERSION')).toBe(true);
    expect((err as ZkError).failedOp).toBe(0);
    const res = await zk.multi([
      { op: 'check', path: '/multi-v0', version: 1 },
      { op: 'create', path: '/multi-seq-', data: 'x', mode: 'persistent-sequential' },
      { op: 'create', path: '/multi-eph', mode: 'ephemeral' },
      { op: 'set', path: '/multi-v0', data: 'c', version: 1 },
    ]);
    expect(res[1]!.path).toMatch(/^\/multi-seq-\d{10}$/);
    expect(res[3]!.version).toBe(2);
    expect((await zk.get('/multi-eph'))!.stat.ephemeralOwner.equals(await zk.sessionId())).toBe(true);
  });
});
