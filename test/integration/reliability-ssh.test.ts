/**
 * Reliability over the SSH transport (issue 9), against a real sshd fleet of 4 loopback hosts, all through the CLI:
 *  - kill -9 of `graywave run` at seeded points; after each, the stale lock is reported and cleared, `resume`
 *    completes, `status` shows every host done, and every step's side effect — a line the host writes over SSH
 *    into its own effects file, naming the address the SSH connection arrived at — happened once, except the one
 *    step per host that was in flight when the process died (started, not done), which may have run twice;
 *  - an SSH host that is unreachable (an address with no sshd): the step retries, then fails with a clear
 *    connection error, and with maxFailures 0 the wave halts before any other host is touched.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/journal.js';
import { cli, events, requireBuiltCli, startCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { expectEachStepOnce, lineCount, prng } from './helpers/crash.js';
import { removeDir, tempDir } from './helpers/process.js';
import { hasSshd, loopbacks, startSshFleet, type SshFleet } from './helpers/sshd.js';

requireBuiltCli();

/** Whether a step command of the point in `dir` still runs on a host (its `sh -c` names the directory). */
const stepsRunning = (dir: string): boolean => spawnSync('pgrep', ['-f', '--', `${dir}/effects/`]).status === 0;

const POINTS = 12;
const ADDRESSES = loopbacks(31, 34);
const HOSTS = ADDRESSES.map((_, i) => `s-0${i + 1}`);
const STEPS = ['s1', 's2', 's3'];

describe.skipIf(!hasSshd())('reliability over SSH (real sshd, CLI end to end)', () => {
  let fleet: SshFleet;
  let work: string;
  const transport = () => ({
    type: 'ssh',
    user: 'root',
    identityFile: fleet.clientKey,
    knownHostsFile: fleet.knownHosts,
    configFile: false,
    connectTimeout: '5s',
  });

  beforeAll(async () => {
    fleet = await startSshFleet(ADDRESSES);
    work = tempDir('rel-ssh');
  }, 30_000);
  afterAll(async () => {
    await fleet?.stop();
    if (work) removeDir(work);
  });

  /**
   * Each step sleeps, appends one line naming itself and the address the SSH session arrived at, sleeps again; all
   * of it in one `sh -c` whose command line names the point's directory, so the test can see it still running.
   */
  function playbook(dir: string, rand: () => number): string {
    const ms = () => (20 + Math.floor(rand() * 50)) / 1000;
    const pb = {
      name: 'sshcrash',
      version: '7.2',
      hosts: ADDRESSES.map((address, i) => ({ name: HOSTS[i], address, port: fleet.port })),
      transport: transport(),
      waves: { canary: 1, size: 2, concurrency: 2, maxFailures: 0, pause: 'none' },
      steps: STEPS.map((s) => ({
        name: s,
        run: `sh -c 'sleep ${ms()}; echo "{{host.name}} ${s} {{version}} $(echo $SSH_CONNECTION | cut -d" " -f3)" >> ${dir}/effects/{{host.name}}.log; sleep ${ms()}'`,
      })),
    };
    const file = join(dir, 'playbook.yml');
    writeFileSync(file, JSON.stringify(pb, null, 2));
    return file;
  }

  it(`kill -9 at ${POINTS} seeded points: resume completes, every completed step's effect happened once on its own host`, async () => {
    let kills = 0;
    let staleReported = 0;
    let inFlightRepeats = 0;
    const one = async (point: number) => {
      const seed = 0x5bd1e995 ^ (point * 104729);
      const rand = prng(seed);
      const dir = join(work, `p${point}`);
      mkdirSync(join(dir, 'effects'), { recursive: true });
      const file = playbook(dir, rand);
      const state = join(dir, 'state');
      const journal = join(state, 'sshcrash/journal.jsonl');
      // A full run writes ~33 lines (header, operator, run, 3 waves × 3, 4 hosts × 3 steps × 2, done).
      const afterLines = 4 + Math.floor(rand() * 26);
      const delayMs = rand() < 0.3 ? 0 : Math.floor(rand() * 80);
      const why = `point ${point} (seed ${seed}, after ${afterLines} lines + ${delayMs}ms)`;

      const child = startCli(['run', file, '--yes', '--json', '--state-dir', state]);
      const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
      let done = false;
      void exited.then(() => (done = true));
      const deadline = Date.now() + 60_000;
      while (!done && Date.now() < deadline && lineCount(journal) < afterLines) await new Promise((r) => setTimeout(r, 2));
      if (!done && delayMs) await new Promise((r) => setTimeout(r, delayMs));
      const killed = !done && child.kill('SIGKILL');
      await exited;
      if (killed) kills++;
      // Let any remote command the kill orphaned (its session outlives the client for a moment) finish first.
      await waitFor(() => !stepsRunning(dir), `${why}: the orphaned remote step to finish`, { timeoutMs: 20_000, everyMs: 20 });

      const before = readJournal(journal).records;

      if (killed) {
        const refused = await cli(['resume', file, '--yes', '--state-dir', state]);
        expect(refused.code, why + refused.stderr).toBe(3);
        expect(refused.stderr).toMatch(/no longer running \(stale lock\)[\s\S]*unlock .* --force/);
        staleReported++;
        expect((await cli(['unlock', file, '--force', '--state-dir', state])).code, why).toBe(0);
      }
      const resumed = await cli(['resume', file, '--yes', '--json', '--state-dir', state], { timeoutMs: 60_000 });
      expect(resumed.code, why + resumed.stdout.slice(-2000) + resumed.stderr).toBe(0);
      expect(events(resumed.stdout).at(-1)).toMatchObject({ event: 'run.done' });

      const status = JSON.parse((await cli(['status', file, '--json', '--state-dir', state])).stdout);
      expect(status.status, why).toBe('done');
      expect(
        status.waves.flatMap((w: { hosts: { status: string }[] }) => w.hosts.map((h) => h.status)),
        why,
      ).toEqual(HOSTS.map(() => 'done'));
      expect(status.stillDrained, why).toEqual([]);

      inFlightRepeats += expectEachStepOnce({
        why,
        hosts: HOSTS,
        steps: STEPS,
        effectsDir: join(dir, 'effects'),
        before,
        line: (h, s, i) => `${h} ${s} 7.2 ${ADDRESSES[i]}`,
        // Every line came over SSH to this host's own address.
        eachLine: (l, h, i) => expect(l, `${why}: ${h}`).toMatch(new RegExp(` ${ADDRESSES[i]!.replace(/\./g, '\\.')}$`)),
      });
    };
    for (let point = 0; point < POINTS; point += 2) await Promise.all([one(point), one(point + 1)]);
    expect(kills).toBeGreaterThanOrEqual(POINTS - 2);
    console.log(`ssh crash points: ${POINTS}, killed: ${kills}, stale locks reported: ${staleReported}, in-flight steps that repeated: ${inFlightRepeats}`);
  }, 240_000);

  it('an unreachable SSH host: the step retries, fails with a clear connection error, and maxFailures 0 halts the wave', async () => {
    const dir = join(work, 'unreachable');
    mkdirSync(dir, { recursive: true });
    const gone = '127.0.0.250'; // no sshd listens there
    const file = join(dir, 'playbook.yml');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'unreachable',
        version: '1.0',
        hosts: [
          { name: 'gone', address: gone, port: fleet.port },
          { name: 'fine', address: ADDRESSES[0], port: fleet.port },
        ],
        transport: transport(),
        waves: { canary: 1, size: 1, maxFailures: 0, pause: 'none' },
        steps: [{ name: 'deploy', run: `echo "{{host.name}}" >> ${dir}/effects.log`, retries: 2 }],
      }),
    );
    const state = join(dir, 'state');
    const r = await cli(['run', file, '--yes', '--json', '--state-dir', state, '--skip-preflight']);
    expect(r.code, r.stderr).toBe(1);
    const ev = events(r.stdout);
    const connError = new RegExp(
      `ssh root@127\\.0\\.0\\.250:${fleet.port} \\(host gone\\): connection refused: is sshd listening on 127\\.0\\.0\\.250:${fleet.port}\\?`,
    );
    expect(ev.filter((e) => e.event === 'step.start').map((e) => `${e.host}#${e.attempt}`)).toEqual(['gone#1', 'gone#2', 'gone#3']);
    expect(ev.filter((e) => e.event === 'step.retry').map((e) => e.error)).toEqual([expect.stringMatching(connError), expect.stringMatching(connError)]);
    expect(ev.find((e) => e.event === 'step.failed')?.error).toMatch(connError);
    const halted = ev.at(-1)!;
    expect(halted).toMatchObject({ event: 'run.halted', wave: 1 });
    expect(halted.reason).toMatch(/wave 1: 1 host\(s\) failed \(gone\), more than maxFailures 0; gone at deploy: .*connection refused/);
    // The healthy host was never touched.
    expect(existsSync(join(dir, 'effects.log'))).toBe(false);
    const status = JSON.parse((await cli(['status', file, '--json', '--state-dir', state])).stdout);
    expect(status.status).toBe('halted');
    expect(status.waves[0].hosts[0]).toMatchObject({ host: 'gone', status: 'failed', error: expect.stringMatching(connError) });
    expect(status.waves[1].hosts[0]).toMatchObject({ host: 'fine', status: 'pending' });
  }, 60_000);
});
