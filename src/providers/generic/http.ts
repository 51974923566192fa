import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { httpCallSchema, jsonValueEquals, prepareHttpCall, readJsonPath, sendHttpCall, type PreparedHttpCall } from '../http-call.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../../transport/tls.js';
import type { Check, Provider, ProviderContext, ProviderType } from '../types.js';

/**
 * `type: http-admin` — drain a host from a home-grown system through its HTTP admin endpoints:
 * one call takes the host out, one brings it back, and a read-back call tells whether it is out.
 *
 *   consumer:
 *     type: http-admin
 *     drain:   { http: "http://{{host.address}}:8080/admin/consumer/suspend", method: POST }
 *     restore: { http: "http://{{host.address}}:8080/admin/consumer/resume", method: POST }
 *     check:   { http: "http://{{host.address}}:8080/admin/status", jsonPath: consumer, equals: suspended }
 *     tls:     { ca: ./certs/internal-ca.pem }   # optional, for https:// calls (src/transport/tls.ts); all three calls
 */
const checkSchema = httpCallSchema
  .extend({
    jsonPath: z.string().min(1),
    equals: z.union([z.string(), z.number(), z.boolean(), z.null()]),
  })
  .strict();

export const httpOptions = z
  .object({
    drain: httpCallSchema,
    restore: httpCallSchema,
    // Required: without a read-back the state is unknown, and unknown is never "drained".
    check: checkSchema,
    tls: tlsOptions.optional(),
  })
  .strict();
export type HttpProviderOptions = z.infer<typeof httpOptions>;

/** What drain saves: whether the host was already out before graywave touched it (then restore leaves it out). */
interface Saved {
  wasDrained: boolean;
}

function isSaved(v: unknown): v is Saved {
  return typeof v === 'object' && v !== null && typeof (v as Saved).wasDrained === 'boolean';
}

class HttpProvider implements Provider {
  constructor(
    private readonly drainCall: PreparedHttpCall,
    private readonly restoreCall: PreparedHttpCall,
    private readonly checkCall: PreparedHttpCall,
    private readonly jsonPath: string,
    private readonly equals: unknown,
    private readonly tls?: TlsSettings,
  ) {}

  async close(): Promise<void> {
    await this.tls?.close();
  }

  private async read(ctx: ProviderContext): Promise<{ drained: boolean; value: unknown }> {
    const res = await sendHttpCall(ctx, this.checkCall, { what: 'check' });
    const value = readJsonPath(res.json(), this.jsonPath);
    return { drained: jsonValueEquals(value, this.equals), value };
  }

  async drain(ctx: ProviderContext): Promise<Saved> {
    // A repeated drain (resume) must keep what the first attempt saw, not the state it left behind.
    let saved: Saved;
    if (isSaved(ctx.previous)) {
      saved = ctx.previous;
    } else {
      const before = await this.read(ctx);
      saved = { wasDrained: before.drained };
      if (before.drained) ctx.log(`already drained before graywave (${this.jsonPath} = ${JSON.stringify(before.value)}): restore will leave it so`);
    }
    await sendHttpCall(ctx, this.drainCall, { what: 'drain' });
    return saved;
  }

  async isDrained(ctx: ProviderContext): Promise<Check> {
    try {
      const { drained, value } = await this.read(ctx);
      const observed = `${this.jsonPath} = ${JSON.stringify(value ?? null)}`;
      return drained ? { done: true, observed } : { done: false, observed: `${observed}, waiting for ${JSON.stringify(this.equals)}` };
    } catch (err) {
      return { done: false, observed: `state unknown: ${(err as Error).message}` };
    }
  }

  /** Serving again: the read-back no longer says drained (or it was drained before graywave: left so). */
  async isRestored(ctx: ProviderContext, saved: unknown): Promise<Check> {
    if (!isSaved(saved)) return { done: false, observed: 'http provider: saved drain data is missing or malformed' };
    try {
      const { drained, value } = await this.read(ctx);
      const observed = `${this.jsonPath} = ${JSON.stringify(value ?? null)}`;
      if (saved.wasDrained) return { done: true, observed: `${observed} (drained before graywave: left so)` };
      return drained ? { done: false, observed: `${observed}, still drained` } : { done: true, observed };
    } catch (err) {
      return { done: false, observed: `state unknown: ${(err as Error).message}` };
    }
  }

  /** Preflight: the read-back answers for this host (the admin endpoint is there and speaks the expected JSON). */
  async isRegistered(ctx: ProviderContext): Promise<Check> {
    try {
      const { value } = await this.read(ctx);
      if (value === undefined) return { done: false, observed: `the check answer has no ${this.jsonPath}` };
      return { done: true, observed: `${this.jsonPath} = ${JSON.stringify(value)}` };
    } catch (err) {
      return { done: false, observed: `state unknown: ${(err as Error).message}` };
    }
  }

  async restore(ctx: ProviderContext, saved: unknown): Promise<void> {
    if (!isSaved(saved)) throw new ProviderError('http provider: saved drain data is missing or malformed', false);
    if (saved.wasDrained) {
      ctx.log('host was drained before graywave drained it: leaving it drained');
      return;
    }
    await sendHttpCall(ctx, this.restoreCall, { what: 'restore' });
  }
}

export const httpProviderType: ProviderType<HttpProviderOptions> = {
  // Not `http`: that name belongs to the HTTP monitor, and provider type names are one namespace.
  type: 'http-admin',
  role: 'drain',
  options: httpOptions,
  doc: {
    summary:
      'A system with its own HTTP admin endpoints (the app itself, a home-grown registry): one call takes the host out, one brings it back, and a read-back call decides "drained".',
    checkedAgainst: 'a local HTTP server (requests asserted)',
    example:
      'type: http-admin\ndrain: { http: "http://{{host.address}}:8080/admin/offline", method: POST }\nrestore: { http: "http://{{host.address}}:8080/admin/online", method: POST }\ncheck: { http: "http://{{host.address}}:8080/admin/status", jsonPath: state, equals: offline }',
    options: {
      'check.jsonPath': 'Where in the JSON answer the state is, e.g. consumer or $.data.state.',
      'check.equals': 'The value at jsonPath that means drained (a string, number, true/false or null); anything else, or no answer, is not drained.',
      drain: 'The call that takes the host out: `{ http, method, body, headers, timeout }`.',
      restore: 'The call that brings it back.',
      check: 'The read-back: a call plus `jsonPath` and the value it `equals` when drained.',
    },
  },
  describe: (o, c) => ({
    drain: `${o.drain.method ?? 'GET'} ${c.render(o.drain.http)}`,
    check: `${o.check.method ?? 'GET'} ${c.render(o.check.http)}: ${o.check.jsonPath} = ${JSON.stringify(o.check.equals)}`,
    restore: `${o.restore.method ?? 'GET'} ${c.render(o.restore.http)}`,
  }),
  create(options, env) {
    const { jsonPath, equals, ...check } = options.check;
    const tls = resolveTls(options.tls, env);
    return new HttpProvider(
      prepareHttpCall(options.drain, env, tls),
      prepareHttpCall(options.restore, env, tls),
      prepareHttpCall(check, env, tls),
      jsonPath,
      equals,
      tls,
    );
  },
};
