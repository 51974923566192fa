import { addZodProblems } from '../messages.js';
import type { z } from 'zod';
import { tlsFileIssues } from '../../util/tls-options.js';
import type { Path, Source } from '../source.js';

export function dotted(path: Path): string {
  return (
    path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
      .join('')
      .replace(/^\./, '') || '(top level)'
  );
}

/** Copies zod issues into the source's issue list, in the project's words (src/playbook/messages.ts). */
export function addZodIssues(src: Source, base: Path, error: z.ZodError): void {
  addZodProblems(src, base, error);
}

/** A `tls` option's file that is missing or unreadable is a playbook error at its key (src/transport/tls.ts reads them later). */
export function addTlsFileIssues(src: Source, base: Path, parsed: unknown, dir: string): void {
  for (const issue of tlsFileIssues(parsed, dir)) {
    const path = [...base, ...issue.path];
    src.add(path, `${dotted(path)}: ${issue.message}`);
  }
}

/**
 * A step or gate with its own time limit (waitDrained `timeout`, a query gate's `for`) must not be cut short by
 * the engine's default limit: default to that limit plus one interval and some slack.
 */
export function ownLimit(params: unknown): number {
  if (params === null || typeof params !== 'object') return 0;
  const p = params as {
    timeout?: unknown;
    for?: unknown;
    interval?: unknown;
    restoreTimeout?: unknown;
    window?: unknown;
    warmup?: { weights?: unknown; every?: unknown };
  };
  const r = p.restoreTimeout;
  const own =
    typeof p.timeout === 'number' ? p.timeout : typeof p.for === 'number' ? p.for : typeof r === 'number' ? r : typeof p.window === 'number' ? p.window : 0;
  // A restore with a warm-up ramp: each ramp step waits `every` (src/actions/provider-steps.ts).
  const w = p.warmup;
  const ramp = w && Array.isArray(w.weights) && typeof w.every === 'number' ? w.weights.length * w.every : 0;
  if (ramp) return ramp + (typeof r === 'number' ? r : 120_000) + 60_000;
  return own ? own + (typeof p.interval === 'number' ? p.interval : 0) + 30_000 : 0;
}
