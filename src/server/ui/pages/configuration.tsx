import type { ConfigApplyView, ConfigPlanView } from '../../../app/config-server';
import { Layout, TableHead } from '../layout';
import { ConfirmPage } from '../parts';

/** Configuration as code: the current file (to read or download), and a pasted file's plan and apply. */

type PlanItem = ConfigPlanView['items'][number];

const ACTION_LABEL = { create: 'create', update: 'change', delete: 'delete' } as const;

function changeText(item: PlanItem, c: PlanItem['changes'][number]): string {
  if (c.secret) return `${c.field}: ${item.action === 'create' ? 'from' : 'changed, now from'} ${c.to}`;
  if (item.action === 'create') return `${c.field}: ${c.to ?? '(none)'}`;
  return `${c.field}: ${c.from ?? '(none)'} → ${c.to ?? '(none)'}`;
}

/** The plan as a table: one row per object, its changed fields listed, deletes with what they do. */
export function PlanTable(p: { plan: ConfigPlanView }): JSX.Element {
  const { plan } = p;
  if (!plan.items.length) return '';
  return (
    <div class="table-wrap">
      <table class="plan">
        <TableHead cols={['Change', 'Object', 'Line', 'Fields']} />
        <tbody>
          {plan.items.map((i) => {
            const kept = i.action === 'delete' && !plan.prune;
            return (
              <tr>
                <td>
                  <span class={`badge ${kept ? 'held' : i.action === 'delete' ? 'failed' : 'completed'}`} safe>
                    {kept ? 'kept (not in the file)' : ACTION_LABEL[i.action]}
                  </span>
                </td>
                <td safe>{`${i.kind} "${i.name}"${i.id ? ` (${i.id})` : ''}`}</td>
                <td class="num" safe>
                  {i.line === null ? '—' : String(i.line)}
                </td>
                <td>
                  <ul class="changes">
                    {i.changes.map((c) => (
                      <li safe>{changeText(i, c)}</li>
                    ))}
                    {i.note ? (
                      <li class="muted" safe>
                        {i.note}
                      </li>
                    ) : (
                      ''
                    )}
                    {i.blocked ? (
                      <li class="error" safe>
                        {`cannot apply: ${i.blocked}`}
                      </li>
                    ) : (
                      ''
                    )}
                  </ul>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** The YAML and prune choice, carried from one step to the next. */
function Carried(p: { yaml: string; prune: boolean }): JSX.Element {
  return (
    <>
      <input type="hidden" name="yaml" value={p.yaml} />
      {p.prune ? <input type="hidden" name="prune" value="true" /> : ''}
    </>
  );
}

function Result(p: { result: ConfigApplyView }): JSX.Element {
  const r = p.result;
  return (
    <section class="card" aria-labelledby="result-h">
      <h2 id="result-h">Applied</h2>
      <p class="result ok" role="status" safe>
        {r.message}
      </p>
      {r.applied.length ? (
        <ul>
          {r.applied.map((a) => (
            <li
              safe
            >{`${ACTION_LABEL[a.action]}d ${a.kind} "${a.name}" (${a.id})${a.message ? `: ${a.message}` : ''}`}</li>
          ))}
        </ul>
      ) : (
        ''
      )}
    </section>
  );
}

function PlanSection(p: { plan: ConfigPlanView; yaml: string; prune: boolean }): JSX.Element {
  const { plan } = p;
  const s = plan.summary;
  const changes = s.create + s.update + s.delete;
  return (
    <section class="card" aria-labelledby="plan-h">
      <h2 id="plan-h">Plan</h2>
      <p role="status" safe>
        {plan.lines.at(-1) ?? ''}
      </p>
      <PlanTable plan={plan} />
      {s.blocked ? (
        <p class="error" safe>{`${s.blocked} change(s) cannot be applied: apply refuses this plan.`}</p>
      ) : changes ? (
        <form method="post" action="/configuration/apply" class="actions">
          <Carried yaml={p.yaml} prune={p.prune} />
          <button type="submit">Apply…</button>
        </form>
      ) : (
        ''
      )}
    </section>
  );
}

export function ConfigurationPage(p: {
  exported: string;
  yaml?: string;
  prune?: boolean;
  plan?: ConfigPlanView;
  result?: ConfigApplyView;
  error?: string;
}): JSX.Element {
  return (
    <Layout title="Configuration" nav="configuration">
      <h1>Configuration</h1>
      {p.error ? (
        <div class="alert" role="alert">
          {p.error.split('\n').map((line) => (
            <p class="error" safe>
              {line}
            </p>
          ))}
        </div>
      ) : (
        ''
      )}
      {p.result ? <Result result={p.result} /> : ''}
      {p.plan && !p.result ? <PlanSection plan={p.plan} yaml={p.yaml ?? ''} prune={p.prune === true} /> : ''}
      <section class="card" aria-labelledby="paste-h">
        <h2 id="paste-h">Plan a file</h2>
        <p class="muted">
          Paste an ampsignal.yaml (the file of <code>ampsignal plan -f</code>). Each <code>{`\${VARIABLE}`}</code> is
          read from the server's environment (never its own AMPSIGNAL_* settings); keys are never shown.
        </p>
        <form method="post" action="/configuration/plan" class="stack wide">
          <div class="field">
            <label for="f-yaml">Configuration file (YAML)</label>
            <textarea id="f-yaml" name="yaml" rows="16" spellcheck="false" class="code" safe>
              {p.yaml ?? ''}
            </textarea>
          </div>
          <label class="choice">
            <input type="checkbox" name="prune" value="true" checked={p.prune === true} />
            <span>Prune: also delete what the file does not list (a sync's tags are removed at OneSignal)</span>
          </label>
          <div class="actions">
            <button type="submit">Plan</button>
          </div>
        </form>
      </section>
      <section class="card" aria-labelledby="current-h">
        <h2 id="current-h">Current configuration</h2>
        <p>
          <a href="/configuration/ampsignal.yaml" download="ampsignal.yaml">
            Download ampsignal.yaml
          </a>{' '}
          <span class="muted">(keys as references; set them in the environment before apply)</span>
        </p>
        <pre id="current-yaml" class="wrap" safe>
          {p.exported}
        </pre>
      </section>
    </Layout>
  );
}

/** Apply's second step: what will happen, and only this page's button applies. */
export function ConfirmApplyPage(p: { plan: ConfigPlanView; yaml: string; prune: boolean }): JSX.Element {
  const s = p.plan.summary;
  return (
    <ConfirmPage
      title="Apply this configuration?"
      nav="configuration"
      action="/configuration/apply"
      confirmLabel="Apply configuration"
      cancelHref="/configuration"
      danger={s.delete > 0}
    >
      <p safe>{`${s.create} to create, ${s.update} to change, ${s.delete} to delete.`}</p>
      {s.delete ? <p class="error">Deleting a sync removes its tag from every user at OneSignal.</p> : ''}
      <PlanTable plan={p.plan} />
      <Carried yaml={p.yaml} prune={p.prune} />
    </ConfirmPage>
  );
}
