import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { buildPlan, planHash } from '../../src/plan/build.js';
import { hotfixWaves, labelWaves } from '../../src/plan/labels.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import type { Host } from '../../src/playbook/types.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-labels-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const h = (name: string, labels: Record<string, string>): Host => ({ name, address: '127.0.0.1', vars: {}, labels });

function write(text: string, name = 'p.yaml'): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

function loadErr(text: string): string {
  try {
    loadPlaybook(write(text));
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const fleet = (rows: [string, string, string][]) =>
  'hosts:\n' + rows.map(([n, set, zone]) => `  - { name: ${n}, address: 127.0.0.1, labels: { set: ${set}, zone: ${zone} } }`).join('\n') + '\n';
const head = 'name: r\nversion: 2.0.0\nsteps:\n  - run: "true"\n';

describe('labelWaves', () => {
  const hosts = [
    h('a1', { set: 's1', zone: 'a' }),
    h('b1', { set: 's2', zone: 'b' }),
    h('a2', { set: 's1', zone: 'a' }),
    h('b2', { set: 's2', zone: 'b' }),
    h('a3', { set: 's1', zone: 'b' }),
  ];

  it('one wave per set, in the given order, hosts in playbook order; order decides, not the host list', () => {
    expect(labelWaves(hosts, { by: 'set', order: ['s2', 's1'], size: { percent: 0.25 }, sizeGiven: false })).toEqual([
      ['b1', 'b2'],
      ['a1', 'a2', 'a3'],
    ]);
    expect(labelWaves(hosts, { by: 'set', size: { percent: 0.25 }, sizeGiven: false })).toEqual([
      ['a1', 'a2', 'a3'],
      ['b1', 'b2'],
    ]);
  });

  it('splits a set by size (relative to the set) and by maxPerZone, never mixing sets; the canary comes out of the first set', () => {
    expect(labelWaves(hosts, { by: 'set', order: ['s1', 's2'], size: { count: 2 }, sizeGiven: true })).toEqual([['a1', 'a2'], ['a3'], ['b1', 'b2']]);
    expect(labelWaves(hosts, { by: 'zone', maxPerZone: 1, size: { percent: 0.25 }, sizeGiven: false })).toEqual([['a1'], ['a2'], ['b1'], ['b2'], ['a3']]);
    expect(labelWaves(hosts, { by: 'set', order: ['s1', 's2'], canary: 1, size: { percent: 0.5 }, sizeGiven: true, maxPerZone: 1 })).toEqual([
      ['a1'],
      ['a2'],
      ['a3'],
      ['b1'],
      ['b2'],
    ]);
    expect(labelWaves(hosts, { by: 'set', order: ['s1', 's2'], canary: 1, size: { percent: 0.25 }, sizeGiven: false })).toEqual([
      ['a1'],
      ['a2', 'a3'],
      ['b1', 'b2'],
    ]);
  });

  it('hotfix: the canary, then everything else in one wave, in the normal order', () => {
    expect(
      hotfixWaves(
        [
          ['b1', 'b2'],
          ['a1', 'a2', 'a3'],
        ],
        undefined,
      ),
    ).toEqual([['b1'], ['b2', 'a1', 'a2', 'a3']]);
    expect(hotfixWaves([['x']], 2)).toEqual([['x']]);
  });
});

describe('label waves in playbooks', () => {
  const rows: [string, string, string][] = [
    ['h1', 'set10', 'a'],
    ['h2', 'set9', 'a'],
    ['h3', 'set10', 'b'],
    ['h4', 'set9', 'b'],
    ['h5', 'set8', 'a'],
    ['h6', 'set10', 'a'],
  ];

  it('by: set with order releases one set at a time; plan and hash follow the order', () => {
    const f = write(head + fleet(rows) + 'waves: { by: set, order: [set10, set9, set8] }\n');
    const plan = buildPlan(loadPlaybook(f));
    expect(plan.waves.map((w) => w.hosts)).toEqual([['h1', 'h3', 'h6'], ['h2', 'h4'], ['h5']]);
    const other = write(head + fleet(rows) + 'waves: { by: set, order: [set8, set9, set10] }\n', 'q.yaml');
    expect(buildPlan(loadPlaybook(other)).waves[0]!.hosts).toEqual(['h5']);
    expect(planHash(loadPlaybook(other))).not.toBe(plan.planHash);
  });

  it('by: zone with maxPerZone; mixed: sets split by size', () => {
    const z = buildPlan(loadPlaybook(write(head + fleet(rows) + 'waves: { by: zone, order: [b, a], maxPerZone: 2 }\n')));
    expect(z.waves.map((w) => w.hosts)).toEqual([
      ['h3', 'h4'],
      ['h1', 'h2'],
      ['h5', 'h6'],
    ]);
    const m = buildPlan(loadPlaybook(write(head + fleet(rows) + 'waves: { by: set, order: [set8, set9, set10], size: 50%, canary: 1 }\n')));
    expect(m.waves.map((w) => w.hosts)).toEqual([['h5'], ['h2'], ['h4'], ['h1', 'h3'], ['h6']]);
  });

  it('a host without the label and unknown or missing order entries are errors at their line:col', () => {
    const text = head + fleet(rows.slice(0, 2)) + '  - { name: h9, address: 127.0.0.1 }\nwaves:\n  by: set\n  order: [set10, set7]\n';
    const msg = loadErr(text);
    expect(msg).toMatch(/p\.yaml:8:5: host h9 has no label "set"/);
    expect(msg).toMatch(/p\.yaml:11:18: waves\.order: no host has set "set7"/);
    expect(msg).toMatch(/waves\.order does not list set set9/);
    expect(loadErr(head + fleet(rows) + 'waves: { order: [a] }\n')).toMatch(/waves\.order needs waves\.by/);
  });

  it('policy: hotfix needs a reason and plans a canary plus one wave; skipOnHotfix is accepted on gates', () => {
    expect(loadErr(head + fleet(rows) + 'policy: hotfix\n')).toMatch(/policy: hotfix needs a reason/);
    const pb = loadPlaybook(
      write(
        head +
          fleet(rows) +
          'policy: hotfix\nreason: CVE-2025-1 fix\nwaves: { by: set, order: [set8, set9, set10] }\nverify:\n  - { name: soak, run: "sleep 600", skipOnHotfix: true }\n  - { name: smoke, run: "true" }\n',
      ),
    );
    expect(pb.hotfix).toEqual({ reason: 'CVE-2025-1 fix' });
    expect(pb.verify.map((g) => [g.name, !!g.skipOnHotfix])).toEqual([
      ['soak', true],
      ['smoke', false],
    ]);
    const plan = buildPlan(pb);
    expect(plan.waves.map((w) => w.hosts)).toEqual([['h5'], ['h2', 'h4', 'h1', 'h3', 'h6']]);
    expect(plan.hotfix).toEqual({ reason: 'CVE-2025-1 fix' });
  });

  it('a plain playbook keeps its plan hash (no label/hotfix/routing material)', () => {
    const pb = loadPlaybook(write(head + fleet(rows)));
    expect(pb.routing).toBeUndefined();
    expect(planHash(pb)).toBe(planHash({ ...pb, waves: { ...pb.waves } }));
    expect(planHash({ ...pb, hotfix: { reason: 'x' } })).not.toBe(planHash(pb));
  });
});
