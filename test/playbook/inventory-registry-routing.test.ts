import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEvent } from '../../src/render/lines.js';
import { cli, events, requireBuiltCli } from '../helpers/cli.js';

/**
 * Routing visibility (issue 11, part 2; lives here with the other files of this change — it belongs in test/routing/).
 * A release with a nacos-rule routing rule through the CLI: `run --json` emits routing.applied / routing.failed,
 * rollback emits routing.undone, and `status` (text and --json) shows each rule's state from the journal.
 */

requireBuiltCli();
const dir = mkdtempSync(join(tmpdir(), 'gw-routing-vis-'));
const configs = new Map<string, string>();
/** POSTs (publishes) left before the server starts answering 500; Infinity: never. */
let publishesLeft = Infinity;
let url = '';
let server: http.Server;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const u = new URL(req.url!, 'http://x');
      const p = Object.fromEntries([...u.searchParams, ...new URLSearchParams(body)]);
      if (u.pathname !== '/nacos/v1/cs/configs') return ((res.statusCode = 404), res.end());
      const key = `${p.group}|${p.dataId}`;
      if (req.method === 'GET') return configs.has(key) ? res.end(configs.get(key)) : ((res.statusCode = 404), res.end('config data not exist'));
      if (req.method === 'POST') {
        if (publishesLeft-- <= 0) return ((res.statusCode = 500), res.end('caused: disk full'));
        configs.set(key, p.content!);
      }
      if (req.method === 'DELETE') configs.delete(key);
      res.end('true');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function playbook(name: string, release: string): string {
  const f = join(dir, name);
  writeFileSync(
    f,
    [
      `name: ${release}`,
      'version: "1.1"',
      'hosts:',
      ...[1, 2, 3, 4].map((i) => `  - { name: h${i}, address: 127.0.0.1 }`),
      'waves: { size: 50% }',
      'steps:',
      '  - run: "true"',
      'providers:',
      `  n: { type: nacos, url: "${url}", services: [${release}] }`,
      'routing:',
      '  - name: gray-entry',
      '    type: nacos-rule',
      '    provider: n',
      `    dataId: ${release}-rules`,
      '    format: "{{service}}:{{blueVersion}}={{blueWeight}};{{greenVersion}}={{greenWeight}}"',
      '    blueVersion: "1.0"',
      '    weights: [25, 100]',
      '',
    ].join('\n'),
  );
  return f;
}

const state = join(dir, 'state');
const routingEvents = (stdout: string) => events(stdout).filter((e) => String(e.event).startsWith('routing.'));

describe('routing events and status', () => {
  it('a clean run: routing.applied before wave 1 and after each wave (after the journal record); status shows the last point', async () => {
    const f = playbook('ok.yaml', 'order');
    const r = await cli(['run', f, '--yes', '--json', '--state-dir', state]);
    expect(r.code).toBe(0);
    const ev = routingEvents(r.stdout);
    expect(ev.map((e) => [e.event, e.phase, e.wave, e.changed])).toEqual([
      ['routing.applied', 'publish', 0, true],
      ['routing.applied', 'widen', 1, true],
      ['routing.applied', 'widen', 2, true],
      ['routing.applied', 'final', 2, false],
    ]);
    expect(ev[1]).toMatchObject({ release: 'order', rule: 'gray-entry', detail: 'DEFAULT_GROUP/order-rules: order:1.0=75;1.1=25' });
    expect(ev[3]!.detail).toMatch(/already in place/);
    // The widen after wave 1 comes after wave 1 is done and before wave 2 starts.
    const order = events(r.stdout).map((e) => `${e.event}:${e.wave ?? ''}`);
    expect(order.indexOf('routing.applied:1')).toBeGreaterThan(order.indexOf('wave.done:1'));
    expect(order.indexOf('routing.applied:1')).toBeLessThan(order.indexOf('wave.start:2'));
    expect(describeEvent(ev[1] as never)).toBe(
      'routing gray-entry after wave 1: DEFAULT_GROUP/order-rules: order:1.0=75;1.1=25 (read back: ' + ev[1]!.observed + ')',
    );

    const s = await cli(['status', f, '--json', '--state-dir', state]);
    expect(JSON.parse(s.stdout).routing).toEqual([
      expect.objectContaining({
        rule: 'gray-entry',
        state: 'verified',
        phase: 'final',
        wave: 2,
        detail: 'DEFAULT_GROUP/order-rules: order:1.0=0;1.1=100',
        inEffect: 3,
      }),
    ]);
    const text = await cli(['status', f, '--state-dir', state]);
    expect(text.stdout).toMatch(/routing:\n {2}gray-entry: DEFAULT_GROUP\/order-rules: order:1\.0=0;1\.1=100 at the end \(read back: .+\)/);
  }, 30_000);

  it('a failing point: routing.failed, the release halts, status says FAILED and what is still in effect; rollback emits routing.undone', async () => {
    const f = playbook('fail.yaml', 'pay');
    publishesLeft = 1; // the publish before wave 1 works, the widen after wave 1 does not
    const r = await cli(['run', f, '--yes', '--json', '--state-dir', state]);
    publishesLeft = Infinity;
    expect(r.code).toBe(1);
    const ev = routingEvents(r.stdout);
    expect(ev.map((e) => [e.event, e.phase, e.wave])).toEqual([
      ['routing.applied', 'publish', 0],
      ['routing.failed', 'widen', 1],
    ]);
    expect(ev[1]!.error).toMatch(/HTTP 500|disk full/);

    const s = JSON.parse((await cli(['status', f, '--json', '--state-dir', state])).stdout);
    expect(s.routing).toEqual([
      expect.objectContaining({
        rule: 'gray-entry',
        state: 'failed',
        phase: 'publish',
        wave: 0,
        failedAt: { phase: 'widen', wave: 1 },
        detail: 'DEFAULT_GROUP/pay-rules: pay:1.0=100;1.1=0',
        inEffect: 1,
      }),
    ]);
    const text = (await cli(['status', f, '--state-dir', state])).stdout;
    expect(text).toMatch(/gray-entry: FAILED after wave 1: .*; last reached before wave 1: DEFAULT_GROUP\/pay-rules: pay:1\.0=100;1\.1=0/);

    const rb = await cli(['rollback', f, '--yes', '--json', '--all', '--state-dir', state]);
    expect(routingEvents(rb.stdout)).toEqual([expect.objectContaining({ event: 'routing.undone', rule: 'gray-entry', wave: 0, detail: 'change 1 (publish)' })]);
    expect(configs.has('DEFAULT_GROUP|pay-rules')).toBe(false);
    const after = JSON.parse((await cli(['status', f, '--json', '--state-dir', state])).stdout);
    expect(after.routing).toEqual([expect.objectContaining({ rule: 'gray-entry', state: 'undone', inEffect: 0 })]);
  }, 30_000);
});
