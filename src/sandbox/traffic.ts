import { parseServedBy } from '../gates/served-by.js';
import type { RequestRecord } from './loadgen.js';

/**
 * What the train sandbox's traffic shows (the train demo's summary): which groups served each request, read from
 * its served-by header, split at two moments of the release — the end of the canary wave and the switchover.
 */
export interface Traffic {
  public: RequestRecord[];
  gray: RequestRecord[];
  /** When the router's public traffic was switched, to which group. */
  switches: { at: number; group: string }[];
}

/** Requests counted by the group that served the whole chain: a group, `mixed`, or `none` (failed, no header). */
export type ByGroup = Record<string, number>;

export interface GrayAfter {
  /** Gray-entry requests sent after the moment. */
  requests: number;
  /** … served by the release group in every app. */
  greenOnly: number;
  /** The first one that was not, with what served it (or its status). */
  firstOther?: string;
}

export interface TrainTraffic {
  publicRequests: number;
  grayRequests: number;
  failedRequests: number;
  /** Gray-entry requests sent after the canary wave ended (undefined: it never ended). */
  grayAfterCanary?: GrayAfter;
  /** When public traffic was switched to the release group (ms since the epoch), if it was. */
  switchedAt?: number;
  publicBeforeSwitchover: ByGroup;
  publicAfterSwitchover: ByGroup;
}

const ok = (r: RequestRecord) => r.status === 200;

/** The one group every listed app's instance was in, `mixed`, or `none` (failed request, no or bad header). */
export function chainGroup(r: RequestRecord, apps: string[]): string {
  if (!ok(r)) return 'none';
  const served = parseServedBy(r.servedBy ?? '');
  if (!served || apps.some((a) => !served.some((s) => s.app === a))) return 'none';
  const groups = new Set(served.filter((s) => apps.includes(s.app)).map((s) => s.group));
  return groups.size === 1 ? [...groups][0]! : 'mixed';
}

function count(records: RequestRecord[], apps: string[]): ByGroup {
  const out: ByGroup = {};
  for (const r of records) {
    const g = chainGroup(r, apps);
    out[g] = (out[g] ?? 0) + 1;
  }
  return out;
}

export function trainTraffic(t: Traffic, o: { group: string; apps: string[]; canaryDoneAt?: number }): TrainTraffic {
  const switchedAt = t.switches.find((s) => s.group === o.group)?.at;
  const result: TrainTraffic = {
    publicRequests: t.public.length,
    grayRequests: t.gray.length,
    failedRequests: [...t.public, ...t.gray].filter((r) => !ok(r)).length,
    switchedAt,
    publicBeforeSwitchover: count(switchedAt === undefined ? t.public : t.public.filter((r) => r.t < switchedAt), o.apps),
    publicAfterSwitchover: count(switchedAt === undefined ? [] : t.public.filter((r) => r.t >= switchedAt), o.apps),
  };
  if (o.canaryDoneAt !== undefined) {
    const after = t.gray.filter((r) => r.t >= o.canaryDoneAt!);
    const other = after.find((r) => chainGroup(r, o.apps) !== o.group);
    result.grayAfterCanary = {
      requests: after.length,
      greenOnly: after.filter((r) => chainGroup(r, o.apps) === o.group).length,
      ...(other ? { firstOther: other.status === 200 ? (other.servedBy ?? 'no served-by header') : `HTTP ${other.status ?? 'no answer'}` } : {}),
    };
  }
  return result;
}
