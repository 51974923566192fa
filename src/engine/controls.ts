import type { ControlRequest, JournalRecord } from '../journal/records.js';
import { sleep } from './context.js';

const now = () => new Date().toISOString();

/**
 * Operator requests from other processes (`graywave abort`, `graywave promote`) as explicit state. The engine reads
 * it at step boundaries (`stop` before each step, `promotion` before and after each gate); the only thing a request
 * does on its own is cut short the verify gate that is running when a promotion arrives (`gateSignal`).
 */
export class Controls {
  /** Set by `graywave abort`: no new step starts; the release halts at the next step boundary. */
  stop?: string;
  /** Set by `graywave promote --full`: every remaining gate, approval and pause is passed. */
  promoteFull: boolean;
  /** Set by `graywave promote --skip-gate`: the gate now running (or the next one) is passed. */
  private promoteGate?: string;
  private gate?: AbortController;

  constructor(
    private readonly records: readonly JournalRecord[],
    private readonly record: (r: JournalRecord) => Promise<void>,
  ) {
    this.promoteFull = records.some((r) => r.type === 'operator' && r.action === 'promote' && r.detail === 'full');
  }

  /** The promotion that passes the current gate, if any (`--skip-gate` is used up by it, `--full` is not). */
  promotion(): string | undefined {
    return this.promoteGate ?? (this.promoteFull ? 'promoted (--full)' : undefined);
  }

  /** Marks the `--skip-gate` promotion as used by the gate that just passed through it. */
  usePromotion(): void {
    this.promoteGate = undefined;
  }

  /** A signal for the verify gate about to run: aborted when a promotion arrives while it runs. */
  gateSignal(): AbortSignal {
    this.gate = new AbortController();
    return this.gate.signal;
  }

  /** Records a request once (who, when, why) and turns it into state. */
  async apply(c: ControlRequest): Promise<void> {
    const who = `${c.by.user}@${c.by.host}`;
    const detail = c.action === 'promote' ? (c.mode === 'full' ? 'full' : 'gate') : undefined;
    await this.record({ type: 'operator', t: now(), action: c.action, by: c.by, reason: c.reason, detail, id: c.id });
    const why = `${c.reason ? `: ${c.reason}` : ''}`;
    if (c.action === 'abort') {
      this.stop = `aborted by ${who}${why}`;
    } else if (c.mode === 'full') {
      this.promoteFull = true;
      this.gate?.abort(new Error(`promoted by ${who}`));
    } else {
      this.promoteGate = `promoted by ${who}${why}`;
      this.gate?.abort(new Error(this.promoteGate));
    }
  }

  /**
   * Polls `read` every second while the release runs and applies each new request; returns the function that stops
   * polling. The control channel is advisory: a failed read never disturbs the release.
   */
  watch(read: (() => Promise<ControlRequest[]>) | undefined): () => Promise<void> {
    if (!read) return async () => undefined;
    const seen = new Set(this.records.flatMap((r) => (r.type === 'operator' && r.id ? [r.id] : [])));
    let stopped = false;
    const tick = async () => {
      const requests = await read().catch(() => [] as ControlRequest[]);
      for (const c of requests) {
        if (seen.has(c.id) || stopped) continue;
        seen.add(c.id);
        await this.apply(c);
      }
    };
    const wake = new AbortController();
    const loop = (async () => {
      while (!stopped) {
        await tick();
        await sleep(1000, wake.signal).catch(() => undefined);
      }
    })();
    return async () => {
      stopped = true;
      wake.abort(); // the release is over: do not sit out the rest of a poll interval
      await loop;
    };
  }
}
