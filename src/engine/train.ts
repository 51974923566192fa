import { currentActor } from '../journal/lock.js';
import { hostStatus, inEffect } from '../journal/replay.js';
import type { Plan } from '../plan/build.js';
import { checkpoint, haltIfAborted, haltInterrupted, onGateProblem, routingAt, type GateProblem } from './checkpoint.js';
import type { EngineDeps } from './context.js';
import type { EngineEvent } from './events.js';
import { watchOnce } from './gates.js';
import { now, ReleaseContext, type Outcome } from './release.js';
import { rollbackHosts } from './rollback.js';
import { undoSwitchover } from './switchover.js';
import { runWaveHosts } from './waves.js';

/** One app of a train as the engine runs it: its own deps (playbook as the train runs it, plan, journal view, transport, providers). */
export interface TrainAppDeps {
  name: string;
  after: string[];
  deps: EngineDeps;
}

/**
 * A release train's dependencies: the train's own (its playbook of `app/host` names, its plan, the train-level journal
 * view, the view's event sink, the signal and the operator controls) and each app's, in start order.
 */
export interface TrainDeps {
  train: EngineDeps;
  apps: TrainAppDeps[];
}

interface App {
  name: string;
  after: string[];
  rc: ReleaseContext;
  plan: Plan;
  /** Why the app's part stopped (from the app's own halt), for the train's halt message. */
  halted?: string;
  /** What the app's part waits for (its check that paused: a marginal judge), for the train's pause message. */
  paused?: string;
}

/** What one app's part of a train wave came to. */
type Part =
  { ok: true; ran: boolean } | { ok: false; ran: boolean; failed?: string[]; problem?: GateProblem; reason?: string; paused?: boolean; held?: boolean };

const prefix = (app: string, host: string) => (host.startsWith('_') ? host : `${app}/${host}`);

/**
 * An app's events as the train shows them: hosts named `app/host`, its checks `app/check`. The app's own run,
 * wave and rollback boundaries are the train's to tell (the train emits one per train wave), so they are dropped;
 * an app's halt reason is kept for the train's halt message.
 */
function appSink(app: App, release: string, emit: (e: EngineEvent) => void) {
  return (e: EngineEvent): void => {
    if (e.event === 'run.halted') app.halted = e.reason;
    if (e.event === 'run.paused') app.paused = e.reason.replace(/^wave \d+: /, '').replace(/; approve with .*$/s, '');
    if (e.event.startsWith('run.') || e.event === 'wave.start' || e.event === 'wave.done' || e.event === 'rollback.start' || e.event === 'rollback.done')
      return;
    const o = { ...e, release, app: app.name } as Record<string, unknown>;
    if (typeof o.host === 'string') o.host = prefix(app.name, o.host);
    if (typeof o.check === 'string') o.check = `${app.name}/${o.check}`;
    emit(o as unknown as EngineEvent);
  };
}

/**
 * Runs (or resumes) a release train: wave k releases the k-th slice of every app (an app's part starts once the
 * apps in its `after:` have done theirs; the others run in parallel), then the train's checks, the switchover and
 * the pause or approval run once for the whole train. A failure in one app holds the others at a safe point (their
 * hosts in flight finish; no new host starts) and halts the train. One journal (records of an app tagged with it)
 * and one lock hold the whole train; resume continues every app from its exact step.
 */
export class TrainEngine {
  private readonly trc: ReleaseContext;
  private readonly apps: App[];

  constructor(private readonly t: TrainDeps) {
    this.trc = new ReleaseContext(t.train);
    this.apps = t.apps.map((a) => {
      const app: App = { name: a.name, after: a.after, plan: a.deps.plan, rc: undefined as unknown as ReleaseContext };
      app.rc = new ReleaseContext({ ...a.deps, emit: appSink(app, t.train.playbook.name, t.train.emit) }, this.trc.controls);
      app.rc.watchOnce = (wave, host) => watchOnce(app.rc, wave, host);
      return app;
    });
    // The train's halt messages list every app's hosts still drained.
    this.trc.stillDrained = () => this.apps.flatMap((a) => a.rc.stillDrained().map((h) => prefix(a.name, h)));
  }

  async run(resumed: boolean): Promise<Outcome> {
    const { trc } = this;
    const { plan, playbook } = this.t.train;
    const started = Date.now();
    await trc.record({ type: 'run', t: now(), phase: resumed ? 'resume' : 'start', by: currentActor() });
    trc.emit({ event: 'run.start', release: trc.release, version: playbook.version, hosts: playbook.hosts.length, waves: plan.waves.length, resumed });
    const stopControls = trc.controls.watch(this.t.train.controls);
    try {
      for (const app of this.apps) if (!(await routingAt(app.rc, 'publish', 0))) return this.halt(`app ${app.name}: ${app.halted ?? 'routing rule failed'}`);
      for (const wave of plan.waves) {
        const o = await this.wave(wave.index);
        if (o !== 'continue') return o;
      }
      const notDone = this.apps.flatMap((a) =>
        a.rc.deps.playbook.hosts.filter((h) => hostStatus(a.rc.state.hosts.get(h.name), a.plan.steps) !== 'done').map((h) => prefix(a.name, h.name)),
      );
      if (notDone.length)
        return trc.halt(
          `${notDone.length} host(s) did not complete: ${notDone.join(', ')}`,
          undefined,
          'fix the cause, then `graywave resume` retries them from the step where each stopped',
        );
      const last = plan.waves[plan.waves.length - 1]?.index ?? 0;
      for (const app of this.apps) if (!(await routingAt(app.rc, 'final', last))) return this.halt(`app ${app.name}: ${app.halted ?? 'routing rule failed'}`);
      return await trc.done(plan.waves.length, started);
    } catch (err) {
      return await trc.haltOnError(err);
    } finally {
      await stopControls();
      await Promise.all([trc.close(), ...this.apps.map((a) => a.rc.close())]);
    }
  }

  private halt(reason: string, wave?: number): Promise<Outcome> {
    return this.trc.halt(reason, wave, 'fix the cause, then `graywave resume` continues every app from the step where it stopped (or `graywave rollback`)');
  }

  /** One train wave: every app's part (in `after:` order), then the train's checkpoint. */
  private async wave(k: number): Promise<Outcome | 'continue'> {
    const { trc } = this;
    const waveHosts = this.t.train.plan.waves.find((w) => w.index === k)!.hosts;
    const aborted = await haltIfAborted(trc, k);
    if (aborted) return aborted;
    let ran = false;
    if (!trc.state.waves.get(k)?.done) {
      if (trc.deps.signal.aborted) return haltInterrupted(trc, k);
      const t0 = Date.now();
      await trc.record({ type: 'wave', t: now(), wave: k, phase: 'started' });
      trc.emit({ event: 'wave.start', release: trc.release, wave: k, hosts: waveHosts });
      const parts = await this.parts(k);
      ran = [...parts.values()].some((p) => p.ran);
      const failedHosts = [...parts.entries()].flatMap(([name, p]) => (p.ok ? [] : (p.failed ?? []).map((h) => prefix(name, h))));
      trc.emit({ event: 'wave.done', release: trc.release, wave: k, ms: Date.now() - t0, failed: failedHosts });
      const stop = await this.afterParts(k, parts, failedHosts);
      if (stop) return stop;
      await trc.record({ type: 'wave', t: now(), wave: k, phase: 'done' });
    }
    const r = await checkpoint(trc, k, waveHosts, ran);
    return typeof r === 'object' ? this.onGateProblem(r) : r;
  }

  /** What the parts of a wave say about going on: undefined (all done), or the train's outcome. */
  private async afterParts(k: number, parts: Map<string, Part>, failedHosts: string[]): Promise<Outcome | undefined> {
    const { trc } = this;
    const stopped = await haltIfAborted(trc, k);
    if (stopped) return stopped;
    if (trc.deps.signal.aborted) return haltInterrupted(trc, k);
    const bad = [...parts.entries()].filter((e): e is [string, Extract<Part, { ok: false }>] => !e[1].ok);
    const problem = bad.find(([, p]) => p.problem);
    if (problem) {
      await trc.record({ type: 'wave', t: now(), wave: k, phase: 'verify-failed', detail: `app ${problem[0]}: ${problem[1].problem!.detail}` });
      return this.onGateProblem({ ...problem[1].problem!, detail: `app ${problem[0]}: ${problem[1].problem!.detail}` });
    }
    // (An app whose check waits for approval is paused, not stopped: the train pauses unless another app stopped.)
    const reasons = bad.filter(([, p]) => !p.held && !p.paused).map(([name, p]) => `app ${name}: ${p.reason ?? 'stopped'}`);
    if (bad.some(([, p]) => p.paused) && !reasons.length) {
      const waiting = bad.filter(([, p]) => p.paused).map(([name]) => `app ${name}: ${this.apps.find((a) => a.name === name)?.paused ?? 'its check'}`);
      const why = `wave ${k}: waiting for approval of ${waiting.join('; ')}`;
      await trc.record({ type: 'run', t: now(), phase: 'paused', reason: trc.mask(why) });
      trc.emit({ event: 'run.paused', release: trc.release, wave: k, reason: trc.mask(`${why}; approve with graywave approve, then graywave resume`) });
      return 'paused';
    }
    if (reasons.length) return this.halt(`train wave ${k}: ${reasons.join('; ')}`, k);
    const max = this.t.train.playbook.waves.maxFailures;
    if (failedHosts.length > max)
      return this.halt(
        `train wave ${k}: ${failedHosts.length} host(s) failed over all apps (${failedHosts.join(', ')}), more than the train's maxFailures ${max}`,
        k,
      );
    return undefined;
  }

  /** Every app's part of wave k: an app starts once the apps it waits for are done with theirs; the others in parallel. */
  private async parts(k: number): Promise<Map<string, Part>> {
    const running = new Map<string, Promise<Part>>();
    const over = new Set<string>();
    const start = (app: App): Promise<Part> => {
      let p = running.get(app.name);
      if (!p) {
        p = (async () => {
          // The view says an app with hosts to run waits for its `after:` apps ("waiting for account").
          const toRun = (a: App) =>
            (a.plan.waves.find((w) => w.index === k)?.hosts ?? []).some((h) => hostStatus(a.rc.state.hosts.get(h), a.plan.steps) !== 'done');
          const waitingFor = app.after.filter((n) => !over.has(n) && toRun(this.apps.find((a) => a.name === n)!));
          if (waitingFor.length && toRun(app)) {
            this.trc.emit({ event: 'app.waiting', release: this.trc.release, wave: k, app: app.name, after: waitingFor });
          }
          const before = await Promise.all(app.after.map((n) => start(this.apps.find((a) => a.name === n)!)));
          if (before.some((b) => !b.ok) || this.holding()) return { ok: false, ran: false, held: true };
          const part = await this.part(app, k).catch((err: unknown): Part => ({ ok: false, ran: true, reason: app.rc.mask((err as Error).message) }));
          // One app stopping holds the others at a safe point: hosts in flight finish, no new host starts.
          if (!part.ok) for (const a of this.apps) a.rc.holdNewHosts = true;
          over.add(app.name);
          return part;
        })();
        running.set(app.name, p);
      }
      return p;
    };
    const results = await Promise.all(this.apps.map(async (a) => [a.name, await start(a)] as const));
    for (const a of this.apps) a.rc.holdNewHosts = false;
    return new Map(results);
  }

  private holding(): boolean {
    return this.apps.some((a) => a.rc.holdNewHosts) || !!this.trc.controls.stop || this.trc.deps.signal.aborted;
  }

  /** One app's part of wave k: its pending hosts (with its watch checks), then its own checks and routing widening. */
  private async part(app: App, k: number): Promise<Part> {
    const { rc, plan } = app;
    const hosts = plan.waves.find((w) => w.index === k)?.hosts ?? [];
    if (!hosts.length) return { ok: true, ran: false };
    // The train tells wave boundaries and the operator's abort (afterParts) itself.
    const h = await runWaveHosts(rc, k, hosts, { whole: true, events: false });
    if (h.kind === 'problem') return { ok: false, ran: true, failed: h.failed, problem: h.problem };
    if (h.kind === 'failed')
      return {
        ok: false,
        ran: true,
        failed: h.failed,
        reason: `wave ${k}: ${h.failed.length} host(s) failed (${h.failed.join(', ')}), more than its maxFailures ${rc.deps.playbook.waves.maxFailures}${rc.causes(h.failed)}`,
      };
    // Interrupted, or held after another app failed: the train halts at this safe point.
    if (h.kind !== 'done') return { ok: false, ran: true, failed: 'failed' in h ? h.failed : [], held: true };
    const r = await checkpoint(rc, k, hosts, h.ran);
    if (r === 'continue') return { ok: true, ran: h.ran };
    if (typeof r === 'object') return { ok: false, ran: h.ran, problem: r };
    return { ok: false, ran: h.ran, paused: r === 'paused', reason: r === 'paused' ? undefined : (app.halted ?? r) };
  }

  /**
   * A check of the train (or of one app) did not pass: halt/freeze/not measurable as for one playbook; the rollback
   * policies undo across every app (src/engine/train.ts `rollbackTrain`).
   */
  private async onGateProblem(p: GateProblem): Promise<Outcome> {
    const policy = this.t.train.playbook.onFailure;
    if (p.kind === 'error' || policy === 'halt' || policy === 'freeze') return onGateProblem(this.trc, p);
    const waves = policy === 'rollback-wave' ? [p.wave] : this.t.train.plan.waves.filter((w) => w.index <= p.wave).map((w) => w.index);
    const ok = await rollbackTrain(this.trc, this.apps, { waves, undoSwitchover: policy === 'rollback-all' });
    await this.trc.record({
      type: 'run',
      t: now(),
      phase: 'halted',
      reason: this.trc.mask(`verification failed after wave ${p.wave}: ${p.detail}; ${policy} ${ok ? 'done' : 'incomplete'}`),
    });
    this.trc.emit({
      event: 'run.halted',
      release: this.trc.release,
      wave: p.wave,
      reason: this.trc.mask(`verification failed after wave ${p.wave}: ${p.detail}; every app rolled back (${policy})${ok ? '' : ' — some undo steps failed'}`),
      hint: 'fix the release, then run it again',
      stillDrained: this.trc.stillDrained(),
    });
    return 'halted';
  }

  /** `graywave rollback` of a train: the waves given, newest first, every app in reverse start order. */
  rollback(opts: { waves: number[]; undoSwitchover: boolean; fast?: boolean }): Promise<boolean> {
    return rollbackTrain(this.trc, this.apps, opts).finally(() => Promise.all([this.trc.close(), ...this.apps.map((a) => a.rc.close())]));
  }
}

/**
 * Undoes a train: newest wave first; inside a wave every app in reverse start order (consumers before the
 * providers they call: an app is undone before the apps in its `after:`); the switchover in its place in time
 * (after the waves that came after it), each app's routing rules (with `undoSwitchover`) before its first host.
 */
async function rollbackTrain(trc: ReleaseContext, apps: App[], opts: { waves: number[]; undoSwitchover: boolean; fast?: boolean }): Promise<boolean> {
  const t0 = Date.now();
  const waves = [...opts.waves].sort((a, b) => b - a);
  const plan = trc.deps.plan;
  const touched = (a: App, w: number) => (a.plan.waves.find((x) => x.index === w)?.hosts ?? []).filter((h) => inEffect(a.rc.state.hosts.get(h)));
  const hosts = waves.flatMap((w) => [...apps].reverse().flatMap((a) => touched(a, w).map((h) => prefix(a.name, h))));
  trc.emit({ event: 'rollback.start', release: trc.release, waves, hosts });
  await trc.record({ type: 'run', t: now(), phase: 'rollback' });
  const failed: string[] = [];
  let switchoverPending = opts.undoSwitchover && (trc.state.switchover.started || trc.state.switchover.done);
  const routingUndone = new Set<string>();
  for (const w of waves) {
    if (switchoverPending && w <= (plan.switchoverAfterWave ?? Infinity)) {
      switchoverPending = false;
      if (!(await undoSwitchover(trc))) failed.push('_switchover');
    }
    for (const app of [...apps].reverse()) {
      const undoRouting = opts.undoSwitchover && !routingUndone.has(app.name);
      if (!touched(app, w).length && !undoRouting) continue;
      routingUndone.add(app.name);
      const left = touched(app, w);
      if (!(await rollbackHosts(app.rc, { waves: [w], undoSwitchover: undoRouting, fast: opts.fast }))) {
        const still = touched(app, w);
        failed.push(...(still.length ? still : left).map((h) => prefix(app.name, h)), ...(still.length || left.length ? [] : [`${app.name}/_routing`]));
      }
    }
  }
  if (switchoverPending && !(await undoSwitchover(trc))) failed.push('_switchover');
  trc.emit({ event: 'rollback.done', release: trc.release, hosts, failed, ms: Date.now() - t0 });
  return failed.length === 0;
}
