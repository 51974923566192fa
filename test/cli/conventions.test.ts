/**
 * CLI conventions through the built binary: --limit (against the journal: the rest stays pending, status says
 * so, resume finishes), --set for CI, --dry-run = plan, a done release is not run again without --again, and
 * completion scripts generated from the program (bash and zsh check their syntax with `-n`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, requireBuiltCli, tempDirs } from '../helpers/cli.js';
import { effectsRelease } from '../helpers/fixtures.js';

requireBuiltCli();
const temp = tempDirs('gw-conv-');

/** fixtures/playbooks/effects-zones.yaml: four hosts in zones a and b; s1 appends "<host> <version>" to effects.log. */
function setup(opts: { undo?: boolean; extra?: string } = {}) {
  return effectsRelease(temp(), 'effects-zones.yaml', { UNDO: opts.undo ? '' : '# ', EXTRA: opts.extra ?? '' });
}

/** A check after each wave. */
const SMOKE = 'verify:\n  - name: smoke\n    run: "echo smoke {{wave}} >> effects.log"\n';

describe('--limit', () => {
  it('runs only the chosen hosts (name, label=value); the release is LIMITED, not halted: status and the end-of-run message say what is done, what is pending and how to continue; resume finishes', async () => {
    // A check after each wave, so that the wave --limit cuts through (wave 2: app-02 pending, app-03 done) shows its checks still to run.
    const t = setup({ extra: SMOKE });
    const r = await cli(['run', 'pb.yaml', '--yes', '--plain', '--limit', 'app-01,zone=b'], { cwd: t.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('HALTED');
    expect(r.stdout).toMatch(
      / LIMITED: 3 host\(s\) done; 1 host\(s\) outside the limit still pending: app-02\n {2}next: graywave resume pb\.yaml runs the 1 pending host \(app-02\), then the checks of wave 2 \(--limit covered part of it\)\n/,
    );
    // Waves 1 and 3 are whole: their checks ran; wave 2's did not.
    expect(t.effects().sort()).toEqual(['app-01 1.0', 'app-03 1.0', 'app-04 1.0', 'smoke 1', 'smoke 3']);
    const st = JSON.parse((await cli(['status', 'pb.yaml', '--json'], { cwd: t.dir })).stdout);
    expect(st.status).toBe('limited');
    expect(st.reason).toBe('--limit: 3 host(s) done; 1 host(s) outside the limit still pending: app-02');
    expect(st.limited).toEqual({
      done: ['app-01', 'app-03', 'app-04'],
      pending: ['app-02'],
      partialWaves: [{ wave: 2, done: ['app-03'], pending: ['app-02'] }],
      checks: ['smoke'],
      routing: false,
      next: 'graywave resume pb.yaml',
    });
    expect(st.waves.map((w: { status: string }) => w.status)).toEqual(['done', 'limited', 'done']);
    const hosts = Object.fromEntries(st.waves.flatMap((w: { hosts: { host: string; status: string }[] }) => w.hosts.map((h) => [h.host, h.status])));
    expect(hosts).toEqual({ 'app-01': 'done', 'app-02': 'pending', 'app-03': 'done', 'app-04': 'done' });
    const text = (await cli(['status', 'pb.yaml'], { cwd: t.dir })).stdout;
    expect(text).toContain(
      [
        'lim 1.0: limited — --limit: 3 host(s) done; 1 host(s) outside the limit still pending: app-02',
        'LIMITED: --limit done on 3 of 4 hosts (app-01, app-03, app-04); 1 pending: app-02',
        '  wave 2: 1 of 2 hosts done, app-02 pending; its checks (smoke) still to run',
        '  next: graywave resume pb.yaml runs the 1 pending host (app-02), then the checks of wave 2 (--limit covered part of it)',
        'wave 1: done',
      ].join('\n'),
    );
    expect(text).toContain('wave 2: limited\n');
    expect(text).not.toMatch(/halted/i);
    // The report: status limited, and a limited run is not listed as a failure.
    const report = JSON.parse((await cli(['report', 'pb.yaml', '--json'], { cwd: t.dir })).stdout);
    expect(report.status).toBe('limited');
    expect(report.failures).toEqual([]);
    expect((await cli(['resume', 'pb.yaml', '--yes', '--plain'], { cwd: t.dir })).code).toBe(0);
    expect(t.effects().sort()).toEqual(['app-01 1.0', 'app-02 1.0', 'app-03 1.0', 'app-04 1.0', 'smoke 1', 'smoke 2', 'smoke 3']);
    const end = JSON.parse((await cli(['status', 'pb.yaml', '--json'], { cwd: t.dir })).stdout);
    expect(end.status).toBe('done');
    expect(end.limited).toBeUndefined();
  });

  it("a later --limit that completes a cut wave runs that wave's checks, exactly once, before the release is done", async () => {
    const t = setup({ extra: SMOKE });
    expect((await cli(['run', 'pb.yaml', '--yes', '--plain', '--limit', 'app-01,zone=b'], { cwd: t.dir })).code).toBe(0);
    expect(t.effects().filter((l) => l.startsWith('smoke'))).toEqual(['smoke 1', 'smoke 3']);
    // The second --limit run reaches the last host of wave 2: the wave takes the full path (its checks run), and
    // with every host done the release is done (not limited).
    const r = await cli(['resume', 'pb.yaml', '--yes', '--plain', '--limit', 'app-02'], { cwd: t.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ done: lim 1\.0 on 4 hosts in 3 waves/);
    expect(r.stdout).not.toContain('LIMITED');
    expect(t.effects().filter((l) => l.startsWith('smoke'))).toEqual(['smoke 1', 'smoke 3', 'smoke 2']);
    expect(JSON.parse((await cli(['status', 'pb.yaml', '--json'], { cwd: t.dir })).stdout).status).toBe('done');
  });

  it('--json: the run ends with one run.limited line (no run.halted); status --wait exits 0 on a limited release', async () => {
    const t = setup();
    const r = await cli(['run', 'pb.yaml', '--yes', '--json', '--limit', 'app-01'], { cwd: t.dir });
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string });
    expect(events.some((e) => e.event === 'run.halted')).toBe(false);
    expect(events.at(-1)).toEqual({
      ts: expect.any(String),
      event: 'run.limited',
      release: 'lim',
      reason: '--limit: 1 host(s) done; 3 host(s) outside the limit still pending: app-02, app-03, app-04',
      done: 1,
      pending: 3,
      hint: 'graywave resume pb.yaml runs the 3 pending hosts (app-02, app-03, app-04)',
    });
    const wait = await cli(['status', 'pb.yaml', '--wait', '--timeout', '5s'], { cwd: t.dir });
    expect(wait.code).toBe(0);
    expect(wait.stdout).toMatch(/^lim 1\.0: limited — /);
  });

  it('a pattern; an entry that matches nothing is a usage error and nothing runs', async () => {
    const t = setup();
    const bad = await cli(['run', 'pb.yaml', '--yes', '--limit', 'app-1'], { cwd: t.dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('graywave: --limit app-1: no host of the playbook matches (did you mean app-01?)');
    expect(existsSync(join(t.dir, '.graywave'))).toBe(false);
    const plan = JSON.parse((await cli(['plan', 'pb.yaml', '--json', '--limit', 'app-0[!]*'.replace('[!]', '')], { cwd: t.dir })).stdout);
    expect(plan.limit).toEqual(['app-01', 'app-02', 'app-03', 'app-04']);
    expect((await cli(['plan', 'pb.yaml', '--limit', 'app-0?,zone=a'], { cwd: t.dir })).stdout).toMatch(
      /^--limit: only app-01, app-02, app-03, app-04 \(4 of 4 hosts\)/,
    );
  });

  it('rollback --limit undoes only the chosen hosts', async () => {
    const t = setup({ undo: true });
    expect((await cli(['run', 'pb.yaml', '--yes', '--plain'], { cwd: t.dir })).code).toBe(0);
    const r = await cli(['rollback', 'pb.yaml', '--yes', '--plain', '--limit', 'app-03'], { cwd: t.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(t.effects().filter((l) => l.startsWith('undo'))).toEqual(['undo app-03']);
  });
});

describe('--set, --dry-run, --again', () => {
  it('--set version=… overrides the playbook (kept as text: 3.10 stays 3.10); an unknown key is a usage error', async () => {
    const t = setup();
    const plan = JSON.parse((await cli(['plan', 'pb.yaml', '--json', '--set', 'version=3.10'], { cwd: t.dir })).stdout);
    expect(plan.version).toBe('3.10');
    expect(plan.hosts['app-01'][0].command).toBe('echo app-01 3.10 >> effects.log');
    const bad = await cli(['plan', 'pb.yaml', '--set', 'verison=2'], { cwd: t.dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('graywave: --set verison: unknown key "verison" (did you mean "version"?)');
    const canary = JSON.parse((await cli(['plan', 'pb.yaml', '--json', '--set', 'waves.canary=2'], { cwd: t.dir })).stdout);
    expect(canary.waves[0].hosts).toEqual(['app-01', 'app-02']);
  });

  it('run --dry-run prints exactly what plan prints and changes nothing', async () => {
    const t = setup();
    const dry = await cli(['run', 'pb.yaml', '--dry-run'], { cwd: t.dir });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe((await cli(['plan', 'pb.yaml'], { cwd: t.dir })).stdout);
    expect(existsSync(join(t.dir, '.graywave'))).toBe(false);
    expect(existsSync(join(t.dir, 'effects.log'))).toBe(false);
  });

  it('a release whose journal says done is refused off a terminal (exit 2) unless --again', async () => {
    const t = setup();
    expect((await cli(['run', 'pb.yaml', '--yes'], { cwd: t.dir })).code).toBe(0);
    const again = await cli(['run', 'pb.yaml', '--yes'], { cwd: t.dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('graywave: release lim 1.0 is already done (its journal says so): not running it again');
    expect(t.effects().length).toBe(4);
    expect((await cli(['run', 'pb.yaml', '--yes', '--again'], { cwd: t.dir })).code).toBe(0);
    expect(t.effects().length).toBe(8);
    // A new version is a new release: no question.
    expect((await cli(['run', 'pb.yaml', '--yes', '--set', 'version=1.1'], { cwd: t.dir })).code).toBe(0);
    expect(t.effects().filter((l) => l.endsWith('1.1')).length).toBe(4);
  });
});

describe('completion', () => {
  it('bash, zsh and fish scripts list every command and its options; bash -n and zsh -n accept them', async () => {
    const dir = temp();
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await cli(['completion', shell]);
      expect(r.code, r.stderr).toBe(0);
      for (const word of ['validate', 'plan', 'run', 'resume', 'rollback', 'status', 'completion']) expect(r.stdout, `${shell}: ${word}`).toContain(word);
      for (const opt of ['limit', 'dry-run', 'again', 'markdown']) expect(r.stdout, `${shell}: ${opt}`).toContain(shell === 'fish' ? `-l ${opt}` : `--${opt}`);
      const file = join(dir, `graywave.${shell}`);
      writeFileSync(file, r.stdout);
      if (shell !== 'fish') execFileSync(shell, ['-n', file]);
    }
    expect((await cli(['completion', 'tcsh'])).code).toBe(2);
  });

  it('bash completes commands and options for real', () => {
    const script = execFileSync(process.execPath, [join(import.meta.dirname, '../../bin/graywave.js'), 'completion', 'bash'], { encoding: 'utf8' });
    const out = execFileSync(
      'bash',
      [
        '-c',
        `${script}\nCOMP_WORDS=(graywave ro); COMP_CWORD=1; _graywave; echo "\${COMPREPLY[@]}"; COMP_WORDS=(graywave run --li); COMP_CWORD=2; _graywave; echo "\${COMPREPLY[@]}"`,
      ],
      { encoding: 'utf8' },
    );
    expect(out.split('\n').slice(0, 2)).toEqual(['rollback', '--limit']);
  });
});
