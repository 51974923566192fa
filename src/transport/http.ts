import { ProviderError } from '../errors.js';

export interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
  /** Parses the body as JSON; throws a ProviderError naming the URL when it is not JSON. */
  json<T = unknown>(): T;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A string is sent as is; an object is sent as JSON; URLSearchParams as a form. */
  body?: string | object | URLSearchParams;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * The one door for HTTP calls to provider APIs: a timeout on every call, and errors that name the method and URL
 * (without its query string, which may carry a token). It never throws on an HTTP status: callers judge it.
 */
export async function http(url: string, opts: HttpOptions = {}): Promise<HttpResponse> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let body: string | undefined;
  if (opts.body instanceof URLSearchParams) {
    body = opts.body.toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  } else if (typeof opts.body === 'object' && opts.body !== null) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  } else {
    body = opts.body;
  }
  const signals = [AbortSignal.timeout(opts.timeoutMs ?? 10_000)];
  if (opts.signal) signals.push(opts.signal);
  const method = opts.method ?? (body === undefined ? 'GET' : 'POST');
  const where = `${method} ${url.split('?')[0]}`;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body, signal: AbortSignal.any(signals) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const reason = (err as Error).name === 'TimeoutError' ? 'timed out' : cause?.code ?? cause?.message ?? (err as Error).message;
    throw new ProviderError(`${where}: ${reason}`);
  }
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json<T>() {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ProviderError(`${where}: answer is not JSON (HTTP ${res.status}): ${text.slice(0, 200)}`);
      }
    },
  };
}
