import { setMaxListeners } from 'node:events';
import { notice, writeDirect } from '../render/notice.js';

/**
 * Ctrl-C / SIGTERM for commands that change a fleet (run, resume, rollback, demo). The first signal aborts the
 * returned signal: the engine stops at its next safe point, journals the halt, the command releases the lock and
 * exits 1. A second one (either kind) stops at once: `force` runs (the demo's sandbox teardown), then the process
 * exits 130 (SIGINT) or 143 (SIGTERM).
 *
 * These are the only SIGINT/SIGTERM listeners of the process: the live view (listr2) is created with
 * `registerSignalListeners: false`, so it never exits on its own (its own handler exits 127 at once).
 */
export function interruptSignal(opts: { what?: string; then?: string; force?: () => Promise<void> } = {}): AbortSignal {
  const ctl = new AbortController();
  // Every command in flight (a preflight asks 16 hosts at once, a wave runs hundreds of steps) listens on it.
  setMaxListeners(0, ctl.signal);
  let count = 0;
  const on = (sig: NodeJS.Signals) => {
    const name = sig === 'SIGINT' ? 'Ctrl-C' : sig;
    if (++count === 1) {
      notice(`stopping ${opts.what ? `${opts.what} ` : ''}at the next safe point${opts.then ? `, ${opts.then}` : ''} (${name} again to force)`);
      ctl.abort(new Error(sig === 'SIGINT' ? 'interrupted (Ctrl-C)' : 'terminated (SIGTERM)'));
      return;
    }
    writeDirect(`\ngraywave: ${name} again: stopping now${opts.force ? '' : ' (the journal shows the step each host was in; graywave resume re-runs it)'}\n`);
    const code = sig === 'SIGINT' ? 130 : 143;
    void (opts.force ?? (async () => undefined))().finally(() => process.exit(code));
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return ctl.signal;
}
