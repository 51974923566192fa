import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { greenOnlyGate, parseServedBy } from '../../src/gates/green-only.js';
import { findGate } from '../../src/gates/index.js';
import { parseGate } from '../../src/playbook/parse/gates.js';
import { Source } from '../../src/playbook/source.js';
import { makeGateContext, makePlaybook } from '../helpers/contexts.js';

// A gray entry stand-in: answers each request with the next served-by header of `script` (cycling); null: no header.
let server: Server;
let base: string;
let script: (string | null)[] = [];
let status = 200;
let n = 0;
const seen: Record<string, string | undefined>[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ path: req.url, gray: req.headers['x-gray-group'] as string | undefined });
    const h = script[n++ % script.length];
    res.writeHead(status, h === null || h === undefined ? {} : { 'x-graywave-served-by': h });
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const GREEN1 = 'bfe=GREEN@127.0.3.1,order=GREEN@127.0.3.11,account=GREEN@127.0.3.21';
const GREEN2 = 'bfe=GREEN@127.0.3.2,order=GREEN@127.0.3.12,account=GREEN@127.0.3.21';
const params = (extra: object = {}) => greenOnlyGate.params.parse({ url: `${base}/api`, ...extra });
const run = (p: ReturnType<typeof params>, group = 'GREEN') => greenOnlyGate.run({ ...makeGateContext(), playbook: makePlaybook({ group }) }, p);

describe('green-only gate', () => {
  it('passes when every answer names a GREEN instance of every app, counting the instances seen', async () => {
    ((script = [GREEN1, GREEN2]), (n = 0), (status = 200));
    const r = await run(params({ requests: 6, apps: ['bfe', 'order', 'account'] }));
    expect(r).toMatchObject({ ok: true, observed: '6/6 served by GREEN only (5 instances)', values: { requests: 6, failed: 0, instances: 5 } });
    expect(findGate('green-only')).toBe(greenOnlyGate);
  });

  it('fails on one BLUE instance anywhere in the chain and names the first one that answered', async () => {
    ((script = [
      GREEN1,
      GREEN2,
      'bfe=GREEN@127.0.3.1,order=BLUE@127.0.3.13,account=GREEN@127.0.3.21',
      'bfe=BLUE@127.0.3.4,order=GREEN@127.0.3.11,account=BLUE@127.0.3.24',
    ]),
      (n = 0));
    const r = await run(params({ requests: 8 }));
    expect(r.ok).toBe(false);
    expect(r.observed).toBe('4/8 requests not served by GREEN only; first (request 3): order=BLUE@127.0.3.13 answered (expected GREEN)');
    expect(r.values).toMatchObject({ requests: 8, failed: 4, firstFailure: 'order=BLUE@127.0.3.13 answered (expected GREEN)' });
  });

  it('the expected group defaults to the release group, and `group` overrides it', async () => {
    ((script = ['bfe=BLUE@a,order=BLUE@b']), (n = 0));
    expect((await run(params({ requests: 2 }), 'BLUE')).ok).toBe(true);
    expect((await run(params({ requests: 2 }), 'GREEN')).observed).toContain('bfe=BLUE@a answered (expected GREEN)');
    expect((await run(params({ requests: 2, group: 'BLUE' }), 'GREEN')).ok).toBe(true);
  });

  it('only the listed apps must be in the group, and each listed app must be in the header', async () => {
    ((script = ['bfe=GREEN@a,order=GREEN@b,audit=BLUE@c']), (n = 0));
    expect((await run(params({ requests: 2, apps: ['bfe', 'order'] }))).ok).toBe(true);
    const missing = await run(params({ requests: 2, apps: ['bfe', 'account'] }));
    expect(missing.observed).toContain('account missing from x-graywave-served-by (bfe=GREEN@a,order=GREEN@b,audit=BLUE@c)');
    expect((await run(params({ requests: 2 }))).observed).toContain('audit=BLUE@c answered');
  });

  it('an answer without the header, a malformed header, an HTTP error or no answer is never GREEN-only', async () => {
    ((script = [null]), (n = 0));
    expect((await run(params({ requests: 1 }))).observed).toContain('no x-graywave-served-by header in the answer');
    script = ['bfe GREEN'];
    expect((await run(params({ requests: 1 }))).observed).toContain('x-graywave-served-by is not app=GROUP@instance');
    ((script = [GREEN1]), (status = 503));
    expect((await run(params({ requests: 1 }))).observed).toContain('status 503');
    status = 200;
    const r = await greenOnlyGate.run(makeGateContext(), greenOnlyGate.params.parse({ url: 'http://127.0.0.1:9/x', timeout: '1s', requests: 2 }));
    expect(r.ok).toBe(false);
    expect(r.observed).toMatch(/^2\/2 requests not served by GREEN only; first \(request 1\): GET http:\/\/127.0.0.1:9\/x: /);
  });

  it('sends the rendered request headers and reads another header name', async () => {
    ((script = [GREEN1]), (n = 0), (seen.length = 0));
    const r = await run(params({ requests: 2, headers: { 'x-gray-group': '{{group}}' } }));
    expect(r.ok).toBe(true);
    expect(seen.map((s) => s.gray)).toEqual(['GREEN', 'GREEN']);
    expect((await run(params({ requests: 1, header: 'x-served' }))).observed).toContain('no x-served header');
  });

  it('parses served-by headers', () => {
    expect(parseServedBy('bfe=GREEN@127.0.3.1, order=BLUE@10.0.0.1:20880')).toEqual([
      { app: 'bfe', group: 'GREEN', instance: '127.0.3.1' },
      { app: 'order', group: 'BLUE', instance: '10.0.0.1:20880' },
    ]);
    expect(parseServedBy('')).toBeUndefined();
    expect(parseServedBy('bfe=GREEN')).toBeUndefined();
  });

  it('is a verify entry with strict options', () => {
    const src = new Source('/tmp/p.yaml', 'verify:\n  - green-only: { url: "http://x", requests: 0, color: GREEN }\n');
    expect(parseGate(src, ['verify', 0], { 'green-only': { url: 'http://x', requests: 0, color: 'GREEN' } })).toBeUndefined();
    expect(src.issues.map((i) => i.message).join('\n')).toMatch(/requests[\s\S]*color|color[\s\S]*requests/);
    const ok = parseGate(new Source('/tmp/p.yaml', ''), ['verify', 0], { name: 'gray-green', 'green-only': { url: 'http://x' } });
    expect(ok).toMatchObject({ name: 'gray-green', gate: 'green-only', params: { url: 'http://x', requests: 20, header: 'x-graywave-served-by' } });
  });
});
