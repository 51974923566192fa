/**
 * The scenarios every cluster state backend (`state: {type: etcd|zookeeper}`) must pass against a real server:
 * the lock, ordered chunked appends, a holder that lost its lock, two writers, archive; and through the built CLI,
 * from separate directories that share nothing but the cluster: lock contention (exit 3), a holder killed with -9
 * whose lock dies with it, resume elsewhere, abort from another process.
 * A test file describes its backend (a StateBackendCase) and calls stateSuite; what only one backend has goes in
 * the file's own tests, registered through `specific` so that they share the file's one server.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockHeldError } from '../../../src/errors.js';
import type { StateBackend } from '../../../src/journal/backend.js';
import type { Journal } from '../../../src/journal/journal.js';
import type { JournalRecord } from '../../../src/journal/records.js';
import { loadPlaybook } from '../../../src/playbook/load.js';
import { cli, events, finished, hostsYaml, requireBuiltCli, startCli, tempDirs, writePlaybook } from '../../helpers/cli.js';
import { shellWaitForFile, waitFor } from '../../helpers/wait.js';

/** One backend, for stateSuite. `S` is whatever start() brings up: the server and a client the checks read with. */
export interface StateBackendCase<S> {
  /** As in the test names and messages: "etcd", "ZooKeeper". */
  name: string;
  /**
   * hasEtcd() / hasZookeeper(), called at the top of the test file: false skips the suite, and under CI=true the
   * call has already thrown (a missing server is a failure, not a skip).
   */
  available: boolean;
  /** Prefix of the file's temp directories. */
  tempPrefix: string;
  /** Brings the server up, once for the file (beforeAll); stop runs in afterAll. */
  start(): Promise<S>;
  stop(server: S): Promise<void>;
  /**
   * A state backend for `release` whose keys live under `root`. Its lease / session timeout is long (the most the
   * server grants, or a minute): nothing here waits for it to expire, and a loaded machine (a 1.8 MB append while the
   * suite runs) must not starve a live holder past it.
   */
  backend(server: S, release: string, root: string): StateBackend;
  /** The `state:` flow mapping of a playbook whose state lives under `root`, with a lease / session timeout of `seconds`. */
  stateYaml(server: S, root: string, seconds: number): string;
  /** Checks, on the server, that the lock held on `release` would die with its holder (a lease, an ephemeral node). */
  expectLockDiesWithHolder(server: S, root: string, release: string): Promise<void>;
  /** The journal's keys (znodes) on the server, sorted. */
  journalKeys(server: S, root: string, release: string): Promise<string[]>;
  /** Checks the name of the first journal key. */
  expectFirstJournalKey(key: string | undefined): void;
  /** Two journals opened with no lock held append one record each: checks what happens, returns how many landed. */
  twoWriters(j1: Journal, j2: Journal): Promise<number>;
  /** After archiveJournal: the number of journal keys under archive/<ms>/ and the ids of the controls there. */
  archived(server: S, root: string, release: string): Promise<{ journalKeys: number; controls: string[] }>;
  /** Whether the lock of `release` is gone from the server. */
  lockGone(server: S, root: string, release: string): Promise<boolean>;
  /** How a dead holder's lock goes away: in the test name, the wait, and the stale-lock hint of the CLI. */
  expiry: {
    /** "the lease expires" */
    title: string;
    /** "the lease to expire" */
    waitingFor: string;
    /** Regular-expression text the CLI prints after "(stale lock; ": "its etcd lease expires". */
    staleHint: string;
  };
}

/** What a file's own tests get from the suite. */
export interface StateSuiteContext<S> {
  /** The server started for the file (only inside tests and hooks). */
  server(): S;
  /** A fresh temp directory, removed after the file. */
  temp(): string;
}

/**
 * The lease (session timeout) of the releases the CLI runs here: long enough that a machine loaded by the whole suite
 * does not starve a live holder past it, and that a killed holder's lock outlives the in-process check right after the
 * kill; short enough to wait out (the test watches the lock go, so the length costs only that wait). ZooKeeper here
 * grants at most 10 s (20 ticks of 500 ms).
 */
const CLI_LEASE_S = 8;

/** Waits for a condition of the state backend's server (test/helpers/wait.ts). */
export const until = async (probe: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> => {
  await waitFor(probe, what, { timeoutMs });
};

export const rec = (i: number, pad = ''): JournalRecord => ({ type: 'run', t: `t${i}`, phase: 'start', reason: `${i}${pad}` });

/**
 * The error loadPlaybook throws for a one-host playbook whose `state:` block has `stateLines` (indented under it):
 * `state:` is line 5, its first key line 6.
 */
export function playbookError(dir: string, stateLines: string[]): Error | undefined {
  const state = stateLines.map((l) => `  ${l}\n`).join('');
  const file = writePlaybook(dir, `name: r\nversion: "1"\nhosts:\n${hostsYaml(1)}\nstate:\n${state}steps:\n  - name: s\n    run: "true"\n`);
  try {
    loadPlaybook(file);
  } catch (e) {
    return e as Error;
  }
  return undefined;
}

/** Registers `state: <backend> against a real <name>`: the shared tests, then the file's own (`specific`). */
export function stateSuite<S>(bk: StateBackendCase<S>, specific?: (ctx: StateSuiteContext<S>) => void): void {
  requireBuiltCli();
  const temp = tempDirs(bk.tempPrefix);

  describe.skipIf(!bk.available)(`state: ${bk.name.toLowerCase()} against a real ${bk.name}`, () => {
    let started: S | undefined;
    let n = 0;
    const server = (): S => {
      if (started === undefined) throw new Error(`${bk.name} is not started`);
      return started;
    };

    beforeAll(async () => {
      started = await bk.start();
    });
    afterAll(async () => {
      if (started !== undefined) await bk.stop(started);
    });

    const backend = (release: string, root = '/gw') => bk.backend(server(), release, root);

    it('lock: a second holder gets LockHeldError naming the first; appends keep order across chunks; a holder that lost its lock cannot append; two writers; archive', async () => {
      const a = backend('unit');
      const b = backend('unit');
      try {
        const release = await a.acquireLock({ command: 'run', reason: 'nightly' }, 'graywave unlock x --force');
        const err = await b.acquireLock({ command: 'resume' }, 'graywave unlock x --force').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LockHeldError);
        expect((err as Error).message).toMatch(new RegExp(`release is locked by pid ${process.pid} on .*run since .*reason: nightly`));
        expect(await b.readLock()).toMatchObject({ pid: process.pid, command: 'run', reason: 'nightly' });
        await bk.expectLockDiesWithHolder(server(), '/gw', 'unit');

        // One append of 3,000 ~600-byte lines (1.8 MB): several chunks and transactions, read back in order.
        const journal = await a.openJournal();
        const pad = 'x'.repeat(600);
        await Promise.all(Array.from({ length: 3000 }, (_, i) => journal.append(rec(i, pad))));
        await journal.append(rec(3000));
        const back = await b.readRecords();
        expect(back.length).toBe(3001);
        expect(back.map((r) => (r as { reason: string }).reason.replace(pad, ''))).toEqual(Array.from({ length: 3001 }, (_, i) => String(i)));
        const keys = await bk.journalKeys(server(), '/gw', 'unit');
        expect(keys.length).toBeGreaterThan(4);
        bk.expectFirstJournalKey(keys[0]);

        // Another process removes the lock (unlock --force from elsewhere): our next append is refused, nothing lands.
        expect((await b.forceUnlock())?.pid).toBe(process.pid);
        await expect(journal.append(rec(9999))).rejects.toThrow(/lost the release lock/);
        expect((await b.readRecords()).length).toBe(3001);
        await release();

        // Two writers on one journal (no lock held): never interleaved; the backend says how many records landed.
        const landed = await bk.twoWriters(await a.openJournal(), await b.openJournal());
        expect((await b.readRecords()).length).toBe(3001 + landed);

        // Archive: the journal and controls move under archive/<ms>/, the release starts empty.
        await b.postControl({ id: 'c1', action: 'abort', by: { user: 'u', host: 'h', pid: 1 }, t: 't' });
        expect((await a.readControls()).map((c) => c.id)).toEqual(['c1']);
        await a.archiveJournal();
        expect(await b.readRecords()).toEqual([]);
        expect(await b.readControls()).toEqual([]);
        const archived = await bk.archived(server(), '/gw', 'unit');
        expect(archived.journalKeys).toBe(keys.length + landed);
        expect(archived.controls).toEqual(['c1']);
      } finally {
        await a.close();
        await b.close();
      }
    });

    /** A playbook whose step waits for `open` in `dir`; the release state lives in the cluster under its own name. */
    function slowRelease(hosts = 2) {
      const dir = temp();
      const name = `rel-${++n}`;
      mkdirSync(join(dir, 'a'));
      const step = `touch ${dir}/started-{{host.name}}; ${shellWaitForFile(`${dir}/open`)}; touch ${dir}/ran-{{host.name}}`;
      const file = writePlaybook(
        dir,
        `name: ${name}\nversion: "1"\nhosts:\n${hostsYaml(hosts)}\nwaves: { size: 1 }\nstate: ${bk.stateYaml(server(), '/gwcli', CLI_LEASE_S)}\nsteps:\n  - name: work\n    run: "${step}"\n`,
      );
      // Each process runs from its own directory with its own --state-dir: nothing is shared but the cluster.
      const machine = (m: string) => {
        const d = join(dir, m);
        mkdirSync(d, { recursive: true });
        const args = ['--state-dir', join(d, 'state')];
        // `graywave ARGS` run to completion on this machine; a node start on a loaded machine can take many seconds.
        const run = (a: string[]) => cli([...a, ...args], { cwd: d, timeoutMs: 90_000 });
        return { cwd: d, args, run };
      };
      return { dir, name, file, machine };
    }

    it(`holder killed with -9: status elsewhere shows it, nobody else can take the release; after ${bk.expiry.title} resume elsewhere finishes from the journal`, async () => {
      const { dir, name, file, machine } = slowRelease();
      const m1 = machine('m1');
      const m2 = machine('m2');
      const m3 = machine('m3');
      const first = startCli(['run', file, '--yes', '--json', ...m1.args], { cwd: m1.cwd });
      await until(() => existsSync(join(dir, 'started-h-01')) || first.exitCode !== null, 'the first step to start');
      expect(first.exitCode, first.out.stderr).toBeNull();

      const st = await m3.run(['status', file, '--json']);
      expect(st.code, st.stderr).toBe(0);
      const s = JSON.parse(st.stdout);
      expect(s.status).toBe('running');
      expect(s.lockedBy).toMatch(new RegExp(`^pid ${first.pid} on .*run since`));

      const second = await m2.run(['run', file, '--yes']);
      expect(second.code).toBe(3);
      expect(second.stderr).toContain(`release is locked by pid ${first.pid}`);
      const unlock = await m2.run(['unlock', file, '--force']);
      expect(unlock.code).toBe(3); // its holder is alive on this machine

      const killedAt = Date.now();
      first.kill('SIGKILL');
      await finished(first);
      // The dead holder's lock lives on until its lease runs out: another holder is refused, told why. Asked in
      // process (the same LockHeldError the CLI renders with exit 3, as for `second` above): a CLI's node start on a
      // loaded machine can outlast the lease, and it would then take the release instead of being refused.
      const late = backend(name, '/gwcli');
      try {
        const early = await late.acquireLock({ command: 'resume' }, 'graywave unlock x --force').catch((e: unknown) => e);
        expect(early, `the lock died within ${Date.now() - killedAt} ms of the kill`).toBeInstanceOf(LockHeldError);
        expect((early as Error).message).toMatch(new RegExp(`pid ${first.pid} .*no longer running \\(stale lock; ${bk.expiry.staleHint}`));
      } finally {
        await late.close();
      }

      // Then it goes by itself: watched on the server, bounded generously (the lease, plus a loaded machine's slack).
      await until(() => bk.lockGone(server(), '/gwcli', name), bk.expiry.waitingFor, CLI_LEASE_S * 1000 + 30_000);
      expect(Date.now() - killedAt).toBeLessThan(CLI_LEASE_S * 1000 + 20_000);

      writeFileSync(join(dir, 'open'), '');
      // A busy CI machine (2 cores, the suite in parallel) can take long for the cluster's appends: a generous limit.
      const resumed = await m2.run(['resume', file, '--yes', '--json']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(events(resumed.stdout).at(-1)).toMatchObject({ event: 'run.done' });
      expect(existsSync(join(dir, 'ran-h-01')) && existsSync(join(dir, 'ran-h-02'))).toBe(true);

      // A third machine reads the whole story from the cluster: the run by the killed pid, the resume, done; no lock left.
      const done = JSON.parse((await m3.run(['status', file, '--json'])).stdout);
      expect(done.status).toBe('done');
      expect(done.lockedBy).toBeUndefined();
      const b = backend(name, '/gwcli');
      try {
        const ops = (await b.readRecords()).filter((r) => r.type === 'operator');
        expect(ops.map((o) => o.type === 'operator' && o.action)).toEqual(['run', 'resume']);
        expect(ops[0]!.type === 'operator' && ops[0]!.by.pid).toBe(first.pid);
        expect(ops[1]!.type === 'operator' && ops[1]!.by.pid).not.toBe(first.pid);
      } finally {
        await b.close();
      }
      // `graywave log` on the third machine reads the audit trail from the cluster too.
      const log = await m3.run(['log', file, '--json', '--actions-only']);
      expect(log.code, log.stderr).toBe(0);
      expect(events(log.stdout).map((e) => [e.action, e.pid === first.pid])).toEqual([
        ['create', true],
        ['run', true],
        ['resume', false],
      ]);
      // The journal never touched local files.
      expect(existsSync(join(m1.cwd, 'state', name, 'journal.jsonl'))).toBe(false);
    }, 180_000);

    it(`abort from another process goes through ${bk.name}: the running engine halts at the next step boundary`, async () => {
      const { dir, name, file, machine } = slowRelease();
      const m1 = machine('m1');
      const m2 = machine('m2');
      const run = startCli(['run', file, '--yes', '--json', ...m1.args], { cwd: m1.cwd });
      await until(() => existsSync(join(dir, 'started-h-01')) || run.exitCode !== null, 'the first step to start');
      const abort = await m2.run(['abort', file, '--reason', 'bad metrics']);
      expect(abort.code, abort.stderr).toBe(0);
      expect(abort.stdout).toContain(`abort sent to the running release (pid ${run.pid}`);
      // Once the engine has picked it up (it polls every second and journals the request in the cluster), let the
      // current step finish.
      const b = backend(name, '/gwcli');
      try {
        const picked = async () => (await b.readRecords()).some((r) => r.type === 'operator' && r.action === 'abort');
        await until(async () => (await picked()) || run.exitCode !== null, 'the running engine to journal the abort');
      } finally {
        await b.close();
      }
      expect(run.exitCode, run.out.stderr).toBeNull();
      writeFileSync(join(dir, 'open'), '');
      const r = await finished(run, 90_000);
      expect(r.code, r.stderr).toBe(1);
      expect(events(r.stdout).at(-1)).toMatchObject({ event: 'run.halted' });
      expect(existsSync(join(dir, 'ran-h-01'))).toBe(true); // the step in flight finished
      expect(existsSync(join(dir, 'started-h-02'))).toBe(false); // nothing after the boundary
      const s = JSON.parse((await m2.run(['status', file, '--json'])).stdout);
      expect(s.status).toBe('halted');
      expect(s.reason).toMatch(/aborted by .*: bad metrics/);
      expect(s.lockedBy).toBeUndefined();
    });

    specific?.({ server, temp });
  });
}
