// Tokenizer conformance: `tokengate encode`, `decode` and `count` against npm `tiktoken` (the
// WASM build of OpenAI's Rust core), which is the reference. Ids must be identical for the
// benchmark corpus, for generated strings that go after every corner of the pre-tokenizer's
// patterns (scripts, marks, emoji, every White_Space character, contractions, digits, case,
// special-token text), for probes of every code point, and for ill-formed UTF-8.
//
// Environment: TG_BUILD (the build directory), TG_CORPUS (the corpus directory, default
// ../shared/corpus beside the repository), TG_TOK_SEED (the generator's seed, default fixed).
//
// The encoder has paths (scalar, and the block encoder on sse2 or avx2): for cl100k_base and
// o200k_base, where they differ, the corpus, the generated strings, the probes, the special
// tokens and the ill-formed input run on each path this CPU has, forced through
// TOKENGATE_TOK_PATH in the spawned process's environment, against tiktoken's ids computed once
// per string (p50k_base and r50k_base always run the scalar path: they run once, by default).
//
// Each batch of strings goes through one `tokengate encode --jsonl` run, so the test costs a
// handful of processes. A failure lists the first few differing inputs with both id lists and
// both tokenizations, and the shortest input that still fails, found by cutting the first ones
// down (which needs a few more runs, only on failure).

import { after } from 'node:test';
import { Worker } from 'node:worker_threads';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { get_encoding } from 'tiktoken';
import { test, cleanup, tempDir, GATE_BIN, REPO, ms } from './harness.mjs';
import {
  edgeCases, generatedStrings, invalidUtf8Buffers, longPieces, RECENT, SPECIALS, WHITE_SPACE,
} from './tokstrings.mjs';

const require = createRequire(import.meta.url);
const CORPUS = path.resolve(process.env.TG_CORPUS || path.join(REPO, '..', 'shared', 'corpus'));
const SEED = Number(process.env.TG_TOK_SEED || 20261123);
const GENERATED = 3000; // random strings per encoding, on top of the fixed edge cases
const SHOW = 10; // failures shown in full
const MINIMIZE = 3; // failures cut down to a shortest failing input
const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ThreadSanitizer/;

const ENCODINGS = ['cl100k_base', 'o200k_base', 'p50k_base', 'r50k_base'];
const MAIN = ['cl100k_base', 'o200k_base'];

// The encoder's paths to force, each through TOKENGATE_TOK_PATH: avx2 only where the CPU has it
// (where it has not, tokengate would quietly run its default instead).
const CPU_FLAGS = new Set((fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m) ||
  ['', ''])[1].trim().split(/\s+/));
const PATHS = ['scalar', 'sse2', ...(CPU_FLAGS.has('avx2') ? ['avx2'] : [])];
console.log(`# tokenizer paths forced for ${MAIN.join(', ')}: ${PATHS.join(', ')}` +
  (CPU_FLAGS.has('avx2') ? '' : ' (this CPU has no AVX2)'));

/** The paths to run name on: each of PATHS where the block encoder applies; else null, the
 * default (no TOKENGATE_TOK_PATH), once. */
function pathsFor(name) {
  return MAIN.includes(name) ? PATHS : [null];
}

/** The environment that forces tokPath (null: the environment as it is, minus any forced path). */
function pathEnv(tokPath) {
  const env = { ...process.env };
  delete env.TOKENGATE_TOK_PATH;
  if (tokPath) env.TOKENGATE_TOK_PATH = tokPath;
  return env;
}

/** ", path P" for messages (nothing for the default). */
function onPath(tokPath) {
  return tokPath ? `, path ${tokPath}` : '';
}

// ---- the reference --------------------------------------------------------------------------------

const encoders = new Map();

/** The tiktoken encoder for name, made once. Never give it an id it does not know: a Rust panic
 * inside the WASM module leaves the module unusable for every later call. */
function tiktoken(name) {
  if (!encoders.has(name)) encoders.set(name, get_encoding(name));
  return encoders.get(name);
}

/** Reference ids: special-token text is plain text unless allow. */
function refEncode(name, text, allow = false) {
  const e = tiktoken(name);
  return Array.from(allow ? e.encode(text, 'all') : e.encode(text, [], []));
}

/** Every id the encoding has (ranks and special tokens), ascending, read from the package data. */
const vocabCache = new Map();
function vocabulary(name) {
  if (vocabCache.has(name)) return vocabCache.get(name);
  const j = require(`tiktoken/encoders/${name}.json`);
  const ids = [];
  for (const line of j.bpe_ranks.split('\n')) {
    const parts = line.trim().split(' ');
    if (parts[0] !== '!') throw new Error(`${name}.json: unexpected bpe_ranks line start`);
    const first = Number(parts[1]);
    for (let i = 2; i < parts.length; i++) ids.push(first + i - 2);
  }
  for (const id of Object.values(j.special_tokens)) if (!ids.includes(id)) ids.push(id);
  ids.sort((a, b) => a - b);
  vocabCache.set(name, ids);
  return ids;
}

after(async () => {
  for (const e of encoders.values()) e.free();
  encoders.clear();
  await cleanup();
});

// ---- tokengate ----------------------------------------------------------------------------------

/** Runs `tokengate ARGS` with input on stdin (on the encoder's path tokPath, when given); fails
 * on a signal or sanitizer output. */
function tg(args, input = '', tokPath = null) {
  const r = spawnSync(GATE_BIN, args, {
    input, maxBuffer: 1 << 30, timeout: ms(120000), env: pathEnv(tokPath),
  });
  if (r.error) throw r.error;
  const stderr = r.stderr.toString('utf8');
  const what = `tokengate ${args.join(' ')}${onPath(tokPath)}`;
  if (SANITIZER_RE.test(stderr)) throw new Error(`${what}: sanitizer output:\n${stderr.slice(0, 8000)}`);
  if (r.signal) throw new Error(`${what}: killed by ${r.signal}\n${stderr.slice(0, 4000)}`);
  return { status: r.status, stdout: r.stdout, stderr };
}

/** tg() without waiting: resolves with {status, stdout, stderr}, rejects as tg() throws. */
function tgAsync(args, input = '', tokPath = null) {
  return new Promise((resolve, reject) => {
    const child = spawn(GATE_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'], env: pathEnv(tokPath) });
    const out = [];
    const err = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), ms(120000));
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      const what = `tokengate ${args.join(' ')}${onPath(tokPath)}`;
      if (SANITIZER_RE.test(stderr)) reject(new Error(`${what}: sanitizer output:\n${stderr.slice(0, 8000)}`));
      else if (signal) reject(new Error(`${what}: killed by ${signal}\n${stderr.slice(0, 4000)}`));
      else resolve({ status, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.on('error', () => {}); // it may exit before reading everything
    child.stdin.end(input);
  });
}

/** Runs fn over items, at most `width` at a time; resolves with the results in order. */
async function parallel(items, fn, width = 4) {
  const results = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  return results;
}

function parseIds(line) {
  const t = line.trim();
  return t === '' ? [] : t.split(/\s+/).map(Number);
}

/** tokengate's ids for raw bytes on stdin. */
function gateEncodeBytes(name, bytes, allow = false) {
  const r = tg(['encode', '--encoding', name, ...(allow ? ['--allow-special'] : []), '-'], bytes);
  assert.equal(r.status, 0, `tokengate encode -: exit ${r.status}: ${r.stderr}`);
  return parseIds(r.stdout.toString('latin1'));
}

const jsonl = (ss) => ss.map((s) => JSON.stringify(s)).join('\n') + '\n';
const jsonlArgs = (name, allow) =>
  ['encode', '--encoding', name, '--jsonl', ...(allow ? ['--allow-special'] : [])];

/**
 * tokengate's ids for many strings in one `encode --jsonl` run (on the encoder's path tokPath,
 * when given): one array per string. When the run crashes, runs halves of the batch to name the
 * first string that crashes it.
 */
function gateEncodeMany(name, strings, allow = false, tokPath = null) {
  if (strings.length === 0) return [];
  const args = jsonlArgs(name, allow);
  let r;
  try {
    r = tg(args, jsonl(strings), tokPath);
  } catch (e) {
    if (strings.length === 1) throw e;
    let lo = 0;
    let hi = strings.length; // the first crashing string is in [lo, hi)
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      try {
        tg(args, jsonl(strings.slice(lo, mid)), tokPath);
        lo = mid;
      } catch {
        hi = mid;
      }
    }
    e.message = `${e.message}\nthe first input line that crashes it alone: #${lo} ` +
      `${showText(strings[lo], 300)} (${Buffer.byteLength(strings[lo])} bytes)`;
    throw e;
  }
  return jsonlIds(r, strings, tokPath);
}

function jsonlIds(r, strings, tokPath) {
  assert.equal(r.status, 0, `tokengate encode --jsonl${onPath(tokPath)}: exit ${r.status}: ${r.stderr}`);
  const lines = r.stdout.toString('latin1').split('\n');
  assert.equal(lines.pop(), '', 'the output ends with a newline');
  assert.equal(lines.length, strings.length, 'one line of ids per input line');
  return lines.map(parseIds);
}

/**
 * gateEncodeMany without waiting, so that the runs on each path and tiktoken's reference go side
 * by side; when the run crashes, gateEncodeMany runs again to name the crashing line. Resolves
 * with { text: the output, ids(): the ids, parsed when first asked for }.
 */
async function gateEncodeManyAsync(name, strings, allow = false, tokPath = null) {
  if (strings.length === 0) return { ids: () => [], text: '' };
  let r;
  try {
    r = await tgAsync(jsonlArgs(name, allow), jsonl(strings), tokPath);
  } catch {
    gateEncodeMany(name, strings, allow, tokPath); // throws, naming the line
    throw new Error(`tokengate encode --jsonl${onPath(tokPath)} crashed, but not when run again`);
  }
  let ids = null;
  return { ids: () => (ids ??= jsonlIds(r, strings, tokPath)), text: r.stdout.toString('latin1') };
}

/** name's ids for strings on each of its paths, each run started now: [path, Promise]. */
function gateEncodeEachPath(name, strings, allow = false) {
  return pathsFor(name).map((p) => {
    const run = gateEncodeManyAsync(name, strings, allow, p);
    run.catch(() => {}); // awaited by the caller
    return [p, run];
  });
}

/** Ids as `encode --jsonl` writes them, one line per string: a run whose output is this text
 * gives these ids, and the comparison costs no parsing. */
function jsonlText(wants) {
  return wants.map((w) => `${w.join(' ')}\n`).join('');
}

// ---- reporting ----------------------------------------------------------------------------------

const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// WHATWG decoding: one U+FFFD for each maximal subpart of an ill-formed sequence, and a leading
// BOM kept as U+FEFF (tiktoken sees it as text, so tokengate must too).
const replacing = new TextDecoder('utf-8', { ignoreBOM: true });

/** A token's bytes for a message: a JSON string when they are UTF-8, else hex. */
function showBytes(b) {
  try {
    return JSON.stringify(fatal.decode(b));
  } catch {
    return `<${Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ')}>`;
  }
}

/** How a list of ids reads as tokens; an id the encoding does not have is shown as such. */
const knownSets = new Map();
function pieces(name, ids) {
  if (!knownSets.has(name)) knownSets.set(name, new Set(vocabulary(name)));
  const known = knownSets.get(name);
  return ids.map((id) => (known.has(id) ? showBytes(tiktoken(name).decode_single_token_bytes(id))
    : `<unknown id ${id}>`)).join(' | ');
}

function sameIds(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function firstDiff(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** Both tokenizations around their first difference (all of them when short). */
function diffLines(name, want, got, context = 12) {
  const d = firstDiff(want, got);
  const from = want.length + got.length <= 4 * context ? 0 : Math.max(0, d - context);
  const cut = (ids) => {
    const to = Math.min(ids.length, d + 2 * context);
    return [from > 0 ? '... ' : '', ids.slice(from, to), to < ids.length ? ' ...' : ''];
  };
  const [wa, wi, wz] = cut(want);
  const [ga, gi, gz] = cut(got);
  return [
    `  first difference at token ${d} (tiktoken ${want.length} tokens, tokengate ${got.length})`,
    `  tiktoken  ids:    ${wa}${JSON.stringify(wi)}${wz}`,
    `  tokengate ids:    ${ga}${JSON.stringify(gi)}${gz}`,
    `  tiktoken  pieces: ${wa}${pieces(name, wi)}${wz}`,
    `  tokengate pieces: ${ga}${pieces(name, gi)}${gz}`,
  ].join('\n');
}

function showText(s, max = 600) {
  const j = JSON.stringify(s);
  return j.length <= max ? j : `${j.slice(0, max)}... (${s.length} UTF-16 units)`;
}

/**
 * The shortest input found that still encodes differently: repeatedly drops chunks of code
 * points (halves first, then smaller, single code points once it is short), each round's
 * candidates in one --jsonl run.
 */
function minimize(name, s, allow = false, tokPath = null) {
  let cur = [...s];
  for (let round = 0; round < 200 && cur.length > 1; round++) {
    const cands = [];
    const smallest = Math.max(1, cur.length >> 6);
    for (let size = Math.max(1, cur.length >> 1); ; size = Math.max(smallest, size >> 1)) {
      for (let i = 0; i + size <= cur.length; i += Math.max(1, size >> 1))
        cands.push(cur.slice(0, i).concat(cur.slice(i + size)));
      if (size === smallest) break;
    }
    const texts = cands.map((c) => c.join(''));
    const got = gateEncodeMany(name, texts, allow, tokPath);
    let best = -1;
    for (let i = 0; i < texts.length; i++) {
      if (!sameIds(refEncode(name, texts[i], allow), got[i]) &&
        (best < 0 || cands[i].length < cands[best].length)) best = i;
    }
    if (best < 0) break;
    cur = cands[best];
  }
  return cur.join('');
}

/**
 * Compares many strings on each of name's paths (tiktoken's ids computed once, while tokengate
 * runs); on differences fails with the first SHOW of them on each path, the first few cut down.
 */
async function compareMany(name, strings, { allow = false, label = 'strings' } = {}) {
  const runs = gateEncodeEachPath(name, strings, allow);
  const wants = strings.map((s) => refEncode(name, s, allow));
  const wantText = jsonlText(wants);
  const reports = [];
  for (const [tokPath, run] of runs) {
    const out = await run;
    if (out.text === wantText) continue;
    const got = out.ids();
    const bad = [];
    for (let i = 0; i < strings.length; i++)
      if (!sameIds(wants[i], got[i])) bad.push({ i, want: wants[i], got: got[i] });
    if (bad.length > 0) reports.push(reportBad(name, strings, bad, { allow, label, tokPath }));
  }
  if (reports.length > 0) assert.fail(reports.join('\n'));
}

/** The report of the strings in bad (found on tokPath), the first few cut down. */
function reportBad(name, strings, bad, { allow, label, tokPath }) {
  const report = [`${name}${onPath(tokPath)}: ${bad.length} of ${strings.length} ${label} differ ` +
    'from tiktoken'];
  const shortest = new Map();
  for (const b of bad.slice(0, SHOW)) {
    report.push(`#${b.i} ${showText(strings[b.i])}`, diffLines(name, b.want, b.got));
  }
  for (const b of bad.slice(0, MINIMIZE)) {
    const m = minimize(name, strings[b.i], allow, tokPath);
    if (shortest.has(m)) continue;
    const want = refEncode(name, m, allow);
    const got1 = gateEncodeMany(name, [m], allow, tokPath)[0];
    shortest.set(m, true);
    report.push(`shortest failing input cut from #${b.i}: ${JSON.stringify(m)}`,
      `  tiktoken  ${JSON.stringify(want)}  ${pieces(name, want)}`,
      `  tokengate ${JSON.stringify(got1)}  ${pieces(name, got1)}`);
  }
  return report.join('\n');
}

// ---- 1. the corpus ------------------------------------------------------------------------------

const corpusFiles = fs.existsSync(CORPUS)
  ? fs.readdirSync(CORPUS).filter((f) => f.endsWith('.txt')).sort().map((f) => path.join(CORPUS, f))
  : [];

/** Starts `tokengate encode FILE` with its output going to a file; resolves with that output
 * as text ("id id ...\n"). */
function gateEncodeFileAsync(name, file, outDir, tokPath = null) {
  const out = path.join(outDir, `${name}-${tokPath}-${path.basename(file)}.ids`);
  const fd = fs.openSync(out, 'w');
  const child = spawn(GATE_BIN, ['encode', '--encoding', name, file],
    { stdio: ['ignore', fd, 'pipe'], env: pathEnv(tokPath) });
  fs.closeSync(fd);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (SANITIZER_RE.test(stderr) || signal || code !== 0)
        reject(new Error(`tokengate encode ${file}${onPath(tokPath)}: exit ${code}, signal ${signal}\n` +
          stderr.slice(0, 8000)));
      else resolve(fs.readFileSync(out, 'latin1'));
    });
  });
}

// tiktoken's ids for the corpus, one worker thread per encoding so that the two (a few seconds
// each) run side by side; both start when the first corpus test asks.
const CORPUS_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { get_encoding } = require(workerData.tiktoken);
const enc = get_encoding(workerData.name);
const text = new TextDecoder('utf-8', { ignoreBOM: true });
const ids = workerData.files.map((f) => enc.encode(text.decode(fs.readFileSync(f)), [], []));
enc.free();
parentPort.postMessage(ids);
`;
let corpusRef = null;

function corpusReference(name) {
  if (corpusRef === null) {
    corpusRef = new Map();
    for (const n of MAIN) {
      const w = new Worker(CORPUS_WORKER, {
        eval: true,
        workerData: { name: n, files: corpusFiles, tiktoken: require.resolve('tiktoken') },
      });
      const p = new Promise((resolve, reject) => {
        w.once('message', (ids) => resolve(ids.map((a) => Array.from(a))));
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`tiktoken worker (${n}) exited with ${code}`)));
      });
      p.catch(() => {}); // awaited by its test
      corpusRef.set(n, p);
    }
  }
  return corpusRef.get(name);
}

for (const name of MAIN) {
  test(`corpus: every file encodes as tiktoken encodes it on each path, and counts (${name})`,
    async () => {
      // CI always has the corpus: without it this is a failure, not a skip
      assert.ok(corpusFiles.length > 0, `no corpus (*.txt) at ${CORPUS}: set TG_CORPUS`);
      const reference = corpusReference(name);
      const dir = tempDir('tg-tok-');
      // each file encoded on each path, and counted (tok_count) on the default path, the one
      // the gate runs (test_tokpath compares every path's counts of the corpus with the scalar
      // path's ids), two processes at a time
      const jobs = [...pathsFor(name).flatMap((p) => corpusFiles.map((f, i) => ({ p, f, i }))),
        ...corpusFiles.map((f, i) => ({ p: null, f, i, count: true }))];
      const runs = await parallel(jobs, (j) => (j.count
        ? tgAsync(['count', '--encoding', name, j.f], '', j.p)
        : gateEncodeFileAsync(name, j.f, dir, j.p)), 2);
      const wants = await reference;
      // compared as text first: parsing a million ids for each run costs more than the run
      const wantText = wants.map((w) => `${w.join(' ')}\n`);
      const problems = [];
      jobs.forEach((j, k) => {
        const what = `${path.basename(j.f)} (${fs.statSync(j.f).size} bytes${onPath(j.p)})`;
        if (j.count) {
          const c = runs[k];
          if (c.status !== 0 || Number(c.stdout.toString().trim()) !== wants[j.i].length)
            problems.push(`${what}: count gives ${c.stdout.toString().trim()} (exit ${c.status}` +
              `${c.stderr ? ': ' + c.stderr.trim() : ''}), tiktoken ${wants[j.i].length} tokens`);
        } else if (runs[k] !== wantText[j.i] && !sameIds(wants[j.i], parseIds(runs[k]))) {
          problems.push(`${what}:\n${diffLines(name, wants[j.i], parseIds(runs[k]))}`);
        }
      });
      assert.ok(problems.length === 0, `${name}: corpus files differ from tiktoken:\n` +
        problems.join('\n'));
    });
}

// ---- 2. generated strings ----------------------------------------------------------------------

const edge = edgeCases();
const generated = generatedStrings(SEED, GENERATED);
const allStrings = [...edge, ...generated];

for (const name of ENCODINGS) {
  test(`generated strings: ${edge.length} edge cases and ${GENERATED} random strings encode as ` +
    `tiktoken encodes them${pathsFor(name)[0] ? ', on each path' : ''} (${name})`, async () => {
    await compareMany(name, allStrings);
  });
}

const long = longPieces(SEED + 2);
for (const name of ENCODINGS) {
  test(`pieces longer than 256 bytes merge as tiktoken merges them (${name})`, async () => {
    await compareMany(name, long, { label: 'long-piece strings' });
  });
}

// Probes of (nearly) every code point, each in contexts where its class shows in the ids: "1c23"
// (is it a digit?), "x  cy" (is it White_Space? it decides where the run of spaces ends),
// "xc's" (letter or punctuation? the contraction only follows a letter), and a few more where
// common characters merge with their neighbours. Whether a letter is upper or lower case
// (o200k) moves only boundaries next to the letter itself, which shows only where its bytes
// merge with a neighbour's: the generated strings cover that for the common letters. Large
// uniform blocks (CJK, Hangul, Tangut, private use) and unassigned code points are sampled.
function probeCodePoints() {
  const unassigned = /\p{Cn}/u;
  // Blocks of one category throughout (Lo, or Co for private use).
  const uniform = [[0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xa016, 0xa48c], [0xac00, 0xd7a3],
    [0xe000, 0xf8ff], [0x12000, 0x12399], [0x12480, 0x12543], [0x13000, 0x1342f],
    [0x13460, 0x143fa], [0x14400, 0x14646], [0x16800, 0x16a38], [0x17000, 0x187f7],
    [0x18800, 0x18cd5], [0x1b170, 0x1b2fb], [0x20000, 0x2fffd], [0x30000, 0x323af],
    [0xf0000, 0x10fffd]];
  const out = [];
  for (let c = 1; c <= 0x10ffff; c++) { // U+0000 has a test of its own
    if (c >= 0xd800 && c <= 0xdfff) continue;
    if (c >= 0x323b0 && c < 0xe0000) {
      c = 0xe0000 - 1;
      continue;
    }
    const u = uniform.find(([lo, hi]) => c >= lo && c <= hi);
    if (u && c !== u[0] && c !== u[1] && c % 97 !== 0) continue;
    const ch = String.fromCodePoint(c);
    if (unassigned.test(ch) && c % 61 !== 0) continue;
    out.push(c);
  }
  return out;
}

function probe(c) {
  const ch = String.fromCodePoint(c);
  return `1${ch}23|x  ${ch}y|x${ch}'s| ${ch}a|A${ch}${ch}b|.${ch}\n`;
}

const GC = ['Lu', 'Ll', 'Lt', 'Lm', 'Lo', 'Mn', 'Mc', 'Me', 'Nd', 'Nl', 'No', 'Zs', 'Zl', 'Zp', 'Cc',
  'Cf', 'Co', 'Cn', 'Pc', 'Pd', 'Ps', 'Pe', 'Pi', 'Pf', 'Po', 'Sm', 'Sc', 'Sk', 'So'];
const GC_RE = GC.map((g) => [g, new RegExp(`^\\p{gc=${g}}$`, 'u')]);

/** The general category node's ICU gives c (its Unicode version may be newer than tiktoken's). */
function category(c) {
  const ch = String.fromCodePoint(c);
  return (GC_RE.find(([, re]) => re.test(ch)) || ['?'])[0];
}

/** Code points as runs of one category: "U+1C89..U+1C8A Lu/Ll (2)". */
function codePointRuns(cps) {
  const hex = (c) => `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
  const runs = [];
  for (const c of cps) {
    const last = runs[runs.length - 1];
    if (last && c - last.hi <= 16) {
      last.hi = c;
      last.n++;
      last.gc.add(category(c));
    } else runs.push({ lo: c, hi: c, n: 1, gc: new Set([category(c)]) });
  }
  return runs.map((r) => `${hex(r.lo)}${r.hi > r.lo ? '..' + hex(r.hi) : ''} ${[...r.gc].join('/')} (${r.n})`);
}

const codePoints = probeCodePoints();
for (const name of MAIN) {
  test(`every code point class: ${codePoints.length} code points in probes, on each path ` +
    `(${name})`, async () => {
    const strings = codePoints.map(probe);
    const runs = gateEncodeEachPath(name, strings);
    const wants = strings.map((s) => refEncode(name, s));
    const wantText = jsonlText(wants);
    for (const [tokPath, run] of runs) {
      const out = await run;
      if (out.text === wantText) continue;
      const got = out.ids();
      const bad = codePoints.filter((c, i) => !sameIds(wants[i], got[i]));
      if (bad.length === 0) continue;
      const cpRuns = codePointRuns(bad);
      const shown = cpRuns.length > 150
        ? [...cpRuns.slice(0, 150), `... ${cpRuns.length - 150} more runs`] : cpRuns;
      const some = bad.slice(0, SHOW).map(probe);
      const again = gateEncodeMany(name, some, false, tokPath);
      const worse = some.map((s, i) => ({ i, want: refEncode(name, s), got: again[i] }))
        .filter((b) => !sameIds(b.want, b.got));
      assert.fail(`${name}${onPath(tokPath)}: ${bad.length} of ${codePoints.length} code points ` +
        'are classed differently (gaps up to 16 joined; categories from node\'s ICU):\n  ' +
        `${shown.join('\n  ')}\nthe first of them:\n` + (worse.length > 0
        ? reportBad(name, some, worse, { allow: false, label: 'code point probes', tokPath })
        : 'none of them differs when tried again'));
    }
  });
}

// tiktoken 1.0.22's regex tables (regex-syntax 0.8.5) are Unicode 16.0: letters and digits
// added in 15.1 and 16.0 count as letters and digits there.
for (const name of MAIN) {
  test(`characters added in Unicode 15.1 and 16.0 are classed as tiktoken classes them (${name})`,
    async () => {
      const strings = [];
      for (const ch of RECENT) strings.push(probe(ch.codePointAt(0)), `${ch}'s`, `1${ch}23`, `abc${ch}def`);
      await compareMany(name, strings, { label: 'strings with Unicode 15.1/16.0 characters' });
    });
}

// ---- 3. special tokens allowed -----------------------------------------------------------------

const WITH_SPECIALS = [
  '<|endoftext|>', 'a<|endoftext|>b', '<|endoftext|><|endoftext|>', ' <|endoftext|> ',
  'Hello<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>return 1',
  'prompt<|endofprompt|>completion', '<|endoftext', '<|endoftext|', '<<|endoftext|>>',
  '<|im_start|>user\nhi<|im_end|>', 'x<|endoftext|>\n\n<|endoftext|>y', '\u00e9<|endoftext|>\u0301',
  ...SPECIALS.map((s) => `text ${s} more ${s}`),
];

for (const name of MAIN) {
  test(`special tokens with --allow-special encode as tiktoken's encode(text, 'all'), on each ` +
    `path (${name})`, async () => {
    await compareMany(name, WITH_SPECIALS, { allow: true, label: 'strings with special tokens' });
    // And each special token alone, in a file run too: one id, the one tiktoken gives.
    for (const s of SPECIALS) {
      const want = refEncode(name, s, true);
      const got = gateEncodeBytes(name, Buffer.from(s), true);
      assert.deepEqual(got, want, `${JSON.stringify(s)} with --allow-special`);
    }
  });
}

test('special-token text is plain text without --allow-special, in file mode too', () => {
  for (const name of MAIN) {
    const s = 'a<|endoftext|>b<|endofprompt|><|fim_prefix|>';
    assert.deepEqual(gateEncodeBytes(name, Buffer.from(s)), refEncode(name, s), name);
  }
});

// ---- 4. decoding --------------------------------------------------------------------------------

function gateDecode(name, ids) {
  return tg(['decode', '--encoding', name, '-'], ids.join(' '));
}

for (const name of MAIN) {
  test(`round trip: decode(encode(x)) is x for every generated string (${name})`, () => {
    const valid = allStrings; // all well-formed UTF-16, so UTF-8 both ways
    const ids = gateEncodeMany(name, valid);
    const r = gateDecode(name, ids.flat());
    assert.equal(r.status, 0, `decode: exit ${r.status}: ${r.stderr}`);
    const want = Buffer.from(valid.join(''));
    if (!r.stdout.equals(want)) {
      // Which string holds the first differing byte?
      let at = 0;
      while (at < want.length && at < r.stdout.length && want[at] === r.stdout[at]) at++;
      let off = 0;
      let i = 0;
      for (; i < valid.length; i++) {
        const n = Buffer.byteLength(valid[i]);
        if (at < off + n) break;
        off += n;
      }
      assert.fail(`${name}: decoded bytes differ from the input at byte ${at}, in string #${i} ` +
        `${showText(valid[i] ?? '')}\n  ids ${JSON.stringify(ids[i])}\n` +
        `  decoded: ${showBytes(r.stdout.subarray(off, off + Buffer.byteLength(valid[i] ?? '') + 16))}`);
    }
  });
}

for (const name of ENCODINGS) {
  test(`decode: every id of the vocabulary gives tiktoken's bytes, and ids outside it fail (${name})`,
    () => {
      const ids = vocabulary(name);
      const e = tiktoken(name);
      const r = gateDecode(name, ids);
      assert.equal(r.status, 0, `decode of the whole vocabulary: exit ${r.status}: ${r.stderr}`);
      const want = Buffer.concat(ids.map((id) => e.decode_single_token_bytes(id)));
      if (!r.stdout.equals(want)) {
        // Find the first id whose bytes differ, decoding them one by one through the offsets.
        let off = 0;
        for (const id of ids) {
          const b = Buffer.from(e.decode_single_token_bytes(id));
          if (!r.stdout.subarray(off, off + b.length).equals(b))
            assert.fail(`${name}: id ${id} decodes to ${showBytes(r.stdout.subarray(off, off + b.length + 8))}..., ` +
              `tiktoken gives ${showBytes(b)}`);
          off += b.length;
        }
        assert.fail(`${name}: decoded vocabulary is ${r.stdout.length} bytes, want ${want.length}`);
      }
      // Unknown ids: the gaps inside the id range, the first past the end, and far beyond.
      const known = new Set(ids);
      const max = ids[ids.length - 1];
      const gaps = [];
      for (let id = 0; id <= max; id++) if (!known.has(id)) gaps.push(id);
      for (const bad of [...gaps.slice(0, 20), max + 1, 300000, 4294967295]) {
        const u = gateDecode(name, [100, 200, bad, 300]);
        assert.equal(u.status, 1, `decode of unknown id ${bad}: exit ${u.status}, stdout ` +
          `${showBytes(u.stdout)}, stderr ${u.stderr}`);
        assert.equal(u.stdout.length, 0, `decode of unknown id ${bad} wrote ${showBytes(u.stdout)}`);
        assert.match(u.stderr, new RegExp(`\\b${bad}\\b`), `a message naming id ${bad}`);
      }
    });
}

test('decode refuses what is not an id, writing nothing', () => {
  for (const input of ['9906 abc', '-1', '12x', '1.5', '99999999999999999999']) {
    const r = tg(['decode', '--encoding', 'cl100k_base', '-'], input);
    assert.equal(r.status, 1, `decode ${JSON.stringify(input)}: exit ${r.status}`);
    assert.equal(r.stdout.length, 0, `decode ${JSON.stringify(input)} wrote ${showBytes(r.stdout)}`);
    assert.ok(r.stderr.trim().length > 0, `a message for ${JSON.stringify(input)}`);
  }
  const empty = tg(['decode', '--encoding', 'cl100k_base', '-'], ' \n\t ');
  assert.equal(empty.status, 0, 'no ids: exit 0');
  assert.equal(empty.stdout.length, 0, 'no ids: nothing written');
});

// ---- 5. ill-formed UTF-8 and lone surrogates ---------------------------------------------------

const BAD_BYTES = [
  'a\xff b', '\xff', '\xfe\xff', '\xc0\x80', '\xc1\xbf', '\xe0\x80\x80', '\xe0\x9f\xbf',
  '\xf0\x80\x80\x80', '\xf0\x8f\xbf\xbf', '\xed\xa0\x80', '\xed\xbf\xbf', 'a\xed\xa0\x80b',
  '\xed\xa0\xbd\xed\xb8\x80', '\xf4\x90\x80\x80', '\xf5\x80\x80\x80', '\xf8\x88\x80\x80\x80',
  '\xfc\x84\x80\x80\x80\x80', '\xc3', 'a\xc3', '\xc3 ', '\xe2\x82', '\xe2\x82 x', '\xf0\x9f\x98',
  '\xf0\x9f', '\xf0', 'x\xf0\x9f\x98', '\x80', '\x80\x80\x80', '\xbf', 'caf\xe9', 'na\xefve',
  '\xe2\x82\xac\x80', 'ab\xf0\x9f\x98\x80\xf0\x9f\x98', 'don\x92t', '\xc3\x28', '\xa0\xa1',
  '\xe2\x28\xa1', '\xe2\x82\x28', '\xf0\x28\x8c\xbc', '\xf0\x90\x28\xbc', '\xf0\x28\x8c\x28',
  ' \xffabc', '1\xff2\xff3', '\xff\'s', "it\xff's", 'a\xff\r\n', '\xff   x', 'x  \xff', '\xff\xff\xff',
  'e\xcc', 'e\xcc\x81', '\xcc\x81', '\xef\xbb\xbf', '\xef\xbb', '\xef\xbf\xbd', '\xef\xbf\xbe',
  '\xf4\x8f\xbf\xbf', '\xf3\xa0\x80\x81', '\xe0\xa0', '\xe0\xa0\x80\xe0', '<|endoftext\xff|>',
].map((s) => Buffer.from(s, 'latin1'));

/** Cases whose first or last bytes are where a scanner could read past the input: a sequence
 * cut off by the end, or a continuation byte at the start. */
const EDGE_BYTES = BAD_BYTES.filter((b) => (b[0] >= 0x80 && b[0] <= 0xbf) ||
  new TextDecoder().decode(b, { stream: true }) !== replacing.decode(b));

for (const name of MAIN) {
  test(`ill-formed UTF-8 encodes as tiktoken encodes the text with U+FFFD for each maximal ` +
    `subpart, on each path (${name})`, async () => {
    // All listed cases in one input, one per line and run together; those at the edges of the
    // input each as a whole input of its own; and random ones joined into one input. The joined
    // inputs run on each path; those alone, one process each, on one path each in turn (the
    // paths are compared with each other on every prefix of such input by test_tokpath).
    const nl = Buffer.from('\n');
    const inputs = [
      Buffer.concat(BAD_BYTES.flatMap((b) => [b, nl])), Buffer.concat(BAD_BYTES), ...EDGE_BYTES,
      Buffer.concat(invalidUtf8Buffers(SEED + 1, 800)),
    ];
    const what = [`the listed cases, one per line`, `the listed cases run together`,
      ...EDGE_BYTES.map((b) => `<${b.toString('hex')}> alone`), 'random ill-formed input'];
    const paths = pathsFor(name);
    const alone = (i) => i >= 2 && i < 2 + EDGE_BYTES.length;
    const jobs = paths.flatMap((p, q) => inputs.map((b, i) => ({ p, b, i }))
      .filter(({ i }) => !alone(i) || i % paths.length === q));
    const runs = await parallel(jobs, (j) => tgAsync(['encode', '--encoding', name, '-'], j.b, j.p));
    const wants = inputs.map((b) => refEncode(name, replacing.decode(b)));
    const problems = [];
    jobs.forEach(({ p, b, i }, k) => {
      const text = replacing.decode(b);
      if (runs[k].status !== 0) {
        problems.push(`${what[i]}${onPath(p)}: exit ${runs[k].status}: ${runs[k].stderr}`);
        return;
      }
      const got = parseIds(runs[k].stdout.toString('latin1'));
      if (!sameIds(wants[i], got))
        problems.push(`${what[i]}${onPath(p)} (${b.length} bytes, read as ${showText(text, 200)}):\n` +
          diffLines(name, wants[i], got));
    });
    assert.ok(problems.length === 0, problems.join('\n'));
  });
}

// A JS string cannot reach tiktoken as anything but UTF-8: wasm-bindgen converts it with
// TextEncoder semantics, which turns a lone surrogate into U+FFFD. So tiktoken encodes
// "a\ud800b" exactly as "a\ufffdb" (checked below), and tokengate, which only ever sees bytes,
// must give the same ids for "a\ufffdb". The surrogate's own 3-byte form ED A0 80 is ill-formed
// UTF-8 and reads as three U+FFFD on both sides (the ill-formed UTF-8 test). A lone surrogate
// escape in a JSON string ("\ud800") is refused by --jsonl as not a JSON string (exit 1); the
// test also accepts encoding it as U+FFFD, like tiktoken, but nothing else.
for (const name of MAIN) {
  test(`a lone surrogate: tiktoken sees U+FFFD, and so does tokengate (${name})`, () => {
    const lone = refEncode(name, 'a\ud800b');
    assert.deepEqual(lone, refEncode(name, 'a\ufffdb'), 'tiktoken replaces the lone surrogate');
    assert.deepEqual(gateEncodeBytes(name, Buffer.from('a\ufffdb')), lone, 'a U+FFFD b from a file');
    assert.deepEqual(gateEncodeMany(name, ['a\ufffdb'])[0], lone, 'a U+FFFD b through --jsonl');
    for (const s of ['\ud800', 'x\udfff', '\udc00\ud800', '😀\ud83d', '\ud83d 1', '\ude00😀']) {
      const want = refEncode(name, s);
      assert.deepEqual(gateEncodeBytes(name, Buffer.from(s.toWellFormed())), want, JSON.stringify(s));
    }
    const r = tg(['encode', '--encoding', name, '--jsonl'], '"a\\ud800b"\n');
    assert.ok((r.status === 1 && r.stdout.length === 0 && r.stderr.trim() !== '') ||
      (r.status === 0 && sameIds(parseIds(r.stdout.toString()), lone)),
      `--jsonl with a lone surrogate escape: exit ${r.status}, stdout ${r.stdout}, stderr ${r.stderr}`);
    // An escaped surrogate pair is one well-formed character.
    const pair = tg(['encode', '--encoding', name, '--jsonl'], '"x\\ud83d\\ude00y"\n');
    assert.equal(pair.status, 0, `--jsonl with an escaped surrogate pair: ${pair.stderr}`);
    assert.deepEqual(parseIds(pair.stdout.toString()), refEncode(name, 'x😀y'), 'escaped pair');
  });
}

// U+0000 is an ordinary character to tiktoken. From a file tokengate must encode it like any
// other; through --jsonl ("\u0000" in a JSON string) it may encode it or refuse the line with a
// message and exit 1, but it must never cut the text short at the NUL and print the ids of what
// came before as if that were all.
for (const name of MAIN) {
  test(`NUL characters encode as tiktoken encodes them, or --jsonl refuses them (${name})`, () => {
    const cases = ['a\u0000b', '\u0000', 'x\u0000\u0000 y', 'hello\u0000world', ' \u0000\n'];
    for (const s of cases) {
      const want = refEncode(name, s);
      assert.deepEqual(gateEncodeBytes(name, Buffer.from(s)), want, `${JSON.stringify(s)} from a file`);
      const r = tg(['encode', '--encoding', name, '--jsonl'], `${JSON.stringify(s)}\n`);
      const out = r.stdout.toString('latin1');
      if (r.status === 0) {
        assert.deepEqual(parseIds(out), want, `${JSON.stringify(s)} through --jsonl`);
      } else {
        assert.equal(r.status, 1, `${JSON.stringify(s)} through --jsonl: exit ${r.status}`);
        assert.equal(out, '', `${JSON.stringify(s)} refused through --jsonl, yet ids were written`);
        assert.ok(r.stderr.trim().length > 0, 'a message for the refused line');
      }
    }
  });
}

// ---- 6. count -----------------------------------------------------------------------------------

test('count equals the number of ids encode gives, the inputs spread over the block paths', async () => {
  const inputs = ['', 'hello world', ' \u3000\r\n\t x', generated.slice(0, 200).join('\n'),
    'Hello, 世界! 😀 <|endoftext|>'];
  const jobs = [];
  for (const name of ENCODINGS) {
    for (const allow of [false, true]) {
      const some = allow ? inputs.slice(-1) : inputs; // specials change only the last one
      // each input on one of the block paths in turn, whose counting may differ from their
      // encoding (the scalar path counts as it encodes; the corpus test counts on the default)
      const paths = pathsFor(name).filter((q) => q !== 'scalar');
      paths.forEach((p, q) => {
        const mine = some.filter((s, i) => (i + (allow ? 1 : 0)) % paths.length === q);
        const encoded = gateEncodeMany(name, mine, allow, p);
        mine.forEach((s, i) => jobs.push({ name, allow, p, s, encoded: encoded[i] }));
      });
    }
  }
  const counts = await parallel(jobs, (j) =>
    tgAsync(['count', '--encoding', j.name, ...(j.allow ? ['--allow-special'] : []), '-'], j.s, j.p));
  jobs.forEach((j, i) => {
    const c = counts[i];
    const what = `${showText(j.s, 80)} (${j.name}${j.allow ? ', specials allowed' : ''}${onPath(j.p)})`;
    assert.equal(c.status, 0, `count of ${what}: exit ${c.status}: ${c.stderr}`);
    const n = Number(c.stdout.toString().trim());
    assert.equal(n, j.encoded.length, `count vs encode of ${what}`);
    assert.equal(n, refEncode(j.name, j.s, j.allow).length, `count vs tiktoken of ${what}`);
  });
});

// Whitespace alone, as a whole input: each White_Space character repeated, through a file run.
test('runs of each White_Space character as a whole file', () => {
  for (const name of MAIN) {
    const s = WHITE_SPACE.map((w) => `a${w.repeat(3)}b${w}\r\n${w}`).join('');
    assert.deepEqual(gateEncodeBytes(name, Buffer.from(s)), refEncode(name, s), name);
  }
});

test('a TOKENGATE_TOK_PATH the CPU does not have is said on stderr, and the default path counts',
  () => {
    const text = 'The forced path is checked, never silently ignored.';
    const want = refEncode('cl100k_base', text).length;
    for (const bad of ['bogus', 'sse', 'avx512']) {
      const r = tg(['count', '--encoding', 'cl100k_base', '-'], text, bad);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`TOKENGATE_TOK_PATH=${bad} is not a tokenizer path`));
      assert.equal(Number(r.stdout.toString('utf8').trim()), want);
    }
    const ok = tg(['count', '--encoding', 'cl100k_base', '-'], text, 'scalar');
    assert.equal(ok.stderr, '', 'a path the CPU has is taken without a word');
    assert.equal(Number(ok.stdout.toString('utf8').trim()), want);
  });
