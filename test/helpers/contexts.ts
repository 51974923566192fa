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
