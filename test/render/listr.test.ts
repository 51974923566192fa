import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EngineEvent } from '../../src/engine/events.js';
import type { Plan } from '../../src/plan/build.js';
import { listrRenderer } from '../../src/render/listr.js';
import { jsonRenderer, plainRenderer } from '../../src/render/lines.js';

const plan: Plan = {
  release: 'r',
  version: '2',
  group: 'GREEN',
  planHash: 'x',
  waves: [
    { index: 1, hosts: ['h1'] },
    { index: 2, hosts: ['h2'] },
  ],
  steps: ['drain'],
};
const base = { release: 'r' };
const tick = () => new Promise((r) => setTimeout(r, 20));

/** Feeds events to the live view (listr2's JSON-lines test renderer) and returns what it printed, in order. */
async function view(rolling: boolean, events: EngineEvent[]): Promise<{ event: string; data: string; task: { title: string } }[]> {
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
  try {
    const r = listrRenderer(plan, () => undefined, { rolling, renderer: 'test' });
    for (const e of events) {
      r.sink(e);
      await tick();
    }
    await r.finish();
  } finally {
    spy.mockRestore();
  }
  return out
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

// A rolling release: h2 (wave 2) starts while h1 (wave 1) is still in flight.
const rollingEvents: EngineEvent[] = [
  { ...base, event: 'run.start', version: '2', hosts: 2, waves: 2, resumed: false },
  { ...base, event: 'wave.start', wave: 1, hosts: ['h1'] },
  { ...base, event: 'step.start', wave: 1, host: 'h1', step: 'drain', attempt: 1 },
  { ...base, event: 'wave.start', wave: 2, hosts: ['h2'] },
  { ...base, event: 'step.start', wave: 2, host: 'h2', step: 'drain', attempt: 1 },
  { ...base, event: 'host.done', wave: 1, host: 'h1', ms: 30 },
  { ...base, event: 'wave.done', wave: 1 },
  { ...base, event: 'host.done', wave: 2, host: 'h2', ms: 30 },
  { ...base, event: 'wave.done', wave: 2 },
  { ...base, event: 'run.done', waves: 2, hosts: 2, ms: 100 },
] as EngineEvent[];

afterEach(() => vi.restoreAllMocks());

describe('listr live view', () => {
  it('mode: rolling shows a host of the next wave as soon as it starts, while the previous wave is still in flight', async () => {
    const lines = await view(true, rollingEvents);
    const h2Drain = lines.findIndex((l) => l.event === 'TITLE' && l.data === 'h2 › drain');
    const h1Done = lines.findIndex((l) => l.event === 'STATE' && l.data === 'COMPLETED' && (l.task.title ?? '').startsWith('h1'));
    expect(h2Drain).toBeGreaterThanOrEqual(0);
    expect(h1Done).toBeGreaterThan(h2Drain);
    // h1 was not marked done by wave 2's start: it completes with its own title
    expect(lines[h1Done]!.task.title).toMatch(/^h1 done/);
  });

  it('lock-step waves open one after another', async () => {
    const lines = await view(false, rollingEvents);
    const w2Start = lines.findIndex((l) => l.event === 'STATE' && l.data === 'STARTED' && (l.task.title ?? '').startsWith('Wave 2'));
    const w1Done = lines.findIndex((l) => l.event === 'STATE' && l.data === 'COMPLETED' && (l.task.title ?? '').startsWith('Wave 1'));
    expect(w1Done).toBeGreaterThanOrEqual(0);
    expect(w2Start).toBeGreaterThan(w1Done);
  });
});

/** The view of a lock-step release with checks, a switchover and approvals (what a person sees, per event). */
async function viewOf(
  events: EngineEvent[],
  shape = { verify: ['smoke'], routing: [], approve: false },
  p: Plan = plan3,
): Promise<{ event: string; data: string; task: { title?: string } }[]> {
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
  const tail: string[] = [];
  try {
    const r = listrRenderer(p, (l) => void tail.push(l), { renderer: 'test', shape });
    for (const e of events) {
      r.sink(e);
      await tick();
    }
    await r.finish();
  } finally {
    spy.mockRestore();
  }
  return [
    ...out
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l)),
    ...tail.map((t) => ({ event: 'TAIL', data: t.trim(), task: {} })),
  ];
}
const plan3: Plan = {
  release: 'r',
  version: '2',
  group: 'GREEN',
  planHash: 'x',
  waves: [
    { index: 1, hosts: ['h1'] },
    { index: 2, hosts: ['h2', 'h3'] },
    { index: 3, hosts: ['h4'] },
  ],
  steps: ['deploy'],
  switchoverAfterWave: 2,
};
const at = (lines: { event: string; data: string }[], re: RegExp, event = 'TITLE') => lines.findIndex((l) => l.event === event && re.test(l.data));
const stateOf = (lines: { event: string; data: string; task: { title?: string } }[], title: RegExp) =>
  lines.filter((l) => l.event === 'STATE' && title.test(l.task.title ?? '')).map((l) => l.data);

describe('live view: release-level phases as they happen', () => {
  it('shows verify checks with their values and the switchover before the next wave starts; ends with the plain summary', async () => {
    const lines = await viewOf([
      { ...base, event: 'run.start', version: '2', hosts: 4, waves: 3, resumed: false },
      { ...base, event: 'wave.start', wave: 1, hosts: ['h1'] },
      { ...base, event: 'step.start', wave: 1, host: 'h1', step: 'deploy', attempt: 1 },
      { ...base, event: 'host.done', wave: 1, host: 'h1', ms: 30 },
      { ...base, event: 'wave.done', wave: 1, ms: 40, failed: [] },
      { ...base, event: 'verify.start', wave: 1, check: 'smoke' },
      { ...base, event: 'verify.done', wave: 1, check: 'smoke', observed: 'exit 0, 10/10 ok', ms: 5 },
      { ...base, event: 'wave.start', wave: 2, hosts: ['h2', 'h3'] },
      { ...base, event: 'step.start', wave: 2, host: 'h2', step: 'deploy', attempt: 1 },
      { ...base, event: 'step.start', wave: 2, host: 'h3', step: 'deploy', attempt: 1 },
      { ...base, event: 'host.done', wave: 2, host: 'h2', ms: 30 },
      { ...base, event: 'host.done', wave: 2, host: 'h3', ms: 30 },
      { ...base, event: 'wave.done', wave: 2, ms: 40, failed: [] },
      { ...base, event: 'verify.start', wave: 2, check: 'smoke' },
      { ...base, event: 'verify.done', wave: 2, check: 'smoke', observed: 'exit 0', ms: 5 },
      { ...base, event: 'switchover.start', afterWave: 2, greenPercent: 75 },
      { ...base, event: 'switchover.done', afterWave: 2, ms: 12 },
      { ...base, event: 'wave.start', wave: 3, hosts: ['h4'] },
      { ...base, event: 'step.start', wave: 3, host: 'h4', step: 'deploy', attempt: 1 },
      { ...base, event: 'host.done', wave: 3, host: 'h4', ms: 30 },
      { ...base, event: 'wave.done', wave: 3, ms: 40, failed: [] },
      { ...base, event: 'run.done', version: '2', hosts: 4, waves: 3, ms: 100, failed: [] },
    ] as EngineEvent[]);
    const verify1 = at(lines, /^verify smoke: ok \(exit 0, 10\/10 ok\)$/);
    const wave2 = lines.findIndex((l) => l.event === 'STATE' && l.data === 'STARTED' && /^Wave 2/.test(l.task.title ?? ''));
    expect(verify1).toBeGreaterThan(0);
    expect(wave2).toBeGreaterThan(verify1);
    const switchover = at(lines, /^switchover: GREEN carries 75% after wave 2$/);
    const wave3 = lines.findIndex((l) => l.event === 'STATE' && l.data === 'STARTED' && /^Wave 3/.test(l.task.title ?? ''));
    expect(switchover).toBeGreaterThan(wave2);
    expect(wave3).toBeGreaterThan(at(lines, /^switchover done/));
    expect(lines.at(-1)).toMatchObject({ event: 'TAIL', data: 'done: r 2 on 4 hosts in 3 waves (100ms)' });
  });

  it('--limit: hosts outside the limit show as pending (outside --limit), never done — a wave left out whole and the rest of a cut wave; the LIMITED line last', async () => {
    const lines = await viewOf([
      { ...base, event: 'run.start', version: '2', hosts: 4, waves: 3, resumed: false },
      // --limit h2,h4: wave 1 (h1) is left out whole; wave 2 runs h2 only (its wave.start names only h2).
      { ...base, event: 'wave.start', wave: 2, hosts: ['h2'] },
      { ...base, event: 'step.start', wave: 2, host: 'h2', step: 'deploy', attempt: 1 },
      { ...base, event: 'host.done', wave: 2, host: 'h2', ms: 30 },
      { ...base, event: 'wave.done', wave: 2, ms: 40, failed: [] },
      { ...base, event: 'wave.start', wave: 3, hosts: ['h4'] },
      { ...base, event: 'step.start', wave: 3, host: 'h4', step: 'deploy', attempt: 1 },
      { ...base, event: 'host.done', wave: 3, host: 'h4', ms: 30 },
      { ...base, event: 'wave.done', wave: 3, ms: 40, failed: [] },
      {
        ...base,
        event: 'run.limited',
        reason: '--limit: 2 host(s) done; 2 host(s) outside the limit still pending: h1, h3',
        done: 2,
        pending: 2,
        hint: 'graywave resume x.yaml runs the 2 pending hosts (h1, h3), then the checks of wave 1, 2 (--limit covered part of them)',
      },
    ] as EngineEvent[]);
    for (const h of [/^h1/, /^h3/]) {
      expect(stateOf(lines, h)).toContain('SKIPPED');
      expect(stateOf(lines, h)).not.toContain('COMPLETED');
    }
    expect(stateOf(lines, /^h2 done/)).toContain('COMPLETED');
    expect(stateOf(lines, /^h4 done/)).toContain('COMPLETED');
    const skips = lines.filter((l) => l.event === 'MESSAGE').map((l) => (l.data as unknown as { skip?: string }).skip);
    expect(skips).toContain('h1: pending (outside --limit)');
    expect(skips).toContain('h3: pending (outside --limit)');
    expect(
      lines
        .filter((l) => l.event === 'TAIL')
        .map((l) => l.data)
        .join('\n'),
    ).toBe(
      'LIMITED: 2 host(s) done; 2 host(s) outside the limit still pending: h1, h3\n  next: graywave resume x.yaml runs the 2 pending hosts (h1, h3), then the checks of wave 1, 2 (--limit covered part of them)',
    );
  });

  it('after a halt: hosts never started are skipped ("not started"), never failed; later waves skipped; the halt summary last', async () => {
    const lines = await viewOf([
      { ...base, event: 'run.start', version: '2', hosts: 4, waves: 3, resumed: false },
      { ...base, event: 'wave.start', wave: 1, hosts: ['h1'] },
      { ...base, event: 'step.start', wave: 1, host: 'h1', step: 'deploy', attempt: 1 },
      { ...base, event: 'host.done', wave: 1, host: 'h1', ms: 30 },
      { ...base, event: 'wave.done', wave: 1, ms: 40, failed: [] },
      { ...base, event: 'wave.start', wave: 2, hosts: ['h2', 'h3'] },
      { ...base, event: 'step.start', wave: 2, host: 'h2', step: 'deploy', attempt: 1 },
      { ...base, event: 'step.failed', wave: 2, host: 'h2', step: 'deploy', ms: 5, error: 'interrupted (Ctrl-C)' },
      { ...base, event: 'run.halted', reason: 'interrupted (Ctrl-C)', wave: 2, stillDrained: ['h2'], hint: 'graywave resume x.yaml' },
    ] as EngineEvent[]);
    expect(stateOf(lines, /^h2/)).toContain('FAILED');
    expect(stateOf(lines, /^h3/)).toContain('SKIPPED');
    expect(stateOf(lines, /^h3/)).not.toContain('FAILED');
    expect(stateOf(lines, /^Wave 3/)).toContain('SKIPPED');
    expect(stateOf(lines, /^h4/)).not.toContain('FAILED');
    expect(lines.some((l) => l.event === 'MESSAGE' && (l.data as unknown as { skip?: string }).skip === 'h3: not started')).toBe(true);
    expect(
      lines
        .filter((l) => l.event === 'TAIL')
        .map((l) => l.data)
        .join('\n'),
    ).toBe('HALTED: interrupted (Ctrl-C)\n  still drained: h2\n  next: graywave resume x.yaml');
  });

  it('an approval ends the section: prompt() runs after the view has drawn its last frame, the next wave in a new section', async () => {
    const out: string[] = [];
    const order: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
    try {
      const r = listrRenderer(plan3, () => undefined, { renderer: 'test', shape: { verify: [], routing: [], approve: true } });
      const feed = async (es: EngineEvent[]) => {
        for (const e of es) (r.sink(e), await tick());
      };
      await feed([
        { ...base, event: 'run.start', version: '2', hosts: 4, waves: 3, resumed: false },
        { ...base, event: 'wave.start', wave: 1, hosts: ['h1'] },
        { ...base, event: 'step.start', wave: 1, host: 'h1', step: 'deploy', attempt: 1 },
        { ...base, event: 'host.done', wave: 1, host: 'h1', ms: 30 },
        { ...base, event: 'wave.done', wave: 1, ms: 40, failed: [] },
        { ...base, event: 'wave.paused', wave: 1, reason: 'waiting for approval' },
      ] as EngineEvent[]);
      const answer = await r.prompt(async () => {
        order.push(
          `asked after ${
            out
              .join('')
              .split('\n')
              .filter((l) => l.includes('"COMPLETED"') && l.includes('Wave 1')).length
          } wave-1 completions`,
        );
        return true;
      });
      expect(answer).toBe(true);
      await feed([
        { ...base, event: 'wave.approved', wave: 1, by: 'me@here' },
        { ...base, event: 'wave.start', wave: 2, hosts: ['h2', 'h3'] },
      ] as EngineEvent[]);
      await feed([{ ...base, event: 'run.halted', reason: 'stop', wave: 2 }] as EngineEvent[]);
      await r.finish();
    } finally {
      spy.mockRestore();
    }
    expect(order).toEqual(['asked after 1 wave-1 completions']);
    const text = out.join('');
    expect(text).toMatch(/approval: wave 1 is done — waiting for your answer below/);
  });

  it('rollback: a section of its own, undo per host and step as it happens, newest wave first', async () => {
    const lines = await viewOf([
      { ...base, event: 'rollback.start', waves: [3, 2, 1], hosts: ['h4', 'h2', 'h1'] },
      { ...base, event: 'undo.start', wave: 3, host: 'h4', step: 'deploy' },
      { ...base, event: 'undo.done', wave: 3, host: 'h4', step: 'deploy', ms: 7 },
      { ...base, event: 'host.undone', wave: 3, host: 'h4', ok: true, ms: 8 },
      // The switchover is undone in its place: after the waves released after it, before its own wave.
      { ...base, event: 'undo.start', wave: 2, host: '_switchover', step: 'web' },
      { ...base, event: 'undo.done', wave: 2, host: '_switchover', step: 'web', ms: 3 },
      { ...base, event: 'undo.start', wave: 2, host: 'h2', step: 'deploy' },
      { ...base, event: 'undo.done', wave: 2, host: 'h2', step: 'deploy', ms: 7 },
      { ...base, event: 'host.undone', wave: 2, host: 'h2', ok: true, ms: 8 },
      { ...base, event: 'undo.start', wave: 1, host: 'h1', step: 'deploy' },
      { ...base, event: 'undo.failed', wave: 1, host: 'h1', step: 'deploy', error: 'boom' },
      { ...base, event: 'host.undone', wave: 1, host: 'h1', ok: false, ms: 8 },
      { ...base, event: 'rollback.done', hosts: ['h4', 'h2', 'h1'], failed: ['h1'], ms: 30 },
    ] as EngineEvent[]);
    const undoW2 = lines.findIndex((l) => l.event === 'STATE' && l.data === 'STARTED' && /^Undo wave 2/.test(l.task.title ?? ''));
    const undoW1 = lines.findIndex((l) => l.event === 'STATE' && l.data === 'STARTED' && /^Undo wave 1/.test(l.task.title ?? ''));
    expect(undoW2).toBeGreaterThanOrEqual(0);
    expect(undoW1).toBeGreaterThan(undoW2);
    expect(at(lines, /^h2 › undo deploy …$/)).toBeGreaterThan(undoW2);
    const undoW3 = lines.findIndex((l) => l.event === 'STATE' && l.data === 'STARTED' && /^Undo wave 3/.test(l.task.title ?? ''));
    expect(undoW3).toBeLessThan(undoW2);
    const sw = at(lines, /^switchover: undid web/);
    expect(sw).toBeGreaterThan(at(lines, /^h4 rolled back/));
    expect(sw).toBeLessThan(at(lines, /^h2 › undo deploy …$/));
    expect(stateOf(lines, /^h1/)).toContain('FAILED');
    expect(stateOf(lines, /^h2/)).toContain('COMPLETED');
    // The forward plan is not redrawn: no wave task ("Wave N (…)") at all.
    expect(lines.some((l) => /^Wave /.test(l.task.title ?? ''))).toBe(false);
    expect(lines.at(-1)).toMatchObject({ event: 'TAIL', data: 'rollback done in 30ms; failed: h1' });
  });
});

describe('live view of a release train: an app waiting for its after: apps', () => {
  const train: Plan = {
    release: 't',
    version: '1',
    group: 'GREEN',
    planHash: 'x',
    waves: [{ index: 1, hosts: ['account/a-01', 'order/o-01', 'order/o-02'] }],
    steps: [],
  };
  const tb = { release: 't' };
  const events = [
    { ...tb, event: 'run.start', version: '1', hosts: 3, waves: 1, resumed: false },
    { ...tb, event: 'wave.start', wave: 1, hosts: train.waves[0]!.hosts },
    { ...tb, event: 'app.waiting', wave: 1, app: 'order', after: ['account'] },
    { ...tb, event: 'step.start', wave: 1, host: 'account/a-01', step: 'drain', attempt: 1 },
    { ...tb, event: 'host.done', wave: 1, host: 'account/a-01', ms: 30 },
    { ...tb, event: 'step.start', wave: 1, host: 'order/o-01', step: 'drain', attempt: 1 },
    { ...tb, event: 'host.done', wave: 1, host: 'order/o-01', ms: 30 },
    { ...tb, event: 'step.start', wave: 1, host: 'order/o-02', step: 'drain', attempt: 1 },
    { ...tb, event: 'host.done', wave: 1, host: 'order/o-02', ms: 30 },
    { ...tb, event: 'wave.done', wave: 1, ms: 40, failed: [] },
    { ...tb, event: 'run.done', version: '1', hosts: 3, waves: 1, ms: 100, failed: [] },
  ] as EngineEvent[];

  it("each of the app's hosts says what it waits for until it starts; the account host never does", async () => {
    const lines = await viewOf(events, { verify: [], routing: [], approve: false }, train);
    const titles = lines.filter((l) => l.event === 'TITLE').map((l) => l.data);
    for (const h of ['order/o-01', 'order/o-02']) {
      const waiting = titles.indexOf(`${h} › waiting for account`);
      expect(waiting, titles.join('\n')).toBeGreaterThanOrEqual(0);
      expect(titles.indexOf(`${h} › drain`)).toBeGreaterThan(waiting);
    }
    expect(titles.some((t) => t.startsWith('account/a-01 › waiting'))).toBe(false);
    expect(stateOf(lines, /^order\/o-01/)).toContain('COMPLETED');
  });

  it('plain and JSON lines name the app and what it waits for', () => {
    const out: string[] = [];
    plainRenderer((l) => void out.push(l))(events[2]!);
    expect(out.join('')).toMatch(/^\S+Z wave 1 order waiting for account\n$/);
    const json: string[] = [];
    jsonRenderer((l) => void json.push(l))(events[2]!);
    expect(JSON.parse(json[0]!)).toMatchObject({ event: 'app.waiting', wave: 1, app: 'order', after: ['account'] });
  });
});
