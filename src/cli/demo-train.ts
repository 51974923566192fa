import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import type { EngineEvent } from '../engine/events.js';
import { EXIT, GraywaveError } from '../errors.js';
import { hubCall, loadConfig, status, TRAIN_APPS, TRAIN_NET, fault } from '../sandbox/supervisor.js';
import { trainTraffic, type ByGroup, type Traffic, type TrainTraffic } from '../sandbox/traffic.js';
import { finishDemo, packageRoot, releaseOn, sayer, startSandbox, type DemoOptions } from './demo-sandbox.js';

/**
 * `graywave demo --train`: the release train on the train sandbox. A router with a public and a gray entry in front
 * of a BFE tier calling order and account through the registry (src/sandbox/chain.ts), steady public and gray-entry
 * load, and playbooks/train/train.yaml releasing the three apps together. The summary reads every request's
 * served-by header: failed requests, whether the gray entry reached GREEN instances only once the canary wave was
 * done, and where public traffic went before and after the switchover.
 */

export interface TrainAppSummary {
  name: string;
  hosts: number;
  green: number;
  versions: string[];
}

export interface TrainDemoSummary extends Omit<TrainTraffic, 'switchedAt'> {
  event: 'demo.summary';
  train: true;
  group: string;
  apps: TrainAppSummary[];
  hosts: number;
  green: number;
  waves: number;
  requests: number;
  /** When public traffic moved to the release group (ISO time), if it did. */
  switchedAt?: string;
  ms: number;
  exitCode: number;
}

/** The sandbox's hosts by name → address: the playbooks must name exactly these (the sandbox has no others). */
function sandboxHosts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of TRAIN_APPS) for (let i = 0; i < a.hosts; i++) out.set(`${a.name}-${String(i + 1).padStart(2, '0')}`, `${TRAIN_NET}.${a.first + i}`);
  return out;
}

/**
 * The release group, after checking that every host of the train's app playbooks (or of one app playbook) is a host
 * of the train sandbox: a playbook for other hosts would release nothing the load reaches.
 */
function checkHosts(file: string): string {
  const read = (f: string) =>
    parse(readFileSync(f, 'utf8')) as { group?: string; apps?: { playbook?: string }[]; hosts?: { name?: string; address?: string }[] } | null;
  const doc = read(file) ?? {};
  const files = Array.isArray(doc.apps) ? doc.apps.map((a) => resolve(dirname(file), String(a?.playbook ?? ''))) : [file];
  const known = sandboxHosts();
  for (const f of files) {
    if (!existsSync(f)) throw new GraywaveError(`${file}: app playbook ${f} not found`, EXIT.usage);
    for (const h of read(f)?.hosts ?? []) {
      if (known.get(String(h?.name)) !== h?.address) {
        throw new GraywaveError(
          `${f}: host ${h?.name} (${h?.address}) is not a host of the train sandbox`,
          EXIT.usage,
          `its hosts: ${[...known].map(([n, a]) => `${n} ${a}`).join(', ')}`,
        );
      }
    }
  }
  return doc.group ?? 'GREEN';
}

const show = (g: ByGroup) =>
  Object.entries(g)
    .map(([k, n]) => `${n} ${k === 'none' ? 'failed' : k}`)
    .join(', ') || 'none';

export async function runTrainDemo(
  o: DemoOptions & { playbook?: string; rps?: number; routerPort: number; fault?: { host: string; spec: string }[] },
): Promise<void> {
  const json = !!o.json;
  const say = sayer(json);
  const file = resolve(o.playbook ?? join(packageRoot(), 'playbooks', 'train', 'train.yaml'));
  if (!existsSync(file)) throw new GraywaveError(`playbook ${file} not found`, EXIT.usage);
  const group = checkHosts(file);
  say(
    `starting the train sandbox: ${TRAIN_APPS.map((a) => `${a.hosts} ${a.name}`).join(', ')} hosts on ${TRAIN_NET}.x, registry, router and gray entry on ${TRAIN_NET}.100`,
  );
  const { dir, c, stop } = await startSandbox(file, say, { train: true, rps: o.rps ?? 20, routerPort: o.routerPort });
  for (const f of o.fault ?? []) say(`fault: ${await fault({ dir, host: f.host, spec: f.spec })}`);
  await hubCall(c, 'loadgen/reset', 'POST');

  let waves = 0;
  let canaryDoneAt: number | undefined;
  const onEvent = (e: EngineEvent) => {
    if (e.event === 'run.start' || e.event === 'run.done') waves = e.waves;
    // The train's wave 1, not one app's part of it.
    if (e.event === 'wave.done' && e.wave === 1 && !('app' in e)) canaryDoneAt ??= Date.now();
  };
  const started = Date.now();
  const code = await releaseOn(file, o, stop, onEvent);

  // Let requests already on their way finish, so the counts are final.
  await hubCall(loadConfig(dir), 'loadgen/settle', 'POST');
  const traffic = await hubCall<Traffic>(c, 'traffic');
  const s = await status({ dir });
  const apps = (c.apps ?? []).map((a): TrainAppSummary => {
    const hosts = s.hosts.filter((h) => a.hosts.includes(h.name));
    return {
      name: a.name,
      hosts: hosts.length,
      green: hosts.filter((h) => h.running && h.registeredGroup === group).length,
      versions: [...new Set(hosts.map((h) => h.version))],
    };
  });
  const t = trainTraffic(traffic, { group, apps: apps.map((a) => a.name), canaryDoneAt });
  const summary: TrainDemoSummary = {
    event: 'demo.summary',
    train: true,
    group,
    apps,
    hosts: s.hosts.length,
    green: apps.reduce((n, a) => n + a.green, 0),
    waves,
    requests: t.publicRequests + t.grayRequests,
    ...t,
    switchedAt: t.switchedAt === undefined ? undefined : new Date(t.switchedAt).toISOString(),
    ms: Date.now() - started,
    exitCode: code,
  };

  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  else {
    say('');
    say(
      `train demo ${code === 0 ? 'done' : code === 4 ? 'paused' : 'halted'} in ${(summary.ms / 1000).toFixed(1)}s: ${waves} waves; ${apps.map((a) => `${a.name} ${a.green}/${a.hosts} ${group} (${a.versions.join(', ')})`).join(', ')}`,
    );
    say(`requests during the release: ${summary.requests} (${t.publicRequests} public, ${t.grayRequests} through the gray entry), failed: ${t.failedRequests}`);
    const g = t.grayAfterCanary;
    if (g)
      say(
        `gray entry after the canary wave: ${g.greenOnly} of ${g.requests} requests served by ${group} instances only (${apps.map((a) => a.name).join(', ')})${g.firstOther ? `; first other: ${g.firstOther}` : ''}`,
      );
    else say('gray entry after the canary wave: the canary wave did not finish');
    say(`public traffic before the switchover: ${show(t.publicBeforeSwitchover)}`);
    say(
      summary.switchedAt
        ? `public traffic after the switchover (${summary.switchedAt}): ${show(t.publicAfterSwitchover)}`
        : `public traffic was not switched to ${group}`,
    );
    for (const r of [...traffic.public, ...traffic.gray].filter((r) => r.status !== 200).slice(0, 5))
      say(`  failed request at ${new Date(r.t).toISOString()}: ${r.status ? `HTTP ${r.status}` : 'no answer'}`);
  }
  await finishDemo({ file, dir, code, stop, o, say });
}
