// Provider prompt caching end to end (issue 13), against the mock:
//   - accounting: Anthropic cache reads, 5-minute and 1-hour writes, OpenAI cached tokens, each
//     at its own price, streamed and not, natively and translated: the request log, the ledger
//     (`tokengate logs`), the budget (`tokengate usage`) against the mock's own usage
//     (/_mock/usage) and the prices; the reservation before forwarding assumes no cache;
//   - breakpoints the gate places on Anthropic requests (what the mock received): where, none
//     under the model's minimum, the client's own left alone, the policy's TTL, translated
//     requests too;
//   - prompt_cache_key on OpenAI requests: one per agent (or per team, by policy), stable, a
//     client's own left alone.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, tempDir, runGate, parseSSE, newId, sleep, ms,
  gateAdminPort, adminRequest,
} from './harness.mjs';

const q = (s) => JSON.stringify(s);
const ADMIN_TOKEN = 'tga-prompt-cache-test-admin-token-01';

const AGENTS = ['acct', 'a1', 'a2', 'b1', 'c1', 'e1', 'e2', 'r1', 'r2'];
const KEY = Object.fromEntries(AGENTS.map((a) => [a, `tg-pc-${a}-${'0'.repeat(16 - a.length)}1`]));

// USD per million tokens; a token costs price x 1000 nano-dollars
const SONNET = { input: 3, output: 15, cached_input: 0.3, cache_write: 3.75, cache_write_1h: 6 };
const GPT = { input: 2.5, output: 10, cached_input: 1.25 };
const priceYaml = (p) => `{ ${Object.entries(p).map(([k, v]) => `${k}: ${v}`).join(', ')} }`;

let mock, gate, dir, ledgerPath;

/**
 * The org: team t1 (acct, a1, a2) under policy p5m (breakpoints, 5 minutes; a key per agent),
 * t2 (b1) under p1h (1-hour breakpoints), t3 (c1) under poff, t4 (e1, e2) under pteam (a key per
 * team), tr (r1, r2: the reservation test). Models: Sonnet (minimum 1024), Haiku 4.5 (4096), a
 * Sonnet entry whose cache_min_tokens is 100000, GPT-4o; aliases to the other family.
 */
function config() {
  return [
    'listen: 127.0.0.1:0',
    'workers: 1',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'providers:',
    `  mock-openai: { base_url: ${q(`${mock.url}/v1`)}, format: openai }`,
    `  mock-anthropic: { base_url: ${q(`${mock.url}/v1`)}, format: anthropic }`,
    'models:',
    `  claude-sonnet-4-5: { provider: mock-anthropic, price: ${priceYaml(SONNET)} }`,
    `  claude-haiku-4-5: { provider: mock-anthropic, price: ${priceYaml(SONNET)} }`,
    `  claude-big-min: { provider: mock-anthropic, upstream_model: claude-sonnet-4-5, cache_min_tokens: 100000, price: ${priceYaml(SONNET)} }`,
    `  gpt-4o: { provider: mock-openai, price: ${priceYaml(GPT)} }`,
    `  claude-fail: { provider: mock-anthropic, price: ${priceYaml(SONNET)} }`,
    // the reservation test: the same input price, one with every cache price set, one with none
    '  claude-res-a: { provider: mock-anthropic, upstream_model: claude-sonnet-4-5, price: { input: 3000, output: 0, cached_input: 300, cache_write_1h: 6000 } }',
    '  claude-res-b: { provider: mock-anthropic, upstream_model: claude-sonnet-4-5, price: { input: 3000, output: 0 } }',
    'tiers:',
    '  anth: [claude-sonnet-4-5]',
    '  oai: [gpt-4o]',
    '  anthfb: [claude-fail, claude-sonnet-4-5]',
    '  mixfb: [claude-fail, gpt-4o]',
    'routing:',
    '  aliases:',
    '    to-anthropic: anth',
    '    to-openai: oai',
    '    fb-anthropic: anthfb',
    '    fb-mixed: mixfb',
    'policies:',
    '  p5m: { cache: { prompt: { anthropic: true, ttl: 5m, openai_key: true, scope: agent } } }',
    '  p1h: { cache: { prompt: { anthropic: true, ttl: 1h, openai_key: true } } }',
    '  poff: { cache: { prompt: { anthropic: false, openai_key: false } } }',
    '  pteam: { cache: { prompt: { anthropic: true, openai_key: true, scope: team } } }',
    'org: acme',
    'departments:',
    '  d:',
    '    teams:',
    '      t1: { policy: p5m, agents: [acct, a1, a2] }',
    '      t2: { policy: p1h, agents: [b1] }',
    '      t3: { policy: poff, agents: [c1] }',
    '      t4: { policy: pteam, agents: [e1, e2] }',
    '      tr: { policy: poff, agents: [r1, r2] }',
    'keys:',
    ...AGENTS.map((a) => `  ${KEY[a]}: ${a}`),
    'budgets:',
    ...AGENTS.map((a) => `  - { scope: "agent:${a}", window: day, usd: 1000 }`),
    `ledger: { path: ${q(ledgerPath)} }`,
    'admin: { listen: 127.0.0.1:0, token_env: TG_PC_ADMIN_TOKEN }',
  ].join('\n') + '\n';
}

before(async () => {
  mock = await startMock();
  dir = tempDir('tg-prompt-');
  ledgerPath = path.join(dir, 'ledger.db');
  gate = await startGate({ configText: config(), dir, env: { TG_PC_ADMIN_TOKEN: ADMIN_TOKEN } });
  gate.admin = await gateAdminPort(gate);
});

after(cleanup);

// ---- helpers ------------------------------------------------------------------------------

/** About n tokens of varied text (no two neighbouring words alike). */
function words(n, tag = 'w') {
  return Array.from({ length: n }, (_, i) => `${tag}${i % 211}`).join(' ');
}

const bearer = (agent) => ({ authorization: `Bearer ${KEY[agent]}` });

async function send(agent, p, body, headers = {}) {
  const id = newId(agent);
  const r = await gate.post(p, body, { ...bearer(agent), 'x-request-id': id, ...headers });
  assert.equal(r.status, 200, r.text);
  return { id, r };
}

/** The mock's /_mock/usage entry of request id, once complete. */
async function billed(id) {
  const deadline = Date.now() + ms(10000);
  for (;;) {
    const u = await mock.usageOf(id);
    if (u?.complete) return u;
    if (Date.now() > deadline) throw new Error(`mock: no complete usage entry for ${id}: ${q(u)}`);
    await sleep(50);
  }
}

/** The ledger rows (`tokengate logs --format json`) of request ids, waiting for them. */
async function ledgerRows(ids) {
  const deadline = Date.now() + ms(10000);
  for (;;) {
    const out = runGate(['logs', '--db', ledgerPath, '--format', 'json', '--limit', '5000']);
    assert.equal(out.status, 0, out.stderr);
    const rows = new Map(out.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .map((r) => [r.id, r]));
    if (ids.every((id) => rows.has(id))) return rows;
    if (Date.now() > deadline) throw new Error(`ledger: rows missing of ${q(ids)}`);
    await sleep(50);
  }
}

/** What the mock received last: {headers, body (parsed)}. */
async function received() {
  const up = await mock.last();
  return { ...up, body: JSON.parse(up.body) };
}

/** Nano-dollars of a usage entry of the mock at price p (USD per million). */
function cost(u, p) {
  const w1h = u.cache_write_1h ?? 0;
  const uncached = u.input - u.cached - u.cache_write;
  return uncached * p.input * 1000 + u.cached * (p.cached_input ?? p.input) * 1000 +
    (u.cache_write - w1h) * (p.cache_write ?? p.input) * 1000 +
    w1h * (p.cache_write_1h ?? 2 * p.input) * 1000 + u.output * p.output * 1000;
}

/** Checks the request's log record against the mock's usage u and the price; returns it. */
async function checkRecord(id, u, p) {
  const rec = await gate.logRecord(id);
  const what = q({ rec, u });
  assert.equal(rec.usage.input, u.input, what);
  assert.equal(rec.usage.output, u.output, what);
  assert.equal(rec.usage.cached, u.cached, what);
  assert.equal(rec.usage.cache_write, u.cache_write, what);
  assert.equal(rec.usage.cache_write_1h ?? 0, u.cache_write_1h ?? 0, what);
  assert.equal(rec.tokens_charged, u.input + u.output, what);
  assert.equal(Math.round(rec.cost_usd * 1e9), cost(u, p), what);
  return rec;
}

// ---- accounting ---------------------------------------------------------------------------

const LONG = words(6000);

const CASES = [
  { name: 'cache reads', h: { 'x-mock-cached': '1500' }, cached: 1500, w: 0, w1h: 0 },
  { name: '5-minute writes', h: { 'x-mock-cache-write': '2000' }, cached: 0, w: 2000, w1h: 0 },
  { name: '1-hour writes', h: { 'x-mock-cache-write': '2000', 'x-mock-cache-write-1h': '2000' },
    cached: 0, w: 2000, w1h: 2000 },
  { name: 'reads and both writes', h: { 'x-mock-cached': '1000', 'x-mock-cache-write': '3000',
    'x-mock-cache-write-1h': '1200' }, cached: 1000, w: 3000, w1h: 1200 },
];

test('Anthropic: cache reads, 5-minute and 1-hour writes each at their price, whole and streamed: the log, the ledger, the budget, `tokengate usage` and `logs`', async () => {
  const before = await usedUsd('acct');
  const ids = [];
  const expect = new Map();
  for (const c of CASES) {
    for (const stream of [false, true]) {
      const body = { model: 'claude-sonnet-4-5', max_tokens: 50, messages: [{ role: 'user', content: LONG }],
        ...(stream ? { stream: true } : {}) };
      const { id, r } = await send('acct', '/v1/messages', body, { ...c.h, 'x-mock-tokens': '7' });
      const u = await billed(id);
      const what = `${c.name} stream=${stream}: ${q(u)}`;
      // the mock billed what the case asked (the prompt is long enough for every count)
      assert.equal(u.cached, c.cached, what);
      assert.equal(u.cache_write, c.w, what);
      assert.equal(u.cache_write_1h, c.w1h, what);
      // the client got the provider's own usage
      const cu = stream ? parseSSE(r.text).find((e) => e.event === 'message_start').json.message.usage : r.json.usage;
      assert.equal(cu.cache_creation.ephemeral_1h_input_tokens, c.w1h, what);
      await checkRecord(id, u, SONNET);
      ids.push(id);
      expect.set(id, { u, nusd: cost(u, SONNET) });
    }
  }
  // the 1-hour writes cost more than the 5-minute ones, which cost more than reads
  const n = (i) => expect.get(ids[i]).nusd;
  assert.ok(n(4) > n(2) && n(2) > n(0), q([n(0), n(2), n(4)]));

  const rows = await ledgerRows(ids);
  let total = 0;
  for (const id of ids) {
    const row = rows.get(id);
    const { u, nusd } = expect.get(id);
    const what = q({ row, u });
    assert.equal(row.in_usage, u.input, what);
    assert.equal(row.out_usage, u.output, what);
    assert.equal(row.cached, u.cached, what);
    assert.equal(row.cache_write, u.cache_write, what);
    // ledger schema 4 (branch toolrest) has the column; before it, the rest must hold
    if ('cache_write_1h' in row) assert.equal(row.cache_write_1h, u.cache_write_1h, what);
    assert.equal(row.cost_nusd, nusd, what);
    assert.equal(row.tokens_charged, u.input + u.output, what);
    total += nusd;
  }
  // `tokengate logs` shows each row's cost in dollars
  const table = runGate(['logs', '--db', ledgerPath, '--agent', 'acct', '--limit', '100']);
  assert.equal(table.status, 0, table.stderr);
  for (const id of ids) {
    const line = table.stdout.split('\n').find((l) => l.includes(` ${id} `));
    assert.ok(line, `no row ${id} in:\n${table.stdout}`);
    assert.ok(line.includes(`$${(expect.get(id).nusd / 1e9).toFixed(6)}`), `${line} vs ${expect.get(id).nusd}`);
  }
  // the budget moved by exactly the sum, as `tokengate usage` shows it
  assert.equal(await usedUsd('acct'), ((before * 1e9 + total) / 1e9).toFixed(6));
});

/** The agent's day budget used, in dollars as `tokengate usage` prints it (a string, 6 places). */
async function usedUsd(agent) {
  const r = runGate(['usage', '--config', gate.configPath, '--db', ledgerPath, '--scope', `agent:${agent}`,
    '--window', 'day', '--format', 'json']);
  assert.equal(r.status, 0, r.stderr);
  const row = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((x) => x.scope === `agent:${agent}`);
  assert.ok(row, r.stdout);
  return row.used.replace('$', '');
}

test('OpenAI: cached tokens are a part of the prompt, charged at cached_input, whole and streamed; chat and responses', async () => {
  const ids = [];
  for (const [p, body] of [
    ['/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: LONG }] }],
    ['/v1/responses', { model: 'gpt-4o', input: LONG }],
  ]) {
    for (const stream of [false, true]) {
      const { id } = await send('acct', p, { ...body, ...(stream ? { stream: true } : {}) },
        { 'x-mock-cached': '1024', 'x-mock-tokens': '5' });
      const u = await billed(id);
      assert.equal(u.cached, 1024);
      assert.equal(u.cache_write, 0);
      const rec = await checkRecord(id, u, GPT);
      // cheaper than the same prompt uncached, by the discount on the cached part
      assert.equal(Math.round(rec.cost_usd * 1e9), u.input * 2500 - 1024 * (2500 - 1250) + u.output * 10000);
      ids.push(id);
    }
  }
  const rows = await ledgerRows(ids);
  for (const id of ids) {
    const row = rows.get(id);
    assert.equal(row.cached, 1024, q(row));
    assert.equal(row.cost_nusd, cost(await billed(id), GPT), q(row));
  }
});

test('translated (OpenAI client, Anthropic target): charged from the provider usage, 1-hour writes at their price; the client sees cached reads as cached_tokens', async () => {
  for (const stream of [false, true]) {
    const body = { model: 'to-anthropic', messages: [{ role: 'user', content: LONG }],
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}) };
    const { id, r } = await send('acct', '/v1/chat/completions', body, { 'x-mock-cached': '700',
      'x-mock-cache-write': '900', 'x-mock-cache-write-1h': '400', 'x-mock-tokens': '6' });
    const u = await billed(id);
    assert.equal(u.cache_write_1h, 400);
    await checkRecord(id, u, SONNET);
    const cu = stream ? parseSSE(r.text).filter((e) => e.json?.usage).at(-1).json.usage : r.json.usage;
    assert.equal(cu.prompt_tokens, u.input, q(cu));
    assert.equal(cu.prompt_tokens_details.cached_tokens, 700, q(cu));
    const row = (await ledgerRows([id])).get(id);
    assert.equal(row.cost_nusd, cost(u, SONNET), q(row));
  }
});

/** The admin view of agent's day budget: {used_usd, reserved_usd, ...}. */
async function budgetView(agent) {
  const r = await adminRequest(gate.admin, 'GET', `/admin/v1/budgets?scope=agent:${agent}&window=day&all=1`,
    { token: ADMIN_TOKEN });
  assert.equal(r.status, 200, r.text);
  return r.json.budgets[0];
}

/** Sends body for agent with the mock's answer held back, and reads the reservation (dollars)
 * the agent's budget holds meanwhile. */
async function reservation(agent, body, headers = {}) {
  const sending = send(agent, '/v1/messages', body, { 'x-mock-stall-ms': String(ms(3000)), ...headers });
  const deadline = Date.now() + ms(10000);
  let held = 0;
  while (!(held > 0)) {
    held = (await budgetView(agent)).reserved_usd;
    if (!(held > 0) && Date.now() > deadline) throw new Error(`no reservation seen for ${agent}`);
    if (!(held > 0)) await sleep(10);
  }
  return { held, ...(await sending) };
}

test('the reservation before forwarding assumes no cache: input at the input price, whatever the cache prices and the cache headers', async () => {
  const body = { model: 'claude-res-a', max_tokens: 20, messages: [{ role: 'user', content: words(300) }] };
  // r1: every cache price set (reads cheaper, 1-hour writes dearer); r2: none; same input price
  const a = await reservation('r1', body, { 'x-mock-cached': '200', 'x-mock-cache-write': '50', 'x-mock-cache-write-1h': '50' });
  const b = await reservation('r2', { ...body, model: 'claude-res-b' });
  const tokensIn = Number(a.r.headers['x-tokengate-tokens-in']);
  assert.ok(tokensIn > 250, q(a.r.headers));
  assert.equal(a.r.headers['x-tokengate-tokens-in'], b.r.headers['x-tokengate-tokens-in']);
  // the same reservation for both (output costs 0 here: only the input's hold)
  assert.equal(a.held, b.held);
  const held = Math.round(a.held * 1e9); // nano-dollars
  // at 3000 USD/M: at least the input counted, less than its 1-hour write price would be
  assert.ok(held >= tokensIn * 3e6 && held < tokensIn * 6e6, `${held} for ${tokensIn} tokens`);
  // settled: what the provider billed, the cache reads at their price; nothing held after
  const u = await billed(a.id);
  assert.equal(u.cached, 200);
  assert.equal(u.cache_write_1h, 50);
  const rec = await gate.logRecord(a.id);
  assert.equal(Math.round(rec.cost_usd * 1e9),
    (u.input - u.cached - u.cache_write) * 3e6 + u.cached * 3e5 + u.cache_write_1h * 6e6);
  assert.equal((await budgetView('r1')).reserved_usd, 0);
});

// ---- breakpoints ---------------------------------------------------------------------------

const SYSTEM = words(1500, 's');
const EPH = { type: 'ephemeral' };
const EPH1H = { type: 'ephemeral', ttl: '1h' };

/** A conversation: a short tool, a system prompt, user / assistant / user. */
function conversation(model, system = SYSTEM) {
  return {
    model,
    max_tokens: 30,
    tools: [{ name: 'lookup', description: 'Looks a word up.', input_schema: { type: 'object', properties: { w: { type: 'string' } } } }],
    system,
    messages: [
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: 'second question' },
    ],
  };
}

/** The conversation as the mock should get it with breakpoints marked cc (tool left alone). */
function marked(body, cc) {
  const m = structuredClone(body);
  m.system = [{ type: 'text', text: body.system, cache_control: cc }];
  m.messages[1].content = [{ type: 'text', text: 'first answer', cache_control: cc }];
  m.messages[2].content = [{ type: 'text', text: 'second question', cache_control: cc }];
  return m;
}

test('breakpoints: the system prompt, the message before the last user turn and the final message, where the prefix reaches the minimum; whole and streamed', async () => {
  for (const stream of [false, true]) {
    const body = { ...conversation('claude-sonnet-4-5'), ...(stream ? { stream: true } : {}) };
    const { id } = await send('a1', '/v1/messages', body);
    const up = await received();
    // the tool alone is under 1024 tokens: not marked; the rest is the client's body
    assert.deepEqual(up.body, marked(body, EPH));
    const rec = await gate.logRecord(id);
    assert.deepEqual(rec.prompt_cache, { breakpoints: 3, key: false });
  }
});

test('breakpoints: none under the minimum (a short prompt; the family minimum of Haiku 4.5; a model whose cache_min_tokens is higher)', async () => {
  for (const [model, system] of [['claude-sonnet-4-5', 'Be terse.'], ['claude-haiku-4-5', SYSTEM],
    ['claude-big-min', SYSTEM]]) {
    const body = conversation(model, system);
    const { id } = await send('a1', '/v1/messages', body);
    const up = await received();
    const sent = { ...body, model: model === 'claude-big-min' ? 'claude-sonnet-4-5' : model };
    assert.deepEqual(up.body, sent, model);
    assert.ok(!JSON.stringify(up.body).includes('cache_control'), model);
    assert.equal((await gate.logRecord(id)).prompt_cache, undefined, model);
  }
  // the same prompt Haiku 4.5 takes as is (4096) is marked for Sonnet (1024): see the test above
});

test("breakpoints: a client's own are left alone and none is added", async () => {
  const body = conversation('claude-sonnet-4-5');
  body.system = [{ type: 'text', text: SYSTEM }];
  body.messages[0].content = [{ type: 'text', text: 'first question', cache_control: { type: 'ephemeral' } }];
  const text = JSON.stringify(body);
  const { id } = await send('a1', '/v1/messages', body);
  const up = await mock.last();
  assert.equal(up.body, text); // byte for byte
  assert.equal((await gate.logRecord(id)).prompt_cache, undefined);
});

test('breakpoints: the TTL is the policy\'s (1h); a policy without prompt caching places none', async () => {
  const body = conversation('claude-sonnet-4-5');
  const { id } = await send('b1', '/v1/messages', body);
  assert.deepEqual((await received()).body, marked(body, EPH1H));
  assert.deepEqual((await gate.logRecord(id)).prompt_cache, { breakpoints: 3, key: false });
  const off = await send('c1', '/v1/messages', body);
  assert.deepEqual((await received()).body, body);
  assert.equal((await gate.logRecord(off.id)).prompt_cache, undefined);
});

test('breakpoints on a translated request (OpenAI client, Anthropic target): on the body as the provider gets it', async () => {
  for (const stream of [false, true]) {
    const { id } = await send('a1', '/v1/chat/completions', {
      model: 'to-anthropic',
      messages: [
        { role: 'system', content: SYSTEM },
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'first answer' },
        { role: 'user', content: 'second question' },
      ],
      ...(stream ? { stream: true } : {}),
    });
    const up = (await received()).body;
    assert.equal(up.model, 'claude-sonnet-4-5');
    const sys = Array.isArray(up.system) ? up.system : [{ type: 'text', text: up.system }];
    assert.deepEqual(sys.at(-1).cache_control, EPH, q(up.system));
    assert.equal(up.messages.length, 3, q(up.messages));
    assert.deepEqual(up.messages[1].content.at(-1).cache_control, EPH, q(up.messages));
    assert.deepEqual(up.messages[2].content.at(-1).cache_control, EPH, q(up.messages));
    assert.ok(!JSON.stringify(up.messages[0]).includes('cache_control'), q(up.messages));
    assert.deepEqual((await gate.logRecord(id)).prompt_cache, { breakpoints: 3, key: false });
  }
});

test('after a fallback: the next target gets the breakpoints (or, of the other family, a key and no breakpoint)', async () => {
  const fail = () => mock.direct('/_mock/models', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-fail', status: 500, times: 1 }) });
  const body = conversation('fb-anthropic');
  assert.equal((await fail()).status, 200);
  const { id } = await send('a1', '/v1/messages', body);
  const rec = await gate.logRecord(id);
  assert.equal(rec.route.target, 'claude-sonnet-4-5', q(rec.route));
  assert.equal(rec.route.attempts.length, 1, q(rec.route));
  assert.deepEqual((await received()).body, marked({ ...body, model: 'claude-sonnet-4-5' }, EPH));
  assert.deepEqual(rec.prompt_cache, { breakpoints: 3, key: false });

  assert.equal((await fail()).status, 200);
  const mixed = await send('a1', '/v1/messages', conversation('fb-mixed'));
  const mrec = await gate.logRecord(mixed.id);
  assert.equal(mrec.route.target, 'gpt-4o', q(mrec.route));
  const up = (await received()).body;
  assert.match(up.prompt_cache_key, /^tg-[0-9a-f]{32}$/);
  assert.ok(!JSON.stringify(up).includes('cache_control'), q(up));
  assert.deepEqual(mrec.prompt_cache, { breakpoints: 0, key: true });
});

// ---- prompt_cache_key ----------------------------------------------------------------------

const chat = (extra = {}) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello there' }], ...extra });

/** The prompt_cache_key the mock got for agent's request body (undefined for none). */
async function keyFor(agent, p = '/v1/chat/completions', body = chat()) {
  const { id } = await send(agent, p, body);
  const up = await received();
  return { key: up.body.prompt_cache_key, rec: await gate.logRecord(id), up };
}

test('prompt_cache_key: one per agent, stable, naming no one; per team when the policy says', async () => {
  const a1 = await keyFor('a1');
  const a1again = await keyFor('a1');
  const a2 = await keyFor('a2');
  assert.match(a1.key, /^tg-[0-9a-f]{32}$/);
  assert.equal(a1again.key, a1.key);
  assert.notEqual(a2.key, a1.key);
  assert.deepEqual(a1.rec.prompt_cache, { breakpoints: 0, key: true });
  // the rest of the body is the client's
  assert.deepEqual(a1.up.body.messages, chat().messages);
  // streamed, and on the Responses API: the same agent's key
  assert.equal((await keyFor('a1', '/v1/chat/completions', chat({ stream: true }))).key, a1.key);
  assert.equal((await keyFor('a1', '/v1/responses', { model: 'gpt-4o', input: 'hi' })).key, a1.key);
  // scope team: e1 and e2 share one, not the agents'
  const e1 = await keyFor('e1');
  const e2 = await keyFor('e2');
  assert.equal(e1.key, e2.key);
  assert.notEqual(e1.key, a1.key);
  assert.notEqual(e1.key, a2.key);
  // a policy without it: none
  const c1 = await keyFor('c1');
  assert.equal(c1.key, undefined);
  assert.equal(c1.rec.prompt_cache, undefined);
});

test("prompt_cache_key: a client's own is left alone; none on an Anthropic target", async () => {
  const own = await keyFor('a1', '/v1/chat/completions', chat({ prompt_cache_key: 'client-own-key' }));
  assert.equal(own.key, 'client-own-key');
  assert.equal(own.rec.prompt_cache, undefined);
  const anth = await keyFor('a1', '/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 10,
    messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(anth.key, undefined);
});

test('prompt_cache_key on a translated request (Anthropic client, OpenAI target): the agent\'s key', async () => {
  const native = await keyFor('a2');
  for (const stream of [false, true]) {
    const t = await keyFor('a2', '/v1/messages', { model: 'to-openai', max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }], ...(stream ? { stream: true } : {}) });
    assert.equal(t.up.body.model, 'gpt-4o');
    assert.equal(t.key, native.key);
    assert.deepEqual(t.rec.prompt_cache, { breakpoints: 0, key: true });
  }
});
