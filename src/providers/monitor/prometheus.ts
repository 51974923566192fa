import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../../transport/tls.js';
import { duration, formatMs } from '../../util/duration.js';
import { secretRef } from '../../util/secrets.js';
import { authorizationHeader, checkAuthOptions, postForJson } from '../http-call.js';
import type { Monitor, ProviderContext, ProviderEnv, ProviderType, RangeSeries } from '../types.js';

const options = z
  .object({
    url: z.string().url(),
    token: secretRef.optional(),
    username: secretRef.optional(),
    password: secretRef.optional(),
    timeout: duration.optional(),
    /** The answer's sample time may be at most this old (a cached or stuck query layer); default 2m. */
    maxAge: duration.optional(),
    /** HTTPS: CA file(s), client certificate, insecureSkipVerify (src/transport/tls.ts). */
    tls: tlsOptions.optional(),
  })
  .strict()
  .superRefine((o, ctx) => checkAuthOptions(o, 'token', ctx));
type Options = z.infer<typeof options>;

interface Envelope {
  status?: string;
  errorType?: string;
  error?: string;
  warnings?: string[];
  data?: { resultType?: string; result?: unknown };
}

type Sample = [number, string];

/** Prometheus sample values are strings so that they can carry NaN and ±Inf: neither is ever a usable reading. */
export function parseSampleValue(raw: unknown): number {
  if (typeof raw !== 'string' || raw.trim() === '') throw new ProviderError(`sample value ${JSON.stringify(raw)} is not a number`);
  // Go spells infinities "+Inf"/"-Inf", which JavaScript's Number() reads as NaN: name them properly.
  if (/^[+-]?inf(inity)?$/i.test(raw.trim())) throw new ProviderError(`sample value is ${raw} (no usable value)`);
  const n = Number(raw);
  if (Number.isNaN(n)) throw new ProviderError('sample value is NaN (no usable data)');
  if (!Number.isFinite(n)) throw new ProviderError(`sample value is ${raw}`);
  return n;
}

function labelsOf(metric: Record<string, string> | undefined): string {
  const entries = Object.entries(metric ?? {});
  return entries.length ? `{${entries.map(([k, v]) => `${k}="${v}"`).join(',')}}` : '{}';
}

/**
 * Reads one number from the result of an instant query. Anything else than exactly one finite, fresh sample is an
 * error: an empty vector means "no series" (target down, label typo), not zero traffic.
 */
export function readInstantResult(body: Envelope, maxAgeMs: number, now = Date.now()): number {
  const data = body.data;
  let sample: Sample;
  switch (data?.resultType) {
    case 'scalar':
      sample = data.result as Sample;
      break;
    case 'vector': {
      const result = data.result as { metric?: Record<string, string>; value?: Sample }[];
      if (!Array.isArray(result)) throw new ProviderError('malformed answer: vector result is not a list');
      if (result.length === 0) throw new ProviderError('no data (empty result)');
      if (result.length > 1) {
        const shown = result
          .slice(0, 3)
          .map((r) => labelsOf(r.metric))
          .join(', ');
        throw new ProviderError(`${result.length} series where one was expected (${shown}${result.length > 3 ? ', …' : ''}); aggregate with sum(...)`);
      }
      sample = result[0]!.value as Sample;
      break;
    }
    default:
      throw new ProviderError(`result type ${JSON.stringify(data?.resultType)} cannot be read as one number (use an instant vector or scalar expression)`);
  }
  if (!Array.isArray(sample) || sample.length !== 2 || typeof sample[0] !== 'number')
    throw new ProviderError('malformed answer: sample is not [time, "value"]');
  const value = parseSampleValue(sample[1]);
  // An instant query stamps samples with the evaluation time, so an old stamp means the answer itself is old
  // (a result cache or a stuck query frontend). Prometheus's own lookback/staleness handles vanished series.
  const age = now - sample[0] * 1000;
  if (age > maxAgeMs) throw new ProviderError(`stale sample: ${formatMs(age)} old (maxAge ${formatMs(maxAgeMs)}), value ${value}`);
  return value;
}

/**
 * Reads the result of a range query (`matrix`): every series with its samples. Values are kept as numbers even
 * when they are NaN or ±Inf (Go's "+Inf" spelled out), so that the caller can count and drop them.
 */
export function readRangeResult(body: Envelope): RangeSeries[] {
  const data = body.data;
  if (data?.resultType !== 'matrix') throw new ProviderError(`result type ${JSON.stringify(data?.resultType)} is not a range (matrix) result`);
  const result = data.result as { metric?: Record<string, string>; values?: Sample[] }[];
  if (!Array.isArray(result)) throw new ProviderError('malformed answer: matrix result is not a list');
  return result.map((r) => {
    if (!Array.isArray(r.values)) throw new ProviderError('malformed answer: series without values');
    return {
      labels: r.metric ?? {},
      samples: r.values.map((s) => {
        if (!Array.isArray(s) || typeof s[0] !== 'number' || typeof s[1] !== 'string')
          throw new ProviderError('malformed answer: sample is not [time, "value"]');
        const raw = s[1].trim();
        const v = /^\+?inf(inity)?$/i.test(raw) ? Infinity : /^-inf(inity)?$/i.test(raw) ? -Infinity : Number(raw);
        return { t: Math.round(s[0] * 1000), v: raw === '' ? NaN : v };
      }),
    };
  });
}

class PrometheusMonitor implements Monitor {
  private headers?: Record<string, string>;
  private readonly base: string;
  private readonly tls?: TlsSettings;

  constructor(
    private readonly o: Options,
    private readonly env: ProviderEnv,
  ) {
    this.base = o.url.replace(/\/+$/, '') + '/api/v1/';
    this.tls = resolveTls(o.tls, env);
  }

  async close(): Promise<void> {
    await this.tls?.close();
  }

  async value(ctx: ProviderContext, query: string): Promise<number> {
    return readInstantResult(await this.call(ctx, 'query', { query }), this.o.maxAge ?? 120_000);
  }

  async range(ctx: ProviderContext, query: string, w: { start: number; end: number; stepMs: number }): Promise<RangeSeries[]> {
    const sec = (ms: number) => (ms / 1000).toFixed(3);
    return readRangeResult(await this.call(ctx, 'query_range', { query, start: sec(w.start), end: sec(w.end), step: sec(w.stepMs) }));
  }

  private async call(ctx: ProviderContext, api: 'query' | 'query_range', form: Record<string, string>): Promise<Envelope> {
    // Secrets are resolved on first use so that validate/plan never need them.
    this.headers ??= authorizationHeader('prometheus', this.env, {
      scheme: 'Bearer',
      tokenKey: 'token',
      token: this.o.token,
      username: this.o.username,
      password: this.o.password,
    });
    // POST (form) rather than GET: long PromQL does not hit URL length limits and stays out of proxy access logs.
    const { res, json: body } = await postForJson<Envelope>(ctx, this.base + api, new URLSearchParams(form), {
      headers: this.headers,
      timeoutMs: this.o.timeout,
      tls: this.tls,
    });
    if (body?.status === 'error') {
      throw new ProviderError(`prometheus query failed (HTTP ${res.status}, ${body.errorType ?? 'error'}): ${body.error ?? 'no message'}`, res.status >= 500);
    }
    if (res.status < 200 || res.status >= 300 || !body || body.status !== 'success') {
      const hint = res.status === 401 || res.status === 403 ? ' (check token/username/password)' : '';
      throw new ProviderError(`prometheus answered HTTP ${res.status}${hint}: ${res.text.slice(0, 200).trim() || '(empty body)'}`);
    }
    for (const w of body.warnings ?? []) ctx.log(`prometheus warning: ${w}`);
    return body;
  }
}

/** `type: prometheus`: one instant query per reading (/api/v1/query); range queries for the judge (/api/v1/query_range). */
export const prometheusMonitor: ProviderType<Options> = {
  type: 'prometheus',
  role: 'monitor',
  options,
  doc: {
    summary:
      'Prometheus instant queries (GET /api/v1/query) for waitDrained and gates. An error, an empty result, NaN or a sample older than maxAge is never 0.',
    checkedAgainst: 'real Prometheus 2.42 (Debian)',
    example: 'type: prometheus\nurl: http://prometheus:9090\n# token: { env: PROM_TOKEN }',
    options: {
      token: 'Bearer token, a secret ({ env: NAME } / { file: PATH }), for a Prometheus behind an auth proxy.',
      username: 'Basic-auth user (a secret reference); goes with password.',
      password: 'Basic-auth password, a secret: { env: NAME } or { file: PATH }.',
      timeout: 'How long one query may take (default 10s).',
      url: 'Prometheus base URL.',
      maxAge: "The answer's sample may be at most this old.",
    },
  },
  describe: (o) => ({ reads: `GET ${o.url.replace(/\/+$/, '')}/api/v1/query?query=…` }),
  create: (o, env) => new PrometheusMonitor(o, env),
};
