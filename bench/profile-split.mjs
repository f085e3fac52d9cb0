#!/usr/bin/env node
// Sorts the self time of a perf profile of the gate into what the time went to (bench/profile-gate).
//
//   node bench/profile-split.mjs REPORT SYMBOLS
// REPORT: `perf report --no-children -n --sort dso,symbol --stdio -g none` (lines
// "12.34%  SAMPLES  dso  [.] symbol"; the shares are computed from the sample counts);
// SYMBOLS: "module symbol" lines, the functions each of the gate's object files defines (from nm;
// module is the source path without .c, e.g. gate/budget/ledger, tokenizer/tok), so that the
// gate's own functions, static ones included, are counted by module. A function inlined into
// another counts where it was inlined.
// Prints a Markdown table: category, % of the gate's samples, the three largest symbols in it.
import fs from 'node:fs';

const [reportFile, symbolsFile] = process.argv.slice(2);
const mod = new Map();
for (const l of fs.readFileSync(symbolsFile, 'utf8').split('\n')) {
  const [m, s] = l.split(' ');
  if (m && s && !mod.has(s)) mod.set(s, m);
}

// category of one sample's (dso, symbol), first match wins
function category(dso, sym) {
  if (dso === '[kernel.kallsyms]') return 'kernel (syscalls, loopback TCP, scheduling)';
  if (/libsqlite3/.test(dso)) return 'SQLite and the ledger/journal code';
  if (/libcjson|libsimdjson/.test(dso)) return 'JSON (cJSON, simdjson, jsmn, the gate\'s JSON helpers)';
  if (/libevent/.test(dso)) return 'libevent';
  if (/libcrypto|libssl/.test(dso)) return 'OpenSSL (SHA-256 of keys)';
  if (/libc\.so|ld-linux/.test(dso)) {
    if (/malloc|free|calloc|realloc|unlink_chunk|tcache|consolidate|memalign|arena_get/.test(sym))
      return 'malloc/free (libc)';
    if (/printf|scanf|strto|hack_digit|mpn|round_and_return|_IO_|__printf_fp|vfxprintf/.test(sym))
      return 'libc printf/scanf/strtod';
    if (/^(__)?(mem|str|stp|wmem|wcs)|_evex|_avx|_sse/.test(sym)) return 'libc memcpy/memcmp/strlen...';
    return 'libc other (syscall stubs, locks, time)';
  }
  if (/tokengate/.test(dso)) {
    const m = mod.get(sym) || '';
    if (m.startsWith('tokenizer/')) return 'tokenizer (counting)';
    if (/gate\/util\/json|gate\/api\/usage/.test(m) || /^(jsmn|jm_|jsonedit|json)/.test(sym))
      return 'JSON (cJSON, simdjson, jsmn, the gate\'s JSON helpers)';
    if (/gate\/budget\/(ledger|journal)/.test(m)) return 'SQLite and the ledger/journal code';
    if (/gate\/budget\//.test(m)) return 'budget book (authenticate, reserve, settle)';
    if (m === 'llhttp' || /gate\/http\//.test(m) || /^llhttp/.test(sym)) return 'HTTP (llhttp, gate/http)';
    if (/gate\/pipeline\/reqlog/.test(m)) return 'request log';
    if (/gate\/util\/(arena|memcap)/.test(m)) return 'arena and memory caps';
    return 'other gate code (pipeline, upstream, api, conf...)' + (m ? '' : ' [unmapped]');
  }
  return 'other (' + dso + ')';
}

const lines = [];
let total = 0;
for (const l of fs.readFileSync(reportFile, 'utf8').split('\n')) {
  const r = /^\s*[0-9.]+%\s+(\d+)\s+(\S+)\s+\[[.k]\]\s+(\S+)/.exec(l);
  if (!r) continue;
  lines.push([+r[1], r[2], r[3]]);
  total += +r[1];
}
const cats = new Map();
for (const [n, dso, sym] of lines) {
  const pct = 100 * n / total, c = category(dso, sym);
  if (!cats.has(c)) cats.set(c, { pct: 0, syms: [] });
  const e = cats.get(c);
  e.pct += pct;
  e.syms.push([sym, pct]);
}
let s = '| where | % of samples | largest symbols (% each) |\n|---|---:|---|\n';
for (const [c, e] of [...cats].sort((a, b) => b[1].pct - a[1].pct)) {
  const top = e.syms.sort((a, b) => b[1] - a[1]).slice(0, 3).map(([n, p]) => `${n} ${p.toFixed(1)}`).join(', ');
  s += `| ${c} | ${e.pct.toFixed(1)} | ${top} |\n`;
}
s += `\n(${total} samples; self time, not children)\n`;
process.stdout.write(s);
