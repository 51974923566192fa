import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { http, type HttpOptions, type HttpResponse } from '../transport/http.js';
import type { TlsSettings } from '../transport/tls.js';
import { duration } from '../util/duration.js';
import { secretRef, type SecretRef } from '../util/secrets.js';
import type { ProviderContext, ProviderEnv } from './types.js';

/**
 * The `{http, method?, body?, headers?}` shape shared by providers that drive an HTTP admin endpoint
 * (the generic `http` provider, MQ consoles …). Templates ({{host.address}} …) are rendered per host;
 * header values may be secret references so that tokens never sit in the playbook.
 */
export const httpCallSchema = z
  .object({
    http: z.string().min(1).describe('URL to call; templates such as {{host.address}} are rendered per host.'),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).optional().describe('HTTP method; default GET, or POST when a body is given.'),
    /** A string is sent as is; an object as JSON (string values are rendered as templates). */
    body: z
      .union([z.string(), z.record(z.unknown())])
      .optional()
      .describe('Request body: a string is sent as is, a mapping as JSON (its string values rendered as templates).'),
    headers: z
      .record(z.union([z.string(), secretRef]))
      .optional()
      .describe('Request headers; a value may be a secret ({ env: NAME } / { file: PATH }), e.g. Authorization.'),
    timeout: duration.optional().describe("How long the call may take (default: the provider's timeout)."),
  })
  .strict();
export type HttpCall = z.infer<typeof httpCallSchema>;

/** An HttpCall whose secret headers are resolved (done once, in `create`). */
export interface PreparedHttpCall {
  url: string;
  method?: string;
  body?: string | Record<string, unknown>;
  headers: Record<string, string>;
  timeoutMs?: number;
  /** The provider's resolved `tls` option (src/transport/tls.ts), shared by all its calls. */
  tls?: TlsSettings;
}

export function prepareHttpCall(call: HttpCall, env: Pick<ProviderEnv, 'secrets'>, tls?: TlsSettings): PreparedHttpCall {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(call.headers ?? {})) {
    headers[k] = typeof v === 'string' ? v : env.secrets.resolve(v as SecretRef);
  }
  return { url: call.http, method: call.method, body: call.body, headers, timeoutMs: call.timeout, tls };
}

function renderDeep(value: unknown, render: (t: string) => string): unknown {
  if (typeof value === 'string') return render(value);
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, render));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, render)]));
  }
  return value;
}

/** Where a call went, for messages: method and URL without the query string (it may carry a token). */
export function describeCall(method: string, url: string): string {
  return `${method} ${url.split('?')[0]}`;
}

/**
 * A POST to a monitor's JSON API (accept: application/json, the monitor's auth headers and TLS). `json`: the answer
 * parsed, undefined when it is not JSON (an HTML error page of a proxy): the caller words the error from both.
 */
export async function postForJson<T>(
  ctx: Pick<ProviderContext, 'signal' | 'log'>,
  url: string,
  body: HttpOptions['body'],
  o: { headers?: Record<string, string>; timeoutMs?: number; tls?: TlsSettings },
): Promise<{ res: HttpResponse; json?: T }> {
  const res = await http(url, {
    method: 'POST',
    headers: { accept: 'application/json', ...o.headers },
    body,
    timeoutMs: o.timeoutMs,
    signal: ctx.signal,
    tls: o.tls,
    log: ctx.log,
  });
  try {
    return { res, json: JSON.parse(res.text) as T };
  } catch {
    return { res };
  }
}

/**
 * Sends the call for this host and fails (ProviderError) on anything but a 2xx answer.
 * `render` defaults to ctx.render; callers pass their own to add values such as {{group}}.
 */
export async function sendHttpCall(
  ctx: Pick<ProviderContext, 'render' | 'signal'> & Partial<Pick<ProviderContext, 'log'>>,
  call: PreparedHttpCall,
  opts: { render?: (t: string) => string; what?: string } = {},
): Promise<HttpResponse> {
  const render = opts.render ?? ((t: string) => ctx.render(t));
  const url = render(call.url);
  const body = call.body === undefined ? undefined : (renderDeep(call.body, render) as string | object);
  const method = call.method ?? (body === undefined ? 'GET' : 'POST');
  const headers = Object.fromEntries(Object.entries(call.headers).map(([k, v]) => [k, render(v)]));
  const res = await http(url, { method, body, headers, timeoutMs: call.timeoutMs, signal: ctx.signal, tls: call.tls, log: ctx.log });
  if (res.status < 200 || res.status >= 300) {
    const what = opts.what ? `${opts.what}: ` : '';
    // 4xx other than 408/429 will not get better by retrying the same request.
    const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
    throw new ProviderError(`${what}${describeCall(method, url)} answered HTTP ${res.status}: ${res.text.slice(0, 200)}`, retryable);
  }
  return res;
}

/**
 * Reads a value out of parsed JSON with a small path syntax: `a.b[0].c`, optionally starting with `$.`.
 * Returns undefined when any part is missing.
 */
export function readJsonPath(data: unknown, path: string): unknown {
  const clean = path.trim().replace(/^\$\.?/, '');
  if (clean === '') return data;
  const parts: (string | number)[] = [];
  for (const seg of clean.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(seg);
    if (!m) return undefined;
    if (m[1]) parts.push(m[1]);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) parts.push(Number(idx[1]));
  }
  let cur: unknown = data;
  for (const p of parts) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/** Loose equality for read-back checks: `equals: 0` matches 0 and "0", `equals: true` matches true and "true". */
export function jsonValueEquals(actual: unknown, expected: unknown): boolean {
  if (actual === expected) return true;
  if (actual === undefined || actual === null || typeof actual === 'object') return false;
  if (expected === null || typeof expected === 'object') return false;
  return String(actual) === String(expected);
}

/**
 * The `authorization` header of an API from secret references: `<scheme> <token>` (Bearer, ApiKey …) when a token
 * is given, else HTTP Basic from username and password, else none. The Basic value is masked like the secrets in
 * it. A secret that cannot be read is a ProviderError naming `label` and the option.
 */
export function authorizationHeader(
  label: string,
  env: ProviderEnv,
  a: { scheme: string; tokenKey: string; token?: SecretRef; username?: SecretRef; password?: SecretRef },
): Record<string, string> {
  const resolve = (ref: SecretRef, what: string) => {
    try {
      return env.secrets.resolve(ref);
    } catch (err) {
      throw new ProviderError(`${label} ${what}: ${(err as Error).message}`, false);
    }
  };
  if (a.token) return { authorization: `${a.scheme} ${resolve(a.token, a.tokenKey)}` };
  if (a.username && a.password) {
    const basic = Buffer.from(`${resolve(a.username, 'username')}:${resolve(a.password, 'password')}`).toString('base64');
    env.secrets.add(basic);
    return { authorization: `Basic ${basic}` };
  }
  return {};
}

/**
 * The options of authorizationHeader checked together (a zod superRefine): a token (`tokenKey`) or username and
 * password, not both; username and password go together.
 */
export function checkAuthOptions(o: Record<string, unknown>, tokenKey: string, ctx: z.RefinementCtx): void {
  if (o[tokenKey] && (o.username || o.password)) ctx.addIssue({ code: 'custom', message: `use either ${tokenKey} or username/password, not both` });
  if (!o.username !== !o.password) ctx.addIssue({ code: 'custom', message: 'username and password go together' });
}
