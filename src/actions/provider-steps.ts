import { z } from 'zod';
import { ProviderError } from '../errors.js';
import type { Provider } from '../providers/types.js';
import { duration, formatMs } from '../util/duration.js';
import { pause } from '../util/pause.js';
import type { Action, StepContext } from './types.js';

/** `- drain: dubbo` — take the host out of that system; polled with isDrained until it reads back as drained. */
export const drainAction: Action<string> = {
  doc: {
    options: { drain: 'Name of a provider declared under providers: (not its type).' },
    summary:
      "Takes the host out of a declared provider (registry weight 0, consumers unbound, scheduler node offline, LB member down), then polls the provider's read-back until it says drained. Rollback restores.",
    checkedAgainst: 'see each provider',
    example: '- drain: dubbo',
  },
  key: 'drain',
  params: z.string().min(1),
  defaultName: (p) => `drain:${p}`,
  uses: (p) => [{ provider: p, role: 'drain' }],
  describe: (p) => `drain the host from ${p}, then wait until ${p} reads back drained`,
  do: (ctx, p) => ctx.provider(p).drain(ctx),
  check: (ctx, p) => ctx.provider(p).isDrained(ctx),
  undo: (ctx, p, saved) => ctx.provider(p).restore(ctx, saved),
};

/** How long a restore waits for the system to read the host back as serving, unless the playbook says otherwise. */
export const DEFAULT_RESTORE_TIMEOUT = 2 * 60_000;
const RESTORE_POLL_MS = 1000;

const warmupSchema = z
  .object({
    /** Percentages of the weight the host had when drained, in order (e.g. [10, 50, 100]); 100 is the plain restore. */
    weights: z.array(z.number().int().min(1).max(100)).min(1),
    /** Time at each step before the `watch:` checks run and the next step starts. */
    every: duration,
  })
  .strict()
  .refine((w) => w.weights.every((x, i) => i === 0 || x > w.weights[i - 1]!), { message: 'weights must increase (e.g. [10, 50, 100])', path: ['weights'] });

const restoreObject = z
  .object({
    provider: z.string().min(1),
    /** How long to wait for the system to read the host back as serving (default: the playbook's restoreTimeout, else 2m). */
    restoreTimeout: duration.optional(),
    warmup: warmupSchema.optional(),
  })
  .strict();
type RestoreObject = z.infer<typeof restoreObject>;
/** `restore: NAME` or `restore: {provider, restoreTimeout?, warmup?}` (kept as written: a string stays a string). */
export type RestoreParams = string | RestoreObject;

const restoreParams = z.unknown().transform((v, ctx): RestoreParams => {
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'string' || v === null || typeof v !== 'object') {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: 'a provider name, or {provider: NAME, restoreTimeout: 2m, warmup: {weights: [10, 50, 100], every: 30s}}',
    });
    return z.NEVER;
  }
  const r = restoreObject.safeParse(v);
  if (r.success) return r.data;
  for (const issue of r.error.issues) ctx.addIssue(issue as z.IssueData);
  return z.NEVER;
});

const restoreOf = (p: RestoreParams): RestoreObject => (typeof p === 'string' ? { provider: p } : p);

/** The step's own limit: `restoreTimeout` of the step, else of the playbook, else 2m; never past the step deadline. */
function restoreDeadline(ctx: StepContext, p: RestoreObject): { at: number; limit: number } {
  const limit = p.restoreTimeout ?? ctx.playbook.restoreTimeoutMs ?? DEFAULT_RESTORE_TIMEOUT;
  const at = Date.now() + limit;
  return { at: Number.isFinite(ctx.deadline) && ctx.deadline > 0 ? Math.min(at, ctx.deadline - 500) : at, limit };
}

const reasonOf = (err: unknown) => ((err as Error)?.message ?? String(err)).split('\n')[0]!;

/**
 * Restore, then poll the provider's read-back until it says the host serves again. A restore that fails with
 * "not there yet" (the instance has not re-registered after the deploy) is tried again until the deadline; an unknown state
 * (failed query) is never "restored". The host fails with `restored in NAME but not serving: <last observed>`.
 */
async function restoreAndConfirm(ctx: StepContext, name: string, provider: Provider, saved: unknown, p: RestoreObject): Promise<void> {
  const { at, limit } = restoreDeadline(ctx, p);
  const notServing = (observed: string) => new ProviderError(`restored in ${name} but not serving: ${observed} (waited ${formatMs(limit)})`);
  for (;;) {
    try {
      await provider.restore(ctx, saved);
      break;
    } catch (err) {
      // Only "not there yet" is waited for here; other failures go to the step's own retries.
      if (ctx.signal.aborted || !(err instanceof ProviderError) || !err.notYet) throw err;
      if (Date.now() >= at) throw notServing(reasonOf(err));
      ctx.progress(`restore not possible yet: ${reasonOf(err)}`);
      ctx.log(`restore ${name}: ${reasonOf(err)}; trying again`);
      await pause(Math.min(RESTORE_POLL_MS, Math.max(0, at - Date.now())), ctx.signal);
    }
  }
  if (!provider.isRestored) {
    ctx.log(`restore ${name}: this provider has no read-back; the write is trusted`);
    return;
  }
  let last = 'no reading yet';
  for (;;) {
    if (ctx.signal.aborted) throw new ProviderError(`restore of ${name} interrupted; last read-back: ${last}`, false);
    try {
      const c = await provider.isRestored(ctx, saved);
      if (c.done) {
        ctx.log(`restore ${name}: serving again${c.observed ? `: ${c.observed}` : ''}`);
        return;
      }
      last = c.observed;
    } catch (err) {
      if (ctx.signal.aborted) throw new ProviderError(`restore of ${name} interrupted; last read-back: ${last}`, false);
      last = `state unknown: ${reasonOf(err)}`;
    }
    ctx.progress(`not serving yet: ${last}`);
    ctx.log(`restore ${name} read-back: ${last}`);
    const left = at - Date.now();
    if (left <= 0) throw notServing(last);
    await pause(Math.min(RESTORE_POLL_MS, left), ctx.signal);
  }
}

/**
 * The warm-up ramp: each step below 100% sets the weight, is journalled (resume repeats the interrupted step and
 * goes on), waits `every`, then runs the playbook's `watch:` checks. A failing check drains the host again and
 * fails the step. The final 100% is the plain restore.
 */
async function warmUp(ctx: StepContext, name: string, provider: Provider, saved: unknown, w: NonNullable<RestoreObject['warmup']>): Promise<void> {
  if (!provider.setWeight) throw new ProviderError(`${name} cannot set a weight, so it cannot warm a host up: remove warmup from this restore step`, false);
  const ramp = w.weights.filter((x) => x < 100);
  const prev = ctx.previous as { warmup?: unknown } | null | undefined;
  const from = typeof prev?.warmup === 'number' && prev.warmup >= 0 && prev.warmup < ramp.length ? prev.warmup : 0;
  if (from > 0) ctx.log(`warm-up ${name}: resuming at step ${from + 1} of ${ramp.length} (${ramp[from]}%)`);
  for (let i = from; i < ramp.length; i++) {
    const percent = ramp[i]!;
    await provider.setWeight(ctx, saved, percent);
    await ctx.save?.({ warmup: i, percent });
    ctx.progress(`warm-up ${percent}% (step ${i + 1} of ${ramp.length}), next in ${formatMs(w.every)}`);
    ctx.log(`warm-up ${name}: weight at ${percent}% of the saved weight`);
    await pause(w.every, ctx.signal);
    if (ctx.signal.aborted) throw new ProviderError(`warm-up of ${name} interrupted at ${percent}%`, false);
    const checked = (await ctx.watch?.()) ?? { ok: true, observed: 'no watch checks' };
    if (!checked.ok) {
      let again = 'the host was drained again';
      try {
        // With the drain's own saved data as `previous`, so the provider keeps the values it saved first.
        await provider.drain({ ...ctx, previous: saved });
      } catch (err) {
        again = `draining it again FAILED: ${reasonOf(err)}`;
      }
      ctx.log(`warm-up ${name} stopped at ${percent}%: ${checked.observed}; ${again}`);
      throw new ProviderError(`warm-up in ${name} stopped at ${percent}%: ${checked.observed}; ${again}`, false);
    }
  }
}

/**
 * `- restore: dubbo` or `- restore: {provider: dubbo, restoreTimeout: 5m, warmup: {weights: [10, 50, 100], every: 30s}}`
 * — undo what this host's drain of that provider changed, then wait until the system reads the host back as serving.
 * Rolled back by draining again.
 */
export const restoreAction: Action<RestoreParams> = {
  doc: {
    options: { restore: 'A provider name (drain: NAME earlier in the pipeline), or { provider, restoreTimeout, warmup }.' },
    summary:
      "Undoes exactly what this host's drain of that provider changed (a group written by relabel in between stays), then waits until the provider reads the host back as serving (restoreTimeout, default: the playbook's restoreTimeout, else 2m). The object form can warm the host up through increasing weights (warmup: {weights, every}), running the watch checks at each step. Rollback drains again.",
    checkedAgainst: 'see each provider (isRestored read-back)',
    example: '- restore: { provider: dubbo, restoreTimeout: 5m, warmup: { weights: [10, 50, 100], every: 30s } }',
  },
  key: 'restore',
  params: restoreParams,
  defaultName: (p) => `restore:${restoreOf(p).provider}`,
  uses: (p) => [{ provider: restoreOf(p).provider, role: 'drain' }],
  describe: (p) => {
    const r = restoreOf(p);
    const ramp = r.warmup ? `, warming up through ${r.warmup.weights.map((x) => `${x}%`).join(', ')} every ${formatMs(r.warmup.every)}` : '';
    return `restore the host in ${r.provider} (what drain changed, and nothing else)${ramp}, then wait until ${r.provider} reads it back as serving`;
  },
  async do(ctx, p) {
    const r = restoreOf(p);
    const saved = ctx.savedOf('drain', r.provider);
    if (saved === undefined) throw new ProviderError(`no completed drain of ${r.provider} for this host in the journal: nothing to restore`, false);
    const provider = ctx.provider(r.provider);
    if (r.warmup) await warmUp(ctx, r.provider, provider, saved, r.warmup);
    await restoreAndConfirm(ctx, r.provider, provider, saved, r);
    return null;
  },
  async undo(ctx, p) {
    const r = restoreOf(p);
    const saved = ctx.savedOf('drain', r.provider);
    await ctx.provider(r.provider).drain(saved === undefined ? ctx : { ...ctx, previous: saved });
  },
};

interface RelabelParams {
  provider: string;
  group?: string;
}

/** `- relabel: { provider: dubbo, group: GREEN }` — move the host into the release group (default: the playbook's `group`). */
export const relabelAction: Action<RelabelParams> = {
  doc: {
    options: {
      relabel: 'The provider and group: { provider, group }.',
      'relabel.provider': 'A provider that can relabel (dubbo-zookeeper tag, nacos metadata, etcd field).',
      'relabel.group': "Group to move the host into; default the playbook's group (GREEN).",
    },
    summary:
      "Moves the host into a group (default: the playbook's `group`, GREEN) in a provider that can (Dubbo tag, Nacos metadata, etcd field). Rollback puts the previous label back.",
    checkedAgainst: 'see each provider',
    example: '- relabel: { provider: dubbo, group: GREEN }',
  },
  key: 'relabel',
  params: z.object({ provider: z.string().min(1), group: z.string().min(1).optional() }).strict(),
  defaultName: (p) => `relabel:${p.provider}`,
  uses: (p) => [{ provider: p.provider, role: 'drain' }],
  describe: (p, c) => `relabel the host into group ${c.render(p.group ?? '{{group}}')} in ${p.provider}`,
  async do(ctx, p) {
    const provider = ctx.provider(p.provider);
    if (!provider.relabel) throw new ProviderError(`provider ${p.provider} cannot relabel hosts`, false);
    return provider.relabel(ctx, p.group ?? ctx.playbook.group);
  },
  async undo(ctx, p, saved) {
    await ctx.provider(p.provider).restoreLabel?.(ctx, saved);
  },
};
