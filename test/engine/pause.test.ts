/**
 * `pause: { afterCanary: approve, between: … }`: a person's go only after the canary wave, a wait (or nothing)
 * between the other waves; the older `pause:` forms keep applying after every wave.
 */
import { describe, expect, it } from 'vitest';
import { approveRelease, resumeRelease, runRelease } from '../../src/app/run.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { hostsYaml, tempDirs } from '../helpers/cli.js';
import { effectsRelease } from '../helpers/fixtures.js';

const temp = tempDirs('gw-pause-');

/** fixtures/playbooks/effects-one-step.yaml: one step that appends "<host>" to effects.log. */
function setup(waves: string) {
  return effectsRelease(temp(), 'effects-one-step.yaml', { HOSTS: hostsYaml(4), WAVES: waves });
}

describe('pause: { afterCanary, between }', () => {
  it('approval after the canary only; then the other waves follow with the `between` wait', async () => {
    const t = setup('{ canary: 1, size: 1, concurrency: 1, pause: { afterCanary: approve, between: 50ms } }');
    expect(await runRelease(t.req)).toBe(4);
    expect(t.effects()).toEqual(['h-01']);
    expect(await approveRelease({ file: t.file, yes: true })).toEqual({ code: 0, wave: 1 });
    expect(await resumeRelease(t.req)).toBe(0);
    expect(t.effects()).toEqual(['h-01', 'h-02', 'h-03', 'h-04']);
    const paused = t.events.filter((e) => e.event === 'wave.paused') as Extract<EngineEvent, { event: 'wave.paused' }>[];
    expect(paused.map((e) => [e.wave, e.reason])).toEqual([
      [2, 'pause 50ms'],
      [3, 'pause 50ms'],
    ]);
    expect(t.events.filter((e) => e.event === 'run.paused').length).toBe(1);
  });

  it('without `between`, nothing waits between the later waves', async () => {
    const t = setup('{ canary: 1, size: 2, pause: { afterCanary: approve } }');
    expect(await runRelease(t.req)).toBe(4);
    await approveRelease({ file: t.file, yes: true });
    const before = t.events.length;
    expect(await resumeRelease(t.req)).toBe(0);
    expect(t.events.slice(before).some((e) => e.event === 'wave.paused' || e.event === 'run.paused')).toBe(false);
  });

  it('the playbook keeps both values; afterCanary needs a canary', () => {
    const t = setup('{ canary: 1, pause: { afterCanary: approve, between: 5m } }');
    expect(loadPlaybook(t.file).waves).toMatchObject({ pause: { kind: 'duration', ms: 300_000 }, afterCanary: { kind: 'approve' } });
    const bad = setup('{ pause: { afterCanary: approve } }');
    expect(() => loadPlaybook(bad.file)).toThrow(/:8:\d+: waves\.pause\.afterCanary needs a canary wave \(waves\.canary: 1\)/);
    const typo = setup('{ canary: 1, pause: { afterCanry: approve } }');
    expect(() => loadPlaybook(typo.file)).toThrow(/unknown key "afterCanry" in waves\.pause \(did you mean "afterCanary"\?\)/);
  });
});
