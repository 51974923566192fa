/**
 * kill -9 of a real `graywave run` at 50 seeded points (step boundaries, mid-command, right after a journal write),
 * some with a torn last journal line appended as a half-written record would leave it. After each: the stale lock
 * is reported and cleared, `resume` completes, status shows every host done, and every side effect happened once —
 * except, per host, the one step that was in flight (started, not done) when the process died, which may repeat.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resumeRelease } from '../../src/app/run.js';
import { releaseStatus } from '../../src/app/status.js';
import { readJournal } from '../../src/journal/journal.js';
import { forceUnlock, readLock } from '../../src/journal/lock.js';
import { cli, requireBuiltCli, startCli, tempDirs, writePlaybook } from '../helpers/cli.js';
import { expectEachStepOnce, lineCount, prng } from './helpers/crash.js';

requireBuiltCli();
const temp = tempDirs('gw-crash-');

const POINTS = 50;
const HOSTS = ['h-01', 'h-02', 'h-03'];
const STEPS = ['s1', 's2', 's3'];

/** Each step sleeps, appends one line to the host's own effects file (the non-repeatable side effect), sleeps again. */
function playbook(rand: () => number): string {
  const ms = () => (20 + Math.floor(rand() * 40)) / 1000;
  const steps = STEPS.map(
    (s) => `  - name: ${s}\n    run: "sleep ${ms()}; echo \\"$GRAYWAVE_HOST ${s} {{version}}\\" >> effects/{{host.name}}.log; sleep ${ms()}"`,
  ).join('\n');
  return `name: crash
version: "7.1"
hosts:
${HOSTS.map((h, i) => `  - { name: ${h}, address: 10.0.1.${i + 1} }`).join('\n')}
waves: { canary: 1, size: 2, concurrency: 2 }
steps:
${steps}
`;
}

/** Starts `graywave run` and SIGKILLs it once the journal holds `afterLines` lines plus `delayMs`. */
async function runAndKill(file: string, journal: string, afterLines: number, delayMs: number): Promise<{ killed: boolean; code: number | null }> {
  const child = startCli(['run', file, '--yes', '--json']);
  const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 60_000;
  while (!done && Date.now() < deadline) {
    if (lineCount(journal) >= afterLines) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  if (!done && delayMs) await new Promise((r) => setTimeout(r, delayMs));
  const killed = !done && child.kill('SIGKILL');
  const code = await exited;
  return { killed, code };
}

describe('kill -9 at seeded points, then resume', () => {
  it(`${POINTS} crash points: resume completes, each completed step ran exactly once`, async () => {
    let kills = 0;
    let torn = 0;
    let inFlightRepeats = 0;
    let cliResumes = 0;
    const one = async (point: number) => {
      const seed = 0x9e3779b9 ^ (point * 7919);
      const rand = prng(seed);
      const dir = temp();
      mkdirSync(join(dir, 'effects'));
      const file = writePlaybook(dir, playbook(rand));
      const journal = join(dir, '.graywave/crash/journal.jsonl');
      // A full run writes ~24 lines (header, run, waves, 2 per step). Kill somewhere from the first wave on.
      const afterLines = 3 + Math.floor(rand() * 19);
      const mode = rand();
      const delayMs = mode < 0.3 ? 0 : Math.floor(rand() * 60);
      const why = `point ${point} (seed ${seed}, after ${afterLines} lines + ${delayMs}ms)`;

      const { killed } = await runAndKill(file, journal, afterLines, delayMs);
      if (killed) kills++;

      // A write the kill interrupted leaves a last line without its newline: simulate one on about a third of the points.
      if (killed && rand() < 0.35) {
        const fragment = JSON.stringify({ type: 'step', t: new Date().toISOString(), wave: 2, host: 'h-02', step: 's2', phase: 'done', ms: 12 });
        appendFileSync(journal, fragment.slice(0, 5 + Math.floor(rand() * (fragment.length - 10))));
        expect(readJournal(journal).torn, why).toBe(true);
        torn++;
      }

      // What the journal says before resuming decides what may repeat.
      const before = readJournal(journal).records;
      // status reads a torn or interrupted journal without a crash, and says that nothing runs it any more.
      const mid = await releaseStatus(file);
      expect(killed ? ['interrupted', 'done'] : ['done'], why).toContain(mid.status);
      if (mid.status === 'interrupted')
        expect(mid.reason, why).toMatch(/no longer running: clear its lock with `graywave unlock .* --force`, then `graywave resume/);

      if (killed) {
        const lock = readLock(join(dir, '.graywave/crash/lock'));
        expect(lock, why).toBeDefined();
      }
      if (killed && point % 10 === 0) {
        // The real CLI path: the dead holder is reported (exit 3, with the way out), then cleared and resumed.
        const refused = await cli(['resume', file, '--yes']);
        expect(refused.code, why + refused.stderr).toBe(3);
        expect(refused.stderr).toMatch(/no longer running \(stale lock\)[\s\S]*unlock .* --force/);
        expect((await cli(['unlock', file, '--force'])).code, why).toBe(0);
        const resumed = await cli(['resume', file, '--yes', '--json']);
        expect(resumed.code, why + resumed.stdout + resumed.stderr).toBe(0);
        cliResumes++;
      } else {
        forceUnlock(join(dir, '.graywave/crash/lock'));
        const code = await resumeRelease({ file, yes: true, output: 'silent' });
        expect(code, why).toBe(0);
      }

      const status = await releaseStatus(file);
      expect(status.status, why).toBe('done');
      expect(
        status.waves.flatMap((w) => w.hosts.map((h) => h.status)),
        why,
      ).toEqual(HOSTS.map(() => 'done'));
      const after = readJournal(journal);
      expect(after.torn, why).toBe(false);

      inFlightRepeats += expectEachStepOnce({ why, hosts: HOSTS, steps: STEPS, effectsDir: join(dir, 'effects'), before, line: (h, s) => `${h} ${s} 7.1` });
    };
    // Two points at a time (each in its own directory); the order of points stays seeded.
    for (let point = 0; point < POINTS; point += 2) await Promise.all([one(point), one(point + 1)]);
    // Most points must really have killed a live run (a run that finished first proves nothing).
    expect(kills).toBeGreaterThanOrEqual(POINTS - 3);
    expect(torn).toBeGreaterThan(5);
    expect(cliResumes).toBeGreaterThanOrEqual(4);
    console.log(
      `crash points: ${POINTS}, killed: ${kills}, torn journals: ${torn}, in-flight steps that repeated: ${inFlightRepeats}, resumed by CLI: ${cliResumes}`,
    );
  }, 400_000);
});
