import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { configYaml } from '../helpers/config-yaml';
import { describeEachDialect } from '../helpers/db';
import { runCli } from './proc';

const AMP = { apiKey: `amp-cli-config-${crypto.randomUUID()}`, secretKey: `amp-cli-secret-${crypto.randomUUID()}` };
const OS = { appId: crypto.randomUUID(), apiKey: `os-cli-config-${crypto.randomUUID()}` };
const ENV = { AMP_API_KEY: AMP.apiKey, AMP_SECRET_KEY: AMP.secretKey, ONESIGNAL_KEY: OS.apiKey };
const SLOW = 120_000;

let amplitude: AmplitudeEmulator;
let onesignal: OneSignalEmulator;
let dir: string;

function fileText(cadence = 'manual'): string {
  return configYaml({
    amplitudeUrl: amplitude.url,
    onesignalUrl: onesignal.url,
    appId: OS.appId,
    vars: { ampKey: 'AMP_API_KEY', ampSecret: 'AMP_SECRET_KEY', osKey: 'ONESIGNAL_KEY' },
    cohort: 'coh_cli_cfg',
    cadence,
  });
}

describeEachDialect('ampsignal plan / apply / export', (db) => {
  beforeAll(async () => {
    amplitude = await startAmplitudeEmulator({ projects: [AMP] });
    onesignal = await startOneSignalEmulator({ apps: [OS] });
    amplitude.cohorts.upsert({ id: 'coh_cli_cfg', name: 'CLI cohort', members: [{ user_id: 'u1' }] });
    dir = await mkdtemp(join(tmpdir(), 'ampsignal-config-'));
  });
  afterAll(async () => {
    await amplitude?.close();
    await onesignal?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    'plan lists creates, apply creates, apply again changes nothing; no key is printed; export round-trips',
    async () => {
      const { url } = db();
      const file = join(dir, 'ampsignal.yaml');
      await writeFile(file, fileText());
      const plan = await runCli(['--db', url, 'plan', '-f', file], ENV, SLOW);
      expect(plan.stderr).toBe('');
      expect(plan.code).toBe(0);
      expect(plan.stdout).toContain('+ source "Production"');
      expect(plan.stdout).toContain('+ sync "coh_cli_cfg → Main app"');
      expect(plan.stdout).toContain('api_key: from ${ONESIGNAL_KEY}');
      expect(plan.stdout).toContain('Plan: 3 to create, 0 to change, 0 to delete.');

      const apply = await runCli(['--db', url, 'apply', '-f', file], ENV, SLOW);
      expect(apply.stderr).toBe('');
      expect(apply.code).toBe(0);
      expect(apply.stdout).toContain('Applied ampsignal.yaml: 3 created, 0 changed, 0 deleted');
      const again = await runCli(['--db', url, 'apply', '-f', file], ENV, SLOW);
      expect(again.stdout.trim()).toBe('No changes: the database already matches ampsignal.yaml');

      await writeFile(file, fileText('weekly'));
      const bad = await runCli(['--db', url, 'plan', '-f', file], ENV, SLOW);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^ampsignal: ampsignal\.yaml:16: syncs\[0\]\.cadence: .*must be one of/);

      const exported = join(dir, 'exported.yaml');
      const exp = await runCli(['--db', url, 'export', '-o', exported], {}, SLOW);
      expect(exp.code).toBe(0);
      const text = await readFile(exported, 'utf8');
      const replan = await runCli(
        ['--db', url, 'plan', '-f', exported],
        {
          SOURCE_PRODUCTION_API_KEY: AMP.apiKey,
          SOURCE_PRODUCTION_SECRET_KEY: AMP.secretKey,
          DESTINATION_MAIN_APP_API_KEY: OS.apiKey,
        },
        SLOW,
      );
      expect(replan.stdout.trim()).toBe('No changes: the database matches exported.yaml.');
      for (const out of [plan.stdout, apply.stdout, again.stdout, bad.stderr, text, replan.stdout])
        for (const secret of Object.values(ENV)) expect(out).not.toContain(secret);
    },
    SLOW * 3,
  );
});
