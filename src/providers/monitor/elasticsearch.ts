import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../../transport/tls.js';
import { duration } from '../../util/duration.js';
import { secretRef } from '../../util/secrets.js';
import { authorizationHeader, checkAuthOptions, postForJson } from '../http-call.js';
import type { Monitor, ProviderContext, ProviderEnv, ProviderType } from '../types.js';

const options = z
  .object({
    url: z.string().url(),
    /** Index or pattern, e.g. `access-*`. A pattern that matches nothing is an error (404), never 0. */
    index: z.string().min(1),
    hostField: z.string().min(1).default('host.name'),
    /** What the host is called in `hostField`; templated, default {{host.name}} (e.g. {{host.address}} for an IP field). */
    hostValue: z.string().min(1).default('{{host.name}}'),
    timeField: z.string().min(1).default('@timestamp'),
    window: duration.default('60s'),
    /** End the window this far in the past: log shipping lags, so the newest seconds may still be missing. */
    lag: duration.default('0s'),
    username: secretRef.optional(),
    password: secretRef.optional(),
    apiKey: secretRef.optional(),
    timeout: duration.optional(),
    /** HTTPS: CA file(s), client certificate, insecureSkipVerify (src/transport/tls.ts). */
    tls: tlsOptions.optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    checkAuthOptions(o, 'apiKey', ctx);
    if (o.window < 1000) ctx.addIssue({ code: 'custom', path: ['window'], message: 'window must be at least 1s' });
  });
type Options = z.infer<typeof options>;

/** Elasticsearch date math has no millisecond unit: round up to whole seconds. */
function ago(ms: number): string {
  return ms <= 0 ? 'now' : `now-${Math.ceil(ms / 1000)}s`;
}

/** The `_count` request body: documents of this host in [now-lag-window, now-lag), plus the optional query_string. */
export function countBody(o: Pick<Options, 'hostField' | 'timeField' | 'window' | 'lag'>, hostValue: string, query: string): object {
  const filter: object[] = [{ range: { [o.timeField]: { gte: ago(o.lag + o.window), lt: ago(o.lag) } } }, { term: { [o.hostField]: hostValue } }];
  if (query.trim()) filter.push({ query_string: { query: query.trim() } });
  return { query: { bool: { filter } } };
}

interface CountAnswer {
  count?: unknown;
  _shards?: { total?: number; successful?: number; failed?: number; failures?: { reason?: { type?: string; reason?: string } }[] };
  error?: { type?: string; reason?: string; root_cause?: { type?: string; reason?: string }[] } | string;
}

function errorText(body: CountAnswer | undefined, raw: string): string {
  const e = body?.error;
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object') return `${e.type ?? 'error'}: ${e.reason ?? e.root_cause?.[0]?.reason ?? ''}`.trim();
  return raw.slice(0, 200).trim() || '(empty body)';
}

class ElasticsearchMonitor implements Monitor {
  private headers?: Record<string, string>;
  private readonly tls?: TlsSettings;

  constructor(
    private readonly o: Options,
    private readonly env: ProviderEnv,
  ) {
    this.tls = resolveTls(o.tls, env);
  }

  async close(): Promise<void> {
    await this.tls?.close();
  }

  async value(ctx: ProviderContext, query: string): Promise<number> {
    this.headers ??= authorizationHeader('elasticsearch', this.env, {
      scheme: 'ApiKey',
      tokenKey: 'apiKey',
      token: this.o.apiKey,
      username: this.o.username,
      password: this.o.password,
    });
    const url = `${this.o.url.replace(/\/+$/, '')}/${encodeURI(ctx.render(this.o.index))}/_count`;
    const { res, json: body } = await postForJson<CountAnswer>(ctx, url, countBody(this.o, ctx.render(this.o.hostValue), query), {
      headers: this.headers,
      timeoutMs: this.o.timeout,
      tls: this.tls,
    });
    if (res.status === 404) throw new ProviderError(`elasticsearch: index ${this.o.index} not found (${errorText(body, res.text)})`);
    if (res.status < 200 || res.status >= 300) throw new ProviderError(`elasticsearch answered HTTP ${res.status}: ${errorText(body, res.text)}`);
    if (!body) throw new ProviderError(`elasticsearch: answer is not JSON: ${res.text.slice(0, 200)}`);
    const shards = body._shards;
    // A count from a partial search is not a trustworthy zero.
    if (shards && (shards.failed ?? 0) > 0) {
      const why = shards.failures?.[0]?.reason;
      throw new ProviderError(`elasticsearch: ${shards.failed} of ${shards.total ?? '?'} shards failed${why ? ` (${why.type}: ${why.reason})` : ''}`);
    }
    if (typeof body.count !== 'number' || !Number.isFinite(body.count))
      throw new ProviderError(`elasticsearch: answer has no count: ${res.text.slice(0, 200)}`);
    return body.count;
  }
}

/** `type: elasticsearch`: the number of the host's access-log documents in the last `window` (`_count`). */
export const elasticsearchMonitor: ProviderType<Options> = {
  type: 'elasticsearch',
  role: 'monitor',
  options,
  doc: {
    summary:
      "Elasticsearch (ELK access logs): counts the host's documents in the last `window` with POST <index>/_count; the query is an optional query_string.",
    checkedAgainst: 'a local server answering the recorded Elasticsearch 7/8 _count shapes (Elasticsearch does not install here)',
    example: 'type: elasticsearch\nurl: http://es:9200\nindex: access-*\nhostField: host.name\nwindow: 60s',
    options: {
      timeField: 'Timestamp field the window is applied to.',
      username: 'Basic-auth user (a secret reference); goes with password.',
      password: 'Basic-auth password, a secret.',
      apiKey: 'Elasticsearch API key (sent as ApiKey), a secret; instead of username/password.',
      timeout: 'How long one _count request may take (default 10s).',
      url: 'Elasticsearch base URL.',
      index: 'Index or pattern; one that matches nothing is an error, never 0.',
      hostField: 'Field that names the host.',
      hostValue: 'What the host is called in hostField (a template).',
      window: 'Counted time window.',
      lag: 'End the window this far in the past (log shipping lag).',
    },
  },
  describe: (o, c) => ({
    reads: `POST ${o.url.replace(/\/+$/, '')}/${o.index}/_count where ${o.hostField} = ${c.render(o.hostValue)}, last ${o.window / 1000}s`,
  }),
  create: (o, env) => new ElasticsearchMonitor(o, env),
};
