import { findGate } from '../gates/index.js';
import { evidenceLines } from '../gates/judge.js';
import type { GateContext } from '../gates/types.js';
import { templateValues } from '../plan/build.js';
import type { GateSpec, Host } from '../playbook/types.js';
import { formatMs } from '../util/duration.js';
import { render, renderShell, templateEnv } from '../util/template.js';
import { sleep } from './context.js';
import { now, type ReleaseContext } from './release.js';
import { withLimits } from './step.js';
import { DEFAULT_ERROR_LIMIT, gateVerdict, type Judged, type Measurement, type Verdict } from './verdict.js';

/** Between two measurements of a gate that errored. */
const ERROR_RETRY_MS = 1000;

/**
 * Runs a gate once and says what it measured. A gate that throws, or is cut short by its timeout, measured nothing
 * (`error`); `signal` is the wave's (Ctrl-C) or, for a verify gate, also the operator's promotion.
 */
export async function measure(
  rc: ReleaseContext,
  gate: GateSpec,
  wave: number,
  hostNames: string[],
  host: Host | undefined,
  signal: AbortSignal,
  watchingSince?: number,
): Promise<Measurement> {
  const impl = findGate(gate.gate)!;
  const { playbook, transport, providers } = rc.deps;
  const values = templateValues(playbook, host, wave);
  const localHost: Host = { name: 'local', address: 'local', vars: {}, labels: {} };
  const log = rc.log(host?.name ?? '_release');
  const ctx = (gateSignal: AbortSignal): GateContext => ({
    playbook,
    wave,
    hosts: hostNames.map((n) => rc.host(n)),
    host,
    since: watchingSince ?? restoredAt(rc, hostNames),
    watching: watchingSince !== undefined,
    lastWave: wave === rc.deps.plan.waves[rc.deps.plan.waves.length - 1]?.index,
    render: (t) => render(t, values),
    renderShell: (t) => renderShell(t, values),
    monitor: (name) => providers.monitor(name),
    signal: gateSignal,
    log: (line) => log.line(line),
    progress: () => undefined,
    sh: async (command, opts = {}) => {
      log.line(`$ ${command}`);
      const t = host ? transport : rc.localTransport();
      const res = await t.exec(host ?? localHost, command, {
        env: templateEnv(values),
        timeoutMs: opts.timeoutMs ?? gate.timeoutMs,
        signal: gateSignal,
        onOutput: (c) => log.write(c),
      });
      log.line(`exit ${res.code ?? res.signal}`);
      return res;
    },
  });
  try {
    const r = await withLimits((s) => impl.run(ctx(s), gate.params), {
      signal,
      timeoutMs: gate.timeoutMs,
      timeoutMessage: (ms) => `timed out after ${formatMs(ms)}`,
    });
    const asks = !r.ok && !r.unknown && (r.verdict === 'marginal' || r.verdict === 'inconclusive');
    const judged = r.verdict || r.evidence ? { judged: { verdict: r.verdict, evidence: r.evidence } } : {};
    return { status: r.ok ? 'pass' : r.unknown ? 'error' : asks ? 'ask' : 'fail', observed: r.observed, values: r.values, ...judged };
  } catch (err) {
    return { status: 'error', observed: rc.mask(`error: ${(err as Error).message}`) };
  }
}

/** When the last of these hosts finished a step (restored): where a judge's window may start. */
function restoredAt(rc: ReleaseContext, hostNames: string[]): number | undefined {
  let last: number | undefined;
  for (const n of hostNames) {
    for (const st of rc.state.hosts.get(n)?.steps.values() ?? []) {
      const t = st.endedAt ? Date.parse(st.endedAt) : NaN;
      if (Number.isFinite(t) && (last === undefined || t > last)) last = t;
    }
  }
  return last;
}

/**
 * What verifying a wave came to: every gate passed, one failed (→ onFailure), one could not be measured, a judge
 * asks a person (marginal/inconclusive: the release pauses for approval), or a halt.
 */
export type VerifyResult =
  { kind: 'ok' } | { kind: 'failed' | 'error'; detail: string } | { kind: 'ask'; detail: string; evidence: string[] } | { kind: 'interrupted'; reason: string };

/** Measures one verify gate (on one host, or once) until there is a verdict; the operator's promotion may pass it. */
async function judgeGate(
  rc: ReleaseContext,
  gate: GateSpec,
  wave: number,
  hostNames: string[],
  host: Host | undefined,
): Promise<Exclude<Verdict, { status: 'measure-again' }>> {
  const ctl = rc.controls;
  const errorLimit = gate.errorLimit ?? DEFAULT_ERROR_LIMIT;
  const measurements: Measurement[] = [];
  const interrupted = () => rc.deps.signal.aborted;
  for (;;) {
    const v = gateVerdict(measurements, { errorLimit, promotion: ctl.promotion(), interrupted: interrupted() });
    if (v.status !== 'measure-again') return v;
    if (v.errors > 0) await sleep(ERROR_RETRY_MS, rc.deps.signal).catch(() => undefined);
    if (interrupted()) return { status: 'interrupted', observed: 'interrupted' };
    const signal = AbortSignal.any([rc.deps.signal, ctl.gateSignal()]);
    const m = await measure(rc, gate, wave, hostNames, host, signal);
    measurements.push(m);
  }
}

/** The playbook's `watch:` checks once for one host (between warm-up steps), each result journalled; the first failure ends it. */
export async function watchOnce(rc: ReleaseContext, wave: number, host: Host): Promise<{ ok: boolean; observed: string }> {
  const checks = rc.deps.playbook.watch;
  for (const gate of checks) {
    const m = await measure(rc, gate, wave, [host.name], gate.perHost ? host : undefined, rc.deps.signal);
    await rc.record({ type: 'gate', t: now(), wave, check: gate.name, host: host.name, ok: m.status === 'pass', observed: m.observed, values: m.values });
    if (m.status !== 'pass') return { ok: false, observed: `watch ${gate.name}: ${m.observed}` };
  }
  return { ok: true, observed: `${checks.length} watch check(s) passed` };
}

/** Runs the verification gates after a wave, in order; stops at the first that does not pass. */
export async function verifyWave(rc: ReleaseContext, wave: number, hostNames: string[]): Promise<VerifyResult | 'aborted'> {
  const { playbook } = rc.deps;
  // Under the hotfix policy, gates marked skipOnHotfix are skipped (the start record carries the reason).
  const gates = playbook.verify.filter((g) => g.gate !== 'approve' && !(playbook.hotfix && g.skipOnHotfix));
  for (const gate of gates) {
    const targets: (Host | undefined)[] = gate.perHost ? hostNames.map((n) => rc.host(n)) : [undefined];
    for (const host of targets) {
      if (rc.controls.stop) return 'aborted';
      const t0 = Date.now();
      rc.emit({ event: 'verify.start', release: rc.release, wave, check: gate.name, host: host?.name });
      const v = await judgeGate(rc, gate, wave, hostNames, host);
      if (v.status === 'skipped') rc.controls.usePromotion();
      // Ctrl-C while a check ran: the check was cut short, it did not fail. Halt as an interrupt (never onFailure).
      if (v.status === 'interrupted') {
        const why = rc.deps.signal.reason instanceof Error ? rc.deps.signal.reason.message : 'interrupted';
        return { kind: 'interrupted', reason: why };
      }
      const ok = v.status === 'pass' || v.status === 'skipped';
      const values = 'values' in v ? v.values : undefined;
      const judged = judgedFields(v);
      const ms = Date.now() - t0;
      await rc.record({ type: 'gate', t: now(), wave, check: gate.name, host: host?.name, ok, observed: v.observed, values, ...judged });
      const at = { release: rc.release, wave, check: gate.name, host: host?.name, observed: v.observed, ms, ...judged };
      if (ok) {
        rc.emit({ event: 'verify.done', ...at });
        continue;
      }
      rc.emit({ event: 'verify.failed', ...at });
      const detail = `${gate.name}${host ? ` on ${host.name}` : ''}: ${v.observed}`;
      if (v.status === 'ask') {
        // A person decides on a marginal or inconclusive judge; an approval of this wave lets it through.
        if (rc.state.waves.get(wave)?.approved) continue;
        const evidence = v.judged?.evidence ? evidenceLines(v.judged.evidence).slice(1) : [];
        return { kind: 'ask', detail: `${gate.name}${host ? ` on ${host.name}` : ''}: ${v.observed}`, evidence };
      }
      await rc.record({ type: 'wave', t: now(), wave, phase: 'verify-failed', detail });
      return { kind: v.status === 'error' ? 'error' : 'failed', detail };
    }
  }
  return { kind: 'ok' };
}

/** A wave's `watch:` checks while its hosts are in flight. */
export interface Watch {
  /** Aborted by Ctrl-C or by the first watch check that fails (or cannot be measured errorLimit times in a row). */
  signal: AbortSignal;
  failure(): { kind: 'failed' | 'error'; detail: string } | undefined;
  stop(): Promise<void>;
}

/**
 * Runs the `watch:` checks every interval while the wave's hosts are in flight. The first failure aborts the
 * wave's steps at once (through `signal`, which the wave passes to every step) instead of after the wave.
 */
export function startWatch(rc: ReleaseContext, wave: number, hostNames: string[]): Watch {
  const checks = rc.deps.playbook.watch;
  const outer = rc.deps.signal;
  if (!checks.length) return { signal: outer, stop: async () => undefined, failure: () => undefined };
  const waveCtl = new AbortController();
  const onOuter = () => waveCtl.abort(outer.reason);
  outer.addEventListener('abort', onOuter, { once: true });
  const stopCtl = new AbortController();
  const started = Date.now();
  let failure: { kind: 'failed' | 'error'; detail: string } | undefined;
  const loops = checks.map(async (gate) => {
    const measurements: Measurement[] = [];
    while (!stopCtl.signal.aborted && !failure) {
      try {
        await sleep(gate.intervalMs ?? 10_000, stopCtl.signal);
      } catch {
        return;
      }
      const m = await measure(rc, gate, wave, hostNames, undefined, AbortSignal.any([outer, stopCtl.signal]), started);
      if (stopCtl.signal.aborted) return;
      measurements.push(m);
      if (measurements.length > 100) measurements.shift();
      // A judge's marginal or inconclusive verdict while the wave runs is recorded, not a failure (the checks after the wave decide).
      await rc.record({ type: 'gate', t: now(), wave, check: gate.name, ok: m.status === 'pass', observed: m.observed, values: m.values, ...judgedFields(m) });
      const v = gateVerdict(measurements, { errorLimit: gate.errorLimit ?? DEFAULT_ERROR_LIMIT });
      if ((v.status === 'fail' || v.status === 'error') && !failure) {
        failure = { kind: v.status === 'fail' ? 'failed' : 'error', detail: `watch ${gate.name}: ${v.observed}` };
        rc.emit({ event: 'verify.failed', release: rc.release, wave, check: gate.name, observed: v.observed, ms: 0, ...judgedFields(v) });
        waveCtl.abort(new Error(`stopped: ${failure.detail}`));
      }
    }
  });
  return {
    signal: waveCtl.signal,
    failure: () => failure,
    stop: async () => {
      stopCtl.abort();
      await Promise.all(loops);
      outer.removeEventListener('abort', onOuter);
    },
  };
}

/** A judge's verdict and evidence for the gate record and the verify events (nothing for other gates). */
function judgedFields(v: Measurement | Verdict): Judged {
  const j = 'judged' in v ? v.judged : undefined;
  if (!j) return {};
  return j.evidence ? { verdict: j.verdict, evidence: j.evidence } : j.verdict ? { verdict: j.verdict } : {};
}
