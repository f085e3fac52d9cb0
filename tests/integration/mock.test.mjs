// The mock provider itself, without a gate: the faults and the strictness that the gate's tests
// rely on (bench/README.md lists them), each checked for the three APIs against what the mock
// records in /_mock/usage.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  test, cleanup, startMock, RawClient, rawPost, parseSSE, newId, ms, waitStable,
} from './harness.mjs';

let mock;

before(async () => {
  mock = await startMock();
});

after(cleanup);

const msgs = [{ role: 'user', content: 'mock test' }];
const APIS = {
  chat: { path: '/v1/chat/completions', cap: 'max_completion_tokens',
    body: { model: 'gpt-4o-mini', messages: msgs }, streamExtra: { stream_options: { include_usage: true } } },
  responses: { path: '/v1/responses', cap: 'max_output_tokens',
    body: { model: 'gpt-4.1-mini', input: 'mock test' }, streamExtra: {} },
  messages: { path: '/v1/messages', cap: 'max_tokens',
    body: { model: 'claude-haiku-4-5', max_tokens: 1000, messages: msgs }, streamExtra: {} },
};

function bodyOf(api, stream, extra = {}) {
  return { ...APIS[api].body, ...(stream ? { stream: true, ...APIS[api].streamExtra } : {}), ...extra };
}

function post(api, body, headers = {}) {
  return mock.direct(APIS[api].path, { method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers } });
}

/** The content deltas of a stream of api, in order. */
function deltas(api, events) {
  if (api === 'chat') {
    return events.filter((e) => e.json?.choices?.[0]?.delta?.content)
      .map((e) => e.json.choices[0].delta.content);
  }
  const type = api === 'responses' ? 'response.output_text.delta' : 'content_block_delta';
  return events.filter((e) => e.event === type && e.json).map((e) => e.json.delta.text ?? e.json.delta);
}

/** The final usage of a reply of api: {input, output} as the reply reports them. */
function finalUsage(api, r, stream) {
  if (!stream) {
    const u = r.json.usage;
    return api === 'chat' ? { input: u.prompt_tokens, output: u.completion_tokens, u }
      : { input: u.input_tokens, output: u.output_tokens, u };
  }
  const ev = parseSSE(r.text);
  if (api === 'chat') {
    const u = ev.filter((e) => e.json?.usage).at(-1).json.usage;
    return { input: u.prompt_tokens, output: u.completion_tokens, u };
  }
  if (api === 'responses') {
    const u = ev.find((e) => e.event === 'response.completed').json.response.usage;
    return { input: u.input_tokens, output: u.output_tokens, u };
  }
  const start = ev.find((e) => e.event === 'message_start').json.message.usage;
  const delta = ev.find((e) => e.event === 'message_delta').json.usage;
  return { input: start.input_tokens, output: delta.output_tokens, u: { ...start, ...delta }, start };
}

const words = (s) => s.split(' ').filter(Boolean).length;

test('runaway: the cap is ignored; a non-stream reply is whole, a stream runs until the client goes', async () => {
  for (const api of Object.keys(APIS)) {
    const id = newId(`runaway-${api}`);
    const r = await post(api, bodyOf(api, false, { [APIS[api].cap]: 16 }),
      { 'x-mock-fault': 'runaway', 'x-mock-tokens': '40', 'x-request-id': id });
    assert.equal(r.status, 200, r.text);
    assert.equal(finalUsage(api, r, false).output, 40, api);
    const u = await mock.usageOf(id);
    assert.ok(u.complete && u.output === 40 && u.sent === 40, JSON.stringify(u));

    // a stream of 10,000,000 tokens that the client leaves after 50 deltas
    const sid = newId(`runaway-stream-${api}`);
    const c = await RawClient.connect(mock.port);
    try {
      await c.write(rawPost(APIS[api].path, bodyOf(api, true, { [APIS[api].cap]: 16 }),
        { 'x-mock-fault': 'runaway', 'x-mock-tokens': '10000000', 'x-request-id': sid }));
      await c.until(() => deltas(api, parseSSE(c.buf.toString('latin1').replace(/\r\n[0-9a-f]+\r\n/g, '')))
        .length >= 50, ms(15000), '50 deltas');
    } finally {
      c.destroy();
    }
    // the mock noticed and stopped: what it sent stops growing, far short of the 10,000,000
    const sent = await waitStable(async () => (await mock.usageOf(sid)).sent, 'sent');
    const su = await mock.usageOf(sid);
    assert.ok(su.closed && !su.complete && su.output === 10000000, JSON.stringify(su));
    assert.ok(sent >= 50 && sent < 1000000, `${api}: ${sent} tokens sent`);
  }
});

test('gzip and deflate: the body and the whole event stream compressed, whatever accept-encoding says', async () => {
  for (const enc of ['gzip', 'deflate']) {
    for (const api of Object.keys(APIS)) {
      for (const stream of [false, true]) {
        const id = newId(`${enc}-${api}`);
        const c = await RawClient.connect(mock.port);
        let r;
        try {
          await c.write(rawPost(APIS[api].path, bodyOf(api, stream),
            { 'accept-encoding': 'identity', 'x-mock-fault': enc, 'x-mock-tokens': '6', 'x-request-id': id }));
          r = await c.readResponse();
        } finally {
          c.destroy();
        }
        const what = `${enc} ${api} stream=${stream}`;
        assert.equal(r.status, 200, what);
        assert.equal(r.headers['content-encoding'], enc, what);
        assert.throws(() => JSON.parse(r.bodyBuf.toString('latin1')), what);
        const text = (enc === 'gzip' ? zlib.gunzipSync(r.bodyBuf) : zlib.inflateSync(r.bodyBuf)).toString('utf8');
        const got = { text, json: stream ? undefined : JSON.parse(text) };
        assert.equal(finalUsage(api, got, stream).output, 6, what);
        if (stream) assert.equal(deltas(api, parseSSE(text)).length, 6, what);
        const u = await mock.usageOf(id);
        assert.ok(u.complete && u.sent === 6, `${what}: ${JSON.stringify(u)}`);
        if (!stream) assert.equal(u.bytes, r.bodyBuf.length, what);
      }
    }
  }
});

test('absurd usage: the final report says -5, 1e13, 10.5 or "10"; /_mock/usage keeps the real counts', async () => {
  const want = { negative: -5, huge: 1e13, fraction: 10.5, string: '10' };
  for (const [kind, value] of Object.entries(want)) {
    for (const api of Object.keys(APIS)) {
      for (const stream of [false, true]) {
        const id = newId(`absurd-${api}`);
        const r = await post(api, bodyOf(api, stream), { 'x-mock-usage': kind, 'x-mock-tokens': '4', 'x-request-id': id });
        const what = `${kind} ${api} stream=${stream}`;
        assert.equal(r.status, 200, what);
        const fu = finalUsage(api, r, stream);
        assert.deepEqual([fu.input, fu.output], [value, value], what);
        if (api === 'messages' && stream) assert.equal(fu.start.output_tokens, 1, what);
        const u = await mock.usageOf(id);
        assert.ok(u.absurd === kind && u.output === 4 && u.input > 0 && u.complete, `${what}: ${JSON.stringify(u)}`);
      }
    }
  }
});

test('error-event: a stream fails after 3 deltas with the API\'s own error event; a non-stream request gets 500', async () => {
  for (const api of Object.keys(APIS)) {
    const id = newId(`errev-${api}`);
    const r = await post(api, bodyOf(api, true), { 'x-mock-fault': 'error-event', 'x-mock-tokens': '20', 'x-request-id': id });
    assert.equal(r.status, 200);
    const ev = parseSSE(r.text);
    assert.equal(deltas(api, ev).length, 3, api);
    const last = ev.at(-1);
    if (api === 'chat') {
      assert.equal(last.json.error.type, 'server_error');
      assert.ok(!ev.some((e) => e.data === '[DONE]'));
    } else if (api === 'responses') {
      assert.equal(last.event, 'response.failed');
      assert.equal(last.json.response.status, 'failed');
      assert.equal(last.json.response.error.code, 'server_error');
      assert.ok(!ev.some((e) => e.event === 'response.completed'));
    } else {
      assert.equal(last.event, 'error');
      assert.equal(last.json.error.type, 'overloaded_error');
      assert.ok(!ev.some((e) => e.event === 'message_delta'));
    }
    const u = await mock.usageOf(id);
    assert.ok(u.complete && u.sent === 3 && u.output === 3, JSON.stringify(u));
    const n = await post(api, bodyOf(api, false), { 'x-mock-fault': 'error-event' });
    assert.equal(n.status, 500, api);
  }
});

test('x-mock-cut-after: a stream reset after N content deltas, before any final usage', async () => {
  for (const api of Object.keys(APIS)) {
    for (const split of ['0', '1']) {
      const id = newId(`cut-${api}`);
      const c = await RawClient.connect(mock.port);
      try {
        await c.write(rawPost(APIS[api].path, bodyOf(api, true),
          { 'x-mock-cut-after': '4', 'x-mock-tokens': '20', 'x-mock-split': split, 'x-request-id': id }));
        await c.until(() => c.ended, ms(15000), 'the reset');
      } finally {
        c.destroy();
      }
      const what = `${api} split=${split}`;
      // the connection went in the middle of the chunked body (node may report the RST as an
      // end: the terminating chunk is what tells)
      const text = c.buf.toString('utf8');
      assert.ok(!text.endsWith('\r\n0\r\n\r\n'), `${what}: the body ended normally`);
      const ev = parseSSE(text.slice(text.indexOf('\r\n\r\n') + 4).replace(/\r\n[0-9a-f]+\r\n/g, ''));
      assert.equal(deltas(api, ev).length, 4, what);
      assert.ok(!/\[DONE\]|"usage":\{"prompt|response\.completed|message_delta/.test(text), `${what}: ${text}`);
      if (api === 'messages') assert.equal(ev[0].json.message.usage.output_tokens, 1, 'message_start');
      const u = await mock.usageOf(id);
      // split: token 1 goes out in two deltas, so the first 4 deltas carry tokens 0, 1 and 2
      assert.ok(!u.complete && u.output === 20 && u.sent === (split === '1' ? 3 : 4), `${what}: ${JSON.stringify(u)}`);
    }
  }
});

test('caps: not a non-negative integer -> 400 naming the field; Responses takes no less than 16, Anthropic no less than 1', async () => {
  const bad = [10.5, '10', 1e30, -1, true];
  for (const api of Object.keys(APIS)) {
    const caps = api === 'chat' ? ['max_tokens', 'max_completion_tokens'] : [APIS[api].cap];
    for (const cap of caps) {
      for (const v of bad) {
        const r = await post(api, bodyOf(api, false, { [cap]: v }));
        assert.equal(r.status, 400, `${api} ${cap}: ${JSON.stringify(v)}`);
        if (api === 'messages') assert.match(r.json.error.message, new RegExp(`^${cap}: `));
        else assert.equal(r.json.error.param, cap);
      }
    }
  }
  assert.equal((await post('responses', bodyOf('responses', false, { max_output_tokens: 15 }))).status, 400);
  assert.equal((await post('responses', bodyOf('responses', false, { max_output_tokens: 16 }))).status, 200);
  assert.equal((await post('messages', bodyOf('messages', false, { max_tokens: 0 }))).status, 400);
  const { max_tokens: _, ...noMax } = APIS.messages.body;
  assert.equal((await post('messages', noMax)).status, 400);
  assert.equal((await post('chat', bodyOf('chat', false, { max_tokens: null }))).status, 200);
  // and a cap is honoured: the reply is cut to it
  const r = await post('chat', bodyOf('chat', false, { max_tokens: 3 }), { 'x-mock-tokens': '9' });
  assert.equal(r.json.usage.completion_tokens, 3);
  assert.equal(r.json.choices[0].finish_reason, 'length');
});

test('chat n: n choices, each of the whole reply, usage summed over them', async () => {
  for (const v of [0, 2.5, 129, '2']) assert.equal((await post('chat', bodyOf('chat', false, { n: v }))).status, 400);
  const id = newId('n');
  const r = await post('chat', bodyOf('chat', false, { n: 3 }), { 'x-mock-tokens': '5', 'x-request-id': id });
  assert.deepEqual(r.json.choices.map((c) => [c.index, words(c.message.content)]), [[0, 5], [1, 5], [2, 5]]);
  assert.equal(r.json.usage.completion_tokens, 15);
  assert.equal((await mock.usageOf(id)).output, 15);
  const s = await post('chat', bodyOf('chat', true, { n: 3 }), { 'x-mock-tokens': '5' });
  const ev = parseSSE(s.text);
  for (const i of [0, 1, 2]) {
    const text = ev.filter((e) => e.json?.choices?.[0]?.index === i).map((e) => e.json.choices[0].delta?.content ?? '').join('');
    assert.equal(words(text), 5, `choice ${i}`);
  }
  assert.equal(finalUsage('chat', s, true).output, 15);
});

test('cached and reasoning tokens are reported as each API does; output counts the reasoning', async () => {
  for (const api of Object.keys(APIS)) {
    for (const stream of [false, true]) {
      const id = newId(`cache-${api}`);
      const r = await post(api, bodyOf(api, stream),
        { 'x-mock-cached': '3', 'x-mock-reasoning': '5', 'x-mock-tokens': '4', 'x-request-id': id });
      const u = await mock.usageOf(id);
      const fu = finalUsage(api, r, stream);
      const what = `${api} stream=${stream}: ${JSON.stringify(fu.u)}`;
      assert.ok(u.cached === 3 && u.reasoning === 5 && u.output === 9 && u.input > 3, JSON.stringify(u));
      assert.equal(fu.output, 9, what);
      if (api === 'chat') {
        assert.equal(fu.input, u.input, what);
        assert.equal(fu.u.prompt_tokens_details.cached_tokens, 3, what);
        assert.equal(fu.u.completion_tokens_details.reasoning_tokens, 5, what);
      } else if (api === 'responses') {
        assert.equal(fu.input, u.input, what);
        assert.equal(fu.u.input_tokens_details.cached_tokens, 3, what);
        assert.equal(fu.u.output_tokens_details.reasoning_tokens, 5, what);
      } else {
        // Anthropic's input_tokens leave the cache reads out
        assert.equal(fu.input, u.input - 3, what);
        assert.equal(fu.u.cache_read_input_tokens, 3, what);
      }
    }
  }
});

test('x-mock-split: words split across deltas; the text and the usage are the same as without', async () => {
  for (const api of Object.keys(APIS)) {
    const plain = parseSSE((await post(api, bodyOf(api, true), { 'x-mock-tokens': '7' })).text);
    const id = newId(`split-${api}`);
    const r = await post(api, bodyOf(api, true), { 'x-mock-tokens': '7', 'x-mock-split': '1', 'x-request-id': id });
    const ev = parseSSE(r.text);
    const d = deltas(api, ev);
    assert.equal(d.length, 9, `${api}: tokens 1 and 4 go out in two deltas each`);
    assert.ok(d.some((x) => !x.startsWith(' ')), api);
    assert.equal(d.join(''), deltas(api, plain).join(''), api);
    assert.equal(finalUsage(api, r, true).output, 7, api);
    if (api === 'responses') {
      const seq = ev.map((e) => e.json.sequence_number);
      assert.deepEqual(seq, seq.map((_, i) => i), 'sequence numbers count every event');
    }
    assert.equal((await mock.usageOf(id)).sent, 7);
  }
});

test('x-mock-stall-ms holds the body back after the head; x-mock-output-skew adds to the output billed', async () => {
  const c = await RawClient.connect(mock.port);
  try {
    await c.write(rawPost(APIS.chat.path, bodyOf('chat', false), { 'x-mock-stall-ms': '800' }));
    await c.until(() => c.buf.includes('\r\n\r\n'), ms(5000), 'the head');
    const t0 = Date.now();
    const r = await c.readResponse();
    assert.ok(Date.now() - t0 >= 500, 'the body came with the head');
    assert.equal(JSON.parse(r.body).usage.completion_tokens, 16);
  } finally {
    c.destroy();
  }
  const id = newId('oskew');
  const r = await post('messages', bodyOf('messages', false), { 'x-mock-output-skew': '6', 'x-mock-tokens': '4', 'x-request-id': id });
  assert.equal(r.json.usage.output_tokens, 10);
  assert.equal(words(r.json.content[0].text), 4);
  assert.equal((await mock.usageOf(id)).output, 10);
});

// ---- issue 12: parallel tool calls, images, cache writes, rules by model ----

const oaTools = ['lookup', 'fetch_page'].map((name) => ({ type: 'function',
  function: { name, parameters: { type: 'object', properties: { query: { type: 'string' } } } } }));
const anTools = ['lookup', 'fetch_page'].map((name) => ({ name,
  input_schema: { type: 'object', properties: { query: { type: 'string' } } } }));

/** What the mock's call i carries as its arguments (bench/README.md). */
const argsOf = (i) => `{"query":"mock ${i}","n":${i},"items":["alpha ${i}","beta \\"${i}\\"","gamma é${i}","delta ${i}"]}`;

/** The tool calls of a chat stream: {calls: [{id, type, name, args, pieces}], order: indices of argument deltas}. */
function chatStreamCalls(events) {
  const calls = [];
  const order = [];
  for (const e of events) {
    for (const tc of e.json?.choices?.[0]?.delta?.tool_calls ?? []) {
      if (tc.id !== undefined) {
        assert.equal(calls[tc.index], undefined, `call ${tc.index} opened twice`);
        assert.equal(tc.function.arguments, '', 'the first delta of a call has empty arguments');
        calls[tc.index] = { id: tc.id, type: tc.type, name: tc.function.name, args: '', pieces: [] };
      } else {
        assert.ok(calls[tc.index], `a piece of call ${tc.index} before its head`);
        assert.equal(tc.function.name, undefined);
        calls[tc.index].args += tc.function.arguments;
        calls[tc.index].pieces.push(tc.function.arguments);
        order.push(tc.index);
      }
    }
  }
  return { calls, order };
}

/** The content blocks of an Anthropic stream, checking that blocks open, grow and close one at a time. */
function messageStreamBlocks(events) {
  const blocks = [];
  let open = -1;
  for (const e of events) {
    if (e.event === 'content_block_start') {
      assert.equal(open, -1, `block ${e.json.index} opened while ${open} is open`);
      assert.equal(e.json.index, blocks.length, 'blocks are numbered in order');
      open = e.json.index;
      blocks.push({ ...e.json.content_block, json: '', pieces: [] });
    } else if (e.event === 'content_block_delta') {
      assert.equal(e.json.index, open, 'a delta of the open block');
      const b = blocks[open];
      if (e.json.delta.type === 'input_json_delta') {
        b.json += e.json.delta.partial_json;
        b.pieces.push(e.json.delta.partial_json);
      } else {
        b.text += e.json.delta.text;
      }
    } else if (e.event === 'content_block_stop') {
      assert.equal(e.json.index, open);
      open = -1;
    }
  }
  assert.equal(open, -1, 'every block closed');
  return blocks;
}

test('x-mock-tools: N parallel chat calls, whole and streamed, one after the other or interleaved', async () => {
  const body = { ...bodyOf('chat', false), tools: oaTools };
  const id = newId('tools-chat');
  const r = await post('chat', body, { 'x-mock-tools': '3', 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  const ch = r.json.choices[0];
  assert.equal(ch.finish_reason, 'tool_calls');
  assert.equal(ch.message.content, null);
  assert.deepEqual(ch.message.tool_calls.map((c) => c.function.name), ['lookup', 'fetch_page', 'lookup'],
    'the first N tools, cycling');
  assert.equal(new Set(ch.message.tool_calls.map((c) => c.id)).size, 3, 'an id each');
  assert.deepEqual(ch.message.tool_calls.map((c) => c.function.arguments), [0, 1, 2].map(argsOf));
  assert.equal(r.json.usage.completion_tokens, 24, '8 output tokens per call');
  assert.equal((await mock.usageOf(id)).output, 24);

  for (const interleave of ['0', '1']) {
    const sid = newId('tools-chat-stream');
    const s = await post('chat', { ...body, stream: true, stream_options: { include_usage: true } },
      { 'x-mock-tools': '3', 'x-mock-interleave': interleave, 'x-request-id': sid });
    const ev = parseSSE(s.text);
    const { calls, order } = chatStreamCalls(ev);
    const what = `interleave ${interleave}`;
    assert.deepEqual(calls.map((c) => [c.type, c.name, c.args]),
      ch.message.tool_calls.map((c) => ['function', c.function.name, c.function.arguments]), what);
    for (const c of calls) {
      assert.ok(c.pieces.length >= 20, `${what}: ${c.pieces.length} pieces`);
      assert.ok(c.pieces.every((p) => Buffer.byteLength(p) >= 1 && Buffer.byteLength(p) <= 4), what);
    }
    const sorted = [...order].sort((a, b) => a - b);
    if (interleave === '1') {
      assert.deepEqual(order.slice(0, 6), [0, 1, 2, 0, 1, 2], `${what}: round-robin`);
    } else {
      assert.deepEqual(order, sorted, `${what}: one call after the other`);
    }
    assert.equal(ev.filter((e) => e.json?.choices?.[0]?.finish_reason).at(-1).json.choices[0].finish_reason, 'tool_calls');
    assert.equal(finalUsage('chat', s, true).output, 24, what);
    const u = await mock.usageOf(sid);
    assert.ok(u.complete && u.output === 24 && u.sent === 0, JSON.stringify(u));
  }

  // text before the calls, and a single call when the request turns parallel calls off
  const t = await post('chat', body, { 'x-mock-tools': '2', 'x-mock-tool-text': '3' });
  assert.equal(words(t.json.choices[0].message.content), 3);
  assert.equal(t.json.choices[0].message.tool_calls.length, 2);
  assert.equal(t.json.usage.completion_tokens, 3 + 16);
  const ts = parseSSE((await post('chat', { ...body, stream: true }, { 'x-mock-tools': '2', 'x-mock-tool-text': '3' })).text);
  assert.equal(deltas('chat', ts).join(''), t.json.choices[0].message.content);
  assert.equal(chatStreamCalls(ts).calls.length, 2);
  const one = await post('chat', { ...body, parallel_tool_calls: false }, { 'x-mock-tools': '3' });
  assert.equal(one.json.choices[0].message.tool_calls.length, 1);
});

test('x-mock-tools: Anthropic tool_use blocks after an optional text block, never interleaved', async () => {
  const body = { ...bodyOf('messages', false), tools: anTools };
  for (const text of ['0', '2']) {
    const id = newId('tools-msg');
    const h = { 'x-mock-tools': '4', 'x-mock-tool-text': text, 'x-mock-interleave': '1' };
    const r = await post('messages', body, { ...h, 'x-request-id': id });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.stop_reason, 'tool_use');
    const uses = r.json.content.filter((b) => b.type === 'tool_use');
    assert.equal(r.json.content.length, 4 + (text === '2' ? 1 : 0));
    if (text === '2') assert.equal(words(r.json.content[0].text), 2);
    assert.deepEqual(uses.map((b) => b.name), ['lookup', 'fetch_page', 'lookup', 'fetch_page']);
    assert.equal(new Set(uses.map((b) => b.id)).size, 4);
    assert.deepEqual(uses.map((b) => b.input), [0, 1, 2, 3].map((i) => JSON.parse(argsOf(i))));
    assert.equal(r.json.usage.output_tokens, 32 + Number(text));

    const s = await post('messages', { ...body, stream: true }, h);
    const ev = parseSSE(s.text);
    const blocks = messageStreamBlocks(ev);
    const suses = blocks.filter((b) => b.type === 'tool_use');
    assert.deepEqual(suses.map((b) => [b.id.replace(/^toolu_mock_\d+/, ''), b.name, b.json]),
      uses.map((b, i) => [`_${i}`, b.name, argsOf(i)]));
    for (const b of suses) {
      assert.deepEqual(b.input, {}, 'content_block_start has an empty input');
      assert.ok(b.pieces.length >= 20, `${b.pieces.length} pieces`);
    }
    if (text === '2') assert.equal(blocks[0].text, r.json.content[0].text);
    assert.equal(ev.find((e) => e.event === 'message_delta').json.delta.stop_reason, 'tool_use');
    assert.equal(finalUsage('messages', s, true).output, 32 + Number(text));
  }
  const one = await post('messages', { ...body, tool_choice: { type: 'auto', disable_parallel_tool_use: true } },
    { 'x-mock-tools': '3' });
  assert.equal(one.json.content.length, 1);
});

test('x-mock-tools: no tools, tool_choice none or a tool result last: text; bad values: 400', async () => {
  assert.equal((await post('chat', bodyOf('chat', false), { 'x-mock-tools': '2' })).json.choices[0].finish_reason, 'stop');
  const none = await post('chat', { ...bodyOf('chat', false), tools: oaTools, tool_choice: 'none' }, { 'x-mock-tools': '2' });
  assert.equal(none.json.choices[0].message.tool_calls, undefined);
  const result = await post('messages', { ...bodyOf('messages', false), tools: anTools, messages: [
    { role: 'user', content: 'go' },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'lookup', input: {} }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'found' }] }] },
  { 'x-mock-tools': '2' });
  assert.equal(result.json.stop_reason, 'end_turn');
  for (const v of ['0', '17', 'x']) {
    const r = await post('chat', { ...bodyOf('chat', false), tools: oaTools }, { 'x-mock-tools': v });
    assert.equal(r.status, 400, v);
    assert.match(r.json.error.message, /x-mock-tools/);
  }
});

test('images: image_url parts and image blocks are accepted and cost 85 prompt tokens each; bad ones get 400', async () => {
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
  const text = { type: 'text', text: 'What is in these pictures?' };
  const oa = (parts) => ({ ...bodyOf('chat', false), messages: [{ role: 'user', content: [text, ...parts] }] });
  const an = (parts) => ({ ...bodyOf('messages', false), messages: [{ role: 'user', content: [text, ...parts] }] });
  const base = (await post('chat', oa([]))).json.usage.prompt_tokens;
  const two = await post('chat', oa([{ type: 'image_url', image_url: { url: 'https://example.invalid/a.png' } },
    { type: 'image_url', image_url: { url: `data:image/png;base64,${png}`, detail: 'high' } }]));
  assert.equal(two.status, 200, two.text);
  assert.equal(two.json.usage.prompt_tokens, base + 170);
  const abase = (await post('messages', an([]))).json.usage.input_tokens;
  const atwo = await post('messages', an([{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
    { type: 'image', source: { type: 'url', url: 'https://example.invalid/b.jpg' } }]));
  assert.equal(atwo.status, 200, atwo.text);
  assert.equal(atwo.json.usage.input_tokens, abase + 170);
  const s = await post('messages', { ...an([{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }]), stream: true });
  assert.equal(finalUsage('messages', s, true).input, abase + 85);

  const bad = await post('chat', oa([{ type: 'image_url', image_url: { url: 'ftp://example.invalid/a.png' } }]));
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'messages[0].content[1].image_url.url');
  for (const [source, what] of [[{ type: 'base64', media_type: 'image/bmp', data: png }, /media_type/],
    [{ type: 'base64', media_type: 'image/png', data: `data:image/png;base64,${png}` }, /data/],
    [{ type: 'url', url: `data:image/png;base64,${png}` }, /url/]]) {
    const r = await post('messages', an([{ type: 'image', source }]));
    assert.equal(r.status, 400, JSON.stringify(source));
    assert.match(r.json.error.message, /^messages\.0\.content\.1\.image\.source/);
    assert.match(r.json.error.message, what);
  }
  const inResult = await post('messages', an([{ type: 'tool_result', tool_use_id: 't', content: [
    { type: 'image', source: { type: 'base64', media_type: 'image/tiff', data: png } }] }]));
  assert.equal(inResult.status, 400);
  assert.match(inResult.json.error.message, /^messages\.0\.content\.1\.content\.0\.image\.source\.base64\.media_type/);
});

test('x-mock-cache-write: Anthropic reports cache writes apart from reads and input; chat counts them in the prompt', async () => {
  for (const api of ['chat', 'messages', 'responses']) {
    for (const stream of [false, true]) {
      const id = newId(`cw-${api}`);
      const r = await post(api, bodyOf(api, stream), { 'x-mock-cached': '3', 'x-mock-cache-write': '2',
        'x-mock-tokens': '4', 'x-request-id': id });
      const u = await mock.usageOf(id);
      const fu = finalUsage(api, r, stream);
      const what = `${api} stream=${stream}: ${JSON.stringify(fu.u)}`;
      assert.ok(u.cached === 3 && u.cache_write === 2 && u.input > 5, JSON.stringify(u));
      if (api === 'messages') {
        assert.equal(fu.input, u.input - 5, what);
        assert.equal(fu.u.cache_read_input_tokens, 3, what);
        assert.equal(fu.u.cache_creation_input_tokens, 2, what);
      } else {
        assert.equal(fu.input, u.input, what);
        assert.equal((fu.u.prompt_tokens_details ?? fu.u.input_tokens_details).cached_tokens, 3, what);
      }
    }
  }
  // the writes are at most what the reads leave of the prompt
  const id = newId('cw-clamp');
  await post('messages', bodyOf('messages', false), { 'x-mock-cached': '2', 'x-mock-cache-write': '100000', 'x-request-id': id });
  const u = await mock.usageOf(id);
  assert.equal(u.cache_write, u.input - 2);
});

test('x-mock-cache-write-1h: Anthropic splits the writes by lifetime in cache_creation, whole and streamed', async () => {
  for (const stream of [false, true]) {
    const id = newId('cw1h');
    const r = await post('messages', bodyOf('messages', stream), { 'x-mock-cached': '3', 'x-mock-cache-write': '5',
      'x-mock-cache-write-1h': '2', 'x-mock-tokens': '4', 'x-request-id': id });
    assert.equal(r.status, 200);
    const u = await mock.usageOf(id);
    assert.ok(u.cached === 3 && u.cache_write === 5 && u.cache_write_1h === 2, JSON.stringify(u));
    const reports = stream
      ? parseSSE(r.text).filter((e) => e.event === 'message_start' || e.event === 'message_delta')
        .map((e) => e.json.message?.usage ?? e.json.usage)
      : [r.json.usage];
    assert.equal(reports.length, stream ? 2 : 1);
    for (const us of reports) { // message_start and (with the header) message_delta alike
      const what = `stream=${stream}: ${JSON.stringify(us)}`;
      assert.equal(us.cache_creation_input_tokens, 5, what);
      assert.deepEqual(us.cache_creation, { ephemeral_5m_input_tokens: 3, ephemeral_1h_input_tokens: 2 }, what);
      assert.equal(us.input_tokens, u.input - 8, what);
    }
  }
  // without the header: every write is a 5-minute one, and message_delta has the output alone
  const id = newId('cw5m');
  const r = await post('messages', bodyOf('messages', true), { 'x-mock-cache-write': '4', 'x-request-id': id });
  const ev = parseSSE(r.text);
  const start = ev.find((e) => e.event === 'message_start').json.message.usage;
  assert.deepEqual(start.cache_creation, { ephemeral_5m_input_tokens: 4, ephemeral_1h_input_tokens: 0 });
  assert.deepEqual(Object.keys(ev.find((e) => e.event === 'message_delta').json.usage), ['output_tokens']);
  assert.equal((await mock.usageOf(id)).cache_write_1h, 0);
  // the 1-hour writes are at most the writes; a bad count is the mock's 400
  const c = newId('cw1h-clamp');
  await post('messages', bodyOf('messages', false), { 'x-mock-cache-write': '3', 'x-mock-cache-write-1h': '50',
    'x-request-id': c });
  assert.equal((await mock.usageOf(c)).cache_write_1h, 3);
  const bad = await post('messages', bodyOf('messages', false), { 'x-mock-cache-write-1h': '-1' });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /x-mock-cache-write-1h/);
});

/** POSTs rules to /_mock/models; returns the reply. */
function setRules(rules) {
  return mock.direct('/_mock/models', { method: 'POST', body: JSON.stringify(rules),
    headers: { 'content-type': 'application/json' } });
}

test('/_mock/models: a status with Retry-After for N requests of one model, in its API\'s shape; stats by model; reset', async () => {
  await mock.reset();
  const set = await setRules([{ model: 'gpt-4o-mini', status: 503, retry_after: 1, times: 2 },
    { model: 'claude-haiku-4-5', status: 529 }]);
  assert.equal(set.status, 200, set.text);
  assert.deepEqual(set.json.models['gpt-4o-mini'], { model: 'gpt-4o-mini', status: 503, retry_after: 1, times: 2 });
  for (let i = 0; i < 2; i++) {
    const r = await post('chat', bodyOf('chat', false));
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(r.json.error.type, 'server_error');
  }
  assert.equal((await post('chat', bodyOf('chat', false))).status, 200, 'two times, then as usual');
  assert.equal((await mock.direct('/_mock/models')).json.models['gpt-4o-mini'].times, 0);
  // another model, same path: not touched
  assert.equal((await post('chat', { ...bodyOf('chat', false), model: 'gpt-4o' })).status, 200);
  for (let i = 0; i < 3; i++) { // no times: always
    const r = await post('messages', bodyOf('messages', i === 1));
    assert.equal(r.status, 529);
    assert.equal(r.json.type, 'error');
    assert.equal(r.json.error.type, 'overloaded_error');
    assert.equal(r.headers['retry-after'], undefined);
  }
  const st = await mock.stats();
  assert.deepEqual(st.by_model, { 'gpt-4o-mini': 3, 'gpt-4o': 1, 'claude-haiku-4-5': 3 });
  // the rule wins over the request's own headers; a rule of model alone removes it
  const r = await post('messages', bodyOf('messages', false), { 'x-mock-status': '400' });
  assert.equal(r.status, 529);
  await setRules({ model: 'claude-haiku-4-5' });
  assert.equal((await post('messages', bodyOf('messages', false))).status, 200);
  await setRules({ model: 'claude-haiku-4-5', status: 429, retry_after: 9 });
  const rl = await post('messages', bodyOf('messages', false));
  assert.equal(rl.status, 429);
  assert.equal(rl.headers['retry-after'], '9', 'the rule\'s, not the 2 of the 429 fault');
  await mock.reset();
  assert.deepEqual((await mock.direct('/_mock/models')).json.models, {});
  assert.deepEqual((await mock.stats()).by_model, {});
  assert.equal((await post('messages', bodyOf('messages', false))).status, 200);
});

test('/_mock/models: faults and delays by model; bad rules and more than 64 models are refused', async () => {
  await mock.reset();
  await setRules([{ model: 'gpt-4o-mini', fault: 'reset', times: 1 }, { model: 'claude-haiku-4-5', delay_ms: 700 }]);
  await assert.rejects(post('chat', bodyOf('chat', false)), 'the connection is reset');
  assert.equal((await post('chat', bodyOf('chat', false))).status, 200);

  // the delay holds everything back, the head too
  const c = await RawClient.connect(mock.port);
  try {
    const t0 = Date.now();
    await c.write(rawPost(APIS.messages.path, bodyOf('messages', true)));
    await c.until(() => c.buf.includes('\r\n\r\n'), ms(10000), 'the head');
    assert.ok(Date.now() - t0 >= 600, `the head after ${Date.now() - t0} ms`);
  } finally {
    c.destroy();
  }
  const t0 = Date.now();
  const r = await post('messages', bodyOf('messages', false), { 'x-mock-tokens': '3' });
  assert.ok(Date.now() - t0 >= 600);
  assert.equal(r.json.usage.output_tokens, 3);
  // a delayed error: the status after the delay
  await setRules({ model: 'gpt-4o-mini', status: 503, delay_ms: 500, times: 1 });
  const t2 = Date.now();
  assert.equal((await post('chat', bodyOf('chat', false))).status, 503);
  assert.ok(Date.now() - t2 >= 400);
  // and the header alone does the same, for any model
  const t1 = Date.now();
  assert.equal((await post('chat', bodyOf('chat', false), { 'x-mock-delay-ms': '500' })).status, 200);
  assert.ok(Date.now() - t1 >= 400);
  assert.equal((await post('chat', bodyOf('chat', false), { 'x-mock-delay-ms': '-1' })).status, 400);

  for (const [rule, what] of [[{ status: 503 }, /model/], [{ model: 'm', status: 99 }, /status/],
    [{ model: 'm', fault: 'nope' }, /fault/], [{ model: 'm', times: -2 }, /times/],
    [{ model: 'm', delay: 5 }, /unknown member "delay"/], [[{ model: 'a', status: 500 }, 7], /object/]]) {
    const b = await setRules(rule);
    assert.equal(b.status, 400, JSON.stringify(rule));
    assert.match(b.json.error.message, what);
  }
  assert.equal((await mock.direct('/_mock/models')).json.models.a, undefined, 'all or nothing');
  await mock.reset();
  const many = Array.from({ length: 64 }, (_, i) => ({ model: `m${i}`, status: 500 }));
  assert.equal((await setRules(many)).status, 200);
  const full = await setRules({ model: 'm64', status: 500 });
  assert.equal(full.status, 400);
  assert.match(full.json.error.message, /64/);
  assert.equal((await setRules({ model: 'm63', status: 502 })).status, 200, 'a model with a rule may change it');
  await mock.reset();
});

test('x-mock-tools: the official SDKs, pointed at the mock, read the parallel calls whole and streamed', async () => {
  const openai = new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: ms(30000) });
  const anthropic = new Anthropic({ baseURL: mock.url, apiKey: 'sk-ant-test', maxRetries: 0, timeout: ms(30000) });
  const headers = { 'x-mock-tools': '3', 'x-mock-interleave': '1', 'x-mock-tool-text': '2' };
  const ob = { model: 'gpt-4o-mini', messages: msgs, tools: oaTools };
  const want = [0, 1, 2].map((i) => [['lookup', 'fetch_page'][i % 2], argsOf(i)]);
  const c = await openai.chat.completions.create(ob, { headers });
  const final = await openai.chat.completions.stream(ob, { headers }).finalChatCompletion();
  for (const m of [c.choices[0].message, final.choices[0].message]) {
    assert.deepEqual(m.tool_calls.map((t) => [t.function.name, t.function.arguments]), want);
    assert.equal(words(m.content), 2);
  }
  assert.equal(final.choices[0].finish_reason, 'tool_calls');

  const ab = { model: 'claude-haiku-4-5', max_tokens: 100, messages: msgs, tools: anTools };
  const m = await anthropic.messages.create(ab, { headers });
  const s = anthropic.messages.stream(ab, { headers });
  const pieces = [];
  s.on('inputJson', (p) => pieces.push(p));
  const sm = await s.finalMessage();
  for (const x of [m, sm]) {
    assert.deepEqual(x.content.map((b) => b.type), ['text', 'tool_use', 'tool_use', 'tool_use']);
    assert.deepEqual(x.content.slice(1).map((b) => [b.name, JSON.stringify(b.input)]), want);
    assert.equal(x.stop_reason, 'tool_use');
  }
  assert.equal(pieces.join(''), [0, 1, 2].map(argsOf).join(''));
  assert.ok(pieces.length >= 60, `${pieces.length} input_json_delta pieces`);
});

test('stop sequences: the text ends before the word where the first one found starts; Anthropic says which', async () => {
  const full = (await post('chat', bodyOf('chat', false), { 'x-mock-tokens': '8' })).json.choices[0].message.content;
  const w = full.match(/ [a-z]+/g);
  // a sequence that starts inside word 3: the words before it go out
  const seq = w[3].slice(2) + w[4];
  for (const stream of [false, true]) {
    const id = newId('stop-chat');
    const r = await post('chat', bodyOf('chat', stream, { stop: ['zzz', seq] }), { 'x-mock-tokens': '8', 'x-request-id': id });
    const text = stream ? deltas('chat', parseSSE(r.text)).join('') : r.json.choices[0].message.content;
    assert.equal(text, w.slice(0, 3).join(''), `stream=${stream}`);
    assert.equal(finalUsage('chat', r, stream).output, 3);
    assert.equal((await mock.usageOf(id)).output, 3);
    const m = await post('messages', bodyOf('messages', stream, { stop_sequences: [w[1]] }), { 'x-mock-tokens': '8' });
    if (stream) {
      const ev = parseSSE(m.text);
      assert.equal(deltas('messages', ev).join(''), w[0]);
      assert.deepEqual(ev.find((e) => e.event === 'message_delta').json.delta, { stop_reason: 'stop_sequence', stop_sequence: w[1] });
    } else {
      assert.equal(m.json.content[0].text, w[0]);
      assert.equal(m.json.stop_reason, 'stop_sequence');
      assert.equal(m.json.stop_sequence, w[1]);
    }
  }
  const none = await post('messages', bodyOf('messages', false, { stop_sequences: ['not in it'] }), { 'x-mock-tokens': '8' });
  assert.deepEqual([none.json.stop_reason, none.json.stop_sequence, words(none.json.content[0].text)], ['end_turn', null, 8]);
  const oneString = await post('chat', bodyOf('chat', false, { stop: w[2] }), { 'x-mock-tokens': '8' });
  assert.equal(oneString.json.choices[0].message.content, w.slice(0, 2).join(''));
});
