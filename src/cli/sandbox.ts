import { Command, InvalidArgumentError } from 'commander';
import { GraywaveError } from '../errors.js';
import { deploy, down, fault, FAULT_KINDS, probe, sandboxDir, status, switchGroup, undeploy, up, type SandboxStatus } from '../sandbox/supervisor.js';

/**
 * `graywave sandbox …`: a real fleet of host processes on loopback to rehearse playbooks on.
 * The subcommands a playbook runs (deploy, undeploy, switch, probe) find the sandbox on their own
 * (see sandboxDir), so steps need no --dir.
 */

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number`);
    return n;
  };
}

const out = (line: string): void => void process.stdout.write(line + '\n');

function table(s: SandboxStatus): string {
  const rows = [['HOST', 'ADDRESS', 'PID', 'VERSION', 'GROUP', 'WEIGHT', 'ENABLED', 'IN FLIGHT', 'CONSUMER', 'SCHEDULER', 'REQUESTS']];
  for (const h of s.hosts) {
    rows.push([
      h.name,
      `${h.address}:${h.port}`,
      h.running ? String(h.pid) : 'down',
      h.version,
      h.registeredGroup ?? h.group,
      h.weight === undefined ? '-' : String(h.weight),
      h.enabled === undefined ? '-' : String(h.enabled),
      h.inFlight === undefined ? '-' : String(h.inFlight),
      h.consumer ?? '-',
      h.scheduler ?? '-',
      h.requests === undefined ? '-' : String(h.requests),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function sandboxCommand(): Command {
  const cmd = new Command('sandbox').description(
    'a real fleet of host processes on loopback, with a registry, a router and steady load, to rehearse releases on',
  );

  cmd
    .command('up')
    .description('start the hub (registry + router + load generator) and N host processes')
    .option('--hosts <n>', 'number of hosts', int('--hosts'), 8)
    .option('--dir <dir>', 'state dir (default .graywave/sandbox)')
    .option('--net <a.b.c>', 'loopback block: hosts on NET.1…NET.n, hub on NET.100 (default 127.0.1; with --train 127.0.3)')
    .option('--port <port>', 'port of every host', int('--port'), 8080)
    .option('--registry-port <port>', 'registry port on the hub address', int('--registry-port'), 8848)
    .option('--router-port <port>', 'router port on the hub address', int('--router-port'), 8000)
    .option('--rps <n>', 'load generator rate, requests per second (0: off)', int('--rps'), 20)
    .option('--version <v>', 'version the hosts start with', '1.0.0')
    .option(
      '--train',
      'the train sandbox: a router (public entry and gray entry) in front of 4 BFE hosts calling 4 order and 4 account hosts through the registry, on 127.0.3.x (--hosts does not apply)',
    )
    .option('--gray-port <port>', "with --train: the gray entry's port on the hub address", int('--gray-port'), 8001)
    .option('--gray-rps <n>', 'with --train: gray-entry load, requests per second (default: half of --rps)', int('--gray-rps'))
    .option('--json', 'one JSON object: the sandbox (dir, addresses, hosts) instead of progress lines')
    .action(async (o) => {
      const c = await up({
        train: !!o.train,
        grayPort: o.grayPort,
        grayRps: o.grayRps,
        dir: o.dir ?? sandboxDir(),
        hosts: o.hosts,
        net: o.net,
        hostPort: o.port,
        registryPort: o.registryPort,
        routerPort: o.routerPort,
        rps: o.rps,
        version: o.version,
        log: o.json ? () => undefined : out,
      });
      if (o.json) return out(JSON.stringify(c));
      out(`sandbox up in ${c.dir}: try  graywave sandbox status`);
    });

  cmd
    .command('down')
    .description('stop every sandbox process (gracefully) and remove the state dir')
    .option('--dir <dir>', 'state dir')
    .option('--json', 'one JSON object: {"dir","wasUp"}')
    .action(async (o) => {
      const wasUp = await down({ dir: o.dir, log: o.json ? () => undefined : out });
      if (o.json) return out(JSON.stringify({ dir: sandboxDir(o.dir), wasUp }));
      if (!wasUp) out(`no sandbox in ${sandboxDir(o.dir)}`);
    });

  cmd
    .command('status')
    .description('hosts with their version, group, registry weight, traffic in flight, consumer and scheduler state')
    .option('--dir <dir>', 'state dir')
    .option('--json', 'one JSON object')
    .action(async (o) => {
      const s = await status({ dir: o.dir });
      if (o.json) return out(JSON.stringify(s));
      if (s.hosts.length === 0) return out(`no sandbox in ${s.dir}`);
      out(`sandbox ${s.dir}: ${s.up ? 'up' : 'HUB DOWN'}; router ${s.router} (default group ${s.defaultGroup ?? '?'}), registry ${s.registry}`);
      if (s.load) out(`load: ${s.load.rps}/s, ${s.load.sent} sent, ${s.load.ok} ok, ${s.load.failed} failed since ${s.load.since}`);
      if (s.grayLoad) out(`gray entry ${s.grayEntry}: ${s.grayLoad.rps}/s, ${s.grayLoad.sent} sent, ${s.grayLoad.ok} ok, ${s.grayLoad.failed} failed`);
      out(table(s));
    });

  cmd
    .command('deploy')
    .description('stop HOST gracefully, swap its version, start it in GROUP, wait until healthy')
    .argument('<host>', 'host name (h01…)')
    .argument('<version>', 'version to run')
    .option('--group <group>', 'group to start in (default: its current group)')
    .option('--dir <dir>', 'state dir')
    .option('--json', 'one JSON object: the host as it runs now')
    .action(async (host: string, version: string, o) => {
      const h = await deploy({ dir: o.dir, host, version, group: o.group, log: o.json ? () => undefined : out });
      if (o.json) out(JSON.stringify(h));
    });

  cmd
    .command('undeploy')
    .description('go back to the version and group the last deploy of HOST replaced (rollback of deploy)')
    .argument('<host>', 'host name')
    .option('--dir <dir>', 'state dir')
    .option('--json', 'one JSON object: the host as it runs now')
    .action(async (host: string, o) => {
      const h = await undeploy({ dir: o.dir, host, log: o.json ? () => undefined : out });
      if (o.json) out(JSON.stringify(h));
    });

  cmd
    .command('fault')
    .description(
      `inject a fault: deploy[:N] (next N deploys fail), health[:N] (next N deploys come up unhealthy), stuck / unstuck (a request that never finishes), errors[:RATE] (HTTP 500 at RATE once GREEN), clear`,
    )
    .argument('<host>', 'host name')
    .argument('<kind>', `one of ${FAULT_KINDS.join(', ')}, with :ARG where it takes one`)
    .option('--dir <dir>', 'state dir')
    .option('--json', 'one JSON object: {"host","fault","message"}')
    .action(async (host: string, kind: string, o) => {
      const message = await fault({ dir: o.dir, host, spec: kind });
      out(o.json ? JSON.stringify({ host, fault: kind, message }) : message);
    });

  cmd
    .command('switch')
    .description("point the router's public traffic (requests without the gray header/cookie) at GROUP")
    .argument('<group>', 'e.g. GREEN')
    .option('--dir <dir>', 'state dir')
    .option('--json', 'one JSON object: {"defaultGroup"}')
    .action(async (group: string, o) => {
      await switchGroup({ dir: o.dir, group });
      out(o.json ? JSON.stringify({ defaultGroup: group }) : `router: public traffic now goes to group ${group}`);
    });

  cmd
    .command('probe')
    .description('send requests through the router (with --group: through the gray entry) and fail unless all succeed')
    .option('--group <group>', 'send x-gray-group: GROUP (the gray entry)')
    .option('--count <n>', 'number of requests', int('--count'), 10)
    .option('--version <v>', 'also require every answer to come from this version')
    .option('--dir <dir>', 'state dir')
    .option('--json', 'one JSON object: {"ok","failed","versions","groups","errors"}')
    .action(async (o) => {
      const r = await probe({ dir: o.dir, group: o.group, count: o.count });
      const versions =
        Object.entries(r.versions)
          .map(([v, n]) => `${v}×${n}`)
          .join(', ') || 'none';
      if (o.json) out(JSON.stringify(r));
      else {
        out(`probe${o.group ? ` (gray entry, group ${o.group})` : ''}: ${r.ok}/${o.count} ok, versions ${versions}`);
        for (const e of r.errors.slice(0, 5)) out(`  failed: ${e}`);
      }
      const wrongVersion = o.version && Object.keys(r.versions).some((v) => v !== o.version);
      if (r.failed > 0 || wrongVersion) {
        throw new GraywaveError(
          `probe failed: ${r.failed} of ${o.count} requests failed${wrongVersion ? `, versions seen ${versions} (expected ${o.version})` : ''}`,
        );
      }
    });

  return cmd;
}
