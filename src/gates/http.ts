import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { getJsonPath, parseJsonPath } from '../providers/monitor/http.js';
import { http } from '../transport/http.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../transport/tls.js';
import { duration } from '../util/duration.js';
import { Secrets } from '../util/secrets.js';
import type { Gate, GateContext } from './types.js';

const jsonValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const params = z
  .object({
    url: z.string().min(1),
    method: z.enum(['GET', 'POST', 'PUT', 'HEAD']).optional(),
    headers: z.record(z.string()).optional(),
    expect: z
      .object({
        status: z.number().int().min(100).max(599).default(200),
        /** A substring the body must contain. */
        body: z.string().optional(),
        /** JSON path → expected value, e.g. { "$.status": "UP" }. */
        json: z
          .record(jsonValue)
          .refine(
            (m) =>
              Object.keys(m).every((k) => {
                try {
                  parseJsonPath(k);
                  return true;
                } catch {
                  return false;
                }
              }),
            'keys must be JSON paths like $.status',
          )
          .optional(),
      })
      .strict()
      .default({}),
    repeat: z.number().int().min(1).max(10_000).default(1),
    /** Per request. */
    timeout: duration.optional(),
    /** HTTPS: CA file(s), client certificate, insecureSkipVerify (src/transport/tls.ts). */
    tls: tlsOptions.optional(),
  })
  .strict();
export type HttpGateParams = z.infer<typeof params>;

/**
 * The resolved `tls` of each gate entry: its files are read on the gate's first run and kept for every later run
 * (and host). The gate context carries no Secrets: a file or env key is resolved through one of its own, and the
 * key's value goes nowhere but the TLS connection.
 */
const resolvedTls = new WeakMap<HttpGateParams, TlsSettings | undefined>();

function gateTls(ctx: GateContext, p: HttpGateParams): TlsSettings | undefined {
  if (!p.tls) return undefined;
  if (resolvedTls.has(p)) return resolvedTls.get(p);
  let tls: TlsSettings | undefined;
  try {
    tls = resolveTls(p.tls, { dir: ctx.playbook.dir, secrets: new Secrets(ctx.playbook.dir) });
  } catch (err) {
    throw new ProviderError(`http check ${p.url.split('?')[0]}: ${(err as Error).message}`, false);
  }
  resolvedTls.set(p, tls);
  return tls;
}

/** What was wrong with one answer, or undefined when it is as expected. */
function judge(status: number, text: string, p: HttpGateParams): string | undefined {
  const e = p.expect;
  if (status !== e.status) return `status ${status} (expected ${e.status})${text.trim() ? `: ${text.trim().slice(0, 120)}` : ''}`;
  if (e.body !== undefined && !text.includes(e.body)) return `body does not contain ${JSON.stringify(e.body)}: ${JSON.stringify(text.slice(0, 120))}`;
  if (e.json) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return `body is not JSON: ${JSON.stringify(text.slice(0, 120))}`;
    }
    for (const [path, want] of Object.entries(e.json)) {
      const got = getJsonPath(doc, path);
      if (got !== want) return `${path} is ${got === undefined ? 'absent' : JSON.stringify(got)} (expected ${JSON.stringify(want)})`;
    }
  }
  return undefined;
}

/**
 * `- http: {url, headers, expect: {status, body, json}, repeat}`: every one of `repeat` requests must answer as
 * expected (through a gray router, one request proves little: repeat spreads them over the GREEN hosts).
 */
export const httpGate: Gate<HttpGateParams> = {
  doc: {
    options: {
      http: 'The request and what it must answer.',
      'http.url': 'URL to request (a template), e.g. the gray entry.',
      'http.method': 'GET (default), POST, PUT or HEAD.',
      'http.headers': 'Request headers, e.g. { x-gray-group: GREEN } to be routed to GREEN.',
      'http.expect': 'What every answer must be.',
      'http.expect.status': 'Expected HTTP status.',
      'http.expect.body': 'A text the body must contain.',
      'http.expect.json': 'JSON path → expected value, e.g. { "$.status": UP }.',
      'http.repeat': 'Requests in a row that must all pass.',
      'http.timeout': 'Limit of each request (default 10s).',
    },
    summary: 'HTTP requests (typically through the gray entry) that must answer the expected status, body text or JSON value, `repeat` times in a row.',
    checkedAgainst: 'local HTTP and HTTPS servers (requests asserted)',
    example:
      '- name: gray-entry\n  http:\n    url: https://gray.example.com/api/ping\n    headers: { x-gray-group: GREEN }\n    expect: { status: 200, body: pong }\n    repeat: 20',
  },
  key: 'http',
  params,
  defaultName: (p) => `http:${p.url.replace(/^https?:\/\//, '').split(/[/?]/)[0]}`,
  describe: (p) =>
    `${p.method ?? 'GET'} ${p.url} expect ${p.expect.status}${p.expect.body !== undefined ? ` with "${p.expect.body}"` : ''}${p.repeat > 1 ? ` x${p.repeat}` : ''}`,
  async run(ctx, p) {
    const url = ctx.render(p.url);
    const tls = gateTls(ctx, p);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(p.headers ?? {})) headers[k] = ctx.render(v);
    let failed = 0;
    let first: string | undefined;
    let firstAt = 0;
    const statuses: Record<string, number> = {};
    for (let i = 1; i <= p.repeat; i++) {
      if (ctx.signal.aborted) throw new ProviderError('gate aborted', false);
      let why: string | undefined;
      try {
        const res = await http(url, { method: p.method ?? 'GET', headers, timeoutMs: p.timeout, signal: ctx.signal, tls, log: ctx.log });
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        why = judge(res.status, res.text, p);
      } catch (err) {
        if (ctx.signal.aborted) throw new ProviderError('gate aborted', false);
        why = (err as Error).message.split('\n')[0];
        statuses.error = (statuses.error ?? 0) + 1;
      }
      if (why !== undefined) {
        failed++;
        if (first === undefined) {
          first = why;
          firstAt = i;
        }
      }
      if (p.repeat > 1) ctx.progress(`${i}/${p.repeat} requests, ${failed} failed`);
    }
    const values: Record<string, number | string> = { requests: p.repeat, failed };
    for (const [s, n] of Object.entries(statuses)) values[`status_${s}`] = n;
    if (failed === 0) return { ok: true, observed: `${p.repeat}/${p.repeat} answered as expected`, values };
    values.firstFailure = first!;
    return { ok: false, observed: `${failed}/${p.repeat} requests failed; first (request ${firstAt}): ${first}`, values };
  },
};
