import { findAction } from '../actions/index.js';
import type { StepContext } from '../actions/types.js';
import { ProviderError } from '../errors.js';
import { findGate } from '../gates/index.js';
import type { GateContext } from '../gates/types.js';
import { currentActor } from '../journal/lock.js';
import type { JournalRecord, StepPhase } from '../journal/records.js';
import { applyRecord, hostStatus, replay, type RunState } from '../journal/replay.js';
import { templateValues } from '../plan/build.js';
import type { GateSpec, Host, StepSpec } from '../playbook/types.js';
import { formatMs } from '../util/duration.js';
import { render, renderShell, templateEnv } from '../util/template.js';
import { HostLog, sleep, Tail, type EngineDeps } from './context.js';
import { LocalTransport } from '../transport/local.js';
import type { EngineEvent } from './events.js';
import { rollbackHosts } from './rollback.js';
import { RoutingRunner } from '../routing/run.js';

export type Outcome = 'done' | 'halted' | 'paused' | 'rolled-back';

const DEFAULT_POLL_MS = 1000;
const now = () => new Date().toISOString();

/** Thrown inside the engine to stop the release at a safe point; turned into a `halted` outcome. */
class Halt extends Error {}

/** Which provider a step talks to (drain/restore take the name; relabel an object). */
export function stepProvider(step: StepSpec): string | undefined {
  if (typeof step.params === 'string') return step.params;
  const p = step.params as { provider?: unknown } | null;
  return typeof p?.provider === 'string' ? p.provider : undefined;
}

/** Runs (or resumes) a release. Every transition is journalled (fsync) before the event that reports it. */
export class Engine {
  private state: RunState;
  private readonly hostsByName: Map<string, Host>;
  private readonly logs = new Map<string, HostLog>();
  private readonly release: string;
  /** Aborts in-flight steps: Ctrl-C, or a failing `watch:` check during a wave. */
  private signal: AbortSignal;
  /** Set by `graywave abort`: no new step starts; the release halts at the next step boundary. */
  private stopRequested?: string;
  /** Set by `graywave promote --full`: every remaining gate, approval and pause is passed. */
  private promoteFull = false;
  /** Set by `graywave promote --skip-gate`: the gate now running (or the next one) is passed. */
  private promoteGate?: string;
  private gateCtl?: AbortController;

  constructor(private readonly deps: EngineDeps) {
    this.signal = deps.signal;
    this.state = replay(deps.journal.records);
    this.hostsByName = new Map(deps.playbook.hosts.map((h) => [h.name, h]));
    this.release = deps.playbook.name;
  }

  private emit(e: EngineEvent): void {
    this.deps.emit(e);
  }

  /** Journals a record (durably) and folds it into the in-memory state: O(1), never a replay per step or wave. */
  private async record(r: JournalRecord): Promise<void> {
    await this.deps.journal.append(r);
    applyRecord(this.state, r);
  }

  private log(host: string): HostLog {
    let l = this.logs.get(host);
    if (!l) {
      l = new HostLog(this.deps.logDir, host, this.deps.secrets);
      this.logs.set(host, l);
    }
    return l;
  }

  private mask(text: string): string {
    return this.deps.secrets.mask(text);
  }

  async run(resumed: boolean): Promise<Outcome> {
    const { plan, playbook } = this.deps;
    const started = Date.now();
    const hotfix = playbook.hotfix ? { hotfix: true, reason: playbook.hotfix.reason } : {};
    await this.record({ type: 'run', t: now(), phase: resumed ? 'resume' : 'start', by: currentActor(), ...hotfix });
    this.emit({ event: 'run.start', release: this.release, version: playbook.version, hosts: playbook.hosts.length, waves: plan.waves.length, resumed });
    this.promoteFull = this.deps.journal.records.some((r) => r.type === 'operator' && r.action === 'promote' && r.detail === 'full');
    const stopControls = this.watchControls();
    try {
      // Routing rules (src/routing): published before wave 1; a failure halts before any host is touched.
      if (!(await this.routingAt('publish', 0))) return 'halted';
      if (playbook.waves.mode === 'rolling') {
        const outcome = await this.runRolling();
        if (outcome !== 'continue') return outcome;
      } else {
        for (const wave of plan.waves) {
          const outcome = await this.runWave(wave.index, wave.hosts);
          if (outcome !== 'continue') return outcome;
        }
      }
      const failed = playbook.hosts.filter((h) => hostStatus(this.state.hosts.get(h.name), plan.steps) !== 'done').map((h) => h.name);
      if (failed.length) {
        return await this.halt(`${failed.length} host(s) did not complete: ${failed.join(', ')}`, undefined, 'fix the cause, then `graywave resume` retries them from the step where each stopped');
      }
      if (!(await this.routingAt('final', plan.waves[plan.waves.length - 1]?.index ?? 0))) return 'halted';
      await this.record({ type: 'run', t: now(), phase: 'done' });
      this.emit({ event: 'run.done', release: this.release, version: playbook.version, hosts: playbook.hosts.length, waves: plan.waves.length, ms: Date.now() - started, failed: [] });
      return 'done';
    } catch (err) {
      if (err instanceof Halt) return 'halted';
      // The journal could not be written, or a bug: halt with what we know, if we still can.
      const reason = this.mask((err as Error).message);
      try {
        await this.record({ type: 'run', t: now(), phase: 'halted', reason });
      } catch {
        /* the journal itself is what failed */
      }
      this.emit({ event: 'run.halted', release: this.release, reason, stillDrained: this.stillDrained() });
      return 'halted';
    } finally {
      await stopControls();
      await this.routing?.close();
    }
  }

  /**
   * Polls the state backend for operator requests from other processes (`graywave abort`, `graywave promote`),
   * records each once in the journal (who, when, why) and applies it at the next safe point.
   */
  private watchControls(): () => Promise<void> {
    const read = this.deps.controls;
    if (!read) return async () => undefined;
    const seen = new Set(this.deps.journal.records.flatMap((r) => (r.type === 'operator' && r.id ? [r.id] : [])));
    let stopped = false;
    const tick = async () => {
      let requests;
      try {
        requests = await read();
      } catch {
        return; // the control channel is advisory: a failed read must not disturb the release
      }
      for (const c of requests) {
        if (seen.has(c.id) || stopped) continue;
        seen.add(c.id);
        const who = `${c.by.user}@${c.by.host}`;
        const detail = c.action === 'promote' ? (c.mode === 'full' ? 'full' : 'gate') : undefined;
        await this.record({ type: 'operator', t: now(), action: c.action, by: c.by, reason: c.reason, detail, id: c.id });
        if (c.action === 'abort') {
          this.stopRequested = `aborted by ${who}${c.reason ? `: ${c.reason}` : ''}`;
        } else if (c.mode === 'full') {
          this.promoteFull = true;
          this.gateCtl?.abort(new Error(`promoted by ${who}`));
        } else {
          this.promoteGate = `promoted by ${who}${c.reason ? `: ${c.reason}` : ''}`;
          this.gateCtl?.abort(new Error(this.promoteGate));
        }
      }
    };
    const wake = new AbortController();
    const loop = (async () => {
      while (!stopped) {
        await tick();
        await sleep(1000, wake.signal).catch(() => undefined);
      }
    })();
    return async () => {
      stopped = true;
      wake.abort(); // the release is over: do not sit out the rest of a poll interval
      await loop;
    };
  }

  private async haltIfAborted(wave?: number): Promise<Outcome | undefined> {
    if (!this.stopRequested) return undefined;
    return this.halt(this.stopRequested, wave, '`graywave resume` continues from the step where each host stopped; `graywave rollback` undoes');
  }

  private routing?: RoutingRunner;

  /** Brings the routing rules to their state at this point (no-op without `routing:`); false after halting. */
  private async routingAt(phase: 'publish' | 'widen' | 'final', wave: number): Promise<boolean> {
    if (!this.deps.playbook.routing?.length) return true;
    this.routing ??= new RoutingRunner(this.deps);
    try {
      await this.routing.at(phase, wave);
      return true;
    } catch (err) {
      await this.halt((err as Error).message, wave || undefined, 'fix it, then `graywave resume` applies and checks the rule again (or `graywave rollback --all` undoes it)');
      return false;
    }
  }

  /** Hosts whose drain completed but whose matching restore did not: the halt message lists them. */
  stillDrained(): string[] {
    const steps = this.deps.playbook.steps;
    const out: string[] = [];
    for (const [name, h] of this.state.hosts) {
      for (const s of steps) {
        if (s.action !== 'drain') continue;
        const d = h.steps.get(s.name);
        if (!d || !(d.phase === 'done' || d.phase === 'did' || (d.phase === 'failed' && d.hasData))) continue;
        const restore = steps.find((r) => r.action === 'restore' && r.params === s.params);
        const rs = restore ? h.steps.get(restore.name) : undefined;
        if (!rs || rs.phase !== 'done') {
          out.push(name);
          break;
        }
      }
    }
    return out;
  }

  /** Why the first failed hosts failed (`; h-01 at restore: HTTP 500 …`), so the halt message names the cause. */
  private causes(hosts: string[]): string {
    const parts = hosts.slice(0, 3).map((name) => {
      const h = this.state.hosts.get(name);
      const s = h?.current ? h.steps.get(h.current) : undefined;
      return s?.error ? `${name} at ${h!.current}: ${s.error.length > 300 ? s.error.slice(0, 300) + '…' : s.error}` : undefined;
    });
    const shown = parts.filter((p): p is string => p !== undefined);
    return shown.length ? `; ${shown.join('; ')}${hosts.length > 3 ? `; and ${hosts.length - 3} more` : ''}` : '';
  }

  private async halt(reason: string, wave?: number, hint?: string): Promise<Outcome> {
    reason = this.mask(reason);
    await this.record({ type: 'run', t: now(), phase: 'halted', reason });
    this.emit({ event: 'run.halted', release: this.release, reason, wave, hint, stillDrained: this.stillDrained() });
    return 'halted';
  }

  private async runWave(index: number, hostNames: string[]): Promise<Outcome | 'continue'> {
    const { playbook, plan } = this.deps;
    const ws = this.state.waves.get(index);
    const pending = hostNames.filter((h) => hostStatus(this.state.hosts.get(h), plan.steps) !== 'done');
    const waveStarted = Date.now();
    const aborted = await this.haltIfAborted(index);
    if (aborted) return aborted;
    if (pending.length) {
      if (this.deps.signal.aborted) return this.halt('interrupted (Ctrl-C)', index, 'graywave resume continues where it stopped');
      await this.record({ type: 'wave', t: now(), wave: index, phase: 'started' });
      this.emit({ event: 'wave.start', release: this.release, wave: index, hosts: hostNames });
      const watch = this.startWatch(index, hostNames);
      let failed: string[];
      try {
        failed = await this.runHosts(index, pending);
      } finally {
        await watch.stop();
        this.signal = this.deps.signal;
      }
      const stopped = await this.haltIfAborted(index);
      if (stopped) return stopped;
      if (watch.failure() && !this.deps.signal.aborted) {
        this.emit({ event: 'wave.done', release: this.release, wave: index, ms: Date.now() - waveStarted, failed });
        await this.record({ type: 'wave', t: now(), wave: index, phase: 'verify-failed', detail: watch.failure() });
        return this.onGateFailure(index, watch.failure()!);
      }
      if (this.deps.signal.aborted) return this.halt('interrupted (Ctrl-C)', index, 'graywave resume continues where it stopped');
      if (failed.length > playbook.waves.maxFailures) {
        this.emit({ event: 'wave.done', release: this.release, wave: index, ms: Date.now() - waveStarted, failed });
        return this.halt(
          `wave ${index}: ${failed.length} host(s) failed (${failed.join(', ')}), more than maxFailures ${playbook.waves.maxFailures}${this.causes(failed)}`,
          index,
          `see .graywave logs; then \`graywave resume\` (retries from the failed step) or \`graywave rollback\``,
        );
      }
      await this.record({ type: 'wave', t: now(), wave: index, phase: 'done' });
      this.emit({ event: 'wave.done', release: this.release, wave: index, ms: Date.now() - waveStarted, failed });
    } else if (!ws?.done && hostNames.length) {
      await this.record({ type: 'wave', t: now(), wave: index, phase: 'done' });
    }
    const r = await this.checkpoint(index, hostNames, pending.length > 0, false);
    return typeof r === 'object' ? this.onGateFailure(index, r.gateFailed) : r;
  }

  /**
   * What happens once a wave's hosts are done: verification gates, routing widening, the switchover, then an
   * approval or a pause before the next wave. With `defer`, a failed gate is returned instead of handled, so a
   * rolling release can first let its in-flight hosts finish.
   */
  private async checkpoint(index: number, hostNames: string[], ranHosts: boolean, defer: boolean): Promise<Outcome | 'continue' | { gateFailed: string }> {
    const { playbook, plan } = this.deps;
    if (!this.state.waves.get(index)?.verified) {
      const verdict = await this.verify(index, hostNames, defer);
      if (verdict !== 'ok') return verdict;
      await this.record({ type: 'wave', t: now(), wave: index, phase: 'verified' });
    }

    // Routing rules widen once the wave is verified: GREEN gets the traffic chosen for it after this wave.
    if (!(await this.routingAt('widen', index))) return 'halted';

    if (plan.switchoverAfterWave === index && !this.state.switchover.done) {
      const ok = await this.switchover(index);
      if (!ok) return 'halted';
    }

    const isLast = index === plan.waves[plan.waves.length - 1]!.index;
    if (!isLast) {
      const pause = playbook.waves.pause;
      const needsApproval = pause.kind === 'approve' || playbook.verify.some((g) => g.gate === 'approve');
      if (this.promoteFull) {
        // promoted: no approval, no pause
      } else if (needsApproval && !this.state.waves.get(index)?.approved) {
        const outcome = await this.askApproval(index);
        if (outcome !== 'continue') return outcome;
      } else if (pause.kind === 'duration' && ranHosts) {
        const until = new Date(Date.now() + pause.ms).toISOString();
        this.emit({ event: 'wave.paused', release: this.release, wave: index, until, reason: `pause ${formatMs(pause.ms)}` });
        try {
          await sleep(pause.ms, this.deps.signal);
        } catch {
          return this.halt('interrupted (Ctrl-C) during the pause', index, 'graywave resume continues where it stopped');
        }
      }
    }
    return 'continue';
  }

  /**
   * `waves: {mode: rolling, inFlight: N, every: 25%}`: N hosts stay in flight across the fleet instead of waiting
   * for each wave to finish. The waves become checkpoints: when all hosts of one are done its gates run (while the
   * next wave's hosts go on), and hosts two checkpoints ahead wait until it has passed — after a canary, nothing
   * else starts until the canary's checkpoint has passed. maxFailures counts per checkpoint. A failure stops new
   * hosts, lets the in-flight ones finish, then halts (or applies onFailure).
   */
  private async runRolling(): Promise<Outcome | 'continue'> {
    const { plan, playbook } = this.deps;
    const isDone = (h: string) => hostStatus(this.state.hosts.get(h), plan.steps) === 'done';
    const queue = plan.waves.flatMap((w) => w.hosts.filter((h) => !isDone(h)).map((host) => ({ wave: w.index, host })));
    const left = new Map(plan.waves.map((w) => [w.index, w.hosts.filter((h) => !isDone(h)).length]));
    const failed = new Map<number, string[]>();
    const started = new Set<number>();
    const canary = !!playbook.waves.canary;
    let passed = 0;
    let next = 0;
    let stopLaunch = false;
    let hostFailure: string | undefined;
    let gateFailure: { wave: number; detail: string } | undefined;
    let outcome: Outcome | undefined;
    const waiters: (() => void)[] = [];
    const changed = () => new Promise<void>((r) => waiters.push(r));
    const wakeAll = () => waiters.splice(0).forEach((f) => f());
    const allowed = (w: number) => w <= passed + 1 || (w === passed + 2 && !(canary && passed === 0));
    const aborted = await this.haltIfAborted();
    if (aborted) return aborted;
    const watch = this.startWatch(0, playbook.hosts.map((h) => h.name));

    const runCheckpoints = async () => {
      while (!outcome && !gateFailure && next < plan.waves.length && left.get(plan.waves[next]!.index) === 0) {
        const w = plan.waves[next]!;
        const ws = this.state.waves.get(w.index);
        if (!ws?.done) {
          await this.record({ type: 'wave', t: now(), wave: w.index, phase: 'done' });
          this.emit({ event: 'wave.done', release: this.release, wave: w.index, ms: 0, failed: failed.get(w.index) ?? [] });
        }
        const r = await this.checkpoint(w.index, w.hosts, started.has(w.index), true);
        if (r === 'continue') {
          passed = w.index;
          next++;
        } else if (typeof r === 'object') {
          gateFailure = { wave: w.index, detail: r.gateFailed };
          stopLaunch = true;
        } else {
          outcome = r;
          stopLaunch = true;
        }
        wakeAll();
      }
    };
    let checkpoints = runCheckpoints();
    const pump = () => (checkpoints = checkpoints.then(runCheckpoints));

    const worker = async () => {
      for (;;) {
        if (stopLaunch || this.stopRequested || this.signal.aborted) return;
        const i = queue.findIndex((q) => allowed(q.wave));
        if (i < 0) {
          if (!queue.length) return;
          await changed();
          continue;
        }
        const item = queue.splice(i, 1)[0]!;
        if (!started.has(item.wave)) {
          started.add(item.wave);
          await this.record({ type: 'wave', t: now(), wave: item.wave, phase: 'started' });
          this.emit({ event: 'wave.start', release: this.release, wave: item.wave, hosts: plan.waves.find((w) => w.index === item.wave)!.hosts });
        }
        const ok = await this.runHost(item.wave, this.hostsByName.get(item.host)!);
        if (!ok) {
          const f = [...(failed.get(item.wave) ?? []), item.host];
          failed.set(item.wave, f);
          if (f.length > playbook.waves.maxFailures && !hostFailure) {
            hostFailure = `checkpoint ${item.wave}: ${f.length} host(s) failed (${f.join(', ')}), more than maxFailures ${playbook.waves.maxFailures}${this.causes(f)}`;
            stopLaunch = true;
            wakeAll();
          }
        }
        left.set(item.wave, left.get(item.wave)! - 1);
        pump();
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, Math.min(playbook.waves.concurrency, queue.length || 1)) }, worker));
      wakeAll();
      await checkpoints;
      await pump();
    } finally {
      await watch.stop();
      this.signal = this.deps.signal;
    }
    const stopped = await this.haltIfAborted();
    if (stopped) return stopped;
    if (this.deps.signal.aborted) return this.halt('interrupted (Ctrl-C)', undefined, 'graywave resume continues where it stopped');
    if (watch.failure()) return this.onGateFailure(plan.waves[Math.max(0, next)]?.index ?? passed, watch.failure()!);
    if (hostFailure) return this.halt(hostFailure, undefined, '`graywave resume` retries from the failed step; `graywave rollback` undoes');
    if (gateFailure) return this.onGateFailure(gateFailure.wave, gateFailure.detail);
    return outcome ?? 'continue';
  }

  private async askApproval(wave: number): Promise<Outcome | 'continue'> {
    const question = `wave ${wave} is done and verified. Continue with wave ${wave + 1}?`;
    if (this.deps.approve) {
      this.emit({ event: 'wave.paused', release: this.release, wave, reason: 'waiting for approval' });
      const yes = await this.deps.approve(question);
      if (!yes) return this.halt(`wave ${wave + 1} not approved`, wave, 'graywave approve, then graywave resume — or graywave rollback');
      const by = currentActor();
      await this.record({ type: 'wave', t: now(), wave, phase: 'approved', by });
      this.emit({ event: 'wave.approved', release: this.release, wave, by: `${by.user}@${by.host}` });
      return 'continue';
    }
    await this.record({ type: 'wave', t: now(), wave, phase: 'paused', detail: 'waiting for approval' });
    await this.record({ type: 'run', t: now(), phase: 'paused', reason: `wave ${wave} waits for approval` });
    this.emit({ event: 'run.paused', release: this.release, wave, reason: `wave ${wave} is done; approve with \`graywave approve\`, then \`graywave resume\`` });
    return 'paused';
  }

  /** Runs the wave's hosts, at most `concurrency` at once; stops starting new hosts once failures exceed maxFailures. */
  private async runHosts(wave: number, names: string[]): Promise<string[]> {
    const { concurrency, maxFailures } = this.deps.playbook.waves;
    const failed: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < names.length && failed.length <= maxFailures && !this.signal.aborted && !this.stopRequested) {
        const name = names[next++]!;
        const ok = await this.runHost(wave, this.hostsByName.get(name)!);
        if (!ok) failed.push(name);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
    return failed;
  }

  private async runHost(wave: number, host: Host): Promise<boolean> {
    const started = Date.now();
    this.emit({ event: 'host.start', release: this.release, wave, host: host.name });
    const hostState = () => this.state.hosts.get(host.name);
    try {
      for (const step of this.deps.playbook.steps) {
        const prior = hostState()?.steps.get(step.name);
        if (prior?.phase === 'done') continue;
        // An operator abort stops every host at its next step boundary (the host stays where it is).
        if (this.stopRequested) return true;
        const ok = await this.runStep(wave, host, step, prior?.hasData ? prior.data : undefined);
        if (!ok) {
          const err = hostState()?.steps.get(step.name)?.error ?? 'failed';
          this.emit({ event: 'host.failed', release: this.release, wave, host: host.name, step: step.name, error: err });
          return false;
        }
      }
      this.emit({ event: 'host.done', release: this.release, wave, host: host.name, ms: Date.now() - started });
      return true;
    } finally {
      await this.deps.transport.release(host).catch(() => undefined);
      this.logs.get(host.name)?.close();
      this.logs.delete(host.name);
    }
  }

  /** Records a step transition and folds it into the in-memory state (O(1): no replay per step). */
  private async stepRecord(wave: number, host: string, step: string, phase: StepPhase, extra: Partial<Extract<JournalRecord, { type: 'step' }>> = {}): Promise<void> {
    await this.record({ type: 'step', t: now(), wave, host, step, phase, ...extra });
  }

  /** The engine's one contract for every step: do → poll check → done, with retries and a timeout. */
  private async runStep(wave: number, host: Host, step: StepSpec, previous: unknown): Promise<boolean> {
    const action = findAction(step.action)!;
    const log = this.log(host.name);
    const tail = new Tail(10);
    let lastError = '';
    for (let attempt = 1; attempt <= step.retries + 1; attempt++) {
      const t0 = Date.now();
      await this.stepRecord(wave, host.name, step.name, 'started', { attempt });
      this.emit({ event: 'step.start', release: this.release, wave, host: host.name, step: step.name, attempt });
      log.line(`--- ${step.name} (attempt ${attempt}) ---`);
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(new ProviderError(`timed out after ${formatMs(step.timeoutMs)}`)), step.timeoutMs);
      const waveSignal = this.signal;
      const onAbort = () => ctl.abort(new ProviderError(waveSignal.reason instanceof Error ? waveSignal.reason.message : 'interrupted', false));
      if (waveSignal.aborted) onAbort();
      waveSignal.addEventListener('abort', onAbort, { once: true });
      tail.clear();
      const ctx = this.stepContext(wave, host, step, ctl.signal, t0 + step.timeoutMs, log, tail, previous);
      try {
        // Interrupted before this step began (Ctrl-C while the previous one finished): it fails without starting.
        const data = await abortable(ctl.signal.aborted ? Promise.reject(ctl.signal.reason) : action.do(ctx, step.params), ctl.signal);
        const saved = data === undefined ? null : data;
        if (action.check) {
          await this.stepRecord(wave, host.name, step.name, 'did', { attempt, data: saved });
          previous = saved;
          await this.poll(ctx, () => action.check!(ctx, step.params), step.intervalMs ?? DEFAULT_POLL_MS, ctl.signal, (observed) => {
            this.emit({ event: 'step.progress', release: this.release, wave, host: host.name, step: step.name, observed });
          });
        }
        const ms = Date.now() - t0;
        await this.stepRecord(wave, host.name, step.name, 'done', { attempt, data: saved, ms });
        this.emit({ event: 'step.done', release: this.release, wave, host: host.name, step: step.name, ms });
        log.line(`--- ${step.name} done in ${formatMs(ms)} ---`);
        return true;
      } catch (err) {
        const reason = ctl.signal.aborted && ctl.signal.reason instanceof Error ? ctl.signal.reason : (err as Error);
        lastError = this.mask(reason.message || String(reason));
        const retryable = !(reason instanceof ProviderError && !reason.retryable) && !waveSignal.aborted;
        log.line(`--- ${step.name} failed: ${lastError} ---`);
        if (attempt <= step.retries && retryable) {
          this.emit({ event: 'step.retry', release: this.release, wave, host: host.name, step: step.name, attempt, error: lastError });
          // Back off (0.5 s, 1 s, 2 s … up to 5 s) so that retries are not spent while a registry restarts.
          try {
            await sleep(Math.min(500 * 2 ** (attempt - 1), 5000), waveSignal);
          } catch {
            /* interrupted: the next attempt sees the abort */
          }
          continue;
        }
        const ms = Date.now() - t0;
        await this.stepRecord(wave, host.name, step.name, 'failed', { attempt, error: lastError, ms });
        const output = tail.get().map((l) => this.mask(l));
        this.emit({ event: 'step.failed', release: this.release, wave, host: host.name, step: step.name, ms, error: lastError, output: output.length ? output : undefined });
        return false;
      } finally {
        clearTimeout(timer);
        waveSignal.removeEventListener('abort', onAbort);
      }
    }
    return false;
  }

  /**
   * Runs the `watch:` checks every interval while the wave's hosts are in flight. The first failure aborts the
   * wave's steps at once (instead of after the wave) and is then handled like a failed gate (onFailure).
   */
  private startWatch(wave: number, hostNames: string[]): { stop(): Promise<void>; failure(): string | undefined } {
    const checks = this.deps.playbook.watch;
    if (!checks.length) return { stop: async () => undefined, failure: () => undefined };
    const waveCtl = new AbortController();
    const onOuter = () => waveCtl.abort(this.deps.signal.reason);
    this.deps.signal.addEventListener('abort', onOuter, { once: true });
    this.signal = waveCtl.signal;
    const stopCtl = new AbortController();
    let failure: string | undefined;
    const loops = checks.map(async (gate) => {
      while (!stopCtl.signal.aborted && !failure) {
        try {
          await sleep(gate.intervalMs ?? 10_000, stopCtl.signal);
        } catch {
          return;
        }
        const result = await this.runGate(gate, wave, hostNames, undefined);
        if (stopCtl.signal.aborted) return;
        await this.record({ type: 'gate', t: now(), wave, check: gate.name, ok: result.ok, observed: result.observed, values: result.values });
        if (!result.ok && !failure) {
          failure = `watch ${gate.name}: ${result.observed}`;
          this.emit({ event: 'verify.failed', release: this.release, wave, check: gate.name, observed: result.observed, ms: 0 });
          waveCtl.abort(new Error(`stopped: ${failure}`));
        }
      }
    });
    return {
      failure: () => failure,
      stop: async () => {
        stopCtl.abort();
        await Promise.all(loops);
        this.deps.signal.removeEventListener('abort', onOuter);
      },
    };
  }

  private async poll(ctx: StepContext, check: () => Promise<{ done: boolean; observed?: string }>, intervalMs: number, signal: AbortSignal, progress: (o: string) => void): Promise<void> {
    let last = '';
    for (;;) {
      try {
        const c = await abortable(check(), signal);
        if (c.done) return;
        last = c.observed ?? 'not yet';
      } catch (err) {
        if (signal.aborted) throw err;
        // Unknown state is never "done": keep polling, show why.
        last = `unknown: ${(err as Error).message}`;
      }
      ctx.log(`check: ${last}`);
      progress(this.mask(last));
      try {
        await sleep(intervalMs, signal);
      } catch (err) {
        const reason = signal.reason instanceof Error ? signal.reason.message : String(err);
        throw new ProviderError(`${reason}; last check: ${last}`);
      }
    }
  }

  stepContext(wave: number, host: Host, step: StepSpec, signal: AbortSignal, deadline: number, log: HostLog, tail: Tail, previous: unknown, transport = this.deps.transport): StepContext {
    const { playbook, providers } = this.deps;
    const values = templateValues(playbook, host, wave);
    const env = templateEnv(values);
    const hostState = () => this.state.hosts.get(host.name);
    return {
      host,
      playbook,
      wave,
      step: step.name,
      signal,
      deadline,
      previous,
      transport,
      render: (t, over) => render(t, over ? { ...values, ...over } : values),
      renderShell: (t, over) => renderShell(t, over ? { ...values, ...over } : values),
      log: (line) => log.line(line),
      progress: (observed) => this.emit({ event: 'step.progress', release: this.release, wave, host: host.name, step: step.name, observed: this.mask(observed) }),
      provider: (name) => providers.provider(name),
      monitor: (name) => providers.monitor(name),
      savedOf: (actionKey, provider) => {
        const steps = playbook.steps;
        const upTo = steps.findIndex((s) => s.name === step.name);
        for (let i = (upTo < 0 ? steps.length : upTo) - 1; i >= 0; i--) {
          const s = steps[i]!;
          if (s.action !== actionKey || (provider !== undefined && stepProvider(s) !== provider)) continue;
          const st = hostState()?.steps.get(s.name);
          if (st?.hasData) return st.data;
        }
        return undefined;
      },
      sh: async (command, opts = {}) => {
        log.line(`$ ${command}`);
        const res = await transport.exec(host, command, {
          env,
          timeoutMs: opts.timeoutMs ?? Math.max(1, deadline - Date.now()),
          signal,
          input: opts.input,
          onOutput: (chunk) => {
            log.write(chunk);
            tail.push(chunk);
          },
        });
        log.line(`exit ${res.code ?? res.signal ?? '?'}${res.timedOut ? ' (timed out)' : ''}`);
        return res;
      },
    };
  }

  /** Runs the verification gates after a wave. */
  private async verify(wave: number, hostNames: string[], defer = false): Promise<'ok' | Outcome | { gateFailed: string }> {
    // Under the hotfix policy, gates marked skipOnHotfix are skipped (the start record carries the reason).
    const gates = this.deps.playbook.verify.filter((g) => g.gate !== 'approve' && !(this.deps.playbook.hotfix && g.skipOnHotfix));
    for (const gate of gates) {
      const targets: (Host | undefined)[] = gate.perHost ? hostNames.map((n) => this.hostsByName.get(n)!) : [undefined];
      for (const host of targets) {
        const t0 = Date.now();
        const aborted = await this.haltIfAborted(wave);
        if (aborted) return aborted;
        this.emit({ event: 'verify.start', release: this.release, wave, check: gate.name, host: host?.name });
        let result = this.promoteFull || this.promoteGate ? { ok: true, observed: `skipped: ${this.promoteGate ?? 'promoted (--full)'}` } : await this.runGate(gate, wave, hostNames, host);
        if (this.promoteGate && result.observed.startsWith('skipped')) this.promoteGate = undefined;
        else if (this.promoteFull && !result.ok) result = { ok: true, observed: 'skipped: promoted (--full)' };
        else if (this.promoteGate && !result.ok) ((result = { ok: true, observed: `skipped: ${this.promoteGate}` }), (this.promoteGate = undefined));
        // Ctrl-C while a check ran: the check was cut short, it did not fail. Halt as an interrupt (never onFailure).
        if (!result.ok && this.deps.signal.aborted) {
          const why = this.deps.signal.reason instanceof Error ? this.deps.signal.reason.message : 'interrupted';
          return this.halt(why, wave, 'graywave resume continues where it stopped (the checks run again)');
        }
        const ms = Date.now() - t0;
        await this.record({ type: 'gate', t: now(), wave, check: gate.name, host: host?.name, ok: result.ok, observed: result.observed, values: result.values });
        if (result.ok) {
          this.emit({ event: 'verify.done', release: this.release, wave, check: gate.name, host: host?.name, observed: result.observed, ms });
          continue;
        }
        this.emit({ event: 'verify.failed', release: this.release, wave, check: gate.name, host: host?.name, observed: result.observed, ms });
        const detail = `${gate.name}${host ? ` on ${host.name}` : ''}: ${result.observed}`;
        await this.record({ type: 'wave', t: now(), wave, phase: 'verify-failed', detail });
        return defer ? { gateFailed: detail } : this.onGateFailure(wave, detail);
      }
    }
    return 'ok';
  }

  private async onGateFailure(wave: number, detail: string): Promise<Outcome> {
    const policy = this.deps.playbook.onFailure;
    if (policy === 'freeze') {
      const reason = this.mask(`FROZEN after wave ${wave}: ${detail} — everything is kept exactly as it is`);
      await this.record({ type: 'run', t: now(), phase: 'frozen', reason });
      this.emit({ event: 'run.halted', release: this.release, reason, wave, hint: 'nothing was rolled back (onFailure: freeze); investigate, then `graywave resume`, or `graywave rollback --force`', stillDrained: this.stillDrained() });
      return 'halted';
    }
    if (policy === 'halt') {
      return this.halt(`verification failed after wave ${wave}: ${detail}`, wave, 'investigate, then `graywave resume` (re-runs the checks) or `graywave rollback`');
    }
    const waves = policy === 'rollback-wave' ? [wave] : this.deps.plan.waves.filter((w) => w.index <= wave).map((w) => w.index);
    const ok = await rollbackHosts(this.deps, this.state, { waves, undoSwitchover: policy === 'rollback-all' });
    this.state = replay(this.deps.journal.records);
    await this.record({ type: 'run', t: now(), phase: 'halted', reason: `verification failed after wave ${wave}: ${detail}; ${policy} ${ok ? 'done' : 'incomplete'}` });
    this.emit({
      event: 'run.halted',
      release: this.release,
      wave,
      reason: this.mask(`verification failed after wave ${wave}: ${detail}; hosts rolled back (${policy})${ok ? '' : ' — some undo steps failed'}`),
      hint: 'fix the release, then run it again',
      stillDrained: this.stillDrained(),
    });
    return 'halted';
  }

  private async runGate(gate: GateSpec, wave: number, hostNames: string[], host: Host | undefined) {
    const impl = findGate(gate.gate)!;
    const { playbook, transport, providers } = this.deps;
    const values = templateValues(playbook, host, wave);
    const localHost: Host = { name: 'local', address: 'local', vars: {}, labels: {} };
    const ctl = new AbortController();
    if (!gate.intervalMs) this.gateCtl = ctl; // watch checks are not promoted away; verify gates are
    const timer = setTimeout(() => ctl.abort(new Error(`timed out after ${formatMs(gate.timeoutMs)}`)), gate.timeoutMs);
    const onAbort = () => ctl.abort(new Error('interrupted (Ctrl-C)'));
    this.deps.signal.addEventListener('abort', onAbort, { once: true });
    const log = this.log(host?.name ?? '_release');
    const ctx: GateContext = {
      playbook,
      wave,
      hosts: hostNames.map((n) => this.hostsByName.get(n)!),
      host,
      render: (t) => render(t, values),
      renderShell: (t) => renderShell(t, values),
      monitor: (name) => providers.monitor(name),
      signal: ctl.signal,
      log: (line) => log.line(line),
      progress: () => undefined,
      sh: async (command, opts = {}) => {
        log.line(`$ ${command}`);
        const target = host ?? localHost;
        const t = host ? transport : this.localTransport();
        const res = await t.exec(target, command, { env: templateEnv(values), timeoutMs: opts.timeoutMs ?? gate.timeoutMs, signal: ctl.signal, onOutput: (c) => log.write(c) });
        log.line(`exit ${res.code ?? res.signal}`);
        return res;
      },
    };
    try {
      return await abortable(impl.run(ctx, gate.params), ctl.signal);
    } catch (err) {
      const reason = ctl.signal.aborted && ctl.signal.reason instanceof Error ? ctl.signal.reason : (err as Error);
      return { ok: false, observed: this.mask(`error: ${reason.message}`) };
    } finally {
      clearTimeout(timer);
      this.deps.signal.removeEventListener('abort', onAbort);
    }
  }

  private local?: LocalTransport;
  /** Release-level steps and wave-level gates run on this machine, whatever the playbook's transport. */
  private localTransport(): LocalTransport {
    return (this.local ??= new LocalTransport(this.deps.playbook.dir));
  }

  /** The context of a release-level (switchover) step: one run, on this machine, as host `_switchover`. */
  releaseStepContext(wave: number, step: StepSpec, signal: AbortSignal, log: HostLog): StepContext {
    const host: Host = { name: '_switchover', address: 'local', vars: {}, labels: {} };
    return this.stepContext(wave, host, step, signal, Date.now() + step.timeoutMs, log, new Tail(), undefined, this.localTransport());
  }

  /** Release-level steps run once, on this machine, when GREEN first carries `switchover.at` of the fleet. */
  private async switchover(wave: number): Promise<boolean> {
    const { playbook } = this.deps;
    const so = playbook.switchover!;
    const t0 = Date.now();
    const greenPercent = Math.round((this.deps.plan.waves.filter((w) => w.index <= wave).reduce((n, w) => n + w.hosts.length, 0) / playbook.hosts.length) * 100);
    await this.record({ type: 'switchover', t: now(), wave, phase: 'started' });
    this.emit({ event: 'switchover.start', release: this.release, afterWave: wave, greenPercent });
    for (const step of so.steps) {
      if (this.state.switchover.steps.get(step.name) === 'done') continue;
      const action = findAction(step.action)!;
      const log = this.log('_switchover');
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(new ProviderError(`timed out after ${formatMs(step.timeoutMs)}`)), step.timeoutMs);
      const ctx = this.releaseStepContext(wave, step, ctl.signal, log);
      try {
        await abortable(action.do(ctx, step.params), ctl.signal);
        await this.record({ type: 'switchover', t: now(), wave, phase: 'done', step: step.name });
      } catch (err) {
        const msg = this.mask((err as Error).message);
        await this.record({ type: 'switchover', t: now(), wave, phase: 'failed', step: step.name, error: msg });
        await this.halt(`switchover step ${step.name} failed: ${msg}`, wave, 'fix it, then `graywave resume` runs the switchover again');
        return false;
      } finally {
        clearTimeout(timer);
      }
    }
    await this.record({ type: 'switchover', t: now(), wave, phase: 'done' });
    this.emit({ event: 'switchover.done', release: this.release, afterWave: wave, ms: Date.now() - t0 });
    return true;
  }
}

/** Rejects as soon as the signal aborts, even if the work itself ignores the signal. */
export function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // The work is abandoned: its own later failure must not surface as an unhandled rejection (that ends the process).
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}
