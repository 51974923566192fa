/**
 * The registry answering 500 mid-release, end to end through the CLI (issue 9): a local Nacos-shaped server
 * (the sandbox registry) that starts failing once the canary is deployed. The canary's `restore` retries exactly
 * `retries` times — counted on the server — then the wave halts with the HTTP status in the halt message; the
 * canary is listed as still drained in `status --json`, in the run.halted event and, marked, in the text output.
 * Once the registry is back, `resume` restores it and finishes.
 */
import { existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../../src/sandbox/registry.js';
import { cli, events, requireBuiltCli, tempDirs, writePlaybook } from '../helpers/cli.js';

requireBuiltCli();
const temp = tempDirs('gw-regdown-');

const RETRIES = 3;
const HOSTS = ['h-01', 'h-02', 'h-03'];
const ip = (i: number) => `10.0.5.${i + 1}`;

describe('the registry answers HTTP 500 mid-release (CLI end to end)', () => {
  const registry = new Registry();
  let flag = '';
  /** Requests answered 500 while the registry was "down". */
  const refused: string[] = [];
  const server = http.createServer((req, res) => {
    if (flag && existsSync(flag)) {
      refused.push(`${req.method} ${req.url!.split('?')[0]}`);
      req.resume();
      res.writeHead(500, { 'content-type': 'text/plain' }).end('caused: java.lang.IllegalStateException: server is starting up');
      return;
    }
    registry.handle(req, res);
  });
  let url = '';
  let dir = '';
  let file = '';

  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const [i] of HOSTS.entries()) {
      registry.add({ service: 'DEFAULT_GROUP@@order-service', ip: ip(i), port: 8080 });
    }
    dir = temp();
    flag = join(dir, 'registry-down');
    file = writePlaybook(
      dir,
      `name: regdown
version: "2.0"
hosts:
${HOSTS.map((h, i) => `  - { name: ${h}, address: ${ip(i)} }`).join('\n')}
providers:
  registry: { type: nacos, url: "${url}", services: [order-service], port: 8080, timeout: 5s }
waves: { canary: 1, size: 2, concurrency: 2, maxFailures: 0 }
steps:
  - drain: registry
    interval: 100ms
  # The registry goes down (every request answers 500) once the canary (h-01) is deployed.
  - name: deploy
    run: "echo {{version}} > {{host.name}}.version; if [ {{host.name}} = h-01 ]; then touch registry-down; fi"
  - restore: registry
    retries: ${RETRIES}
`,
    );
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  const enabled = (i: number) => registry.snapshot('order-service').find((x) => x.ip === ip(i))!.effEnabled;

  it(`restore retries ${RETRIES} times (${RETRIES + 1} requests), then the wave halts naming HTTP 500; the canary is still drained everywhere it is reported`, async () => {
    const run = await cli(['run', file, '--yes', '--json'], { cwd: dir });
    expect(run.code, run.stderr).toBe(1);
    const ev = events(run.stdout);
    // Exactly retries + 1 attempts of restore on the canary, one request each, all answered 500.
    expect(ev.filter((e) => e.event === 'step.start' && e.step === 'restore:registry').map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
    const retries = ev.filter((e) => e.event === 'step.retry');
    expect(retries).toHaveLength(RETRIES);
    for (const r of retries) expect(r.error).toMatch(/Nacos list of order-service: HTTP 500/);
    expect(refused).toHaveLength(RETRIES + 1);
    expect(new Set(refused)).toEqual(new Set(['GET /nacos/v1/ns/instance/list']));
    expect(ev.find((e) => e.event === 'step.failed')).toMatchObject({
      host: 'h-01',
      step: 'restore:registry',
      error: expect.stringMatching(/HTTP 500: caused: java.lang.IllegalStateException/),
    });
    const halted = ev.at(-1)!;
    expect(halted).toMatchObject({ event: 'run.halted', wave: 1, stillDrained: ['h-01'] });
    // The halt message itself names the host, the step and the HTTP status.
    expect(halted.reason).toMatch(
      /wave 1: 1 host\(s\) failed \(h-01\), more than maxFailures 0; h-01 at restore:registry: Nacos list of order-service: HTTP 500/,
    );
    // Nothing beyond the canary was touched; the canary really is still out of the registry.
    expect(ev.filter((e) => e.event === 'step.start').map((e) => e.host)).not.toContain('h-02');
    expect([enabled(0), enabled(1), enabled(2)]).toEqual([false, true, true]);

    const st = await cli(['status', file, '--json'], { cwd: dir });
    const status = JSON.parse(st.stdout);
    expect(status.status).toBe('halted');
    expect(status.reason).toMatch(/HTTP 500/);
    expect(status.stillDrained).toEqual(['h-01']);
    expect(status.waves[0].hosts[0]).toMatchObject({ host: 'h-01', status: 'failed', step: 'restore:registry', stillDrained: true });

    // Text output without colour (not a terminal, NO_COLOR): the marker is words, not only red.
    const text = await cli(['status', file], { cwd: dir });
    expect(text.stdout).not.toMatch(/\x1b\[/);
    expect(text.stdout).toMatch(/^ {2}h-01 .*failed.*HTTP 500.*STILL DRAINED$/m);
    expect(text.stdout).toMatch(/^still drained: h-01$/m);
    expect(text.stdout).not.toMatch(/h-02.*STILL DRAINED/);
    // With colour on, the same lines are red.
    const red = await cli(['status', file], { cwd: dir, env: { FORCE_COLOR: '1' } });
    expect(red.stdout).toMatch(/\x1b\[31m {2}h-01 .*STILL DRAINED\x1b\[39m/);
    expect(red.stdout).toMatch(/\x1b\[31mstill drained: h-01\x1b\[39m/);

    // resume while the registry is still down: the preflight of the hosts not started yet stops it before anything.
    refused.length = 0;
    const pre = await cli(['resume', file, '--yes', '--plain'], { cwd: dir });
    expect(pre.code).toBe(1);
    expect(pre.stderr).toMatch(/h-02 registered:registry: state unknown: Nacos list of order-service: HTTP 500/);
    expect(pre.stderr).toMatch(/the release did not start/);
    expect(new Set(refused)).toEqual(new Set(['GET /nacos/v1/ns/instance/list']));
    // Without it: the same retries, the same halt, in plain text this time.
    refused.length = 0;
    const again = await cli(['resume', file, '--yes', '--plain', '--skip-preflight'], { cwd: dir });
    expect(again.code).toBe(1);
    expect(refused).toHaveLength(RETRIES + 1);
    expect(again.stdout.match(/h-01 restore:registry attempt \d failed, retrying: .*HTTP 500/g)).toHaveLength(RETRIES);
    expect(again.stdout).toMatch(/HALTED: wave 1: .*HTTP 500.*\n {2}still drained: h-01\n {2}next: /);

    // The registry is back: resume restores the canary and finishes the release.
    rmSync(flag);
    const fixed = await cli(['resume', file, '--yes', '--json'], { cwd: dir });
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
    const final = JSON.parse((await cli(['status', file, '--json'], { cwd: dir })).stdout);
    expect(final.status).toBe('done');
    expect(final.stillDrained).toEqual([]);
    expect([enabled(0), enabled(1), enabled(2)]).toEqual([true, true, true]);
  }, 90_000);
});
