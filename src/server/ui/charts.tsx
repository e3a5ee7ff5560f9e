/**
 * Server-rendered SVG charts: no script and no inline style (the CSP allows neither), colours
 * come from classes in the stylesheet. Each chart carries a text summary for screen readers
 * and a legend with the figures, so nothing is only in the picture.
 */

const fmt = (n: number) => n.toLocaleString('en-US');

export interface OutcomeCounts {
  delivered: number;
  not_found: number;
  failed: number;
  pending: number;
}

const OUTCOMES = [
  ['delivered', 'Delivered'],
  ['not_found', 'Not in OneSignal'],
  ['failed', 'Failed'],
  ['pending', 'Pending'],
] as const;

/** A run's changes by outcome, as one stacked bar: delivered, not found, failed, pending. */
export function OutcomeBar(p: { counts: OutcomeCounts }): JSX.Element {
  const total = OUTCOMES.reduce((t, [k]) => t + p.counts[k], 0);
  const summary =
    total === 0
      ? 'No changes to deliver'
      : `${OUTCOMES.map(([k, label]) => `${label} ${fmt(p.counts[k])}`).join(', ')} of ${fmt(total)} changes`;
  let x = 0;
  return (
    <figure class="outcome" aria-label="Outcome of the run's changes">
      <svg
        class="outcome-bar"
        viewBox="0 0 1000 28"
        preserveAspectRatio="none"
        width="100%"
        height="28"
        role="img"
        aria-label={summary}
      >
        <rect class="o-empty" x="0" y="0" width="1000" height="28" />
        {total === 0
          ? ''
          : OUTCOMES.map(([k]) => {
              const w = (p.counts[k] / total) * 1000;
              const rect =
                w > 0 ? <rect class={`o-${k}`} x={x.toFixed(2)} y="0" width={w.toFixed(2)} height="28" /> : '';
              x += w;
              return rect;
            })}
      </svg>
      <figcaption>
        <ul class="legend">
          {OUTCOMES.map(([k, label]) => (
            <li>
              <span class={`swatch o-${k}`}></span>
              <span
                safe
              >{`${label}: ${fmt(p.counts[k])}${total ? ` (${((p.counts[k] / total) * 100).toFixed(1)}%)` : ''}`}</span>
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}

export interface Series {
  label: string;
  /** Stylesheet class giving the colour: s-members, s-added, s-removed, s-received, s-forwarded. */
  cls: string;
  values: number[];
  kind: 'bar' | 'line';
  /** A level (members at each run), not a count per step: a sum of it means nothing, its peak does. */
  level?: boolean;
}

const W = 1000;
const H = 220;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

function niceMax(n: number): number {
  if (n <= 5) return 5;
  const pow = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= n) return m * pow;
  return 10 * pow;
}

/**
 * Series over the same x positions (runs, minutes): bars side by side per position, lines on
 * top; y from 0 to a round maximum with three grid lines; x labelled at a few positions.
 */
export function SeriesChart(p: { title: string; xLabels: string[]; series: Series[]; empty: string }): JSX.Element {
  const n = p.xLabels.length;
  if (n === 0)
    return (
      <p class="muted" safe>
        {p.empty}
      </p>
    );
  const max = niceMax(Math.max(0, ...p.series.flatMap((s) => s.values)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / n;
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const bars = p.series.filter((s) => s.kind === 'bar');
  const barW = (step * 0.8) / Math.max(1, bars.length);
  const labelEvery = Math.max(1, Math.ceil(n / 8));
  const totals = p.series.map((s) =>
    s.level
      ? `${s.label}: last ${fmt(s.values[n - 1] ?? 0)}, at most ${fmt(Math.max(0, ...s.values))}`
      : `${s.label}: ${fmt(s.values.reduce((a, b) => a + b, 0))} in all, last ${fmt(s.values[n - 1] ?? 0)}`,
  );
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label={`${p.title}. ${totals.join('; ')}`}>
        {[0, 0.5, 1].map((f) => (
          <g>
            <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={y(max * f)} y2={y(max * f)} />
            <text class="axis" x={PAD.left - 6} y={y(max * f) + 4} text-anchor="end">
              {fmt(max * f)}
            </text>
          </g>
        ))}
        {bars.map((s, bi) =>
          s.values.map((v, i) => (
            <rect
              class={s.cls}
              x={(PAD.left + i * step + step * 0.1 + bi * barW).toFixed(2)}
              y={y(v).toFixed(2)}
              width={barW.toFixed(2)}
              height={(PAD.top + plotH - y(v)).toFixed(2)}
            >
              <title safe>{`${p.xLabels[i]}: ${s.label} ${fmt(v)}`}</title>
            </rect>
          )),
        )}
        {p.series
          .filter((s) => s.kind === 'line')
          .map((s) => (
            <polyline
              class={`line ${s.cls}`}
              points={s.values
                .map((v, i) => `${(PAD.left + (i + 0.5) * step).toFixed(2)},${y(v).toFixed(2)}`)
                .join(' ')}
            />
          ))}
        {p.xLabels.map((l, i) =>
          i % labelEvery === 0 || i === n - 1 ? (
            <text class="axis" x={(PAD.left + (i + 0.5) * step).toFixed(2)} y={H - 8} text-anchor="middle" safe>
              {l}
            </text>
          ) : (
            ''
          ),
        )}
      </svg>
      <figcaption>
        <ul class="legend">
          {p.series.map((s, i) => (
            <li>
              <span class={`swatch ${s.cls}`}></span>
              <span safe>{totals[i]}</span>
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}
