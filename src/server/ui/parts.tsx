import type { Children } from '@kitajs/html';
import { Badge, Field, type FieldProps, Layout, type NavKey, Notice } from './layout';

/** Components shared by several pages: copyable values, selects, confirmation pages. */

/** A value to paste elsewhere (a webhook URL, a secret), with a button that copies it. */
export function CopyField(p: { id: string; label: string; value: string; hint?: string }): JSX.Element {
  return (
    <div class="copy-field">
      <span class="copy-label" id={`${p.id}-label`} safe>
        {p.label}
      </span>
      <div class="copy-row">
        <code id={p.id} safe>
          {p.value}
        </code>
        <button type="button" class="secondary small" data-copy={p.id} aria-label={`Copy ${p.label}`}>
          Copy
        </button>
      </div>
      {p.hint ? (
        <small class="muted" safe>
          {p.hint}
        </small>
      ) : (
        ''
      )}
    </div>
  );
}

export function SelectField(p: {
  name: string;
  label: string;
  options: ReadonlyArray<string | { value: string; label: string }>;
  value?: string | undefined;
  error?: string | undefined;
  hint?: string | undefined;
}): JSX.Element {
  const id = `f-${p.name}`;
  return (
    <div class={p.error ? 'field invalid' : 'field'}>
      <label for={id} safe>
        {p.label}
      </label>
      <select id={id} name={p.name} aria-invalid={p.error ? 'true' : undefined}>
        {p.options.map((o) => {
          const v = typeof o === 'string' ? o : o.value;
          return (
            <option value={v} selected={v === p.value} safe>
              {typeof o === 'string' ? o : o.label}
            </option>
          );
        })}
      </select>
      {p.hint ? <small safe>{p.hint}</small> : ''}
      {p.error ? (
        <p class="error" safe>
          {p.error}
        </p>
      ) : (
        ''
      )}
    </div>
  );
}

/**
 * The second step of every destructive or irreversible action: the page says what will happen,
 * and only its own button posts the action (nothing destructive happens on one click).
 */
export function ConfirmPage(p: {
  title: string;
  nav: NavKey;
  action: string;
  confirmLabel: string;
  cancelHref: string;
  danger?: boolean;
  error?: string | undefined;
  /** Why the action cannot be done now: the page says so, and offers no button that would be refused. */
  refusal?: string | undefined;
  children?: Children;
}): JSX.Element {
  return (
    <Layout title={p.title} nav={p.nav}>
      <h1 safe>{p.title}</h1>
      <Notice kind="alert" text={p.error ?? p.refusal} />
      <section class="card confirm">
        <form method="post" action={p.action}>
          {p.children}
          <input type="hidden" name="confirm" value="yes" />
          <div class="actions">
            {p.refusal ? (
              ''
            ) : (
              <button type="submit" class={p.danger ? 'danger' : undefined} safe>
                {p.confirmLabel}
              </button>
            )}
            <a class="button secondary" href={p.cancelHref}>
              {p.refusal ? 'Back' : 'Cancel'}
            </a>
          </div>
        </form>
      </section>
    </Layout>
  );
}

/** A details table of label → value rows: `text` is escaped; `children` is markup the caller built. */
export function Facts(p: { children?: Children }): JSX.Element {
  return (
    <table class="facts">
      <tbody>{p.children}</tbody>
    </table>
  );
}

export function Fact(p: {
  label: string;
  text?: string | number | null;
  /** An identifier or a key: shown as code. */
  code?: string;
  children?: Children;
}): JSX.Element {
  return (
    <tr>
      <th scope="row" safe>
        {p.label}
      </th>
      <td>
        {p.code !== undefined ? (
          <code safe>{p.code}</code>
        ) : p.children === undefined ? (
          <span safe>{p.text === null || p.text === undefined ? '—' : String(p.text)}</span>
        ) : (
          p.children
        )}
      </td>
    </tr>
  );
}

/** A form that posts one action with one button (pause, resume, run, forward). */
export function PostButton(p: {
  action: string;
  label: string;
  secondary?: boolean;
  fields?: Record<string, string>;
}): JSX.Element {
  return (
    <form method="post" action={p.action}>
      {Object.entries(p.fields ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button type="submit" class={p.secondary ? 'secondary' : undefined} safe>
        {p.label}
      </button>
    </form>
  );
}

/** The settings card of an object's page: its edit form, saved with one button. */
export function SettingsCard(p: { action: string; children?: Children }): JSX.Element {
  return (
    <section class="card" aria-labelledby="settings-title">
      <h2 id="settings-title">Settings</h2>
      <form class="stack" method="post" action={p.action} novalidate>
        {p.children}
        <div class="actions">
          <button type="submit">Save changes</button>
        </div>
      </form>
    </section>
  );
}

/** The last card of an object's page: what deleting does (`children`), and the way to the confirmation step. */
export function DangerZone(p: { noun: string; href: string; children?: Children }): JSX.Element {
  return (
    <section class="card danger-zone" aria-labelledby="delete-title">
      <h2 id="delete-title">Delete</h2>
      {p.children}
      <a class="button danger" href={p.href} safe>
        {`Delete ${p.noun}…`}
      </a>
    </section>
  );
}

/** "Test connection", answered in place (htmx) into the TestSlot of the same page; `include` sends the form around it. */
export function TestButton(p: { action: string; include?: boolean }): JSX.Element {
  return (
    <>
      <button
        type="button"
        class="secondary"
        hx-post={p.action}
        hx-include={p.include ? 'closest form' : undefined}
        hx-target="#test-result"
        hx-swap="innerHTML"
      >
        Test connection
      </button>
      <span class="htmx-indicator muted">testing…</span>
    </>
  );
}

export function TestSlot(): JSX.Element {
  return <div id="test-result" aria-live="polite"></div>;
}

/** A credential input: never filled in, never remembered by the browser. */
export function SecretField(p: {
  name: string;
  label: string;
  error?: string | undefined;
  hint?: string | undefined;
  required?: boolean;
}): JSX.Element {
  return (
    <Field
      name={p.name}
      label={p.label}
      type="password"
      autocomplete="off"
      error={p.error}
      hint={p.hint}
      required={p.required ?? false}
    />
  );
}

/** A list row's first cell: the name (a link to its page) over its id. */
export function NameCell(p: { name: string; id: string; href?: string | undefined }): JSX.Element {
  return (
    <td>
      {p.href ? (
        <a href={p.href} safe>
          {p.name}
        </a>
      ) : (
        <span safe>{p.name}</span>
      )}
      <br />
      <code class="muted" safe>
        {p.id}
      </code>
    </td>
  );
}

/** A status badge with the reason it was set, if any. */
export function StatusReason(p: { status: string; reason?: string | null | undefined }): JSX.Element {
  return (
    <>
      <Badge status={p.status} />
      {p.reason ? <span class="muted" safe>{` ${p.reason}`}</span> : ''}
    </>
  );
}

/** An object's page: its title, the way back to its list, and what the last action said. */
export function ObjectPage(p: {
  title: string;
  heading: string;
  nav: NavKey;
  back?: { href: string; label: string };
  notice?: string | undefined;
  error?: string | undefined;
  children?: Children;
}): JSX.Element {
  return (
    <Layout title={p.title} nav={p.nav}>
      <h1 safe>{p.heading}</h1>
      {p.back ? (
        <p>
          <a href={p.back.href} safe>{`← ${p.back.label}`}</a>
        </p>
      ) : (
        ''
      )}
      <Notice text={p.notice} />
      <Notice kind="alert" text={p.error} />
      {p.children}
    </Layout>
  );
}

/**
 * A page that is one form creating something: the refusal no field owns above it, a short intro,
 * the fields, then `actions` (e.g. a connection test), the submit button, a way back, and `footer`.
 */
export function FormPage(p: {
  title: string;
  nav: NavKey;
  action: string;
  submit: string;
  formError?: string | undefined;
  intro?: Children;
  label?: string;
  actions?: Children;
  cancelHref?: string;
  footer?: Children;
  children?: Children;
}): JSX.Element {
  return (
    <Layout title={p.title} nav={p.nav}>
      <h1 safe>{p.title}</h1>
      <Notice kind="alert" text={p.formError} />
      <section class="card">
        {p.intro ?? ''}
        <form class="stack" method="post" action={p.action} novalidate aria-label={p.label}>
          {p.children}
          <div class="actions">
            {p.actions ?? ''}
            <button type="submit" safe>
              {p.submit}
            </button>
            {p.cancelHref ? (
              <a class="button secondary" href={p.cancelHref}>
                Cancel
              </a>
            ) : (
              ''
            )}
          </div>
          {p.footer ?? ''}
        </form>
      </section>
    </Layout>
  );
}

/**
 * One form's fields bound to its values and errors, so each field names its key once:
 * `const f = formFields(values, errors)` then `<f.Input name="budget" label="…" initial="500" />`
 * (`initial`: shown while the form has no value of its own).
 */
export function formFields(values: object, errors: Record<string, string>) {
  const value = (name: string, initial?: string) => (values as Record<string, string | undefined>)[name] ?? initial;
  return {
    Input: ({ initial, ...p }: Omit<FieldProps, 'value' | 'error'> & { initial?: string }) => (
      <Field {...p} value={value(p.name, initial)} error={errors[p.name]} />
    ),
    Select: ({ initial, ...p }: Omit<Parameters<typeof SelectField>[0], 'value' | 'error'> & { initial?: string }) => (
      <SelectField {...p} value={value(p.name, initial)} error={errors[p.name]} />
    ),
    Secret: (p: Omit<Parameters<typeof SecretField>[0], 'error'>) => <SecretField {...p} error={errors[p.name]} />,
  };
}
