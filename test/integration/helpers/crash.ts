import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { JournalRecord } from '../../../src/journal/records.js';

type StepRec = Extract<JournalRecord, { type: 'step' }>;

/**
 * After a kill and a resume: each host's effects file (`<effectsDir>/<host>.log`, one line per step command that
 * ran) must show every step exactly once, except a step the journal had `started` but not `done` when the process
 * died: its command may or may not have had its effect, so it may have run twice — and at most one such step per
 * host. `before` is the journal's step records as they were before the resume. Returns how many steps repeated.
 */
export function expectEachStepOnce(opts: {
  why: string;
  hosts: readonly string[];
  steps: readonly string[];
  effectsDir: string;
  before: JournalRecord[];
  /** The exact line a host's step writes. */
  line: (host: string, step: string, index: number) => string;
  /** Checked on every line of the host's file (e.g. it came from the host's own address). */
  eachLine?: (line: string, host: string, index: number) => void;
}): number {
  const steps = opts.before.filter((r): r is StepRec => r.type === 'step');
  const phaseOf = (h: string, s: string) => steps.filter((r) => r.host === h && r.step === s).map((r) => r.phase);
  let total = 0;
  for (const [i, h] of opts.hosts.entries()) {
    const lines = readFileSync(join(opts.effectsDir, `${h}.log`), 'utf8')
      .trim()
      .split('\n');
    for (const l of lines) opts.eachLine?.(l, h, i);
    let repeats = 0;
    for (const s of opts.steps) {
      const count = lines.filter((l) => l === opts.line(h, s, i)).length;
      const phases = phaseOf(h, s);
      const what = `${opts.why}: ${h} ${s} ran ${count}× (journal before resume: ${phases.join(',') || 'nothing'})`;
      if (phases.includes('done') || phases.length === 0) expect(count, what).toBe(1);
      else {
        // In flight when killed: its command may or may not have had its effect.
        expect(phases.at(-1), what).toBe('started');
        expect([1, 2], what).toContain(count);
        if (count === 2) repeats++;
      }
    }
    expect(repeats, `${opts.why}: ${h}`).toBeLessThanOrEqual(1);
    expect(lines.length, `${opts.why}: ${h}`).toBe(opts.steps.length + repeats);
    total += repeats;
  }
  return total;
}

/** mulberry32: a small seeded PRNG, so a failing point can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lines in a file (0 when it does not exist yet). */
export function lineCount(path: string): number {
  if (!existsSync(path)) return 0;
  return readFileSync(path, 'utf8').split('\n').length - 1;
}
