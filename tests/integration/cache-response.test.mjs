// The response cache end to end (issue 13): hit, miss, expiry, eviction, no-store and no-cache,
// bypass, a bad header; scopes (two agents under the agent scope never share, two agents of one
// team share under the team scope, two teams never do); a hit moves no budget and reaches no
// provider (the mock's request count, the admin budget view, the log and the ledger); a
// stream answered from a whole entry and the reverse, both APIs, through the official SDKs,
// tool calls intact; a translated target; a stream cut short is not stored.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  test, cleanup, startMock, startGate, tempDir, runGate, gateAdminPort, adminRequest,
  parseSSE, newId, sleep, ms, queuedBytes, waitStable, SANITIZED,
} from './harness.mjs';

const ADMIN_TOKEN = 'tga-cache-test-admin-token-0001';
const ENV = { TG_CR_ADMIN_TOKEN: ADMIN_TOKEN };
const KEYS = {
  a1: 'tg-cr-a1-key-00000001', a2: 'tg-cr-a2-key-00000002',
  x1: 'tg-cr-x1-key-00000003', x2: 'tg-cr-x2-key-00000004', y1: 'tg-cr-y1-key-00000005',
  short: 'tg-cr-short-key-000006', off: 'tg-cr-off-key-00000007', on: 'tg-cr-on-key-000000008',
};
const q = (s) => JSON.stringify(s);

let mock, gate, openai, anthropic;

/**
 * One org: department own (the default policy: auto, agent scope) with team t (a1, a2, and
 * short, off, on under their own policies); department shared (policy teamscope) with teams x
 * (x1, x2) and y (y1). An alias to-anthropic sends OpenAI clients to an Anthropic model.
 */
function config(dir, extra = []) {
  return [
    'listen: 127.0.0.1:0',
    'workers: 1',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'providers:',
    `  mock-openai: { base_url: ${q(`${mock.url}/v1`)}, format: openai }`,
    `  mock-anthropic: { base_url: ${q(`${mock.url}/v1`)}, format: anthropic }`,
    'models:',
    '  gpt-4o-mini: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }',
    '  claude-haiku-4-5: { provider: mock-anthropic, price: { input: 1, output: 5 } }',
    '  fb-a: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }',
    '  fb-b: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }',
    '  gpt-long: { provider: mock-openai, price: { input: 0.15, output: 0.60 }, max_output_tokens: 200000 }',
    'tiers:',
    '  anth: [claude-haiku-4-5]',
    '  fb: [fb-a, fb-b]',
    'routing:',
    '  aliases: { to-anthropic: anth, to-fb: fb }',
    '  rules:',
    '    - { name: capped, match: { header: { x-test-cap: "yes" } }, route: { target: gpt-4o-mini, max_output_tokens: 40 } }',
    'org: acme',
    'departments:',
    '  own:',
    '    teams:',
    '      t:',
    '        agents:',
    '          a1:',
    '          a2:',
    '          short: { policy: shortttl }',
    '          off: { policy: cacheoff }',
    '          on: { policy: cacheon }',
    '  shared:',
    '    policy: teamscope',
    '    teams:',
    '      x: { agents: [x1, x2] }',
    '      y: { agents: [y1] }',
    'policies:',
    '  shortttl: { cache: { ttl: 1s } }',
    '  cacheoff: { cache: { responses: off } }',
    '  cacheon: { cache: { responses: on } }',
    '  teamscope: { cache: { scope: team } }',
    'keys:',
    ...Object.entries(KEYS).map(([a, k]) => `  ${k}: ${a}`),
    'budgets:',
    '  - { scope: org, window: day, tokens: 100000000 }',
    `ledger: { path: ${q(path.join(dir, 'ledger.db'))} }`,
    'admin: { listen: 127.0.0.1:0, token_env: TG_CR_ADMIN_TOKEN }',
    ...extra,
  ].join('\n') + '\n';
}

async function startCacheGate(extra = []) {
  const dir = tempDir('tg-cache-');
  const g = await startGate({ configText: config(dir, extra), dir, env: ENV });
  g.admin = await gateAdminPort(g);
  g.ledgerPath = path.join(dir, 'ledger.db');
  return g;
}

before(async () => {
  mock = await startMock();
  gate = await startCacheGate();
  openai = new OpenAI({ baseURL: `${gate.url}/v1`, apiKey: KEYS.a1, maxRetries: 0,
    timeout: ms(30000) });
  anthropic = new Anthropic({ baseURL: gate.url, apiKey: KEYS.a1, maxRetries: 0,
    timeout: ms(30000) });
});

after(cleanup);

const mockCount = async () => (await mock.stats()).requests;
const bearer = (k) => ({ authorization: `Bearer ${k}` });

/** A chat body unique to this test (so that tests do not hit each other's entries). */
function chat(tag, patch = {}) {
  return { model: 'gpt-4o-mini', temperature: 0,
    messages: [{ role: 'user', content: `cache test ${tag} ${newId('c')}` }], ...patch };
}

function messages(tag, patch = {}) {
  return { model: 'claude-haiku-4-5', max_tokens: 64, temperature: 0,
    messages: [{ role: 'user', content: `cache test ${tag} ${newId('m')}` }], ...patch };
}

/** POSTs body as agent; returns the response with .forwarded (requests the mock got). */
async function send(g, agent, body, headers = {}, p = '/v1/chat/completions') {
  const before = await mockCount();
  const r = await g.post(p, body, { ...bearer(KEYS[agent]), ...headers });
  r.forwarded = (await mockCount()) - before;
  return r;
}

/** The admin view of a scope's day window. */
async function budgetOf(g, scope) {
  const r = await adminRequest(g.admin, 'GET', `/admin/v1/budgets?scope=${scope}&window=day&all=1`,
    { token: ADMIN_TOKEN });
  assert.equal(r.status, 200, r.text);
  return r.json.budgets[0];
}

function ledgerRows(g) {
  const r = runGate(['logs', '--db', g.ledgerPath, '--format', 'json', '--limit', '1000']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function ledgerRow(g, id, timeoutMs = ms(15000)) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = ledgerRows(g).find((x) => x.id === id);
    if (row) return row;
    if (Date.now() > deadline) throw new Error(`ledger: no row ${id}`);
    await sleep(50);
  }
}

const content = (r) => r.json.choices[0].message.content;

// ---- hit, miss, bypass --------------------------------------------------------------------

test('miss then hit: the hit reaches no provider, is charged nothing and moves no budget', async () => {
  const body = chat('hit');
  const first = await send(gate, 'a1', body);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.headers['x-tokengate-cache'], 'miss');
  assert.equal(first.forwarded, 1);
  const used = (await budgetOf(gate, 'org')).used_tokens;
  const agentUsed = (await budgetOf(gate, 'agent:a1')).used_tokens;

  // the same request with other key order and white space, and stream: false
  const text = `{ "messages" : ${JSON.stringify(body.messages)},\n "temperature": 0.0, ` +
    `"stream": false, "model": "gpt-4o-mini" }`;
  const id = newId('hit');
  const second = await send(gate, 'a1', text, { 'x-request-id': id });
  assert.equal(second.status, 200, second.text);
  assert.equal(second.headers['x-tokengate-cache'], 'hit');
  assert.equal(second.forwarded, 0, 'a hit was forwarded');
  assert.deepEqual(second.json, first.json, 'the hit is not the answer stored');
  assert.match(second.headers['content-type'], /application\/json/);

  const rec = await gate.logRecord(id);
  assert.equal(rec.tokens_charged, 0, JSON.stringify(rec));
  assert.equal(rec.status, 200);
  const row = await ledgerRow(gate, id);
  assert.equal(row.tokens_charged ?? row.tokens, 0, JSON.stringify(row));
  assert.equal(row.status, 200, 'the ledger row has the status the client got');
  assert.equal(row.cache, 'hit', JSON.stringify(row));
  assert.equal((await budgetOf(gate, 'org')).used_tokens, used, 'a hit moved the org budget');
  assert.equal((await budgetOf(gate, 'agent:a1')).used_tokens, agentUsed);
  assert.equal((await budgetOf(gate, 'org')).reserved_tokens, 0);
});

test('bypass: temperature not 0 under auto, the header off, a policy off', async () => {
  const warm = chat('bypass', { temperature: 1 });
  for (let i = 0; i < 2; i++) {
    const r = await send(gate, 'a1', warm);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tokengate-cache'], 'bypass');
    assert.equal(r.forwarded, 1);
  }
  const cold = chat('bypass-off');
  for (let i = 0; i < 2; i++) {
    const r = await send(gate, 'a1', cold, { 'x-tokengate-cache': 'off' });
    assert.equal(r.headers['x-tokengate-cache'], 'bypass');
    assert.equal(r.forwarded, 1);
  }
  // bypassed requests were not stored either: the same request now misses
  assert.equal((await send(gate, 'a1', cold)).headers['x-tokengate-cache'], 'miss');
  for (let i = 0; i < 2; i++) {
    const r = await send(gate, 'off', cold, { 'x-tokengate-cache': 'on' });
    assert.equal(r.headers['x-tokengate-cache'], 'bypass');
    assert.equal(r.forwarded, 1);
  }
});

test('opting in: the header on, or a policy on, caches a request with temperature 1', async () => {
  const body = chat('optin', { temperature: 1 });
  assert.equal((await send(gate, 'a1', body, { 'x-tokengate-cache': 'on' })).headers['x-tokengate-cache'], 'miss');
  const r = await send(gate, 'a1', body, { 'x-tokengate-cache': 'on' });
  assert.equal(r.headers['x-tokengate-cache'], 'hit');
  assert.equal(r.forwarded, 0);
  const p = chat('policy-on', { temperature: 0.7 });
  assert.equal((await send(gate, 'on', p)).headers['x-tokengate-cache'], 'miss');
  assert.equal((await send(gate, 'on', p)).forwarded, 0);
});

test('a bad x-tokengate-cache value: 400 naming the values, nothing forwarded', async () => {
  const r = await send(gate, 'a1', chat('bad'), { 'x-tokengate-cache': 'maybe' });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.forwarded, 0);
  assert.match(r.json.error.message, /x-tokengate-cache must be on, off or no-store, not 'maybe'/);
  const m = await send(gate, 'a1', messages('bad'), { 'x-tokengate-cache': 'yes' }, '/v1/messages');
  assert.equal(m.status, 400, m.text);
  assert.equal(m.json.type, 'error');
  assert.equal(m.forwarded, 0);
});

test('no-store (header and Cache-Control) is looked up, never stored; no-cache is not looked up', async () => {
  for (const h of [{ 'x-tokengate-cache': 'no-store' }, { 'cache-control': 'private, no-store' }]) {
    const body = chat('nostore');
    const first = await send(gate, 'a1', body, h);
    assert.equal(first.headers['x-tokengate-cache'], 'miss');
    const again = await send(gate, 'a1', body);
    assert.equal(again.headers['x-tokengate-cache'], 'miss', `${JSON.stringify(h)} stored`);
    assert.equal(again.forwarded, 1);
    // stored now: a no-store request still hits
    const hit = await send(gate, 'a1', body, h);
    assert.equal(hit.headers['x-tokengate-cache'], 'hit');
    assert.equal(hit.forwarded, 0);
  }
  const body = chat('nocache');
  await send(gate, 'a1', body);
  const r = await send(gate, 'a1', body, { 'cache-control': 'no-cache' });
  assert.equal(r.headers['x-tokengate-cache'], 'miss');
  assert.equal(r.forwarded, 1);
  assert.equal((await send(gate, 'a1', body)).forwarded, 0);
});

test('expiry: an entry past its policy ttl misses', async () => {
  const body = chat('ttl');
  assert.equal((await send(gate, 'short', body)).headers['x-tokengate-cache'], 'miss');
  assert.equal((await send(gate, 'short', body)).headers['x-tokengate-cache'], 'hit');
  await sleep(1300);
  const r = await send(gate, 'short', body);
  assert.equal(r.headers['x-tokengate-cache'], 'miss');
  assert.equal(r.forwarded, 1);
});

// ---- scopes -------------------------------------------------------------------------------

test('scopes: two agents never share under the agent scope; one team shares under team, two teams never', async () => {
  const body = chat('scope');
  assert.equal((await send(gate, 'a1', body)).headers['x-tokengate-cache'], 'miss');
  assert.equal((await send(gate, 'a1', body)).headers['x-tokengate-cache'], 'hit');
  const other = await send(gate, 'a2', body);
  assert.equal(other.headers['x-tokengate-cache'], 'miss', 'agent a2 got agent a1\'s entry');
  assert.equal(other.forwarded, 1);

  const t = chat('teamscope');
  assert.equal((await send(gate, 'x1', t)).headers['x-tokengate-cache'], 'miss');
  const mate = await send(gate, 'x2', t);
  assert.equal(mate.headers['x-tokengate-cache'], 'hit', 'two agents of team x did not share');
  assert.equal(mate.forwarded, 0);
  const stranger = await send(gate, 'y1', t);
  assert.equal(stranger.headers['x-tokengate-cache'], 'miss', 'team y got team x\'s entry');
  assert.equal(stranger.forwarded, 1);
  // the agent scope does not see the team scope's entry either
  assert.equal((await send(gate, 'a1', t)).headers['x-tokengate-cache'], 'miss');
});

// ---- stream and whole, both APIs, through the SDKs ----------------------------------------

const tools = [
  { type: 'function', function: { name: 'search', parameters: { type: 'object', properties: {} } } },
  { type: 'function', function: { name: 'fetch', parameters: { type: 'object', properties: {} } } },
];
const antTools = [
  { name: 'search', input_schema: { type: 'object', properties: {} } },
  { name: 'fetch', input_schema: { type: 'object', properties: {} } },
];

/** The tool calls an OpenAI stream made, assembled as the SDK's user would. */
async function openaiStreamCalls(stream) {
  const calls = [];
  let text = '';
  let finish;
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (!ch) continue;
    text += ch.delta?.content ?? '';
    for (const tc of ch.delta?.tool_calls ?? []) {
      calls[tc.index] ??= { id: '', name: '', arguments: '' };
      if (tc.id) calls[tc.index].id = tc.id;
      if (tc.function?.name) calls[tc.index].name = tc.function.name;
      calls[tc.index].arguments += tc.function?.arguments ?? '';
    }
    finish = ch.finish_reason ?? finish;
  }
  return { calls, text, finish };
}

const wholeCalls = (m) => (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name,
  arguments: c.function.arguments }));

test('OpenAI: a whole entry answers a stream, a stream entry answers a whole request, tool calls intact', async () => {
  const h = { 'x-mock-tools': '2' };
  const body = chat('oa-whole', { tools });
  const { data: whole, response: r1 } = await openai.chat.completions.create(body, { headers: h })
    .withResponse();
  assert.equal(r1.headers.get('x-tokengate-cache'), 'miss');
  assert.equal(whole.choices[0].message.tool_calls.length, 2);
  const before = await mockCount();
  const { data: stream, response: r2 } = await openai.chat.completions
    .create({ ...body, stream: true }, { headers: h }).withResponse();
  assert.equal(r2.headers.get('x-tokengate-cache'), 'hit');
  assert.match(r2.headers.get('content-type'), /text\/event-stream/);
  const got = await openaiStreamCalls(stream);
  assert.equal(await mockCount(), before, 'the stream hit was forwarded');
  assert.deepEqual(got.calls, wholeCalls(whole.choices[0].message));
  assert.equal(got.finish, 'tool_calls');

  // the reverse: a stream first, then a whole request
  const sbody = chat('oa-stream', { tools });
  const s = await openai.chat.completions.create({ ...sbody, stream: true }, { headers: h });
  const streamed = await openaiStreamCalls(s);
  assert.equal(streamed.calls.length, 2);
  const { data: w, response: r3 } = await openai.chat.completions.create(sbody, { headers: h })
    .withResponse();
  assert.equal(r3.headers.get('x-tokengate-cache'), 'hit');
  assert.deepEqual(wholeCalls(w.choices[0].message), streamed.calls);
  assert.equal(w.choices[0].finish_reason, 'tool_calls');

  // text answers too, and a stream entry answers a stream with its own events
  const tbody = chat('oa-text');
  const ts = await openai.chat.completions.create({ ...tbody, stream: true });
  const t1 = await openaiStreamCalls(ts);
  const { data: ts2, response: r4 } = await openai.chat.completions
    .create({ ...tbody, stream: true }).withResponse();
  assert.equal(r4.headers.get('x-tokengate-cache'), 'hit');
  const t2 = await openaiStreamCalls(ts2);
  assert.equal(t2.text, t1.text);
  assert.ok(t1.text.length > 0);
  const tw = await openai.chat.completions.create(tbody);
  assert.equal(tw.choices[0].message.content, t1.text);
});

/** An Anthropic stream's text and tool calls, as the SDK's events give them. */
async function anthropicStream(stream) {
  const blocks = [];
  let stop;
  for await (const ev of stream) {
    if (ev.type === 'content_block_start') blocks[ev.index] = { ...ev.content_block, json: '' };
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta')
      blocks[ev.index].text = (blocks[ev.index].text ?? '') + ev.delta.text;
    if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta')
      blocks[ev.index].json += ev.delta.partial_json;
    if (ev.type === 'message_delta') stop = ev.delta.stop_reason;
  }
  return { blocks: blocks.map((b) => (b.type === 'tool_use'
    ? { type: 'tool_use', id: b.id, name: b.name, input: JSON.parse(b.json || '{}') }
    : { type: b.type, text: b.text ?? '' })), stop };
}

const antBlocks = (m) => m.content.map((b) => (b.type === 'tool_use'
  ? { type: 'tool_use', id: b.id, name: b.name, input: b.input } : { type: b.type, text: b.text }));

test('Anthropic: a whole entry answers a stream and the reverse, tool calls intact', async () => {
  const h = { 'x-mock-tools': '2' };
  const body = messages('an-whole', { tools: antTools });
  const { data: whole, response: r1 } = await anthropic.messages.create(body, { headers: h })
    .withResponse();
  assert.equal(r1.headers.get('x-tokengate-cache'), 'miss');
  assert.equal(whole.content.filter((b) => b.type === 'tool_use').length, 2);
  const before = await mockCount();
  const { data: stream, response: r2 } = await anthropic.messages
    .create({ ...body, stream: true }, { headers: h }).withResponse();
  assert.equal(r2.headers.get('x-tokengate-cache'), 'hit');
  const got = await anthropicStream(stream);
  assert.equal(await mockCount(), before);
  assert.deepEqual(got.blocks, antBlocks(whole));
  assert.equal(got.stop, 'tool_use');

  const sbody = messages('an-stream', { tools: antTools });
  const streamed = await anthropicStream(
    await anthropic.messages.create({ ...sbody, stream: true }, { headers: h }));
  assert.equal(streamed.blocks.filter((b) => b.type === 'tool_use').length, 2);
  const { data: w, response: r3 } = await anthropic.messages.create(sbody, { headers: h })
    .withResponse();
  assert.equal(r3.headers.get('x-tokengate-cache'), 'hit');
  assert.deepEqual(antBlocks(w), streamed.blocks);
  assert.equal(w.stop_reason, 'tool_use');
});

test('a translated target: an OpenAI client on an Anthropic model is cached in its own API', async () => {
  const body = chat('xlate', { model: 'to-anthropic', max_tokens: 50 });
  const { data: first, response: r1 } = await openai.chat.completions.create(body).withResponse();
  assert.equal(r1.headers.get('x-tokengate-cache'), 'miss');
  const before = await mockCount();
  const { data: second, response: r2 } = await openai.chat.completions.create(body).withResponse();
  assert.equal(r2.headers.get('x-tokengate-cache'), 'hit');
  assert.equal(second.choices[0].message.content, first.choices[0].message.content);
  assert.equal(second.object, 'chat.completion');
  const { data: s, response: r3 } = await openai.chat.completions
    .create({ ...body, stream: true }).withResponse();
  assert.equal(r3.headers.get('x-tokengate-cache'), 'hit');
  assert.equal((await openaiStreamCalls(s)).text, first.choices[0].message.content);
  assert.equal(await mockCount(), before);
});

test('a stream cut short is not stored', async () => {
  const body = chat('cut', { stream: true });
  const r = await send(gate, 'a1', body, { 'x-mock-cut-after': '2' });
  assert.equal(r.headers['x-tokengate-cache'], 'miss');
  const again = await send(gate, 'a1', body);
  assert.equal(again.status, 200);
  assert.equal(again.headers['x-tokengate-cache'], 'miss', 'a cut stream was stored');
  assert.equal(again.forwarded, 1);
  const events = parseSSE(again.text);
  assert.ok(events.some((e) => e.data === '[DONE]'), again.text);
  // that complete one was: a hit gives the same events
  const hit = await send(gate, 'a1', body);
  assert.equal(hit.headers['x-tokengate-cache'], 'hit');
  assert.equal(hit.text, again.text);
});

test('a client that leaves a streamed hit: the request ends, the hit is recorded', async () => {
  const body = chat('leave', { stream: true, messages: [{ role: 'user',
    content: `a long answer please ${newId('l')}` }] });
  const h = { 'x-mock-tokens': '3000' };
  const full = await send(gate, 'a1', body, h);
  assert.equal(full.headers['x-tokengate-cache'], 'miss');
  const id = newId('leave');
  const { request } = await import('node:http');
  await new Promise((resolve) => {
    const req = request({ port: gate.port, path: '/v1/chat/completions', method: 'POST',
      headers: { ...bearer(KEYS.a1), 'content-type': 'application/json', 'x-request-id': id, ...h } },
    (res) => {
      assert.equal(res.headers['x-tokengate-cache'], 'hit');
      res.once('data', () => { req.destroy(); resolve(); });
    });
    req.on('error', () => resolve());
    req.end(JSON.stringify(body));
  });
  const rec = await gate.logRecord(id);
  assert.equal(rec.tokens_charged, 0, JSON.stringify(rec));
  // the gate still answers
  assert.equal((await send(gate, 'a1', chat('after-leave'))).status, 200);
});

// ---- eviction -----------------------------------------------------------------------------

test('eviction: past cache.responses.max_bytes the least recently used entry goes', async () => {
  const g = await startCacheGate(['cache: { responses: { max_bytes: 8KiB, max_entry_bytes: 2KiB } }']);
  const first = chat('evict-0');
  assert.equal((await send(g, 'a1', first)).headers['x-tokengate-cache'], 'miss');
  assert.equal((await send(g, 'a1', first)).headers['x-tokengate-cache'], 'hit');
  for (let i = 1; i <= 12; i++)
    assert.equal((await send(g, 'a1', chat(`evict-${i}`))).headers['x-tokengate-cache'], 'miss');
  const r = await send(g, 'a1', first);
  assert.equal(r.headers['x-tokengate-cache'], 'miss', 'the oldest entry was not evicted');
  assert.equal(r.forwarded, 1);
  // an answer larger than max_entry_bytes is never stored
  const big = chat('evict-big');
  await send(g, 'a1', big, { 'x-mock-tokens': '2000' });
  assert.equal((await send(g, 'a1', big, { 'x-mock-tokens': '2000' })).forwarded, 1);
});

test('an open gate: entries are shared per client credential, never across two', async () => {
  const { gateConfig, mockProviders } = await import('./harness.mjs');
  const dir = tempDir('tg-cache-open-');
  const g = await startGate({ configText: gateConfig({ ...mockProviders(mock.url),
    requestLog: path.join(dir, 'requests.jsonl') }), dir });
  const body = chat('open');
  const as = async (key) => {
    const before = await mockCount();
    const r = await g.post('/v1/chat/completions', body, { authorization: `Bearer ${key}` });
    assert.equal(r.status, 200, r.text);
    return [r.headers['x-tokengate-cache'], (await mockCount()) - before];
  };
  assert.deepEqual(await as('sk-client-one'), ['miss', 1]);
  assert.deepEqual(await as('sk-client-one'), ['hit', 0]);
  assert.deepEqual(await as('sk-client-two'), ['miss', 1]);
  assert.deepEqual(await as('sk-client-two'), ['hit', 0]);
});

test('a streamed hit honours backpressure: a client that stops reading stops the replay, which then ends whole', async () => {
  const g = await startCacheGate(['cache: { responses: { max_bytes: 64MiB, max_entry_bytes: 32MiB } }']);
  const body = chat('backpressure', { model: 'gpt-long', max_tokens: 100000, stream: true });
  const h = { 'x-mock-tokens': '60000' };
  const full = await send(g, 'a1', body, h);
  assert.equal(full.status, 200);
  assert.equal(full.headers['x-tokengate-cache'], 'miss');
  const total = Buffer.byteLength(full.text);
  assert.ok(total > 8 * 1024 * 1024, `the stream is ${total} bytes`);

  const rss0 = g.rssKiB();
  const id = newId('bp');
  const { request } = await import('node:http');
  let res;
  const req = request({ port: g.port, path: '/v1/chat/completions', method: 'POST',
    headers: { ...bearer(KEYS.a1), 'content-type': 'application/json', 'x-request-id': id, ...h } });
  const head = new Promise((resolve, reject) => {
    req.on('response', (r) => { res = r; r.pause(); resolve(); });
    req.on('error', reject);
  });
  req.end(JSON.stringify(body));
  await head;
  assert.equal(res.headers['x-tokengate-cache'], 'hit');
  const queued = await waitStable(() => queuedBytes(g.port), 'bytes queued to the paused client');
  const held = (g.rssKiB() - rss0) * 1024;
  // what the kernel did not take stays unwritten: the gate holds about CONN_OUT_HIGH of it
  assert.ok(total - queued > 4 * 1024 * 1024, `the kernel took ${queued} of ${total} bytes`);
  // (not under AddressSanitizer, whose quarantine keeps freed memory resident)
  if (!SANITIZED)
    assert.ok(held < (total - queued) / 2,
      `the gate grew by ${held} bytes while ${total - queued} were not taken: the replay did not pause`);
  const chunks = [];
  await new Promise((resolve, reject) => {
    res.on('data', (d) => chunks.push(d));
    res.on('end', resolve);
    res.on('error', reject);
    res.resume();
  });
  assert.equal(res.statusCode, 200);
  assert.equal(Buffer.concat(chunks).toString(), full.text, 'the replay is not the whole stream');
  const rec = await g.logRecord(id);
  assert.equal(rec.tokens_charged, 0, JSON.stringify(rec));
});

test('reload: smaller caps evict at once; enabled: false bypasses; the entries stay for a re-enable', async () => {
  const g = await startCacheGate();
  const body = chat('reload');
  assert.equal((await send(g, 'a1', body)).headers['x-tokengate-cache'], 'miss');
  assert.equal((await send(g, 'a1', body)).headers['x-tokengate-cache'], 'hit');
  const reload = async (extra) => {
    fs.writeFileSync(g.configPath, config(g.dir, extra));
    const r = await adminRequest(g.admin, 'POST', '/admin/v1/reload', { token: ADMIN_TOKEN });
    assert.equal(r.status, 200, r.text);
  };
  await reload(['cache: { responses: { enabled: false } }']);
  const off = await send(g, 'a1', body);
  assert.equal(off.headers['x-tokengate-cache'], 'bypass');
  assert.equal(off.forwarded, 1);
  await reload([]);
  assert.equal((await send(g, 'a1', body)).headers['x-tokengate-cache'], 'hit');
  await reload(['cache: { responses: { max_bytes: 1KiB, max_entry_bytes: 1KiB } }']);
  const gone = await send(g, 'a1', body);
  assert.equal(gone.headers['x-tokengate-cache'], 'miss', 'the entry past the new cap was kept');
  assert.equal(gone.forwarded, 1);
  // and an answer over the new max_entry_bytes is not stored
  assert.equal((await send(g, 'a1', body)).forwarded, 1);
});

test('a fallback: the answer is stored under the target that gave it, not the first candidate', async () => {
  const rule = (r) => mock.direct('/_mock/models', { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });
  const body = chat('fallback', { model: 'to-fb' });
  const id = newId('fb');
  assert.equal((await rule({ model: 'fb-a', status: 503, times: 1 })).status, 200);
  const first = await send(gate, 'a1', body, { 'x-request-id': id });
  assert.equal(first.status, 200, first.text);
  assert.equal(first.headers['x-tokengate-cache'], 'miss');
  assert.equal(first.forwarded, 2, 'fb-a did not fail over to fb-b');
  assert.equal((await gate.logRecord(id)).route.attempts.length, 1);
  // fb-a answers now: the entry fb-b's answer made is not under fb-a's key
  const second = await send(gate, 'a1', body);
  assert.equal(second.headers['x-tokengate-cache'], 'miss', 'stored under the first candidate');
  assert.equal(second.forwarded, 1);
  const third = await send(gate, 'a1', body);
  assert.equal(third.headers['x-tokengate-cache'], 'hit');
  assert.deepEqual(third.json, second.json);
});

test('an answer that stopped at an output cap the gate lowered is not stored; one at the client\'s own cap is', async () => {
  // the rule capped caps the output at 40 tokens: the gate lowers max_tokens 1000 to it
  const h = { 'x-mock-tokens': '200', 'x-test-cap': 'yes' };
  const lowered = chat('cap-lowered', { max_tokens: 1000 });
  const first = await send(gate, 'a1', lowered, h);
  assert.equal(first.status, 200, first.text);
  assert.equal(JSON.parse((await mock.last()).body).max_tokens, 40);
  assert.equal(first.json.choices[0].finish_reason, 'length');
  const again = await send(gate, 'a1', lowered, h);
  assert.equal(again.headers['x-tokengate-cache'], 'miss', 'an answer the gate cut was stored');
  assert.equal(again.forwarded, 1);

  const own = chat('cap-own', { max_tokens: 30 });
  const o1 = await send(gate, 'a1', own, h);
  assert.equal(JSON.parse((await mock.last()).body).max_tokens, 30);
  assert.equal(o1.json.choices[0].finish_reason, 'length');
  const o2 = await send(gate, 'a1', own, h);
  assert.equal(o2.headers['x-tokengate-cache'], 'hit');
  assert.equal(o2.forwarded, 0);
});
