import { ProviderError } from '../errors.js';
import { describeTlsFailure, type TlsSettings } from './tls.js';

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
  /**
   * The caller's resolved `tls` option (resolveTls in ./tls.ts, done once when the provider is created): its CA
   * files, client certificate or insecureSkipVerify apply to this call. Absent: Node's default CAs, global fetch.
   */
  tls?: TlsSettings;
  /** Where the once-per-provider insecureSkipVerify warning goes (the provider's ctx.log). */
  log?: (line: string) => void;
}

/**
 * The one door for HTTP calls to provider APIs: a timeout on every call, and errors that name the method and URL
 * (without its query string, which may carry a token). It never throws on an HTTP status: callers judge it.
 * A TLS failure names the certificate problem and the `tls` key that fixes it.
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
    const init = { method, headers, body, signal: AbortSignal.any(signals) };
    if (opts.tls) {
      opts.tls.warnOnce(url, opts.log);
      res = await opts.tls.fetch(url, init);
    } else {
      res = await fetch(url, init);
    }
  } catch (err) {
    const tls = (err as Error).name === 'TimeoutError' ? undefined : describeTlsFailure(err, url, opts.tls);
    if (tls) throw new ProviderError(`${where}: ${tls.reason}`, tls.retryable);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const reason = (err as Error).name === 'TimeoutError' ? 'timed out' : (cause?.code ?? cause?.message ?? (err as Error).message);
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
