/**
 * `plan` as a reviewer reads it: the canary labelled, what happens between waves in human units, the pipeline once
 * per wave with only the per-host parts listed, provider steps resolved to what they read and write, checks with
 * their request and expectation; `--markdown` the same for a pull request; `--json` keeps its pinned fields.
 */
import chalk from 'chalk';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/plan/build.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { planJson, planMarkdown, planText } from '../../src/render/plan.js';
import { commonAndDiff } from '../../src/render/plan-view.js';

chalk.level = 0;
const pb = loadPlaybook(join(import.meta.dirname, 'plan-review.yaml'));
const plan = buildPlan(pb);

describe('plan for reviewers', () => {
  const text = planText(pb, plan);

  it('labels the canary and says what happens between waves, in human units', () => {
    expect(text).toContain('wave 1 (canary, 1 host): app-01\n');
    expect(text).toContain('  then: a person approves (terminal prompt, or `graywave approve` from CI)\nwave 2 (2 hosts): app-02, app-03\n');
    expect(text).toContain('  then: wait 5m\nwave 3 (2 hosts): app-04, app-05\n');
    expect(text).not.toMatch(/\d{4,}ms/);
  });

  it('resolves provider steps to what they read and write, per host only where hosts differ', () => {
    expect(text).toContain(
      [
        '  1. drain:dubbo: drain the host from dubbo, then wait until dubbo reads back drained',
        '       writes: ZooKeeper zk1:2181: weight=0 for order-service on ‹…›:* in /dubbo/config/dubbo/order-service.configurators',
        '         ‹…› per host: app-02 10.0.0.12 · app-03 10.0.0.13',
      ].join('\n'),
    );
    expect(text).toContain('       drained when: mqadmin consumerConnection -n ns1:9876 -g order_consumer: no client at 10.0.0.11\n');
    expect(text).toContain('       reads: GET http://prom:9090/api/v1/query?query=…\n');
    // The pipeline appears once per wave, not once per host.
    expect(text.match(/drain:dubbo: drain the host/g)).toHaveLength(3);
  });

  it('shows each check with its request and expectation', () => {
    expect(text).toContain('checks after each wave:\n  - smoke (http): GET https://gray.example.com/api/ping expect 200 with "pong" x20 — at most 10m\n');
  });

  it('--markdown: one table per wave', () => {
    const md = planMarkdown(pb, plan);
    expect(md).toContain('#### Wave 1 (canary, 1 host): `app-01`\n\n| # | step | what it does | reads / writes |\n|---|---|---|---|\n');
    expect(md).toContain('| 4 | deploy (no undo) | `deploy.sh 2.4.1` |  |');
    expect(md).toContain('Then: wait 5m.');
  });

  it('--json keeps its fields and adds the resolved effects, the canary and the pauses', () => {
    const j = planJson(pb, plan);
    expect(j.waves).toEqual([
      { index: 1, hosts: ['app-01'] },
      { index: 2, hosts: ['app-02', 'app-03'] },
      { index: 3, hosts: ['app-04', 'app-05'] },
    ]);
    expect(j.pause).toEqual({ kind: 'duration', ms: 300_000 });
    expect(j.canary).toEqual({ wave: 1, hosts: 1 });
    expect(j.between).toEqual([
      { afterWave: 1, kind: 'approve' },
      { afterWave: 2, kind: 'duration', ms: 300_000 },
    ]);
    expect(j.hosts['app-02']![0]).toEqual({
      step: 'drain:dubbo',
      action: 'drain',
      command: 'drain the host from dubbo, then wait until dubbo reads back drained',
      undo: true,
      resolved: [
        'writes: ZooKeeper zk1:2181: weight=0 for order-service on 10.0.0.12:* in /dubbo/config/dubbo/order-service.configurators',
        'drained when: reads /dubbo/config/dubbo/order-service.configurators and /dubbo/<interface>/providers: every URL of order-service on 10.0.0.12:* at weight 0',
        'undo: removes that rule item from /dubbo/config/dubbo/order-service.configurators',
      ],
    });
    expect(j.verify[0]).toEqual({ name: 'smoke', kind: 'http', perHost: false, check: 'GET https://gray.example.com/api/ping expect 200 with "pong" x20' });
  });

  it('commonAndDiff cuts at separators so values stay whole', () => {
    expect(commonAndDiff(['a', 'b'], ['curl http://10.0.0.11:8080/x', 'curl http://10.0.0.12:8080/x'])).toEqual({
      line: 'curl http://‹…›:8080/x',
      perHost: [
        ['a', '10.0.0.11'],
        ['b', '10.0.0.12'],
      ],
    });
    expect(commonAndDiff(['a', 'b'], ['same', 'same'])).toEqual({ line: 'same' });
  });
});
