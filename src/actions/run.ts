import { z } from 'zod';
import { ProviderError } from '../errors.js';
import type { Action } from './types.js';

interface RunParams {
  run: string;
  undo?: string;
}

async function shell(ctx: Parameters<Action['do']>[0], template: string): Promise<void> {
  const res = await ctx.sh(ctx.renderShell(template));
  if (res.code === 0) return;
  const why = res.timedOut ? 'timed out' : res.code === null ? `killed by ${res.signal}` : `exit ${res.code}`;
  throw new ProviderError(`command failed (${why})`);
}

/** `run: "systemctl stop app"` with optional `undo:` — a plain shell command through the transport. */
export const runAction: Action<RunParams> = {
  doc: {
    options: {
      run: 'Shell command run on the host through the transport (bash --norc --noprofile); templates are shell-quoted.',
      undo: 'Command rollback runs to undo it; without one rollback reports the step as skipped.',
    },
    summary: 'A shell command on the host through the transport; `undo:` is what rollback runs. Values substituted into it are shell-quoted.',
    checkedAgainst: 'bash 5.2 locally and over real OpenSSH 9.2 (Debian 12)',
    example: '- name: stop\n  run: "systemctl stop order"\n  undo: "systemctl start order"\n  timeout: 2m\n  retries: 1',
  },
  key: 'run',
  stepLevel: true,
  params: z.object({ run: z.string().min(1), undo: z.string().min(1).optional() }).strict(),
  defaultName: (p) => p.run.split(/\s+/)[0] ?? 'run',
  describe: (p, ctx) => ctx.renderShell(p.run),
  describeUndo: (p, ctx) => (p.undo ? ctx.renderShell(p.undo) : undefined),
  async do(ctx, p) {
    await shell(ctx, p.run);
    return null;
  },
  async undo(ctx, p) {
    if (p.undo) await shell(ctx, p.undo);
  },
  hasUndo: (p) => p.undo !== undefined,
  // The command may have done part of its work before failing; its undo is written to be safe either way.
  undoAfterFailure: true,
};
