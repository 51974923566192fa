import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, portOpen, removeDir, requireBinary, startProcess, tempDir, waitFor, type Server } from './process.js';

/** The real scripts; the /usr/sbin wrappers would su to the rabbitmq user and log elsewhere. */
export const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';

export function hasRabbitmq(): boolean {
  return requireBinary(join(RABBITMQ_BIN, 'rabbitmq-server'), 'apt-get install -y --no-install-recommends rabbitmq-server');
}

export interface RabbitServer {
  /** Management API base URL. */
  api: string;
  amqpPort: number;
  username: string;
  password: string;
  server: Server;
  /** Runs `rabbitmqctl <args>` against this node (same HOME/cookie, node name and epmd port). */
  ctl(args: string[]): { code: number | null; stdout: string; stderr: string };
  stop(): Promise<void>;
}

/**
 * One throwaway RabbitMQ node with the management plugin, on loopback free ports, with its own epmd.
 * Statistics are collected every `statsMs` so that consumer lists settle fast. Start it once per test file (~4 s).
 */
export async function startRabbitmq(opts: { statsMs?: number } = {}): Promise<RabbitServer> {
  const dir = tempDir('rmq');
  const sample = Math.max(1, Math.ceil((opts.statsMs ?? 500) / 1000)); // retention policies count in whole seconds
  const [amqp, mgmt, dist, epmd] = [await freePort(), await freePort(), await freePort(), await freePort()];
  for (const d of ['log', 'mnesia']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  writeFileSync(join(dir, 'enabled_plugins'), '[rabbitmq_management].\n');
  writeFileSync(
    join(dir, 'advanced.config'),
    // Distribution on loopback only; the finest stats sample matches statsMs, otherwise new consumers surface only every 5 s.
    `[{kernel, [{inet_dist_use_interface, {127,0,0,1}}]},\n {rabbitmq_management_agent, [{sample_retention_policies, [{global, [{605, ${sample}}]}, {basic, [{605, ${sample}}]}, {detailed, [{605, ${sample}}]}]}]}].\n`,
  );
  writeFileSync(
    join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.default = 127.0.0.1:${amqp}`,
      'management.tcp.ip = 127.0.0.1',
      `management.tcp.port = ${mgmt}`,
      'loopback_users.guest = true',
      `collect_statistics_interval = ${opts.statsMs ?? 500}`,
      'log.console = true',
      'log.console.level = warning',
      'log.file = false',
      '',
    ].join('\n'),
  );
  const env: NodeJS.ProcessEnv = {
    HOME: dir,
    RABBITMQ_NODENAME: `gw${amqp}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(amqp),
    RABBITMQ_DIST_PORT: String(dist),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_EPMD_PORT: String(epmd),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    PATH: `${RABBITMQ_BIN}:${process.env.PATH ?? ''}`,
  };
  // Our own epmd in the foreground, started first: the node registers with it instead of spawning a daemon
  // (a daemonized epmd outlives the test, and `epmd -kill` refuses while it still lists the killed node).
  const epmdServer = startProcess('epmd', ['-port', String(epmd)], { dir, name: 'epmd', env: { ERL_EPMD_ADDRESS: '127.0.0.1' } });
  await waitFor(() => portOpen('127.0.0.1', epmd), 'epmd', { server: epmdServer, timeoutMs: 10_000 });
  const server = startProcess(join(RABBITMQ_BIN, 'rabbitmq-server'), [], { dir, name: 'rabbitmq', env });
  const api = `http://127.0.0.1:${mgmt}`;
  const authorization = 'Basic ' + Buffer.from('guest:guest').toString('base64');
  const killAll = () => {
    const pidFile = join(dir, 'rabbitmq.pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
    // The beam is the real server (the sh wrapper exits with it); KILL is instant and the node is throwaway.
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  try {
    await waitFor(async () => (await fetch(`${api}/api/overview`, { headers: { authorization } })).ok, 'rabbitmq management API', {
      server,
      timeoutMs: 60_000,
      everyMs: 200,
    });
  } catch (err) {
    killAll();
    await server.stop('SIGKILL', 1000);
    await epmdServer.stop('SIGKILL', 1000);
    throw err;
  }
  return {
    api,
    amqpPort: amqp,
    username: 'guest',
    password: 'guest',
    server,
    ctl(args) {
      const r = spawnSync(join(RABBITMQ_BIN, 'rabbitmqctl'), args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    async stop() {
      killAll();
      await server.stop('SIGTERM', 3000);
      await epmdServer.stop('SIGKILL', 1000);
      removeDir(dir);
    },
  };
}
