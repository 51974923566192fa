import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { tlsOptions } from '../../transport/tls.js';
import { duration } from '../../util/duration.js';
import type { Monitor, ProviderContext, ProviderType } from '../types.js';
import { EndpointMonitor } from './endpoint.js';

/** `$.data.items[0].value`: dotted keys and [n] indexes, nothing more (no filters, no wildcards). */
export function parseJsonPath(path: string): (string | number)[] {
  const p = path.trim();
  if (!p.startsWith('$')) throw new Error(`JSON path ${JSON.stringify(path)} must start with $`);
  const parts: (string | number)[] = [];
  const re = /\.([^.[\]]+)|\[(\d+)\]/y;
  re.lastIndex = 1;
  while (re.lastIndex < p.length) {
    const at = re.lastIndex;
    const m = re.exec(p);
    if (!m) throw new Error(`JSON path ${JSON.stringify(path)}: cannot read it at column ${at + 1} (use $.a.b[0].c)`);
    parts.push(m[1] !== undefined ? m[1] : Number(m[2]));
  }
  return parts;
}

/** The value at the path, or undefined when any part is missing. */
export function getJsonPath(doc: unknown, path: string): unknown {
  let cur = doc;
  for (const part of parseJsonPath(path)) {
    if (typeof part === 'number') {
      if (!Array.isArray(cur) || part >= cur.length) return undefined;
      cur = cur[part];
    } else {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, part)) return undefined;
      cur = (cur as Record<string, unknown>)[part];
    }
  }
  return cur;
}

const options = z
  .object({
    url: z.string().min(1),
    method: z.enum(['GET', 'POST']).optional(),
    headers: z.record(z.string()).optional(),
    jsonPath: z.string().refine((p) => {
      try {
        parseJsonPath(p);
        return true;
      } catch {
        return false;
      }
    }, 'not a JSON path like $.data.inflight'),
    timeout: duration.optional(),
    /** HTTPS: CA file(s), client certificate, insecureSkipVerify (src/transport/tls.ts). */
    tls: tlsOptions.optional(),
  })
  .strict();
type Options = z.infer<typeof options>;

class HttpMonitor extends EndpointMonitor<Options> implements Monitor {
  /** A non-empty query is a JSON path that replaces the provider's `jsonPath` (one endpoint, several readings). */
  async value(ctx: ProviderContext, query: string): Promise<number> {
    const path = query.trim() || this.o.jsonPath;
    try {
      parseJsonPath(path);
    } catch (err) {
      throw new ProviderError(`http monitor: ${(err as Error).message}`, false);
    }
    const res = await this.fetch(ctx, 'application/json', this.o.method ?? 'GET');
    if (res.status < 200 || res.status >= 300) throw new ProviderError(`monitor endpoint answered HTTP ${res.status}: ${res.text.slice(0, 200).trim()}`);
    const v = getJsonPath(res.json(), path);
    if (v === undefined || v === null) throw new ProviderError(`no data: ${path} is ${v === null ? 'null' : 'absent'} in the answer`);
    // Numbers sometimes arrive as strings ("12.5"); booleans and objects are not readings.
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    if (!Number.isFinite(n)) throw new ProviderError(`${path} is ${JSON.stringify(v).slice(0, 80)}, not a finite number`);
    return n;
  }
}

/** `type: http`: a home-grown monitor endpoint answering JSON; the number is read at `jsonPath`. */
export const httpMonitor: ProviderType<Options> = {
  type: 'http',
  role: 'monitor',
  options,
  doc: {
    summary: "Any HTTP endpoint that answers a number in JSON (an app's in-flight counter): the value at `jsonPath`.",
    checkedAgainst: 'a local HTTP server',
    example: 'type: http\nurl: "http://{{host.address}}:8080/admin/inflight"\njsonPath: $.data.inflight',
    options: {
      method: 'GET (default) or POST.',
      headers: 'Extra request headers (values are templates).',
      timeout: 'How long one request may take (default 10s).',
      url: 'The endpoint (a template).',
      jsonPath: 'Where the number is, e.g. $.data.inflight.',
    },
  },
  describe: (o, c) => ({ reads: `${o.method ?? 'GET'} ${c.render(o.url)} → ${o.jsonPath}` }),
  create: (o, env) => new HttpMonitor(o, env),
};
