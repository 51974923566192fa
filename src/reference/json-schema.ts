import { z } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
import { actions } from '../actions/index.js';
import { gates } from '../gates/index.js';
import { stateBackendTypes } from '../journal/backends.js';
import { notifyEntrySchema } from '../notify/config.js';
import { commonStepKeys, hostSchema, topSchema } from '../playbook/schema.js';
import { trainSchema } from '../playbook/train.js';
import { providerTypes } from '../providers/index.js';
import { routingTypes } from '../routing/index.js';
import { transportTypes } from '../transport/index.js';

/**
 * The JSON Schema of a playbook (`graywave schema`, schema/playbook.schema.json), for editors (yaml-language-server)
 * to complete and check keys. Built from the same zod schemas and registries the loader uses, so a provider or
 * step kind added in code is in the schema too. Checks that need the whole playbook (template names, provider
 * references, wave arithmetic) stay with `graywave validate`.
 */
type Json = Record<string, unknown>;

const ID = 'https://graywave.dev/schema/playbook.schema.json';
const TRAIN_ID = 'https://graywave.dev/schema/train.schema.json';

function js(schema: z.ZodTypeAny): Json {
  const out = zodToJsonSchema(schema, { target: 'jsonSchema7', $refStrategy: 'none', effectStrategy: 'input', removeAdditionalStrategy: 'strict' }) as Json;
  delete out.$schema;
  return out;
}

/** An object schema with a `type` key fixed to `type` (providers, routing rules, transports, state backends). */
function typed(type: string, options: z.ZodTypeAny, extra: Json = {}): Json {
  const o = js(options);
  const props = { type: { const: type }, ...extra, ...((o.properties as Json) ?? {}) };
  return { ...o, type: 'object', properties: props, required: ['type', ...((o.required as string[]) ?? [])] };
}

/** One branch per type: `if type is T then T's options`, so an editor reports the right keys for the type written. */
function byType(branches: { type: string; schema: Json }[], what: string): Json {
  return {
    type: 'object',
    required: ['type'],
    properties: { type: { enum: branches.map((b) => b.type), description: `the ${what} type` } },
    allOf: branches.map((b) => ({ if: { properties: { type: { const: b.type } }, required: ['type'] }, then: b.schema })),
  };
}

function stepSchema(list: { key: string; params: z.ZodTypeAny; stepLevel?: boolean }[], common: Record<string, z.ZodTypeAny>): Json {
  const base = js(z.object(common));
  const baseProps = (base.properties as Json) ?? {};
  return {
    anyOf: list.map((a) => {
      if (a.stepLevel) {
        const p = js(a.params);
        return {
          type: 'object',
          properties: { ...baseProps, ...((p.properties as Json) ?? {}) },
          required: (p.required as string[]) ?? [],
          additionalProperties: false,
        };
      }
      return { type: 'object', properties: { ...baseProps, [a.key]: js(a.params) }, required: [a.key], additionalProperties: false };
    }),
  };
}

/** The keys a train file shares with a playbook (providers, state, checks, switchover): one schema for both. */
function sharedProps(props: Json): void {
  props.providers = {
    type: 'object',
    additionalProperties: byType(
      providerTypes.map((p) => ({ type: p.type, schema: typed(p.type, p.options) })),
      'provider',
    ),
  };
  props.state = byType(
    stateBackendTypes.map((s) => ({ type: s.type, schema: typed(s.type, s.options) })),
    'state backend',
  );
  const gateCommon = { name: commonStepKeys.name, timeout: commonStepKeys.timeout, skipOnHotfix: z.boolean().optional() };
  props.verify = { type: 'array', items: stepSchema(gates, gateCommon) };
  if (props.switchover) {
    const so = props.switchover as Json;
    so.properties = { ...(so.properties as Json), steps: { type: 'array', minItems: 1, items: stepSchema(actions, commonStepKeys) } };
  }
  if (props.watch) props.watch = { type: 'array', items: stepSchema(gates, { ...gateCommon, interval: commonStepKeys.interval }) };
}

export function playbookJsonSchema(): Json {
  const top = js(topSchema);
  const props = { ...(top.properties as Json) };
  props.hosts = { type: 'array', items: js(hostSchema) };
  props.inventory = {
    anyOf: [
      { type: 'string', description: 'a YAML/JSON file of hosts' },
      { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] },
      { type: 'object', properties: { provider: { type: 'string' }, service: { type: 'string' } }, required: ['provider', 'service'] },
    ],
  };
  props.transport = byType(
    transportTypes.map((t) => ({ type: t.type, schema: typed(t.type, t.options) })),
    'transport',
  );
  props.steps = { type: 'array', minItems: 1, items: stepSchema(actions, commonStepKeys) };
  sharedProps(props);
  props.routing = {
    type: 'array',
    items: byType(
      routingTypes.map((r) => ({ type: r.type, schema: typed(r.type, r.options, { name: { type: 'string' }, end: { enum: ['final', 'keep', 'remove'] } }) })),
      'routing rule',
    ),
  };
  props.notify = { type: 'array', items: js(notifyEntrySchema) };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: ID,
    title: 'graywave playbook',
    description: 'A gray release of a host fleet: hosts, waves, providers and the per-host pipeline. Reference: docs/reference.md',
    ...top,
    properties: props,
  };
}

/**
 * The JSON Schema of a train file (`graywave schema --train`, schema/train.schema.json): `apps:` instead of
 * hosts/steps, the train's waves; providers, checks, switchover and state as in a playbook (the same pieces). Each
 * app's own playbook is checked by the playbook schema; `after:` cycles and unknown apps stay with `graywave validate`.
 */
export function trainJsonSchema(): Json {
  const top = js(trainSchema);
  const props = { ...(top.properties as Json) };
  sharedProps(props);
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: TRAIN_ID,
    title: 'graywave release train',
    description:
      'A release train: several applications (each with its own playbook) released as one gray release, wave k taking the k-th slice of every app. Reference: docs/reference.md#train-files',
    ...top,
    properties: props,
  };
}
