#!/usr/bin/env node
// Prints the Markdown table of bench/proxy-bench or bench/budget-proxy-bench from the lines
// their rounds wrote ("name rps p50_us p99_us requests cpu_ticks cpu_us_per_request", one per
// target and round): for each target the median over the rounds of requests/s, p50, p99 and
// the proxy's CPU time per request, nginx's CPU per request divided by the target's (the
// efficiency: 1.00x is as frugal as nginx), and the per-round figures; then the ratios.
//
//   node bench/proxytable.mjs proxy RESULTS
//   node bench/proxytable.mjs budget RESULTS [LEDGER_ROWS_ON] [LEDGER_ROWS_BEFORE_ON]
//   node bench/proxytable.mjs route RESULTS
import fs from 'node:fs';

const [mode, file, ...extra] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map(l => l.split(' '));
const med = a => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const by = {};
for (const [n, rps, p50, p99, , , cpu] of rows) (by[n] ??= []).push({ rps: +rps, p50: +p50, p99: +p99, cpu: +cpu });
const m = {};
for (const n of Object.keys(by))
  m[n] = Object.fromEntries(['rps', 'p50', 'p99', 'cpu'].map(k => [k, med(by[n].map(x => x[k]))]));
const ms = v => (v / 1000).toFixed(2) + ' ms';
const x = v => v.toFixed(2) + 'x';
const rounds = Math.max(...Object.values(by).map(a => a.length));

const labels = mode === 'proxy'
  ? { mock: 'mock direct', nginx: 'nginx -> mock', before: 'tokengate before -> mock', gate: 'tokengate -> mock' }
  : mode === 'cache'
  ? { nginx: 'nginx -> mock', off: 'cache bypassed', miss: 'misses (distinct bodies, stored)',
      hit: 'hits (100 bodies)' }
  : mode === 'route'
  ? { nginx: 'nginx -> mock', plain: 'no routing', routed: '20 rules, same API',
      translated: '20 rules, translated to Anthropic' }
  : { nginx: 'nginx -> mock', 'before-off': 'before, budgets off', 'before-on': 'before, budgets on',
      off: 'budgets off', on: 'budgets on' };
let s = '| target | requests/s | p50 | p99 | CPU us/request | efficiency (nginx CPU / this) | ' +
  'requests/s by round | CPU us/request by round |\n|---|---:|---:|---:|---:|---:|---|---|\n';
for (const n of Object.keys(labels)) {
  if (!m[n]) continue;
  const proxied = n !== 'mock';
  s += `| ${labels[n]} | ${m[n].rps.toFixed(0)} | ${ms(m[n].p50)} | ${ms(m[n].p99)} | ` +
    `${proxied ? m[n].cpu.toFixed(1) : '-'} | ${proxied && m.nginx ? x(m.nginx.cpu / m[n].cpu) : '-'} | ` +
    `${by[n].map(r => r.rps.toFixed(0)).join(', ')} | ${proxied ? by[n].map(r => r.cpu.toFixed(1)).join(', ') : '-'} |\n`;
}
s += '\n';
const vs = (a, b, what) => `${what}: requests/s ${x(m[a].rps / m[b].rps)}, p50 ${x(m[a].p50 / m[b].p50)}, ` +
  `p99 ${x(m[a].p99 / m[b].p99)}, CPU per request ${x(m[a].cpu / m[b].cpu)}`;
if (mode === 'cache') {
  s += vs('hit', 'miss', 'hit / miss') + '\n';
  s += vs('miss', 'off', 'miss / bypassed (the lookup and the store)') + '\n';
} else if (mode === 'route') {
  s += vs('routed', 'plain', 'routing on / off') + '\n';
  s += vs('translated', 'plain', 'routing and translation on / off') + '\n';
  s += vs('translated', 'routed', 'translation on / off (both routed)') + '\n';
} else if (mode === 'proxy') {
  s += vs('gate', 'nginx', 'tokengate / nginx') +
    `; efficiency ${x(m.nginx.cpu / m.gate.cpu)} (target: >= 0.80x)\n`;
  if (m.before) {
    s += vs('before', 'nginx', 'tokengate before / nginx') + `; efficiency ${x(m.nginx.cpu / m.before.cpu)}\n`;
    s += vs('gate', 'before', 'tokengate / before') + ' (CPU below 1.00x: the new code spends less)\n';
  }
} else {
  s += vs('on', 'off', 'budgets on / off') + '\n';
  if (m['before-on']) {
    s += vs('before-on', 'before-off', 'before, budgets on / off') + '\n';
    s += vs('off', 'before-off', 'budgets off, now / before') + '\n';
    s += vs('on', 'before-on', 'budgets on, now / before') + ' (CPU below 1.00x: the new code spends less)\n';
  }
  s += `efficiency with everything on (nginx CPU / gate CPU per request): ${x(m.nginx.cpu / m.on.cpu)}` +
    (m['before-on'] ? `, before ${x(m.nginx.cpu / m['before-on'].cpu)}` : '') + ' (target: >= 0.80x)\n';
  s += `ledger rows written with budgets on: ${extra[0] ?? '?'}` + (m['before-on'] ? `, before: ${extra[1] ?? '?'}` : '') + '\n';
}
// the least disturbed round of each: on a shared machine other load only adds CPU per request
const low = n => Math.min(...by[n].map(r => r.cpu));
const gates = Object.keys(labels).filter(n => by[n] && n !== 'mock' && n !== 'nginx');
if (by.nginx)
  s += `lowest CPU us/request of any round: nginx ${low('nginx').toFixed(1)}; ` +
    gates.map(n => `${labels[n].replace(' -> mock', '')} ${low(n).toFixed(1)} (efficiency ${x(low('nginx') / low(n))})`).join('; ') + '\n';
s += `(medians of ${rounds} rounds; CPU is the proxy process's user + system time over the run, all threads ` +
  '(nginx: its worker), divided by the requests wrk completed)\n';
process.stdout.write(s);
