import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { dropConnection, type FaultKind, hangConnection, LostAnswers, RetryAfterWindows } from '../faults';
import {
  type CohortInput,
  cohortInputSchema,
  delay,
  type FaultPlan,
  type MemberInput,
  memberSchema,
  type ResolvedOptions,
} from './options';
import type { WebhookPusher } from './webhooks';

export interface Project {
  apiKey: string;
  secretKey: string;
  /** Amplitude's numeric project id (`appId` in the cohort list). */
  appId: number;
}

export interface Member {
  user_id?: string;
  amplitude_id: number;
  properties: Record<string, unknown>;
}

interface Cohort {
  id: string;
  name: string;
  description: string;
  apiKey: string;
  members: Map<string, Member>;
  createdAt: number;
  lastMod: number;
  lastComputed: number;
}

interface DownloadRequest {
  id: string;
  apiKey: string;
  cohortId: string;
  props: boolean;
  propKeys: string[] | null;
  rows: Member[];
  polls: number;
  file?: Buffer;
}

export interface CohortView {
  id: string;
  name: string;
  apiKey: string;
  size: number;
  lastComputed: number;
}

export interface CohortStats {
  requests: Record<string, number>;
  downloads: Record<string, number>;
  /** 429s of the per-project concurrency limit. */
  throttled: number;
  redirects: number;
  inFlight: Record<string, number>;
  /** Injected faults by kind (the cohorts API and the pre-signed file URL). */
  faults: Record<FaultKind, number>;
  /** Requests of a project that arrived inside a Retry-After window announced to it. */
  retryAfterViolations: number;
}

const epochS = (ms = Date.now()): number => Math.floor(ms / 1000);

function freshStats(): Omit<CohortStats, 'faults' | 'retryAfterViolations'> {
  return { requests: {}, downloads: {}, throttled: 0, redirects: 0, inFlight: {} };
}

/**
 * The computation time of a membership change. Each change here is a new cohort computation, and
 * Amplitude labels computations in epoch seconds (lastComputed, webhook computed_time): two
 * changes within one second must not share a label, or an export frozen between them would carry
 * the same time as the later change's webhook and a receiver could not order them. Amplitude
 * recomputes a cohort minutes apart at most, so its labels never collide.
 */
function nextComputed(previous: number, now = Date.now()): number {
  return Math.max(epochS(now), previous + 1);
}
const memberKey = (m: { user_id?: string; amplitude_id: number }): string => m.user_id ?? `#amp:${m.amplitude_id}`;

/**
 * [U] Error bodies of the cohorts API are undocumented ("returns an error"). We answer with the
 * `{"error":{http_code,type,message}}` shape Amplitude documents for the sibling upload endpoint
 * of the same API, so clients must read the status code and may show the message.
 */
function apiError(reply: FastifyReply, status: number, type: string, message: string): FastifyReply {
  return reply
    .code(status)
    .type('application/json')
    .send({ error: { http_code: status, type, message } });
}

export class CohortsHalf {
  private readonly cohorts = new Map<string, Cohort>();
  private readonly requests = new Map<string, DownloadRequest>();
  private readonly redirects = new Map<string, { file: Buffer; expiresAt: number; name: string }>();
  private readonly inFlight = new Map<string, number>();
  private readonly ampIds = new Map<string, number>();
  private readonly lost = new LostAnswers();
  private readonly retryAfter = new RetryAfterWindows();
  private nextAmpId = 100_000_001;
  private stats = freshStats();

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly projects: Project[],
    readonly faults: FaultPlan,
    private readonly webhooks: WebhookPusher,
  ) {}

  // ---- control (in-process; the HTTP control routes call the same methods) ----

  /** Creates or replaces a cohort; with a webhook configured, pushes the membership difference. */
  upsert(input: CohortInput): CohortView {
    const c = cohortInputSchema.parse(input);
    const apiKey = c.apiKey ?? this.projects[0]!.apiKey;
    if (!this.projects.some((p) => p.apiKey === apiKey)) throw new Error(`unknown project apiKey for cohort ${c.id}`);
    const now = Date.now();
    const old = this.cohorts.get(c.id);
    const members = new Map<string, Member>();
    for (const m of c.members) {
      const member = this.member(m);
      members.set(memberKey(member), member);
    }
    const cohort: Cohort = {
      id: c.id,
      name: c.name,
      description: c.description ?? old?.description ?? '',
      apiKey,
      members,
      createdAt: old?.createdAt ?? epochS(now),
      lastMod: epochS(now),
      lastComputed: old ? nextComputed(old.lastComputed, now) : epochS(now),
    };
    this.cohorts.set(c.id, cohort);
    const entered = [...members.values()].filter((m) => !old?.members.has(memberKey(m)));
    const exited = old ? [...old.members.values()].filter((m) => !members.has(memberKey(m))) : [];
    this.pushChange(cohort, entered, exited);
    return this.view(cohort);
  }

  addMembers(cohortId: string, input: MemberInput[]): { added: number } {
    const cohort = this.require(cohortId);
    const entered: Member[] = [];
    for (const raw of z.array(memberSchema).parse(input)) {
      const m = this.member(raw);
      const key = memberKey(m);
      if (!cohort.members.has(key)) entered.push(m);
      cohort.members.set(key, m);
    }
    if (entered.length > 0) this.touch(cohort);
    this.pushChange(cohort, entered, []);
    return { added: entered.length };
  }

  removeMembers(cohortId: string, userIds: string[]): { removed: number } {
    const cohort = this.require(cohortId);
    const exited: Member[] = [];
    for (const id of z.array(z.string().min(1)).parse(userIds)) {
      const m = cohort.members.get(id);
      if (m) {
        cohort.members.delete(id);
        exited.push(m);
      }
    }
    if (exited.length > 0) this.touch(cohort);
    this.pushChange(cohort, [], exited);
    return { removed: exited.length };
  }

  members(cohortId: string): Member[] {
    return [...this.require(cohortId).members.values()].map((m) => ({ ...m, properties: { ...m.properties } }));
  }

  list(apiKey?: string): CohortView[] {
    return [...this.cohorts.values()].filter((c) => !apiKey || c.apiKey === apiKey).map((c) => this.view(c));
  }

  /** "Get one cohort" requests accepted for a project: what Amplitude counts against the monthly quota. */
  downloads(apiKey?: string): number {
    if (apiKey) return this.stats.downloads[apiKey] ?? 0;
    return Object.values(this.stats.downloads).reduce((a, b) => a + b, 0);
  }

  /** Makes every issued pre-signed URL expired (tests of the 403 path without waiting 60 s). */
  expireRedirects(): void {
    for (const r of this.redirects.values()) r.expiresAt = 0;
  }

  getStats(): CohortStats {
    return {
      ...this.stats,
      requests: { ...this.stats.requests },
      downloads: { ...this.stats.downloads },
      inFlight: Object.fromEntries(this.inFlight),
      faults: { ...this.faults.counts },
      retryAfterViolations: this.retryAfter.violations,
    };
  }

  reset(): void {
    this.cohorts.clear();
    this.requests.clear();
    this.redirects.clear();
    this.faults.clear();
    this.retryAfter.clear();
    this.stats = freshStats();
  }

  // ---- HTTP: the Behavioral Cohorts API ----

  routes(app: FastifyInstance): void {
    this.lost.install(app);
    this.retryAfter.install(app);
    app.addHook('onResponse', async (req, reply) => {
      if (req.url.startsWith('/api/') || req.url.startsWith('/_s3/')) this.count(String(reply.statusCode));
    });

    app.get('/api/3/cohorts', (req, reply) =>
      this.guard(req, reply, async (project) => {
        const q = req.query as Record<string, unknown>;
        const sync = q.includeSyncInfo === 'true' || q.includeSyncInfo === '1';
        return reply.send({
          cohorts: this.list(project.apiKey).map((v) => this.listEntry(this.cohorts.get(v.id)!, project, sync)),
        });
      }),
    );

    app.get('/api/5/cohorts/request/:id', (req, reply) =>
      this.guard(req, reply, async (project) => {
        const { id } = req.params as { id: string };
        const cohort = this.cohorts.get(id);
        if (!cohort || cohort.apiKey !== project.apiKey)
          return apiError(reply, 404, 'not_found', `Cohort ${id} not found`);
        const q = req.query as Record<string, string | string[] | undefined>;
        const props = q.props === '1' || q.props === 'true';
        const keys = q.propKeys === undefined ? null : ([] as string[]).concat(q.propKeys).filter((k) => k.length > 0);
        const request: DownloadRequest = {
          id: randomUUID(),
          apiKey: project.apiKey,
          cohortId: id,
          props,
          propKeys: keys,
          // Membership is frozen at request time, like Amplitude's export job.
          rows: [...cohort.members.values()],
          polls: 0,
        };
        this.requests.set(request.id, request);
        this.stats.downloads[project.apiKey] = (this.stats.downloads[project.apiKey] ?? 0) + 1;
        return reply.code(202).send({ request_id: request.id, cohort_id: id });
      }),
    );

    app.get('/api/5/cohorts/request-status/:requestId', (req, reply) =>
      this.guard(req, reply, async (project) => {
        const r = this.requests.get((req.params as { requestId: string }).requestId);
        if (!r || r.apiKey !== project.apiKey) return apiError(reply, 404, 'not_found', 'Request not found');
        r.polls++;
        const done = r.polls > this.opts.pollsBeforeReady;
        return reply
          .code(done ? 200 : 202)
          .send({ request_id: r.id, cohort_id: r.cohortId, async_status: done ? 'JOB COMPLETED' : 'JOB INPROGRESS' });
      }),
    );

    app.get('/api/5/cohorts/request/:requestId/file', (req, reply) =>
      this.guard(req, reply, async (project) => {
        const r = this.requests.get((req.params as { requestId: string }).requestId);
        if (!r || r.apiKey !== project.apiKey) return apiError(reply, 404, 'not_found', 'Request not found');
        // [U] Fetching the file before JOB COMPLETED is undocumented; refusing it is the strict reading.
        if (r.polls <= this.opts.pollsBeforeReady) {
          return apiError(
            reply,
            400,
            'job_not_completed',
            'Cohort export is not ready: poll request-status until JOB COMPLETED',
          );
        }
        r.file ??= this.buildFile(r);
        if (r.rows.length > this.opts.redirectAbove) {
          // Every call mints a fresh short-lived link, as Amplitude's .../file does.
          const token = randomUUID().replace(/-/g, '');
          this.redirects.set(token, {
            file: r.file,
            expiresAt: Date.now() + this.opts.redirectTtlMs,
            name: `${r.cohortId}.csv.gz`,
          });
          this.stats.redirects++;
          return reply.code(302).header('location', `http://${req.headers.host}/_s3/${token}`).send();
        }
        return reply.code(200).header('content-type', 'text/csv').header('content-encoding', 'gzip').send(r.file);
      }),
    );

    // The "pre-signed S3 URL": no auth, gzip bytes as an opaque object (no Content-Encoding).
    app.get('/_s3/:token', async (req, reply) => {
      // The file step fails like the API does, but in S3's words (503 SlowDown, no Retry-After).
      const fault = this.faults.next();
      if (fault) {
        if (fault.status === 0) {
          this.count('dropped');
          if (fault.hang) await hangConnection(req, reply, this.faults.hangMs);
          else dropConnection(req, reply);
          return reply;
        }
        const slow = fault.status === 429 || fault.status === 503;
        return reply
          .code(slow ? 503 : fault.status)
          .type('application/xml')
          .send(
            `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${slow ? 'SlowDown' : 'InternalError'}</Code><Message>${slow ? 'Please reduce your request rate.' : 'We encountered an internal error. Please try again.'}</Message></Error>`,
          );
      }
      const r = this.redirects.get((req.params as { token: string }).token);
      if (!r || r.expiresAt <= Date.now()) {
        return reply
          .code(403)
          .type('application/xml')
          .send(
            `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>${r ? 'Request has expired' : 'Access Denied'}</Message></Error>`,
          );
      }
      return reply
        .code(200)
        .header('content-type', 'application/octet-stream')
        .header('content-disposition', `attachment; filename="${r.name}"`)
        .send(r.file);
    });
  }

  // ---- internals ----

  private count(key: string): void {
    this.stats.requests[key] = (this.stats.requests[key] ?? 0) + 1;
  }

  /** Auth, the per-project concurrency limit, latency and faults around one API call. */
  private async guard(
    req: FastifyRequest,
    reply: FastifyReply,
    fn: (p: Project) => Promise<FastifyReply>,
  ): Promise<FastifyReply> {
    const project = this.authenticate(req.headers.authorization);
    if (!project) {
      reply.header('www-authenticate', 'Basic realm="Amplitude"');
      return apiError(
        reply,
        401,
        'unauthorized',
        'Invalid API key or secret key (HTTP Basic base64(api_key:secret_key))',
      );
    }
    const n = this.inFlight.get(project.apiKey) ?? 0;
    if (n >= this.opts.maxConcurrent) {
      this.stats.throttled++;
      return apiError(
        reply,
        429,
        'too_many_requests',
        `Too many concurrent requests: the limit is ${this.opts.maxConcurrent} concurrent requests per project`,
      );
    }
    this.inFlight.set(project.apiKey, n + 1);
    const scope = `project|${project.apiKey}`;
    this.retryAfter.arrived([scope], req.raw.socket);
    try {
      await delay(this.faults.latencyMs);
      const fault = this.faults.next();
      if (fault?.status === 0 && fault.lost) {
        // Applied as usual (a download request is made and counted), then the answer is lost.
        this.count('dropped');
        this.lost.mark(reply);
      } else if (fault) {
        if (fault.status === 0) {
          this.count('dropped');
          if (fault.hang) await hangConnection(req, reply, this.faults.hangMs);
          else dropConnection(req, reply);
          return reply;
        }
        if (fault.retryAfterSeconds !== undefined) {
          this.retryAfter.announce(scope, fault.retryAfterSeconds);
          reply.header('retry-after', String(fault.retryAfterSeconds));
        }
        return reply
          .code(fault.status)
          .type('application/json')
          .send(
            fault.body ??
              (fault.status === 429
                ? {
                    error: {
                      http_code: 429,
                      type: 'too_many_requests',
                      message: `Too many requests: retry after ${fault.retryAfterSeconds ?? 1} s`,
                    },
                  }
                : { error: { http_code: fault.status, type: 'server_error', message: 'Internal error' } }),
          );
      }
      return await fn(project);
    } finally {
      const left = (this.inFlight.get(project.apiKey) ?? 1) - 1;
      if (left > 0) this.inFlight.set(project.apiKey, left);
      else this.inFlight.delete(project.apiKey);
    }
  }

  private authenticate(header: string | undefined): Project | undefined {
    const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
    if (!m) return undefined;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return undefined;
    const key = decoded.slice(0, i);
    const secret = decoded.slice(i + 1);
    return this.projects.find((p) => p.apiKey === key && p.secretKey === secret);
  }

  private buildFile(r: DownloadRequest): Buffer {
    let keys: string[] = [];
    if (r.props) {
      if (r.propKeys) keys = r.propKeys;
      else {
        const all = new Set<string>();
        for (const m of r.rows) for (const k of Object.keys(m.properties)) all.add(k);
        keys = [...all].sort();
      }
    }
    // "CSV returned from API has all strings prefixed with a tab character" (Experiment SDKs).
    // Empty values get the tab too: the strict reading, so a client must strip before testing
    // for an anonymous (empty user_id) row.
    const tab = this.opts.tabPrefix ? '\t' : '';
    const cell = (v: unknown): string => {
      const s = v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v);
      return `"${tab}${s.replace(/"/g, '""')}"`;
    };
    const lines = [['amplitude_id', 'user_id', ...keys].map(cell).join(',')];
    for (const m of r.rows) {
      lines.push([String(m.amplitude_id), m.user_id ?? '', ...keys.map((k) => m.properties[k])].map(cell).join(','));
    }
    return gzipSync(`${lines.join('\n')}\n`);
  }

  private member(m: MemberInput): Member {
    let amp = m.amplitude_id;
    if (amp === undefined && m.user_id) amp = this.ampIds.get(m.user_id);
    if (amp === undefined) amp = this.nextAmpId++;
    if (m.user_id) this.ampIds.set(m.user_id, amp);
    return { ...(m.user_id ? { user_id: m.user_id } : {}), amplitude_id: amp, properties: { ...(m.properties ?? {}) } };
  }

  private require(id: string): Cohort {
    const c = this.cohorts.get(id);
    if (!c) throw new Error(`unknown cohort ${id}`);
    return c;
  }

  private touch(c: Cohort): void {
    c.lastMod = c.lastComputed = nextComputed(c.lastComputed);
  }

  private pushChange(cohort: Cohort, entered: Member[], exited: Member[]): void {
    // The webhook destination sends user ids only: anonymous members are skipped, like every
    // cohort destination ("Unresolved mapping").
    const users = (ms: Member[]) =>
      ms.filter((m) => m.user_id).map((m) => ({ user_id: m.user_id!, user_properties: { ...m.properties } }));
    // One update id per change, suffixed ::exit::n / ::enter::n per batch, as in Amplitude's example.
    const updateId = randomUUID();
    this.webhooks.push(cohort, false, users(exited), updateId);
    this.webhooks.push(cohort, true, users(entered), updateId);
  }

  private view(c: Cohort): CohortView {
    return { id: c.id, name: c.name, apiKey: c.apiKey, size: c.members.size, lastComputed: c.lastComputed };
  }

  private listEntry(c: Cohort, project: Project, sync: boolean): Record<string, unknown> {
    return {
      appId: project.appId,
      id: c.id,
      name: c.name,
      description: c.description,
      type: 'redshift',
      definition: {},
      size: c.members.size,
      archived: false,
      finished: true,
      published: true,
      hidden: false,
      metadata: [],
      owners: ['emulator@example.com'],
      viewers: [],
      lastMod: c.lastMod,
      createdAt: c.createdAt,
      lastComputed: c.lastComputed,
      view_count: 0,
      popularity: 0,
      last_viewed: null,
      chart_id: null,
      edit_id: null,
      is_predictive: false,
      is_official_content: false,
      location_id: null,
      shortcut_ids: [],
      ...(sync
        ? {
            syncMetadata: this.webhooks.enabled
              ? [{ target: 'webhook', frequency: 'minute', last_successful: null, last_failure: null, params: {} }]
              : [],
          }
        : {}),
    };
  }
}
