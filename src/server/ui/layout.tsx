import type { Children } from '@kitajs/html';

/**
 * Shared page chrome and small components. Kita's JSX does NOT escape text children by default:
 * every dynamic text goes through an element with the `safe` attribute (attributes are escaped).
 */

export type NavKey =
  | 'overview'
  | 'sources'
  | 'destinations'
  | 'cohorts'
  | 'streams'
  | 'alerts'
  | 'configuration'
  | 'catalog'
  | 'none';

const NAV: Array<{ key: NavKey; href: string; label: string }> = [
  { key: 'overview', href: '/', label: 'Overview' },
  { key: 'sources', href: '/sources', label: 'Sources' },
  { key: 'destinations', href: '/destinations', label: 'Destinations' },
  { key: 'cohorts', href: '/cohorts', label: 'Cohorts' },
  { key: 'streams', href: '/streams', label: 'Streams' },
  { key: 'alerts', href: '/alerts', label: 'Alerts' },
  { key: 'configuration', href: '/configuration', label: 'Configuration' },
  { key: 'catalog', href: '/catalog', label: 'Catalog' },
];

export function Layout(p: { title: string; nav: NavKey; children?: Children; signedIn?: boolean }): JSX.Element {
  return (
    <>
      {'<!doctype html>'}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          {/* htmx's own indicator styles would be an inline <style>, which our CSP forbids. */}
          <meta name="htmx-config" content='{"includeIndicatorStyles":false}' />
          <title safe>{`${p.title} · ampsignal`}</title>
          <link rel="stylesheet" href="/assets/style.css" />
          <script src="/assets/htmx.min.js" defer></script>
          <script src="/assets/ui.js" defer></script>
        </head>
        <body>
          <header class="top">
            <a class="brand" href="/">
              ampsignal
            </a>
            {p.signedIn === false ? (
              ''
            ) : (
              <>
                <nav aria-label="Main">
                  <ul>
                    {NAV.map((n) => (
                      <li>
                        <a href={n.href} aria-current={n.key === p.nav ? 'page' : undefined}>
                          {n.label}
                        </a>
                      </li>
                    ))}
                  </ul>
                </nav>
                <form method="post" action="/logout">
                  <button type="submit" class="secondary">
                    Sign out
                  </button>
                </form>
              </>
            )}
          </header>
          <main>{p.children}</main>
        </body>
      </html>
    </>
  );
}

export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

export function Badge(p: { status: string }): JSX.Element {
  const cls = /^[a-z_]+$/.test(p.status) ? p.status : '';
  return (
    <span class={`badge ${cls}`} safe>
      {p.status}
    </span>
  );
}

export function Num(p: { n: number }): JSX.Element {
  return <td class="num">{String(p.n)}</td>;
}

export interface FieldProps {
  name: string;
  label: string;
  value?: string | undefined;
  error?: string | undefined;
  hint?: string | undefined;
  type?: string;
  required?: boolean;
  placeholder?: string;
  autocomplete?: string;
  step?: string;
}

export function Field(p: FieldProps): JSX.Element {
  const id = `f-${p.name}`;
  const describedBy = [p.hint ? `${id}-hint` : '', p.error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div class={p.error ? 'field invalid' : 'field'}>
      <label for={id} safe>
        {p.label}
      </label>
      <input
        id={id}
        name={p.name}
        type={p.type ?? 'text'}
        value={p.value}
        required={p.required}
        placeholder={p.placeholder}
        autocomplete={p.autocomplete}
        step={p.step}
        aria-invalid={p.error ? 'true' : undefined}
        aria-describedby={describedBy}
      />
      {p.hint ? (
        <small id={`${id}-hint`} safe>
          {p.hint}
        </small>
      ) : (
        ''
      )}
      {p.error ? (
        <p class="error" id={`${id}-error`} safe>
          {p.error}
        </p>
      ) : (
        ''
      )}
    </div>
  );
}

export function Notice(p: { text?: string | undefined; kind?: 'notice' | 'alert' }): JSX.Element {
  if (!p.text) return '';
  return (
    <p class={p.kind ?? 'notice'} role={p.kind === 'alert' ? 'alert' : 'status'} safe>
      {p.text}
    </p>
  );
}
export type Column = string | { label: string; num: true };

/** A table's header row; numeric columns are right-aligned like their cells. */
export function TableHead(p: { cols: Column[] }): JSX.Element {
  return (
    <thead>
      <tr>
        {p.cols.map((c) =>
          typeof c === 'string' ? (
            <th scope="col" safe>
              {c}
            </th>
          ) : (
            <th scope="col" class="num" safe>
              {c.label}
            </th>
          ),
        )}
      </tr>
    </thead>
  );
}
