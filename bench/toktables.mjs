// toktables: the tables of bench/tokenizer-bench, from the JSON lines its programs printed.
//
//   node bench/toktables.mjs RESULTS.jsonl "cl100k_base o200k_base" "scalar sse2 avx2" DEFAULT_PATH CHAT_DIR
//
// RESULTS.jsonl holds, one JSON object a line, tagged by the script with "peer":
//   tokengate  tokengate-tokbench, with "round" (1 before the peers, 2 after) and the asked path
//              ("path_asked"; "path" is the one that ran)
//   tiktoken-native, tiktoken-wasm, gpt-tokenizer-4k, gpt-tokenizer-whole   bench/tokpeers.mjs
//   chat       tokengate-chatbench's warm run (4 KB then 100 KB request), with "path_asked"
//   chat-cold  tokengate-chatbench's extra runs on the 4 KB request, for more cold samples
//   stages     tokengate-tokstages --json
// Prints markdown on stdout. Every figure in it comes from those lines.
import fs from 'node:fs';
import path from 'node:path';

const [resultsFile, encArg, pathArg, defaultPath, chatDir] = process.argv.slice(2);
const rows = fs.readFileSync(resultsFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const encodings = encArg.split(/\s+/).filter(Boolean);
const paths = pathArg.split(/\s+/).filter(Boolean);
const files = ['en_prose.txt', 'code_py.txt', 'code_c.txt', 'multilingual.txt'];
const short = (f) => f.replace('.txt', '');
const fmt = (v) => (v === undefined || Number.isNaN(v) ? 'n/a' : v >= 100 ? v.toFixed(0) : v.toFixed(2));
const mean = (a) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : undefined);
const median = (a) => {
  if (!a.length) return undefined;
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (v) => `${(100 * v).toFixed(0)}%`;
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : 'n/a');
const tgLabel = (p) => `tokengate, ${p}${p === defaultPath ? ' (default)' : ''}`;

const peers = [
  ['tiktoken-native', 'tiktoken native (@anysphere/tiktoken-node)'],
  ['tiktoken-wasm', 'tiktoken WASM (npm tiktoken)'],
  ['gpt-tokenizer-4k', 'gpt-tokenizer (4 KB documents)'],
  ['gpt-tokenizer-whole', 'gpt-tokenizer (whole file)'],
];

let out = '';
for (const enc of encodings) {
  const tg = (p, f) => rows.filter((r) => r.peer === 'tokengate' && r.path_asked === p && r.file === f && r.encoding === enc);
  const peer = (name, f) => rows.find((r) => r.peer === name && r.file === f && r.encoding === enc);
  const warm = (p, f) => mean(tg(p, f).map((r) => r.mb_per_s));
  const cold = (p, f) => mean(tg(p, f).map((r) => r.first_mb_per_s));
  const head = '| tokenizer | ' + files.map(short).join(' | ') + ' |\n|---|' + files.map(() => '---:').join('|') + '|\n';
  const line = (label, fn) => `| ${label} | ` + files.map(fn).join(' | ') + ' |\n';

  out += `#### ${enc}: MB/s (10^6 bytes of the file a second), one thread, warm\n\n`;
  out += 'Repeated passes over the whole file, every cache of text emptied before each pass.\n\n';
  out += head;
  for (const p of paths) out += line(tgLabel(p), (f) => fmt(warm(p, f)));
  const kept = (f) => mean(rows.filter((r) => r.peer === 'tokengate-kept' && r.file === f && r.encoding === enc).map((r) => r.mb_per_s));
  out += line(`tokengate, ${defaultPath}, piece cache kept from pass to pass`, (f) => fmt(kept(f)));
  for (const [name, label] of peers) out += line(label, (f) => fmt(peer(name, f)?.mb_per_s));
  for (const p of paths) out += line(`tokengate ${p} / native tiktoken`, (f) => ratio(warm(p, f), peer('tiktoken-native', f)?.mb_per_s));
  for (const [name, label] of [['tiktoken-wasm', 'tiktoken WASM'], ['gpt-tokenizer-4k', 'gpt-tokenizer (4 KB)']])
    out += line(`tokengate ${defaultPath} / ${label}`, (f) => ratio(warm(defaultPath, f), peer(name, f)?.mb_per_s));
  out += line(`tokengate ${defaultPath}, cache kept / native tiktoken`, (f) => ratio(kept(f), peer('tiktoken-native', f)?.mb_per_s));
  out += '\nThe row "piece cache kept" is tokengate with its per-thread piece cache left full from the pass ' +
    'before, as in a gate worker, and as Gigatoken\'s published warm figure is measured; ' +
    'every other tokengate row empties it before each pass.\n\n';

  out += `#### ${enc}: MB/s of the first call in a fresh process (cold)\n\n`;
  out += 'One call on the whole file, the first of the process (tables built before it, tokengate\'s long-piece merge tables too, as the gate builds them at start; the piece cache empty); ' +
    'tokengate: the mean of its two processes.\n\n';
  out += head;
  for (const p of paths) out += line(tgLabel(p), (f) => fmt(cold(p, f)));
  for (const [name, label] of peers.slice(0, 3)) out += line(label, (f) => fmt(peer(name, f)?.first_mb_per_s));
  out += line(`tokengate ${defaultPath} / native tiktoken`, (f) => ratio(cold(defaultPath, f), peer('tiktoken-native', f)?.first_mb_per_s));
  out += line(`tokengate ${defaultPath} / tiktoken WASM`, (f) => ratio(cold(defaultPath, f), peer('tiktoken-wasm', f)?.first_mb_per_s));
  out += line(`tokengate ${defaultPath} / gpt-tokenizer (4 KB)`, (f) => ratio(cold(defaultPath, f), peer('gpt-tokenizer-4k', f)?.first_mb_per_s));
  out += '\n';

  // notes: spread, paths that ran, counts and ids
  const notes = [];
  for (const p of paths)
    notes.push(`tokengate ${p} before / after the peers: ` +
      files.map((f) => `${short(f)} ${tg(p, f).map((r) => fmt(r.mb_per_s)).join(' / ')}`).join(', ') + ' MB/s (the table shows the mean).');
  notes.push(`tokengate ${defaultPath}, piece cache kept, before / after the peers: ` +
    files.map((f) => `${short(f)} ${rows.filter((r) => r.peer === 'tokengate-kept' && r.file === f && r.encoding === enc).map((r) => fmt(r.mb_per_s)).join(' / ')}`).join(', ') + ' MB/s.');
  const wrongPath = rows.filter((r) => r.peer === 'tokengate' && r.encoding === enc && r.path !== r.path_asked);
  if (wrongPath.length)
    notes.push(`PATH NOT AS ASKED: ${wrongPath.map((r) => `${r.path_asked} ran as ${r.path} on ${r.file}`).join('; ')}.`);
  const bad = [];
  for (const f of files) {
    const ref = peer('tiktoken-wasm', f);
    const all = [...paths.flatMap((p) => tg(p, f)),
      ...rows.filter((r) => r.peer === 'tokengate-kept' && r.file === f && r.encoding === enc)];
    for (const r of all) if (ref && r.tokens !== ref.tokens) bad.push(`${r.path_asked}: ${r.tokens} tokens vs tiktoken's ${ref.tokens} on ${f}`);
    const hashes = new Set(all.map((r) => r.ids_hash));
    if (hashes.size > 1) bad.push(`the paths' ids differ on ${f} (${all.map((r) => `${r.path_asked} ${r.ids_hash}`).join(', ')})`);
  }
  notes.push(bad.length ? `TOKENGATE DISAGREES: ${bad.join('; ')}.`
    : 'Token counts: every path agrees with tiktoken on every file, and the paths give the same ids (hash of the ids).');
  const peerBad = rows.filter((r) => r.encoding === enc && r.tokens_match === false).map((r) => `${r.peer} ${r.tokens} vs ${r.ref_tokens} on ${r.file}`);
  if (peerBad.length) notes.push(`Peers whose counts differ from tiktoken's: ${peerBad.join('; ')}.`);
  const notCold = peers.slice(0, 3).filter(([name]) => files.some((f) => peer(name, f) && !peer(name, f).first_cold));
  if (notCold.length) notes.push(`Not a first call of its process: ${notCold.map(([n]) => n).join(', ')}.`);
  const t = rows.filter((r) => r.peer === 'tokengate' && r.encoding === enc);
  notes.push(`tokengate's set-up, left out of its first call: tables ${fmt(median(t.map((r) => r.tables_ms)))} ms, ` +
    `long pieces' merge tables (built as the gate starts) ${fmt(median(t.map((r) => r.long_ms)))} ms, ` +
    `piece cache ${fmt(median(t.map((r) => r.cache_ms)))} ms (medians over its processes).`);
  out += notes.map((n) => `- ${n}`).join('\n') + '\n\n';

  // the chat requests
  const chat = rows.filter((r) => r.peer === 'chat' && r.encoding_asked === enc);
  if (chat.length) {
    out += `Counting a chat request's input in process (tokengate-chatbench, ${enc}), microseconds a call:\n\n`;
    out += '| request | path | bytes | messages | tokens | cold: first parse + count | cold: first count, piece cache made before | ' +
      'warm: cJSON parse | warm: the gate\'s parse | warm: tok_count_request | warm: cJSON parse + count | warm: the gate\'s parse + count |\n';
    out += '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
    const cell = (vals) => {
      const v = vals.filter((x) => typeof x === 'number');
      if (!v.length) return 'n/a';
      return v.length === 1 ? v[0].toFixed(1)
        : `${median(v).toFixed(1)} (${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)}, ${v.length} processes)`;
    };
    for (const r of chat) {
      const msgs = JSON.parse(fs.readFileSync(path.join(chatDir, r.file), 'utf8')).messages.length;
      const is4k = !r.file.includes('100k');
      const runs = is4k ? [r, ...rows.filter((c) => c.peer === 'chat-cold' && c.encoding_asked === enc &&
        c.path_asked === r.path_asked && c.file === r.file)] : [r];
      const ranPath = r.path === undefined ? r.path_asked : r.path === r.path_asked ? r.path : `${r.path_asked} RAN AS ${r.path}`;
      out += `| ${is4k ? '4 KB chat' : '100 KB chat'} | ${ranPath} | ${r.bytes} | ${msgs} | ${r.tokens} | ` +
        `${cell(runs.map((c) => c.cold_total_us))} | ${cell(runs.map((c) => c.prewarm_count_us))} | ` +
        `${r.parse_us.toFixed(1)} | ${r.parse_fast_us === undefined ? 'n/a' : r.parse_fast_us.toFixed(1)} | ` +
        `${r.count_us.toFixed(1)} | ${r.total_us.toFixed(1)} | ` +
        `${r.total_fast_us === undefined ? 'n/a' : r.total_fast_us.toFixed(1)} |\n`;
    }
    out += '\nCold: a child process forked before anything is built (chatbench): its first cJSON parse and first ' +
      'tok_count_request, the tables built between them and left out, the thread\'s piece cache made in the count; then ' +
      'the first count in a child whose piece cache was made before (tok_thread_prepare, as each gate worker does at start); the median over ' +
      'processes, with the range and number in brackets. Warm: the mean of calls repeated on the same request; ' +
      '"cJSON parse" is cJSON_ParseWithLength with malloc, "the gate\'s parse" jsonfast_parse into a bump arena, as ' +
      'the gate parses a request body (gate/util/jsonfast.cpp: simdjson, then cJSON\'s tree).' +
      (chat.some((r) => r.cold_total_us === undefined) ? ' n/a: this tokengate-chatbench gives no cold figures.' : '') + '\n\n';
  }

  // the stage profile
  const st = rows.filter((r) => r.peer === 'stages' && r.encoding === enc);
  if (st.length) {
    out += `Where the time goes (tokengate-tokstages, ${enc}, best of ${st[0].passes} passes, thread CPU time): ` +
      'MB/s of each stage, and the shares of the cold encode\'s time:\n\n';
    out += '| file | path | pretok | + lookup | count, cold | encode, cold | encode, warm | merges a cold pass | pre-tok. | hash + lookup | merging | emitting | rest |\n';
    out += '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
    const mbs = (r, k) => fmt(r.bytes / (r[`${k}_ms`] / 1e3) / 1e6);
    for (const f of files)
      for (const p of paths) {
        const r = st.find((x) => x.file === f && x.path === p);
        if (!r) continue;
        out += `| ${short(f)} | ${p} | ${mbs(r, 'pretok')} | ${mbs(r, 'lookup')} | ${mbs(r, 'count_cold')} | ${mbs(r, 'encode_cold')} | ` +
          `${mbs(r, 'encode_warm')} | ${r.merges} (${(100 * r.merge_bytes / r.bytes).toFixed(1)}% of bytes) | ` +
          `${pct(r.share_pretok)} | ${pct(r.share_lookup)} | ${pct(r.share_merge)} | ${pct(r.share_emit)} | ${pct(r.share_rest)} |\n`;
      }
    out += '\npretok: the pre-tokenizer alone; + lookup: it and the first block design\'s batch (every piece\'s piece-cache set and ' +
      'vocabulary slot), for comparison only; the shares: pretok / E, (encode warm - pretok) / E - emitting, the cold pass\'s ' +
      'merges timed alone / E, emitting = (encode - count, cold) / E, and the rest, where E is the cold encode (a warm pass is ' +
      'a cold one without its merges; see bench/tokstages.c).\n\n';
  }
}
process.stdout.write(out);
