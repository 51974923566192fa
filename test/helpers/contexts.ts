import { LocalTransport } from '../../src/transport/local.js';
import type { Host } from '../../src/playbook/types.js';
import type { ProviderContext, ProviderEnv } from '../../src/providers/types.js';
import type { Transport } from '../../src/transport/types.js';
import { Secrets } from '../../src/util/secrets.js';
import { render } from '../../src/util/template.js';

/**
 * Hand-built contexts for testing providers directly (without the engine).
 * Add to this file carefully: several provider tests share it.
 */

export function makeHost(name = 'app-01', address = '127.0.0.1', extra: Partial<Host> = {}): Host {
  return { name, address, vars: {}, labels: {}, ...extra };
}

export function makeEnv(opts: { dir?: string; env?: NodeJS.ProcessEnv; transport?: Transport } = {}): ProviderEnv {
  const dir = opts.dir ?? process.cwd();
  return {
    dir,
    secrets: new Secrets(dir, opts.env ?? process.env),
    transport: opts.transport ?? new LocalTransport(dir),
  };
}

export interface TestContext extends ProviderContext {
  /** Every line the provider logged. */
  lines: string[];
}

export function makeContext(opts: { host?: Host; transport?: Transport; previous?: unknown; signal?: AbortSignal; extra?: object } = {}): TestContext {
  const host = opts.host ?? makeHost();
  const lines: string[] = [];
  return {
    host,
    render: (t: string) => render(t, { release: 'r1', version: '1.0.0', group: 'GREEN', host }),
    transport: opts.transport ?? new LocalTransport(),
    signal: opts.signal ?? new AbortController().signal,
    log: (line: string) => void lines.push(line),
    previous: opts.previous,
    lines,
    ...(opts.extra ?? {}),
  };
}

// ---- Step and gate contexts (actions and gates tested without the engine) ----

import type { StepContext } from '../../src/actions/types.js';
import type { GateContext } from '../../src/gates/types.js';
import type { Playbook } from '../../src/playbook/types.js';
import type { Monitor, Provider } from '../../src/providers/types.js';
import { renderShell } from '../../src/util/template.js';

export function makePlaybook(extra: Partial<Playbook> = {}): Playbook {
  return {
    file: '/tmp/playbook.yml',
    dir: '/tmp',
    name: 'r1',
    version: '1.0.0',
    group: 'GREEN',
    hosts: [makeHost()],
    transport: { type: 'local' },
    waves: { size: { count: 1 }, concurrency: 1, maxFailures: 0, pause: { kind: 'none' } },
    providers: {},
    steps: [],
    verify: [],
    watch: [],
    onFailure: 'halt',
    ...extra,
  };
}

function lookupNamed<T>(map: Record<string, T>, name: string, role: string): T {
  const found = map[name];
  if (!found) throw new Error(`no ${role} provider named ${name}`);
  return found;
}

export interface TestStepContext extends StepContext {
  lines: string[];
  /** Every ctx.progress(...) line, in order. */
  progressLines: string[];
}

export function makeStepContext(
  opts: { host?: Host; monitors?: Record<string, Monitor>; providers?: Record<string, Provider>; signal?: AbortSignal; deadline?: number; step?: string } = {},
): TestStepContext {
  const base = makeContext({ host: opts.host, signal: opts.signal });
  const host = base.host;
  const progressLines: string[] = [];
  return {
    ...base,
    playbook: makePlaybook({ hosts: [host] }),
    wave: 1,
    step: opts.step ?? 'step',
    renderShell: (t: string) => renderShell(t, { release: 'r1', version: '1.0.0', group: 'GREEN', host }),
    sh: (command, o) => base.transport.exec(host, command, { timeoutMs: o?.timeoutMs, input: o?.input, signal: base.signal }),
    provider: (name) => lookupNamed(opts.providers ?? {}, name, 'drain'),
    monitor: (name) => lookupNamed(opts.monitors ?? {}, name, 'monitor'),
    savedOf: () => undefined,
    progress: (observed) => void progressLines.push(observed),
    deadline: opts.deadline ?? Infinity,
    progressLines,
  };
}

export interface TestGateContext extends GateContext {
  lines: string[];
  progressLines: string[];
}

export function makeGateContext(opts: { host?: Host; hosts?: Host[]; monitors?: Record<string, Monitor>; signal?: AbortSignal } = {}): TestGateContext {
  const hosts = opts.hosts ?? [opts.host ?? makeHost()];
  const values = { release: 'r1', version: '1.0.0', group: 'GREEN', wave: 1, host: opts.host };
  const lines: string[] = [];
  const progressLines: string[] = [];
  const transport = new LocalTransport();
  return {
    playbook: makePlaybook({ hosts }),
    wave: 1,
    hosts,
    host: opts.host,
    render: (t) => render(t, values),
    renderShell: (t) => renderShell(t, values),
    sh: (command, o) => transport.exec(opts.host ?? hosts[0]!, command, { timeoutMs: o?.timeoutMs }),
    monitor: (name) => lookupNamed(opts.monitors ?? {}, name, 'monitor'),
    signal: opts.signal ?? new AbortController().signal,
    log: (line) => void lines.push(line),
    progress: (observed) => void progressLines.push(observed),
    lines,
    progressLines,
  };
}
