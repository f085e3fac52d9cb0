// The gate's own token count of every request, beside the provider's: what the request log
// says, what /status says, and the config that steers it. The mock counts usage the way OpenAI
// does (with tokengate's tokenizer); x-mock-usage-skew and x-mock-output-skew make it disagree
// by a known amount. Expected counts, the gate's and the mock's alike, are computed here from the
// npm tiktoken package and the APIs' formulas, independently of the C code, so that a drift of 0
// is checked, not assumed.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import {
  test, cleanup, startMock, startGate, mockProviders, newId, runGate, parseSSE, tempDir, rawRequest,
} from './harness.mjs';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { get_encoding } = require('tiktoken');
const o200k = get_encoding('o200k_base');
const cl100k = get_encoding('cl100k_base');

let mock, gate;

before(async () => {
  mock = await startMock();
  const base = mockProviders(mock.url);
  gate = await startGate({
    config: {
      providers: base.providers,
      models: {
        ...base.models,
        'gpt-4.1-drift': 'mock-openai',
        'gpt-4.1-rdrift': 'mock-openai',
        'claude-drift': { provider: 'mock-anthropic', upstream_model: 'claude-haiku-4-5' },
        'forced-cl100k': { provider: 'mock-openai', upstream_model: 'gpt-4o-mini',
          encoding: 'cl100k_base' },
        'claude-calibrated': { provider: 'mock-anthropic', upstream_model: 'claude-haiku-4-5',
          token_calibration: 1.5 },
      },
    },
  });
});

after(() => {
  o200k.free();
  cl100k.free();
  return cleanup();
});

const PROMPT = 'Count me: naïve café, Ünïcödé — 中文字符, русский текст, 12345 and emoji 👩‍💻!';
const n = (enc, s) => enc.encode(s, [], []).length;
// OpenAI's formula: 3 per message, the role and content, 3 to prime the reply
const chatInput = (enc, msgs) =>
  msgs.reduce((t, m) => t + 3 + n(enc, m.role) + n(enc, m.content) + (m.name ? n(enc, m.name) + 1 : 0), 0) + 3;

// Responses: the instructions, 3 for the input message and its text, 3 to prime the reply.
const respInput = (enc, input, instructions) =>
  (instructions ? n(enc, instructions) : 0) + 3 + n(enc, input) + 3;
// Anthropic's, as the gate estimates it with cl100k: the system text, 3 and the text of each
// message, 3 to prime the reply.
const msgText = (c) => (typeof c === 'string' ? c : c.map((b) => b.text).join(''));
const msgInput = (enc, body) => n(enc, body.system ?? '') +
  body.messages.reduce((t, m) => t + 3 + n(enc, msgText(m.content)), 0) + 3;

/** The reply text of a response of the API at path p, streamed or not. */
function replyText(p, r, stream) {
  const ev = stream ? parseSSE(r.text) : [];
  if (p === '/v1/chat/completions') {
    return stream ? ev.filter((e) => e.json?.choices).map((e) => e.json.choices[0]?.delta?.content ?? '').join('')
      : r.json.choices[0].message.content;
  }
  if (p === '/v1/responses') {
    return stream ? ev.filter((e) => e.event === 'response.output_text.delta').map((e) => e.json.delta).join('')
      : r.json.output[0].content[0].text;
  }
  return stream ? ev.filter((e) => e.event === 'content_block_delta').map((e) => e.json.delta.text).join('')
    : r.json.content[0].text;
}

function checkCount(rec, { encoding, input, approximate = false }) {
  assert.ok(rec.count, `record ${rec.id} has a count`);
  assert.equal(rec.count.encoding, encoding);
  if (input !== undefined) assert.equal(rec.count.input, input, 'our input count');
  assert.equal(rec.count.approximate, approximate);
  assert.ok(Number.isInteger(rec.count.count_us) && rec.count.count_us >= 0, 'count_us');
  assert.ok(rec.usage, 'the provider gave usage');
  assert.equal(rec.count.input_diff, rec.usage.input - rec.count.input, 'input_diff');
}

test('chat: input counted by the formula, output by the reply text, no drift', async () => {
  const msgs = [{ role: 'system', content: 'Be brief.' }, { role: 'user', name: 'ana', content: PROMPT }];
  for (const stream of [false, true]) {
    const id = newId('count-chat');
    const r = await gate.post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: msgs, stream },
      { 'x-mock-tokens': '9', 'x-request-id': id });
    assert.equal(r.status, 200, r.text);
    const rec = await gate.logRecord(id);
    checkCount(rec, { encoding: 'o200k_base', input: chatInput(o200k, msgs) });
    const text = stream
      ? parseSSE(r.text).filter((e) => e.json?.choices).map((e) => e.json.choices[0]?.delta?.content ?? '').join('')
      : r.json.choices[0].message.content;
    assert.equal(rec.count.output, n(o200k, text), 'our output count is the reply text\'s');
    assert.equal(rec.count.input_diff, 0);
    assert.equal(rec.count.output_diff, 0);
  }
});

test('messages, responses and embeddings are counted too', async () => {
  const cases = [
    ['/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: PROMPT }] },
      'cl100k_base', true],
    ['/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 64, stream: true,
      messages: [{ role: 'user', content: [{ type: 'text', text: PROMPT }] }] }, 'cl100k_base', true],
    ['/v1/responses', { model: 'gpt-4.1-mini', input: PROMPT }, 'o200k_base', false],
    ['/v1/responses', { model: 'gpt-4.1-mini', input: PROMPT, stream: true }, 'o200k_base', false],
    ['/v1/embeddings', { model: 'text-embedding-3-small', input: [PROMPT, 'second'] }, 'cl100k_base', false],
  ];
  for (const [p, body, encoding, approximate] of cases) {
    const id = newId('count-any');
    const headers = { 'x-request-id': id, 'x-mock-tokens': '7', 'x-mock-split': '1' };
    if (p.startsWith('/v1/messages')) headers['anthropic-version'] = '2023-06-01';
    const r = await gate.post(p, body, headers);
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    const rec = await gate.logRecord(id);
    const what = `${p} stream=${!!body.stream}`;
    const enc = encoding === 'o200k_base' ? o200k : cl100k;
    // the gate's count, and the mock's usage, against a reference computed here
    const input = p === '/v1/embeddings' ? n(cl100k, PROMPT) + n(cl100k, 'second')
      : p === '/v1/responses' ? respInput(enc, body.input, body.instructions)
        : msgInput(enc, body);
    checkCount(rec, { encoding, approximate, input });
    assert.equal(rec.usage.input, input, `${what}: the mock's input`);
    assert.equal(rec.count.input_diff, 0, `${what}: input drift`);
    if (p === '/v1/embeddings') {
      assert.equal(rec.count.output, null);
    } else {
      // words split across deltas (x-mock-split) are counted once
      const text = replyText(p, r, !!body.stream);
      assert.equal(rec.count.output, n(enc, text), `${what}: output`);
      assert.equal(rec.usage.output, 7, `${what}: the mock's output`);
      assert.equal(rec.count.output_diff, 7 - n(enc, text), `${what}: output drift`);
    }
  }
});

test('a provider that counts differently shows in the log and in /status', async () => {
  // the mock's own rule: the reference count plus x-mock-usage-skew in, the reply text's tokens
  // plus x-mock-output-skew out; /status must report those known skews
  const skews = [[4, 2], [8, 6], [0, 0], [12, 4]];
  const mean = (k) => skews.reduce((a, s) => a + s[k], 0) / skews.length;
  const msgs = [{ role: 'user', content: PROMPT }];
  const cases = [
    ['/v1/chat/completions', 'gpt-4.1-drift', { model: 'gpt-4.1-drift', messages: msgs },
      chatInput(o200k, msgs)],
    ['/v1/responses', 'gpt-4.1-rdrift', { model: 'gpt-4.1-rdrift', input: PROMPT },
      respInput(o200k, PROMPT)],
    ['/v1/messages', 'claude-drift', { model: 'claude-drift', max_tokens: 64, messages: msgs },
      msgInput(cl100k, { messages: msgs })],
  ];
  for (const [p, model, body, ours] of cases) {
    for (const [inSkew, outSkew] of skews) {
      const id = newId('count-skew');
      const r = await gate.post(p, body, { 'x-request-id': id, 'x-mock-tokens': '5',
        'x-mock-usage-skew': String(inSkew), 'x-mock-output-skew': String(outSkew) });
      assert.equal(r.status, 200, r.text);
      const rec = await gate.logRecord(id);
      assert.equal(rec.count.input, ours, `${p}: our input`);
      assert.equal(rec.usage.input, ours + inSkew, `${p}: the provider's input`);
      assert.equal(rec.count.input_diff, inSkew);
      assert.equal(rec.count.output, 5);
      assert.equal(rec.usage.output, 5 + outSkew);
      assert.equal(rec.count.output_diff, outSkew);
    }
    const st = await gate.status();
    assert.equal(st.status, 200);
    const d = st.json.token_count_drift[model];
    assert.ok(d, `/status has ${model}: ${st.text}`);
    assert.equal(d.requests, skews.length);
    assert.equal(d.mean_input_diff, mean(0), `${model}: mean input drift`);
    assert.equal(d.mean_output_diff, mean(1), `${model}: mean output drift`);
    const n4 = skews.length;
    assert.equal(d.input_ratio, Math.round(((ours * n4 + mean(0) * n4) / (ours * n4)) * 1e4) / 1e4);
  }
});

test('config: a model\'s encoding and calibration factor are used', async () => {
  const msgs = [{ role: 'user', content: PROMPT }];
  let id = newId('count-enc');
  let r = await gate.post('/v1/chat/completions', { model: 'forced-cl100k', messages: msgs },
    { 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  let rec = await gate.logRecord(id);
  assert.equal(rec.count.encoding, 'cl100k_base');
  assert.equal(rec.count.input, chatInput(cl100k, msgs));

  // the same Anthropic request, without and with a factor of 1.5
  const body = (model) => ({ model, max_tokens: 32, messages: [{ role: 'user', content: PROMPT }] });
  const h = (i) => ({ 'x-request-id': i, 'anthropic-version': '2023-06-01' });
  const plainId = newId('count-cal0');
  r = await gate.post('/v1/messages', body('claude-haiku-4-5'), h(plainId));
  assert.equal(r.status, 200, r.text);
  id = newId('count-cal');
  r = await gate.post('/v1/messages', body('claude-calibrated'), h(id));
  assert.equal(r.status, 200, r.text);
  const plain = await gate.logRecord(plainId);
  rec = await gate.logRecord(id);
  assert.equal(rec.count.approximate, true);
  assert.equal(rec.count.input, Math.ceil(plain.count.input * 1.5));
});

test('a body the counter cannot read is still forwarded, its count null', async () => {
  const id = newId('count-odd');
  const r = await gate.post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: 'not a list' },
    { 'x-request-id': id });
  const rec = await gate.logRecord(id);
  assert.equal(rec.upstream_status, r.status, 'the provider answered');
  assert.equal(rec.count.input, null);
});

// The gate parses a body with simdjson and hands what simdjson refuses to cJSON, which reads
// more than JSON (gate/util/jsonfast.cpp): such bodies are served and counted as any other.
test('bodies only cJSON reads (raw control bytes, a BOM, ill-formed UTF-8) are counted and forwarded', async () => {
  const text = 'tab\there, a raw \x01 byte, café';
  const json = (content) => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
  const cases = [
    // control bytes left raw in the string (JSON wants them escaped)
    ['raw control bytes', Buffer.from(json(text).replace('\\t', '\t').replace('\\u0001', '\x01')), text],
    // a byte-order mark before the body
    ['a byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json('hello'))]), 'hello'],
    // ill-formed UTF-8 in the string: counted as text with U+FFFD for each maximal subpart
    ['ill-formed UTF-8', Buffer.concat([Buffer.from(json('ab').slice(0, -4)), Buffer.from([0xff, 0xe2, 0x82]),
      Buffer.from('cd"}]}')]), Buffer.from([0x61, 0x62, 0xff, 0xe2, 0x82, 0x63, 0x64]).toString('utf8')],
  ];
  for (const [name, body, content] of cases) {
    assert.throws(() => JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body)),
      undefined, `${name}: not strict JSON`);
    const id = newId('count-lax');
    const before = (await mock.stats()).requests;
    const r = await rawRequest(gate.port, Buffer.concat([Buffer.from('POST /v1/chat/completions HTTP/1.1\r\n' +
      `Host: 127.0.0.1\r\ncontent-type: application/json\r\nx-request-id: ${id}\r\n` +
      `content-length: ${body.length}\r\n\r\n`, 'latin1'), body]));
    assert.equal(r.status, 200, `${name}: ${r.body}`);
    assert.equal((await mock.stats()).requests, before + 1, `${name}: forwarded once`);
    const rec = await gate.logRecord(id);
    checkCount(rec, { encoding: 'o200k_base', input: chatInput(o200k, [{ role: 'user', content }]) });
  }
});

test('config: an unknown encoding or a bad calibration is a clear error', async () => {
  const dir = tempDir();
  const write = (model) => {
    const p = path.join(dir, 'bad.yaml');
    fs.writeFileSync(p, `listen: 127.0.0.1:0\nproviders:\n  p:\n    base_url: http://127.0.0.1:9/v1\n` +
      `    format: openai\nmodels:\n  m:\n${model}`);
    return p;
  };
  let r = runGate(['serve', '--check', '--config', write('    provider: p\n    encoding: gpt2_base\n')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.yaml:\d+: model 'm': unknown encoding 'gpt2_base'/);
  r = runGate(['serve', '--check', '--config', write('    provider: p\n    token_calibration: lots\n')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /token_calibration must be a number from 0\.1 to 10/);
  r = runGate(['serve', '--check', '--config', write('    provider: p\n    encoding: o200k_base\n    token_calibration: 1.2\n')]);
  assert.equal(r.status, 0, r.stderr);
});
