import { z } from 'zod';
import { AmpError, toAmpError } from '../errors';
import type { Context } from '../store';
import { type ApplyResult, applyConfig, type ConfigPlan, loadConfig, planConfig, planLines } from './config';

/**
 * Configuration as code for the server's shells (admin API and web UI): the file arrives as
 * text, not as a path. `${VAR}` references are read from the variables sent with the request,
 * then from the server's environment, except the server's own settings (AMPSIGNAL_*: the admin
 * token, the encryption key, the database URL), which a file must not be able to read. No
 * resolved value is ever answered: any that shows up in a plan, a result or an error (a
 * variable used outside a key field) is put back as its `${VAR}` reference.
 */

const SERVER_OWN = /^AMPSIGNAL_/;
const ENV_NAME = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export const configRequestSchema = z.strictObject(
  {
    yaml: z
      .string({ error: 'is required: the configuration file as text' })
      .min(1, 'must not be empty')
      .max(1_000_000, 'at most 1 MB'),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'variable names are letters, digits and _'),
        z.string({ error: 'values must be strings' }).max(10_000, 'values are at most 10,000 characters'),
      )
      .optional()
      .describe(
        `values of the file's \${VAR} references, ahead of the server's environment (whose AMPSIGNAL_* settings are never read); never stored in clear, never answered`,
      ),
    prune: z.boolean().default(false).describe('also delete (apply) or plan to delete what the file does not list'),
  },
  { error: (i) => (i.code === 'unrecognized_keys' ? `unknown field(s): ${i.keys.join(', ')}` : undefined) },
);
export type ConfigRequest = z.output<typeof configRequestSchema>;

const fieldChange = z.object({
  field: z.string(),
  from: z.string().nullable(),
  to: z.string().nullable().describe(`a key field: the \${VAR} it is read from, never its value`),
  secret: z.boolean().optional(),
});
const planItem = z.object({
  action: z.enum(['create', 'update', 'delete']),
  kind: z.enum(['source', 'destination', 'stream', 'sync']),
  name: z.string().describe('a sync: "cohort → destination"'),
  id: z.string().nullable(),
  line: z.number().int().nullable().describe("the object's line in the file"),
  changes: z.array(fieldChange),
  blocked: z.string().optional().describe('why apply refuses this change (and so the whole plan)'),
  note: z.string().optional(),
});
export const configPlanSchema = z.object({
  file: z.string(),
  prune: z.boolean(),
  items: z.array(planItem),
  summary: z.object({
    create: z.number().int(),
    update: z.number().int(),
    delete: z.number().int(),
    kept: z.number().int().describe('not in the file, kept (prune deletes them)'),
    blocked: z.number().int(),
  }),
  lines: z.array(z.string()).describe('the plan as `ampsignal plan` prints it'),
});
export const configApplySchema = z.object({
  plan: configPlanSchema,
  applied: z.array(
    z.object({
      action: z.enum(['create', 'update', 'delete']),
      kind: z.enum(['source', 'destination', 'stream', 'sync']),
      name: z.string(),
      id: z.string(),
      message: z.string().optional(),
    }),
  ),
  message: z.string(),
});
export type ConfigPlanView = z.infer<typeof configPlanSchema>;
export type ConfigApplyView = z.infer<typeof configApplySchema>;

/** The variables a file names, with their values as this request resolves them. */
function variablesOf(text: string, requestEnv: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [, name] of text.matchAll(ENV_NAME)) {
    const value = Object.hasOwn(requestEnv, name!)
      ? requestEnv[name!]
      : SERVER_OWN.test(name!)
        ? undefined
        : process.env[name!];
    if (value !== undefined) out[name!] = value;
  }
  return out;
}

/** Puts every resolved value found in `value`'s strings back as its reference (longest first). */
function redactor(vars: Record<string, string>): <T>(value: T) => T {
  const pairs = Object.entries(vars)
    .filter(([, v]) => v.length >= 3)
    .sort(([, a], [, b]) => b.length - a.length);
  const text = (s: string) => pairs.reduce((t, [name, v]) => t.split(v).join(`\${${name}}`), s);
  const walk = (v: unknown): unknown =>
    typeof v === 'string'
      ? text(v)
      : Array.isArray(v)
        ? v.map(walk)
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
          : v;
  return <T>(value: T) => (pairs.length ? (walk(value) as T) : value);
}

async function withFile<T>(
  req: ConfigRequest,
  work: (loaded: ReturnType<typeof loadConfig>) => Promise<T>,
): Promise<T> {
  const vars = variablesOf(req.yaml, req.env ?? {});
  const redact = redactor(vars);
  try {
    return redact(await work(loadConfig(req.yaml, { env: vars })));
  } catch (e) {
    const err = toAmpError(e);
    if (err.kind === 'internal') throw e;
    throw new AmpError(err.code, redact(err.message), {
      ...(err.details ? { details: redact(err.details) } : {}),
      cause: e,
    });
  }
}

const planView = (plan: ConfigPlan): ConfigPlanView => ({ ...plan, lines: planLines(plan) });

/** `ampsignal plan` for a file sent as text; a bad file is invalid_input naming each line. */
export function planConfigText(ctx: Context, req: ConfigRequest): Promise<ConfigPlanView> {
  return withFile(req, async (loaded) => planView(await planConfig(ctx, loaded, { prune: req.prune })));
}

/** `ampsignal apply` for a file sent as text; a second apply of the same file changes nothing. */
export function applyConfigText(ctx: Context, req: ConfigRequest): Promise<ConfigApplyView> {
  return withFile(req, async (loaded) => {
    const r: ApplyResult = await applyConfig(ctx, loaded, { prune: req.prune });
    return { ...r, plan: planView(r.plan) };
  });
}
