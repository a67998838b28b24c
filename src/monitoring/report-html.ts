/**
 * A drift report as one self-contained HTML page: no scripts, no fonts, no network; inline CSS
 * and one inline SVG chart per column with the reference and current distributions overlaid.
 */
import type { Chart, ColumnDrift, DriftReport } from './drift.js';
import { P_VALUE_METHODS } from './drift.js';

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function fmt(x: number | null, digits = 4): string {
  if (x === null || Number.isNaN(x)) return '–';
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  const a = Math.abs(x);
  if (a < 1e-4 || a >= 1e6) return x.toExponential(2);
  return Number(x.toPrecision(digits)).toString();
}

const REF = '#4f6d8f';
const CUR = '#e8833a';
const W = 360;
const H = 150;
const PAD = { left: 36, right: 8, top: 8, bottom: 26 };

function chartSvg(chart: Chart, title: string): string {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const n = chart.kind === 'histogram' ? chart.reference.length : chart.categories.length;
  const max = Math.max(1e-12, ...chart.reference, ...chart.current);
  const y = (v: number): number => PAD.top + plotH - (v / max) * plotH;
  const slot = plotW / Math.max(n, 1);
  const parts: string[] = [];
  parts.push(`<svg class="chart" role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg">`);
  parts.push(`<title>${escapeHtml(title)}</title>`);
  for (const f of [0, 0.5, 1]) {
    const yy = y(max * f);
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${yy.toFixed(1)}" y2="${yy.toFixed(1)}" stroke="#e3e6ea" stroke-width="1"/>`);
    parts.push(`<text x="${PAD.left - 4}" y="${(yy + 3).toFixed(1)}" text-anchor="end" class="tick">${Math.round(max * f * 100)}%</text>`);
  }
  for (let i = 0; i < n; i++) {
    const x0 = PAD.left + i * slot;
    if (chart.kind === 'histogram') {
      // overlaid: both series span the full bin, current drawn translucent on top
      const r = chart.reference[i]!;
      const c = chart.current[i]!;
      parts.push(`<rect class="bar-ref" x="${(x0 + 0.5).toFixed(1)}" y="${y(r).toFixed(1)}" width="${Math.max(slot - 1, 0.5).toFixed(1)}" height="${(PAD.top + plotH - y(r)).toFixed(1)}" fill="${REF}" fill-opacity="0.55"/>`);
      parts.push(`<rect class="bar-cur" x="${(x0 + 0.5).toFixed(1)}" y="${y(c).toFixed(1)}" width="${Math.max(slot - 1, 0.5).toFixed(1)}" height="${(PAD.top + plotH - y(c)).toFixed(1)}" fill="${CUR}" fill-opacity="0.5"/>`);
    } else {
      const bw = Math.max(slot / 2 - 2, 1);
      const r = chart.reference[i]!;
      const c = chart.current[i]!;
      parts.push(`<rect class="bar-ref" x="${(x0 + 1).toFixed(1)}" y="${y(r).toFixed(1)}" width="${bw.toFixed(1)}" height="${(PAD.top + plotH - y(r)).toFixed(1)}" fill="${REF}"/>`);
      parts.push(`<rect class="bar-cur" x="${(x0 + 1 + bw).toFixed(1)}" y="${y(c).toFixed(1)}" width="${bw.toFixed(1)}" height="${(PAD.top + plotH - y(c)).toFixed(1)}" fill="${CUR}"/>`);
      if (n <= 12) {
        const label = chart.categories[i]!.length > 8 ? `${chart.categories[i]!.slice(0, 7)}…` : chart.categories[i]!;
        parts.push(`<text x="${(x0 + slot / 2).toFixed(1)}" y="${H - PAD.bottom + 12}" text-anchor="middle" class="tick">${escapeHtml(label)}</text>`);
      }
    }
  }
  parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${PAD.top + plotH}" y2="${PAD.top + plotH}" stroke="#8a929c" stroke-width="1"/>`);
  if (chart.kind === 'histogram') {
    const first = chart.edges[0]!;
    const last = chart.edges[chart.edges.length - 1]!;
    parts.push(`<text x="${PAD.left}" y="${H - 8}" class="tick">${escapeHtml(fmt(first))}</text>`);
    parts.push(`<text x="${W - PAD.right}" y="${H - 8}" text-anchor="end" class="tick">${escapeHtml(fmt(last))}</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

const SEVERITY_COLOUR: Record<string, string> = { none: '#2e7d32', small: '#b58900', moderate: '#d9640e', severe: '#c62828' };

function scoreLabel(c: ColumnDrift): string {
  return P_VALUE_METHODS.has(c.method) ? `p = ${fmt(c.adjustedPValue ?? c.score)}` : `${c.method} = ${fmt(c.score)}`;
}

function columnCard(c: ColumnDrift): string {
  const badge = c.drifted ? '<span class="badge drift">drift</span>' : '<span class="badge ok">stable</span>';
  const rule = P_VALUE_METHODS.has(c.method) ? `drift when p &lt; ${fmt(c.threshold)}` : `drift when ≥ ${fmt(c.threshold)}`;
  return `<section class="card${c.drifted ? ' drifted' : ''}" data-column="${escapeHtml(c.name)}">
<h3>${escapeHtml(c.name)} ${badge}</h3>
<p class="meta">${escapeHtml(c.role)} · ${c.kind} · ${escapeHtml(c.method)} · ${scoreLabel(c)} (${rule}) · PSI ${fmt(c.psi, 3)}</p>
${chartSvg(c.chart, `${c.name}: reference vs current`)}
</section>`;
}

export function renderDriftHtml(report: DriftReport, meta: { title?: string; model?: string; version?: number; reference?: string; current?: string } = {}): string {
  const d = report.decision;
  const title = meta.title ?? `Drift report${meta.model ? ` — ${meta.model}${meta.version !== undefined ? ` v${meta.version}` : ''}` : ''}`;
  const rows = report.columns
    .map(
      (c) => `<tr class="${c.drifted ? 'drifted' : ''}"><td>${escapeHtml(c.name)}</td><td>${c.role}</td><td>${c.kind}</td><td>${escapeHtml(c.method)}</td><td class="num">${fmt(c.score)}</td><td class="num">${fmt(c.adjustedPValue)}</td><td class="num">${fmt(c.threshold)}</td><td class="num">${fmt(c.psi, 3)}</td><td><span class="sev" style="color:${c.drifted ? SEVERITY_COLOUR[c.severity] : '#8a929c'}" title="PSI tier${c.drifted ? '' : '; the column\'s test did not flag drift, so it does not count'}">${c.severity}</span></td><td>${c.drifted ? '<span class="badge drift">drift</span>' : '<span class="badge ok">stable</span>'}</td></tr>`,
    )
    .join('\n');
  const ordered = [...report.columns].sort((a, b) => Number(b.drifted) - Number(a.drifted));
  const sources = [meta.reference ? `reference <b>${escapeHtml(meta.reference)}</b> (${report.referenceRows} rows)` : `reference ${report.referenceRows} rows`, meta.current ? `current <b>${escapeHtml(meta.current)}</b> (${report.currentRows} rows)` : `current ${report.currentRows} rows`].join(' · ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2329;margin:0;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}h3{font-size:14px;margin:0 0 2px}
.sub{color:#5b6570;margin:0 0 16px}
.decision{border-left:6px solid ${SEVERITY_COLOUR[d.severity]};background:#fff;padding:12px 16px;border-radius:6px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.decision .big{font-size:18px;font-weight:600}
table{border-collapse:collapse;width:100%;background:#fff;border-radius:6px;overflow:hidden;box-shadow:0 1px 2px rgba(0,0,0,.06)}
th,td{padding:5px 9px;border-bottom:1px solid #eceef1;text-align:left;white-space:nowrap}th{background:#eef1f4;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr.drifted td{background:#fff4ec}
.badge{display:inline-block;font-size:11px;font-weight:600;padding:1px 7px;border-radius:9px;vertical-align:middle}
.badge.drift{background:#fde0cc;color:#a3410b}.badge.ok{background:#dcefdc;color:#2e6b30}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.card{background:#fff;border-radius:6px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.06)}.card.drifted{outline:2px solid #f3b48a}
.meta{color:#5b6570;font-size:12px;margin:0 0 6px}
.chart .tick{font-size:10px;fill:#5b6570}
.legend span{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-2px;margin:0 4px 0 12px}
</style></head>
<body><main>
<h1>${escapeHtml(title)}</h1>
<p class="sub">${sources} · ${escapeHtml(report.createdAt)}</p>
<div class="decision" id="decision">
<div class="big">${report.dataset.drifted ? 'Data-set drift detected' : 'No data-set drift'} — severity <span style="color:${SEVERITY_COLOUR[d.severity]}">${d.severity}</span>, action <b>${d.action}</b></div>
<div>${report.dataset.driftedColumns.length} of ${report.dataset.inputs} input columns drifted (share ${fmt(report.dataset.share, 3)}, threshold ${fmt(report.dataset.threshold)}${report.dataset.correction !== 'none' ? `, ${report.dataset.correction} correction` : ''})${d.driftedColumns.length ? `: ${d.driftedColumns.map(escapeHtml).join(', ')}` : ''}</div>
${d.reasons.length ? `<ul>${d.reasons.map((r) => `<li>${escapeHtml(r)}</li>`).join('')}</ul>` : ''}
</div>
<h2>Columns</h2>
<table id="summary"><thead><tr><th>column</th><th>role</th><th>kind</th><th>method</th><th>score</th><th>p-value</th><th>threshold</th><th>PSI</th><th>severity</th><th></th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Distributions <span class="legend"><span style="background:${REF};opacity:.7"></span>reference<span style="background:${CUR};opacity:.7"></span>current</span></h2>
<div class="grid" id="charts">
${ordered.map(columnCard).join('\n')}
</div>
</main></body></html>
`;
}
