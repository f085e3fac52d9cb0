// Response-cache replays through the official SDKs' own stream helpers (issue 13, cache/replay):
// openai's chat.completions.stream(...).finalChatCompletion() and @anthropic-ai/sdk's
// messages.stream(...).finalMessage() gather a replayed stream with their own checks (tool call
// indexes, event order, the usage of message_start and message_delta). A whole entry replayed as
// a stream, and a stream entry answering a whole request, must give the same answer as the
// original: text, three parallel tool calls (interleaved deltas for OpenAI) with their ids, names
// and arguments, stop reasons and stop sequences, usage. A stream entry answering a stream sends
// the very events the client got the first time. Translated streams (a client of one API on a
// model of the other) are cached in the client's API and replay the same way.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import { ChatCompletionStream } from 'openai/lib/ChatCompletionStream';
import Anthropic from '@anthropic-ai/sdk';
import { test, cleanup, startMock, startGate, tempDir, parseSSE, newId, ms } from './harness.mjs';

const KEY = 'tg-rp-agent-key-0000001';
const q = (s) => JSON.stringify(s);

let mock, gate, openai, anthropic;

before(async () => {
  mock = await startMock();
  const dir = tempDir('tg-replay-');
  const configText = [
    'listen: 127.0.0.1:0',
    'workers: 1',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'providers:',
    `  mock-openai: { base_url: ${q(`${mock.url}/v1`)}, format: openai }`,
    `  mock-anthropic: { base_url: ${q(`${mock.url}/v1`)}, format: anthropic }`,
    'models:',
    '  gpt-4o-mini: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }',
    '  claude-haiku-4-5: { provider: mock-anthropic, price: { input: 1, output: 5 } }',
    'tiers:',
    '  anth: [claude-haiku-4-5]',
    '  oai: [gpt-4o-mini]',
    'routing: { aliases: { to-anthropic: anth, to-openai: oai } }',
    'org: acme',
    'departments:',
    '  d:',
    '    teams:',
    '      t:',
    '        agents:',
    '          a1:',
    'keys:',
    `  ${KEY}: a1`,
    'budgets:',
    '  - { scope: org, window: day, tokens: 100000000 }',
    `ledger: { path: ${q(path.join(dir, 'ledger.db'))} }`,
  ].join('\n') + '\n';
  gate = await startGate({ configText, dir });
  openai = new OpenAI({ baseURL: `${gate.url}/v1`, apiKey: KEY, maxRetries: 0,
    timeout: ms(30000) });
  anthropic = new Anthropic({ baseURL: gate.url, apiKey: KEY, maxRetries: 0,
    timeout: ms(30000) });
});

after(cleanup);

const mockCount = async () => (await mock.stats()).requests;

const oaTools = ['get_weather', 'get_time', 'search'].map((name) => ({
  type: 'function', function: { name, parameters: { type: 'object' } } }));
const anTools = ['get_weather', 'get_time', 'search'].map((name) => ({
  name, input_schema: { type: 'object' } }));

/** Three parallel calls after four words; OpenAI's call deltas round-robin. */
const calls3 = { 'x-mock-tools': '3', 'x-mock-tool-text': '4', 'x-mock-interleave': '1',
  'x-mock-cached': '5' };

/** A chat stream gathered by the SDK's ChatCompletionStream: {cache: the header, final}. */
async function oaStream(body, headers) {
  const { data, response } = await openai.chat.completions
    .create({ ...body, stream: true }, { headers }).withResponse();
  const runner = ChatCompletionStream.fromReadableStream(data.toReadableStream());
  return { cache: response.headers.get('x-tokengate-cache'),
    final: await runner.finalChatCompletion() };
}

function chat(tag, patch = {}) {
  return { model: 'gpt-4o-mini', temperature: 0, tools: oaTools,
    messages: [{ role: 'user', content: `replay ${tag} ${newId('r')}` }], ...patch };
}

function messages(tag, patch = {}) {
  return { model: 'claude-haiku-4-5', max_tokens: 200, temperature: 0, tools: anTools,
    messages: [{ role: 'user', content: `replay ${tag} ${newId('r')}` }], ...patch };
}

/** What must be the same in two chat completions (the SDK adds nothing of its own here). */
function oaAnswer(c) {
  const m = c.choices[0].message;
  return {
    id: c.id, model: c.model, created: c.created,
    content: m.content,
    tool_calls: (m.tool_calls ?? []).map((t) => ({ id: t.id, type: t.type,
      name: t.function.name, arguments: t.function.arguments })),
    finish_reason: c.choices[0].finish_reason,
    usage: c.usage,
  };
}

function anAnswer(m) {
  return { id: m.id, model: m.model, content: m.content, stop_reason: m.stop_reason,
    stop_sequence: m.stop_sequence, usage: m.usage };
}

test('OpenAI: a whole entry replayed as a stream, gathered by the SDK, is the same answer', async () => {
  const body = chat('oa-whole');
  const { data: whole, response: r1 } = await openai.chat.completions
    .create(body, { headers: calls3 }).withResponse();
  assert.equal(r1.headers.get('x-tokengate-cache'), 'miss');
  assert.equal(whole.choices[0].message.tool_calls.length, 3);
  const before = await mockCount();

  const { cache, final: got } = await oaStream(
    { ...body, stream_options: { include_usage: true } }, calls3);
  assert.equal(cache, 'hit');
  assert.deepEqual(oaAnswer(got), oaAnswer(whole));
  for (const c of got.choices[0].message.tool_calls) JSON.parse(c.function.arguments);

  // without include_usage the replay sends no usage chunk
  const raw = await gate.post('/v1/chat/completions', { ...body, stream: true },
    { authorization: `Bearer ${KEY}`, ...calls3 });
  assert.equal(raw.headers['x-tokengate-cache'], 'hit');
  const events = parseSSE(raw.text);
  assert.equal(events.at(-1).data, '[DONE]');
  assert.ok(events.slice(0, -1).every((e) => !JSON.parse(e.data).usage), 'a usage chunk');
  assert.equal(await mockCount(), before, 'a hit was forwarded');
});

test('OpenAI: a stream entry answers a whole request with what the SDK gathered from it', async () => {
  const body = chat('oa-stream', { stream_options: { include_usage: true } });
  const { cache, final: first } = await oaStream(body, calls3);
  assert.equal(cache, 'miss');
  assert.equal(first.choices[0].message.tool_calls.length, 3);
  assert.ok(first.usage.prompt_tokens > 0);
  const before = await mockCount();
  const { stream_options: _, ...plain } = body;
  const { data: whole, response } = await openai.chat.completions
    .create(plain, { headers: calls3 }).withResponse();
  assert.equal(response.headers.get('x-tokengate-cache'), 'hit');
  assert.equal(whole.object, 'chat.completion');
  assert.deepEqual(oaAnswer(whole), oaAnswer(first));
  assert.equal(await mockCount(), before);
});

test('OpenAI: a stream entry answers a stream with the very events the client got', async () => {
  const body = { ...chat('oa-same'), stream: true, stream_options: { include_usage: true } };
  const h = { authorization: `Bearer ${KEY}`, ...calls3 };
  const r1 = await gate.post('/v1/chat/completions', body, h);
  assert.equal(r1.headers['x-tokengate-cache'], 'miss');
  const r2 = await gate.post('/v1/chat/completions', body, h);
  assert.equal(r2.headers['x-tokengate-cache'], 'hit');
  assert.equal(r2.text, r1.text);
  assert.ok(parseSSE(r2.text).length > 20);
});

test('Anthropic: a whole entry replayed as a stream, gathered by the SDK, is the same message', async () => {
  const body = messages('an-whole');
  const h = { ...calls3, 'x-mock-cache-write': '2' };
  const { data: whole, response: r1 } = await anthropic.messages.create(body, { headers: h })
    .withResponse();
  assert.equal(r1.headers.get('x-tokengate-cache'), 'miss');
  assert.equal(whole.content.filter((b) => b.type === 'tool_use').length, 3);
  const before = await mockCount();
  const s = anthropic.messages.stream(body, { headers: h });
  const { response: r2 } = await s.withResponse();
  assert.equal(r2.headers.get('x-tokengate-cache'), 'hit');
  const got = await s.finalMessage();
  assert.deepEqual(anAnswer(got), anAnswer(whole));
  assert.equal(await mockCount(), before);
});

test('Anthropic: a stream entry answers a whole request with what the SDK gathered from it', async () => {
  const body = messages('an-stream');
  const first = await anthropic.messages.stream(body, { headers: calls3 }).finalMessage();
  assert.equal(first.content.filter((b) => b.type === 'tool_use').length, 3);
  const { data: whole, response } = await anthropic.messages.create(body, { headers: calls3 })
    .withResponse();
  assert.equal(response.headers.get('x-tokengate-cache'), 'hit');
  assert.deepEqual(anAnswer(whole), anAnswer(first));
});

test('Anthropic: a stop sequence goes across a replay both ways', async () => {
  const body = messages('an-stop', { tools: undefined, stop_sequences: ['and'] });
  const h = { 'x-mock-tokens': '12' };
  const whole = await anthropic.messages.create(body, { headers: h });
  assert.equal(whole.stop_reason, 'stop_sequence');
  assert.equal(whole.stop_sequence, 'and');
  const s = anthropic.messages.stream(body, { headers: h });
  const { response } = await s.withResponse();
  assert.equal(response.headers.get('x-tokengate-cache'), 'hit');
  assert.deepEqual(anAnswer(await s.finalMessage()), anAnswer(whole));

  const sbody = messages('an-stop-s', { tools: undefined, stop_sequences: ['and'] });
  const first = await anthropic.messages.stream(sbody, { headers: h }).finalMessage();
  assert.equal(first.stop_sequence, 'and');
  const { data: w, response: r } = await anthropic.messages.create(sbody, { headers: h })
    .withResponse();
  assert.equal(r.headers.get('x-tokengate-cache'), 'hit');
  assert.deepEqual(anAnswer(w), anAnswer(first));
});

test('translated: an OpenAI client streaming from an Anthropic model, replayed both ways', async () => {
  const body = chat('x-oa', { model: 'to-anthropic', max_tokens: 200,
    stream_options: { include_usage: true } });
  const { cache, final: first } = await oaStream(body, calls3);
  assert.equal(cache, 'miss');
  assert.equal(first.choices[0].message.tool_calls.length, 3);
  const before = await mockCount();
  const { stream_options: _, ...plain } = body;
  const { data: whole, response } = await openai.chat.completions
    .create(plain, { headers: calls3 }).withResponse();
  assert.equal(response.headers.get('x-tokengate-cache'), 'hit');
  assert.deepEqual(oaAnswer(whole), oaAnswer(first));
  const again = await oaStream(body, calls3);
  assert.equal(again.cache, 'hit');
  assert.deepEqual(oaAnswer(again.final), oaAnswer(first));
  assert.equal(await mockCount(), before);
});

test('translated: an Anthropic client streaming from an OpenAI model (interleaved calls), replayed both ways', async () => {
  const body = messages('x-an', { model: 'to-openai' });
  const first = await anthropic.messages.stream(body, { headers: calls3 }).finalMessage();
  assert.equal(first.content.filter((b) => b.type === 'tool_use').length, 3);
  const before = await mockCount();
  const { data: whole, response } = await anthropic.messages.create(body, { headers: calls3 })
    .withResponse();
  assert.equal(response.headers.get('x-tokengate-cache'), 'hit');
  assert.deepEqual(anAnswer(whole), anAnswer(first));
  const s = anthropic.messages.stream(body, { headers: calls3 });
  const { response: r2 } = await s.withResponse();
  assert.equal(r2.headers.get('x-tokengate-cache'), 'hit');
  assert.deepEqual(anAnswer(await s.finalMessage()), anAnswer(first));
  assert.equal(await mockCount(), before);
});
