/** Exit codes, pinned by the CLI contract. */
export const EXIT = { ok: 0, halted: 1, usage: 2, locked: 3, paused: 4, timeout: 5 } as const;

/** An error the user can act on: what failed, where, and what to do next. Rendered once, at the CLI edge. */
export class GraywaveError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.halted,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'GraywaveError';
  }
}

/** One problem in a playbook, with its position. */
export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  message: string;
}

export class ConfigError extends GraywaveError {
  constructor(readonly issues: ConfigIssue[]) {
    super(issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.message}`).join('\n'), EXIT.usage);
    this.name = 'ConfigError';
  }
}

export class LockHeldError extends GraywaveError {
  constructor(message: string, hint: string) {
    super(message, EXIT.locked, hint);
    this.name = 'LockHeldError';
  }
}

/** A provider or transport operation failed; `retryable` tells the engine whether another attempt can help. */
export class ProviderError extends Error {
  /** `notYet`: the system is not there yet (an instance that has not re-registered after a deploy): a restore waits for it. */
  constructor(
    message: string,
    readonly retryable = true,
    readonly notYet = false,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

export class TransportError extends Error {
  constructor(
    message: string,
    readonly host?: string,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}
