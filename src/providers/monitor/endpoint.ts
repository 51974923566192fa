import { http, type HttpResponse } from '../../transport/http.js';
import { resolveTls, type TlsOptions, type TlsSettings } from '../../transport/tls.js';
import type { ProviderContext, ProviderEnv } from '../types.js';

/** The options every per-host endpoint monitor (http, metrics) shares: a templated URL and templated headers. */
interface EndpointOptions {
  url: string;
  headers?: Record<string, string>;
  timeout?: number;
  tls?: TlsOptions;
}

/**
 * A monitor that reads one endpoint per host: its TLS settings (resolved once, closed with the monitor) and the GET
 * (or `method`) of the rendered URL with the rendered headers. http and metrics extend it.
 */
export class EndpointMonitor<O extends EndpointOptions> {
  protected readonly tls?: TlsSettings;

  constructor(
    protected readonly o: O,
    env: ProviderEnv,
  ) {
    this.tls = resolveTls(o.tls, env);
  }

  async close(): Promise<void> {
    await this.tls?.close();
  }

  /** The host's endpoint, with `accept` (the option headers may override it). */
  protected fetch(ctx: ProviderContext, accept: string, method = 'GET'): Promise<HttpResponse> {
    const headers: Record<string, string> = { accept };
    for (const [k, v] of Object.entries(this.o.headers ?? {})) headers[k] = ctx.render(v);
    return http(ctx.render(this.o.url), { method, headers, timeoutMs: this.o.timeout, signal: ctx.signal, tls: this.tls, log: ctx.log });
  }
}
