/**
 * The restore step end to end (in process, local transport) against the Nacos-shaped registry in Nacos 2.x mode:
 * a host counts as done only when the registry reads it back as serving; a warm-up ramp is journalled per step,
 * stops at a failing `watch:` check (the host is drained again and fails), and resume continues the ramp.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resumeRelease, rollbackRelease, runRelease } from '../../src/app/run.js';
import { releaseStatus } from '../../src/app/status.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { statusText } from '../../src/render/plan.js';
import { startRegistry, type Registry } from '../../src/sandbox/registry.js';
import { tempDirs } from '../helpers/cli.js';

const temp = tempDirs('gw-restore-');
let srv: Awaited<ReturnType<typeof startRegistry>>;
let reg: Registry;
beforeAll(async () => {
  srv = await startRegistry({ nacos2: true });
  reg = srv.registry;
});
afterAll(async () => srv?.close());

const KEY = (ip: string) => `public|DEFAULT_GROUP@@order-service|${ip}#8080#DEFAULT`;
function register(ip: string, weight = 4) {
  reg.add({ service: 'DEFAULT_GROUP@@order-service', ip, port: 8080, weight, metadata: { version: '1.0' } });
}
const weightOf = (ip: string) => reg.snapshot('order-service').find((i) => i.ip === ip)?.effWeight;
/** The weights graywave wrote for one instance, in order. */
const writes = (ip: string) => reg.requests.filter((r) => r.method === 'PUT' && r.params.ip === ip).map((r) => Number(r.params.weight));

function setup(ip: string, steps: string, extra = '') {
  const dir = temp();
  const file = join(dir, 'pb.yaml');
  writeFileSync(
    file,
    `name: rs
version: "2.0"
hosts:
  - { name: h-01, address: ${ip} }
waves: { size: 1 }
providers:
  reg: { type: nacos, url: "${srv.url}", services: [order-service], mode: weight, port: 8080 }
steps:
  - drain: reg
${steps}
${extra}
`,
  );
  const events: EngineEvent[] = [];
  return { dir, file, events, req: { file, yes: true, output: 'silent' as const, onEvent: (e: EngineEvent) => events.push(e) } };
}

describe('restore step: done only when serving', () => {
  it('an instance that never registers again fails the host with "restored in reg but not serving", and status lists it under its own heading', async () => {
    register('10.0.1.1');
    // The "deploy" takes the instance away for good (the new version never registers).
    const t = setup(
      '10.0.1.1',
      `  - name: deploy
    run: curl -fsS -X DELETE "${srv.url}/nacos/v1/ns/instance?serviceName=order-service&ip=10.0.1.1&port=8080" >/dev/null
  - restore: { provider: reg, restoreTimeout: 1500ms }`,
    );
    expect(await runRelease(t.req)).toBe(1);
    const failed = t.events.find((e) => e.event === 'step.failed') as Extract<EngineEvent, { event: 'step.failed' }>;
    expect(failed).toMatchObject({ host: 'h-01', step: 'restore:reg' });
    expect(failed.error).toMatch(
      /^restored in reg but not serving: nacos: cannot restore order-service 10\.0\.1\.1:8080: instance is not registered \(yet\) \(waited 1\.5s\)$/,
    );
    const st = await releaseStatus(t.file);
    expect(st.notServing).toEqual([{ host: 'h-01', step: 'restore:reg', error: failed.error }]);
    expect(statusText(st)).toMatch(/restored but NOT SERVING \(1\):\n.*h-01 +restore:reg: restored in reg but not serving: nacos: cannot restore/);

    // It registers again, but at weight 0 (Nacos 2.x keeps the API-set weight): resume restores the weight and confirms it.
    register('10.0.1.1', 1);
    reg.instances.get(KEY('10.0.1.1'))!.override = { weight: 0, enabled: true, metadata: { version: '1.0' } };
    expect(await resumeRelease(t.req)).toBe(0);
    expect(weightOf('10.0.1.1')).toBe(4);
    expect((await releaseStatus(t.file)).notServing).toEqual([]);
  });

  it('an instance that comes back unhealthy is not serving: the host fails with what the registry shows', async () => {
    register('10.0.1.2');
    // The new version registers again but fails its health check (Nacos marks it healthy=false).
    const t = setup(
      '10.0.1.2',
      `  - name: deploy
    run: curl -fsS -X POST "${srv.url}/nacos/v1/ns/instance?serviceName=order-service&ip=10.0.1.2&port=8080&weight=1&healthy=false" >/dev/null
  - restore: { provider: reg }`,
      'restoreTimeout: 1200ms',
    );
    expect(await runRelease(t.req)).toBe(1);
    const failed = t.events.find((e) => e.event === 'step.failed') as Extract<EngineEvent, { event: 'step.failed' }>;
    expect(failed.error).toBe('restored in reg but not serving: order-service 10.0.1.2:8080 unhealthy (waited 1.2s)');
    expect(weightOf('10.0.1.2')).toBe(4);
    expect(t.events.some((e) => e.event === 'step.progress' && /not serving yet/.test(e.observed))).toBe(true);
  });
});

describe('warm-up', () => {
  const counter = `n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; echo "eval $n"; [ ! -e bad-$n ]`;

  it('ramps 25% → 50% → restore, journalled per step; a failing watch check drains the host again and fails it; resume continues the ramp; rollback drains', async () => {
    register('10.0.2.1');
    const t = setup(
      '10.0.2.1',
      `  - restore: { provider: reg, warmup: { weights: [25, 50, 100], every: 200ms } }`,
      `watch:
  - name: errors
    run: '${counter}'
    interval: 1h`,
    );
    writeFileSync(join(t.dir, 'bad-2'), '');
    reg.requests.length = 0;
    expect(await runRelease(t.req)).toBe(1);
    // drain 0, ramp 1 (25% of 4), ramp 2 (50%), watch fails after it: drained again (0).
    expect(writes('10.0.2.1')).toEqual([0, 1, 2, 0]);
    expect(weightOf('10.0.2.1')).toBe(0);
    const failed = t.events.find((e) => e.event === 'step.failed') as Extract<EngineEvent, { event: 'step.failed' }>;
    expect(failed.error).toMatch(/^warm-up in reg stopped at 50%: watch errors: .*; the host was drained again$/);
    const journal = readFileSync(join(t.dir, '.graywave/rs/journal.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const did = journal.filter((r) => r.type === 'step' && r.step === 'restore:reg' && r.phase === 'did').map((r) => r.data);
    expect(did).toEqual([
      { warmup: 0, percent: 25 },
      { warmup: 1, percent: 50 },
    ]);
    expect(journal.filter((r) => r.type === 'gate' && r.check === 'errors').map((r) => r.ok)).toEqual([true, false]);
    expect((await releaseStatus(t.file)).notServing).toMatchObject([{ host: 'h-01', step: 'restore:reg' }]);

    // Resume: the ramp continues at the step it stopped at (50%), not from the start, then the full restore.
    reg.requests.length = 0;
    expect(await resumeRelease(t.req)).toBe(0);
    expect(writes('10.0.2.1')).toEqual([2, 4]);
    expect(weightOf('10.0.2.1')).toBe(4);

    // Rollback: the restore is undone by draining again, then the drain by restoring: back where it started.
    reg.requests.length = 0;
    expect(await rollbackRelease({ ...t.req, all: true })).toBe(0);
    expect(writes('10.0.2.1')).toEqual([0, 4]);
    expect(existsSync(join(t.dir, 'n'))).toBe(true);
  });

  it('warm-up parameters are checked when the playbook loads (increasing weights, known keys, with FILE:LINE:COL)', async () => {
    const t = setup('10.0.2.9', `  - restore: { provider: zk, warmup: { weights: [50, 100], every: 1s } }`);
    const text = readFileSync(t.file, 'utf8')
      .replace('steps:\n  - drain: reg', 'steps:\n  - drain: zk')
      .replace('providers:\n', 'providers:\n  zk: { type: zookeeper, connect: "127.0.0.1:1", path: "/x/{{host.name}}" }\n');
    writeFileSync(t.file, text);
    const { loadPlaybook } = await import('../../src/playbook/load.js');
    const pb = loadPlaybook(t.file);
    expect(pb.steps[1]).toMatchObject({ action: 'restore', params: { provider: 'zk', warmup: { weights: [50, 100], every: 1000 } } });
    writeFileSync(t.file, text.replace('weights: [50, 100]', 'weights: [50, 20]'));
    expect(() => loadPlaybook(t.file)).toThrow(/weights must increase/);
    writeFileSync(t.file, text.replace('every: 1s', 'evry: 1s'));
    expect(() => loadPlaybook(t.file)).toThrow(/pb\.yaml:\d+:\d+: .*evry/);
  });
});
