// The gate in front of the mock provider: every endpoint, streamed and not, what reaches the
// provider, what the client gets, and what the request log says.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import {
  test, cleanup, startMock, startGate, mockProviders, startScriptedUpstream, RawClient,
  rawRequest, rawPost, parseSSE, newId, wordCount, runGate, ms,
} from './harness.mjs';

const OPENAI_KEY = `sk-gate-openai-${process.pid}-${Date.now()}`;
const ANTHROPIC_KEY = `sk-gate-anthropic-${process.pid}-${Date.now()}`;
const ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;

let mock, gate, scripted;

before(async () => {
  mock = await startMock();
  // An upstream with what the mock lacks: its own x-request-id and cache token counts.
  scripted = await startScriptedUpstream((req) => {
    const anth = req.path.startsWith('/v1/messages');
    const body = anth
      ? JSON.stringify({
        id: 'msg_scripted', type: 'message', role: 'assistant', model: 'scripted-claude',
        content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', stop_sequence: null,
        usage: { input_tokens: 10, cache_read_input_tokens: 5, cache_creation_input_tokens: 7,
          output_tokens: 3 },
      })
      : JSON.stringify({
        id: 'chatcmpl-scripted', object: 'chat.completion', created: 1, model: 'scripted-gpt',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' },
          finish_reason: 'stop' }],
        usage: { prompt_tokens: 11, completion_tokens: 22, total_tokens: 33,
          prompt_tokens_details: { cached_tokens: 3 } },
      });
    return 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n' +
      'x-request-id: upstream-req-42\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  });
  const base = mockProviders(mock.url);
  gate = await startGate({
    config: {
      providers: {
        ...base.providers,
        'keyed-openai': { base_url: `${mock.url}/v1`, format: 'openai',
          api_key_env: 'TG_IT_OPENAI_KEY' },
        'keyed-anthropic': { base_url: `${mock.url}/v1`, format: 'anthropic',
          api_key_env: 'TG_IT_ANTHROPIC_KEY' },
        'unset-key': { base_url: `${mock.url}/v1`, format: 'openai',
          api_key_env: 'TG_IT_UNSET_KEY' },
        scripted: { base_url: `http://127.0.0.1:${scripted.port}/v1`, format: 'openai' },
        'scripted-anthropic': { base_url: `http://127.0.0.1:${scripted.port}/v1`,
          format: 'anthropic' },
      },
      models: {
        ...base.models,
        'keyed-gpt': 'keyed-openai',
        'keyed-claude': 'keyed-anthropic',
        'unset-gpt': 'unset-key',
        'scripted-gpt': 'scripted',
        'scripted-claude': 'scripted-anthropic',
      },
    },
    env: { TG_IT_OPENAI_KEY: OPENAI_KEY, TG_IT_ANTHROPIC_KEY: ANTHROPIC_KEY, TG_IT_UNSET_KEY: '' },
  });
});

after(cleanup);

const userMsg = (text) => [{ role: 'user', content: text }];

/** Checks the fields every proxied request's log record must have. */
function checkRecord(rec, want) {
  for (const [k, v] of Object.entries(want)) assert.deepEqual(rec[k], v, `log field ${k}`);
  const t = Date.parse(rec.time);
  assert.ok(Math.abs(Date.now() - t) < 120000, `log time ${rec.time} is not about now`);
  assert.match(rec.client, /^127\.0\.0\.1:\d+$/);
  assert.ok(Number.isInteger(rec.latency_us), `latency_us ${rec.latency_us} is whole microseconds`);
  assert.ok(Number.isInteger(rec.ttfb_us), `ttfb_us ${rec.ttfb_us} is whole microseconds`);
  assert.ok(rec.ttfb_us >= 0, `ttfb_us ${rec.ttfb_us} >= 0`);
  assert.ok(rec.ttfb_us <= rec.latency_us, `ttfb_us ${rec.ttfb_us} <= latency_us ${rec.latency_us}`);
  assert.ok(rec.bytes_in > 0 && rec.bytes_out > 0, 'bytes_in and bytes_out are counted');
}

function chatText(events) {
  return events
    .filter((e) => e.json && Array.isArray(e.json.choices))
    .flatMap((e) => e.json.choices.map((c) => c.delta?.content ?? ''))
    .join('');
}

test('chat completion: the answer, usage and log record', async () => {
  const id = newId('chat');
  const body = { model: 'gpt-4o-mini', messages: userMsg('Say something short, please.') };
  const r = await gate.post('/v1/chat/completions', body, { 'x-mock-tokens': '5', 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.equal(r.headers['x-request-id'], id);
  const text = r.json.choices[0].message.content;
  assert.equal(wordCount(text), 5);
  assert.equal(r.json.usage.completion_tokens, 5);

  // the mock gives the same answer directly
  const direct = await mock.direct('/v1/chat/completions', {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-mock-tokens': '5' },
    body: JSON.stringify(body),
  });
  assert.equal(text, direct.json.choices[0].message.content);
  assert.deepEqual(r.json.usage, direct.json.usage);

  const rec = await gate.logRecord(id);
  checkRecord(rec, {
    method: 'POST', endpoint: '/v1/chat/completions', model: 'gpt-4o-mini',
    provider: 'mock-openai', status: 200, stream: false, upstream_status: 200,
  });
  assert.deepEqual(rec.usage, { input: r.json.usage.prompt_tokens, output: 5, cached: 0,
    cache_write: 0 });
  assert.ok(rec.bytes_out >= Buffer.byteLength(r.text), 'bytes_out covers the body');
  assert.ok(rec.bytes_in >= Buffer.byteLength(JSON.stringify(body)), 'bytes_in covers the body');
  assert.equal(rec.error, undefined);
});

test('chat stream: the gate asks for usage upstream and hides the usage chunk', async () => {
  const id = newId('chat-stream');
  const body = { model: 'gpt-4o-mini', messages: userMsg('Stream me six words.'), stream: true };
  const r = await gate.post('/v1/chat/completions', body, { 'x-mock-tokens': '6', 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /^text\/event-stream/);
  assert.equal(r.headers['transfer-encoding'], 'chunked');
  assert.equal(r.headers['x-request-id'], id);

  const upstream = await mock.last();
  const sent = JSON.parse(upstream.body);
  assert.equal(sent.stream_options?.include_usage, true, 'include_usage was set upstream');
  assert.deepEqual(sent.messages, body.messages);

  const events = parseSSE(r.text);
  assert.equal(events.at(-1).data, '[DONE]');
  const chunks = events.filter((e) => e.json);
  assert.ok(chunks.length >= 6);
  assert.ok(!chunks.some((e) => Array.isArray(e.json.choices) && e.json.choices.length === 0),
    'the usage-only chunk reached a client that did not ask for it');
  assert.ok(!chunks.some((e) => e.json.usage), 'no chunk carries usage');
  const text = chatText(events);
  assert.equal(wordCount(text), 6);

  // what the mock reports when asked for usage directly, for the same request
  const direct = await mock.direct('/v1/chat/completions', {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-mock-tokens': '6' },
    body: JSON.stringify({ ...body, stream_options: { include_usage: true } }),
  });
  const dEvents = parseSSE(direct.text);
  const usage = dEvents.find((e) => e.json?.usage)?.json.usage;
  assert.ok(usage, 'the mock sends a usage chunk when asked');
  assert.equal(text, chatText(dEvents));

  const rec = await gate.logRecord(id);
  checkRecord(rec, {
    method: 'POST', endpoint: '/v1/chat/completions', model: 'gpt-4o-mini',
    provider: 'mock-openai', status: 200, stream: true, upstream_status: 200,
  });
  assert.deepEqual(rec.usage, { input: usage.prompt_tokens, output: usage.completion_tokens,
    cached: 0, cache_write: 0 });
  assert.equal(usage.completion_tokens, 6);
});

test('chat stream: include_usage false from the client is overridden upstream, still hidden',
  async () => {
    const id = newId('chat-stream-false');
    const body = { model: 'gpt-4o-mini', messages: userMsg('hi'), stream: true,
      stream_options: { include_usage: false } };
    const r = await gate.post('/v1/chat/completions', body, { 'x-mock-tokens': '2', 'x-request-id': id });
    assert.equal(r.status, 200);
    const sent = JSON.parse((await mock.last()).body);
    assert.equal(sent.stream_options.include_usage, true);
    const events = parseSSE(r.text);
    assert.ok(!events.some((e) => e.json?.usage), 'no usage reached the client');
    const rec = await gate.logRecord(id);
    assert.equal(rec.usage?.output, 2);
  });

test('chat stream: a client that asks for usage gets the usage chunk', async () => {
  const id = newId('chat-usage');
  const body = { model: 'gpt-4o-mini', messages: userMsg('Count to four.'), stream: true,
    stream_options: { include_usage: true } };
  const raw = JSON.stringify(body);
  const r = await gate.post('/v1/chat/completions', raw, { 'x-mock-tokens': '4', 'x-request-id': id });
  assert.equal(r.status, 200);
  const upstream = await mock.last();
  assert.equal(upstream.body, raw, 'an unmodified body is forwarded byte for byte');

  const events = parseSSE(r.text);
  assert.equal(events.at(-1).data, '[DONE]');
  const usageChunks = events.filter((e) => e.json?.usage);
  assert.equal(usageChunks.length, 1);
  assert.deepEqual(usageChunks[0].json.choices, []);
  const usage = usageChunks[0].json.usage;
  assert.equal(usage.completion_tokens, 4);
  assert.equal(wordCount(chatText(events)), 4);

  const rec = await gate.logRecord(id);
  checkRecord(rec, { status: 200, stream: true, provider: 'mock-openai' });
  assert.deepEqual(rec.usage, { input: usage.prompt_tokens, output: 4, cached: 0, cache_write: 0 });
});

test('responses: non-stream and stream', async () => {
  const id = newId('resp');
  const body = { model: 'gpt-4o-mini', input: 'Write a haiku about gates.', instructions: 'Be brief.' };
  const r = await gate.post('/v1/responses', body, { 'x-mock-tokens': '4', 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'response');
  const text = r.json.output[0].content[0].text;
  assert.equal(wordCount(text), 4);
  const u = r.json.usage;
  assert.equal(u.output_tokens, 4);
  const rec = await gate.logRecord(id);
  checkRecord(rec, { endpoint: '/v1/responses', model: 'gpt-4o-mini', provider: 'mock-openai',
    status: 200, stream: false, upstream_status: 200 });
  assert.deepEqual(rec.usage, { input: u.input_tokens, output: 4, cached: 0, cache_write: 0 });

  const sid = newId('resp-stream');
  const sbody = { ...body, stream: true };
  const s = await gate.post('/v1/responses', sbody, { 'x-mock-tokens': '4', 'x-request-id': sid });
  assert.equal(s.status, 200);
  assert.match(s.headers['content-type'], /^text\/event-stream/);
  const upstream = await mock.last();
  assert.equal(upstream.body, JSON.stringify(sbody), 'responses bodies are not rewritten');
  const events = parseSSE(s.text);
  const deltas = events.filter((e) => e.event === 'response.output_text.delta');
  assert.equal(deltas.map((e) => e.json.delta).join(''), text);
  const done = events.find((e) => e.event === 'response.completed');
  assert.ok(done, 'response.completed reached the client');
  const su = done.json.response.usage;
  const srec = await gate.logRecord(sid);
  checkRecord(srec, { endpoint: '/v1/responses', status: 200, stream: true });
  assert.deepEqual(srec.usage, { input: su.input_tokens, output: su.output_tokens, cached: 0,
    cache_write: 0 });
  assert.equal(su.output_tokens, 4);
});

test('embeddings', async () => {
  const id = newId('emb');
  const body = { model: 'text-embedding-3-small', input: ['first text', 'a second, longer text'] };
  const r = await gate.post('/v1/embeddings', body, { 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data.length, 2);
  for (const d of r.json.data) {
    assert.ok(d.embedding.length > 0);
    assert.ok(d.embedding.every((x) => typeof x === 'number'));
  }
  const direct = await mock.direct('/v1/embeddings', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.deepEqual(r.json, direct.json);
  const rec = await gate.logRecord(id);
  checkRecord(rec, { endpoint: '/v1/embeddings', model: 'text-embedding-3-small',
    provider: 'mock-openai', status: 200, stream: false });
  assert.equal(rec.usage.input, r.json.usage.prompt_tokens);
  assert.ok(r.json.usage.prompt_tokens > 0);
});

test('messages: non-stream, with anthropic-version added upstream', async () => {
  const id = newId('msg');
  const body = { model: 'claude-haiku-4-5', max_tokens: 100, system: 'Be terse.',
    messages: userMsg('Hello there, Claude.') };
  const r = await gate.post('/v1/messages', body, { 'x-mock-tokens': '7', 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.type, 'message');
  assert.equal(r.json.content[0].type, 'text');
  assert.equal(wordCount(r.json.content[0].text), 7);
  const up = await mock.last();
  assert.equal(up.path, '/v1/messages');
  assert.equal(up.headers['anthropic-version'], '2023-06-01');
  assert.equal(up.headers['x-request-id'], id);
  const u = r.json.usage;
  assert.equal(u.output_tokens, 7);
  const rec = await gate.logRecord(id);
  checkRecord(rec, { endpoint: '/v1/messages', model: 'claude-haiku-4-5',
    provider: 'mock-anthropic', status: 200, stream: false, upstream_status: 200 });
  assert.deepEqual(rec.usage, {
    input: u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0),
    output: 7, cached: u.cache_read_input_tokens ?? 0, cache_write: u.cache_creation_input_tokens ?? 0,
  });

  // a client's own anthropic-version is kept, not doubled
  const r2 = await gate.post('/v1/messages', body, { 'anthropic-version': '2023-01-01' });
  assert.equal(r2.status, 200);
  assert.equal((await mock.last()).headers['anthropic-version'], '2023-01-01');
});

test('messages: stream', async () => {
  const id = newId('msg-stream');
  const body = { model: 'claude-haiku-4-5', max_tokens: 100, stream: true,
    messages: userMsg('Stream, please.') };
  const r = await gate.post('/v1/messages', body, { 'x-mock-tokens': '5', 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /^text\/event-stream/);
  const events = parseSSE(r.text);
  assert.equal(events[0].event, 'message_start');
  assert.equal(events.at(-1).event, 'message_stop');
  const text = events
    .filter((e) => e.event === 'content_block_delta')
    .map((e) => e.json.delta.text)
    .join('');
  assert.equal(wordCount(text), 5);
  const start = events[0].json.message.usage;
  const delta = events.find((e) => e.event === 'message_delta').json.usage;
  assert.equal(delta.output_tokens, 5);
  const rec = await gate.logRecord(id);
  checkRecord(rec, { endpoint: '/v1/messages', provider: 'mock-anthropic', status: 200,
    stream: true });
  assert.deepEqual(rec.usage, {
    input: start.input_tokens + (start.cache_read_input_tokens ?? 0) +
      (start.cache_creation_input_tokens ?? 0),
    output: 5, cached: start.cache_read_input_tokens ?? 0,
    cache_write: start.cache_creation_input_tokens ?? 0,
  });
});

test('messages/count_tokens', async () => {
  const id = newId('count');
  const body = { model: 'claude-haiku-4-5', system: 'You count.',
    messages: userMsg('How many tokens is this sentence?') };
  const r = await gate.post('/v1/messages/count_tokens', body, { 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  assert.ok(Number.isInteger(r.json.input_tokens) && r.json.input_tokens > 0);
  const up = await mock.last();
  assert.equal(up.path, '/v1/messages/count_tokens');
  assert.equal(up.headers['anthropic-version'], '2023-06-01');
  const direct = await mock.direct('/v1/messages/count_tokens', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.deepEqual(r.json, direct.json);
  const rec = await gate.logRecord(id);
  checkRecord(rec, { method: 'POST', endpoint: '/v1/messages/count_tokens',
    model: 'claude-haiku-4-5', provider: 'mock-anthropic', status: 200, stream: false });
});

test('GET /v1/models lists the configured models without asking a provider', async () => {
  const before = (await mock.stats()).requests;
  const id = newId('models');
  const r = await gate.request('/v1/models', { headers: { 'x-request-id': id } });
  assert.equal(r.status, 200);
  assert.equal(r.json.object, 'list');
  const owners = Object.fromEntries(r.json.data.map((m) => [m.id, m.owned_by]));
  assert.deepEqual(owners, {
    'gpt-4o-mini': 'mock-openai',
    'text-embedding-3-small': 'mock-openai',
    'claude-haiku-4-5': 'mock-anthropic',
    renamed: 'mock-openai',
    'keyed-gpt': 'keyed-openai',
    'keyed-claude': 'keyed-anthropic',
    'unset-gpt': 'unset-key',
    'scripted-gpt': 'scripted',
    'scripted-claude': 'scripted-anthropic',
  }, 'exact names only: the wildcard gpt-4.1* is not a model');
  for (const m of r.json.data) assert.equal(m.object, 'model');
  assert.equal((await mock.stats()).requests, before);
  const rec = await gate.logRecord(id);
  assert.equal(rec.method, 'GET');
  assert.equal(rec.endpoint, '/v1/models');
  assert.equal(rec.status, 200);
});

test('GET /healthz', async () => {
  const r = await gate.request('/healthz');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.deepEqual(r.json, { status: 'ok' });
  assert.match(r.headers['x-request-id'], ID_RE);
});

test('GET /status counts requests by status', async () => {
  const version = runGate(['version']).stdout.trim().split(' ').pop();
  const s1 = (await gate.status()).json;
  assert.equal(s1.version, version);
  assert.equal(s1.workers, 1);
  assert.ok(Number.isInteger(s1.uptime_s) && s1.uptime_s >= 0);
  assert.ok(s1.connections_open >= 1, 'the /status request itself is an open connection');
  assert.equal(s1.request_log_dropped, 0);

  await gate.request('/healthz');
  await gate.request('/healthz');
  await gate.request('/no/such/path');
  await gate.post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: userMsg('x') });
  const s2 = (await gate.status()).json;
  const by = (s, code) => s.requests_by_status[code] ?? 0;
  // s1 itself, two health checks, one 404, one chat
  assert.equal(s2.requests_served - s1.requests_served, 5);
  assert.equal(by(s2, '200') - by(s1, '200'), 4);
  assert.equal(by(s2, '404') - by(s1, '404'), 1);
  const total = Object.values(s2.requests_by_status).reduce((a, b) => a + b, 0);
  assert.equal(total, s2.requests_served, 'the by-status counts add up to the total');
  assert.ok(s2.upstream_connections_opened >= 1);
});

test('upstream connections are reused from the pool', async () => {
  const body = { model: 'gpt-4o-mini', messages: userMsg('x') };
  assert.equal((await gate.post('/v1/chat/completions', body)).status, 200);
  const s1 = (await gate.status()).json;
  for (let i = 0; i < 3; i++)
    assert.equal((await gate.post('/v1/chat/completions', body)).status, 200);
  const s2 = (await gate.status()).json;
  assert.equal(s2.upstream_connections_opened, s1.upstream_connections_opened,
    'sequential requests to one provider opened new upstream connections');
});

test('request ids: kept when valid, generated otherwise, forwarded upstream', async () => {
  const body = { model: 'gpt-4o-mini', messages: userMsg('id test') };
  const valid = 'Az09._:-'.padEnd(64, 'x');
  let r = await gate.post('/v1/chat/completions', body, { 'x-request-id': valid });
  assert.equal(r.headers['x-request-id'], valid);
  assert.equal((await mock.last()).headers['x-request-id'], valid);
  assert.equal((await gate.logRecord(valid)).status, 200);

  const seen = new Set();
  for (const bad of ['x'.repeat(65), 'has space', 'slash/id', 'semi;colon', undefined]) {
    r = await gate.post('/v1/chat/completions', body, bad === undefined ? {} : { 'x-request-id': bad });
    assert.equal(r.status, 200);
    const got = r.headers['x-request-id'];
    assert.match(got, ID_RE, `a generated id for ${bad}`);
    assert.notEqual(got, bad);
    assert.ok(!seen.has(got), 'generated ids are unique');
    seen.add(got);
    const up = await mock.last();
    assert.equal(up.headers['x-request-id'], got, 'the provider sees the same id as the client');
    await gate.logRecord(got);
  }
  // the gate's own answers carry one too
  r = await gate.request('/v1/models', { headers: { 'x-request-id': 'models-id-1' } });
  assert.equal(r.headers['x-request-id'], 'models-id-1');
});

test("the provider's request id comes back as x-upstream-request-id", async () => {
  const id = newId('upid');
  const r = await gate.post('/v1/chat/completions',
    { model: 'scripted-gpt', messages: userMsg('hi') }, { 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-request-id'], id);
  assert.equal(r.headers['x-upstream-request-id'], 'upstream-req-42');
  const dup = r.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'x-request-id');
  assert.equal(dup.length, 1, 'one x-request-id header');
  assert.equal(scripted.requests.at(-1).headers['x-request-id'], id);
  // cached tokens are part of OpenAI's prompt_tokens already
  const rec = await gate.logRecord(id);
  assert.deepEqual(rec.usage, { input: 11, output: 22, cached: 3, cache_write: 0 });
});

test('the query string reaches the provider', async () => {
  const r = await gate.post('/v1/chat/completions?api-version=2024-10-21&x=a%20b',
    { model: 'scripted-gpt', messages: userMsg('q') });
  assert.equal(r.status, 200, r.text);
  assert.equal(scripted.requests.at(-1).path, '/v1/chat/completions?api-version=2024-10-21&x=a%20b');
});

test('Anthropic cache reads and writes are logged (input counts the whole prompt)', async () => {
  const id = newId('cache');
  const r = await gate.post('/v1/messages',
    { model: 'scripted-claude', max_tokens: 10, messages: userMsg('hi') }, { 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  const rec = await gate.logRecord(id);
  // Anthropic's input_tokens leaves out cache reads and writes; OpenAI's prompt_tokens does not.
  // The log's input is the whole prompt either way, so totals compare across providers.
  assert.deepEqual(rec.usage, { input: 22, output: 3, cached: 5, cache_write: 7 });
});

test("a provider key replaces the client's credentials and is never shown", async () => {
  const id1 = newId('key-oai');
  let r = await gate.post('/v1/chat/completions', { model: 'keyed-gpt', messages: userMsg('k') },
    { authorization: 'Bearer sk-client-own', 'x-api-key': 'client-x-api-key', 'x-request-id': id1 });
  assert.equal(r.status, 200, r.text);
  let up = await mock.last();
  assert.equal(up.headers.authorization, `Bearer ${OPENAI_KEY}`);
  assert.equal(up.headers['x-api-key'], undefined);
  assert.ok(!JSON.stringify(r.headers).includes(OPENAI_KEY) && !r.text.includes(OPENAI_KEY));

  const id2 = newId('key-anth');
  r = await gate.post('/v1/messages',
    { model: 'keyed-claude', max_tokens: 5, messages: userMsg('k'), stream: true },
    { 'x-api-key': 'sk-ant-client-own', authorization: 'Bearer sk-client-2', 'x-request-id': id2 });
  assert.equal(r.status, 200, r.text);
  up = await mock.last();
  assert.equal(up.headers['x-api-key'], ANTHROPIC_KEY);
  assert.equal(up.headers.authorization, undefined);
  assert.ok(!JSON.stringify(r.headers).includes(ANTHROPIC_KEY) && !r.text.includes(ANTHROPIC_KEY));

  // an upstream error answer for a keyed provider does not show it either
  r = await gate.post('/v1/chat/completions', { model: 'keyed-gpt', messages: userMsg('k') },
    { 'x-mock-status': '401' });
  assert.equal(r.status, 401);
  assert.ok(!r.text.includes(OPENAI_KEY));

  await gate.logRecord(id1);
  await gate.logRecord(id2);
  const log = fs.readFileSync(gate.logPath, 'utf8');
  assert.ok(!log.includes(OPENAI_KEY) && !log.includes(ANTHROPIC_KEY), 'a key is in the log');
  assert.ok(!gate.proc.stderr.includes(OPENAI_KEY) && !gate.proc.stderr.includes(ANTHROPIC_KEY));
});

test("without a provider key the client's credentials pass through", async () => {
  let r = await gate.post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: userMsg('p') },
    { authorization: 'Bearer sk-client-pass' });
  assert.equal(r.status, 200);
  assert.equal((await mock.last()).headers.authorization, 'Bearer sk-client-pass');

  r = await gate.post('/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 5,
    messages: userMsg('p') }, { 'x-api-key': 'sk-ant-client-pass' });
  assert.equal(r.status, 200);
  assert.equal((await mock.last()).headers['x-api-key'], 'sk-ant-client-pass');

  // api_key_env names a variable that is not set: a warning, then pass-through
  assert.match(gate.proc.stderr, /warning: provider 'unset-key': TG_IT_UNSET_KEY is not set/);
  r = await gate.post('/v1/chat/completions', { model: 'unset-gpt', messages: userMsg('p') },
    { authorization: 'Bearer sk-client-unset' });
  assert.equal(r.status, 200);
  assert.equal((await mock.last()).headers.authorization, 'Bearer sk-client-unset');
});

test("an edited body keeps the rest of the client's bytes as they were", async () => {
  // numbers a double would round (2^53 + 1), escapes and spacing: only the edited members change
  const raw = '{ "model" : "renamed", "stream": true,\n  "seed": 9007199254740993,' +
    ' "temperature": 0.70, "top_p": 1e-7, "user": "caf\\u00e9 \\ud83d\\ude00",\n' +
    '  "messages": [ {"role": "user", "content": "exact\\tbytes"} ] }';
  const r = await gate.post('/v1/chat/completions', raw, { 'x-mock-tokens': '2' });
  assert.equal(r.status, 200, r.text);
  const sent = (await mock.last()).body;
  for (const part of ['"seed": 9007199254740993', '"temperature": 0.70', '"top_p": 1e-7',
    '"user": "caf\\u00e9 \\ud83d\\ude00"',
    '"messages": [ {"role": "user", "content": "exact\\tbytes"} ]'])
    assert.ok(sent.includes(part), `${part} is not in what the provider got: ${sent}`);
  const parsed = JSON.parse(sent);
  assert.equal(parsed.model, 'gpt-4o-mini');
  assert.equal(parsed.stream_options.include_usage, true);
});

test('upstream_model renames the model the provider sees', async () => {
  const body = { model: 'renamed', messages: userMsg('rename me'), temperature: 0.5 };
  const id = newId('rename');
  const r = await gate.post('/v1/chat/completions', body, { 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  const sent = JSON.parse((await mock.last()).body);
  assert.equal(sent.model, 'gpt-4o-mini');
  assert.deepEqual(sent.messages, body.messages);
  assert.equal(sent.temperature, 0.5);
  assert.equal(r.json.model, 'gpt-4o-mini', "the provider's answer is relayed as it is");
  const rec = await gate.logRecord(id);
  assert.equal(rec.model, 'renamed', 'the log keeps the model the client asked for');
  assert.equal(rec.upstream_model, 'gpt-4o-mini', 'and the one the provider served');
});

test('a wildcard model entry matches by prefix', async () => {
  for (const model of ['gpt-4.1-mini', 'gpt-4.1-nano-2025-04-14', 'gpt-4.1']) {
    const id = newId('wild');
    const r = await gate.post('/v1/chat/completions', { model, messages: userMsg('w') },
      { 'x-request-id': id });
    assert.equal(r.status, 200, `${model}: ${r.text}`);
    assert.equal(JSON.parse((await mock.last()).body).model, model);
    const rec = await gate.logRecord(id);
    assert.equal(rec.model, model);
    assert.equal(rec.provider, 'mock-openai');
  }
  const r = await gate.post('/v1/chat/completions', { model: 'gpt-4.2', messages: userMsg('w') });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'model_not_found');
});

test('keep-alive: two requests on one connection', async () => {
  const c = await RawClient.connect(gate.port);
  try {
    const id1 = newId('ka');
    const id2 = newId('ka');
    await c.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-request-id: ${id1}\r\n\r\n`);
    const r1 = await c.readResponse();
    assert.equal(r1.status, 200);
    assert.equal(r1.headers.connection, 'keep-alive');
    await c.write(rawPost('/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: userMsg('again') }, { 'x-request-id': id2 }));
    const r2 = await c.readResponse();
    assert.equal(r2.status, 200, r2.body);
    assert.equal(r2.headers['x-request-id'], id2);
    assert.ok(!c.ended, 'the connection is still open');
    const [a, b] = [await gate.logRecord(id1), await gate.logRecord(id2)];
    assert.equal(a.client, `127.0.0.1:${c.sock.localPort}`);
    assert.equal(b.client, a.client, 'both requests came on one connection');
  } finally {
    c.destroy();
  }
});

test('pipelined requests are answered in order', async () => {
  const ids = [newId('pipe'), newId('pipe'), newId('pipe'), newId('pipe')];
  const c = await RawClient.connect(gate.port);
  try {
    await c.write(
      rawPost('/v1/chat/completions', { model: 'gpt-4o-mini', messages: userMsg('one') },
        { 'x-request-id': ids[0], 'x-mock-tokens': '3' }) +
      `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-request-id: ${ids[1]}\r\n\r\n` +
      rawPost('/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 9, messages: userMsg('three') },
        { 'x-request-id': ids[2], 'x-mock-tokens': '2' }) +
      `GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nx-request-id: ${ids[3]}\r\n\r\n`);
    const rs = [];
    for (let i = 0; i < 4; i++) rs.push(await c.readResponse());
    assert.deepEqual(rs.map((r) => r.headers['x-request-id']), ids);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200]);
    assert.equal(wordCount(JSON.parse(rs[0].body).choices[0].message.content), 3);
    assert.deepEqual(JSON.parse(rs[1].body), { status: 'ok' });
    assert.equal(wordCount(JSON.parse(rs[2].body).content[0].text), 2);
    assert.equal(JSON.parse(rs[3].body).object, 'list');
  } finally {
    c.destroy();
  }
});

test('Connection: close is honoured', async () => {
  const r = await rawRequest(gate.port,
    'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'close');
  assert.equal(r.closed, true);
  // HTTP/1.0 without keep-alive closes too
  const r10 = await rawRequest(gate.port, 'GET /healthz HTTP/1.0\r\n\r\n');
  assert.equal(r10.status, 200);
  assert.equal(r10.closed, true);
});

test('Expect: 100-continue gets an interim answer before the body is sent', async () => {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: userMsg('continue') });
  const c = await RawClient.connect(gate.port);
  try {
    await c.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
      'content-type: application/json\r\nExpect: 100-continue\r\n' +
      `content-length: ${body.length}\r\n\r\n`);
    await c.until(() => c.buf.includes('HTTP/1.1 100'), ms(5000), '100 Continue');
    await c.write(body);
    const r = await c.readResponse();
    assert.equal(r.interim.length, 1);
    assert.equal(r.interim[0].status, 100);
    assert.equal(r.status, 200, r.body);
    assert.equal((await mock.last()).headers.expect, undefined, 'Expect is not forwarded');
  } finally {
    c.destroy();
  }
});

test('a stream to an HTTP/1.0 client is sent without chunked coding and ends with the close', async () => {
  const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: userMsg('old client') });
  const raw = await new Promise((resolve, reject) => {
    const sock = net.connect(gate.port, '127.0.0.1');
    const parts = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('no close in time')); }, ms(10000));
    sock.on('data', (d) => parts.push(d));
    sock.on('end', () => { clearTimeout(timer); resolve(Buffer.concat(parts).toString('utf8')); });
    sock.on('error', reject);
    sock.write('POST /v1/chat/completions HTTP/1.0\r\nHost: 127.0.0.1\r\n' +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
  const [head, rest] = raw.split('\r\n\r\n', 2).length === 2
    ? [raw.slice(0, raw.indexOf('\r\n\r\n')), raw.slice(raw.indexOf('\r\n\r\n') + 4)] : [raw, ''];
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.doesNotMatch(head, /transfer-encoding/i, 'HTTP/1.0 has no chunked coding');
  assert.match(head, /connection: close/i);
  // the body is the event stream itself: data lines, then [DONE], with no chunk sizes between
  const events = rest.split('\n\n').filter((e) => e.startsWith('data: '));
  assert.ok(events.length > 3, rest);
  assert.equal(events.at(-1), 'data: [DONE]');
  const text = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)))
    .map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
  assert.ok(text.length > 0, 'the streamed text arrived');
});
