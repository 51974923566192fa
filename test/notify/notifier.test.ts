import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engine/events.js';
import type { JournalRecord } from '../../src/journal/records.js';
import { notifyEntrySchema, toNotifySpec, wants, type NotifySpec } from '../../src/notify/config.js';
import { bodyFor, buildMessage } from '../../src/notify/format.js';
import { Notifier, transitionKey } from '../../src/notify/notifier.js';
import { Secrets } from '../../src/util/secrets.js';
import { hasOpenssl, makeTestPki, startHttps } from '../helpers/tls.js';
import { writeFileSync } from 'node:fs';

const ctx = { version: '1.2.3', waves: 3, waveHosts: (w: number) => (w === 2 ? ['b1', 'b2'] : ['a1']) };
const halted: EngineEvent = {
  event: 'run.halted',
  release: 'shop',
  reason: 'wave 2: 1 host(s) failed (b2)',
  wave: 2,
  hint: 'graywave resume',
  stillDrained: ['b2'],
};

let server: Server;
let base: string;
const got: { url: string; body: unknown }[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8').on('data', (c: string) => (data += c));
    req.on('end', () => {
      got.push({ url: req.url!, body: JSON.parse(data) });
      if (req.url!.startsWith('/hang')) return; // never answers
      if (req.url === '/feishu-error') return void res.writeHead(200).end('{"code":19001,"msg":"param invalid"}');
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));

function journal(records: JournalRecord[] = []) {
  return { records, append: async (r: JournalRecord) => void records.push(r) };
}
function spec(over: Partial<NotifySpec>): NotifySpec {
  return { name: 'c', url: `${base}/ok`, headers: {}, format: 'json', on: ['halted', 'done'], timeoutMs: 2000, ...over };
}

describe('notify config and format', () => {
  it('parses the playbook shape with defaults, and filters by kind and minimum severity', () => {
    const s = toNotifySpec(notifyEntrySchema.parse({ webhook: { url: { env: 'HOOK' } }, format: 'dingtalk' }), 0);
    expect(s).toMatchObject({
      name: 'notify-1',
      url: { env: 'HOOK' },
      format: 'dingtalk',
      on: ['halted', 'rolled-back', 'done', 'limited', 'approval-needed'],
      timeoutMs: 5000,
    });
    expect(wants({ on: s.on, severity: 'warning' }, 'limited')).toBe(false);
    expect(notifyEntrySchema.safeParse({ webhook: 'ftp://x' }).success).toBe(false);
    expect(notifyEntrySchema.safeParse({ webhook: 'https://x', on: ['explode'] }).success).toBe(false);
    expect(wants({ on: ['done', 'halted', 'approval-needed'], severity: 'warning' }, 'done')).toBe(false);
    expect(wants({ on: ['done', 'halted', 'approval-needed'], severity: 'warning' }, 'approval-needed')).toBe(true);
    expect(wants({ on: ['halted'] }, 'done')).toBe(false);
  });

  it('writes a chat text with release, version, wave, hosts and reason, in each webhook format', () => {
    const m = buildMessage(halted, ctx)!;
    expect(m.text).toBe('✖ shop 1.2.3: HALTED at wave 2/3\nReason: wave 2: 1 host(s) failed (b2)\nHosts: b1, b2\nStill drained: b2\nNext: graywave resume');
    expect(bodyFor('slack', m)).toEqual({ text: m.text });
    expect(bodyFor('feishu', m)).toEqual({ msg_type: 'text', content: { text: m.text } });
    expect(bodyFor('dingtalk', m)).toEqual({ msgtype: 'text', text: { content: m.text } });
    expect(bodyFor('json', m)).toMatchObject({
      event: 'run.halted',
      kind: 'halted',
      severity: 'error',
      release: 'shop',
      version: '1.2.3',
      wave: 2,
      hosts: ['b1', 'b2'],
      reason: halted.reason,
    });
    expect(buildMessage({ event: 'step.done', release: 'shop', wave: 1, host: 'a1', step: 's', ms: 1 }, ctx)).toBeUndefined();
  });

  it('a --limit run that finished its hosts is its own kind, limited (info), never halted', () => {
    const e: EngineEvent = {
      event: 'run.limited',
      release: 'shop',
      reason: '--limit: 3 host(s) done; 1 host(s) outside the limit still pending: b2',
      done: 3,
      pending: 1,
      hint: 'graywave resume shop.yaml runs the 1 pending host (b2)',
    };
    const m = buildMessage(e, ctx)!;
    expect(m).toMatchObject({ kind: 'limited', severity: 'info', reason: e.reason });
    expect(m.text).toBe(
      '◐ shop 1.2.3: LIMITED: 3 host(s) done, 1 pending (outside --limit)\nReason: --limit: 3 host(s) done; 1 host(s) outside the limit still pending: b2\nNext: graywave resume shop.yaml runs the 1 pending host (b2)',
    );
    expect(bodyFor('json', m)).toMatchObject({ event: 'run.limited', kind: 'limited', severity: 'info', done: 3, pending: 1 });
    expect(wants({ on: ['halted'] }, 'limited')).toBe(false);
    // Keyed by its own journal record: a halt record is not it.
    const recs: JournalRecord[] = [
      { type: 'run', t: '2026-01-01T00:00:00.000Z', phase: 'start' },
      { type: 'run', t: '2026-01-01T00:01:00.000Z', phase: 'limited', reason: e.reason },
    ];
    expect(transitionKey(e, recs)).toBe('limited@2026-01-01T00:01:00.000Z#1');
    expect(transitionKey(halted, recs)).toBeUndefined();
  });

  it('keys a transition by the journal record that wrote it', () => {
    const recs: JournalRecord[] = [
      { type: 'run', t: '2026-01-01T00:00:00.000Z', phase: 'start' },
      { type: 'run', t: '2026-01-01T00:01:00.000Z', phase: 'halted', reason: 'x' },
    ];
    const k1 = transitionKey(halted, recs);
    expect(k1).toBe('halted@2026-01-01T00:01:00.000Z#1');
    recs.push({ type: 'run', t: '2026-01-01T00:02:00.000Z', phase: 'resume' }, { type: 'run', t: '2026-01-01T00:03:00.000Z', phase: 'halted', reason: 'x' });
    expect(transitionKey(halted, recs)).not.toBe(k1);
    // A halt that could not be recorded is not mistaken for the older one.
    recs.push({ type: 'run', t: '2026-01-01T00:04:00.000Z', phase: 'resume' });
    expect(transitionKey(halted, recs)).toBeUndefined();
    // onFailure: freeze records `frozen` and emits run.halted.
    recs.push({ type: 'run', t: '2026-01-01T00:05:00.000Z', phase: 'frozen' as 'halted', reason: 'FROZEN' });
    expect(transitionKey(halted, recs)).toBe('halted@2026-01-01T00:05:00.000Z#5');
  });
});

describe('Notifier', () => {
  it('sends once per transition: a second report of the same transition, or a new notifier on the same journal, sends nothing', async () => {
    const recs: JournalRecord[] = [{ type: 'run', t: '2026-01-01T00:01:00.000Z', phase: 'halted', reason: 'x' }];
    const logDir = mkdtempSync(join(tmpdir(), 'gw-notify-'));
    try {
      const j = journal(recs);
      const n = new Notifier({
        specs: [spec({ url: `${base}/once` })],
        journal: j,
        secrets: new Secrets(logDir),
        context: ctx,
        logDir,
        dir: logDir,
        warn: () => undefined,
      });
      n.sink(halted);
      n.sink(halted);
      await n.flush();
      const again = new Notifier({
        specs: [spec({ url: `${base}/once` })],
        journal: j,
        secrets: new Secrets(logDir),
        context: ctx,
        logDir,
        dir: logDir,
        warn: () => undefined,
      });
      again.sink(halted);
      await again.flush();
      expect(got.filter((g) => g.url === '/once')).toHaveLength(1);
      expect(recs.filter((r) => r.type === 'notify')).toMatchObject([{ type: 'notify', channel: 'c', kind: 'halted', ok: true }]);
    } finally {
      rmSync(logDir, { recursive: true, force: true });
    }
  });

  it('never blocks or throws: a hanging receiver times out, a chat error code, a refused port and a missing secret are logged and warned', async () => {
    const recs: JournalRecord[] = [{ type: 'run', t: '2026-01-01T00:01:00.000Z', phase: 'halted', reason: 'x' }];
    const logDir = mkdtempSync(join(tmpdir(), 'gw-notify-'));
    const warnings: string[] = [];
    try {
      const n = new Notifier({
        specs: [
          spec({ name: 'hang', url: `${base}/hang?token=SECRET1`, timeoutMs: 300 }),
          spec({ name: 'fs', url: `${base}/feishu-error`, format: 'feishu' }),
          spec({ name: 'refused', url: 'http://127.0.0.1:1/x' }),
          spec({ name: 'nosecret', url: { env: 'GW_TEST_UNSET_HOOK_VAR' } }),
        ],
        journal: journal(recs),
        secrets: new Secrets(logDir, {}),
        context: ctx,
        logDir,
        dir: logDir,
        warn: (l) => warnings.push(l),
      });
      const t0 = Date.now();
      n.sink(halted); // returns at once: nothing is delivered, warned or journalled before it is back
      expect(warnings).toEqual([]);
      expect(recs.filter((r) => r.type === 'notify')).toEqual([]);
      await n.flush();
      expect(Date.now() - t0).toBeLessThan(10_000); // generous: the hanging receiver is given up after 300 ms
      expect(warnings.join('\n')).toMatch(/notify hang: halted not delivered: .*timed out/);
      expect(warnings.join('\n')).toMatch(/notify fs: halted not delivered: error 19001: param invalid/);
      expect(warnings.join('\n')).toMatch(/notify refused: halted not delivered: POST \*\*\*: bad port/);
      expect(warnings.join('\n')).toMatch(/notify nosecret: halted not delivered: secret env var GW_TEST_UNSET_HOOK_VAR is not set/);
      const log = readFileSync(join(logDir, '_notify.log'), 'utf8');
      expect(log.split('\n').filter(Boolean)).toHaveLength(4);
      expect(log + warnings.join('')).not.toContain('SECRET1');
      expect(recs.filter((r) => r.type === 'notify' && !r.ok)).toHaveLength(4);
    } finally {
      rmSync(logDir, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasOpenssl())('a webhook behind a private CA: refused (logged) without tls:, delivered with tls: { ca }', async () => {
    const pki = makeTestPki();
    const bodies: string[] = [];
    const https = await startHttps({ cert: pki.serverCert, key: pki.serverKey }, (req, res) => {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => (bodies.push(b), res.end('ok')));
    });
    const logDir = mkdtempSync(join(tmpdir(), 'gw-notify-'));
    const warnings: string[] = [];
    try {
      writeFileSync(join(logDir, 'hook-ca.pem'), pki.serverCert);
      const parsed = notifyEntrySchema.parse({ name: 'corp', webhook: { url: `${https.url}/hook`, tls: { ca: 'hook-ca.pem' } } });
      const plain = notifyEntrySchema.parse({ name: 'plain', webhook: `${https.url}/hook` });
      const n = new Notifier({
        specs: [toNotifySpec(parsed, 0), toNotifySpec(plain, 1)],
        journal: journal([{ type: 'run', t: '2026-01-01T00:01:00.000Z', phase: 'halted', reason: 'x' }]),
        secrets: new Secrets(logDir, {}),
        context: ctx,
        logDir,
        dir: logDir,
        warn: (l) => warnings.push(l),
      });
      n.sink(halted);
      await n.flush();
      expect(bodies).toHaveLength(1); // only the channel that trusts the CA got through
      expect(JSON.parse(bodies[0]!)).toMatchObject({ kind: 'halted' });
      expect(warnings.join('\n')).toMatch(/notify plain: halted not delivered: .*self-signed certificate/);
    } finally {
      await https.stop();
      pki.cleanup();
      rmSync(logDir, { recursive: true, force: true });
    }
  });
});
