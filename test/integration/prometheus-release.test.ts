import { cli, events, requireBuiltCli } from '../helpers/cli.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPrometheus, MetricTarget, startPrometheus, type Prometheus } from './helpers/prometheus.js';
import { removeDir, tempDir } from './helpers/process.js';

/**
 * End to end through the CLI (`graywave run … --yes --json`), local transport: three hosts simulated by metric
 * servers that a real Prometheus scrapes. A host serves 40 rps until its `<host>.drained` file exists; "deploy"
 * writes the release version to `<host>.version` (with an undo writing 1 back). Version `2-broken` is broken: its
 * error rate rises by 10 % of requests per second from the moment it is deployed; version `2` is healthy. Needs a built dist (npm run build / npm test).
 */
const has = hasPrometheus();

/** `graywave ARGS` through the built CLI, with its JSON events parsed. */
async function graywave(args: string[], timeoutMs = 50_000) {
  const r = await cli(args, { timeoutMs });
  return { code: r.code, events: events(r.stdout), stderr: r.stderr };
}

describe.skipIf(!has)('a release gated on a real Prometheus (CLI end to end)', () => {
  let dir: string;
  let prom: Prometheus;
  /** Where the current test's hosts keep their state files. */
  let fleet = '';
  const names = ['h1', 'h2', 'h3'];
  const deployedAt = new Map<string, number>();
  const stateOf = (name: string) => {
    const drained = existsSync(join(fleet, `${name}.drained`));
    const vf = join(fleet, `${name}.version`);
    const version = existsSync(vf) ? readFileSync(vf, 'utf8').trim() : '1';
    if (version !== '2-broken') deployedAt.delete(name);
    else if (!deployedAt.has(name)) deployedAt.set(name, Date.now());
    return { drained, version };
  };
  const hosts = names.map(
    (name) =>
      new MetricTarget(() => {
        const s = stateOf(name);
        const since = deployedAt.get(name);
        return { rps: s.drained ? 0 : 40, errorRatio: since ? Math.min(0.9, ((Date.now() - since) / 1000) * 0.1) : 0 };
      }),
  );

  requireBuiltCli();

  beforeAll(async () => {
    dir = tempDir('prom-release');
    fleet = join(dir, 'none');
    for (const h of hosts) await h.start();
    prom = await startPrometheus(dir, [{ job: 'app', targets: hosts.map((h) => h.address) }]);
    await prom.waitForSeries('rate(app_requests_total[3s])', hosts.length);
  });
  afterAll(async () => {
    await prom?.stop();
    for (const h of hosts) await h.stop();
    if (dir) removeDir(dir);
  });

  /** A fresh fleet (all on version 1, serving) and a playbook for it. */
  function setup(test: string, onFailure: string, version: string, gateFor: string): string {
    fleet = join(dir, test);
    mkdirSync(fleet);
    for (const n of names) writeFileSync(join(fleet, `${n}.version`), '1\n');
    const f = (n: string) => `${fleet}/{{host.name}}.${n}`;
    const playbook = {
      name: `gated-${test}`,
      version,
      hosts: names.map((name, i) => ({ name, address: '127.0.0.1', vars: { port: hosts[i]!.port } })),
      transport: { type: 'local' },
      waves: { canary: 1, size: 2, concurrency: 2, maxFailures: 0, pause: 'none' },
      providers: { prom: { type: 'prometheus', url: prom.url, timeout: '2s' } },
      steps: [
        { name: 'drain', run: `touch ${f('drained')}`, undo: `rm -f ${f('drained')}` },
        {
          waitDrained: {
            monitor: 'prom',
            query: 'sum(rate(app_requests_total{instance="{{host.address}}:{{host.vars.port}}"}[3s]))',
            interval: '500ms',
            stableFor: 2,
            timeout: '20s',
          },
        },
        { name: 'deploy', run: `echo {{version}} > ${f('version')}`, undo: `echo 1 > ${f('version')}` },
        { name: 'restore', run: `rm -f ${f('drained')}`, undo: `touch ${f('drained')}` },
      ],
      verify: [
        {
          name: 'error-rate',
          query: { monitor: 'prom', expr: 'sum(rate(app_errors_total[3s])) / sum(rate(app_requests_total[3s]))', max: 0.05, for: gateFor, interval: '500ms' },
        },
      ],
      onFailure,
    };
    const file = join(fleet, 'playbook.yml');
    writeFileSync(file, JSON.stringify(playbook, null, 2)); // JSON is YAML
    return file;
  }
  const versions = () => names.map((n) => readFileSync(join(fleet, `${n}.version`), 'utf8').trim());
  const drainedFiles = () => names.filter((n) => existsSync(join(fleet, `${n}.drained`)));

  it('a gate that sees the rising error rate halts the release after the canary (exit 1)', async () => {
    const file = setup('halt', 'halt', '2-broken', '10s');
    const r = await graywave(['run', file, '--yes', '--json', '--state-dir', join(fleet, 'state')]);
    expect(r.code, r.stderr + JSON.stringify(r.events.slice(-5))).toBe(1);
    const progress = r.events.filter((e) => e.event === 'step.progress' && e.step === 'waitDrained:prom').map((e) => e.observed);
    expect(progress.at(-1)).toBe('value 0 (2/2 polls <= 0)');
    const failed = r.events.find((e) => e.event === 'verify.failed');
    expect(failed).toMatchObject({ wave: 1, check: 'error-rate' });
    expect(failed?.observed).toMatch(/> max 0.05/);
    expect(r.events.at(-1)).toMatchObject({ event: 'run.halted' });
    // halt leaves the canary on the new version and never touches wave 2
    expect(versions()).toEqual(['2-broken', '1', '1']);
    expect(r.events.filter((e) => e.event === 'wave.start').map((e) => e.wave)).toEqual([1]);
  });

  it('with onFailure: rollback-wave the canary goes back to the old version and the journal shows it', async () => {
    const file = setup('rollback', 'rollback-wave', '2-broken', '10s');
    const r = await graywave(['run', file, '--yes', '--json', '--state-dir', join(fleet, 'state')]);
    expect(r.code, r.stderr + JSON.stringify(r.events.slice(-5))).toBe(1);
    expect(r.events.find((e) => e.event === 'verify.failed')?.observed).toMatch(/> max 0.05/);
    expect(r.events.find((e) => e.event === 'rollback.start')).toMatchObject({ waves: [1], hosts: ['h1'] });
    const undone = r.events.filter((e) => e.event === 'undo.done' && e.host === 'h1').map((e) => e.step);
    expect(undone).toEqual(expect.arrayContaining(['restore', 'deploy', 'drain']));
    expect(versions()).toEqual(['1', '1', '1']);
    expect(drainedFiles()).toEqual([]);
    const journal = readFileSync(join(fleet, 'state', 'gated-rollback', 'journal.jsonl'), 'utf8');
    expect(journal).toMatch(/undo/);
  });

  it('a healthy version passes the gate after every wave and reaches all hosts (exit 0)', async () => {
    const file = setup('healthy', 'halt', '2', '2s');
    const r = await graywave(['run', file, '--yes', '--json', '--state-dir', join(fleet, 'state')]);
    expect(r.code, r.stderr + JSON.stringify(r.events.slice(-5))).toBe(0);
    expect(r.events.filter((e) => e.event === 'verify.done').map((e) => e.wave)).toEqual([1, 2]);
    expect(versions()).toEqual(['2', '2', '2']);
    expect(drainedFiles()).toEqual([]);
  });
});
