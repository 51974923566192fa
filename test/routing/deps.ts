import { join } from 'node:path';
import type { EngineDeps } from '../../src/engine/context.js';
import { Journal } from '../../src/journal/journal.js';
import type { Plan } from '../../src/plan/build.js';
import type { Host, Playbook } from '../../src/playbook/types.js';
import type { RoutingSpec } from '../../src/routing/types.js';
import { LocalTransport } from '../../src/transport/local.js';
import { Secrets } from '../../src/util/secrets.js';

/** Engine dependencies for driving the RoutingRunner directly: a real journal in `dir`, a fleet in `waves`. */
export function routingDeps(
  dir: string,
  opts: { routing: RoutingSpec[]; providers?: Playbook['providers']; waves: string[][]; hosts?: Host[]; env?: NodeJS.ProcessEnv },
): EngineDeps {
  const hosts = opts.hosts ?? opts.waves.flat().map((n, i) => ({ name: n, address: `127.0.0.${10 + i}`, vars: {}, labels: {} }));
  const playbook = {
    file: join(dir, 'p.yaml'),
    dir,
    name: 'order',
    version: '1.1',
    group: 'GREEN',
    hosts,
    transport: { type: 'local' },
    waves: { size: { percent: 0.25 }, concurrency: 4, maxFailures: 0, pause: { kind: 'none' } },
    providers: opts.providers ?? {},
    steps: [],
    verify: [],
    watch: [],
    onFailure: 'halt',
    routing: opts.routing,
  } as unknown as Playbook;
  const plan: Plan = {
    release: 'order',
    version: '1.1',
    group: 'GREEN',
    planHash: 'x',
    waves: opts.waves.map((h, i) => ({ index: i + 1, hosts: h })),
    steps: [],
  };
  return {
    playbook,
    plan,
    journal: Journal.open(join(dir, 'journal.jsonl')),
    transport: new LocalTransport(dir),
    providers: {} as EngineDeps['providers'],
    secrets: new Secrets(dir, opts.env ?? {}),
    emit: () => undefined,
    logDir: join(dir, 'logs'),
    signal: new AbortController().signal,
  };
}
