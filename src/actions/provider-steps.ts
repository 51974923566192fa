import { z } from 'zod';
import { ProviderError } from '../errors.js';
import type { Action } from './types.js';

/** `- drain: dubbo` — take the host out of that system; polled with isDrained until it reads back as drained. */
export const drainAction: Action<string> = {
  doc: { summary: 'Takes the host out of a declared provider (registry weight 0, consumers unbound, scheduler node offline, LB member down), then polls the provider\'s read-back until it says drained. Rollback restores.', checkedAgainst: 'see each provider', example: '- drain: dubbo' },
  key: 'drain',
  params: z.string().min(1),
  defaultName: (p) => `drain:${p}`,
  uses: (p) => [{ provider: p, role: 'drain' }],
  describe: (p) => `drain the host from ${p}, then wait until ${p} reads back drained`,
  do: (ctx, p) => ctx.provider(p).drain(ctx),
  check: (ctx, p) => ctx.provider(p).isDrained(ctx),
  undo: (ctx, p, saved) => ctx.provider(p).restore(ctx, saved),
};

/** `- restore: dubbo` — undo what this host's drain of that provider changed. Rolled back by draining again. */
export const restoreAction: Action<string> = {
  doc: { summary: 'Undoes exactly what this host\'s drain of that provider changed (a group written by relabel in between stays). Rollback drains again.', checkedAgainst: 'see each provider', example: '- restore: dubbo' },
  key: 'restore',
  params: z.string().min(1),
  defaultName: (p) => `restore:${p}`,
  uses: (p) => [{ provider: p, role: 'drain' }],
  describe: (p) => `restore the host in ${p} (what drain changed, and nothing else)`,
  async do(ctx, p) {
    const saved = ctx.savedOf('drain', p);
    if (saved === undefined) throw new ProviderError(`no completed drain of ${p} for this host in the journal: nothing to restore`, false);
    await ctx.provider(p).restore(ctx, saved);
    return null;
  },
  async undo(ctx, p) {
    await ctx.provider(p).drain(ctx);
  },
};

interface RelabelParams {
  provider: string;
  group?: string;
}

/** `- relabel: { provider: dubbo, group: GREEN }` — move the host into the release group (default: the playbook's `group`). */
export const relabelAction: Action<RelabelParams> = {
  doc: { summary: 'Moves the host into a group (default: the playbook\'s `group`, GREEN) in a provider that can (Dubbo tag, Nacos metadata, etcd field). Rollback puts the previous label back.', checkedAgainst: 'see each provider', example: '- relabel: { provider: dubbo, group: GREEN }' },
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
