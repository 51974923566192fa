/**
 * `state: {type: etcd}` against a real etcd: the journal, the lock and the control requests live in the cluster,
 * so another process (another machine) can watch, abort or resume the release, and two can never run it.
 */
import { Etcd3 } from 'etcd3';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockHeldError } from '../../src/errors.js';
import { EtcdBackend, etcdStateOptions } from '../../src/journal/etcd-backend.js';
import type { JournalRecord } from '../../src/journal/records.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { Secrets } from '../../src/util/secrets.js';
import { cli, events, finished, hostsYaml, requireBuiltCli, startCli, tempDirs, writePlaybook } from '../helpers/cli.js';
import { hasEtcd, startEtcd, type EtcdServer } from './helpers/etcd.js';

const has = hasEtcd();
requireBuiltCli();
const temp = tempDirs('gw-state-etcd-');

const until = async (probe: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000) => {
  const t0 = Date.now();
  while (!(await probe())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

const rec = (i: number, pad = ''): JournalRecord => ({ type: 'run', t: `t${i}`, phase: 'start', reason: `${i}${pad}` });

describe.skipIf(!has)('state: etcd against a real etcd', () => {
  let etcd: EtcdServer;
  let client: Etcd3;
  let n = 0;

  beforeAll(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.endpoint });
  });
  afterAll(async () => {
    client?.close();
    await etcd?.stop();
  });

  const backend = (release: string, extra: Record<string, unknown> = {}) =>
    new EtcdBackend(etcdStateOptions.parse({ endpoints: [etcd.endpoint], prefix: '/gw', ttl: '2s', ...extra }), release, new Secrets('/'));

  it('lock: a second holder gets LockHeldError naming the first; appends keep order across chunks; a holder that lost its lock cannot append; two writers; archive', async () => {
    const a = backend('unit');
    const b = backend('unit');
    try {
      const release = await a.acquireLock({ command: 'run', reason: 'nightly' }, 'graywave unlock x --force');
      const err = await b.acquireLock({ command: 'resume' }, 'graywave unlock x --force').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockHeldError);
      expect((err as Error).message).toMatch(new RegExp(`release is locked by pid ${process.pid} on .*run since .*reason: nightly`));
      expect(await b.readLock()).toMatchObject({ pid: process.pid, command: 'run', reason: 'nightly' });
      // The lock key is on a lease: it would die with us.
      const kv = (await client.get('/gw/unit/lock').exec()).kvs[0]!;
      expect(String(kv.lease)).not.toBe('0');

      // One append of 3,000 ~600-byte lines (1.8 MB): several chunks and transactions, read back in order.
      const journal = await a.openJournal();
      const pad = 'x'.repeat(600);
      await Promise.all(Array.from({ length: 3000 }, (_, i) => journal.append(rec(i, pad))));
      await journal.append(rec(3000));
      const back = await b.readRecords();
      expect(back.length).toBe(3001);
      expect(back.map((r) => (r as { reason: string }).reason.replace(pad, ''))).toEqual(Array.from({ length: 3001 }, (_, i) => String(i)));
      const keys = await client.getAll().prefix('/gw/unit/journal/').keys();
      expect(keys.length).toBeGreaterThan(4);
      expect(keys[0]).toBe('/gw/unit/journal/0000000000000001');

      // Another process removes the lock (unlock --force from elsewhere): our next append is refused, nothing lands.
      expect((await b.forceUnlock())?.pid).toBe(process.pid);
      await expect(journal.append(rec(9999))).rejects.toThrow(/lost the release lock/);
      expect((await b.readRecords()).length).toBe(3001);
      await release();

      // Two writers on one journal (no lock held): the second one's key already exists, so it fails instead of interleaving.
      const j1 = await a.openJournal();
      const j2 = await b.openJournal();
      await j1.append(rec(1));
      await expect(j2.append(rec(2))).rejects.toThrow(/another process appended to the journal/);
      expect((await b.readRecords()).length).toBe(3002);

      // Archive: the journal and controls move under archive/<ms>/, the release starts empty.
      await b.postControl({ id: 'c1', action: 'abort', by: { user: 'u', host: 'h', pid: 1 }, t: 't' });
      expect((await a.readControls()).map((c) => c.id)).toEqual(['c1']);
      await a.archiveJournal();
      expect(await b.readRecords()).toEqual([]);
      expect(await b.readControls()).toEqual([]);
      const archived = await client.getAll().prefix('/gw/unit/archive/').keys();
      expect(archived.filter((k) => /\/archive\/\d+\/journal\//.test(k)).length).toBe(keys.length + 1);
      expect(archived.some((k) => /\/archive\/\d+\/control\/c1$/.test(k))).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('playbook: state options are checked strictly, with positions', () => {
    const dir = temp();
    const file = writePlaybook(dir, `name: r\nversion: "1"\nhosts:\n${hostsYaml(1)}\nstate:\n  type: etcd\n  endpoints: [http://127.0.0.1:1]\n  ttl: 500ms\n  bogus: 1\n  password: plain\nsteps:\n  - name: s\n    run: "true"\n`);
    const err = (() => {
      try {
        loadPlaybook(file);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toMatch(/playbook\.yaml:9:3: unknown key "bogus"/);
    expect(err?.message).toMatch(/playbook\.yaml:8:\d+: state\.ttl: ttl must be whole seconds, at least 2s/);
    expect(err?.message).toMatch(/playbook\.yaml:10:\d+: .*a secret is never written in the playbook/);
  });

  /** A playbook whose step waits for `open` in `dir`; the release state lives in etcd under its own name. */
  function slowRelease(hosts = 2) {
    const dir = temp();
    const name = `rel-${++n}`;
    mkdirSync(join(dir, 'a'));
    const step = `touch ${dir}/started-{{host.name}}; while [ ! -e ${dir}/open ]; do sleep 0.05; done; touch ${dir}/ran-{{host.name}}`;
    const file = writePlaybook(
      dir,
      `name: ${name}\nversion: "1"\nhosts:\n${hostsYaml(hosts)}\nwaves: { size: 1 }\nstate: { type: etcd, endpoints: ["${etcd.endpoint}"], prefix: /gwcli, ttl: 2s }\nsteps:\n  - name: work\n    run: "${step}"\n`,
    );
    // Each process runs from its own directory with its own --state-dir: nothing is shared but etcd.
    const machine = (m: string) => {
      const d = join(dir, m);
      mkdirSync(d, { recursive: true });
      return { cwd: d, args: ['--state-dir', join(d, 'state')] };
    };
    return { dir, name, file, machine };
  }

  it('holder killed with -9: status elsewhere shows it, nobody else can take the release; after the lease expires resume elsewhere finishes from the journal', async () => {
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
    expect(early.stderr).toMatch(new RegExp(`pid ${first.pid} .*no longer running \\(stale lock; its etcd lease expires`));

    const t0 = Date.now();
    await until(async () => (await client.get(`/gwcli/${name}/lock`).exec()).kvs.length === 0, 'the lease to expire', 10_000);
    expect(Date.now() - t0).toBeLessThan(6000);

    writeFileSync(join(dir, 'open'), '');
    const resumed = await cli(['resume', file, '--yes', '--json', ...m2.args], { cwd: m2.cwd });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(events(resumed.stdout).at(-1)).toMatchObject({ event: 'run.done' });
    expect(existsSync(join(dir, 'ran-h-01')) && existsSync(join(dir, 'ran-h-02'))).toBe(true);

    // A third machine reads the whole story from etcd: the run by the killed pid, the resume, done; no lock left.
    const done = JSON.parse((await cli(['status', file, '--json', ...m3.args], { cwd: m3.cwd })).stdout);
    expect(done.status).toBe('done');
    expect(done.lockedBy).toBeUndefined();
    const b = backend(name, { prefix: '/gwcli' });
    try {
      const ops = (await b.readRecords()).filter((r) => r.type === 'operator');
      expect(ops.map((o) => o.type === 'operator' && o.action)).toEqual(['run', 'resume']);
      expect(ops[0]!.type === 'operator' && ops[0]!.by.pid).toBe(first.pid);
      expect(ops[1]!.type === 'operator' && ops[1]!.by.pid).not.toBe(first.pid);
    } finally {
      await b.close();
    }
    // `graywave log` on the third machine reads the audit trail from etcd too.
    const log = await cli(['log', file, '--json', '--actions-only', ...m3.args], { cwd: m3.cwd });
    expect(log.code, log.stderr).toBe(0);
    expect(events(log.stdout).map((e) => [e.action, e.pid === first.pid])).toEqual([
      ['create', true],
      ['run', true],
      ['resume', false],
    ]);
    // The journal never touched local files.
    expect(existsSync(join(m1.cwd, 'state', name, 'journal.jsonl'))).toBe(false);
  });

  it('abort from another process goes through etcd: the running engine halts at the next step boundary', async () => {
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
