import { Listr, type ListrBaseClassOptions, type ListrTaskWrapper, type TestRendererSerializerTaskKeys } from 'listr2';
import type { EngineEvent } from '../engine/events.js';
import type { Plan } from '../plan/build.js';
import { formatMs } from '../util/duration.js';
import { describeEvent } from './lines.js';

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(e: Error): void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

type Task = ListrTaskWrapper<unknown, any, any>;

/**
 * The live terminal view: waves → hosts, each host's title showing its current step and live value.
 * listr2 wants tasks up front, so each wave/host task waits on a promise that engine events settle.
 */
export function listrRenderer(
  plan: Plan,
  write: (line: string) => void = (l) => process.stdout.write(l),
  /** `renderer: 'test'`: listr2's JSON-lines renderer, for tests of what the view shows. */
  opts: { rolling?: boolean; renderer?: 'test' } = {},
) {
  const waves = new Map(plan.waves.map((w) => [w.index, deferred()]));
  const hosts = new Map(plan.waves.flatMap((w) => w.hosts.map((h) => [h, deferred()] as const)));
  const hostTasks = new Map<string, Task>();
  const waveTasks = new Map<number, Task>();
  const pendingTitles = new Map<string, string>();
  /** Hosts this run has started a step on. */
  const active = new Set<string>();
  let started = false;
  let finished: Promise<void> | undefined;
  const tail: string[] = [];

  const list = new Listr(
    plan.waves.map((w) => ({
      title: `Wave ${w.index} (${w.hosts.length} host${w.hosts.length > 1 ? 's' : ''})`,
      task: (_ctx: unknown, task: Task) => {
        waveTasks.set(w.index, task);
        return task.newListr(
          w.hosts.map((h) => ({
            title: h,
            task: async (_c: unknown, t: Task) => {
              hostTasks.set(h, t);
              if (pendingTitles.has(h)) t.title = pendingTitles.get(h)!;
              await hosts.get(h)!.promise;
            },
          })),
          { concurrent: true, exitOnError: false },
        );
      },
    })),
    // Lock-step waves run one after another. In `mode: rolling` hosts of the next checkpoint start while the
    // previous one still has hosts in flight, so every wave section is live at once.
    {
      concurrent: !!opts.rolling,
      exitOnError: true,
      ...(opts.renderer === 'test'
        ? { renderer: 'test' as const, rendererOptions: { task: ['title', 'state'] as TestRendererSerializerTaskKeys[] } }
        : { rendererOptions: { collapseSubtasks: false, collapseErrors: false } }),
    } as ListrBaseClassOptions<unknown, any, any>,
  );

  const setTitle = (host: string, title: string) => {
    const t = hostTasks.get(host);
    if (t) t.title = title;
    else pendingTitles.set(host, title);
  };
  const settleAll = (err?: Error) => {
    for (const d of [...hosts.values(), ...waves.values()]) (err ? d.reject(err) : d.resolve());
  };

  const sink = (e: EngineEvent) => {
    if (!started && (e.event === 'run.start' || e.event === 'rollback.start')) {
      started = true;
      finished = list.run().then(() => undefined, () => undefined);
      if (e.event === 'run.start') return;
    }
    switch (e.event) {
      case 'wave.start':
        // Hosts finished in an earlier run (resume) emit nothing: settle them so the view moves on. Only those: in
        // `mode: rolling` hosts of earlier waves may still be in flight when this wave starts.
        for (const w of plan.waves) {
          if (w.index >= e.wave) break;
          for (const h of w.hosts) if (!active.has(h)) hosts.get(h)?.resolve();
        }
        break;
      case 'step.start':
        active.add(e.host);
        setTitle(e.host, `${e.host} › ${e.step}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
        break;
      case 'step.progress':
        setTitle(e.host, `${e.host} › ${e.step}: ${e.observed}`);
        break;
      case 'host.done':
        setTitle(e.host, `${e.host} done (${formatMs(e.ms)})`);
        hosts.get(e.host)?.resolve();
        break;
      case 'step.failed':
        setTitle(e.host, `${e.host} › ${e.step} failed: ${e.error}`);
        hosts.get(e.host)?.reject(new Error(`${e.step}: ${e.error}${e.output?.length ? '\n' + e.output.join('\n') : ''}`));
        break;
      case 'wave.done':
        for (const h of plan.waves.find((w) => w.index === e.wave)?.hosts ?? []) hosts.get(h)?.resolve();
        waves.get(e.wave)?.resolve();
        break;
      case 'run.done':
      case 'run.halted':
      case 'run.paused':
      case 'rollback.done':
        tail.push(describeEvent(e) ?? '');
        settleAll(e.event === 'run.halted' ? new Error('halted') : undefined);
        break;
      default: {
        if (e.event === 'verify.failed' || (e.event === 'verify.done' && e.evidence) || e.event === 'wave.paused' || e.event === 'switchover.start' || e.event.startsWith('undo')) {
          const text = describeEvent(e);
          if (text) tail.push(text);
        }
      }
    }
  };
  return {
    sink,
    async finish() {
      settleAll();
      await finished;
      for (const line of tail) if (line) write(line + '\n');
    },
  };
}
