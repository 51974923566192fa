import type { Host } from '../../playbook/types.js';
import type { ExecOptions, ExecResult, Transport } from '../../transport/types.js';
import type { SimHost, SimWorld } from './world.js';

/**
 * A transport for the simulated fleet: no processes, no sockets. Each command is a line of a tiny language that
 * changes the host object in the SimWorld after a timer, the way the real command would change the real host:
 *
 *   sim drain HOST              weight 0, consumer and scheduler off
 *   sim wait-drained HOST       poll the in-flight counter every --interval ms until 0 (0 on the 2nd poll)
 *   sim stop HOST               app stopped
 *   sim deploy HOST VERSION     new version in place
 *   sim start HOST [GROUP]      app started (in GROUP: the release's GREEN)
 *   sim relabel HOST GROUP      group changed
 *   sim restore HOST            weight, consumer and scheduler back
 *   sim fail HOST               exits 1 (fault injection)
 *   sim sleep                   only the delay
 *
 * Every command takes `--ms N` (its own duration; default: the transport's `stepMs`). HOST defaults to the host the
 * engine runs the command for. Unknown commands exit 127, as a shell would.
 */
export interface SimTransportOptions {
  /** Default duration of a command (ms). */
  stepMs?: number;
  /** Duration of an upload (ms). */
  uploadMs?: number;
  /** Hosts whose `deploy` fails (exit 1). */
  failDeploy?: Set<string>;
}

export interface SimStats {
  commands: number;
  uploads: number;
  inFlight: number;
  maxInFlight: number;
}

function wait(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Splits a rendered command into words, dropping the shell quotes renderShell may have added. */
export function words(command: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of command.matchAll(re)) out.push(m[1] ?? m[2]?.replace(/\\(.)/g, '$1') ?? m[3]!);
  return out;
}

const ok = (stdout = ''): ExecResult => ({ code: 0, timedOut: false, stdout, stderr: '' });
const fail = (code: number | null, stderr: string, extra: Partial<ExecResult> = {}): ExecResult => ({ code, timedOut: false, stdout: '', stderr, ...extra });

export class SimTransport implements Transport {
  readonly stats: SimStats = { commands: 0, uploads: 0, inFlight: 0, maxInFlight: 0 };
  private readonly stepMs: number;
  private readonly uploadMs: number;

  constructor(
    readonly world: SimWorld,
    private readonly opts: SimTransportOptions = {},
  ) {
    this.stepMs = opts.stepMs ?? 20;
    this.uploadMs = opts.uploadMs ?? this.stepMs;
  }

  async exec(host: Host, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.stats.commands++;
    this.stats.inFlight++;
    if (this.stats.inFlight > this.stats.maxInFlight) this.stats.maxInFlight = this.stats.inFlight;
    try {
      return await this.interpret(host, command, opts);
    } finally {
      this.stats.inFlight--;
    }
  }

  private async interpret(host: Host, command: string, opts: ExecOptions): Promise<ExecResult> {
    const w = words(command);
    if (w[0] !== 'sim' || !w[1]) return fail(127, `sim: not a simulated command: ${command}\n`);
    const flags: Record<string, string> = {};
    const args: string[] = [];
    for (let i = 2; i < w.length; i++) {
      const a = w[i]!;
      if (a.startsWith('--') && i + 1 < w.length) flags[a.slice(2)] = w[++i]!;
      else args.push(a);
    }
    const ms = flags.ms !== undefined ? Number(flags.ms) : this.stepMs;
    if (!Number.isFinite(ms) || ms < 0) return fail(2, `sim: bad --ms ${flags.ms}\n`);
    const h: SimHost = this.world.host(args[0] ?? host.name);
    h.commands++;
    const signal = timeoutSignal(opts);
    const sleep = async (d: number): Promise<boolean> => (d > 0 ? wait(d, signal.signal) : !signal.signal.aborted);
    const killed = (): ExecResult => fail(null, 'sim: killed\n', { signal: 'SIGKILL', timedOut: signal.timedOut() });
    try {
      switch (w[1]) {
        case 'drain':
          if (!(await sleep(ms))) return killed();
          this.world.drain(h);
          return ok(`drained ${h.name}\n`);
        case 'wait-drained': {
          const interval = flags.interval !== undefined ? Number(flags.interval) : ms;
          const maxPolls = flags['max-polls'] !== undefined ? Number(flags['max-polls']) : 100;
          for (let p = 1; p <= maxPolls; p++) {
            const v = this.world.poll(h);
            opts.onOutput?.(`poll ${p}: ${v} in flight\n`, 'stdout');
            if (v === 0) return ok(`drained after ${p} polls\n`);
            if (!(await sleep(interval))) return killed();
          }
          return fail(1, `still ${h.inflight} in flight after ${maxPolls} polls\n`);
        }
        case 'stop':
          if (!(await sleep(ms))) return killed();
          h.running = false;
          h.inflight = 0;
          return ok();
        case 'deploy': {
          if (!args[1]) return fail(2, 'sim deploy: HOST VERSION\n');
          if (!(await sleep(ms))) return killed();
          if (this.opts.failDeploy?.has(h.name)) return fail(1, `sim deploy: injected failure on ${h.name}\n`);
          h.version = args[1];
          return ok(`${h.name} now at ${h.version}\n`);
        }
        case 'start':
          if (!(await sleep(ms))) return killed();
          h.running = true;
          if (args[1]) h.group = args[1];
          return ok();
        case 'relabel':
          if (!args[1]) return fail(2, 'sim relabel: HOST GROUP\n');
          if (!(await sleep(ms))) return killed();
          h.group = args[1];
          return ok();
        case 'restore':
          if (!(await sleep(ms))) return killed();
          this.world.restore(h);
          return ok();
        case 'fail':
          if (!(await sleep(ms))) return killed();
          return fail(1, `sim fail: ${h.name}\n`);
        case 'sleep':
          if (!(await sleep(ms))) return killed();
          return ok();
        default:
          return fail(127, `sim: unknown command ${w[1]}\n`);
      }
    } finally {
      signal.dispose();
    }
  }

  async upload(_host: Host, _localPath: string, _remotePath: string, opts?: { signal?: AbortSignal }): Promise<void> {
    this.stats.uploads++;
    if (!(await wait(this.uploadMs, opts?.signal))) throw new Error('upload aborted');
  }

  async release(): Promise<void> {}
  async close(): Promise<void> {}
}

/** The caller's abort signal combined with its timeout, without a timer when there is no timeout. */
function timeoutSignal(opts: ExecOptions): { signal: AbortSignal; timedOut(): boolean; dispose(): void } {
  if (!opts.timeoutMs) {
    const signal = opts.signal ?? new AbortController().signal;
    return { signal, timedOut: () => false, dispose: () => undefined };
  }
  const ctl = new AbortController();
  let timedOut = false;
  const t = setTimeout(() => ((timedOut = true), ctl.abort()), opts.timeoutMs);
  const onAbort = () => ctl.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) ctl.abort();
  return {
    signal: ctl.signal,
    timedOut: () => timedOut,
    dispose: () => {
      clearTimeout(t);
      opts.signal?.removeEventListener('abort', onAbort);
    },
  };
}
