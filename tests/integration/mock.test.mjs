// The mock provider itself, without a gate: the faults and the strictness that the gate's tests
// rely on (bench/README.md lists them), each checked for the three APIs against what the mock
// records in /_mock/usage.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
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
