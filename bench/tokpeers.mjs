// tokpeers: the speed of tokengate's tokenizer peers, one thread each, for bench/tokenizer-bench.
//
//   node bench/tokpeers.mjs [--encoding cl100k_base] [--seconds 2] [--max-runs 20]
//                           [--max-seconds 30] [--peers LIST] FILE...
//
// For each file and each peer: one untimed pass to warm up (and to count the tokens), then
// passes over the whole file until --seconds have gone by (at least one pass, at most
// --max-runs passes or --max-seconds), and one JSON line like tokengate-tokbench's:
//   {"peer","file","encoding","mode","bytes","tokens","runs","seconds","mb_per_s",
//    "ref_tokens","tokens_match","first_mb_per_s","first_cold"}
// MB is 10^6 bytes of the file. Reading the file and decoding it into a JS string is not timed,
// as tokbench does not time reading it either. "first_mb_per_s" is the first call of the peer on
// the file (the untimed pass; for tiktoken-wasm the reference count, its first call): on the
// first file of a process, the library's first call after loading it (its encoding built by
// get_encoding, getTokenizer or the import, as tokengate's tables are built before its first
// call), with "first_cold" true; false for gpt-tokenizer-whole, which runs after
// gpt-tokenizer-4k in the same process, and for every file after the first.
//
// The peers (LIST is a comma-separated subset of these names, all by default):
//   tiktoken-native     @anysphere/tiktoken-node: tiktoken's Rust core behind N-API. Its only
//                       encode is async (the work runs on one tokio worker thread while the JS
//                       thread waits); one call per file.
//   tiktoken-wasm       npm tiktoken: the same Rust core compiled to WASM;
//                       get_encoding(enc).encode(text, [], []), one call per file.
//   gpt-tokenizer-4k    gpt-tokenizer, pure JS, on the file cut into documents of at most 4096
//                       bytes at line ends (how the corpus README measured it); mode "encode-4k".
//   gpt-tokenizer-whole gpt-tokenizer on the whole file in one call.
// gpt-tokenizer keeps a merge cache (100,000 entries) across calls; repeating the same file with
// a warm cache would let it remember every word of the file, so the cache is cleared before
// each pass and fills up as the pass goes, as it would over fresh text.
//
// Special-token strings in the text (<|endoftext|> and the rest) are ordinary text for every
// peer, as they are for tokengate's tok_encode without TOK_ALLOW_SPECIAL.
//
// ref_tokens is what tiktoken-wasm counts for the same input (for gpt-tokenizer-4k, the sum over
// the same documents, which can differ from the whole file's count where a cut falls between
// two newlines); a peer that disagrees gets tokens_match false and a warning on stderr.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ALL_PEERS = ['tiktoken-native', 'tiktoken-wasm', 'gpt-tokenizer-4k', 'gpt-tokenizer-whole'];
const DOC_BYTES = 4096;

function usage(msg) {
  if (msg) process.stderr.write(`tokpeers: ${msg}\n`);
  (msg ? process.stderr : process.stdout).write('usage: node tokpeers.mjs [--encoding E] [--seconds S] ' +
    '[--max-runs N] [--max-seconds T] [--peers ' + ALL_PEERS.join(',') + '] FILE...\n');
  process.exit(msg ? 2 : 0);
}

function parseArgs(argv) {
  const o = { encoding: 'cl100k_base', seconds: 2, maxRuns: 20, maxSeconds: 30, peers: ALL_PEERS, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--help' || a === '-h') usage();
    else if (a === '--encoding') o.encoding = val();
    else if (a === '--seconds') o.seconds = Number(val());
    else if (a === '--max-runs') o.maxRuns = Number(val());
    else if (a === '--max-seconds') o.maxSeconds = Number(val());
    else if (a === '--peers') o.peers = val().split(',').filter(Boolean);
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else o.files.push(a);
  }
  if (!o.files.length) usage('no files');
  for (const p of o.peers) if (!ALL_PEERS.includes(p)) usage(`unknown peer ${p}`);
  if (!(o.seconds >= 0) || !(o.maxRuns >= 1) || !(o.maxSeconds > 0)) usage('bad number');
  return o;
}

// The bytes of buf cut into documents of at most max bytes, each ending at a line end when the
// window holds one, else at a UTF-8 character boundary. Returns JS strings.
function splitDocs(buf, max) {
  const docs = [];
  let start = 0;
  while (start < buf.length) {
    let end = Math.min(start + max, buf.length);
    if (end < buf.length) {
      const nl = buf.lastIndexOf(0x0a, end - 1);
      if (nl >= start) end = nl + 1;
      else while (end > start + 1 && (buf[end] & 0xc0) === 0x80) end--;
    }
    docs.push(buf.toString('utf8', start, end));
    start = end;
  }
  return docs;
}

// Runs fn (which returns a token count, or a promise of one) once to warm up, then until
// seconds have gone by, bounded by maxRuns and maxSeconds. The result's figures are for the
// timed passes only.
async function measure(fn, bytes, o) {
  const t0 = performance.now();
  const tokens = await fn();
  const first = (performance.now() - t0) / 1000;
  let runs = 0;
  let el = 0;
  const start = performance.now();
  do {
    await fn();
    runs++;
    el = (performance.now() - start) / 1000;
  } while (el < o.seconds && runs < o.maxRuns && el < o.maxSeconds);
  return { tokens, runs, seconds: el, mb_per_s: (bytes * runs) / el / 1e6, first_mb_per_s: bytes / first / 1e6 };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const { get_encoding } = require('tiktoken');
  const wasm = get_encoding(o.encoding); // throws on an unknown encoding, which ends the run
  let native = null;
  let nativeEnc = null;
  if (o.peers.includes('tiktoken-native')) {
    const tn = require('@anysphere/tiktoken-node');
    nativeEnc = { cl100k_base: tn.SupportedEncoding.Cl100k, o200k_base: tn.SupportedEncoding.O200k }[o.encoding];
    if (nativeEnc === undefined) process.stderr.write(`tokpeers: tiktoken-native has no ${o.encoding}; skipped\n`);
    else native = { tok: tn.getTokenizer(), normal: tn.SpecialTokenAction.NormalText };
  }
  let gpt = null;
  if (o.peers.some((p) => p.startsWith('gpt-tokenizer'))) gpt = await import(`gpt-tokenizer/encoding/${o.encoding}`);
  const gptOpts = { disallowedSpecial: new Set() };
  process.stderr.write(`tokpeers: ${o.encoding} peers loaded in ${(performance.now() - t0).toFixed(0)} ms\n`);

  for (const [fileIndex, file] of o.files.entries()) {
    const buf = fs.readFileSync(file);
    const text = buf.toString('utf8');
    const bytes = buf.length;
    const name = path.basename(file);
    const tRef = performance.now();
    const ref = wasm.encode(text, [], []).length;
    const wasmFirst = bytes / ((performance.now() - tRef) / 1000) / 1e6;
    let docs = null;
    let docsRef = 0;
    if (o.peers.includes('gpt-tokenizer-4k')) {
      docs = splitDocs(buf, DOC_BYTES);
      for (const d of docs) docsRef += wasm.encode(d, [], []).length;
    }
    const runners = {
      'tiktoken-native': native && (async () => (await native.tok.encode(text, nativeEnc, native.normal, {})).length),
      'tiktoken-wasm': () => wasm.encode(text, [], []).length,
      'gpt-tokenizer-4k': gpt && (() => {
        let n = 0;
        gpt.clearMergeCache();
        for (const d of docs) n += gpt.encode(d, gptOpts).length;
        return n;
      }),
      'gpt-tokenizer-whole': gpt && (() => {
        gpt.clearMergeCache();
        return gpt.encode(text, gptOpts).length;
      }),
    };
    for (const peer of o.peers) {
      const fn = runners[peer];
      if (!fn) continue;
      const r = await measure(fn, bytes, o);
      const refTokens = peer === 'gpt-tokenizer-4k' ? docsRef : ref;
      const match = r.tokens === refTokens;
      if (!match)
        process.stderr.write(`tokpeers: warning: ${peer} counts ${r.tokens} tokens in ${name} (${o.encoding}), ` +
          `tiktoken ${refTokens}\n`);
      const line = {
        peer, file: name, encoding: o.encoding, mode: peer === 'gpt-tokenizer-4k' ? 'encode-4k' : 'encode',
        bytes, tokens: r.tokens, runs: r.runs, seconds: Number(r.seconds.toFixed(4)),
        mb_per_s: Number(r.mb_per_s.toFixed(2)), ref_tokens: refTokens, tokens_match: match,
        first_mb_per_s: Number((peer === 'tiktoken-wasm' ? wasmFirst : r.first_mb_per_s).toFixed(2)),
        first_cold: fileIndex === 0 && peer !== 'gpt-tokenizer-whole',
      };
      if (docs && peer === 'gpt-tokenizer-4k') line.documents = docs.length;
      process.stdout.write(JSON.stringify(line) + '\n');
    }
  }
  wasm.free();
}

main().catch((e) => {
  process.stderr.write(`tokpeers: ${e.stack || e}\n`);
  process.exit(1);
});
