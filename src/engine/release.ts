import type { StepContext } from '../actions/types.js';
import type { JournalRecord } from '../journal/records.js';
import { applyRecord, replay, type RunState } from '../journal/replay.js';
import { templateValues } from '../plan/build.js';
import type { Host, StepSpec } from '../playbook/types.js';
import { RoutingRunner } from '../routing/run.js';
import { LocalTransport } from '../transport/local.js';
import type { Transport } from '../transport/types.js';
import { render, renderShell, templateEnv } from '../util/template.js';
import { HostLog, Tail, type EngineDeps } from './context.js';
import { Controls } from './controls.js';
import type { EngineEvent } from './events.js';

/** `limited`: every host of `--limit` is done, the rest of the fleet is still pending (journalled as phase `limited`). */
export type Outcome = 'done' | 'halted' | 'paused' | 'rolled-back' | 'limited';

export const now = (): string => new Date().toISOString();

/** Which provider a step talks to (drain/restore take the name; relabel an object). */
export function stepProvider(step: StepSpec): string | undefined {
  if (typeof step.params === 'string') return step.params;
  const p = step.params as { provider?: unknown } | null;
  return typeof p?.provider === 'string' ? p.provider : undefined;
}

/**
 * One release as the engine's parts see it (the bottom of src/engine: everything else builds on it): its state
 * and journal (`record` = fsync, then fold: O(1), never a replay per step), events, per-host logs, masking, halting,
 * and the contexts steps run in. The forward run, rollback, switchover and routing all use this one object.
 */
export class ReleaseContext {
  readonly state: RunState;
  readonly release: string;
  readonly hostsByName: Map<string, Host>;
  readonly controls: Controls;
  private readonly logs = new Map<string, HostLog>();
  private local?: LocalTransport;
  private routingRunner?: RoutingRunner;
  /** The playbook's `watch:` checks once for one host (set by the engine from gates.ts; a step's ctx.watch). */
  watchOnce?: (wave: number, host: Host) => Promise<{ ok: boolean; observed: string }>;

  /**
   * Set by a release train when another app's part of the wave failed: no new host starts (hosts in flight finish
   * their pipeline), so the train stops at a safe point.
   */
  holdNewHosts = false;

  /** `controls`: a train's apps share the train's operator controls (abort, promote). */
  constructor(
    readonly deps: EngineDeps,
    controls?: Controls,
  ) {
    this.state = replay(deps.journal.records);
    this.release = deps.playbook.name;
    this.hostsByName = new Map(deps.playbook.hosts.map((h) => [h.name, h]));
    this.controls = controls ?? new Controls(deps.journal.records, (r) => this.record(r));
  }

  emit(e: EngineEvent): void {
    this.deps.emit(e);
  }

  /** Journals a record (durably) and folds it into the in-memory state. */
  async record(r: JournalRecord): Promise<void> {
    await this.deps.journal.append(r);
    applyRecord(this.state, r);
  }

  mask(text: string): string {
    return this.deps.secrets.mask(text);
  }

  host(name: string): Host {
    return this.hostsByName.get(name)!;
  }

  /** The host's log, opened on first use and kept open until `closeLog`. */
  log(host: string): HostLog {
    let l = this.logs.get(host);
    if (!l) {
      l = new HostLog(this.deps.logDir, host, this.deps.secrets);
      this.logs.set(host, l);
    }
    return l;
  }

  closeLog(host: string): void {
    this.logs.get(host)?.close();
    this.logs.delete(host);
  }

  /** The playbook's routing rules, created on first use (closed by `close`). */
  routing(): RoutingRunner {
    return (this.routingRunner ??= new RoutingRunner(this.deps));
  }

  /** Release-level steps and wave-level gates run on this machine, whatever the playbook's transport. */
  localTransport(): LocalTransport {
    return (this.local ??= new LocalTransport(this.deps.playbook.dir));
  }

  async close(): Promise<void> {
    await this.routingRunner?.close();
    for (const name of [...this.logs.keys()]) this.closeLog(name);
  }

  /** Records the halt and tells the world, with the hosts still drained. */
  async halt(reason: string, wave?: number, hint?: string): Promise<Outcome> {
    reason = this.mask(reason);
    await this.record({ type: 'run', t: now(), phase: 'halted', reason });
    this.emit({ event: 'run.halted', release: this.release, reason, wave, hint, stillDrained: this.stillDrained() });
    return 'halted';
  }

  /** Records the release done and tells the world. */
  async done(waves: number, started: number): Promise<Outcome> {
    const { playbook } = this.deps;
    await this.record({ type: 'run', t: now(), phase: 'done' });
    this.emit({
      event: 'run.done',
      release: this.release,
      version: playbook.version,
      hosts: playbook.hosts.length,
      waves,
      ms: Date.now() - started,
      failed: [],
    });
    return 'done';
  }

  /**
   * The halt after the journal could not be written, or a bug: records it if the journal still takes it (the journal
   * itself may be what failed) and tells the world what we know.
   */
  async haltOnError(err: unknown): Promise<Outcome> {
    const reason = this.mask((err as Error).message);
    await this.deps.journal.append({ type: 'run', t: now(), phase: 'halted', reason }).catch(() => undefined);
    this.emit({ event: 'run.halted', release: this.release, reason, stillDrained: this.stillDrained() });
    return 'halted';
  }

  /** Hosts whose drain completed but whose matching restore did not: the halt message lists them. */
  stillDrained(): string[] {
    const steps = this.deps.playbook.steps;
    const drained = (name: string) => {
      const h = this.state.hosts.get(name)!;
      return steps.some((s) => {
        if (s.action !== 'drain') return false;
        const d = h.steps.get(s.name);
        if (!d || !(d.phase === 'done' || d.phase === 'did' || (d.phase === 'failed' && d.hasData))) return false;
        const restore = steps.find((r) => r.action === 'restore' && stepProvider(r) === stepProvider(s));
        return (restore ? h.steps.get(restore.name) : undefined)?.phase !== 'done';
      });
    };
    return [...this.state.hosts.keys()].filter(drained);
  }

  /** Why the first failed hosts failed (`; h-01 at restore: HTTP 500 …`), so the halt message names the cause. */
  causes(hosts: string[]): string {
    const parts = hosts.slice(0, 3).map((name) => {
      const h = this.state.hosts.get(name);
      const s = h?.current ? h.steps.get(h.current) : undefined;
      return s?.error ? `${name} at ${h!.current}: ${s.error.length > 300 ? s.error.slice(0, 300) + '…' : s.error}` : undefined;
    });
    const shown = parts.filter((p): p is string => p !== undefined);
    return shown.length ? `; ${shown.join('; ')}${hosts.length > 3 ? `; and ${hosts.length - 3} more` : ''}` : '';
  }

  /** The context one attempt of a step runs in: templates, the host's transport, its log, saved data. */
  stepContext(
    wave: number,
    host: Host,
    step: StepSpec,
    signal: AbortSignal,
    deadline: number,
    tail: Tail,
    previous: unknown,
    transport: Transport = this.deps.transport,
  ): StepContext {
    const { playbook, providers } = this.deps;
    const values = templateValues(playbook, host, wave);
    const env = templateEnv(values);
    const log = this.log(host.name);
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
      progress: (observed) =>
        this.emit({ event: 'step.progress', release: this.release, wave, host: host.name, step: step.name, observed: this.mask(observed) }),
      // A long step's progress (a warm-up ramp): journalled as `did`, handed back as `previous` on resume.
      save: (data) => this.record({ type: 'step', t: now(), wave, host: host.name, step: step.name, phase: 'did', data: data === undefined ? null : data }),
      watch: this.watchOnce ? () => this.watchOnce!(wave, host) : undefined,
      provider: (name) => providers.provider(name),
      monitor: (name) => providers.monitor(name),
      savedOf: (actionKey, provider) => this.savedOf(host.name, step.name, actionKey, provider),
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

  /** The saved data of the host's most recent step before `before` with this action (and provider). */
  private savedOf(host: string, before: string, actionKey: string, provider: string | undefined): unknown {
    const steps = this.deps.playbook.steps;
    const upTo = steps.findIndex((s) => s.name === before);
    for (let i = (upTo < 0 ? steps.length : upTo) - 1; i >= 0; i--) {
      const s = steps[i]!;
      if (s.action !== actionKey || (provider !== undefined && stepProvider(s) !== provider)) continue;
      const st = this.state.hosts.get(host)?.steps.get(s.name);
      if (st?.hasData) return st.data;
    }
    return undefined;
  }

  /** The context of a release-level (switchover) step: on this machine, as host `_switchover`. */
  releaseStepContext(wave: number, step: StepSpec, signal: AbortSignal): StepContext {
    const host: Host = { name: '_switchover', address: 'local', vars: {}, labels: {} };
    return this.stepContext(wave, host, step, signal, Date.now() + step.timeoutMs, new Tail(), undefined, this.localTransport());
  }
}
