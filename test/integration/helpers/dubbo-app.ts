import { fileURLToPath } from 'node:url';
import { freePort, removeDir, startProcess, tempDir, waitFor, type Server } from './process.js';

/**
 * Starts the Dubbo-shaped test application (dubbo-app.mjs) as a child process: it registers in a real ZooKeeper at
 * interface and application level and answers the QoS HTTP commands. Resolves once it serves QoS.
 */
export interface DubboAppConfig {
  zk: string;
  app: string;
  /** The host as Dubbo writes it in its URLs (IPv6 without brackets: 0:0:0:0:0:0:0:1). */
  host: string;
  port: number;
  services: { iface: string; group?: string; version?: string }[];
  registerMode?: 'all' | 'interface' | 'instance';
  /**
   * Re-export like a Dubbo 2.7+/3 provider (the URL its overrides and rules give it, at interface level and in its
   * MetadataInfo): true every 100 ms, 'on-sync' only when the test calls sync().
   */
  reexport?: boolean | 'on-sync';
  /** Where its MetadataInfo lives: 'local' (Dubbo's default: in the process) or 'remote' (<root>/metadata/<app>/<revision>). */
  metadataType?: 'local' | 'remote';
  /** Extra instance metadata (Curator payload.metadata). */
  instanceMetadata?: Record<string, string>;
  qosHost?: string;
  root?: string;
  servicesRoot?: string;
  params?: Record<string, string>;
}

export interface DubboApp {
  qosPort: number;
  server: Server;
  /** The provider applies its rules now (one re-export round; resolves when it re-registered what changed). */
  sync(): Promise<void>;
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL('./dubbo-app.mjs', import.meta.url));

export async function startDubboApp(cfg: DubboAppConfig): Promise<DubboApp> {
  const dir = tempDir('dubbo-app');
  const qosPort = await freePort();
  const server = startProcess(process.execPath, [SCRIPT, JSON.stringify({ ...cfg, qosPort })], { dir, name: 'dubbo-app', cwd: process.cwd() });
  await waitFor(() => /ready qos/.test(server.log()), `dubbo test app ${cfg.app} on ${cfg.host}:${cfg.port}`, { server, timeoutMs: 20_000 });
  return {
    qosPort,
    server,
    async sync() {
      const res = await fetch(`http://127.0.0.1:${qosPort}/sync`);
      if (res.status !== 200) throw new Error(`dubbo test app ${cfg.app} on ${cfg.host}:${cfg.port}: sync answered ${res.status}`);
      await res.text();
    },
    async stop() {
      await server.stop('SIGTERM', 3000);
      removeDir(dir);
    },
  };
}
