import type { Playbook } from '../playbook/types.js';
import { Secrets } from '../util/secrets.js';
import { FileBackend, type StateBackend } from './backend.js';
import { EtcdBackend, etcdStateOptions } from './etcd-backend.js';
import { ZookeeperBackend, zookeeperStateOptions } from './zookeeper-backend.js';

/**
 * The state backend a playbook asks for (`state:`; default: files next to the playbook). One line per backend.
 * `dir` is the local release directory (logs always stay local).
 */
export function createBackend(pb: Playbook, dir: string): StateBackend {
  const spec = pb.state ?? { type: 'file' };
  switch (spec.type) {
    case 'file':
      return new FileBackend(dir);
    case 'etcd':
      return new EtcdBackend(etcdStateOptions.parse(options(spec)), pb.name, new Secrets(pb.dir));
    case 'zookeeper':
      return new ZookeeperBackend(zookeeperStateOptions.parse(options(spec)), pb.name);
    default:
      throw new Error(`unknown state backend ${spec.type}`);
  }
}

/** The options of `state:` without its type (checked with positions by the playbook loader; parsed here). */
function options(spec: { type: string; [k: string]: unknown }): Record<string, unknown> {
  const { type: _type, ...rest } = spec;
  return rest;
}
