/**
 * The simulated fleet: hosts are plain objects in this process, not processes. Used to run the real engine over
 * thousands of hosts (benchmarks, `graywave demo --simulated`) with timers standing in for real work.
 */

export interface SimHost {
  name: string;
  version: string;
  group: string;
  /** Routing weight (0 = drained). */
  weight: number;
  /** Weight before the drain, put back by restore. */
  savedWeight?: number;
  /** Requests in flight; decays to 0 after a drain (one poll later). */
  inflight: number;
  /** Consumes from the message queue. */
  consumer: boolean;
  /** Takes scheduled jobs. */
  scheduled: boolean;
  running: boolean;
  /** Polls of the in-flight counter since the last drain. */
  polls: number;
  /** Commands this host has run. */
  commands: number;
}

export interface SimWorldOptions {
  version?: string;
  group?: string;
  weight?: number;
  inflight?: number;
}

export class SimWorld {
  readonly hosts = new Map<string, SimHost>();

  constructor(
    names: Iterable<string> = [],
    private readonly defaults: SimWorldOptions = {},
  ) {
    for (const n of names) this.add(n);
  }

  add(name: string): SimHost {
    const h: SimHost = {
      name,
      version: this.defaults.version ?? '1.0.0',
      group: this.defaults.group ?? 'BLUE',
      weight: this.defaults.weight ?? 100,
      inflight: this.defaults.inflight ?? 5,
      consumer: true,
      scheduled: true,
      running: true,
      polls: 0,
      commands: 0,
    };
    this.hosts.set(name, h);
    return h;
  }

  /** The host, created on first use (a playbook may name hosts the world was not seeded with). */
  host(name: string): SimHost {
    return this.hosts.get(name) ?? this.add(name);
  }

  drain(h: SimHost): void {
    if (h.weight > 0) h.savedWeight = h.weight;
    h.weight = 0;
    h.consumer = false;
    h.scheduled = false;
    h.polls = 0;
  }

  /** One read of the in-flight counter: non-zero on the first poll after a drain, 0 from the second on. */
  poll(h: SimHost): number {
    h.polls++;
    if (h.weight === 0 && h.polls >= 2) h.inflight = 0;
    return h.inflight;
  }

  restore(h: SimHost): void {
    h.weight = h.savedWeight ?? 100;
    h.consumer = true;
    h.scheduled = true;
    h.inflight = h.running ? 5 : 0;
  }

  summary(): { hosts: number; byVersion: Record<string, number>; byGroup: Record<string, number>; drained: number; stopped: number } {
    const byVersion: Record<string, number> = {};
    const byGroup: Record<string, number> = {};
    let drained = 0;
    let stopped = 0;
    for (const h of this.hosts.values()) {
      byVersion[h.version] = (byVersion[h.version] ?? 0) + 1;
      byGroup[h.group] = (byGroup[h.group] ?? 0) + 1;
      if (h.weight === 0 || !h.consumer || !h.scheduled) drained++;
      if (!h.running) stopped++;
    }
    return { hosts: this.hosts.size, byVersion, byGroup, drained, stopped };
  }
}
