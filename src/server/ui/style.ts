/** The UI's whole stylesheet: small, hand-written, served at /assets/style.css (CSP: no inline styles). */
export const STYLESHEET = `
:root{--fg:#1c2430;--muted:#5b6777;--bg:#f6f7f9;--card:#fff;--line:#dde2e8;--accent:#3b5bdb;--ok:#237a3b;--bad:#b42318;--warn:#9a6700;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);line-height:1.45}
*{box-sizing:border-box}
body{margin:0}
a{color:var(--accent)}
header.top{background:#141b2d;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.5rem;align-items:center;flex-wrap:wrap}
header.top .brand{font-weight:700;letter-spacing:.02em;color:#fff;text-decoration:none;font-size:1.1rem}
header.top nav ul{list-style:none;display:flex;gap:1rem;margin:0;padding:0;flex-wrap:wrap}
header.top nav a{color:#c9d3ff;text-decoration:none;padding:.2rem .1rem}
header.top nav a[aria-current=page]{color:#fff;border-bottom:2px solid #fff}
header.top form{margin-left:auto}
main{max-width:1100px;margin:0 auto;padding:1.25rem 1.5rem 3rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .6rem}
.card > h2:first-child{margin-top:.2rem}
section.card,.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.25rem;margin-bottom:1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:1rem}
table{border-collapse:collapse;width:100%;background:var(--card);font-size:.92rem}
th,td{border-bottom:1px solid var(--line);padding:.45rem .6rem;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;font-weight:600;background:#e7eaf0}
.badge.completed,.badge.active,.badge.ok{background:#dcf3e3;color:var(--ok)}
.badge.failed,.badge.paused,.badge.rejected{background:#fde4e1;color:var(--bad)}
.badge.held,.badge.running,.badge.not_found,.badge.dry_run{background:#fff3cd;color:var(--warn)}
form.stack{display:grid;gap:.9rem;max-width:560px}
.field{display:grid;gap:.25rem;min-width:0}
.field input,.field select,.field textarea{max-width:100%;min-width:0}
.field label{font-weight:600}
.field small{color:var(--muted)}
input,select,button{font:inherit}
input,select{padding:.45rem .55rem;border:1px solid #b8c0cc;border-radius:6px;background:#fff}
.invalid input,.invalid select{border-color:var(--bad)}
.error{color:var(--bad);margin:0;font-size:.9rem}
button,.button{display:inline-block;padding:.45rem .9rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer;text-decoration:none}
button.secondary,.button.secondary{background:#fff;color:var(--accent)}
button.danger{background:var(--bad);border-color:var(--bad)}
.actions{display:flex;gap:.6rem;align-items:center;flex-wrap:wrap}
.inline-form{display:flex;gap:.5rem;align-items:end;flex-wrap:wrap}
.inline-form .field{min-width:150px}
td.row-actions .button{margin:0 .3rem .3rem 0}
.result{margin:.25rem 0 0;padding:.5rem .75rem;border-radius:6px}
.result.ok{background:#dcf3e3;color:var(--ok)}
.result.bad{background:#fde4e1;color:var(--bad)}
.notice{background:#e8eefc;border:1px solid #c5d3f6;padding:.6rem .9rem;border-radius:6px;margin-bottom:1rem}
.alert{background:#fde4e1;border:1px solid #f4b9b2;padding:.6rem .9rem;border-radius:6px;margin-bottom:1rem;color:var(--bad)}
dl.counters{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:.6rem;margin:0 0 1rem}
.card .actions{margin-top:.75rem}
dl.counters div{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.5rem .7rem}
dl.counters dt{font-size:.8rem;color:var(--muted)}
dl.counters dd{margin:0;font-size:1.35rem;font-weight:650;font-variant-numeric:tabular-nums}
code{background:#eef1f5;padding:.05rem .3rem;border-radius:4px;font-size:.88em}
td code,td.wrap{overflow-wrap:anywhere}
.table-wrap{overflow-x:auto;max-width:100%;margin-bottom:1rem}
main > table{margin-bottom:1rem}
.card table{margin:.25rem 0}
table.facts{width:auto;min-width:50%}
table.facts th{background:none;width:14rem;color:var(--muted);font-weight:600}
.copy-field,#webhook-secret{display:grid;gap:.25rem;margin:.75rem 0}
.copy-label{font-weight:600}
.copy-row{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
.copy-row code{font-size:.9rem;padding:.35rem .5rem;overflow-wrap:anywhere;max-width:100%}
button.small,.button.small{padding:.2rem .6rem;font-size:.85rem}
.confirm ul{margin:.25rem 0 1rem}
fieldset{border:1px solid var(--line);border-radius:6px;padding:.5rem .9rem;margin:0 0 1rem}
legend{font-weight:600;padding:0 .3rem}
label.choice{display:flex;gap:.5rem;align-items:baseline;margin:.3rem 0}
.danger-zone{border-color:#f4b9b2}
.button.danger{background:var(--bad);border-color:var(--bad);color:#fff}
textarea{font:inherit;padding:.45rem .55rem;border:1px solid #b8c0cc;border-radius:6px}
pre{background:#eef1f5;padding:.6rem .8rem;border-radius:6px;overflow:auto;max-height:28rem;font-size:.82rem}
details summary{cursor:pointer;font-weight:600;margin:.5rem 0}
figure{margin:.5rem 0 1rem}
.outcome-bar{display:block;border-radius:6px;overflow:hidden}
.chart svg{display:block;background:var(--card);border:1px solid var(--line);border-radius:8px;height:auto}
ul.legend{list-style:none;display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;margin:.4rem 0 0;padding:0;font-size:.88rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.35rem;vertical-align:-1px;background:currentColor}
.o-empty{fill:#e7eaf0}
.o-delivered,.s-added,.s-forwarded{fill:#2f9e55;color:#2f9e55;stroke:#2f9e55}
.o-not_found{fill:#e0a100;color:#e0a100}
.o-failed,.s-removed{fill:#d64532;color:#d64532;stroke:#d64532}
.o-pending{fill:#9aa5b4;color:#9aa5b4}
.s-members,.s-received{fill:#3b5bdb;color:#3b5bdb;stroke:#3b5bdb}
polyline.line{fill:none;stroke-width:2.5}
line.grid{stroke:var(--line);stroke-width:1}
text.axis{fill:var(--muted);font-size:13px;font-family:inherit}
.htmx-request.htmx-indicator,.htmx-request .htmx-indicator{display:inline}
.htmx-indicator{display:none}
form.stack fieldset{border:1px solid var(--line);border-radius:6px;padding:.6rem .9rem;display:grid;gap:.7rem}
form.stack legend{font-weight:600;padding:0 .3rem}
.big{font-size:1.2rem;font-weight:650}
form.stack.wide{max-width:none}
textarea.code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem;width:100%}
ul.changes{margin:0;padding-left:1rem;overflow-wrap:anywhere}
pre.wrap{white-space:pre-wrap;overflow-wrap:anywhere}
`;
