#!/usr/bin/env node
// Turns the encoder data of the npm `tiktoken` package into the rank files that are built into
// tokengate (tokenizer/data/<encoding>.tkr). Run once, by hand, when the pinned package changes:
//
//   npm install --prefix /tmp/tk tiktoken@1.0.22
//   node tokenizer/gen-ranks.mjs /tmp/tk/node_modules/tiktoken/encoders
//
// Every input file is checked against the SHA-256 pinned below before anything is written, so a
// different package version fails loudly instead of changing the tokenizer silently.
//
// Output format (little-endian):
//   "TKR1"             magic
//   u32 n              one past the largest mergeable rank
//   u8  len[n]         byte length of each rank's token (1..128), 0 for a rank with no token
//                      (p50k_base has a hole where its <|endoftext|> is)
//   u8  bytes[]        the tokens' bytes, concatenated in rank order
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const PINNED = {
  cl100k_base: '49a4e05dea02c8fafbd50cc4725c4aab8f39386c0afedef118e0dfebc2fe523a',
  o200k_base: 'df53e1a5f146e33a1b144d12ad9d685ee1b54dbc8b0950791ed45c933b119dc1',
  p50k_base: 'f1f1f3a216c670d53b56cd3077e16e2e60644482584521881e95996d9310034e',
  r50k_base: '199cf7ee5013d4cd95015d672fdc9d9d8ebf942f69fc5ed424148add1f533493',
};

const src = process.argv[2];
if (!src) {
  console.error('usage: gen-ranks.mjs <tiktoken package encoders directory>');
  process.exit(2);
}
const outDir = join(dirname(fileURLToPath(import.meta.url)), 'data');
const sums = [];

for (const [name, want] of Object.entries(PINNED)) {
  const raw = readFileSync(join(src, `${name}.json`));
  const got = createHash('sha256').update(raw).digest('hex');
  if (got !== want) {
    console.error(`${name}.json: SHA-256 ${got}, expected ${want}; refusing to generate`);
    process.exit(1);
  }
  const enc = JSON.parse(raw);
  // bpe_ranks is lines of "! <first rank> <token> <token> ...", tokens in base64
  const byRank = [];
  for (const line of enc.bpe_ranks.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    if (fields[0] !== '!' || !/^[0-9]+$/.test(fields[1]))
      throw new Error(`${name}: a bpe_ranks line does not start with "! <rank>"`);
    let r = Number(fields[1]);
    for (const b of fields.slice(2)) {
      if (byRank[r] !== undefined) throw new Error(`${name}: rank ${r} given twice`);
      byRank[r++] = Buffer.from(b, 'base64');
    }
  }
  const toks = Array.from(byRank, (t) => t ?? Buffer.alloc(0));
  const lens = Buffer.alloc(toks.length);
  const seen = new Set();
  let holes = 0;
  toks.forEach((t, i) => {
    if (t.length === 0) {
      holes++;
      return;
    }
    if (t.length > 255) throw new Error(`${name}: rank ${i} has ${t.length} bytes`);
    const k = t.toString('latin1');
    if (seen.has(k)) throw new Error(`${name}: rank ${i} repeats an earlier token`);
    seen.add(k);
    lens[i] = t.length;
  });
  for (const [text, id] of Object.entries(enc.special_tokens))
    if (id < toks.length && toks[id].length > 0)
      throw new Error(`${name}: special token ${text} has the id of rank ${id}`);
  const head = Buffer.alloc(8);
  head.write('TKR1', 0, 'latin1');
  head.writeUInt32LE(toks.length, 4);
  const out = Buffer.concat([head, lens, ...toks]);
  writeFileSync(join(outDir, `${name}.tkr`), out);
  const osum = createHash('sha256').update(out).digest('hex');
  sums.push(`${osum}  ${name}.tkr`);
  console.log(`${name}: ranks 0..${toks.length - 1} (${holes} without a token), ${out.length} bytes, specials ${JSON.stringify(enc.special_tokens)}`);
}
writeFileSync(join(outDir, 'SHA256SUMS'), sums.join('\n') + '\n');
