import { randomUUID } from 'node:crypto';
import { addDestination } from '../app/destinations';
import { addSource, updateSource } from '../app/sources';
import { assertCadenceFitsBudget, downloadsThisMonth, plannedMonthlyDownloads } from '../connectors/amplitude/budget';
import { refreshSourceCohorts } from '../connectors/amplitude/cohorts';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../emulators/amplitude';
import { buildServer } from '../server/app';
import type { Context } from '../store';
import { applyPendingWebhooks } from '../sync/cohort-webhooks';
import { deliverDestination } from '../sync/deliver';
import { type RunView, runSync } from '../sync/run';
import { createSync } from '../sync/syncs';

export interface AmplitudeDemoOptions {
  ctx: Context;
  log: (line: string) => void;
  /** The OneSignal app (usually the demo's emulator). Users `user_0…` are expected to exist there. */
  oneSignal: { url: string; appId: string; apiKey: string };
}

function runLine(r: RunView): string {
  return (
    `  run ${r.id}: ${r.status}; ${r.members} members, ${r.skipped_anonymous} anonymous skipped; ` +
    `+${r.added} -${r.removed} (=${r.unchanged}); delivered ${r.delivered}, not in OneSignal ${r.not_found}, failed ${r.failed}, pending ${r.pending}`
  );
}

/**
 * The Amplitude part of `ampsignal demo`: an Amplitude emulator as the cohort source, pulled
 * once (request → poll → gzip file, streamed into the ledger), then membership changes pushed
 * by the emulator's cohort webhook to our hook route, acknowledged, applied and delivered.
 */
export async function runAmplitudeDemo(opts: AmplitudeDemoOptions): Promise<void> {
  const { ctx, log } = opts;
  const pollEnv = process.env.AMPSIGNAL_AMPLITUDE_POLL_MS;
  // The emulator's download job is ready after two polls; no need to wait Amplitude's 2 s between them.
  process.env.AMPSIGNAL_AMPLITUDE_POLL_MS = pollEnv ?? '50';
  const server = await buildServer({ ctx });
  let amplitude: AmplitudeEmulator | undefined;
  try {
    const base = await server.listen({ host: '127.0.0.1', port: 0 });
    const project = { apiKey: `amp-demo-${randomUUID().slice(0, 8)}`, secretKey: `amp-secret-${randomUUID()}` };
    log('== Cohorts from Amplitude: pull and push ==');
    const source = await addSource(ctx, {
      name: `Demo Amplitude project ${project.apiKey.slice(-8)}`,
      api_key: project.apiKey,
      secret_key: project.secretKey,
      api_url: 'http://127.0.0.1:9',
    });
    amplitude = await startAmplitudeEmulator({
      projects: [project],
      pollsBeforeReady: 2,
      redirectAbove: 100,
      webhookUrl: base + source.webhook_path,
      webhookHeaders: { authorization: `Bearer ${source.webhook_secret}` },
    });
    await updateSource(ctx, source.id, { api_url: amplitude.url });
    log(`Amplitude emulator at ${amplitude.url}; ampsignal hooks at ${base}`);
    log(
      `$ ampsignal source add amplitude --name "${source.name}" --api-key … --secret-key … --api-url ${amplitude.url}`,
    );
    log(`  source ${source.id}: budget ${source.download_budget} downloads a month`);
    log(
      `  Amplitude cohort webhook: POST ${base}${source.webhook_path}  Authorization: Bearer ${source.webhook_secret.slice(0, 6)}…\n`,
    );

    // 240 trial users (ids the OneSignal emulator knows, mostly) and 6 anonymous ones.
    const members = [
      ...Array.from({ length: 240 }, (_, i) => ({ user_id: `user_${i}`, properties: { plan: 'trial' } })),
      ...Array.from({ length: 6 }, (_, i) => ({ amplitude_id: 900_000 + i })),
    ];
    amplitude.cohorts.upsert({ id: 'trial_users', name: 'Trial users', members });
    // Amplitude's webhook already announces the new cohort; we store it and learn the cohort from it.
    await amplitude.webhooksIdle(30_000);
    await applyPendingWebhooks(ctx, { sourceId: source.id });

    const cohorts = await refreshSourceCohorts(ctx, source.id);
    log(`$ ampsignal cohort list --source ${source.id} --refresh`);
    for (const c of cohorts)
      log(
        `  ${c.id}  "${c.name}"  ${c.size} users  computed ${c.last_computed ? new Date(c.last_computed).toISOString() : '?'}`,
      );

    const dest = await addDestination(ctx, {
      name: `Demo OneSignal app for ${source.id}`,
      app_id: opts.oneSignal.appId,
      api_key: opts.oneSignal.apiKey,
      api_url: opts.oneSignal.url,
      source_id: source.id,
    });
    const sync = await createSync(ctx, { cohortId: 'trial_users', destinationId: dest.id, cadence: 'daily' });
    const planned = await plannedMonthlyDownloads(ctx, source.id);
    log(`$ ampsignal sync create --cohort trial_users --destination ${dest.id} --cadence daily`);
    log(
      `  sync ${sync.id}: tag ${sync.tag_key}; the source now plans ${planned.total} of its ${source.download_budget} downloads a month`,
    );
    try {
      await assertCadenceFitsBudget(ctx, source.id, 'hourly');
    } catch (e) {
      log(`  (an hourly sync would be refused: ${(e as Error).message.split('. ')[0]})`);
    }

    log(`\n$ ampsignal sync run ${sync.id}   # pull: request → poll → gzip CSV (302 to the file) → staging → ledger`);
    const pulled = await runSync(ctx, sync.id, { trigger: 'manual' });
    log(runLine(pulled));
    log(`  downloads this month: ${await downloadsThisMonth(ctx, source.id)} of ${source.download_budget}\n`);

    log('Membership changes in Amplitude: 12 users join, 20 leave; Amplitude pushes them to our webhook');
    const earlier = amplitude.webhookLog().length;
    amplitude.cohorts.addMembers(
      'trial_users',
      Array.from({ length: 12 }, (_, i) => ({ user_id: `user_${300 + i}` })),
    );
    amplitude.cohorts.removeMembers(
      'trial_users',
      Array.from({ length: 20 }, (_, i) => `user_${i}`),
    );
    await amplitude.webhooksIdle(30_000);
    const attempts = amplitude.webhookLog().slice(earlier);
    const ok = attempts.filter((a) => a.status === 200).length;
    log(`  ${attempts.length} webhook deliveries, ${ok} acknowledged with 200 (stored before the answer)`);
    const applied = await applyPendingWebhooks(ctx, { sourceId: source.id });
    let delivered = 0;
    for (const d of applied.destinationIds) delivered += (await deliverDestination(ctx, d)).delivered;
    log(`  applied ${applied.applied} messages to the ledger; delivered ${delivered} tag changes to OneSignal`);
    const confirmed = await ctx.store.db
      .selectFrom('ledger')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('sync_id', '=', sync.id)
      .where('confirmed', '=', 1)
      .executeTakeFirstOrThrow();
    log(`  OneSignal now tags ${Number(confirmed.n)} users with ${sync.tag_key} (no download spent on the deltas)\n`);
  } finally {
    await amplitude?.close();
    await server.close();
    if (pollEnv === undefined) delete process.env.AMPSIGNAL_AMPLITUDE_POLL_MS;
    else process.env.AMPSIGNAL_AMPLITUDE_POLL_MS = pollEnv;
  }
}
