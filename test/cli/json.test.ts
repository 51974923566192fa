/**
 * `--json` on every command that prints a result (issue 16): one JSON object on stdout, nothing else there; and
 * `report`/`log` on a release that never ran are a clear error (exit 2), not `# Release ? ?`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, hostsYaml, requireBuiltCli, tempDirs, writePlaybook } from '../helpers/cli.js';

requireBuiltCli();
const temp = tempDirs('gw-json-');

const one = (stdout: string) => {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, any>;
};

describe('--json', () => {
  it('validate: ok and problems with FILE:LINE:COL parts; exit 0 / 2', async () => {
    const dir = temp();
    const good = writePlaybook(dir, `name: rel\nversion: "1"\nhosts:\n${hostsYaml(1)}\nsteps:\n  - name: a\n    run: "true"\n`, 'good.yaml');
    const bad = writePlaybook(dir, `name: rel\nversion: "1"\nhosts:\n${hostsYaml(1)}\nsteps:\n  - name: a\n    run: "{{nope}}"\n`, 'bad.yaml');
    const ok = await cli(['validate', good, '--json'], { cwd: dir });
    expect(ok.code).toBe(0);
    expect(one(ok.stdout)).toEqual({ ok: true, files: [{ file: good, ok: true, problems: [] }] });
    const r = await cli(['validate', good, bad, '--json'], { cwd: dir });
    expect(r.code).toBe(2);
    const v = one(r.stdout);
    expect(v.ok).toBe(false);
    expect(v.files[1]).toMatchObject({ file: bad, ok: false });
    expect(v.files[1].problems[0]).toMatchObject({ line: 7, message: expect.stringMatching(/nope/) });
  });

  it('approve, abort, promote, unlock each print one object', async () => {
    const dir = temp();
    const file = writePlaybook(
      dir,
      `name: rel\nversion: "1"\nhosts:\n${hostsYaml(2)}\nwaves: { size: 1, pause: approve }\nsteps:\n  - name: a\n    run: "true"\n`,
    );
    expect((await cli(['run', file, '--yes', '--json'], { cwd: dir })).code).toBe(4);
    const approve = await cli(['approve', file, '--yes', '--json'], { cwd: dir });
    expect(approve.code, approve.stderr).toBe(0);
    expect(one(approve.stdout)).toMatchObject({ approved: true, wave: 1, next: 2 });
    const promote = await cli(['promote', file, '--json', '--reason', 'r'], { cwd: dir });
    expect(promote.code, promote.stderr).toBe(0);
    expect(one(promote.stdout)).toMatchObject({ action: 'promote', mode: 'gate', message: expect.any(String) });
    const abort = await cli(['abort', file, '--json', '--reason', 'stop'], { cwd: dir });
    expect(abort.code, abort.stderr).toBe(0);
    expect(one(abort.stdout)).toMatchObject({ action: 'abort', message: expect.stringMatching(/halted/) });
    const unlock = await cli(['unlock', file, '--force', '--json'], { cwd: dir });
    expect(unlock.code).toBe(0);
    expect(one(unlock.stdout)).toEqual({ removed: null });
  });
});

describe('report and log on a release that never ran', () => {
  it('exit 2 with a clear message (no journal, or a journal with no release in it)', async () => {
    const dir = temp();
    const file = writePlaybook(dir, `name: never\nversion: "1"\nhosts:\n${hostsYaml(1)}\nsteps:\n  - name: a\n    run: "true"\n`);
    for (const cmd of ['report', 'log']) {
      const r = await cli([cmd, file], { cwd: dir });
      expect(r.code, cmd).toBe(2);
      expect(r.stderr).toMatch(/has not run/);
      expect(r.stdout).not.toMatch(/Release \?/);
    }
    // An empty journal (as a lock-only command can leave behind).
    mkdirSync(join(dir, '.graywave/never'), { recursive: true });
    writeFileSync(join(dir, '.graywave/never/journal.jsonl'), '');
    const r = await cli(['report', file], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has not run/);
    expect(r.stdout).not.toMatch(/# Release \? \?/);
  });
});
