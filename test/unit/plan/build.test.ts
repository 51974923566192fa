import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPlan, describeStep, waveSizes } from '../../../src/plan/build.js';
import { loadPlaybook } from '../../../src/playbook/load.js';

const pct = (p: number) => ({ percent: p / 100 });

/** Invariants every split must keep, whatever the numbers. */
function checkSplit(total: number, spec: Parameters<typeof waveSizes>[1], sizes: number[]) {
  expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
  expect(sizes.every((n) => n >= 1)).toBe(true);
  const body = spec.canary ? sizes.slice(1) : sizes;
  if (spec.canary) expect(sizes[0]).toBe(Math.min(spec.canary, total));
  // Every wave after the canary has the same size except a smaller last one.
  for (const n of body.slice(0, -1)) expect(n).toBe(body[0]);
  if (body.length) expect(body.at(-1)!).toBeLessThanOrEqual(body[0]!);
}

describe('waveSizes', () => {
  it('12 hosts, canary 1, 25% → 1, 3, 3, 3, 2 (the spec example)', () => {
    expect(waveSizes(12, { canary: 1, size: pct(25) })).toEqual([1, 3, 3, 3, 2]);
  });
  it.each([
    [1, [1], [1]],
    [2, [1, 1], [1, 1]],
    [3, [1, 1, 1], [1, 1, 1]],
    [7, [1, 2, 2, 2], [2, 2, 2, 1]],
    [12, [1, 3, 3, 3, 2], [3, 3, 3, 3]],
    [100, [1, 25, 25, 25, 24], [25, 25, 25, 25]],
    [1000, [1, 250, 250, 250, 249], [250, 250, 250, 250]],
  ])('%i hosts at 25%%: with canary 1 → %j, without → %j', (n, withCanary, without) => {
    expect(waveSizes(n, { canary: 1, size: pct(25) })).toEqual(withCanary);
    expect(waveSizes(n, { size: pct(25) })).toEqual(without);
    checkSplit(n, { canary: 1, size: pct(25) }, waveSizes(n, { canary: 1, size: pct(25) }));
  });
  it('integer sizes and canaries', () => {
    expect(waveSizes(12, { canary: 2, size: { count: 5 } })).toEqual([2, 5, 5]);
    expect(waveSizes(7, { size: { count: 100 } })).toEqual([7]);
    expect(waveSizes(7, { size: { count: 1 } })).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(waveSizes(5, { canary: 3, size: { count: 1 } })).toEqual([3, 1, 1]);
  });
  it('edge cases: float error, 100%, tiny percentages, zero hosts', () => {
    expect(waveSizes(30, { size: pct(10) })).toEqual(Array(10).fill(3)); // 0.1 × 30 is 3.0000000000000004
    expect(waveSizes(100, { size: pct(7) }).slice(0, 3)).toEqual([7, 7, 7]);
    expect(waveSizes(9, { size: pct(100) })).toEqual([9]);
    expect(waveSizes(9, { canary: 1, size: pct(100) })).toEqual([1, 8]);
    expect(waveSizes(1000, { size: pct(0.01) })).toEqual(Array(1000).fill(1));
    expect(waveSizes(0, { canary: 1, size: pct(25) })).toEqual([]);
  });
  it('keeps its invariants over many combinations', () => {
    for (const n of [1, 2, 3, 5, 7, 12, 33, 100, 257, 1000]) {
      for (const canary of [undefined, 1, 2]) {
        for (const size of [pct(1), pct(10), pct(25), pct(33.3), pct(50), pct(100), { count: 1 }, { count: 4 }, { count: 50 }]) {
          checkSplit(n, { canary, size }, waveSizes(n, { canary, size }));
        }
      }
    }
  });
});

describe('buildPlan', () => {
  it('keeps playbook order, names steps, places the switchover, and hashes what matters', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-plan-'));
    const names = ['zeta', 'alpha', 'mid-3', 'b', 'c', 'a', 'x9', 'x1', 'k', 'j', 'i', 'h'];
    const yaml = (version: string, extra = '') =>
      `name: shop\nversion: "${version}"\nhosts:\n${names.map((n, i) => `  - { name: ${n}, address: 10.0.0.${i + 1} }`).join('\n')}\nwaves: { canary: 1, size: 25% }\nsteps:\n  - { name: stop, run: "true" }\n  - { name: start, run: "true" }\nswitchover: { at: 50%, steps: [ { name: web, run: "true" } ] }\n${extra}`;
    const file = join(dir, 'pb.yaml');
    writeFileSync(file, yaml('1.0'));
    const plan = buildPlan(loadPlaybook(file));
    expect(plan.waves.map((w) => w.hosts)).toEqual([['zeta'], ['alpha', 'mid-3', 'b'], ['c', 'a', 'x9'], ['x1', 'k', 'j'], ['i', 'h']]);
    expect(plan.waves.map((w) => w.index)).toEqual([1, 2, 3, 4, 5]);
    expect(plan.steps).toEqual(['stop', 'start']);
    expect(plan.switchoverAfterWave).toBe(3); // 1+3+3 = 7 of 12 ≥ 50%
    const h1 = plan.planHash;
    expect(buildPlan(loadPlaybook(file)).planHash).toBe(h1);
    writeFileSync(file, yaml('1.1'));
    expect(buildPlan(loadPlaybook(file)).planHash).not.toBe(h1);
  });

  it('describes a relabel without group: as the release group, rendered', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-plan-'));
    const file = join(dir, 'pb.yaml');
    writeFileSync(
      file,
      'name: shop\nversion: "1.0"\ngroup: CANARY\nhosts: [ { name: a, address: 10.0.0.1 } ]\nproviders: { z: { type: zookeeper, connect: "127.0.0.1:2181", path: "/x/{{host.name}}" } }\nsteps:\n  - relabel: { provider: z }\n  - { name: blue, relabel: { provider: z, group: BLUE } }\n',
    );
    const pb = loadPlaybook(file);
    expect(pb.steps.map((s) => describeStep(pb, s, pb.hosts[0]!, 1))).toEqual([
      'relabel the host into group CANARY in z',
      'relabel the host into group BLUE in z',
    ]);
  });
});
