import { setMaxListeners } from 'node:events';
import { runSimulated } from '../sandbox/sim/run.js';
import { Command, InvalidArgumentError } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import type { EngineEvent } from '../engine/events.js';
import { EXIT, GraywaveError } from '../errors.js';
import type { LoadStats } from '../sandbox/loadgen.js';
import { finishDemo, packageRoot, releaseOn, sayer, startSandbox } from './demo-sandbox.js';
import { runTrainDemo } from './demo-train.js';
import { fault, hubCall, loadConfig, status } from '../sandbox/supervisor.js';

/**
 * `graywave demo`: one command, no servers to install. Brings the sandbox up, releases the bundled
 * playbooks/demo.yaml on it under steady load, prints what happened, and brings the sandbox down.
 * A halted demo leaves the sandbox up so that `graywave resume` / `graywave rollback` can be tried on it.
 */

interface FleetShape {
  hosts: number;
  net: string;
  hostPort: number;
  registryPort: number;
}

/** The sandbox must match the playbook's addresses: read them from the playbook rather than assume them. */
function fleetOf(file: string): FleetShape {
  const doc = parse(readFileSync(file, 'utf8')) as {
    hosts?: { address?: string; vars?: { port?: number } }[];
    providers?: Record<string, { type?: string; url?: string }>;
  };
  const hosts = doc.hosts ?? [];
  const first = hosts[0]?.address ?? '';
  const m = /^(127\.\d{1,3}\.\d{1,3})\.\d{1,3}$/.exec(first);
  if (!m) throw new GraywaveError(`${file}: the demo needs hosts on loopback addresses (127.x.y.z), found ${JSON.stringify(first)}`, EXIT.usage);
  const nacos = Object.values(doc.providers ?? {}).find((p) => p?.type === 'nacos');
  const registryPort = nacos?.url ? Number(new URL(nacos.url).port || 8848) : 8848;
  return { hosts: hosts.length, net: m[1]!, hostPort: Number(hosts[0]?.vars?.port ?? 8080), registryPort };
}

/** `KIND:HOST[:ARG]`, e.g. deploy:h05, errors:h03:0.5, stuck:h02. */
function parseFault(v: string, acc: { host: string; spec: string }[] = []) {
  const [kind, host, ...rest] = v.split(':');
  if (!kind || !host) throw new InvalidArgumentError('use KIND:HOST[:ARG], e.g. deploy:h05 or errors:h03:0.5');
  return [...acc, { host, spec: rest.length ? `${kind}:${rest.join(':')}` : kind }];
}

export interface DemoSummary {
  event: 'demo.summary';
  hosts: number;
  waves: number;
  requests: number;
  failedRequests: number;
  green: number;
  version: string;
  ms: number;
  exitCode: number;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('rehearse a gray release on a sandbox fleet of 8 local host processes under steady load, in one command')
    .option('--fault <KIND:HOST[:ARG]>', 'inject a fault (repeatable): deploy:h05, health:h05, stuck:h03, errors:h04:0.5', parseFault)
    .option('--rps <n>', 'load: requests per second through the router (default 50; --train: 20 public + half as many through the gray entry)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('--rps must be a whole number >= 1');
      return n;
    })
    .option('--json', 'JSON lines: the engine events, then {"event":"demo.summary",…}')
    .option('--plain', 'plain progress lines instead of the live view')
    .option('--keep', 'leave the sandbox up after a successful demo')
    .option('--router-port <port>', 'router port on the hub address', (v) => Number(v), 8000)
    .option(
      '--playbook <file>',
      'release another playbook on the sandbox (same shape as playbooks/demo.yaml; with --train: a train or an app playbook of playbooks/train/)',
    )
    .option('--state-dir <dir>', 'where release state lives (default: .graywave next to the playbook)')
    .option('--simulated', 'in-process fleet: hosts are objects, not processes (for 1,000s of hosts); prints the orchestration overhead')
    .option(
      '--hosts <n>',
      'with --simulated: how many hosts',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('--hosts must be a whole number >= 1');
        return n;
      },
      1000,
    )
    .option(
      '--train',
      'the release train: a router (public and gray entry) in front of a BFE tier calling two APP services, released together by playbooks/train/train.yaml',
    )
    .action(async (o) => {
      if (o.simulated) return runSimulatedDemo(o);
      if (o.train) return runTrainDemo(o);
      const json = !!o.json;
      const say = sayer(json);
      const file = resolve(o.playbook ?? join(packageRoot(), 'playbooks', 'demo.yaml'));
      if (!existsSync(file)) throw new GraywaveError(`playbook ${file} not found`, EXIT.usage);
      const shape = fleetOf(file);
      say(`starting the sandbox: ${shape.hosts} hosts on ${shape.net}.1…${shape.net}.${shape.hosts}, registry and router on ${shape.net}.100`);
      const { dir, c, stop } = await startSandbox(file, say, {
        hosts: shape.hosts,
        net: shape.net,
        hostPort: shape.hostPort,
        registryPort: shape.registryPort,
        routerPort: o.routerPort,
        rps: o.rps ?? 50,
      });
      for (const f of (o.fault ?? []) as { host: string; spec: string }[]) say(`fault: ${await fault({ dir, host: f.host, spec: f.spec })}`);
      await hubCall(c, 'loadgen/reset', 'POST');

      let waves = 0;
      const onEvent = (e: EngineEvent) => {
        if (e.event === 'run.start' || e.event === 'run.done') waves = e.waves;
      };
      const started = Date.now();
      const code = await releaseOn(file, o, stop, onEvent);

      // Let requests already on their way finish, so the counts are final.
      const load = await hubCall<LoadStats>(loadConfig(dir), 'loadgen/settle', 'POST');
      const s = await status({ dir });
      const pb = parse(readFileSync(file, 'utf8')) as { version?: unknown; group?: string };
      const greenGroup = pb.group ?? 'GREEN';
      const green = s.hosts.filter((h) => h.running && h.group === greenGroup && h.registeredGroup === greenGroup).length;
      const versions = [...new Set(s.hosts.map((h) => h.version))];
      const summary: DemoSummary = {
        event: 'demo.summary',
        hosts: s.hosts.length,
        waves,
        requests: load.ok + load.failed,
        failedRequests: load.failed,
        green,
        version: versions.length === 1 ? versions[0]! : versions.join(','),
        ms: Date.now() - started,
        exitCode: code,
      };

      if (json) {
        process.stdout.write(JSON.stringify(summary) + '\n');
      } else {
        say('');
        const byVersion = versions.map((v) => `${v} on ${s.hosts.filter((h) => h.version === v).length}`).join(', ');
        say(
          `demo ${code === 0 ? 'done' : code === 4 ? 'paused' : 'halted'} in ${(summary.ms / 1000).toFixed(1)}s: ${summary.waves} waves, ${summary.green} of ${summary.hosts} hosts GREEN; versions: ${byVersion}`,
        );
        say(`requests served during the release: ${summary.requests}, failed: ${summary.failedRequests}`);
        for (const f of load.failures.slice(-5)) say(`  failed request at ${f.at}: ${f.status ? `HTTP ${f.status} ` : ''}${f.error}`);
      }
      await finishDemo({ file, dir, code, stop, o, say });
    });
}

/** `graywave demo --simulated --hosts N`: the real engine over an in-process fleet; prints what orchestration cost. */
async function runSimulatedDemo(o: { hosts: number; json?: boolean; plain?: boolean; stateDir?: string }): Promise<void> {
  const signal = new AbortController().signal;
  setMaxListeners(0, signal);
  const r = await runSimulated({
    hosts: o.hosts,
    output: o.json ? 'json' : o.hosts > 50 ? 'silent' : o.plain ? 'plain' : 'auto',
    stateDir: o.stateDir,
    signal,
  });
  const summary = {
    event: 'demo.summary',
    simulated: true,
    hosts: r.hosts,
    waves: r.waves,
    green: r.fleet.green,
    version: '2.0.0',
    wallMs: Math.round(r.wallMs),
    configuredWaitMs: Math.round(r.configuredWaitMs),
    overheadMs: Math.round(r.overheadMs),
    journalBytes: r.journalBytes,
    peakRssMb: Math.round(r.peakRssMb),
  };
  if (o.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else {
    process.stdout.write(
      `simulated release of ${r.hosts} hosts in ${r.waves} waves: ${r.fleet.green} GREEN, ${r.fleet.deployed} deployed\n` +
        `wall ${(r.wallMs / 1000).toFixed(1)}s = configured step waits ${(r.configuredWaitMs / 1000).toFixed(1)}s + orchestration overhead ${(r.overheadMs / 1000).toFixed(1)}s` +
        ` (${r.overheadPerStepUs.toFixed(0)} µs per host-step); journal ${(r.journalBytes / 1e6).toFixed(1)} MB; peak RSS ${r.peakRssMb.toFixed(0)} MB\n`,
    );
  }
  if (r.exitCode !== 0) throw new GraywaveError(`the simulated release ended with exit ${r.exitCode}`, r.exitCode);
}
