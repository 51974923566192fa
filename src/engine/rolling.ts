import { hostStatus } from '../journal/replay.js';
import { checkpoint, haltIfAborted, haltInterrupted, onGateProblem, type GateProblem } from './checkpoint.js';
import { startWatch } from './gates.js';
import { now, type Outcome, type ReleaseContext } from './release.js';
import { runHost } from './waves.js';

/**
 * `waves: {mode: rolling, inFlight: N, every: 25%}`: N hosts stay in flight across the fleet instead of waiting
 * for each wave to finish. The waves become checkpoints: when all hosts of one are done its gates run (while the
 * next wave's hosts go on), and hosts two checkpoints ahead wait until it has passed — after a canary, nothing
 * else starts until the canary's checkpoint has passed. maxFailures counts per checkpoint. A failure stops new
 * hosts, lets the in-flight ones finish, then halts (or applies onFailure).
 */
class RollingWindow {
  private readonly queue: { wave: number; host: string }[];
  /** Hosts of each checkpoint not yet finished. */
  private readonly left: Map<number, number>;
  private readonly failed = new Map<number, string[]>();
  private readonly started = new Set<number>();
  private readonly waiters: (() => void)[] = [];
  /** The newest checkpoint passed (0: none yet), and the index in plan.waves of the next one to pass. */
  private passed = 0;
  private next = 0;
  private stopLaunch = false;
  hostFailure?: string;
  gateProblem?: GateProblem;
  outcome?: Outcome;
  private checkpoints: Promise<void> = Promise.resolve();

  constructor(
    private readonly rc: ReleaseContext,
    private readonly signal: AbortSignal,
  ) {
    const { plan } = rc.deps;
    const isDone = (h: string) => hostStatus(rc.state.hosts.get(h), plan.steps) === 'done';
    this.queue = plan.waves.flatMap((w) => w.hosts.filter((h) => !isDone(h)).map((host) => ({ wave: w.index, host })));
    this.left = new Map(plan.waves.map((w) => [w.index, w.hosts.filter((h) => !isDone(h)).length]));
  }

  /** The checkpoint a watch failure is charged to: the next one not yet passed. */
  get currentCheckpoint(): number {
    return this.rc.deps.plan.waves[Math.max(0, this.next)]?.index ?? this.passed;
  }

  /** Runs the window to its end: every host done, or launching stopped and the in-flight hosts finished. */
  async run(): Promise<void> {
    this.pump();
    const { concurrency } = this.rc.deps.playbook.waves;
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, this.queue.length || 1)) }, () => this.worker()));
    this.wakeAll();
    await this.checkpoints;
    await this.pump();
  }

  /** Hosts of checkpoint `w` may start: at most one checkpoint ahead of the newest passed (none after a canary). */
  private allowed(w: number): boolean {
    const canary = !!this.rc.deps.playbook.waves.canary;
    return w <= this.passed + 1 || (w === this.passed + 2 && !(canary && this.passed === 0));
  }

  private changed(): Promise<void> {
    return new Promise<void>((r) => this.waiters.push(r));
  }

  private wakeAll(): void {
    this.waiters.splice(0).forEach((f) => f());
  }

  private pump(): Promise<void> {
    return (this.checkpoints = this.checkpoints.then(() => this.runCheckpoints()));
  }

  /** Runs the checkpoints whose hosts have all finished, in order. */
  private async runCheckpoints(): Promise<void> {
    const { rc } = this;
    const waves = rc.deps.plan.waves;
    while (!this.outcome && !this.gateProblem && this.next < waves.length && this.left.get(waves[this.next]!.index) === 0) {
      const w = waves[this.next]!;
      if (!rc.state.waves.get(w.index)?.done) {
        await rc.record({ type: 'wave', t: now(), wave: w.index, phase: 'done' });
        rc.emit({ event: 'wave.done', release: rc.release, wave: w.index, ms: 0, failed: this.failed.get(w.index) ?? [] });
      }
      const r = await checkpoint(rc, w.index, w.hosts, this.started.has(w.index));
      if (r === 'continue') {
        this.passed = w.index;
        this.next++;
      } else {
        if (typeof r === 'object') this.gateProblem = r;
        else this.outcome = r;
        this.stopLaunch = true;
      }
      this.wakeAll();
    }
  }

  private async worker(): Promise<void> {
    const { rc } = this;
    const { plan, playbook } = rc.deps;
    for (;;) {
      if (this.stopLaunch || rc.controls.stop || this.signal.aborted) return;
      const i = this.queue.findIndex((q) => this.allowed(q.wave));
      if (i < 0) {
        if (!this.queue.length) return;
        await this.changed();
        continue;
      }
      const item = this.queue.splice(i, 1)[0]!;
      if (!this.started.has(item.wave)) {
        this.started.add(item.wave);
        await rc.record({ type: 'wave', t: now(), wave: item.wave, phase: 'started' });
        rc.emit({ event: 'wave.start', release: rc.release, wave: item.wave, hosts: plan.waves.find((w) => w.index === item.wave)!.hosts });
      }
      if (!(await runHost(rc, item.wave, rc.host(item.host), this.signal))) {
        const f = [...(this.failed.get(item.wave) ?? []), item.host];
        this.failed.set(item.wave, f);
        const max = playbook.waves.maxFailures;
        if (f.length > max && !this.hostFailure) {
          this.hostFailure = `checkpoint ${item.wave}: ${f.length} host(s) failed (${f.join(', ')}), more than maxFailures ${max}${rc.causes(f)}`;
          this.stopLaunch = true;
          this.wakeAll();
        }
      }
      this.left.set(item.wave, this.left.get(item.wave)! - 1);
      void this.pump();
    }
  }
}

/** The rolling scheduler: the window, then what stopped it (operator abort, Ctrl-C, watch, hosts, a gate). */
export async function runRolling(rc: ReleaseContext): Promise<Outcome | 'continue'> {
  const aborted = await haltIfAborted(rc);
  if (aborted) return aborted;
  const watch = startWatch(
    rc,
    0,
    rc.deps.playbook.hosts.map((h) => h.name),
  );
  const window = new RollingWindow(rc, watch.signal);
  try {
    await window.run();
  } finally {
    await watch.stop();
  }
  const stopped = await haltIfAborted(rc);
  if (stopped) return stopped;
  if (rc.deps.signal.aborted) return haltInterrupted(rc);
  const problem = watch.failure();
  if (problem) return onGateProblem(rc, { ...problem, wave: window.currentCheckpoint });
  if (window.hostFailure) return rc.halt(window.hostFailure, undefined, '`graywave resume` retries from the failed step; `graywave rollback` undoes');
  if (window.gateProblem) return onGateProblem(rc, window.gateProblem);
  return window.outcome ?? 'continue';
}
