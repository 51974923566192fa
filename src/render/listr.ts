import chalk from 'chalk';
import { Listr, type ListrBaseClassOptions, type ListrTask, type ListrTaskWrapper, type TestRendererSerializerTaskKeys } from 'listr2';
import type { EngineEvent } from '../engine/events.js';
import type { Plan } from '../plan/build.js';
import type { Playbook } from '../playbook/types.js';
import { formatMs } from '../util/duration.js';
import { describeEvent } from './lines.js';
import { takeNotices } from './notice.js';

type Task = ListrTaskWrapper<unknown, any, any>;

/** How an item of the view ends: done, failed (with the message listr2 shows), or skipped (never started). */
type Outcome = { kind: 'done' } | { kind: 'failed'; message: string } | { kind: 'skipped'; message: string };

/**
 * One line of the view (a host, a verify check, a routing change, the switchover, an approval, a wave): listr2
 * wants its tasks up front, so each task waits for the engine's events to settle it. An item without a title is not
 * drawn (listr2 hides untitled tasks): checkpoint items get their title when the engine reaches them.
 */
class Item {
  task?: Task;
  title: string;
  started = false;
  failure?: string;
  outcome?: Outcome;
  private settleFn?: (o: Outcome) => void;
  readonly settled: Promise<Outcome>;
  constructor(title = '') {
    this.title = title;
    this.settled = new Promise<Outcome>((res) => (this.settleFn = res));
  }
  bind(task: Task): void {
    this.task = task;
    task.title = this.title;
  }
  setTitle(title: string): void {
    this.title = title;
    if (this.task) this.task.title = title;
  }
  settle(o: Outcome): void {
    if (this.outcome) return;
    this.outcome = o;
    this.settleFn!(o);
  }
  /** Ends a started item as it stands: failed if a failure was seen, else done. */
  close(): void {
    if (!this.started) return this.settle({ kind: 'done' });
    this.settle(this.failure ? { kind: 'failed', message: this.failure } : { kind: 'done' });
  }
}

/** Runs an item as a listr2 task body. */
async function runItem(item: Item, task: Task): Promise<void> {
  item.bind(task);
  const o = await item.settled;
  if (o.kind === 'failed') throw new Error(o.message);
  if (o.kind === 'skipped') task.skip(o.message);
}

/** What the view needs from the playbook besides the plan: the checkpoint items of each wave. */
export interface ViewShape {
  /** Verify checks run after each wave (names, in order; approvals excluded). */
  verify: string[];
  /** Routing rules (names). */
  routing: string[];
  /** `pause: approve` or an approve gate: a person's go between waves. */
  approve: boolean;
  /** `pause: <duration>` between waves. */
  pauseMs?: number;
}

/** The view's checkpoint items, from the playbook. */
export function viewShape(pb: Playbook): ViewShape {
  return {
    verify: pb.verify.filter((g) => g.gate !== 'approve' && !(pb.hotfix && g.skipOnHotfix)).map((g) => g.name),
    routing: (pb.routing ?? []).map((r) => r.name),
    approve: pb.waves.pause.kind === 'approve' || pb.verify.some((g) => g.gate === 'approve'),
  };
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** A train wave's `app/host` names grouped by app, in order of first appearance. */
function byApp(names: string[]): [string, string[]][] {
  const groups = new Map<string, string[]>();
  for (const h of names) {
    const app = h.slice(0, h.indexOf('/'));
    groups.set(app, [...(groups.get(app) ?? []), h]);
  }
  return [...groups];
}

/** A listr2 task: a title and a body. */
type TaskDef = ListrTask<unknown, any, any>;

/** The tasks of a wave's hosts (forward or undo): one per host, grouped by app in a train. */
function hostTasks(names: string[], train: boolean, itemOf: (host: string) => Item): TaskDef[] {
  const hostTask = (h: string): TaskDef => ({ title: h, task: (_c, t) => runItem(itemOf(h), t) });
  if (!train) return names.map(hostTask);
  return byApp(names).map(([app, hs]) => ({
    title: `${app} (${plural(hs.length, 'host')})`,
    task: (_c, t) => t.newListr(hs.map(hostTask), { concurrent: true, exitOnError: false }),
  }));
}

/** listr2 options of a section's list. */
function listOptions(concurrent: boolean, renderer?: 'test'): ListrBaseClassOptions<unknown, any, any> {
  return {
    concurrent,
    exitOnError: false,
    registerSignalListeners: false,
    ...(renderer === 'test'
      ? { renderer: 'test' as const, rendererOptions: { task: ['title', 'state'] as TestRendererSerializerTaskKeys[] } }
      : { rendererOptions: { collapseSubtasks: false, collapseErrors: false, collapseSkips: true, showSkipMessage: true } }),
  } as ListrBaseClassOptions<unknown, any, any>;
}

/**
 * The waves in sections: a new one after each wave that waits for a person (lock-step); one for a rolling release.
 * (A rolling release with approvals is drawn as plain lines instead: see src/app/deps.ts.)
 */
function sectionsOf(waveIndex: number[], rolling: boolean, approve: boolean) {
  const sections: number[][] = [];
  for (const w of waveIndex) {
    if (!sections.length || (!rolling && approve && w !== waveIndex[0])) sections.push([]);
    sections[sections.length - 1]!.push(w);
  }
  /** The section of each wave. */
  const sectionOf = new Map(sections.flatMap((s, i) => s.map((w) => [w, i] as const)));
  return { sections, sectionOf };
}

/** The forward view's items: a line per wave and per host, and each wave's checkpoint items (untitled until reached). */
function forwardItems(plan: Plan, shape: ViewShape, train: boolean) {
  const firstWave = plan.waves[0]?.index ?? 0;
  const lastWave = plan.waves[plan.waves.length - 1]?.index ?? 0;
  const waveItems = new Map<number, Item>();
  const hosts = new Map<string, Item>();
  /** Checkpoint items per wave, keyed `verify:NAME`, `routing:PHASE:RULE`, `switchover`, `gate`. */
  const checkpoints = new Map<number, Map<string, Item>>();
  for (const w of plan.waves) {
    waveItems.set(w.index, new Item(`Wave ${w.index} (${plural(w.hosts.length, 'host')}${train ? ` of ${plural(byApp(w.hosts).length, 'app')}` : ''})`));
    for (const h of w.hosts) hosts.set(h, new Item(h));
    const cp = new Map<string, Item>();
    if (w.index === firstWave) for (const r of shape.routing) cp.set(`routing:publish:${r}`, new Item());
    for (const v of shape.verify) cp.set(`verify:${v}`, new Item());
    for (const r of shape.routing) cp.set(`routing:widen:${r}`, new Item());
    if (plan.switchoverAfterWave === w.index) cp.set('switchover', new Item());
    if (w.index !== lastWave) cp.set('gate', new Item());
    if (w.index === lastWave) for (const r of shape.routing) cp.set(`routing:final:${r}`, new Item());
    checkpoints.set(w.index, cp);
  }
  return { waveItems, hosts, checkpoints };
}

/** The rollback section's items: a line per host under its wave. */
interface UndoView {
  /** Items in the order the rollback reaches them: routing, then each wave newest first, the switchover in its place. */
  order: string[];
  items: Map<string, Item>;
  hosts: Map<string, Item>;
  /** The `wave:N` item of each host. */
  waveKey: Map<string, string>;
  /** The hosts of each wave undone. */
  byWave: Map<number, string[]>;
}

/** The rollback section's items, from the rollback.start event. */
function undoItems(plan: Plan, e: Extract<EngineEvent, { event: 'rollback.start' }>): UndoView {
  const items = new Map<string, Item>();
  const order: string[] = [];
  const add = (key: string, item: Item) => (items.set(key, item), order.push(key));
  add('routing', new Item());
  const hosts = new Map<string, Item>();
  const waveOfHost = new Map(plan.waves.flatMap((w) => w.hosts.map((h) => [h, w.index] as const)));
  const waveOf = (h: string) => waveOfHost.get(h) ?? e.waves[0] ?? 0;
  const byWave = new Map<number, string[]>();
  for (const h of e.hosts) {
    byWave.set(waveOf(h), [...(byWave.get(waveOf(h)) ?? []), h]);
    hosts.set(h, new Item(h));
  }
  let switchoverPlaced = plan.switchoverAfterWave === undefined;
  for (const w of [...byWave.keys()].sort((a, b) => b - a)) {
    if (!switchoverPlaced && w <= plan.switchoverAfterWave!) ((switchoverPlaced = true), add('switchover', new Item()));
    add(`wave:${w}`, new Item(`Undo wave ${w} (${plural(byWave.get(w)!.length, 'host')})`));
  }
  if (!switchoverPlaced) add('switchover', new Item());
  return { order, items, hosts, waveKey: new Map(e.hosts.map((h) => [h, `wave:${waveOf(h)}`])), byWave };
}

/** What the view does on each kind of event (events it does not draw have no handler). */
type Handlers = { [K in EngineEvent['event']]?: (e: Extract<EngineEvent, { event: K }>) => void | Promise<void> };

/**
 * The live terminal view. The release is drawn in sections, each a listr2 list of waves; a section ends where a
 * person is asked (an approval), so the question is printed below a finished section and answered on a plain line,
 * never under a redrawing view. Each wave shows its hosts (current step and live value), then, as the engine reaches
 * them, its verify checks with their values, routing changes, the switchover and the approval or pause. A rollback
 * (the command, or onFailure) gets a section of its own: undo per host and step, newest wave first. After a halt,
 * hosts and waves never started show as skipped; the view ends with the same summary lines as plain output.
 *
 * listr2's own SIGINT handler (which exits 127 at once) is off: Ctrl-C is the command's (see src/cli/signals.ts),
 * and a notice shows in the view.
 */
export function listrRenderer(
  plan: Plan,
  write: (line: string) => void = (l) => process.stdout.write(l),
  /** `renderer: 'test'`: listr2's JSON-lines renderer, for tests of what the view shows. */
  opts: { rolling?: boolean; renderer?: 'test'; shape?: ViewShape } = {},
) {
  const shape: ViewShape = opts.shape ?? { verify: [], routing: [], approve: false };
  const waveIndex = plan.waves.map((w) => w.index);
  const lastWave = waveIndex[waveIndex.length - 1] ?? 0;
  const firstWave = waveIndex[0] ?? 0;
  // A release train's plan names its hosts `app/host` (a playbook's host names have no `/`): each wave shows its
  // hosts grouped by app, in the train's start order (src/plan/train.ts).
  const train = plan.waves.length > 0 && plan.waves.every((w) => w.hosts.every((h) => h.includes('/')));
  const { waveItems, hosts, checkpoints } = forwardItems(plan, shape, train);
  const waveStarted = new Set<number>();
  const active = new Set<string>();
  const tail: string[] = [];
  let halted = false;
  /** What a host or wave never started is called at the end: after a --limit run it is pending, not skipped. */
  let notStarted = 'not started';
  /** The hosts each wave's wave.start named (a `--limit` run names only its own), and whether this run resumes. */
  const ran = new Map<number, Set<string>>();
  let resumed = false;
  const { sections, sectionOf } = sectionsOf(waveIndex, !!opts.rolling, shape.approve);

  // --- running sections -------------------------------------------------------------------------------------
  let live: { done: Promise<void>; release: () => void } | undefined;
  let nextSection = 0;
  /** Waves whose section has run (or is running). */
  const shown = new Set<number>();

  const waveTask = (w: number): TaskDef => ({
    title: waveItems.get(w)!.title,
    task: (_, task) => {
      const item = waveItems.get(w)!;
      item.bind(task);
      if (!waveStarted.has(w) && halted) {
        item.settle({ kind: 'skipped', message: `${item.title}: ${notStarted}` });
        task.skip(`${item.title}: ${notStarted}`);
        return;
      }
      item.started = true;
      const wave = plan.waves.find((x) => x.index === w)!;
      const cp = [...checkpoints.get(w)!.entries()];
      const checkpointTask = ([, it]: [string, Item]): TaskDef => ({ title: '', task: (_c, t) => runItem(it, t) });
      const before = cp.filter(([k]) => k.startsWith('routing:publish:'));
      const after = cp.filter(([k]) => !k.startsWith('routing:publish:'));
      return task.newListr([...before.map(checkpointTask), ...hostTasks(wave.hosts, train, (h) => hosts.get(h)!), ...after.map(checkpointTask)], {
        concurrent: true,
        exitOnError: false,
      });
    },
  });

  /** Starts a listr2 list of tasks; resolves when it has drawn its last frame (the terminal is free again). */
  const runSection = (tasks: TaskDef[], concurrent: boolean): void => {
    const list = new Listr(tasks as never, listOptions(concurrent, opts.renderer));
    const giveBack = takeNotices((text) => {
      // On the title of what runs now: a wave of the release, or a wave of the rollback; else after the view.
      const running = [...waveItems].filter(([w, it]) => waveStarted.has(w) && it.started && !it.outcome).map(([, it]) => it);
      for (const [k, it] of undo?.items ?? []) if (k.startsWith('wave:') && it.task) running.push(it);
      for (const it of running) it.setTitle(`${it.title.split(' — ')[0]} — ${text}`);
      if (!running.length) tail.unshift(`graywave: ${text}`);
    });
    const done = list.run().then(
      () => undefined,
      () => undefined,
    );
    live = { done: done.finally(giveBack), release: giveBack };
  };

  /** Starts the section holding wave `w` (and any section skipped before it), ending the live one first. */
  const ensureSection = async (w: number): Promise<void> => {
    const idx = sectionOf.get(w);
    if (idx === undefined || idx < nextSection) return;
    while (nextSection <= idx) {
      await endLive();
      const sec = sections[nextSection++]!;
      for (const x of sec) shown.add(x);
      runSection(sec.map(waveTask), !!opts.rolling);
    }
  };

  const endLive = async (): Promise<void> => {
    if (!live) return;
    const l = live;
    await l.done;
    if (live === l) live = undefined;
  };

  /**
   * A host of wave `w` that reported nothing in this run: done before (a resume), or left out by `--limit` — the
   * wave's own wave.start names only the hosts it runs, and a fresh run has nothing done before.
   */
  const settleIdle = (w: number, h: string) => {
    if (ran.get(w)?.has(h) ?? resumed) hosts.get(h)!.settle({ kind: 'done' });
    else hosts.get(h)!.settle({ kind: 'skipped', message: `${h}: pending (outside --limit)` });
  };

  /** Settles every item of the waves in the live section, so that it can end. */
  const settleShown = (asHalted: boolean) => {
    for (const w of shown) settleWave(w, asHalted);
  };

  const settleWave = (w: number, asHalted: boolean) => {
    for (const h of plan.waves.find((x) => x.index === w)?.hosts ?? []) {
      const it = hosts.get(h)!;
      if (active.has(h)) it.close();
      else if (asHalted || halted) it.settle({ kind: 'skipped', message: `${h}: ${notStarted}` });
      else settleIdle(w, h);
    }
    for (const it of checkpoints.get(w)?.values() ?? []) it.close();
  };

  const checkpoint = (w: number, key: string): Item | undefined => checkpoints.get(w)?.get(key);
  /** A checkpoint item of wave `w` starts: items of this wave started before it are over. */
  const begin = (w: number, key: string, title: string): Item | undefined => {
    const it = checkpoint(w, key);
    if (!it) return undefined;
    for (const [k, other] of checkpoints.get(w)!) if (k !== key && other.started) other.close();
    it.started = true;
    it.setTitle(title);
    return it;
  };

  // --- the rollback section ---------------------------------------------------------------------------------
  let undo: UndoView | undefined;
  const startRollback = async (e: Extract<EngineEvent, { event: 'rollback.start' }>) => {
    // A rollback inside a run (onFailure): the forward view ends first, as it stands.
    settleShown(true);
    await endLive();
    const view = (undo = undoItems(plan, e));
    if (!e.hosts.length) return; // nothing to draw: the summary line says so
    const undoTask = (key: string): TaskDef => ({
      title: view.items.get(key)!.title,
      task: (_, task) => {
        const it = view.items.get(key)!;
        if (!key.startsWith('wave:')) return runItem(it, task);
        it.bind(task);
        const hs = view.byWave.get(Number(key.slice(5)))!;
        return task.newListr(
          hostTasks(hs, train, (h) => view.hosts.get(h)!),
          { concurrent: true, exitOnError: false },
        );
      },
    });
    runSection(view.order.map(undoTask), false);
  };
  /** The rollback reached `key` (routing or switchover): the release-level items before it are over. */
  const reach = (key: string) => {
    if (!undo) return;
    for (const k of undo.order.slice(0, Math.max(0, undo.order.indexOf(key)))) if (!k.startsWith('wave:')) undo.items.get(k)!.close();
  };
  const releaseUndo = (key: 'routing' | 'switchover', text: string, failed: boolean) => {
    if (!undo) return void tail.push(text);
    reach(key);
    const it = undo.items.get(key)!;
    it.started = true;
    if (failed) it.failure = text;
    it.setTitle(text);
  };
  const undoLine = (host: string, text: string, failed = false) => {
    if (host === '_switchover') return releaseUndo('switchover', `switchover: ${text}`, failed);
    const it = undo?.hosts.get(host);
    if (!it) return;
    // Hosts are undone after the routing rules and, for waves before it, after the switchover.
    reach(undo!.waveKey.get(host)!);
    it.started = true;
    if (failed) it.failure = `${host} › ${text}`;
    it.setTitle(`${host} › ${text}`);
  };

  /** The release is over: settle what is shown; after a halt, draw the waves never started as skipped. */
  const finishForward = async (asHalted: boolean) => {
    settleShown(asHalted);
    await endLive();
    if (asHalted && nextSection < sections.length) {
      const rest = sections.slice(nextSection).flat();
      nextSection = sections.length;
      for (const w of rest) shown.add(w);
      runSection(rest.map(waveTask), false);
      await endLive();
    }
  };

  // --- events -----------------------------------------------------------------------------------------------
  const verifyEnded = (e: Extract<EngineEvent, { event: 'verify.done' | 'verify.failed' }>) => {
    const text = describeEvent(e)!.replace(/^wave \d+ /, '');
    const it = checkpoint(e.wave, `verify:${e.check}`) ?? begin(e.wave, `verify:${e.check}`, text);
    if (!it) return void tail.push(describeEvent(e)!); // a `watch:` check: not a checkpoint of the view
    it.started = true;
    it.setTitle(text);
    if (e.event === 'verify.failed') it.failure = text;
    // A judge's verdict carries its evidence: printed under the release too, also when it passes.
    if (e.event === 'verify.done' && e.evidence) tail.push(describeEvent(e)!);
  };
  const routingEnded = (e: Extract<EngineEvent, { event: 'routing.applied' | 'routing.failed' }>) => {
    if (e.event === 'routing.failed' && e.phase === 'undo') return void releaseUndo('routing', describeEvent(e)!, true);
    const w = e.phase === 'publish' ? firstWave : e.phase === 'final' ? lastWave : e.wave;
    const text = describeEvent(e)!;
    const it = begin(w, `routing:${e.phase}:${e.rule}`, text);
    if (it && e.event === 'routing.failed') it.failure = text;
  };
  const runEnded = async (e: Extract<EngineEvent, { event: 'run.done' | 'run.paused' }>) => {
    tail.push(describeEvent(e)!);
    await finishForward(false);
  };

  const on: Handlers = {
    // Hosts and waves: a host's line shows its current step; a wave's hosts settle when it is over.
    'run.start': async (e) => {
      resumed = e.resumed;
      await ensureSection(firstWave);
    },
    'wave.start': async (e) => {
      waveStarted.add(e.wave);
      ran.set(e.wave, new Set(e.hosts));
      // Lock-step: the previous waves' checkpoints are over once the next wave starts.
      if (!opts.rolling) for (const w of waveIndex) if (w < e.wave) settleWave(w, false);
      await ensureSection(e.wave);
      // Hosts finished in an earlier run (resume) emit nothing: settle them so the view moves on. In `mode:
      // rolling` hosts of earlier waves may still be in flight when this wave starts: only those not started.
      for (const w of plan.waves) {
        if (w.index >= e.wave) break;
        for (const h of w.hosts) if (!active.has(h)) settleIdle(w.index, h);
      }
    },
    // A train app whose part of the wave waits for its `after:` apps: each of its hosts says so until it starts.
    'app.waiting': (e) => {
      for (const h of plan.waves.find((w) => w.index === e.wave)?.hosts ?? [])
        if (h.startsWith(`${e.app}/`) && !active.has(h)) hosts.get(h)?.setTitle(`${h} › waiting for ${e.after.join(', ')}`);
    },
    'step.start': (e) => {
      active.add(e.host);
      const it = hosts.get(e.host);
      if (!it) return;
      it.started = true;
      it.setTitle(`${e.host} › ${e.step}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
    },
    'step.progress': (e) => hosts.get(e.host)?.setTitle(`${e.host} › ${e.step}: ${e.observed}`),
    'step.retry': (e) => hosts.get(e.host)?.setTitle(`${e.host} › ${e.step}: attempt ${e.attempt} failed, retrying: ${e.error}`),
    'host.done': (e) => {
      const it = hosts.get(e.host);
      it?.setTitle(`${e.host} done (${formatMs(e.ms)})`);
      it?.settle({ kind: 'done' });
    },
    'step.failed': (e) => {
      const it = hosts.get(e.host);
      if (!it) return;
      it.failure = `${e.host} › ${e.step} failed: ${e.error}${e.output?.length ? '\n' + e.output.join('\n') : ''}`;
      it.setTitle(`${e.host} › ${e.step} failed`);
      it.settle({ kind: 'failed', message: it.failure });
    },
    'wave.done': (e) => {
      for (const h of plan.waves.find((w) => w.index === e.wave)?.hosts ?? [])
        if (!active.has(h) && (ran.get(e.wave)?.has(h) ?? true)) hosts.get(h)?.settle({ kind: 'done' });
    },
    // Checkpoints after a wave: verify checks, routing changes, the switchover, the approval or pause.
    'verify.start': (e) => void begin(e.wave, `verify:${e.check}`, `verify ${e.check}${e.host ? ` on ${e.host}` : ''} …`),
    'verify.done': verifyEnded,
    'verify.failed': verifyEnded,
    'routing.applied': routingEnded,
    'routing.failed': routingEnded,
    'routing.undone': (e) => releaseUndo('routing', describeEvent(e)!, false),
    'switchover.start': (e) => void begin(e.afterWave, 'switchover', describeEvent(e)!),
    'switchover.done': (e) => {
      const it = checkpoint(e.afterWave, 'switchover');
      it?.setTitle(`switchover done (${formatMs(e.ms)})`);
      it?.close();
    },
    'wave.paused': (e) => {
      const approval = e.reason === 'waiting for approval';
      begin(
        e.wave,
        'gate',
        approval
          ? `approval: wave ${e.wave} is done — waiting for your answer below`
          : `pause ${e.reason.replace(/^pause /, '')}${e.until ? ` (until ${e.until.slice(11, 19)})` : ''}`,
      );
    },
    'wave.approved': (e) => {
      const it = checkpoint(e.wave, 'gate');
      if (it?.task && !it.outcome) it.setTitle(`approved by ${e.by}`);
      else write(`wave ${e.wave} approved by ${e.by}\n`);
      it?.close();
    },
    // The rollback: its own section, undo per host and step.
    'rollback.start': async (e) => {
      await startRollback(e);
      if (!e.hosts.length) tail.push(describeEvent(e)!);
    },
    'undo.start': (e) => undoLine(e.host, `undo ${e.step} …`),
    'undo.done': (e) => undoLine(e.host, `undid ${e.step} (${formatMs(e.ms)})`),
    'undo.skipped': (e) => undoLine(e.host, `${e.step}: skipped (${e.reason})`),
    'undo.failed': (e) => undoLine(e.host, `undo ${e.step} FAILED: ${e.error}`, true),
    'host.undone': (e) => {
      const it = undo?.hosts.get(e.host);
      if (!it) return;
      if (e.ok && !it.failure) it.setTitle(`${e.host} rolled back (${formatMs(e.ms)})`);
      it.close();
    },
    'rollback.done': async (e) => {
      if (undo) {
        for (const it of undo.hosts.values()) it.close();
        for (const it of undo.items.values()) it.close();
        await endLive();
        undo = undefined;
      }
      tail.push(describeEvent(e)!);
    },
    // The end of the release: its summary line goes below the view.
    'run.halted': async (e) => {
      halted = true;
      tail.push(describeEvent(e)!);
      await finishForward(true);
    },
    // A --limit run that finished its hosts: what was not run is drawn as after a halt, as pending.
    'run.limited': async (e) => {
      halted = true;
      notStarted = 'pending (outside --limit)';
      tail.push(describeEvent(e)!);
      await finishForward(true);
    },
    'run.done': runEnded,
    'run.paused': runEnded,
  };
  const handle = async (e: EngineEvent): Promise<void> => {
    await (on[e.event] as ((e: EngineEvent) => void | Promise<void>) | undefined)?.(e);
  };

  const queue: EngineEvent[] = [];
  let draining: Promise<void> = Promise.resolve();
  const sink = (e: EngineEvent) => {
    queue.push(e);
    draining = draining.then(async () => {
      const next = queue.shift();
      if (next) await handle(next).catch(() => undefined);
    });
  };

  return {
    sink,
    /**
     * Runs `ask` (a question on the terminal) with the view out of the way: the live section ends first (the
     * approval line says the answer is asked below), so the prompt is the last thing on the screen.
     */
    async prompt<T>(ask: () => Promise<T>): Promise<T> {
      await draining;
      for (const w of shown) {
        for (const h of plan.waves.find((x) => x.index === w)?.hosts ?? []) if (!active.has(h)) hosts.get(h)?.settle({ kind: 'done' });
        for (const it of checkpoints.get(w)?.values() ?? []) if (!it.started) it.settle({ kind: 'done' });
      }
      // Only a section whose hosts are all settled can end; in a rolling release hosts of the next wave may
      // still be in flight: their section is the next one, not started yet.
      for (const w of shown) for (const it of checkpoints.get(w)?.values() ?? []) it.close();
      await endLive();
      return ask();
    },
    async finish() {
      await draining;
      settleShown(halted);
      for (const it of undo?.hosts.values() ?? []) it.close();
      for (const it of undo?.items.values() ?? []) it.close();
      await endLive();
      for (const line of tail) if (line) write((/^HALTED|FAILED/.test(line) && chalk.level > 0 ? chalk.red(line) : line) + '\n');
    },
  };
}
