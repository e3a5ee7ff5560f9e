import { Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';
import { AmpError, toAmpError } from '../errors';
import type { Context } from '../store';
import type { DestinationsTable, SourcesTable, StreamsTable } from '../store/schema';
import type { SyncRow } from '../sync/syncs';
import { refreshCohorts } from './cohorts';
import { addDestination, deleteDestination, destinationInputSchema, updateDestination } from './destinations';
import { addSource, deleteSource, sourceInputSchema, updateSource } from './sources';
import { addStream, deleteStream, streamInputSchema, updateStream } from './streams';
import { addSync, removeSync, syncInputSchema, updateSync } from './syncs';

/**
 * Configuration as code: a YAML file lists the sources, destinations, streams and syncs that
 * should exist; plan compares it with the database and apply makes the database match, through
 * the same operations every shell calls (so the same validation, conflicts and messages).
 *
 * Identity: sources, destinations and streams by name, syncs by (cohort id, destination name),
 * so renaming in the file is a delete plus a create. Secrets are never in the file: a key field
 * must be exactly one `${VARIABLE}` reference, read from the environment at plan/apply time.
 * "Delete" means in the database but not in the file: plan lists it, apply deletes it only with
 * `prune` (deleting a sync removes its tag from every user at OneSignal).
 */

// ---- the file's schema: the operations' own input schemas, strict ----

/** Fields holding keys: they must be environment references, never values. */
const SECRET_FIELDS = {
  sources: ['api_key', 'secret_key'],
  destinations: ['api_key'],
  streams: ['amplitude_api_key'],
} as const;

const unknownFields = {
  error: (i: { code: string; keys?: string[] }) =>
    i.code === 'unrecognized_keys' ? `unknown field(s): ${(i.keys ?? []).join(', ')}` : undefined,
};
const list = <T extends z.ZodType>(entry: T) =>
  z
    .array(entry, { error: 'must be a list' })
    .nullish()
    .transform((v) => v ?? []);
const ref = z.string({ error: 'is required (a name in this file)' }).trim().min(1, 'must not be empty');

const sourceEntry = z.strictObject(sourceInputSchema.shape, unknownFields);
const destinationEntry = z.strictObject(
  { ...destinationInputSchema.omit({ source_id: true }).shape, source: ref.optional() },
  unknownFields,
);
const streamEntry = z.strictObject(streamInputSchema.shape, unknownFields);
const syncEntry = z.strictObject(
  {
    cohort: z.coerce.string({ error: 'is required (the cohort id)' }).trim().min(1, 'is required (the cohort id)'),
    destination: ref,
    ...syncInputSchema.pick({ cadence: true, tag_value: true, guard_threshold: true }).shape,
  },
  unknownFields,
);

export const configFileSchema = z
  .strictObject(
    {
      version: z.literal(1, { error: 'must be 1' }).default(1),
      sources: list(sourceEntry),
      destinations: list(destinationEntry),
      streams: list(streamEntry),
      syncs: list(syncEntry),
    },
    unknownFields,
  )
  .superRefine((c, issues) => {
    for (const kind of ['sources', 'destinations', 'streams'] as const) {
      const seen = new Set<string>();
      c[kind].forEach((e, i) => {
        if (seen.has(e.name)) issues.addIssue({ code: 'custom', path: [kind, i, 'name'], message: 'is used twice' });
        seen.add(e.name);
      });
    }
    const sources = new Set(c.sources.map((s) => s.name));
    c.destinations.forEach((d, i) => {
      if (d.source !== undefined && !sources.has(d.source))
        issues.addIssue({
          code: 'custom',
          path: ['destinations', i, 'source'],
          message: `no source "${d.source}" in this file`,
        });
    });
    const destinations = new Set(c.destinations.map((d) => d.name));
    const pairs = new Set<string>();
    c.syncs.forEach((s, i) => {
      if (!destinations.has(s.destination))
        issues.addIssue({
          code: 'custom',
          path: ['syncs', i, 'destination'],
          message: `no destination "${s.destination}" in this file`,
        });
      const pair = `${s.cohort}\u0000${s.destination}`;
      if (pairs.has(pair))
        issues.addIssue({ code: 'custom', path: ['syncs', i], message: 'syncs this cohort to this destination twice' });
      pairs.add(pair);
    });
  });
export type ConfigFile = z.output<typeof configFileSchema>;

// ---- reading the file: YAML positions, environment references ----

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const WHOLE_ENV_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

export interface ConfigProblem {
  line: number | null;
  field: string;
  message: string;
}

/** A parsed file: the validated configuration, where each field sits, and the variable each key came from. */
export interface LoadedConfig {
  file: string;
  config: ConfigFile;
  /** "sources.0.api_key" → "AMPLITUDE_API_KEY" for every key field. */
  secretRefs: Map<string, string>;
  lineOf: (path: readonly PropertyKey[]) => number | null;
}

function fieldLabel(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)),
    '',
  );
}

function configError(file: string, problems: ConfigProblem[]): AmpError {
  const lines = problems.map((p) => `${file}:${p.line ?? '?'}: ${p.field ? `${p.field}: ` : ''}${p.message}`);
  return new AmpError('invalid_input', lines.join('\n'), { details: { file, problems } });
}

type ScalarVisit = (node: Node & { value: unknown }, path: (string | number)[]) => void;

function walkScalars(node: unknown, path: (string | number)[], visit: ScalarVisit): void {
  if (isScalar(node)) visit(node as Node & { value: unknown }, path);
  else if (isMap(node))
    for (const pair of node.items) {
      if (isPair(pair) && isScalar(pair.key)) walkScalars(pair.value, [...path, String(pair.key.value)], visit);
    }
  else if (isSeq(node))
    node.items.forEach((item, i) => {
      walkScalars(item, [...path, i], visit);
    });
}

/** Replaces every `${NAME}` in the document's strings from `env`; a missing variable is a problem at its line. */
function resolveEnvironment(
  doc: Document,
  lineAt: (n: Node) => number | null,
  env: NodeJS.ProcessEnv,
): { problems: ConfigProblem[]; wholeRefs: Map<string, string> } {
  const problems: ConfigProblem[] = [];
  const wholeRefs = new Map<string, string>();
  walkScalars(doc.contents, [], (node, path) => {
    if (typeof node.value !== 'string' || !node.value.includes('${')) return;
    const whole = WHOLE_ENV_REF.exec(node.value);
    if (whole) wholeRefs.set(path.join('.'), whole[1]!);
    node.value = node.value.replace(ENV_REF, (_, name: string) => {
      const v = env[name];
      if (v === undefined || v === '')
        problems.push({
          line: lineAt(node),
          field: fieldLabel(path),
          message: `environment variable ${name} is not set`,
        });
      return v ?? '';
    });
  });
  return { problems, wholeRefs };
}

function keyFieldProblems(config: ConfigFile, wholeRefs: Map<string, string>, lineOf: LoadedConfig['lineOf']) {
  const problems: ConfigProblem[] = [];
  for (const [kind, fields] of Object.entries(SECRET_FIELDS) as [keyof typeof SECRET_FIELDS, readonly string[]][])
    config[kind].forEach((_, i) => {
      for (const field of fields)
        if (!wholeRefs.has(`${kind}.${i}.${field}`))
          problems.push({
            line: lineOf([kind, i, field]),
            field: fieldLabel([kind, i, field]),
            message: `must be an environment variable reference such as \${ONESIGNAL_KEY}: keys are never written in the file`,
          });
    });
  return problems;
}

function zodProblems(issues: readonly z.core.$ZodIssue[], lineOf: LoadedConfig['lineOf']): ConfigProblem[] {
  return issues.map((i) => {
    const path = i.code === 'unrecognized_keys' && i.keys.length ? [...i.path, `${i.keys[0]}`] : [...i.path];
    return { line: lineOf(path), field: fieldLabel(i.path), message: i.message };
  });
}

/**
 * Parses and validates a configuration file. Every problem names its line: YAML syntax, unknown
 * fields, values the operations would refuse, unset environment variables, keys written in clear.
 */
export function loadConfig(text: string, opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): LoadedConfig {
  const file = opts.file ?? 'ampsignal.yaml';
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  if (doc.errors.length)
    throw configError(
      file,
      doc.errors.map((e) => ({ line: counter.linePos(e.pos[0]).line, field: '', message: e.message.split('\n')[0]! })),
    );
  const lineAt = (n: Node | null | undefined) => (n?.range ? counter.linePos(n.range[0]).line : null);
  const lineOf = (path: readonly PropertyKey[]): number | null => {
    for (let p = [...path]; ; p.pop()) {
      const at = lineAt(p.length ? (doc.getIn(p, true) as Node | undefined) : (doc.contents as Node | null));
      if (at !== null) return at;
      if (!p.length) return null;
    }
  };
  const { problems, wholeRefs } = resolveEnvironment(doc, lineAt, opts.env ?? process.env);
  const parsed = configFileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    // An unset variable also leaves its field empty: name the variable, not the emptiness.
    const unset = new Set(problems.map((p) => p.field));
    const invalid = zodProblems(parsed.error.issues, lineOf).filter((p) => !unset.has(p.field));
    throw configError(file, [...problems, ...invalid]);
  }
  problems.push(...keyFieldProblems(parsed.data, wholeRefs, lineOf));
  if (problems.length) throw configError(file, problems);
  const secretRefs = new Map([...wholeRefs].filter(([path]) => /^(sources|destinations|streams)\.\d+\./.test(path)));
  return { file, config: parsed.data, secretRefs, lineOf };
}

// ---- the plan ----

export type ConfigKind = 'source' | 'destination' | 'stream' | 'sync';

/** One field that differs. A key is never shown: `to` names the variable it comes from. */
export interface FieldChange {
  field: string;
  from: string | null;
  to: string | null;
  secret?: boolean;
}

export interface PlanItem {
  action: 'create' | 'update' | 'delete';
  kind: ConfigKind;
  /** The object's name (a sync: "cohort → destination"). */
  name: string;
  id: string | null;
  /** Where the object is in the file (null for a delete). */
  line: number | null;
  changes: FieldChange[];
  /** Why apply cannot make this change (it refuses the whole plan). */
  blocked?: string;
  /** What else happens (a delete only with --prune; a sync delete removes tags). */
  note?: string;
}

export interface ConfigPlan {
  file: string;
  prune: boolean;
  items: PlanItem[];
  summary: { create: number; update: number; delete: number; kept: number; blocked: number };
}

interface Current {
  sources: SourcesTable[];
  destinations: DestinationsTable[];
  streams: StreamsTable[];
  syncs: SyncRow[];
}

/** Reads, not writes: the operations' views never show keys, and a plan must compare them. */
async function readCurrent(ctx: Context): Promise<Current> {
  const db = ctx.store.db;
  const [sources, destinations, streams, syncs] = await Promise.all([
    db.selectFrom('sources').selectAll().orderBy('created_at').orderBy('id').execute(),
    db.selectFrom('destinations').selectAll().orderBy('created_at').orderBy('id').execute(),
    db.selectFrom('streams').selectAll().orderBy('created_at').orderBy('id').execute(),
    db.selectFrom('syncs').selectAll().orderBy('created_at').orderBy('id').execute(),
  ]);
  return { sources, destinations, streams, syncs };
}

const shown = (v: unknown): string | null =>
  v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v);

function diffFields(current: object, wanted: Record<string, unknown>): FieldChange[] {
  return Object.keys(wanted)
    .filter((k) => shown((current as Record<string, unknown>)[k]) !== shown(wanted[k]))
    .map((k) => ({ field: k, from: shown((current as Record<string, unknown>)[k]), to: shown(wanted[k]) }));
}

function secretChanges(
  ctx: Context,
  loaded: LoadedConfig,
  path: string,
  pairs: Array<[field: string, stored: string | null, wanted: string]>,
): FieldChange[] {
  return pairs
    .filter(([, stored, wanted]) => stored === null || ctx.secrets.decrypt(stored) !== wanted)
    .map(([field]) => ({ field, from: null, to: `\${${loaded.secretRefs.get(`${path}.${field}`)}}`, secret: true }));
}

function sortedJson(v: Record<string, string> | undefined | null): string | null {
  if (!v || !Object.keys(v).length) return null;
  return JSON.stringify(Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))));
}

function planSources(ctx: Context, loaded: LoadedConfig, cur: Current): PlanItem[] {
  return loaded.config.sources.map((s, i) => {
    const row = cur.sources.find((r) => r.name === s.name);
    const line = loaded.lineOf(['sources', i]);
    const wanted = { region: s.region, api_url: s.api_url ?? null, download_budget: s.download_budget };
    const keys = (r: SourcesTable | undefined): Array<[string, string | null, string]> => [
      ['api_key', r?.api_key_enc ?? null, s.api_key],
      ['secret_key', r?.secret_key_enc ?? null, s.secret_key],
    ];
    const changes = [...diffFields(row ?? {}, wanted), ...secretChanges(ctx, loaded, `sources.${i}`, keys(row))];
    return { action: row ? 'update' : 'create', kind: 'source', name: s.name, id: row?.id ?? null, line, changes };
  });
}

function planDestinations(ctx: Context, loaded: LoadedConfig, cur: Current): PlanItem[] {
  const sourceName = new Map(cur.sources.map((s) => [s.id, s.name]));
  return loaded.config.destinations.map((d, i) => {
    const row = cur.destinations.find((r) => r.name === d.name);
    const wanted = {
      app_id: d.app_id,
      source: d.source ?? null,
      api_url: d.api_url,
      tag_key_template: d.tag_key_template,
      external_id_property: d.external_id_property,
      max_tags_per_user: d.max_tags_per_user,
      rate_limit_per_second: d.rate_limit_per_second,
    };
    const current = row
      ? { ...row, source: row.source_id ? (sourceName.get(row.source_id) ?? row.source_id) : null }
      : {};
    const changes = [
      ...diffFields(current, wanted),
      ...secretChanges(ctx, loaded, `destinations.${i}`, [['api_key', row?.api_key_enc ?? null, d.api_key]]),
    ];
    const item: PlanItem = {
      action: row ? 'update' : 'create',
      kind: 'destination',
      name: d.name,
      id: row?.id ?? null,
      line: loaded.lineOf(['destinations', i]),
      changes,
    };
    const fixed = row ? changes.filter((c) => c.field === 'app_id' || c.field === 'source') : [];
    if (fixed.length)
      item.blocked = `its ${fixed.map((c) => c.field).join(' and ')} cannot change (a different OneSignal app is a different destination): give it another name to add it as a new destination`;
    return item;
  });
}

function planStreams(ctx: Context, loaded: LoadedConfig, cur: Current): PlanItem[] {
  return loaded.config.streams.map((s, i) => {
    const row = cur.streams.find((r) => r.name === s.name);
    const wanted = { region: s.region, amplitude_url: s.amplitude_url ?? null, event_names: sortedJson(s.event_names) };
    const current = row
      ? { ...row, event_names: sortedJson(row.event_names ? JSON.parse(row.event_names) : null) }
      : {};
    const changes = [
      ...diffFields(current, wanted),
      ...secretChanges(ctx, loaded, `streams.${i}`, [
        ['amplitude_api_key', row?.amplitude_api_key_enc ?? null, s.amplitude_api_key],
      ]),
    ];
    return {
      action: row ? 'update' : 'create',
      kind: 'stream',
      name: s.name,
      id: row?.id ?? null,
      line: loaded.lineOf(['streams', i]),
      changes,
    };
  });
}

const syncName = (cohort: string, destination: string) => `${cohort} → ${destination}`;

function planSyncs(loaded: LoadedConfig, cur: Current): PlanItem[] {
  const destId = new Map(cur.destinations.map((d) => [d.name, d.id]));
  return loaded.config.syncs.map((s, i) => {
    const row = cur.syncs.find((r) => r.cohort_id === s.cohort && r.destination_id === destId.get(s.destination));
    const wanted = { cadence: s.cadence, tag_value: s.tag_value, guard_threshold: s.guard_threshold };
    const changes = diffFields(row ? { ...row, guard_threshold: Number(row.guard_threshold) } : {}, wanted);
    const item: PlanItem = {
      action: row ? 'update' : 'create',
      kind: 'sync',
      name: syncName(s.cohort, s.destination),
      id: row?.id ?? null,
      line: loaded.lineOf(['syncs', i]),
      changes,
    };
    if (row && changes.some((c) => c.field === 'tag_value'))
      item.blocked = `a sync's tag value cannot change in place (its users' tags hold the old kind): remove the sync from the file, apply --prune (its tags are removed), then add it back`;
    return item;
  });
}

const PRUNE_NOTE = 'not in the file: deleted only by apply --prune';

function planDeletes(loaded: LoadedConfig, cur: Current): PlanItem[] {
  const c = loaded.config;
  const del = (kind: ConfigKind, name: string, id: string, note: string): PlanItem => ({
    action: 'delete',
    kind,
    name,
    id,
    line: null,
    changes: [],
    note,
  });
  const destName = new Map(cur.destinations.map((d) => [d.id, d.name]));
  const inFile = new Set(c.syncs.map((s) => `${s.cohort}\u0000${s.destination}`));
  return [
    ...cur.syncs
      .filter((r) => !inFile.has(`${r.cohort_id}\u0000${destName.get(r.destination_id)}`))
      .map((r) =>
        del(
          'sync',
          syncName(r.cohort_id, destName.get(r.destination_id) ?? r.destination_id),
          r.id,
          `${PRUNE_NOTE}; removes its tag ${r.tag_key} from every user at OneSignal`,
        ),
      ),
    ...cur.destinations
      .filter((r) => !c.destinations.some((d) => d.name === r.name))
      .map((r) => del('destination', r.name, r.id, `${PRUNE_NOTE}; its syncs' tags are removed`)),
    ...cur.streams
      .filter((r) => !c.streams.some((s) => s.name === r.name))
      .map((r) => del('stream', r.name, r.id, `${PRUNE_NOTE}; events not yet forwarded are dropped`)),
    ...cur.sources
      .filter((r) => !c.sources.some((s) => s.name === r.name))
      .map((r) => del('source', r.name, r.id, `${PRUNE_NOTE}; its cohorts are forgotten`)),
  ];
}

function summarize(items: PlanItem[], prune: boolean): ConfigPlan['summary'] {
  const n = (a: PlanItem['action']) => items.filter((i) => i.action === a).length;
  const deletes = n('delete');
  return {
    create: n('create'),
    update: n('update'),
    delete: prune ? deletes : 0,
    kept: prune ? 0 : deletes,
    blocked: items.filter((i) => i.blocked).length,
  };
}

/** What apply would do: creates, changes (only objects that differ), and what is not in the file. */
export async function planConfig(
  ctx: Context,
  loaded: LoadedConfig,
  opts: { prune?: boolean } = {},
): Promise<ConfigPlan> {
  const cur = await readCurrent(ctx);
  const items = [
    ...planSources(ctx, loaded, cur),
    ...planDestinations(ctx, loaded, cur),
    ...planStreams(ctx, loaded, cur),
    ...planSyncs(loaded, cur),
  ].filter((i) => i.action === 'create' || i.changes.length > 0);
  items.push(...planDeletes(loaded, cur));
  const prune = opts.prune === true;
  return { file: loaded.file, prune, items, summary: summarize(items, prune) };
}

// ---- apply ----

export interface ApplyResult {
  plan: ConfigPlan;
  /** What was done, in order, each with the id it has now. */
  applied: Array<{ action: PlanItem['action']; kind: ConfigKind; name: string; id: string; message?: string }>;
  message: string;
}

interface Ids {
  source: Map<string, string>;
  destination: Map<string, string>;
}

async function applySource(ctx: Context, loaded: LoadedConfig, item: PlanItem, ids: Ids): Promise<string> {
  const s = loaded.config.sources.find((x) => x.name === item.name)!;
  if (item.action === 'create') {
    const created = await addSource(ctx, s);
    ids.source.set(s.name, created.id);
    return created.id;
  }
  const patch: Record<string, unknown> = {};
  for (const c of item.changes) patch[c.field] = s[c.field as keyof typeof s] ?? null;
  await updateSource(ctx, item.id!, patch);
  return item.id!;
}

async function applyDestination(ctx: Context, loaded: LoadedConfig, item: PlanItem, ids: Ids): Promise<string> {
  const { source, ...d } = loaded.config.destinations.find((x) => x.name === item.name)!;
  if (item.action === 'create') {
    const created = await addDestination(ctx, { ...d, source_id: source ? ids.source.get(source) : null });
    ids.destination.set(d.name, created.id);
    return created.id;
  }
  const patch: Record<string, unknown> = {};
  for (const c of item.changes) patch[c.field] = d[c.field as keyof typeof d];
  await updateDestination(ctx, item.id!, patch);
  return item.id!;
}

async function applyStream(ctx: Context, loaded: LoadedConfig, item: PlanItem): Promise<string> {
  const s = loaded.config.streams.find((x) => x.name === item.name)!;
  if (item.action === 'create') return (await addStream(ctx, s)).id;
  const patch: Record<string, unknown> = {};
  for (const c of item.changes)
    patch[c.field] = c.field === 'event_names' ? (s.event_names ?? {}) : (s[c.field as keyof typeof s] ?? null);
  await updateStream(ctx, item.id!, patch);
  return item.id!;
}

/**
 * A sync names its cohort by id; a cohort of a source created by this apply is not known yet,
 * so the cohort lists of the file's sources (not others') are fetched (free: not a download) once, when needed.
 */
async function ensureCohortsKnown(ctx: Context, loaded: LoadedConfig, cohortIds: string[], ids: Ids): Promise<void> {
  const known = await ctx.store.db.selectFrom('cohorts').select('id').where('id', 'in', cohortIds).execute();
  if (known.length === new Set(cohortIds).size) return;
  for (const s of loaded.config.sources) await refreshCohorts(ctx, ids.source.get(s.name)!);
}

/** Through the app's sync operations, so a file meets the same checks as `sync create` / `sync update`. */
async function applySync(ctx: Context, loaded: LoadedConfig, item: PlanItem, ids: Ids): Promise<string> {
  const s = loaded.config.syncs.find((x) => syncName(x.cohort, x.destination) === item.name)!;
  if (item.action === 'update') {
    await updateSync(ctx, item.id!, { cadence: s.cadence, guard_threshold: s.guard_threshold });
    return item.id!;
  }
  const created = await addSync(ctx, {
    cohort_id: s.cohort,
    destination_id: ids.destination.get(s.destination)!,
    cadence: s.cadence,
    tag_value: s.tag_value,
    guard_threshold: s.guard_threshold,
  });
  return created.id;
}

async function applyDelete(ctx: Context, item: PlanItem): Promise<string | undefined> {
  const id = item.id!;
  if (item.kind === 'sync') {
    const r = await removeSync(ctx, id);
    if (!r.deleted)
      throw new AmpError('conflict', `sync ${id}: ${r.pending} tag removal(s) not yet delivered; apply --prune again`);
    return `tag removed from ${r.removed} user(s)`;
  }
  if (item.kind === 'destination') {
    const r = await deleteDestination(ctx, id, { removeTags: true });
    if (!r.deleted) throw new AmpError('conflict', r.message);
    return r.message;
  }
  if (item.kind === 'stream') return (await deleteStream(ctx, id)).message;
  const r = await deleteSource(ctx, id);
  if (!r.deleted) throw new AmpError('conflict', r.message);
  return r.message;
}

function describeItem(item: PlanItem): string {
  return `${item.action} ${item.kind} "${item.name}"${item.line ? ` (line ${item.line})` : ''}`;
}

async function applyItem(
  ctx: Context,
  loaded: LoadedConfig,
  item: PlanItem,
  ids: Ids,
): Promise<ApplyResult['applied'][number]> {
  if (item.action === 'delete') {
    const message = await applyDelete(ctx, item);
    return { action: item.action, kind: item.kind, name: item.name, id: item.id!, ...(message ? { message } : {}) };
  }
  const id =
    item.kind === 'source'
      ? await applySource(ctx, loaded, item, ids)
      : item.kind === 'destination'
        ? await applyDestination(ctx, loaded, item, ids)
        : item.kind === 'stream'
          ? await applyStream(ctx, loaded, item)
          : await applySync(ctx, loaded, item, ids);
  return { action: item.action, kind: item.kind, name: item.name, id };
}

/**
 * Makes the database match the file: creates, then changes, in dependency order (sources,
 * destinations, streams, syncs), then with `prune` deletes what the file does not list (syncs
 * first, so their tags go before their destination). Refused as a whole when the plan holds a
 * change apply cannot make. A second apply of the same file finds nothing to do.
 */
export async function applyConfig(
  ctx: Context,
  loaded: LoadedConfig,
  opts: { prune?: boolean } = {},
): Promise<ApplyResult> {
  const plan = await planConfig(ctx, loaded, opts);
  const blocked = plan.items.filter((i) => i.blocked);
  if (blocked.length)
    throw new AmpError(
      'conflict',
      `nothing applied: ${blocked.map((i) => `${i.kind} "${i.name}"${i.line ? ` (${loaded.file}:${i.line})` : ''}: ${i.blocked}`).join('; ')}`,
    );
  const cur = await readCurrent(ctx);
  const ids: Ids = {
    source: new Map(cur.sources.map((s) => [s.name, s.id])),
    destination: new Map(cur.destinations.map((d) => [d.name, d.id])),
  };
  const todo = plan.items.filter((i) => i.action !== 'delete' || plan.prune);
  const newSyncCohorts = loaded.config.syncs
    .filter((s) =>
      todo.some((i) => i.kind === 'sync' && i.action === 'create' && i.name === syncName(s.cohort, s.destination)),
    )
    .map((s) => s.cohort);
  const applied: ApplyResult['applied'] = [];
  for (const item of todo) {
    try {
      if (item.kind === 'sync' && item.action === 'create' && newSyncCohorts.length) {
        await ensureCohortsKnown(ctx, loaded, newSyncCohorts, ids);
        newSyncCohorts.length = 0;
      }
      applied.push(await applyItem(ctx, loaded, item, ids));
    } catch (e) {
      const err = toAmpError(e);
      throw new AmpError(
        err.code,
        `${describeItem(item)} failed after ${applied.length} change(s) applied: ${err.message}`,
        {
          ...(err.details ? { details: err.details } : {}),
          cause: e,
        },
      );
    }
  }
  return { plan, applied, message: applyMessage(plan, applied.length) };
}

function applyMessage(plan: ConfigPlan, done: number): string {
  const kept = plan.summary.kept
    ? `; ${plan.summary.kept} object(s) not in the file kept (apply --prune deletes them)`
    : '';
  if (!done) return `No changes: the database already matches ${plan.file}${kept}`;
  const s = plan.summary;
  return `Applied ${plan.file}: ${s.create} created, ${s.update} changed, ${s.delete} deleted${kept}`;
}

// ---- text ----

const SIGN = { create: '+', update: '~', delete: '-' } as const;

/** A plan as people read it (the CLI prints this; it never holds a key, only the variables keys come from). */
export function planLines(plan: ConfigPlan): string[] {
  const out: string[] = [];
  for (const item of plan.items) {
    const kept = item.action === 'delete' && !plan.prune;
    const sign = kept ? '?' : SIGN[item.action];
    out.push(
      `${sign} ${item.kind} "${item.name}"${item.id ? ` (${item.id})` : ''}${item.line ? `  line ${item.line}` : ''}`,
    );
    for (const c of item.changes)
      out.push(
        c.secret
          ? `    ${c.field}: ${item.action === 'create' ? 'from' : 'changed, now from'} ${c.to}`
          : item.action === 'create'
            ? `    ${c.field}: ${c.to ?? '(none)'}`
            : `    ${c.field}: ${c.from ?? '(none)'} → ${c.to ?? '(none)'}`,
      );
    if (item.note && (item.action !== 'delete' || kept)) out.push(`    (${item.note})`);
    else if (item.note) out.push(`    (${item.note.replace(`${PRUNE_NOTE}; `, '')})`);
    if (item.blocked) out.push(`    ! cannot apply: ${item.blocked}`);
  }
  const s = plan.summary;
  out.push(
    !s.create && !s.update && !s.delete
      ? `No changes: the database matches ${plan.file}${s.kept ? ` (${s.kept} object(s) not in the file are kept; apply --prune deletes them)` : ''}.`
      : `Plan: ${s.create} to create, ${s.update} to change, ${s.delete} to delete${s.kept ? `, ${s.kept} not in the file kept (--prune deletes them)` : ''}.`,
  );
  if (s.blocked) out.push(`${s.blocked} change(s) cannot be applied (marked !): apply refuses this plan.`);
  return out;
}

// ---- export ----

function envName(prefix: string, name: string, suffix: string): string {
  const slug = name
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return `${prefix}_${slug || 'UNNAMED'}_${suffix}`;
}

const envRef = (v: string) => `\${${v}}`;

async function cohortNamesOf(ctx: Context, syncs: SyncRow[]): Promise<Map<string, string>> {
  if (!syncs.length) return new Map();
  const rows = await ctx.store.db
    .selectFrom('cohorts')
    .select(['id', 'name'])
    .where(
      'id',
      'in',
      syncs.map((s) => s.cohort_id),
    )
    .execute();
  return new Map(rows.map((r) => [r.id, r.name]));
}

/**
 * The database's configuration as a file apply accepts. Keys are written as references to
 * environment variables named after each object (set them before plan or apply); the file holds
 * no key, no webhook secret.
 */
export async function exportConfig(ctx: Context): Promise<string> {
  const cur = await readCurrent(ctx);
  const sourceName = new Map(cur.sources.map((s) => [s.id, s.name]));
  const destName = new Map(cur.destinations.map((d) => [d.id, d.name]));
  const value = {
    version: 1,
    sources: cur.sources.map((s) => ({
      name: s.name,
      api_key: envRef(envName('SOURCE', s.name, 'API_KEY')),
      secret_key: envRef(envName('SOURCE', s.name, 'SECRET_KEY')),
      region: s.region,
      ...(s.api_url ? { api_url: s.api_url } : {}),
      download_budget: Number(s.download_budget),
    })),
    destinations: cur.destinations.map((d) => ({
      name: d.name,
      app_id: d.app_id,
      api_key: envRef(envName('DESTINATION', d.name, 'API_KEY')),
      ...(d.source_id && sourceName.has(d.source_id) ? { source: sourceName.get(d.source_id) } : {}),
      api_url: d.api_url,
      tag_key_template: d.tag_key_template,
      external_id_property: d.external_id_property,
      max_tags_per_user: Number(d.max_tags_per_user),
      rate_limit_per_second: Number(d.rate_limit_per_second),
    })),
    streams: cur.streams.map((s) => ({
      name: s.name,
      amplitude_api_key: envRef(envName('STREAM', s.name, 'AMPLITUDE_API_KEY')),
      region: s.region,
      ...(s.amplitude_url ? { amplitude_url: s.amplitude_url } : {}),
      ...(s.event_names && Object.keys(JSON.parse(s.event_names)).length
        ? { event_names: JSON.parse(s.event_names) }
        : {}),
    })),
    syncs: cur.syncs.map((s) => ({
      cohort: s.cohort_id,
      destination: destName.get(s.destination_id) ?? s.destination_id,
      cadence: s.cadence,
      tag_value: s.tag_value,
      guard_threshold: Number(s.guard_threshold),
    })),
  };
  const doc = new Document(value);
  const cohortNames = await cohortNamesOf(ctx, cur.syncs);
  cur.syncs.forEach((sync, i) => {
    const node = doc.getIn(['syncs', i, 'cohort'], true) as Node | undefined;
    const name = cohortNames.get(sync.cohort_id);
    if (node && name) node.comment = ` ${name.replace(/[\r\n]+/g, ' ')}`;
  });
  doc.commentBefore = ` ampsignal configuration (ampsignal plan -f FILE / ampsignal apply -f FILE).\n Keys are not in this file: each \${NAME} is read from the environment.`;
  return doc.toString({ lineWidth: 0 });
}
