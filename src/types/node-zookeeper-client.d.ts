// The subset of node-zookeeper-client (pure JS, ships no types) that src/providers/zk.ts uses.
declare module 'node-zookeeper-client' {
  import type { EventEmitter } from 'node:events';

  export interface Stat {
    version: number;
    cversion: number;
    numChildren: number;
    ephemeralOwner: Buffer;
  }

  export class Exception extends Error {
    static readonly OK: number;
    static readonly CONNECTION_LOSS: number;
    static readonly OPERATION_TIMEOUT: number;
    static readonly NO_NODE: number;
    static readonly NO_AUTH: number;
    static readonly BAD_VERSION: number;
    static readonly NODE_EXISTS: number;
    static readonly NOT_EMPTY: number;
    static readonly SESSION_EXPIRED: number;
    static readonly AUTH_FAILED: number;
    getCode(): number;
    getName(): string;
    getPath(): string | undefined;
    readonly code: number;
    readonly name: string;
  }

  export const CreateMode: {
    PERSISTENT: number;
    PERSISTENT_SEQUENTIAL: number;
    EPHEMERAL: number;
    EPHEMERAL_SEQUENTIAL: number;
  };

  export const ACL: { OPEN_ACL_UNSAFE: unknown[] };

  type Cb<T> = (error: Exception | Error | null, result: T) => void;

  export interface TransactionResult {
    type: number;
    err: number;
    path?: string;
    stat?: Stat;
  }

  export interface Transaction {
    create(path: string, data?: Buffer | null, acls?: unknown[], mode?: number): Transaction;
    setData(path: string, data: Buffer | null, version?: number): Transaction;
    check(path: string, version?: number): Transaction;
    remove(path: string, version?: number): Transaction;
    commit(callback: Cb<TransactionResult[]>): void;
  }

  export interface Client extends EventEmitter {
    connect(): void;
    close(): void;
    getState(): { name: string; code: number };
    create(path: string, data: Buffer | null, acls: unknown[], mode: number, callback: Cb<string>): void;
    remove(path: string, version: number, callback: (error: Exception | Error | null) => void): void;
    setData(path: string, data: Buffer | null, version: number, callback: Cb<Stat>): void;
    getData(path: string, callback: (error: Exception | Error | null, data: Buffer | undefined, stat: Stat) => void): void;
    exists(path: string, callback: Cb<Stat | null>): void;
    getChildren(path: string, callback: (error: Exception | Error | null, children: string[], stat: Stat) => void): void;
    transaction(): Transaction;
  }

  export function createClient(connectionString: string, options?: { sessionTimeout?: number; spinDelay?: number; retries?: number }): Client;

  const zookeeper: {
    createClient: typeof createClient;
    Exception: typeof Exception;
    CreateMode: typeof CreateMode;
    ACL: typeof ACL;
  };
  export default zookeeper;
}
