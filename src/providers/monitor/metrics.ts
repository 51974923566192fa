import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { tlsOptions } from '../../transport/tls.js';
import { duration } from '../../util/duration.js';
import type { Monitor, ProviderContext, ProviderType } from '../types.js';
import { EndpointMonitor } from './endpoint.js';

const options = z
  .object({
    /** Templated per host, e.g. http://{{host.address}}:{{host.vars.port}}/metrics */
    url: z.string().min(1),
    timeout: duration.optional(),
    headers: z.record(z.string()).optional(),
    /** HTTPS: CA file(s), client certificate, insecureSkipVerify (src/transport/tls.ts). */
    tls: tlsOptions.optional(),
  })
  .strict();
type Options = z.infer<typeof options>;

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricSelector {
  name: string;
  labels: Record<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** Reads `{a="x",b="y"}` starting at text[start] === '{'; returns the labels and the index after '}'. */
function readLabels(text: string, start: number, where: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  const skipSpace = () => {
    while (text[i] === ' ' || text[i] === '\t') i++;
  };
  for (;;) {
    skipSpace();
    if (text[i] === '}') return { labels, end: i + 1 };
    const m = LABEL.exec(text.slice(i));
    if (!m) throw new Error(`${where}: bad label name at column ${i + 1}`);
    i += m[0].length;
    skipSpace();
    if (text[i] !== '=' || text[i + 1] !== '"') throw new Error(`${where}: expected ="value" after ${m[0]} (only = matching is supported)`);
    i += 2;
    let value = '';
    for (;;) {
      const c = text[i];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === '"') break;
      if (c === '\\') {
        const n = text[i + 1];
        value += n === 'n' ? '\n' : (n ?? '');
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[m[0]] = value;
    i++;
    skipSpace();
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`${where}: expected , or } at column ${i + 1}`);
  }
}

/** Sample values in the text format: floats plus NaN, +Inf, -Inf (Go's ParseFloat spellings). */
function parseValue(raw: string): number {
  if (/^[+-]?inf$/i.test(raw)) return raw.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(raw)) return NaN;
  const n = Number(raw);
  if (raw === '' || Number.isNaN(n)) throw new Error(`bad sample value ${JSON.stringify(raw)}`);
  return n;
}

/**
 * Parses the Prometheus text exposition format (version 0.0.4). Written here rather than taken from a library
 * because we need only the sample lines (name, labels, value) and the format is a few lines of grammar;
 * comments (# HELP/# TYPE) and timestamps are ignored. Malformed lines are reported, not skipped silently.
 */
export function parseExposition(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `line ${n + 1}`;
    const m = NAME.exec(line);
    if (!m) throw new Error(`${where}: bad metric name`);
    let labels: Record<string, string> = {};
    let rest = line.slice(m[0].length);
    if (rest.startsWith('{')) {
      const r = readLabels(line, m[0].length, where);
      labels = r.labels;
      rest = line.slice(r.end);
    }
    const fields = rest.trim().split(/\s+/);
    out.push({ name: m[0], labels, value: parseValue(fields[0] ?? '') });
  }
  return out;
}

/** `metric_name` or `metric_name{label="v",label2="w"}`. */
export function parseSelector(query: string): MetricSelector {
  const q = query.trim();
  const m = NAME.exec(q);
  if (!m) throw new Error(`not a metric selector: ${JSON.stringify(query)} (use name or name{label="value"})`);
  if (q.length === m[0].length) return { name: m[0], labels: {} };
  if (q[m[0].length] !== '{') throw new Error(`not a metric selector: ${JSON.stringify(query)} (use name or name{label="value"})`);
  const r = readLabels(q, m[0].length, 'selector');
  if (r.end !== q.length) throw new Error(`unexpected text after } in selector ${JSON.stringify(query)}`);
  return { name: m[0], labels: r.labels };
}

/** The sum of all samples the selector matches; no match is an error ("no data"), never 0. */
export function sumMatching(samples: MetricSample[], sel: MetricSelector): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (const s of samples) {
    if (s.name !== sel.name) continue;
    if (!Object.entries(sel.labels).every(([k, v]) => s.labels[k] === v)) continue;
    sum += s.value;
    count++;
  }
  return { sum, count };
}

class MetricsMonitor extends EndpointMonitor<Options> implements Monitor {
  async value(ctx: ProviderContext, query: string): Promise<number> {
    let sel: MetricSelector;
    try {
      sel = parseSelector(query);
    } catch (err) {
      throw new ProviderError((err as Error).message, false);
    }
    const res = await this.fetch(ctx, 'text/plain');
    if (res.status !== 200) throw new ProviderError(`metrics endpoint answered HTTP ${res.status}: ${res.text.slice(0, 200).trim()}`);
    let samples: MetricSample[];
    try {
      samples = parseExposition(res.text);
    } catch (err) {
      throw new ProviderError(`metrics endpoint: cannot parse the text format: ${(err as Error).message}`);
    }
    const { sum, count } = sumMatching(samples, sel);
    if (count === 0) throw new ProviderError(`no data: no sample matches ${query.trim()}`);
    if (!Number.isFinite(sum)) throw new ProviderError(`${query.trim()} is ${sum} (no usable value)`);
    return sum;
  }
}

/** `type: metrics`: scrape the host's own Prometheus text endpoint (in-flight requests …); no Prometheus server needed. */
export const metricsMonitor: ProviderType<Options> = {
  type: 'metrics',
  role: 'monitor',
  options,
  doc: {
    summary: "The host's own Prometheus-format metrics page, read directly (no Prometheus server): the query is a metric name with optional labels.",
    checkedAgainst: "the sandbox hosts' metrics pages and a local HTTP server",
    example: 'type: metrics\nurl: "http://{{host.address}}:8080/metrics"',
    options: {
      timeout: 'How long one scrape may take (default 10s).',
      headers: 'Extra request headers (values are templates).',
      url: 'The metrics page (a template).',
    },
  },
  describe: (o, c) => ({ reads: `GET ${c.render(o.url)}` }),
  create: (o, env) => new MetricsMonitor(o, env),
};
