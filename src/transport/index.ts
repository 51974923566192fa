import { z } from 'zod';
import type { Secrets } from '../util/secrets.js';
import { LocalTransport } from './local.js';
import { SshTransport, sshTransportIssues, sshTransportOptions } from './ssh.js';
import type { ConfigIssue } from '../errors.js';
import type { ExecOptions, Transport, UploadOptions } from './types.js';
import type { Host } from '../playbook/types.js';

export interface TransportType {
  type: string;
  /** Options beside `type`; strict. */
  options: z.ZodType<any>;
  create(options: any, env: { dir: string; secrets: Secrets }): Transport;
  /** Problems in files the transport will read (e.g. an ssh client config), found at load time. */
  check?(options: any, dir: string, hosts: Host[]): ConfigIssue[];
}

/** Every transport graywave knows: one line per transport. */
export const transportTypes: TransportType[] = [
  { type: 'local', options: z.object({}).strict(), create: (_o, env) => new LocalTransport(env.dir) },
  { type: 'ssh', options: sshTransportOptions, create: (o, env) => new SshTransport(o, env), check: sshTransportIssues },
];

export function findTransportType(type: string): TransportType | undefined {
  return transportTypes.find((t) => t.type === type);
}

/** Hosts whose address is `local`/`localhost` run on this machine whatever the playbook's transport (mixed use). */
export function isLocalAddress(address: string): boolean {
  return address === 'local' || address === 'localhost';
}

/** Routes local hosts to the local transport and the rest to the playbook's transport. */
export class MixedTransport implements Transport {
  constructor(
    private readonly remote: Transport,
    private readonly local: Transport,
  ) {}
  private pick(host: Host): Transport {
    return isLocalAddress(host.address) ? this.local : this.remote;
  }
  exec(host: Host, command: string, opts?: ExecOptions) {
    return this.pick(host).exec(host, command, opts);
  }
  upload(host: Host, localPath: string, remotePath: string, opts?: UploadOptions) {
    return this.pick(host).upload(host, localPath, remotePath, opts);
  }
  async files(host: Host, opts?: { sudo?: boolean }) {
    return this.pick(host).files?.(host, opts);
  }
  release(host: Host) {
    return this.pick(host).release(host);
  }
  async close() {
    await Promise.all([this.remote.close(), this.local.close()]);
  }
}

export function createTransport(spec: { type: string; [k: string]: unknown }, env: { dir: string; secrets: Secrets }): Transport {
  const type = findTransportType(spec.type);
  if (!type) throw new Error(`unknown transport type ${spec.type}`);
  const { type: _t, ...rest } = spec;
  const transport = type.create(type.options.parse(rest), env);
  return spec.type === 'local' ? transport : new MixedTransport(transport, new LocalTransport(env.dir));
}
