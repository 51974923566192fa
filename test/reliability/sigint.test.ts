/**
 * Ctrl-C on a real `graywave run` child process (issue 9): one SIGINT mid-step aborts the in-flight command
 * (its whole process group), writes a halted run record saying "interrupted", exits 1, and `resume` completes;
 * a second SIGINT while the first is still winding down forces the exit (130) at once.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/journal.js';
import { cli, events, finished, requireBuiltCli, startCli, tempDirs, writePlaybook } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

requireBuiltCli();
const temp = tempDirs('gw-sigint-');

/** Command lines of live processes that start with `prefix` (ours carry a marker unique to this test process). */
function alive(prefix: string): string[] {
  return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith(prefix));
}

async function until(probe: () => boolean, what: string): Promise<void> {
  await waitFor(probe, what, { timeoutMs: 20_000, everyMs: 10 });
}

/**
 * Two hosts at once; step `slow` sleeps (a marked `sleep` in a subshell, so a bare kill of bash would orphan it)
 * unless the file `go` exists. Every step appends one line to the host's effects file.
 */
function playbook(marker: string, extra = ''): string {
  return `name: sigint
version: "3.0"
hosts:
  - { name: h-01, address: 10.0.9.1 }
  - { name: h-02, address: 10.0.9.2 }
waves: { size: 2, concurrency: 2 }
steps:
  - name: before
    run: "echo \\"$GRAYWAVE_HOST before\\" >> effects/{{host.name}}.log"
  - name: slow
    run: "echo \\"$GRAYWAVE_HOST slow-start\\" >> effects/{{host.name}}.log; if [ ! -f go ]; then (${marker}); fi; echo \\"$GRAYWAVE_HOST slow\\" >> effects/{{host.name}}.log"
  - name: after
    run: "echo \\"$GRAYWAVE_HOST after\\" >> effects/{{host.name}}.log"
${extra}`;
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []);

describe('Ctrl-C (SIGINT) on graywave run', () => {
  it('one SIGINT mid-step: the command group is killed, the journal ends halted ("interrupted"), exit 1; status says halted; resume completes', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'effects'));
    const marker = `sleep 37.${process.pid}1`;
    const file = writePlaybook(dir, playbook(marker));
    const journal = join(dir, '.graywave/sigint/journal.jsonl');
    const child = startCli(['run', file, '--yes', '--json'], { cwd: dir });
    // Both hosts are inside `slow` with their sleep running.
    await until(() => alive(marker).length === 2, 'both sleeps running');
    const t0 = Date.now();
    child.kill('SIGINT');
    const r = await finished(child, 30_000);
    const ms = Date.now() - t0;
    expect(r.code, r.stderr).toBe(1);
    expect(ms).toBeLessThan(25_000); // generous: it stopped the steps, it did not wait out their 37 s sleep
    expect(r.stderr).toMatch(/stopping at the next safe point \(Ctrl-C again to force\)/);
    // The in-flight command's process group is gone: no leftover sleep (waited for: the kill is asynchronous).
    await until(() => alive(marker).length === 0, "the killed steps' sleeps to be gone");

    const { records, torn } = readJournal(journal);
    expect(torn).toBe(false);
    const last = records.at(-1)!;
    expect(last).toMatchObject({ type: 'run', phase: 'halted' });
    expect((last as { reason: string }).reason).toMatch(/interrupted \(Ctrl-C\)/);
    // Both in-flight steps are recorded as failed (interrupted), never as done.
    const slow = records.filter((x) => x.type === 'step' && x.step === 'slow').map((x) => `${(x as { host: string }).host}:${(x as { phase: string }).phase}`);
    expect(slow.sort()).toEqual(['h-01:failed', 'h-01:started', 'h-02:failed', 'h-02:started']);
    const ev = events(r.stdout);
    expect(ev.at(-1)).toMatchObject({ event: 'run.halted' });
    expect(ev.at(-1)!.reason).toMatch(/interrupted/);
    expect(ev.filter((e) => e.event === 'step.failed').map((e) => e.error)).toEqual([
      expect.stringMatching(/interrupted/),
      expect.stringMatching(/interrupted/),
    ]);

    // The lock was released (a clean stop), status shows halted.
    expect(existsSync(join(dir, '.graywave/sigint/lock'))).toBe(false);
    const st = await cli(['status', file, '--json'], { cwd: dir });
    expect(st.code).toBe(0);
    const status = JSON.parse(st.stdout);
    expect(status.status).toBe('halted');
    expect(status.reason).toMatch(/interrupted/);

    // Resume completes; `before` ran once, `slow` was started twice (the interrupted attempt never got to its effect).
    writeFileSync(join(dir, 'go'), '');
    const res = await cli(['resume', file, '--yes', '--json'], { cwd: dir });
    expect(res.code, res.stderr).toBe(0);
    const done = JSON.parse((await cli(['status', file, '--json'], { cwd: dir })).stdout);
    expect(done.status).toBe('done');
    for (const h of ['h-01', 'h-02']) {
      expect(lines(join(dir, 'effects', `${h}.log`))).toEqual([`${h} before`, `${h} slow-start`, `${h} slow-start`, `${h} slow`, `${h} after`]);
    }
  }, 60_000);

  describe('a second SIGINT forces', () => {
    // A webhook that never answers keeps the first (clean) stop waiting for its delivery: the case where a
    // person presses Ctrl-C again.
    const hung: http.ServerResponse[] = [];
    const received: string[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(body);
        hung.push(res);
      });
    });
    afterAll(async () => {
      for (const res of hung) res.destroy();
      await new Promise((r) => server.close(r));
    });

    it('two SIGINTs: exit 130 promptly, while the clean stop still waits', async () => {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const dir = temp();
      mkdirSync(join(dir, 'effects'));
      const marker = `sleep 37.${process.pid}2`;
      const file = writePlaybook(dir, playbook(marker, `notify:\n  - { name: hook, webhook: "${url}", on: [halted], timeout: 20s }\n`));
      const child = startCli(['run', file, '--yes', '--json'], { cwd: dir });
      await until(() => alive(marker).length === 2, 'both sleeps running');
      child.kill('SIGINT');
      // The first stop got as far as announcing the halt, and now waits for the webhook.
      await until(() => received.some((b) => /halted/i.test(b)), 'the halted notification');
      expect(child.exitCode).toBeNull(); // (had the first stop not waited, the exit code below would be 1, not 130)
      const t0 = Date.now();
      child.kill('SIGINT');
      const r = await finished(child, 15_000);
      expect(r.code).toBe(130);
      expect(Date.now() - t0).toBeLessThan(10_000); // generous: it did not wait for the webhook (timeout 20 s)
      expect(alive(marker)).toEqual([]);
      // The halted record was written before the forced exit.
      const st = JSON.parse((await cli(['status', file, '--json'], { cwd: dir })).stdout);
      expect(st.status).toBe('halted');
    }, 60_000);
  });
});
