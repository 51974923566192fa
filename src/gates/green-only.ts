import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { http } from '../transport/http.js';
import { duration } from '../util/duration.js';
import { parseServedBy, SERVED_BY_HEADER } from './served-by.js';
import type { Gate } from './types.js';

export { parseServedBy, SERVED_BY_HEADER };

const params = z
  .object({
    url: z.string().min(1).describe('the gray entry (templates allowed)'),
    requests: z.number().int().min(1).max(10_000).default(20).describe('requests sent one after another; every one must pass'),
    header: z
      .string()
      .min(1)
      .default(SERVED_BY_HEADER)
      .describe('response header listing the instance of each app that served the request: `app=GROUP@instance,…`'),
    apps: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('apps that must appear in the header, each served by the group; default: every app the header names (at least one)'),
    group: z.string().min(1).optional().describe("the group every instance must be in; default: the release's group (`{{group}}`)"),
    headers: z.record(z.string()).optional().describe('request headers (e.g. a gray header or cookie, when the gray entry is chosen by header)'),
    timeout: duration.optional().describe('per request'),
  })
  .strict();
export type GreenOnlyParams = z.infer<typeof params>;

/** What is wrong with one answer (the first instance outside the group, a missing app, …), or undefined. */
function judge(status: number, servedBy: string | undefined, want: string, apps: string[] | undefined, header: string): string | undefined {
  if (status < 200 || status > 299) return `status ${status}`;
  if (servedBy === undefined) return `no ${header} header in the answer`;
  const served = parseServedBy(servedBy);
  if (!served) return `${header} is not app=GROUP@instance,…: ${JSON.stringify(servedBy.slice(0, 120))}`;
  for (const app of apps ?? []) if (!served.some((s) => s.app === app)) return `${app} missing from ${header} (${servedBy})`;
  const other = served.find((s) => (!apps || apps.includes(s.app)) && s.group !== want);
  if (other) return `${other.app}=${other.group}@${other.instance} answered (expected ${want})`;
  return undefined;
}

/**
 * `- green-only: {url, requests}`: the gray entry reaches the release's group only, in every app of the chain.
 * Each of `requests` requests must succeed and name, in its served-by header, an instance of the group for every
 * app; one instance outside the group (a hole in the GREEN environment, gray traffic falling through to BLUE)
 * fails the gate, and the failure names it.
 */
export const greenOnlyGate: Gate<GreenOnlyParams> = {
  doc: {
    options: { 'green-only': 'The gray entry, how many requests, and which apps must be served by which group.' },
    summary:
      'Requests through the gray entry whose served-by header (`app=GROUP@instance,…`, one entry per app of the call chain) must name an instance of the release group for every app: a gray request that fell through to a BLUE instance anywhere fails it, naming that instance. For release trains, once every app has GREEN hosts.',
    checkedAgainst: 'a local HTTP server answering chosen served-by headers, and the train sandbox (`graywave demo --train`)',
    example: '- name: gray-green-only\n  green-only:\n    url: http://gray.example.com/api/ping\n    requests: 30\n    apps: [bfe, order, account]',
  },
  key: 'green-only',
  params,
  defaultName: () => 'green-only',
  describe: (p) => `${p.requests} requests to ${p.url}: every app (${p.apps?.join(', ') ?? 'all in ' + p.header}) served by ${p.group ?? '{{group}}'}`,
  async run(ctx, p) {
    const url = ctx.render(p.url);
    const want = p.group ? ctx.render(p.group) : ctx.playbook.group;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(p.headers ?? {})) headers[k] = ctx.render(v);
    const header = p.header.toLowerCase();
    let failed = 0;
    let first: string | undefined;
    let firstAt = 0;
    const instances = new Set<string>();
    for (let i = 1; i <= p.requests; i++) {
      if (ctx.signal.aborted) throw new ProviderError('gate aborted', false);
      let why: string | undefined;
      try {
        const res = await http(url, { method: 'GET', headers, timeoutMs: p.timeout, signal: ctx.signal, log: ctx.log });
        const servedBy = res.headers.get(header) ?? undefined;
        why = judge(res.status, servedBy, want, p.apps, header);
        for (const s of parseServedBy(servedBy ?? '') ?? []) instances.add(`${s.app}=${s.group}@${s.instance}`);
      } catch (err) {
        if (ctx.signal.aborted) throw new ProviderError('gate aborted', false);
        why = (err as Error).message.split('\n')[0];
      }
      if (why !== undefined) {
        failed++;
        if (first === undefined) ((first = why), (firstAt = i));
      }
      ctx.progress(`${i}/${p.requests} requests, ${failed} not ${want} only`);
    }
    const values: Record<string, number | string> = { requests: p.requests, failed, instances: instances.size };
    if (failed === 0) return { ok: true, observed: `${p.requests}/${p.requests} served by ${want} only (${instances.size} instances)`, values };
    values.firstFailure = first!;
    return { ok: false, observed: `${failed}/${p.requests} requests not served by ${want} only; first (request ${firstAt}): ${first}`, values };
  },
};
