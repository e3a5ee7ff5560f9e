import type { Children } from '@kitajs/html';
import { Layout, type NavKey, Notice } from './layout';

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
  children?: Children;
}): JSX.Element {
  return (
    <Layout title={p.title} nav={p.nav}>
      <h1 safe>{p.title}</h1>
      <Notice kind="alert" text={p.error} />
      <section class="card confirm">
        <form method="post" action={p.action}>
          {p.children}
          <input type="hidden" name="confirm" value="yes" />
          <div class="actions">
            <button type="submit" class={p.danger ? 'danger' : undefined} safe>
              {p.confirmLabel}
            </button>
            <a class="button secondary" href={p.cancelHref}>
              Cancel
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

export function Fact(p: { label: string; text?: string | number | null; children?: Children }): JSX.Element {
  return (
    <tr>
      <th scope="row" safe>
        {p.label}
      </th>
      <td>
        {p.children === undefined ? (
          <span safe>{p.text === null || p.text === undefined ? '—' : String(p.text)}</span>
        ) : (
          p.children
        )}
      </td>
    </tr>
  );
}
