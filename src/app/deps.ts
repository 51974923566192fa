import { setMaxListeners } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { EngineDeps } from '../engine/context.js';
import type { EngineEvent, EventSink } from '../engine/events.js';
import { ProviderSet } from '../engine/providers.js';
import type { StateBackend } from '../journal/backend.js';
import type { Journal } from '../journal/journal.js';
import { Notifier } from '../notify/notifier.js';
import type { Plan } from '../plan/build.js';
import type { Playbook } from '../playbook/types.js';
import { jsonRenderer, plainRenderer } from '../render/lines.js';
import { listrRenderer, viewShape, type ViewShape } from '../render/listr.js';
import { withHints } from '../render/hints.js';
import { replay } from '../journal/replay.js';
import { createTransport } from '../transport/index.js';
import type { Transport } from '../transport/types.js';
import { Secrets } from '../util/secrets.js';

export type OutputMode = 'auto' | 'plain' | 'json' | 'silent';

export const isTerminal = (): boolean => !!process.stdin.isTTY && !!process.stdout.isTTY;

/** A yes/no question on the terminal (the default is no). */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  // The terminal is in raw mode while readline asks: Ctrl-C arrives as a key, not a signal. Pass it on as the
  // signal it means (the command stops at the next safe point) and take it as "no".
  const ctl = new AbortController();
  rl.on('SIGINT', () => {
    process.stdout.write('\n');
    ctl.abort();
    process.emit('SIGINT', 'SIGINT');
  });
  try {
    const answer = await rl.question(`${question} [y/N] `, { signal: ctl.signal });
    return /^y(es)?$/i.test(answer.trim());
  } catch {
    return false;
  } finally {
    rl.close();
  }
}

interface View {
  sink: EventSink;
  finish(): Promise<void>;
  /** Runs a question on the terminal with the view out of its way. */
  prompt<T>(ask: () => Promise<T>): Promise<T>;
}

/** The live view for the output mode (a terminal gets listr2, a pipe plain lines), then `onEvent`. */
function renderer(mode: OutputMode, plan: Plan, onEvent?: (e: EngineEvent) => void, rolling = false, shape?: ViewShape): View {
  let base: Omit<View, 'prompt'> & { prompt?: View['prompt'] };
  // A rolling release keeps hosts in flight while a person is asked: the live view cannot step aside for the
  // question without misdrawing them, so such a release gets plain lines (each event as it happens).
  const useMode = mode === 'auto' ? (process.stdout.isTTY && !(rolling && shape?.approve) ? 'listr' : 'plain') : mode;
  if (useMode === 'json') base = { sink: jsonRenderer(), finish: async () => undefined };
  else if (useMode === 'plain') base = { sink: plainRenderer(), finish: async () => undefined };
  else if (useMode === 'listr') base = listrRenderer(plan, undefined, { rolling, shape });
  else base = { sink: () => undefined, finish: async () => undefined };
  return {
    sink: (e) => {
      base.sink(e);
      onEvent?.(e);
    },
    finish: () => base.finish(),
    prompt: base.prompt ?? ((ask) => ask()),
  };
}

/** What the dependency builder needs beyond the playbook, plan and journal. */
export interface DepsOptions {
  /** The release's state directory (`logs/` lives in it). */
  dir: string;
  backend: StateBackend;
  output?: OutputMode;
  onEvent?: (e: EngineEvent) => void;
  signal?: AbortSignal;
  transport?: Transport;
  /** The secrets the given transport resolved its own with (so the release masks them too). */
  secrets?: Secrets;
  /** The playbook as the command was given it, and --state-dir: the halt hints name them. */
  file?: string;
  stateDir?: string;
  /** Events go here instead of to a view of their own (an app of a release train: the train's view shows it). */
  sink?: EventSink;
}

/**
 * Builds the engine's dependencies (transport, providers, notifier, renderer, signal, operator controls) for one
 * command. `finish` flushes the view and notifications and closes what was opened (not the journal or the lock).
 */
export function buildDeps(pb: Playbook, plan: Plan, journal: Journal, o: DepsOptions): { deps: EngineDeps; finish(): Promise<void> } {
  const secrets = o.secrets ?? new Secrets(pb.dir);
  const transport = o.transport ?? createTransport(pb.transport, { dir: pb.dir, secrets });
  const providers = new ProviderSet(pb, { dir: pb.dir, secrets, transport });
  const logDir = join(o.dir, 'logs');
  // Webhook notifications ride on the event sink: they never block or fail the release (src/notify).
  const notifier = pb.notify?.length
    ? new Notifier({
        specs: pb.notify,
        journal,
        secrets,
        logDir,
        dir: pb.dir,
        context: { version: pb.version, waves: plan.waves.length, waveHosts: (w) => plan.waves.find((x) => x.index === w)?.hosts ?? [] },
      })
    : undefined;
  const onEvent = notifier ? (e: EngineEvent) => (notifier.sink(e), o.onEvent?.(e)) : o.onEvent;
  const view: View = o.sink
    ? { sink: o.sink, finish: async () => undefined, prompt: (ask) => ask() }
    : renderer(o.output ?? 'auto', plan, onEvent, pb.waves.mode === 'rolling', viewShape(pb));
  const hintCtx = { file: o.file ?? pb.file, stateDir: o.stateDir, plan, state: () => replay(journal.records) };
  const signal = o.signal ?? new AbortController().signal;
  // Every in-flight step listens on it: with hundreds of hosts in flight that is not a leak.
  setMaxListeners(0, signal);
  const deps: EngineDeps = {
    playbook: pb,
    plan,
    journal,
    transport,
    providers,
    secrets,
    emit: (e) => view.sink(withHints(e, hintCtx)),
    logDir,
    signal,
    controls: () => o.backend.readControls(),
    approve: isTerminal() && (o.output ?? 'auto') !== 'json' ? (q) => view.prompt(() => confirm(q)) : undefined,
  };
  return {
    deps,
    async finish() {
      await view.finish();
      await notifier?.flush();
      await providers.close();
      await transport.close();
    },
  };
}
