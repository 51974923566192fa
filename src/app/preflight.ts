import { setMaxListeners } from 'node:events';
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

/** What a host command gave (exec's result, or an error as exit -1 with its message). */
type HostOutput = { code: number | null; stdout: string; stderr: string };
/** The first line the merged reach command prints: the host's shell ran it. */
const REACHED = 'graywave-preflight-reached';

/**
 * Free space where a deploy goes: the nearest existing directory of `to` (deploy creates the rest), found by the shell
 * itself, then df's POSIX line (free KiB is its 4th field): each process costs the host a fork, 40 hosts at once.
 */
function spaceScript(ctx: Ctx, d: StepSpec): string {
  const to = ctx.render((d.params as { to: string }).to);
  return `d=${quote([to])}; while [ ! -e "$d" ]; do case $d in */*) d=\${d%/*}; d=\${d:-/};; *) d=.;; esac; done; df -Pk -- "$d"`;
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

type Add = (check: string, ok: boolean, detail: string, skipped?: boolean) => void;
type Ctx = ProviderContext & { renderShell(t: string): string; monitor(name: string): Monitor };

/** One preflight run: the playbook's parts that can be asked, and the cells found so far. */
class Preflight {
  readonly cells: PreflightCell[] = [];
  readonly checks: string[];
  readonly hosts: Host[];
  private readonly waveOf = new Map<string, number>();
  private readonly sudo: boolean;
  private readonly deploys: StepSpec[];
  private readonly drains: string[];
  private readonly waits: StepSpec[];

  constructor(
    private readonly pb: Playbook,
    private readonly transport: Transport,
    private readonly providers: ProviderSet,
    private readonly signal: AbortSignal,
    only?: string[],
  ) {
    for (const w of buildPlan(pb).waves) for (const h of w.hosts) this.waveOf.set(h, w.index);
    this.hosts = pb.hosts.filter((h) => !only || only.includes(h.name));
    this.sudo = pb.transport.sudo === true;
    this.deploys = pb.steps.filter((s) => s.action === 'deploy');
    this.drains = [
      ...new Set(
        pb.steps
          .filter((s) => s.action === 'drain')
          .map(stepProviderName)
          .filter((n): n is string => !!n),
      ),
    ];
    this.waits = pb.steps.filter((s) => s.action === 'waitDrained');
    this.checks = [
      'reach',
      ...(this.sudo ? ['sudo'] : []),
      ...(this.deploys.length ? ['artifact', 'space'] : []),
      ...this.drains.map((d) => `registered:${d}`),
      ...this.waits.map((w) => `data:${w.name}`),
    ];
  }

  contextFor(host: Host): Ctx {
    const values = templateValues(this.pb, host, this.waveOf.get(host.name) ?? 1);
    return {
      host,
      render: (t, over) => render(t, over ? { ...values, ...over } : values),
      renderShell: (t) => renderShell(t, values),
      transport: this.transport,
      signal: this.signal,
      log: () => undefined,
      monitor: (name) => this.providers.monitor(name),
    };
  }

  private sh(host: Host, command: string, asSudo = false) {
    return this.transport.exec(host, command, { timeoutMs: CHECK_TIMEOUT_MS, signal: this.signal, sudo: asSudo });
  }

  async checkHost(host: Host): Promise<void> {
    const ctx = this.contextFor(host);
    const add: Add = (check, ok, detail, skipped = false) => this.cells.push({ host: host.name, check, ok, detail, skipped });
    // Without sudo, the first deploy's space check is what proves the host reachable too: one command per host
    // instead of two (each costs the host a shell; 40 hosts are asked at once).
    const first = !this.sudo && this.deploys[0] ? spaceScript(ctx, this.deploys[0]) : undefined;
    const { reachable, out } = await this.reach(host, add, first);
    for (const [i, d] of this.deploys.entries()) await this.deploy(host, ctx, d, reachable, add, i === 0 ? out : undefined);
    for (const name of this.drains) await this.registered(ctx, name, add);
    for (const w of this.waits) await this.data(ctx, w, add);
  }

  /**
   * Reachable and authenticated (an unknown host key fails the connection); sudo where the transport uses it.
   * `script`: run it as the reach command (after a marker line that proves the shell ran) and return its output.
   */
  private async reach(host: Host, add: Add, script?: string): Promise<{ reachable: boolean; out?: HostOutput }> {
    let reachable = false;
    let out: HostOutput | undefined;
    try {
      const r = await this.sh(host, script ? `echo ${REACHED}; ${script}` : 'true');
      const [head = '', ...rest] = r.stdout.split('\n');
      reachable = script ? head === REACHED : r.code === 0;
      if (script && reachable) out = { code: r.code, stdout: rest.join('\n'), stderr: r.stderr };
      add('reach', reachable, reachable ? 'ok' : `exit ${r.code ?? r.signal}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`);
    } catch (err) {
      add('reach', false, firstLine(err));
    }
    if (!this.sudo) return { reachable, out };
    if (!reachable) add('sudo', false, 'not asked: host unreachable', true);
    else {
      const r = await this.sh(host, 'true', true).catch((err: unknown) => ({ code: -1, stderr: firstLine(err), signal: null }));
      add('sudo', r.code === 0, r.code === 0 ? 'sudo -n works' : `sudo -n true failed: ${String(r.stderr).trim().split('\n').pop() || `exit ${r.code}`}`);
    }
    return { reachable };
  }

  /** The artifact exists here, and the host has room for it at `to` (`asked`: the space script's output, already run). */
  private async deploy(host: Host, ctx: Ctx, d: StepSpec, reachable: boolean, add: Add, asked?: HostOutput): Promise<void> {
    const p = d.params as { artifact: string; to: string };
    const file = ctx.render(p.artifact);
    const path = isAbsolute(file) ? file : resolve(this.pb.dir, file);
    let size = -1;
    try {
      const st = statSync(path);
      if (!st.isFile()) throw new Error('not a regular file');
      size = st.size;
      add('artifact', true, `${file} (${size} bytes)`);
    } catch (err) {
      add('artifact', false, `${file}: ${(err as NodeJS.ErrnoException).code ?? firstLine(err)}`);
    }
    if (!reachable) return add('space', false, 'not asked: host unreachable', true);
    if (size < 0) return add('space', false, 'not asked: no artifact', true);
    const to = ctx.render(p.to);
    const r = asked ?? (await this.sh(host, spaceScript(ctx, d), this.sudo).catch((err: unknown) => ({ code: -1, stdout: '', stderr: firstLine(err) })));
    const free = String(r.stdout).trim().split('\n')[1]?.trim().split(/\s+/)[3] ?? '';
    const freeKb = /^\d+$/.test(free) ? Number(free) : NaN;
    // The upload plus its unpacked copy: twice the artifact.
    const needKb = Math.ceil((size * 2) / 1024);
    if (r.code !== 0 || !Number.isFinite(freeKb)) add('space', false, `cannot read free space at ${to}: ${String(r.stderr).trim() || `exit ${r.code}`}`);
    else add('space', freeKb >= needKb, `${Math.floor(freeKb / 1024)} MiB free at ${to}, need ${Math.ceil(needKb / 1024)} MiB`);
  }

  /** The provider knows the host (its read-only isRegistered). */
  private async registered(ctx: Ctx, name: string, add: Add): Promise<void> {
    const check = `registered:${name}`;
    try {
      const provider = this.providers.provider(name);
      if (!provider.isRegistered) return add(check, true, `${this.pb.providers[name]?.type ?? name} cannot tell before the drain`, true);
      const c: Check = await withTimeout(provider.isRegistered(ctx), CHECK_TIMEOUT_MS, name);
      add(check, c.done, c.observed ?? 'ok');
    } catch (err) {
      add(check, false, firstLine(err));
    }
  }

  /** The waitDrained query returns a value for the host (no data = FAIL). */
  private async data(ctx: Ctx, w: StepSpec, add: Add): Promise<void> {
    const p = w.params as { monitor: string; query: string };
    const query = ctx.render(p.query);
    try {
      const v = await withTimeout(this.providers.monitor(p.monitor).value(ctx, query), CHECK_TIMEOUT_MS, p.monitor);
      add(`data:${w.name}`, true, `${p.monitor} reads ${v}`);
    } catch (err) {
      add(`data:${w.name}`, false, `${p.monitor}: ${firstLine(err)} (query ${query})`);
    }
  }

  /** Every gate's monitor answers: its queries are run once (per host when they use host values). */
  async checkGates(): Promise<void> {
    for (const gate of [...this.pb.verify, ...this.pb.watch]) {
      const monitors = (findGate(gate.gate)?.uses?.(gate.params) ?? []).filter((u) => u.role === 'monitor');
      if (!monitors.length) continue;
      const p = gate.params as Record<string, unknown>;
      const queries = ['expr', 'query', 'green', 'blue'].map((k) => p[k]).filter((q): q is string => typeof q === 'string' && q !== '');
      const check = `gate:${gate.name}`;
      if (!this.checks.includes(check)) this.checks.push(check);
      for (const host of gate.perHost ? this.hosts : [undefined]) {
        const ctx = this.contextFor(host ?? { name: RELEASE_ROW, address: 'local', vars: {}, labels: {} });
        const problems: string[] = [];
        const seen: string[] = [];
        for (const q of queries) {
          for (const m of monitors) {
            try {
              const v = await withTimeout(this.providers.monitor(m.provider).value(ctx, ctx.render(q)), CHECK_TIMEOUT_MS, m.provider);
              seen.push(`${m.provider} reads ${v}`);
            } catch (err) {
              // "no data" still proves the monitor answered (GREEN has no traffic before the release).
              if (ANSWERED_EMPTY.test(firstLine(err))) seen.push(`${m.provider} answers (${firstLine(err)})`);
              else problems.push(`${m.provider}: ${firstLine(err)}`);
            }
          }
        }
        this.cells.push({
          host: host?.name ?? RELEASE_ROW,
          check,
          ok: problems.length === 0,
          detail: problems.length ? problems.join('; ') : seen.join('; ') || 'ok',
        });
      }
    }
  }
}

export async function preflight(pb: Playbook, opts: PreflightOptions = {}): Promise<PreflightReport> {
  const secrets = new Secrets(pb.dir);
  const transport = opts.transport ?? createTransport(pb.transport, { dir: pb.dir, secrets });
  const providers = new ProviderSet(pb, { dir: pb.dir, secrets, transport });
  const signal = opts.signal ?? new AbortController().signal;
  setMaxListeners(0, signal); // CONCURRENCY hosts' commands listen on it at once: not a leak
  const run = new Preflight(pb, transport, providers, signal, opts.hosts);
  try {
    let next = 0;
    const worker = async () => {
      while (next < run.hosts.length) await run.checkHost(run.hosts[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, run.hosts.length) }, worker));
    await run.checkGates();
  } finally {
    await providers.close();
    if (!opts.transport) await transport.close();
  }
  const rowNames = [...run.hosts.map((h) => h.name), ...(run.cells.some((c) => c.host === RELEASE_ROW) ? [RELEASE_ROW] : [])];
  // Hosts are asked in parallel: report in table order (row, then column).
  const cells = [...run.cells].sort((a, b) => rowNames.indexOf(a.host) - rowNames.indexOf(b.host) || run.checks.indexOf(a.check) - run.checks.indexOf(b.check));
  return { ok: cells.every((c) => c.ok), checks: run.checks, hosts: rowNames, cells };
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
