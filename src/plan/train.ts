import { createHash } from 'node:crypto';
import type { Host, Playbook } from '../playbook/types.js';
import { isDeployStep, type Train } from '../playbook/train.js';
import { openReleaseFile } from '../playbook/release-file.js';
import { buildPlan, waveSizes, type Plan } from './build.js';

/**
 * A release train planned up front (pure data, like a playbook's plan): every app's own plan with the train's
 * waves (wave k of the train is wave k of every app that still has hosts), and the train's plan whose wave k lists
 * every app's hosts of that wave as `app/host` (what `plan`, the live view and `status` show).
 */
export interface TrainPlan {
  /** The train-level plan: waves of `app/host` names; `switchoverAfterWave` is the first wave after which GREEN carries `at` of EVERY app. */
  plan: Plan;
  /** The playbook the train's own checks and switchover run with (hosts named `app/host`, no steps). */
  playbook: Playbook;
  /** In start order (src/playbook/train.ts `order`). */
  apps: TrainAppPlan[];
}

export interface TrainAppPlan {
  name: string;
  after: string[];
  deploy: boolean;
  /** The deploy steps `deploy: false` leaves out (`deploy:` steps and steps tagged `deploy`). */
  skippedSteps: string[];
  /** The app's playbook as the train runs it (the train's waves; no switchover, pause or approval of its own). */
  playbook: Playbook;
  plan: Plan;
}

/** `order/h-01`: a host of an app as the train names it. */
export const trainHost = (app: string, host: string): string => `${app}/${host}`;

/**
 * The app's playbook as the train runs it: the train's canary and wave size (per app: wave k takes the k-th slice
 * of every app), no pause, approval or switchover of its own (the train's apply), without deploy steps when the
 * train says `deploy: false`. Its own concurrency, maxFailures, verify and watch checks and routing rules stay.
 */
export function appInTrain(train: Train, name: string): Playbook {
  const app = train.apps.find((a) => a.name === name)!;
  const pb = app.playbook;
  return {
    ...pb,
    waves: {
      canary: train.waves.canary,
      size: train.waves.size,
      concurrency: pb.waves.concurrency,
      maxFailures: pb.waves.maxFailures,
      pause: { kind: 'none' },
      mode: 'waves',
    },
    steps: app.deploy ? pb.steps : pb.steps.filter((s) => !isDeployStep(s)),
    verify: pb.verify.filter((g) => g.gate !== 'approve'),
    switchover: undefined,
    notify: [],
  };
}

/** The train's own playbook: its checks, switchover, providers and state; hosts are every app's, named `app/host`. */
function trainPlaybook(train: Train): Playbook {
  const hosts: Host[] = train.order.flatMap((name) =>
    train.apps.find((a) => a.name === name)!.playbook.hosts.map((h) => ({ ...h, name: trainHost(name, h.name) })),
  );
  return {
    file: train.file,
    dir: train.dir,
    name: train.name,
    version: train.version,
    group: train.group,
    hosts,
    transport: { type: 'local' },
    waves: {
      canary: train.waves.canary,
      size: train.waves.size,
      concurrency: 1,
      maxFailures: train.waves.maxFailures ?? Number.MAX_SAFE_INTEGER,
      pause: train.waves.pause,
      ...(train.waves.afterCanary ? { afterCanary: train.waves.afterCanary } : {}),
    },
    providers: train.providers,
    steps: [],
    verify: train.verify,
    watch: [],
    onFailure: train.onFailure,
    ...(train.state ? { state: train.state } : {}),
    notify: [],
    ...(train.switchover ? { switchover: train.switchover } : {}),
  };
}

export function buildTrainPlan(train: Train): TrainPlan {
  const apps: TrainAppPlan[] = train.order.map((name) => {
    const a = train.apps.find((x) => x.name === name)!;
    const playbook = appInTrain(train, name);
    const skippedSteps = a.deploy ? [] : a.playbook.steps.filter(isDeployStep).map((s) => s.name);
    return { name, after: a.after, deploy: a.deploy, skippedSteps, playbook, plan: buildPlan(playbook) };
  });
  const count = Math.max(0, ...apps.map((a) => a.plan.waves.length));
  const waves = Array.from({ length: count }, (_, i) => ({
    index: i + 1,
    hosts: apps.flatMap((a) => (a.plan.waves[i]?.hosts ?? []).map((h) => trainHost(a.name, h))),
  }));
  const playbook = trainPlaybook(train);
  const material = {
    train: true,
    version: train.version,
    group: train.group,
    apps: apps.map((a) => [a.name, a.plan.planHash, a.deploy, a.after]),
    waves: train.waves.canary ?? 0,
    size: waveSizes(100, train.waves),
  };
  const plan: Plan = {
    release: train.name,
    version: train.version,
    group: train.group,
    planHash: createHash('sha256').update(JSON.stringify(material)).digest('hex').slice(0, 16),
    waves,
    steps: [],
    switchoverAfterWave: train.switchover ? switchoverWave(apps, train.switchover.atPercent) : undefined,
  };
  return { plan, playbook, apps };
}

/** The first train wave after which GREEN carries at least `at` of every app (the last wave at the latest). */
function switchoverWave(apps: TrainAppPlan[], at: number): number | undefined {
  const count = Math.max(0, ...apps.map((a) => a.plan.waves.length));
  for (let k = 1; k <= count; k++) {
    const everyApp = apps.every((a) => {
      const total = a.playbook.hosts.length;
      const done = a.plan.waves.filter((w) => w.index <= k).reduce((n, w) => n + w.hosts.length, 0);
      return total === 0 || done / total >= at - 1e-9;
    });
    if (everyApp) return k;
  }
  return count || undefined;
}

/**
 * The playbook and plan a command that only needs the release's name, state and plan works with (abort, promote,
 * unlock, status --wait): the playbook's own, or for a train file the train's (its lock and journal hold every app).
 */
export function loadTarget(file: string): { pb: Playbook; plan: Plan } {
  const rf = openReleaseFile(file);
  if (rf.kind === 'playbook') {
    const pb = rf.load();
    return { pb, plan: buildPlan(pb) };
  }
  const tp = buildTrainPlan(rf.load());
  return { pb: tp.playbook, plan: tp.plan };
}
