/**
 * `state: {type: zookeeper}` against a real ZooKeeper: the lock is an ephemeral znode, the journal sequential
 * znodes, so another process (another machine) can watch, abort or resume the release, and two can never run it.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockHeldError } from '../../src/errors.js';
import { ZookeeperBackend, zookeeperStateOptions } from '../../src/journal/zookeeper-backend.js';
import { Zk } from '../../src/providers/zk.js';
import type { JournalRecord } from '../../src/journal/records.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { cli, events, finished, hostsYaml, requireBuiltCli, startCli, tempDirs, writePlaybook } from '../helpers/cli.js';
import { hasZookeeper, ZooKeeperServer } from './helpers/zookeeper.js';

const has = hasZookeeper();
requireBuiltCli();
const temp = tempDirs('gw-state-zk-');

const until = async (probe: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000) => {
  const t0 = Date.now();
  while (!(await probe())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

const rec = (i: number, pad = ''): JournalRecord => ({ type: 'run', t: `t${i}`, phase: 'start', reason: `${i}${pad}` });

describe.skipIf(!has)('state: zookeeper against a real ZooKeeper', () => {
  let server: ZooKeeperServer;
  let zk: Zk;
  let n = 0;

  beforeAll(async () => {
    server = await ZooKeeperServer.start();
    zk = new Zk({ connect: server.connect, sessionTimeoutMs: 4000, connectTimeoutMs: 5000, label: 'test' });
  });
  afterAll(async () => {
    await zk?.close();
    await server?.stop();
  });

  const backend = (release: string, extra: Record<string, unknown> = {}) =>
    new ZookeeperBackend(zookeeperStateOptions.parse({ connect: server.connect, root: '/gw', sessionTimeout: '2s', ...extra }), release);

  it('lock: a second holder gets LockHeldError naming the first; appends keep order across chunks; a holder that lost its lock cannot append; archive', async () => {
    const a = backend('unit');
    const b = backend('unit');
    try {
      const release = await a.acquireLock({ command: 'run', reason: 'nightly' }, 'graywave unlock x --force');
      const err = await b.acquireLock({ command: 'resume' }, 'graywave unlock x --force').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockHeldError);
      expect((err as Error).message).toMatch(new RegExp(`release is locked by pid ${process.pid} on .*run since .*reason: nightly`));
      expect(await b.readLock()).toMatchObject({ pid: process.pid, command: 'run', reason: 'nightly' });
      // The lock is an ephemeral node: it would die with our session.
      const lock = (await zk.get('/gw/unit/lock'))!;
      expect(lock.stat.ephemeralOwner.equals(Buffer.alloc(8))).toBe(false);

      // One append of 3,000 ~600-byte lines (1.8 MB): several chunks and transactions, read back in order.
      const journal = await a.openJournal();
      const pad = 'x'.repeat(600);
      await Promise.all(Array.from({ length: 3000 }, (_, i) => journal.append(rec(i, pad))));
      await journal.append(rec(3000));
      const back = await b.readRecords();
      expect(back.length).toBe(3001);
      expect(back.map((r) => (r as { reason: string }).reason.replace(pad, ''))).toEqual(Array.from({ length: 3001 }, (_, i) => String(i)));
      const keys = ((await zk.children('/gw/unit/journal')) ?? []).sort();
      expect(keys.length).toBeGreaterThan(4);
      expect(keys[0]).toMatch(/^r-\d{10}$/);

      // Another process removes the lock (unlock --force from elsewhere): our next append is refused, nothing lands.
      expect((await b.forceUnlock())?.pid).toBe(process.pid);
      await expect(journal.append(rec(9999))).rejects.toThrow(/lost the release lock/);
      expect((await b.readRecords()).length).toBe(3001);
      await release();

        // Without the lock, appends from two processes still never interleave inside a batch: one znode each.
      const j1 = await a.openJournal();
      const j2 = await b.openJournal();
      await Promise.all([j1.append(rec(1)), j2.append(rec(2))]);
      expect((await b.readRecords()).length).toBe(3003);

      // Archive: the journal and controls move under archive/<ms>/, the release starts empty.
      await b.postControl({ id: 'c1', action: 'abort', by: { user: 'u', host: 'h', pid: 1 }, t: 't' });
      expect((await a.readControls()).map((c) => c.id)).toEqual(['c1']);
      await a.archiveJournal();
      expect(await b.readRecords()).toEqual([]);
      expect(await b.readControls()).toEqual([]);
      const [stamp] = (await zk.children('/gw/unit/archive')) ?? [];
      expect((await zk.children(`/gw/unit/archive/${stamp}/journal`))?.length).toBe(keys.length + 2);
      expect(await zk.children(`/gw/unit/archive/${stamp}/control`)).toEqual(['c1']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('playbook: state options are checked strictly, with positions', () => {
    const dir = temp();
    const file = writePlaybook(dir, `name: r\nversion: "1"\nhosts:\n${hostsYaml(1)}\nstate:\n  type: zookeeper\n  connect: "zk1:2181 zk2:2181"\n  sessionTimeout: soon\n  bogus: 1\n  endpoints: [x]\nsteps:\n  - name: s\n    run: "true"\n`);
    const err = (() => {
      try {
        loadPlaybook(file);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toMatch(/playbook\.yaml:9:3: unknown key "bogus"/);
    expect(err?.message).toMatch(/playbook\.yaml:10:3: unknown key "endpoints"/);
    expect(err?.message).toMatch(/playbook\.yaml:8:\d+: state\.sessionTimeout: not a duration/);
    expect(err?.message).toMatch(/playbook\.yaml:7:\d+: state\.connect: must be host:port/);
  });

  /** A playbook whose step waits for `open` in `dir`; the release state lives in ZooKeeper under its own name. */
  function slowRelease(hosts = 2) {
    const dir = temp();
    const name = `rel-${++n}`;
    mkdirSync(join(dir, 'a'));
    const step = `touch ${dir}/started-{{host.name}}; while [ ! -e ${dir}/open ]; do sleep 0.05; done; touch ${dir}/ran-{{host.name}}`;
    const file = writePlaybook(
      dir,
      `name: ${name}\nversion: "1"\nhosts:\n${hostsYaml(hosts)}\nwaves: { size: 1 }\nstate: { type: zookeeper, connect: "${server.connect}", root: /gwcli, sessionTimeout: 2s }\nsteps:\n  - name: work\n    run: "${step}"\n`,
    );
    // Each process runs from its own directory with its own --state-dir: nothing is shared but ZooKeeper.
    const machine = (m: string) => {
      const d = join(dir, m);
      mkdirSync(d, { recursive: true });
      return { cwd: d, args: ['--state-dir', join(d, 'state')] };
    };
    return { dir, name, file, machine };
  }

  it('holder killed with -9: status elsewhere shows it, nobody else can take the release; after its session expires resume elsewhere finishes from the journal', async () => {
    const { dir, name, file, machine } = slowRelease();
    const m1 = machine('m1');
    const m2 = machine('m2');
    const m3 = machine('m3');
    const first = startCli(['run', file, '--yes', '--json', ...m1.args], { cwd: m1.cwd });
    await until(() => existsSync(join(dir, 'started-h-01')) || first.exitCode !== null, 'the first step to start');
    expect(first.exitCode, first.out.stderr).toBeNull();

    const st = await cli(['status', file, '--json', ...m3.args], { cwd: m3.cwd });
    expect(st.code, st.stderr).toBe(0);
    const s = JSON.parse(st.stdout);
    expect(s.status).toBe('running');
    expect(s.lockedBy).toMatch(new RegExp(`^pid ${first.pid} on .*run since`));

    const second = await cli(['run', file, '--yes', ...m2.args], { cwd: m2.cwd });
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(`release is locked by pid ${first.pid}`);
    const unlock = await cli(['unlock', file, '--force', ...m2.args], { cwd: m2.cwd });
    expect(unlock.code).toBe(3); // its holder is alive on this machine

    first.kill('SIGKILL');
    await finished(first);
    const early = await cli(['resume', file, '--yes', ...m2.args], { cwd: m2.cwd });
    expect(early.code).toBe(3);
    expect(early.stderr).toMatch(new RegExp(`pid ${first.pid} .*no longer running \\(stale lock; its ZooKeeper session expires`));

    const t0 = Date.now();
    await until(async () => !(await zk.exists(`/gwcli/${name}/lock`)), 'the session to expire', 10_000);
    expect(Date.now() - t0).toBeLessThan(6000);

    writeFileSync(join(dir, 'open'), '');
    const resumed = await cli(['resume', file, '--yes', '--json', ...m2.args], { cwd: m2.cwd });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(events(resumed.stdout).at(-1)).toMatchObject({ event: 'run.done' });
    expect(existsSync(join(dir, 'ran-h-01')) && existsSync(join(dir, 'ran-h-02'))).toBe(true);

    // A third machine reads the whole story from ZooKeeper: the run by the killed pid, the resume, done; no lock left.
    const done = JSON.parse((await cli(['status', file, '--json', ...m3.args], { cwd: m3.cwd })).stdout);
    expect(done.status).toBe('done');
    expect(done.lockedBy).toBeUndefined();
    const b = backend(name, { root: '/gwcli' });
    try {
      const ops = (await b.readRecords()).filter((r) => r.type === 'operator');
      expect(ops.map((o) => o.type === 'operator' && o.action)).toEqual(['run', 'resume']);
      expect(ops[0]!.type === 'operator' && ops[0]!.by.pid).toBe(first.pid);
      expect(ops[1]!.type === 'operator' && ops[1]!.by.pid).not.toBe(first.pid);
    } finally {
      await b.close();
    }
    // The journal never touched local files.
    expect(existsSync(join(m1.cwd, 'state', name, 'journal.jsonl'))).toBe(false);
  });

  it('abort from another process goes through ZooKeeper: the running engine halts at the next step boundary', async () => {
    const { dir, file, machine } = slowRelease();
    const m1 = machine('m1');
    const m2 = machine('m2');
    const run = startCli(['run', file, '--yes', '--json', ...m1.args], { cwd: m1.cwd });
    await until(() => existsSync(join(dir, 'started-h-01')) || run.exitCode !== null, 'the first step to start');
    const abort = await cli(['abort', file, '--reason', 'bad metrics', ...m2.args], { cwd: m2.cwd });
    expect(abort.code, abort.stderr).toBe(0);
    expect(abort.stdout).toContain(`abort sent to the running release (pid ${run.pid}`);
    // Let the engine pick it up (it polls every second), then let the current step finish.
    await new Promise((r) => setTimeout(r, 1500));
    writeFileSync(join(dir, 'open'), '');
    const r = await finished(run, 30_000);
    expect(r.code, r.stderr).toBe(1);
    expect(events(r.stdout).at(-1)).toMatchObject({ event: 'run.halted' });
    expect(existsSync(join(dir, 'ran-h-01'))).toBe(true); // the step in flight finished
    expect(existsSync(join(dir, 'started-h-02'))).toBe(false); // nothing after the boundary
    const s = JSON.parse((await cli(['status', file, '--json', ...m2.args], { cwd: m2.cwd })).stdout);
    expect(s.status).toBe('halted');
    expect(s.reason).toMatch(/aborted by .*: bad metrics/);
    expect(s.lockedBy).toBeUndefined();
  });
});
