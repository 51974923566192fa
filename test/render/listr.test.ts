import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EngineEvent } from '../../src/engine/events.js';
import type { Plan } from '../../src/plan/build.js';
import { listrRenderer } from '../../src/render/listr.js';

const plan: Plan = { release: 'r', version: '2', group: 'GREEN', planHash: 'x', waves: [{ index: 1, hosts: ['h1'] }, { index: 2, hosts: ['h2'] }], steps: ['drain'] };
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
  return out.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
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
    const h1Done = lines.findIndex((l) => l.event === 'STATE' && l.data === 'COMPLETED' && l.task.title.startsWith('h1'));
    expect(h2Drain).toBeGreaterThanOrEqual(0);
    expect(h1Done).toBeGreaterThan(h2Drain);
    // h1 was not marked done by wave 2's start: it completes with its own title
    expect(lines[h1Done]!.task.title).toMatch(/^h1 done/);
  });

  it('lock-step waves open one after another', async () => {
    const lines = await view(false, rollingEvents);
    const w2Start = lines.findIndex((l) => l.event === 'STATE' && l.data === 'STARTED' && l.task.title.startsWith('Wave 2'));
    const w1Done = lines.findIndex((l) => l.event === 'STATE' && l.data === 'COMPLETED' && l.task.title.startsWith('Wave 1'));
    expect(w1Done).toBeGreaterThanOrEqual(0);
    expect(w2Start).toBeGreaterThan(w1Done);
  });
});
