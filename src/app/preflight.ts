import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { quote } from 'shell-quote';
import { findGate } from '../gates/index.js';
import { buildPlan, templateValues } from '../plan/build.js';
import type { Host, Playbook, StepSpec } from '../playbook/types.js';
import { ProviderSet } from '../engine/providers.js';
import type { Check, Monitor, ProviderContext } from '../providers/types.js';
import { createTransport } from '../transport/index.js';
import type { Transport } from '../transport/types.js';
import { Secrets } from '../util/secrets.js';
import { render, renderShell } from '../util/template.js';

/**
 * Preflight (`graywave check`, and before `run`/`resume`): everything a release needs that can be asked without
 * changing anything, for every host at once, so that a missing registration or a query without data is found
 * before wave 1 instead of hours in. Read-only: commands on hosts only read (`true`, `df`), providers are asked
 * through their read-only `isRegistered`, monitors through a query.
 */

/** One cell of the host × check table. `skipped`: not asked (no such check for this provider, or the host is unreachable). */
export interface PreflightCell {
  host: string;
  check: string;
  ok: boolean;
  skipped?: boolean;
  detail: string;
}

export interface PreflightReport {
  ok: boolean;
  /** Column order. */
  checks: string[];
  /** Row order: the hosts asked, then `(release)` for wave-level gates. */
  hosts: string[];
  cells: PreflightCell[];
}

export const RELEASE_ROW = '(release)';
const CHECK_TIMEOUT_MS = 30_000;
const CONCURRENCY = 16;

const firstLine = (err: unknown) => ((err as Error)?.message ?? String(err)).split('\n')[0]!;
/** A monitor error that still proves the monitor answered: the query is fine, there is just nothing yet. */
const ANSWERED_EMPTY = /no data|empty result|no series|no sample|no hits|stale/i;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`${what}: no answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

function stepProviderName(step: StepSpec): string | undefined {
  if (typeof step.params === 'string') return step.params;
  const p = step.params as { provider?: unknown } | null;
  return typeof p?.provider === 'string' ? p.provider : undefined;
}

export interface PreflightOptions {
  /** Only these hosts (resume: the ones not started yet); default all. */
  hosts?: string[];
  transport?: Transport;
  signal?: AbortSignal;
}

export async function preflight(pb: Playbook, opts: PreflightOptions = {}): Promise<PreflightReport> {
  const secrets = new Secrets(pb.dir);
  const transport = opts.transport ?? createTransport(pb.transport, { dir: pb.dir, secrets });
  const providers = new ProviderSet(pb, { dir: pb.dir, secrets, transport });
  const signal = opts.signal ?? new AbortController().signal;
  const plan = buildPlan(pb);
  const waveOf = new Map<string, number>();
  for (const w of plan.waves) for (const h of w.hosts) waveOf.set(h, w.index);
  const hosts = pb.hosts.filter((h) => !opts.hosts || opts.hosts.includes(h.name));
  const sudo = pb.transport.sudo === true;
  const deploys = pb.steps.filter((s) => s.action === 'deploy');
  const drains = [...new Set(pb.steps.filter((s) => s.action === 'drain').map(stepProviderName).filter((n): n is string => !!n))];
  const waits = pb.steps.filter((s) => s.action === 'waitDrained');
  const checks = ['reach', ...(sudo ? ['sudo'] : []), ...(deploys.length ? ['artifact', 'space'] : []), ...drains.map((d) => `registered:${d}`), ...waits.map((w) => `data:${w.name}`)];
  const cells: PreflightCell[] = [];

  const contextFor = (host: Host): ProviderContext & { renderShell(t: string): string; monitor(name: string): Monitor } => {
    const values = templateValues(pb, host, waveOf.get(host.name) ?? 1);
    return {
      host,
      render: (t, over) => render(t, over ? { ...values, ...over } : values),
      renderShell: (t) => renderShell(t, values),
      transport,
      signal,
      log: () => undefined,
      monitor: (name) => providers.monitor(name),
    };
  };

  async function checkHost(host: Host): Promise<void> {
    const ctx = contextFor(host);
    const add = (check: string, ok: boolean, detail: string, skipped = false) => cells.push({ host: host.name, check, ok, detail, skipped });
    const sh = (command: string, asSudo = false) => transport.exec(host, command, { timeoutMs: CHECK_TIMEOUT_MS, signal, sudo: asSudo });
    // Reachable and authenticated (an unknown host key fails the connection).
    let reachable = false;
    try {
      const r = await sh('true');
      reachable = r.code === 0;
      add('reach', reachable, reachable ? 'ok' : `exit ${r.code ?? r.signal}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`);
    } catch (err) {
      add('reach', false, firstLine(err));
    }
    if (sudo) {
      if (!reachable) add('sudo', false, 'not asked: host unreachable', true);
      else {
        const r = await sh('true', true).catch((err: unknown) => ({ code: -1, stderr: firstLine(err), signal: null }));
        add('sudo', r.code === 0, r.code === 0 ? 'sudo -n works' : `sudo -n true failed: ${String(r.stderr).trim().split('\n').pop() || `exit ${r.code}`}`);
      }
    }
    for (const d of deploys) {
      const p = d.params as { artifact: string; to: string };
      const file = ctx.render(p.artifact);
      const path = isAbsolute(file) ? file : resolve(pb.dir, file);
      let size = -1;
      try {
        const st = statSync(path);
        if (!st.isFile()) throw new Error('not a regular file');
        size = st.size;
        add('artifact', true, `${file} (${size} bytes)`);
      } catch (err) {
        add('artifact', false, `${file}: ${(err as NodeJS.ErrnoException).code ?? firstLine(err)}`);
      }
      if (!reachable) add('space', false, 'not asked: host unreachable', true);
      else if (size < 0) add('space', false, 'not asked: no artifact', true);
      else {
        const to = ctx.render(p.to);
        // The nearest existing directory of `to` (deploy creates the rest); free KiB there.
        const r = await sh(`d=${quote([to])}; while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done; df -Pk -- "$d" | awk 'NR==2 {print $4}'`, sudo).catch((err: unknown) => ({ code: -1, stdout: '', stderr: firstLine(err) }));
        const freeKb = Number(String(r.stdout).trim());
        // The upload plus its unpacked copy: twice the artifact.
        const needKb = Math.ceil((size * 2) / 1024);
        if (r.code !== 0 || !Number.isFinite(freeKb) || String(r.stdout).trim() === '') add('space', false, `cannot read free space at ${to}: ${String(r.stderr).trim() || `exit ${r.code}`}`);
        else add('space', freeKb >= needKb, `${Math.floor(freeKb / 1024)} MiB free at ${to}, need ${Math.ceil(needKb / 1024)} MiB`);
      }
    }
    for (const name of drains) {
      const check = `registered:${name}`;
      try {
        const provider = providers.provider(name);
        if (!provider.isRegistered) {
          add(check, true, `${pb.providers[name]?.type ?? name} cannot tell before the drain`, true);
          continue;
        }
        const c: Check = await withTimeout(provider.isRegistered(ctx), CHECK_TIMEOUT_MS, name);
        add(check, c.done, c.observed ?? 'ok');
      } catch (err) {
        add(check, false, firstLine(err));
      }
    }
    for (const w of waits) {
      const p = w.params as { monitor: string; query: string };
      const query = ctx.render(p.query);
      try {
        const v = await withTimeout(providers.monitor(p.monitor).value(ctx, query), CHECK_TIMEOUT_MS, p.monitor);
        add(`data:${w.name}`, true, `${p.monitor} reads ${v}`);
      } catch (err) {
        add(`data:${w.name}`, false, `${p.monitor}: ${firstLine(err)} (query ${query})`);
      }
    }
  }

  /** Every gate's monitor answers: its queries are run once (per host when they use host values). */
  async function checkGates(): Promise<void> {
    for (const gate of [...pb.verify, ...pb.watch]) {
      const impl = findGate(gate.gate);
      const monitors = (impl?.uses?.(gate.params) ?? []).filter((u) => u.role === 'monitor');
      if (!monitors.length) continue;
      const p = gate.params as Record<string, unknown>;
      const queries = ['expr', 'query', 'green', 'blue'].map((k) => p[k]).filter((q): q is string => typeof q === 'string' && q !== '');
      const check = `gate:${gate.name}`;
      if (!checks.includes(check)) checks.push(check);
      const rows = gate.perHost ? hosts : [undefined];
      for (const host of rows) {
        const ctx = contextFor(host ?? { name: RELEASE_ROW, address: 'local', vars: {}, labels: {} });
        const problems: string[] = [];
        const seen: string[] = [];
        for (const q of queries) {
          for (const m of monitors) {
            try {
              const v = await withTimeout(providers.monitor(m.provider).value(ctx, ctx.render(q)), CHECK_TIMEOUT_MS, m.provider);
              seen.push(`${m.provider} reads ${v}`);
            } catch (err) {
              // "no data" still proves the monitor answered (GREEN has no traffic before the release).
              if (ANSWERED_EMPTY.test(firstLine(err))) seen.push(`${m.provider} answers (${firstLine(err)})`);
              else problems.push(`${m.provider}: ${firstLine(err)}`);
            }
          }
        }
        cells.push({ host: host?.name ?? RELEASE_ROW, check, ok: problems.length === 0, detail: problems.length ? problems.join('; ') : seen.join('; ') || 'ok' });
      }
    }
  }

  try {
    let next = 0;
    const worker = async () => {
      while (next < hosts.length) await checkHost(hosts[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, hosts.length) }, worker));
    await checkGates();
  } finally {
    await providers.close();
    if (!opts.transport) await transport.close();
  }
  const rowNames = [...hosts.map((h) => h.name), ...(cells.some((c) => c.host === RELEASE_ROW) ? [RELEASE_ROW] : [])];
  return { ok: cells.every((c) => c.ok), checks, hosts: rowNames, cells };
}

/** The table (host × check: ok / FAIL / -) and, under it, one line per problem. */
export function preflightText(r: PreflightReport): string {
  const width = Math.max(6, ...r.hosts.map((h) => h.length));
  const cols = r.checks.map((c) => Math.max(c.length, 4));
  const cell = (host: string, check: string) => {
    const c = r.cells.find((x) => x.host === host && x.check === check);
    return !c ? '' : c.skipped ? '-' : c.ok ? 'ok' : 'FAIL';
  };
  const lines = [['host'.padEnd(width), ...r.checks.map((c, i) => c.padEnd(cols[i]!))].join('  ').trimEnd()];
  for (const h of r.hosts) lines.push([h.padEnd(width), ...r.checks.map((c, i) => cell(h, c).padEnd(cols[i]!))].join('  ').trimEnd());
  const bad = r.cells.filter((c) => !c.ok);
  if (bad.length) {
    lines.push('', `${bad.length} problem(s):`);
    for (const c of bad) lines.push(`  ${c.host} ${c.check}: ${c.detail}`);
  } else lines.push('', 'preflight passed: nothing was changed');
  return lines.join('\n');
}
