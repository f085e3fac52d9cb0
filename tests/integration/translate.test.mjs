// Translation round trips (issue 12): the official OpenAI and Anthropic SDKs, each asking for an
// alias whose tier is a model of the other API family, through the gate to the mock. Each test
// checks what the SDK gives its user against what the mock sent (the mock's answer to the very
// request the gate translated, which the mock reports through /_mock/last and answers again
// when asked directly), what the mock received (the translated request), and what the gate
// charged (the request log and the ledger) against what the mock billed (/_mock/usage).
//
// The mock's answers are deterministic (bench/README.md): after /_mock/reset its first answer
// is numbered 1, so the ids of its tool calls are call_mock_1_I (OpenAI) and toolu_mock_1_I
// (Anthropic); call I's arguments are argsOf(I), streamed in pieces of about 3 bytes.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  test, cleanup, startMock, startGate, tempDir, runGate, parseSSE, newId, sleep, ms,
  RawClient, rawPost,
} from './harness.mjs';

const KEY = 'tg-xlate-agent-key-0001';
const OA2AN = 'openai.chat->anthropic.messages';
const AN2OA = 'anthropic.messages->openai.chat';

let mock, gate, openai, anthropic, ledgerPath;

const q = (s) => JSON.stringify(s);

/**
 * The gate: an org with one agent and a ledger; models of both families, one tier each, and
 * aliases that send each client to the other family. The *-errors entries take the error
 * tests, so that the health those tests upset is not the other tests' targets'.
 */
function config(dir) {
  const price = (i, o) => `price: { input: ${i}, output: ${o}, cached_input: ${i / 2} }`;
  return [
    'listen: 127.0.0.1:0',
    'workers: 1',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'providers:',
    `  mock-openai: { base_url: ${q(`${mock.url}/v1`)}, format: openai }`,
    `  mock-anthropic: { base_url: ${q(`${mock.url}/v1`)}, format: anthropic }`,
    'models:',
    `  gpt-4o-mini: { provider: mock-openai, ${price(0.15, 0.6)}, max_output_tokens: 16384 }`,
    `  claude-haiku-4-5: { provider: mock-anthropic, ${price(1, 5)}, max_output_tokens: 8192 }`,
    `  gpt-4o-errors: { provider: mock-openai, ${price(0.15, 0.6)}, max_output_tokens: 16384 }`,
    `  claude-errors: { provider: mock-anthropic, ${price(1, 5)}, max_output_tokens: 8192 }`,
    `  gpt-long: { provider: mock-openai, ${price(0.15, 0.6)}, max_output_tokens: 100000 }`,
    `  claude-long: { provider: mock-anthropic, ${price(1, 5)}, max_output_tokens: 100000 }`,
    'tiers:',
    '  oai: [gpt-4o-mini]',
    '  anth: [claude-haiku-4-5]',
    '  oaierr: [gpt-4o-errors]',
    '  antherr: [claude-errors]',
    '  oailong: [gpt-long]',
    '  anthlong: [claude-long]',
    'routing:',
    '  aliases:',
    '    to-anthropic: anth',
    '    to-openai: oai',
    '    errors-to-anthropic: antherr',
    '    errors-to-openai: oaierr',
    '    long-to-anthropic: anthlong',
    '    long-to-openai: oailong',
    'org: acme',
    'departments:',
    '  d: { teams: { t: { agents: [agent] } } }',
    'keys:',
    `  ${KEY}: agent`,
    'budgets:',
    '  - { scope: team:t, window: day, tokens: 100000000, usd: 10000 }',
    `ledger: { path: ${q(path.join(dir, 'ledger.db'))} }`,
  ].join('\n') + '\n';
}

before(async () => {
  mock = await startMock();
  const dir = tempDir('tg-xlate-');
  gate = await startGate({ configText: config(dir), dir });
  ledgerPath = path.join(dir, 'ledger.db');
  openai = new OpenAI({ baseURL: `${gate.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: ms(30000) });
  anthropic = new Anthropic({ baseURL: gate.url, apiKey: KEY, maxRetries: 0, timeout: ms(30000) });
});

after(cleanup);

// ---- what the mock sent, received and billed --------------------------------------------------

/** What the mock's call i carries as its arguments (bench/README.md). */
const argsOf = (i) => `{"query":"mock ${i}","n":${i},"items":["alpha ${i}","beta \\"${i}\\"","gamma é${i}","delta ${i}"]}`;

/** The x-mock- headers of a request the mock received. */
const mockHeaders = (up) => Object.fromEntries(Object.entries(up.headers).filter(([k]) => k.startsWith('x-mock-')));

/**
 * What the mock received last ({path, headers, body (parsed)}), and what it answers to that
 * very request when asked directly ({status, text, json, events}): the answer the gate got.
 */
async function upstream() {
  const up = await mock.last();
  const again = await mock.direct(up.path, { method: 'POST', body: up.body,
    headers: { 'content-type': 'application/json', ...mockHeaders(up) } });
  return { ...up, body: JSON.parse(up.body), sent: { ...again, events: parseSSE(again.text) } };
}

/** The mock's /_mock/usage entry of request id: {input, output, cached, cache_write, ...}. */
async function billed(id) {
  const deadline = Date.now() + ms(10000);
  for (;;) {
    const u = await mock.usageOf(id);
    if (u?.complete) return u;
    if (Date.now() > deadline) throw new Error(`mock: no complete usage entry for ${id}: ${q(u)}`);
    await sleep(50);
  }
}

/** The ledger row of request id, waiting for it. */
async function ledgerRow(id) {
  const deadline = Date.now() + ms(10000);
  for (;;) {
    const out = runGate(['logs', '--db', ledgerPath, '--format', 'json', '--limit', '2000']);
    assert.equal(out.status, 0, out.stderr);
    const row = out.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((x) => x.id === id);
    if (row) return row;
    if (Date.now() > deadline) throw new Error(`ledger: no row for ${id}`);
    await sleep(50);
  }
}

/**
 * The request's log record, checked: the route taken and its translation, the provider's usage
 * as the mock billed it, and the charge equal to the mock's input + output.
 */
async function checkCharge(id, u, { asked, target, translation, status = 200 }) {
  const rec = await gate.logRecord(id);
  const what = q({ rec, u });
  assert.equal(rec.status, status, what);
  assert.equal(rec.route?.asked, asked, what);
  assert.equal(rec.route?.target, target, what);
  assert.equal(rec.route?.translation, translation, what);
  if (u) {
    assert.equal(rec.usage.input, u.input, what);
    assert.equal(rec.usage.output, u.output, what);
    assert.equal(rec.usage.cached, u.cached, what);
    assert.equal(rec.usage.cache_write, u.cache_write, what);
    assert.equal(rec.tokens_charged, u.input + u.output, what);
  }
  return rec;
}

/** The text and tool_use blocks of an Anthropic answer the mock sent (whole or streamed). */
function anthropicSent(sent) {
  if (sent.json) return sent.json.content;
  const blocks = [];
  for (const e of sent.events) {
    if (e.event === 'content_block_start') blocks[e.json.index] = { ...e.json.content_block, json: '' };
    if (e.event === 'content_block_delta' && e.json.delta.type === 'text_delta') blocks[e.json.index].text += e.json.delta.text;
    if (e.event === 'content_block_delta' && e.json.delta.type === 'input_json_delta') blocks[e.json.index].json += e.json.delta.partial_json;
  }
  return blocks;
}

/** The text and tool calls of an OpenAI chat answer the mock sent (whole or streamed). */
function openaiSent(sent) {
  if (sent.json) {
    const m = sent.json.choices[0].message;
    return { text: m.content, calls: (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, args: c.function.arguments })) };
  }
  let text = '';
  const calls = [];
  for (const e of sent.events) {
    const d = e.json?.choices?.[0]?.delta;
    text += d?.content ?? '';
    for (const tc of d?.tool_calls ?? []) {
      calls[tc.index] ??= { id: tc.id, name: tc.function.name, args: '' };
      calls[tc.index].args += tc.function.arguments ?? '';
    }
  }
  return { text, calls };
}

/** Reads an OpenAI SDK chat stream: {text, calls [{id, type, name, args, pieces}], finish, usage, chunks}. */
async function readChatStream(stream) {
  const out = { text: '', calls: [], finish: null, usage: null, chunks: 0 };
  for await (const chunk of stream) {
    out.chunks++;
    if (chunk.usage) out.usage = chunk.usage;
    for (const ch of chunk.choices) {
      out.text += ch.delta?.content ?? '';
      if (ch.finish_reason) out.finish = ch.finish_reason;
      for (const tc of ch.delta?.tool_calls ?? []) {
        if (!out.calls[tc.index]) {
          assert.ok(tc.id && tc.function?.name, `the first delta of call ${tc.index} names it: ${q(tc)}`);
          out.calls[tc.index] = { id: tc.id, type: tc.type, name: tc.function.name, args: '', pieces: 0 };
        } else {
          assert.ok(tc.id === undefined || tc.id === out.calls[tc.index].id, `call ${tc.index} changed its id`);
        }
        if (tc.function?.arguments) {
          out.calls[tc.index].args += tc.function.arguments;
          out.calls[tc.index].pieces++;
        }
      }
    }
  }
  return out;
}

/** Streams an Anthropic SDK request; returns {final, events} (the raw events the SDK parsed). */
async function anthropicStream(body, opts) {
  const events = [];
  const s = anthropic.messages.stream(body, opts);
  s.on('streamEvent', (e) => events.push(e));
  const final = await s.finalMessage();
  return { final, events };
}

/** The blocks of an Anthropic stream as the client saw it: [{type, id, name, text, json, pieces}]. */
function clientBlocks(events) {
  const blocks = [];
  for (const e of events) {
    if (e.type === 'content_block_start') {
      assert.equal(blocks[e.index], undefined, `block ${e.index} started twice`);
      blocks[e.index] = { type: e.content_block.type, id: e.content_block.id, name: e.content_block.name,
        text: '', json: '', pieces: 0, stopped: false };
    } else if (e.type === 'content_block_delta') {
      const b = blocks[e.index];
      assert.ok(b && !b.stopped, `a delta of block ${e.index}, which is not open`);
      if (e.delta.type === 'text_delta') b.text += e.delta.text;
      if (e.delta.type === 'input_json_delta') {
        b.json += e.delta.partial_json;
        b.pieces++;
      }
    } else if (e.type === 'content_block_stop') {
      blocks[e.index].stopped = true;
    }
  }
  assert.ok(blocks.every((b) => b.stopped), 'every block stopped');
  return blocks;
}

const user = (content) => [{ role: 'user', content }];
const oaTools = [['lookup', 'Looks a thing up'], ['fetch_page', 'Fetches a page'], ['summarize', 'Summarizes']]
  .map(([name, description]) => ({ type: 'function', function: { name, description,
    parameters: { type: 'object', properties: { query: { type: 'string' }, n: { type: 'integer' } }, required: ['query'] } } }));
const anTools = oaTools.map((t) => ({ name: t.function.name, description: t.function.description,
  input_schema: t.function.parameters }));
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

function opts(id, headers = {}) {
  return { headers: { 'x-request-id': id, ...headers } };
}

// ---- OpenAI client, Anthropic target -----------------------------------------------------------

test('OpenAI SDK to an Anthropic model: text whole and streamed, stop reasons, usage with cached tokens, the charge', async () => {
  await mock.reset();
  const id = newId('oa2an-text');
  const c = await openai.chat.completions.create({ model: 'to-anthropic', max_tokens: 50, temperature: 0.5,
    messages: [{ role: 'system', content: 'Be brief.' }, ...user('Say something.')] },
  opts(id, { 'x-mock-tokens': '6', 'x-mock-cached': '3' }));
  const up = await upstream();
  assert.equal(up.path, '/v1/messages');
  assert.equal(up.body.model, 'claude-haiku-4-5');
  assert.equal(up.body.max_tokens, 50);
  assert.equal(up.body.temperature, 0.5);
  assert.deepEqual([up.body.system].flat().map((s) => s.text ?? s), ['Be brief.'], q(up.body.system));
  assert.equal(up.body.messages.length, 1);
  assert.equal(up.body.messages[0].role, 'user');
  const u = await billed(id);
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.choices[0].message.role, 'assistant');
  assert.equal(c.choices[0].message.content, up.sent.json.content[0].text);
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.equal(c.usage.prompt_tokens, u.input, 'input, cache reads and writes together');
  assert.equal(c.usage.completion_tokens, u.output);
  assert.equal(c.usage.total_tokens, u.input + u.output);
  assert.equal(c.usage.prompt_tokens_details?.cached_tokens, 3);
  await checkCharge(id, u, { asked: 'to-anthropic', target: 'claude-haiku-4-5', translation: OA2AN });
  assert.equal((await ledgerRow(id)).tokens_charged, u.input + u.output);

  // the cap the client set cuts the answer: Anthropic's max_tokens is OpenAI's length
  await mock.reset();
  const cut = await openai.chat.completions.create({ model: 'to-anthropic', max_tokens: 4, messages: user('More.') },
    opts(newId('oa2an-cut'), { 'x-mock-tokens': '10' }));
  assert.equal((await upstream()).sent.json.stop_reason, 'max_tokens');
  assert.equal(cut.choices[0].finish_reason, 'length');
  assert.equal(cut.usage.completion_tokens, 4);

  // a stop sequence: Anthropic's stop_sequence is OpenAI's stop
  await mock.reset();
  const seq = c.choices[0].message.content.match(/ [a-z]+/g)[2];
  const stopped = await openai.chat.completions.create({ model: 'to-anthropic', max_tokens: 50, stop: [seq],
    messages: user('Say something.') }, opts(newId('oa2an-stop'), { 'x-mock-tokens': '6' }));
  const sup0 = await upstream();
  assert.deepEqual(sup0.body.stop_sequences, [seq]);
  assert.equal(sup0.sent.json.stop_reason, 'stop_sequence');
  assert.equal(stopped.choices[0].finish_reason, 'stop');
  assert.equal(stopped.choices[0].message.content, sup0.sent.json.content[0].text);
  assert.equal(stopped.usage.completion_tokens, 2);

  // no cap from the client: Anthropic requires one, the gate fills it
  await mock.reset();
  await openai.chat.completions.create({ model: 'to-anthropic', messages: user('Uncapped.') }, opts(newId('oa2an-nocap')));
  const nocap = await upstream();
  assert.ok(Number.isInteger(nocap.body.max_tokens) && nocap.body.max_tokens >= 1 && nocap.body.max_tokens <= 8192,
    q(nocap.body.max_tokens));

  // streamed, with the usage asked for: the same words, the usage as a last chunk
  await mock.reset();
  const sid = newId('oa2an-stream');
  const s = await readChatStream(await openai.chat.completions.create({ model: 'to-anthropic', max_tokens: 50,
    messages: [{ role: 'system', content: 'Be brief.' }, ...user('Say something.')], stream: true,
    stream_options: { include_usage: true } }, opts(sid, { 'x-mock-tokens': '6', 'x-mock-cached': '3' })));
  const sup = await upstream();
  assert.equal(sup.body.stream, true);
  const su = await billed(sid);
  assert.equal(s.text, anthropicSent(sup.sent)[0].text);
  assert.equal(s.text, c.choices[0].message.content);
  assert.equal(s.finish, 'stop');
  assert.ok(s.chunks >= 6, `${s.chunks} chunks: the words one by one`);
  assert.ok(s.usage, 'the usage chunk');
  assert.equal(s.usage.prompt_tokens, su.input);
  assert.equal(s.usage.completion_tokens, su.output);
  assert.equal(s.usage.prompt_tokens_details?.cached_tokens, 3);
  await checkCharge(sid, su, { asked: 'to-anthropic', target: 'claude-haiku-4-5', translation: OA2AN });

  // without include_usage the client sees no usage chunk; the gate still charges the mock's usage
  const nid = newId('oa2an-stream-nousage');
  const ns = await readChatStream(await openai.chat.completions.create({ model: 'to-anthropic', max_tokens: 50,
    messages: user('Hi.'), stream: true }, opts(nid, { 'x-mock-tokens': '3' })));
  assert.equal(ns.usage, null);
  assert.equal(ns.finish, 'stop');
  await checkCharge(nid, await billed(nid), { asked: 'to-anthropic', target: 'claude-haiku-4-5', translation: OA2AN });
});

test('OpenAI SDK to an Anthropic model: cache writes count in prompt_tokens and in the charge', async () => {
  await mock.reset();
  for (const stream of [false, true]) {
    const id = newId('oa2an-cw');
    const body = { model: 'to-anthropic', max_tokens: 20, messages: user('Cache this.'),
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}) };
    const h = opts(id, { 'x-mock-tokens': '2', 'x-mock-cache-write': '4' });
    const usage = stream ? (await readChatStream(await openai.chat.completions.create(body, h))).usage
      : (await openai.chat.completions.create(body, h)).usage;
    const u = await billed(id);
    assert.equal(u.cache_write, 4);
    assert.equal(usage.prompt_tokens, u.input, `stream=${stream}: ${q(usage)}`);
    assert.equal(usage.completion_tokens, u.output);
    await checkCharge(id, u, { asked: 'to-anthropic', target: 'claude-haiku-4-5', translation: OA2AN });
  }
});

test('OpenAI SDK to an Anthropic model: 3 parallel tool calls after text, whole and streamed; the results in a second turn', async () => {
  await mock.reset();
  const h = { 'x-mock-tools': '3', 'x-mock-tool-text': '2' };
  const body = { model: 'to-anthropic', max_tokens: 200, tools: oaTools, tool_choice: 'auto',
    messages: user('Look these up.') };
  const id = newId('oa2an-tools');
  const c = await openai.chat.completions.create(body, opts(id, h));
  const up = await upstream();
  assert.deepEqual(up.body.tools.map((t) => [t.name, t.description, t.input_schema]),
    oaTools.map((t) => [t.function.name, t.function.description, t.function.parameters]));
  assert.equal(up.body.tool_choice?.type ?? 'auto', 'auto');
  const blocks = anthropicSent(up.sent);
  const uses = blocks.filter((b) => b.type === 'tool_use');
  assert.equal(uses.length, 3);
  const msg = c.choices[0].message;
  assert.equal(c.choices[0].finish_reason, 'tool_calls');
  assert.equal(msg.content, blocks[0].text, 'the text block before the calls');
  assert.deepEqual(msg.tool_calls.map((t) => [t.id, t.type, t.function.name]),
    uses.map((b, i) => [`toolu_mock_1_${i}`, 'function', b.name]));
  assert.deepEqual(msg.tool_calls.map((t) => t.function.name), ['lookup', 'fetch_page', 'summarize']);
  assert.deepEqual(msg.tool_calls.map((t) => t.function.arguments), uses.map((b) => JSON.stringify(b.input)),
    'the arguments, byte for byte as the mock wrote them');
  assert.deepEqual(msg.tool_calls.map((t) => t.function.arguments), [0, 1, 2].map(argsOf));
  const u = await billed(id);
  assert.equal(c.usage.completion_tokens, u.output);
  await checkCharge(id, u, { asked: 'to-anthropic', target: 'claude-haiku-4-5', translation: OA2AN });

  // streamed: the pieces as they came, under indices 0..2 (the text block is no tool call)
  await mock.reset();
  const sid = newId('oa2an-tools-stream');
  const s = await readChatStream(await openai.chat.completions.create({ ...body, stream: true,
    stream_options: { include_usage: true } }, opts(sid, h)));
  const sup = await upstream();
  const suses = anthropicSent(sup.sent).filter((b) => b.type === 'tool_use');
  assert.equal(s.text, anthropicSent(sup.sent)[0].text);
  assert.deepEqual(s.calls.map((t) => [t.id, t.type, t.name, t.args]),
    suses.map((b, i) => [`toolu_mock_1_${i}`, 'function', b.name, b.json]));
  assert.deepEqual(s.calls.map((t) => t.args), [0, 1, 2].map(argsOf));
  for (const t of s.calls) assert.ok(t.pieces >= 20, `${t.pieces} argument deltas: passed on as they came`);
  assert.equal(s.finish, 'tool_calls');
  const su = await billed(sid);
  assert.equal(s.usage.completion_tokens, su.output);
  await checkCharge(sid, su, { asked: 'to-anthropic', target: 'claude-haiku-4-5', translation: OA2AN });

  // the SDK's own accumulation agrees
  await mock.reset();
  const final = await openai.chat.completions.stream(body, opts(newId('oa2an-tools-acc'), h)).finalChatCompletion();
  assert.deepEqual(final.choices[0].message.tool_calls.map((t) => [t.id, t.function.name, t.function.arguments]),
    [0, 1, 2].map((i) => [`toolu_mock_1_${i}`, oaTools[i].function.name, argsOf(i)]));

  // second turn: the calls and their results go back; the model answers in text
  await mock.reset();
  const tid = newId('oa2an-results');
  const turn2 = await openai.chat.completions.create({ ...body, messages: [...body.messages, msg,
    ...msg.tool_calls.map((t, i) => ({ role: 'tool', tool_call_id: t.id, content: `result ${i}` }))] }, opts(tid, h));
  const up2 = await upstream();
  const [, asst, results] = up2.body.messages;
  assert.equal(up2.body.messages.length, 3, 'the three results in one user turn');
  assert.equal(asst.role, 'assistant');
  const sentUses = asst.content.filter((b) => b.type === 'tool_use');
  assert.deepEqual(sentUses.map((b) => [b.id, b.name, b.input]),
    msg.tool_calls.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]));
  assert.deepEqual(asst.content.filter((b) => b.type === 'text').map((b) => b.text), [msg.content]);
  assert.equal(results.role, 'user');
  assert.deepEqual(results.content.map((b) => [b.type, b.tool_use_id,
    typeof b.content === 'string' ? b.content : b.content.map((x) => x.text).join('')]),
  msg.tool_calls.map((t, i) => ['tool_result', t.id, `result ${i}`]));
  assert.equal(turn2.choices[0].finish_reason, 'stop');
  assert.equal(turn2.choices[0].message.tool_calls ?? undefined, undefined);
  assert.equal(turn2.choices[0].message.content, up2.sent.json.content[0].text);
  await checkCharge(tid, await billed(tid), { asked: 'to-anthropic', target: 'claude-haiku-4-5', translation: OA2AN });
});

test('OpenAI SDK to an Anthropic model: images by URL and as base64 data URLs', async () => {
  await mock.reset();
  const id = newId('oa2an-images');
  const c = await openai.chat.completions.create({ model: 'to-anthropic', max_tokens: 20, messages: user([
    { type: 'text', text: 'What is in these?' },
    { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
    { type: 'image_url', image_url: { url: 'https://example.invalid/cat.jpg' } }]) },
  opts(id, { 'x-mock-tokens': '3' }));
  const up = await upstream();
  assert.deepEqual(up.body.messages[0].content.map((b) => b.type === 'image' ? b.source : b.text), [
    'What is in these?',
    { type: 'base64', media_type: 'image/png', data: PNG },
    { type: 'url', url: 'https://example.invalid/cat.jpg' }]);
  const u = await billed(id);
  assert.equal(c.usage.prompt_tokens, u.input);
  await checkCharge(id, u, { asked: 'to-anthropic', target: 'claude-haiku-4-5', translation: OA2AN });
});

// ---- Anthropic client, OpenAI target -----------------------------------------------------------

test('Anthropic SDK to an OpenAI model: text whole and streamed, stop reasons, usage with cached tokens, the charge', async () => {
  await mock.reset();
  const id = newId('an2oa-text');
  const m = await anthropic.messages.create({ model: 'to-openai', max_tokens: 50, top_p: 0.9,
    system: [{ type: 'text', text: 'Be brief.' }], stop_sequences: ['END'], messages: user('Say something.') },
  opts(id, { 'x-mock-tokens': '6', 'x-mock-cached': '3' }));
  const up = await upstream();
  assert.equal(up.path, '/v1/chat/completions');
  assert.equal(up.body.model, 'gpt-4o-mini');
  assert.equal(up.body.max_completion_tokens ?? up.body.max_tokens, 50);
  assert.equal(up.body.top_p, 0.9);
  assert.deepEqual([up.body.stop].flat(), ['END']);
  assert.deepEqual(up.body.messages.map((x) => x.role), ['system', 'user']);
  assert.deepEqual([up.body.messages[0].content].flat().map((s) => s.text ?? s), ['Be brief.']);
  const u = await billed(id);
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.deepEqual(m.content.map((b) => [b.type, b.text]), [['text', up.sent.json.choices[0].message.content]]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.cache_read_input_tokens, 3);
  assert.equal(m.usage.input_tokens + m.usage.cache_read_input_tokens + (m.usage.cache_creation_input_tokens ?? 0),
    u.input, q(m.usage));
  assert.equal(m.usage.output_tokens, u.output);
  await checkCharge(id, u, { asked: 'to-openai', target: 'gpt-4o-mini', translation: AN2OA });
  assert.equal((await ledgerRow(id)).tokens_charged, u.input + u.output);

  await mock.reset();
  const cut = await anthropic.messages.create({ model: 'to-openai', max_tokens: 4, messages: user('More.') },
    opts(newId('an2oa-cut'), { 'x-mock-tokens': '10' }));
  assert.equal((await upstream()).sent.json.choices[0].finish_reason, 'length');
  assert.equal(cut.stop_reason, 'max_tokens');
  assert.equal(cut.usage.output_tokens, 4);

  await mock.reset();
  const sid = newId('an2oa-stream');
  const { final, events } = await anthropicStream({ model: 'to-openai', max_tokens: 50,
    system: 'Be brief.', messages: user('Say something.') }, opts(sid, { 'x-mock-tokens': '6', 'x-mock-cached': '3' }));
  const sup = await upstream();
  assert.equal(sup.body.stream, true);
  assert.equal(sup.body.stream_options?.include_usage, true, 'the gate asks the OpenAI provider for the usage');
  const su = await billed(sid);
  const sentText = openaiSent(sup.sent).text;
  assert.equal(final.content[0].text, sentText);
  assert.equal(final.content[0].text, m.content[0].text);
  assert.equal(events.filter((e) => e.type === 'content_block_delta' && e.delta.text).length, 6, 'the words one by one');
  assert.deepEqual(events.map((e) => e.type).filter((t) => t.startsWith('message')),
    ['message_start', 'message_delta', 'message_stop']);
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(final.usage.output_tokens, su.output);
  assert.equal(final.usage.input_tokens + (final.usage.cache_read_input_tokens ?? 0) +
    (final.usage.cache_creation_input_tokens ?? 0), su.input, q(final.usage));
  assert.equal(final.usage.cache_read_input_tokens, 3);
  await checkCharge(sid, su, { asked: 'to-openai', target: 'gpt-4o-mini', translation: AN2OA });

  // a stop sequence goes out as OpenAI's stop; OpenAI says only "stop", which is an end of turn
  // or a stop sequence to the Anthropic client
  await mock.reset();
  const seq = m.content[0].text.match(/ [a-z]+/g)[2];
  const stopped = await anthropic.messages.create({ model: 'to-openai', max_tokens: 50, stop_sequences: [seq],
    messages: user('Say something.') }, opts(newId('an2oa-stop'), { 'x-mock-tokens': '6' }));
  const up0 = await upstream();
  assert.deepEqual([up0.body.stop].flat(), [seq]);
  assert.equal(stopped.content[0].text, up0.sent.json.choices[0].message.content);
  assert.equal(stopped.usage.output_tokens, 2);
  assert.ok(['end_turn', 'stop_sequence'].includes(stopped.stop_reason), stopped.stop_reason);

  await mock.reset();
  const scut = await anthropicStream({ model: 'to-openai', max_tokens: 4, messages: user('More.') },
    opts(newId('an2oa-stream-cut'), { 'x-mock-tokens': '10' }));
  assert.equal(scut.final.stop_reason, 'max_tokens');
});

test('Anthropic SDK to an OpenAI model: 3 parallel tool calls (interleaved upstream), whole and streamed; the results in a second turn', async () => {
  await mock.reset();
  const h = { 'x-mock-tools': '3', 'x-mock-interleave': '1' };
  const body = { model: 'to-openai', max_tokens: 200, tools: anTools, tool_choice: { type: 'auto' },
    messages: user('Look these up.') };
  const id = newId('an2oa-tools');
  const m = await anthropic.messages.create(body, opts(id, h));
  const up = await upstream();
  assert.deepEqual(up.body.tools.map((t) => [t.type, t.function.name, t.function.description, t.function.parameters]),
    anTools.map((t) => ['function', t.name, t.description, t.input_schema]));
  assert.equal(up.body.tool_choice ?? 'auto', 'auto');
  const calls = openaiSent(up.sent).calls;
  assert.equal(calls.length, 3);
  assert.equal(m.stop_reason, 'tool_use');
  const uses = m.content.filter((b) => b.type === 'tool_use');
  assert.deepEqual(uses.map((b) => [b.id, b.name]), calls.map((t, i) => [`call_mock_1_${i}`, t.name]));
  assert.deepEqual(uses.map((b) => b.name), ['lookup', 'fetch_page', 'summarize']);
  assert.deepEqual(uses.map((b) => b.input), calls.map((t) => JSON.parse(t.args)));
  assert.deepEqual(calls.map((t) => t.args), [0, 1, 2].map(argsOf));
  const u = await billed(id);
  assert.equal(m.usage.output_tokens, u.output);
  await checkCharge(id, u, { asked: 'to-openai', target: 'gpt-4o-mini', translation: AN2OA });

  // streamed: the upstream interleaves the three calls' pieces; each reaches its own block
  await mock.reset();
  const sid = newId('an2oa-tools-stream');
  const { final, events } = await anthropicStream(body, opts(sid, { ...h, 'x-mock-tool-text': '2' }));
  const sup = await upstream();
  const scalls = openaiSent(sup.sent).calls;
  const order = sup.sent.events.flatMap((e) => (e.json?.choices?.[0]?.delta?.tool_calls ?? [])
    .filter((t) => t.function?.arguments).map((t) => t.index));
  assert.deepEqual(order.slice(0, 6), [0, 1, 2, 0, 1, 2], 'the mock interleaved the calls');
  const blocks = clientBlocks(events);
  assert.deepEqual(blocks.map((b) => b.type), ['text', 'tool_use', 'tool_use', 'tool_use']);
  assert.equal(blocks[0].text, openaiSent(sup.sent).text);
  assert.deepEqual(blocks.slice(1).map((b) => [b.id, b.name, b.json]),
    scalls.map((t, i) => [`call_mock_1_${i}`, t.name, t.args]), 'the partial JSON, byte for byte');
  assert.deepEqual(blocks.slice(1).map((b) => b.json), [0, 1, 2].map(argsOf));
  for (const b of blocks.slice(1)) assert.ok(b.pieces >= 20, `${b.pieces} input_json_delta events: passed on as they came`);
  assert.deepEqual(final.content.filter((b) => b.type === 'tool_use').map((b) => b.input),
    [0, 1, 2].map((i) => JSON.parse(argsOf(i))));
  assert.equal(final.stop_reason, 'tool_use');
  const su = await billed(sid);
  assert.equal(final.usage.output_tokens, su.output);
  await checkCharge(sid, su, { asked: 'to-openai', target: 'gpt-4o-mini', translation: AN2OA });

  // second turn: the tool_use blocks and their tool_result blocks go back as OpenAI messages
  await mock.reset();
  const tid = newId('an2oa-results');
  const turn2 = await anthropic.messages.create({ ...body, messages: [...body.messages,
    { role: 'assistant', content: m.content },
    { role: 'user', content: uses.map((b, i) => ({ type: 'tool_result', tool_use_id: b.id, content: `result ${i}` })) }] },
  opts(tid, h));
  const up2 = await upstream();
  const msgs = up2.body.messages;
  assert.deepEqual(msgs.map((x) => x.role), ['user', 'assistant', 'tool', 'tool', 'tool']);
  assert.deepEqual(msgs[1].tool_calls.map((t) => [t.id, t.type, t.function.name, JSON.parse(t.function.arguments)]),
    uses.map((b) => [b.id, 'function', b.name, b.input]));
  assert.deepEqual(msgs.slice(2).map((x) => [x.tool_call_id,
    typeof x.content === 'string' ? x.content : x.content.map((p) => p.text).join('')]),
  uses.map((b, i) => [b.id, `result ${i}`]));
  assert.equal(turn2.stop_reason, 'end_turn');
  assert.deepEqual(turn2.content.map((b) => [b.type, b.text]), [['text', up2.sent.json.choices[0].message.content]]);
  await checkCharge(tid, await billed(tid), { asked: 'to-openai', target: 'gpt-4o-mini', translation: AN2OA });
});

test('Anthropic SDK to an OpenAI model: images as base64 and by URL', async () => {
  await mock.reset();
  const id = newId('an2oa-images');
  const m = await anthropic.messages.create({ model: 'to-openai', max_tokens: 20, messages: user([
    { type: 'text', text: 'What is in these?' },
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
    { type: 'image', source: { type: 'url', url: 'https://example.invalid/cat.jpg' } }]) },
  opts(id, { 'x-mock-tokens': '3' }));
  const up = await upstream();
  assert.deepEqual(up.body.messages[0].content.map((p) => p.type === 'image_url' ? p.image_url.url : p.text), [
    'What is in these?', `data:image/png;base64,${PNG}`, 'https://example.invalid/cat.jpg']);
  const u = await billed(id);
  assert.equal(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0), u.input);
  await checkCharge(id, u, { asked: 'to-openai', target: 'gpt-4o-mini', translation: AN2OA });
});

// ---- errors -----------------------------------------------------------------------------------

/** Sends through sdk's call, expects a rejection; returns the error. */
async function rejected(p) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail('the request succeeded');
}

test('errors through the translation: 400, 529 / 503 and 429 from the mock reach each SDK in its own shape', async () => {
  await mock.reset();
  // OpenAI client, Anthropic provider: 400 stays 400, 529 overloaded becomes 503, 429 stays 429
  const cases = [['400', 400, OpenAI.BadRequestError, /mock error/], ['529', 503, OpenAI.InternalServerError, /Overloaded/],
    ['429', 429, OpenAI.RateLimitError, /mock rate limit/]];
  for (const [sent, got, cls, message] of cases) {
    const id = newId(`oa2an-err-${sent}`);
    const e = await rejected(openai.chat.completions.create({ model: 'errors-to-anthropic', max_tokens: 10,
      messages: user('Fail.') }, opts(id, { 'x-mock-status': sent })));
    assert.ok(e instanceof cls, `${sent}: ${e.constructor.name} ${e.status}: ${e.message}`);
    assert.equal(e.status, got);
    assert.match(e.message, message);
    assert.equal(typeof e.error?.message, 'string', q(e.error));
    const up = await mock.last();
    assert.equal(up.path, '/v1/messages', 'the translated request went out');
    assert.equal(JSON.parse(up.body).model, 'claude-errors');
    await checkCharge(id, null, { asked: 'errors-to-anthropic', target: 'claude-errors', translation: OA2AN, status: got });
  }
  // Anthropic client, OpenAI provider: 400 stays 400, 503 becomes 529 overloaded_error, 429 stays 429
  const acases = [['400', 400, Anthropic.BadRequestError, 'invalid_request_error', /mock error/],
    ['503', 529, Anthropic.InternalServerError, 'overloaded_error', /mock error/],
    ['429', 429, Anthropic.RateLimitError, 'rate_limit_error', /mock rate limit/]];
  for (const [sent, got, cls, type, message] of acases) {
    const id = newId(`an2oa-err-${sent}`);
    const e = await rejected(anthropic.messages.create({ model: 'errors-to-openai', max_tokens: 10,
      messages: user('Fail.') }, opts(id, { 'x-mock-status': sent })));
    assert.ok(e instanceof cls, `${sent}: ${e.constructor.name} ${e.status}: ${e.message}`);
    assert.equal(e.status, got);
    assert.equal(e.error?.type, 'error', q(e.error));
    assert.equal(e.error?.error?.type, type, q(e.error));
    assert.match(e.error?.error?.message ?? '', message);
    const up = await mock.last();
    assert.equal(up.path, '/v1/chat/completions');
    assert.equal(JSON.parse(up.body).model, 'gpt-4o-errors');
    await checkCharge(id, null, { asked: 'errors-to-openai', target: 'gpt-4o-errors', translation: AN2OA, status: got });
  }
  // a stream that fails before its first byte fails the same way
  const se = await rejected((async () => {
    const s = await openai.chat.completions.create({ model: 'to-anthropic', max_tokens: 10, messages: user('Fail.'),
      stream: true }, opts(newId('oa2an-err-stream'), { 'x-mock-status': '400' }));
    for await (const chunk of s) void chunk;
  })());
  assert.ok(se instanceof OpenAI.BadRequestError, `${se.constructor.name}: ${se.message}`);
});

test('a request the other API cannot express gets 400 naming the field, and nothing reaches the mock', async () => {
  await mock.reset();
  const before = (await mock.stats()).requests;
  for (const [extra, field] of [[{ n: 2 }, /\bn\b/], [{ logprobs: true }, /logprobs/], [{ logit_bias: { 50256: -100 } }, /logit_bias/]]) {
    const id = newId('oa2an-refused');
    const e = await rejected(openai.chat.completions.create({ model: 'to-anthropic', max_tokens: 10,
      messages: user('Hi.'), ...extra }, opts(id)));
    assert.ok(e instanceof OpenAI.BadRequestError, `${q(extra)}: ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, field);
    assert.equal((await gate.logRecord(id)).status, 400);
  }
  const id = newId('an2oa-refused');
  const e = await rejected(anthropic.messages.create({ model: 'to-openai', max_tokens: 10, messages: user([
    { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQK' } }]) }, opts(id)));
  assert.ok(e instanceof Anthropic.BadRequestError, `${e.constructor.name}: ${e.message}`);
  assert.match(e.message, /document/);
  assert.equal((await mock.stats()).requests, before, 'nothing was forwarded');
});

test('an error in the middle of a translated stream reaches the SDK as its own error, after the text so far', async () => {
  await mock.reset();
  const id = newId('oa2an-errev');
  let text = '';
  const e = await rejected((async () => {
    const s = await openai.chat.completions.create({ model: 'to-anthropic', max_tokens: 50, messages: user('Go on.'),
      stream: true }, opts(id, { 'x-mock-fault': 'error-event', 'x-mock-tokens': '20' }));
    for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? '';
  })());
  const up = await upstream();
  assert.equal(up.sent.events.at(-1).event, 'error', 'the mock failed mid-stream');
  assert.ok(e instanceof OpenAI.APIError, `${e.constructor.name}: ${e.message}`);
  assert.match(e.message, /Overloaded/);
  assert.equal(text, anthropicSent(up.sent)[0].text, 'the words before the error');
  const u = await billed(id);
  const rec = await gate.logRecord(id);
  assert.equal(rec.route?.translation, OA2AN);
  assert.ok(rec.tokens_charged >= u.input + u.sent, q({ rec, u }));

  await mock.reset();
  const aid = newId('an2oa-errev');
  let atext = '';
  const s = anthropic.messages.stream({ model: 'to-openai', max_tokens: 50, messages: user('Go on.') },
    opts(aid, { 'x-mock-fault': 'error-event', 'x-mock-tokens': '20' }));
  s.on('text', (t) => (atext += t));
  const ae = await rejected(s.finalMessage());
  const aup = await upstream();
  assert.ok(aup.sent.events.at(-1).json?.error, 'the mock failed mid-stream');
  assert.ok(ae instanceof Anthropic.APIError, `${ae.constructor.name}: ${ae.message}`);
  assert.match(ae.message, /mid-stream/);
  assert.equal(atext, openaiSent(aup.sent).text, 'the words before the error');
  const au = await billed(aid);
  const arec = await gate.logRecord(aid);
  assert.equal(arec.route?.translation, AN2OA);
  // no usage came (OpenAI's comes last): the gate's own count stands, and it must not be below what
  // the provider bills for the request it was sent, the translated one (OpenAI's chat formula)
  assert.ok(arec.tokens_charged >= au.input + au.sent, q({ arec, au }));
});

// A translated stream whose client leaves mid-way: what the provider made before it saw the
// close is read and counted (in the provider's own format, before translation), and the charge
// is the provider's final usage when it came, else the gate's own count of the input and of the
// output read, never less than what reached the client; the provider is stopped.
for (const [name, path_, body] of [
  ['OpenAI client, Anthropic model', '/v1/chat/completions',
    { model: 'long-to-anthropic', stream: true, max_tokens: 90000, messages: [{ role: 'user', content: 'go on' }] }],
  ['Anthropic client, OpenAI model', '/v1/messages',
    { model: 'long-to-openai', stream: true, max_tokens: 90000, messages: [{ role: 'user', content: 'go on' }] }],
]) {
  test(`${name}: the client leaves a translated stream: charged what the provider made, not less than what was relayed`, async () => {
    const id = newId('xl-gone');
    const c = await RawClient.connect(gate.port);
    await c.write(rawPost(path_, body, { authorization: `Bearer ${KEY}`, 'x-request-id': id,
      'x-mock-tokens': '90000' }));
    await c.until(() => c.received > 3000, ms(10000), 'some of the stream');
    const relayed = c.received;
    c.destroy();
    const row = await ledgerRow(id);
    const deadline = Date.now() + ms(10000);
    let u = await mock.usageOf(id);
    while (!(u?.closed || u?.complete) && Date.now() < deadline) { await sleep(50); u = await mock.usageOf(id); }
    const what = q({ row, u, relayed });
    assert.equal(row.status, 200, what);
    assert.equal(row.translation, name.startsWith('OpenAI') ? OA2AN : AN2OA, what);
    if (row.in_usage !== null && u.complete) {
      // the gate read the provider's final usage: exactly what it billed
      assert.equal(row.tokens_charged, u.input + u.output, what);
    } else {
      // no final usage: the gate's own counts, the output read at least what the client got
      assert.ok(row.in_own > 0 && row.out_own > 0, what);
      assert.equal(row.tokens_charged, Math.max(row.in_own, row.in_usage ?? 0) +
        Math.max(row.out_own, row.out_usage ?? 0), what);
      assert.ok(u.closed && u.sent < 90000, `the provider was stopped: ${what}`);
      assert.ok(row.out_own <= u.sent, what);
    }
  });
}
