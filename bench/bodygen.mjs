#!/usr/bin/env node
// Writes a pool of distinct OpenAI /v1/chat/completions request bodies, one JSON body a line,
// for the proxy benchmarks (bench/proxy-bench, bench/budget-proxy-bench, bench/profile-gate):
// each body is a system message and 3-9 turns cut from real text at random places, about
// --size bytes of JSON, so that every request carries text the gate must count anew (no
// cache keyed by the body can answer for it) while words recur as they do in real traffic.
// The same seed, source and options give the same bytes on every machine.
//
//   node bench/bodygen.mjs --out FILE [--count 3000] [--size 4096] [--seed 1] [--corpus DIR]
//
// Text: the four files of the benchmark corpus (DIR, default $TG_CORPUS or ../shared/corpus
// from the repo root: English prose, Python, C headers, short strings in 18 languages); when
// that directory is missing, the repository's own README files and gate/ C sources, so that
// the benchmarks run on a bare clone. Prints one summary line to stderr.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const opt = { out: '', count: 3000, size: 4096, seed: 1,
  corpus: process.env.TG_CORPUS || path.join(ROOT, '..', 'shared', 'corpus') };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, ''), v = process.argv[i + 1];
  if (!(k in opt) || v === undefined) {
    console.error(`bodygen: unknown option or missing value: ${process.argv[i]}`);
    process.exit(2);
  }
  opt[k] = typeof opt[k] === 'number' ? Number(v) : v;
}
if (!opt.out || !(opt.count >= 1 && opt.count <= 100000) || !(opt.size >= 512 && opt.size <= 1 << 20)) {
  console.error('bodygen: --out FILE is required; --count 1..100000; --size 512..1048576');
  process.exit(2);
}

// mulberry32: a small seeded generator, the same sequence everywhere
let state = opt.seed >>> 0;
const rand = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = n => Math.floor(rand() * n);

// sources: name -> non-empty lines; weights say how often a message draws from each
function load(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter(l => l.trim() !== '');
}
let sources, from;
const corpusFiles = ['en_prose.txt', 'code_py.txt', 'code_c.txt', 'multilingual.txt'];
if (corpusFiles.every(f => fs.existsSync(path.join(opt.corpus, f)))) {
  from = opt.corpus;
  sources = {
    prose: load(path.join(opt.corpus, 'en_prose.txt')),
    py: load(path.join(opt.corpus, 'code_py.txt')),
    c: load(path.join(opt.corpus, 'code_c.txt')),
    intl: load(path.join(opt.corpus, 'multilingual.txt')),
  };
} else {
  from = 'the repository (README files and gate/ sources; no corpus at ' + opt.corpus + ')';
  const md = [], c = [];
  const walk = dir => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name < b.name ? -1 : 1)) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) md.push(...load(p));
      else if (e.name.endsWith('.c')) c.push(...load(p));
    }
  };
  md.push(...load(path.join(ROOT, 'README.md')));
  walk(path.join(ROOT, 'gate'));
  sources = { prose: md, py: md, c, intl: md };
}
// what a message of each role is drawn from, by weight
const mix = {
  system: [['prose', 1]],
  user: [['prose', 4], ['py', 2], ['c', 2], ['intl', 2]],
  assistant: [['prose', 5], ['py', 2], ['c', 2], ['intl', 1]],
};
function source(role) {
  const m = mix[role], total = m.reduce((s, [, w]) => s + w, 0);
  let r = rand() * total;
  for (const [name, w] of m) if ((r -= w) < 0) return sources[name];
  return sources[m[0][0]];
}
// bytes a string adds inside a JSON string literal
const jsonBytes = s => Buffer.byteLength(JSON.stringify(s)) - 2;

function body() {
  const turns = 3 + pick(7); // user/assistant messages after the system message, ending on a user's
  const roles = ['system'];
  for (let t = 0; t < turns; t++) roles.push(t % 2 === 0 ? 'user' : 'assistant');
  if (roles[roles.length - 1] !== 'user') roles.push('user');
  const shell = { model: 'gpt-4o-mini', messages: roles.map(role => ({ role, content: '' })),
    max_tokens: 64, temperature: 0.2 };
  let room = opt.size - Buffer.byteLength(JSON.stringify(shell));
  // each message's share of the room: uneven, as in real conversations
  const w = roles.map(() => 0.3 + rand());
  const wsum = w.reduce((a, b) => a + b, 0);
  roles.forEach((role, i) => {
    let want = Math.floor(room * w[i] / wsum), text = '';
    const lines = source(role);
    let at = pick(lines.length);
    for (let guard = 0; want > 0 && guard < 10000; guard++) {
      const line = lines[at] + '\n';
      const b = jsonBytes(line);
      if (b <= want) { text += line; want -= b; at = (at + 1) % lines.length; continue; }
      // the last line cut to what is left, on a character boundary
      for (const ch of line) {
        const cb = jsonBytes(ch);
        if (cb > want) break;
        text += ch; want -= cb;
      }
      break;
    }
    shell.messages[i].content = text.replace(/\n$/, '');
  });
  return JSON.stringify(shell);
}

const seen = new Set(), out = [];
for (let tries = 0; out.length < opt.count && tries < opt.count * 10; tries++) {
  const b = body();
  if (seen.has(b)) continue;
  seen.add(b);
  out.push(b);
}
if (out.length < opt.count) {
  console.error(`bodygen: only ${out.length} distinct bodies of ${opt.count} from ${from}`);
  process.exit(1);
}
fs.writeFileSync(opt.out, out.join('\n') + '\n');
const sizes = out.map(b => Buffer.byteLength(b)).sort((a, b) => a - b);
console.error(`bodygen: ${out.length} distinct bodies, ${sizes[0]}-${sizes[sizes.length - 1]} bytes ` +
  `(median ${sizes[sizes.length >> 1]}), seed ${opt.seed}, text from ${from}`);
