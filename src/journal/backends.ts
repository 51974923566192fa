import type { Playbook } from '../playbook/types.js';
import { fileState, type StateBackend, type StateBackendType } from './backend.js';
import { etcdState } from './etcd-backend.js';
import { zookeeperState } from './zookeeper-backend.js';

/** Every state backend graywave knows (`state: {type: …}`): one line per backend. */
export const stateBackendTypes: StateBackendType[] = [fileState, etcdState, zookeeperState];

export function findStateBackendType(type: string): StateBackendType | undefined {
  return stateBackendTypes.find((b) => b.type === type);
}

/**
 * The state backend a playbook asks for (`state:`; default: files next to the playbook). `dir` is the local release
 * directory (logs always stay local). The loader has checked the options with their positions; they are parsed here.
 */
export function createBackend(pb: Playbook, dir: string): StateBackend {
  const { type, ...options } = pb.state ?? { type: 'file' };
  const kind = findStateBackendType(type);
  if (!kind) throw new Error(`unknown state backend ${type}`);
  return kind.create(kind.options.parse(options), { release: pb.name, dir, playbookDir: pb.dir });
}
