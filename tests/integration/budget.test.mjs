// The budget gate end to end: gate keys, budgets, the output cap, the x-tokengate-* headers,
// dollar costs, the admin API and /metrics, anonymous use, request records, alerts and config
// errors. Each gate here has an org, a ledger in a temporary directory and an admin listener on
// an ephemeral port, in front of one mock provider. Every bad input is checked for its error in
// the API's own format, for nothing forwarded (the mock's request count) and nothing charged.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  test, cleanup, startMock, startGate, tempDir, runGate, readLogNow, waitLogRecord,
  gateAdminPort, adminRequest, startWebhook, sleep, ms, makeTestPKI,
} from './harness.mjs';

const ADMIN_TOKEN = 'tga-budget-test-admin-token-0123';
const OPENAI_KEY = 'sk-provider-openai-from-env-0001';
const ANTHROPIC_KEY = 'sk-ant-provider-from-env-0002';
const ENV = {
  TG_BT_ADMIN_TOKEN: ADMIN_TOKEN,
  TG_BT_OPENAI_KEY: OPENAI_KEY,
  TG_BT_ANTHROPIC_KEY: ANTHROPIC_KEY,
};
const KEYS = {
  crawler: 'tg-bt-crawler-key-0001',
  writer: 'tg-bt-writer-key-00002',
  judge: 'tg-bt-judge-key-000003',
};
// USD per million tokens; in nano-dollars per token: input * 1000, output * 1000
const PRICES = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'claude-haiku-4-5': { input: 1.0, output: 5.0 },
};

let mock;

before(async () => {
  mock = await startMock();
});

after(cleanup);

// ---- config and gates ---------------------------------------------------------------------

const q = (s) => JSON.stringify(s);

/**
 * The YAML of a gate with the acme org: department research, team search (crawler, writer) and
 * team eval (judge). opts: budgets [{scope, window, tokens, usd}], anonymous (YAML text of the
 * anonymous section), alerts (YAML text), providerKeys (false: no api_key_env).
 */
function orgYaml(dir, opts = {}) {
  const keyEnv = (v) => (opts.providerKeys === false ? '' : `, api_key_env: ${v}`);
  const lines = [
    'listen: 127.0.0.1:0',
    'workers: 1',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'providers:',
    `  mock-openai: { base_url: ${q(mock.url + '/v1')}, format: openai${keyEnv('TG_BT_OPENAI_KEY')} }`,
    `  mock-anthropic: { base_url: ${q(mock.url + '/v1')}, format: anthropic${keyEnv('TG_BT_ANTHROPIC_KEY')} }`,
    'models:',
    `  gpt-4o-mini: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }`,
    `  text-embedding-3-small: { provider: mock-openai, price: { input: 0.02, output: 0 } }`,
    `  claude-haiku-4-5: { provider: mock-anthropic, price: { input: 1.00, output: 5.00 } }`,
    'org: acme',
    'departments:',
    '  research:',
    '    teams:',
    '      search: { agents: [crawler, writer] }',
    '      eval: { agents: [judge] }',
    'keys:',
    ...Object.entries(KEYS).map(([agent, k]) => `  ${k}: ${agent}`),
  ];
  if (opts.budgets?.length) {
    lines.push('budgets:');
    for (const b of opts.budgets) {
      const parts = [`scope: ${q(b.scope)}`, `window: ${b.window}`];
      if (b.tokens !== undefined) parts.push(`tokens: ${b.tokens}`);
      if (b.usd !== undefined) parts.push(`usd: ${b.usd}`);
      lines.push(`  - { ${parts.join(', ')} }`);
    }
  }
  if (opts.anonymous) lines.push(opts.anonymous);
  if (opts.alerts) lines.push(opts.alerts);
  lines.push(`ledger: { path: ${q(path.join(dir, 'ledger.db'))} }`);
  lines.push('admin: { listen: 127.0.0.1:0, token_env: TG_BT_ADMIN_TOKEN }');
  return lines.join('\n') + '\n';
}

/** Starts a gate on orgYaml(dir, opts); dir defaults to a new temporary directory. */
async function startOrgGate(opts = {}) {
  const dir = opts.dir || tempDir('tg-budget-');
  const gate = await startGate({ configText: orgYaml(dir, opts), dir, env: ENV });
  gate.admin = await gateAdminPort(gate);
  gate.ledgerPath = path.join(dir, 'ledger.db');
  return gate;
}

function admin(gate, method, p, body, token = ADMIN_TOKEN) {
  return adminRequest(gate.admin, method, p, { token, body });
}

/** The admin view of one scope's window: {limit_tokens, used_tokens, reserved_tokens, ...}. */
async function budgetOf(gate, scope, window = 'day') {
  const r = await admin(gate, 'GET', `/admin/v1/budgets?scope=${scope}&window=${window}&all=1`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.budgets.length, 1, r.text);
  return r.json.budgets[0];
}

async function mockCount() {
  return (await mock.stats()).requests;
}

// ---- requests -----------------------------------------------------------------------------

const bearer = (k) => ({ authorization: `Bearer ${k}` });
const xApiKey = (k) => ({ 'x-api-key': k });
const say = [{ role: 'user', content: 'Say something short about budgets.' }];

const ENDPOINTS = [
  { name: 'chat', path: '/v1/chat/completions', fmt: 'openai',
    body: { model: 'gpt-4o-mini', messages: say } },
  { name: 'chat stream', path: '/v1/chat/completions', fmt: 'openai',
    body: { model: 'gpt-4o-mini', messages: say, stream: true } },
  { name: 'responses', path: '/v1/responses', fmt: 'openai',
    body: { model: 'gpt-4o-mini', input: 'Say something short about budgets.' } },
  { name: 'embeddings', path: '/v1/embeddings', fmt: 'openai',
    body: { model: 'text-embedding-3-small', input: 'budgets and keys' } },
  { name: 'messages', path: '/v1/messages', fmt: 'anthropic',
    body: { model: 'claude-haiku-4-5', max_tokens: 64, messages: say } },
  { name: 'count_tokens', path: '/v1/messages/count_tokens', fmt: 'anthropic',
    body: { model: 'claude-haiku-4-5', messages: say } },
  { name: 'models', method: 'GET', path: '/v1/models', fmt: 'openai' },
  { name: 'status', method: 'GET', path: '/status', fmt: 'openai' },
];
const EP = Object.fromEntries(ENDPOINTS.map((e) => [e.name, e]));

/** Sends an endpoint's request; patch is merged into its body (a string replaces the body). */
function send(gate, ep, headers = {}, patch = {}) {
  const opts = { method: ep.method || 'POST', headers: { ...headers } };
  if (ep.body) {
    opts.headers['content-type'] = 'application/json';
    opts.body = typeof patch === 'string' ? patch : JSON.stringify({ ...ep.body, ...patch });
  }
  return gate.request(ep.path, opts);
}

/** Checks an error body is in the format of the endpoint's API, with this type. */
function assertApiError(r, fmt, type, what) {
  assert.match(r.headers['content-type'] || '', /application\/json/, `${what}: ${r.text}`);
  assert.ok(r.json, `${what}: not JSON: ${r.text}`);
  if (fmt === 'anthropic') {
    assert.equal(r.json.type, 'error', `${what}: ${r.text}`);
    assert.equal(r.json.error.type, type, `${what}: ${r.text}`);
  } else {
    assert.equal(r.json.type, undefined, `${what}: ${r.text}`);
    assert.equal(typeof r.json.error.type, 'string', `${what}: ${r.text}`);
    if (type === 'budget_exceeded') assert.equal(r.json.error.type, type, `${what}: ${r.text}`);
    else assert.equal(r.json.error.code, 'invalid_api_key', `${what}: ${r.text}`);
  }
  assert.ok(r.json.error.message.length > 10, `${what}: ${r.text}`);
}

/** The request-log records of the gate (complete lines only), requests only (no alerts). */
function records(gate) {
  return readLogNow(gate.logPath).filter((r) => r.id !== undefined);
}

/** `tokengate logs --db LEDGER --format json`, parsed. */
function ledgerRows(gate) {
  const r = runGate(['logs', '--db', gate.ledgerPath, '--format', 'json', '--limit', '1000']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Polls the ledger until it holds the rows with these ids (rejections are written unheld). */
async function ledgerRowsFor(gate, ids, timeoutMs = ms(15000)) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = ledgerRows(gate);
    const byId = new Map(rows.map((r) => [r.id, r]));
    if (ids.every((id) => byId.has(id))) return byId;
    if (Date.now() > deadline)
      throw new Error(`ledger: missing ${ids.filter((id) => !byId.has(id)).join(', ')}`);
    await sleep(50);
  }
}

/**
 * Sends chat requests as an agent until one is refused; returns {ok: [responses], refused}.
 * Bounded: fails after max requests.
 */
async function exhaust(gate, key, max = 60, headers = {}) {
  const ok = [];
  for (let i = 0; i < max; i++) {
    const r = await send(gate, EP.chat, { ...bearer(key), ...headers });
    if (r.status === 429) return { ok, refused: r };
    assert.equal(r.status, 200, r.text);
    ok.push(r);
  }
  throw new Error(`${max} requests and the budget is still not used up`);
}

// ---- authentication -----------------------------------------------------------------------

let shared; // a gate with room to spare, for the authentication and header tests

async function sharedGate() {
  if (!shared)
    shared = await startOrgGate({
      budgets: [{ scope: 'team:search', window: 'day', tokens: 1000000 }],
    });
  return shared;
}

test('every bypass is refused with 401 in the API\'s own format, on every endpoint, and nothing is forwarded or charged', async () => {
  const g = await sharedGate();

  // a key made through the admin API and revoked through it, which worked in between
  const made = await admin(g, 'POST', '/admin/v1/keys', { agent: 'crawler' });
  assert.equal(made.status, 201, made.text);
  const ok = await send(g, EP.chat, bearer(made.json.key));
  assert.equal(ok.status, 200, ok.text);
  const del = await admin(g, 'DELETE', `/admin/v1/keys/${made.json.id}`);
  assert.equal(del.status, 200, del.text);

  await waitLogRecord(g.logPath, ok.headers['x-request-id']);
  const before = await mockCount();
  const budgetBefore = await budgetOf(g, 'team:search');
  const logBefore = records(g).length;
  const bypasses = [
    { name: 'no key', headers: {}, re: /no API key/ },
    { name: 'empty bearer', headers: { authorization: 'Bearer ' }, re: /no API key|not valid/ },
    { name: 'unknown bearer key', headers: bearer('tg-bt-not-a-key-at-all'), re: /not valid/ },
    { name: 'unknown x-api-key', headers: xApiKey('tg-bt-not-a-key-at-all'), re: /not valid/ },
    { name: 'a provider key', headers: bearer(OPENAI_KEY), re: /not valid/ },
    { name: 'revoked key (bearer)', headers: bearer(made.json.key), re: /revoked/ },
    { name: 'revoked key (x-api-key)', headers: xApiKey(made.json.key), re: /revoked/ },
  ];
  let n = 0;
  for (const ep of ENDPOINTS) {
    for (const b of bypasses) {
      const what = `${ep.name}, ${b.name}`;
      const r = await send(g, ep, b.headers);
      n++;
      assert.equal(r.status, 401, `${what}: ${r.status} ${r.text}`);
      assertApiError(r, ep.fmt, 'authentication_error', what);
      assert.match(r.json.error.message, b.re, what);
    }
  }
  assert.equal(await mockCount(), before, 'a refused request reached the provider');
  const budgetAfter = await budgetOf(g, 'team:search');
  assert.equal(budgetAfter.used_tokens, budgetBefore.used_tokens, 'a refused request was charged');
  assert.equal(budgetAfter.reserved_tokens, 0);
  // every refusal is recorded as unauthenticated, charged nothing
  const deadline = Date.now() + ms(15000);
  while (records(g).length < logBefore + n && Date.now() < deadline) await sleep(20);
  const recs = records(g).slice(logBefore);
  assert.equal(recs.length, n);
  for (const rec of recs) {
    assert.equal(rec.status, 401);
    assert.equal(rec.decision, 'unauthenticated', JSON.stringify(rec));
    assert.equal(rec.tokens_charged, 0);
    assert.equal(rec.cost_usd, 0);
  }
});

test('a good key works as Authorization: Bearer and as x-api-key on every endpoint', async () => {
  const g = await sharedGate();
  for (const ep of ENDPOINTS) {
    for (const h of [bearer(KEYS.crawler), xApiKey(KEYS.crawler)]) {
      const r = await send(g, ep, h);
      assert.equal(r.status, 200, `${ep.name} with ${Object.keys(h)[0]}: ${r.text}`);
      if (ep.body?.stream) assert.match(r.headers['content-type'], /text\/event-stream/);
      const rec = await waitLogRecord(g.logPath, r.headers['x-request-id']);
      assert.equal(rec.agent, 'crawler');
      assert.match(rec.key_id, /^key_[0-9a-f]{12}$/);
    }
  }
});

test('the agent\'s gate key never reaches the provider: the provider key from the env is sent', async () => {
  const g = await sharedGate();
  for (const ep of ENDPOINTS.filter((e) => e.method !== 'GET')) {
    for (const h of [bearer(KEYS.crawler), xApiKey(KEYS.crawler)]) {
      const r = await send(g, ep, h);
      assert.equal(r.status, 200, r.text);
      const last = await mock.last();
      assert.equal(last.path, ep.path);
      const seen = JSON.stringify(last.headers);
      assert.ok(!seen.includes(KEYS.crawler), `${ep.name}: the gate key was forwarded: ${seen}`);
      assert.ok(!seen.includes('tg-bt-'), `${ep.name}: a gate key was forwarded: ${seen}`);
      if (ep.fmt === 'anthropic') {
        assert.equal(last.headers['x-api-key'], ANTHROPIC_KEY, seen);
        assert.equal(last.headers.authorization, undefined, seen);
      } else {
        assert.equal(last.headers.authorization, `Bearer ${OPENAI_KEY}`, seen);
        assert.equal(last.headers['x-api-key'], undefined, seen);
      }
    }
  }
});

// ---- budgets ------------------------------------------------------------------------------

test('a tight team budget: requests pass until it is used up, then 429 budget_exceeded with retry-after and x-should-retry: false, nothing forwarded; SDKs do not retry', async () => {
  const LIMIT = 400;
  const g = await startOrgGate({
    budgets: [
      { scope: 'team:eval', window: 'day', tokens: LIMIT },
      { scope: 'team:search', window: 'day', tokens: 100000 },
    ],
  });
  const { ok, refused } = await exhaust(g, KEYS.judge);
  assert.ok(ok.length >= 3, `only ${ok.length} requests passed under ${LIMIT} tokens`);

  // the 429 itself
  const before = await mockCount();
  const r = await send(g, EP.chat, bearer(KEYS.judge));
  for (const x of [refused, r]) {
    assert.equal(x.status, 429, x.text);
    assertApiError(x, 'openai', 'budget_exceeded', 'chat 429');
    const e = x.json.error;
    assert.equal(e.code, 'budget_exceeded');
    assert.equal(e.scope, 'team:eval');
    assert.equal(e.window, 'day');
    assert.equal(e.unit, 'tokens');
    assert.equal(e.limit, LIMIT);
    assert.equal(e.reserved, 0);
    assert.ok(e.used > 0 && e.used <= LIMIT, x.text);
    assert.equal(e.remaining, LIMIT - e.used);
    assert.ok(e.needed > e.remaining, x.text);
    assert.match(e.resets_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const untilReset = (Date.parse(e.resets_at) - Date.now()) / 1000;
    assert.ok(untilReset > 0 && untilReset <= 25 * 3600, e.resets_at);
    assert.match(x.headers['retry-after'], /^\d+$/);
    assert.ok(Math.abs(Number(x.headers['retry-after']) - untilReset) <= 5,
      `retry-after ${x.headers['retry-after']} vs ${untilReset} s until ${e.resets_at}`);
    assert.equal(x.headers['x-should-retry'], 'false');
    assert.match(e.message, /budget exceeded: team:eval/);
  }
  const used = r.json.error.used;
  // what was used is what the admitted requests were charged
  for (const x of [...ok, refused, r]) await waitLogRecord(g.logPath, x.headers['x-request-id']);
  const recs = records(g);
  const admitted = recs.filter((x) => x.decision === 'admitted' && x.agent === 'judge');
  assert.equal(admitted.length, ok.length);
  assert.equal(admitted.reduce((s, x) => s + x.tokens_charged, 0), used);
  const view = await budgetOf(g, 'team:eval');
  assert.equal(view.used_tokens, used);
  assert.equal(view.reserved_tokens, 0);

  // the other endpoints of the team are refused too, each in its own format
  const msg = await send(g, EP.messages, bearer(KEYS.judge));
  assert.equal(msg.status, 429, msg.text);
  assertApiError(msg, 'anthropic', 'budget_exceeded', 'messages 429');
  assert.equal(msg.json.error.scope, 'team:eval');
  assert.equal(msg.headers['x-should-retry'], 'false');
  assert.match(msg.headers['retry-after'], /^\d+$/);
  for (const ep of [EP['chat stream'], EP.responses, EP.embeddings]) {
    const x = await send(g, ep, bearer(KEYS.judge));
    assert.equal(x.status, 429, `${ep.name}: ${x.text}`);
    assertApiError(x, 'openai', 'budget_exceeded', `${ep.name} 429`);
  }
  assert.equal(await mockCount(), before, 'a request refused for its budget reached the provider');

  // the official SDKs raise their rate-limit error once, without retrying
  const rejectedNow = () => records(g).filter((x) => x.decision === 'rejected').length;
  const settle = async (want) => {
    const deadline = Date.now() + ms(15000);
    while (rejectedNow() < want && Date.now() < deadline) await sleep(20);
  };
  await settle(6);
  let rejected = rejectedNow();
  assert.equal(rejected, 6);
  const openai = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: KEYS.judge, maxRetries: 3,
    timeout: ms(30000) });
  await assert.rejects(
    openai.chat.completions.create({ model: 'gpt-4o-mini', messages: say }),
    (err) => {
      assert.ok(err instanceof OpenAI.RateLimitError, `${err.constructor.name}: ${err.message}`);
      assert.equal(err.status, 429);
      assert.equal(err.error?.type, 'budget_exceeded');
      return true;
    },
  );
  await settle(rejected + 2);
  assert.equal(rejectedNow(), rejected + 1, 'the OpenAI SDK retried a budget refusal');
  rejected += 1;
  const anthropic = new Anthropic({ baseURL: g.url, apiKey: KEYS.judge, maxRetries: 3,
    timeout: ms(30000) });
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 50, messages: say }),
    (err) => {
      assert.ok(err instanceof Anthropic.RateLimitError, `${err.constructor.name}: ${err.message}`);
      assert.equal(err.status, 429);
      assert.equal(err.error?.error?.type, 'budget_exceeded');
      return true;
    },
  );
  await settle(rejected + 2);
  assert.equal(rejectedNow(), rejected + 1, 'the Anthropic SDK retried a budget refusal');
  assert.equal(await mockCount(), before, 'an SDK retry reached the provider');
  assert.equal((await budgetOf(g, 'team:eval')).used_tokens, used, 'a refusal was charged');

  // the other team is not touched
  const other = await send(g, EP.chat, bearer(KEYS.crawler));
  assert.equal(other.status, 200, other.text);
});

test('the output cap: a request without one is forwarded with the headroom written in; its own smaller cap goes unchanged', async () => {
  const g = await startOrgGate({ budgets: [{ scope: 'team:search', window: 'day', tokens: 3000 }] });
  const key = bearer(KEYS.crawler);

  // the cap written is what the budget had left less the request's input reservation
  const checkWritten = async (ep, patch, member, drop = []) => {
    const sent = { ...ep.body, ...patch };
    for (const k of drop) delete sent[k];
    const r = await send(g, ep, key, JSON.stringify(sent));
    assert.equal(r.status, 200, `${ep.name}: ${r.text}`);
    const body = JSON.parse((await mock.last()).body);
    const rem = Number(r.headers['x-tokengate-budget-remaining']);
    const tin = Number(r.headers['x-tokengate-tokens-in']);
    const cap = body[member];
    assert.ok(Number.isInteger(cap) && cap > 0, `${ep.name}: ${member} ${cap}`);
    const inReserved = rem - cap;
    assert.ok(inReserved > tin && inReserved <= tin + Math.floor(tin / 8) + 16,
      `${ep.name}: ${member} ${cap} with ${rem} left and ${tin} tokens in`);
    // nothing else changed (a chat stream gains stream_options.include_usage, for its usage)
    const rest = { ...body };
    delete rest[member];
    if (sent.stream && ep.name === 'chat stream') {
      assert.deepEqual(rest.stream_options, { include_usage: true });
      delete rest.stream_options;
    }
    const want = { ...sent };
    delete want[member];
    assert.deepEqual(rest, want);
    return cap;
  };
  const checkUnchanged = async (ep, patch) => {
    const text = JSON.stringify({ ...ep.body, ...patch });
    const r = await send(g, ep, key, text);
    assert.equal(r.status, 200, `${ep.name}: ${r.text}`);
    assert.equal((await mock.last()).body, text, `${ep.name}: the body was changed`);
  };

  await checkWritten(EP.chat, {}, 'max_completion_tokens');
  await checkWritten(EP.chat, { max_completion_tokens: 1000000 }, 'max_completion_tokens');
  const r1 = JSON.parse((await mock.last()).body);
  assert.equal(r1.max_tokens, undefined);
  // an old request with only max_tokens keeps its member
  await checkWritten(EP.chat, { max_tokens: 1000000 }, 'max_tokens');
  assert.equal(JSON.parse((await mock.last()).body).max_completion_tokens, undefined);
  await checkUnchanged(EP.chat, { max_completion_tokens: 5 });
  await checkUnchanged(EP.chat, { max_tokens: 5 });
  await checkWritten(EP['chat stream'], {}, 'max_completion_tokens');

  await checkWritten(EP.responses, {}, 'max_output_tokens');
  await checkWritten(EP.responses, { max_output_tokens: 1000000 }, 'max_output_tokens');
  await checkUnchanged(EP.responses, { max_output_tokens: 16 });

  await checkWritten(EP.messages, {}, 'max_tokens', ['max_tokens']);
  await checkWritten(EP.messages, { max_tokens: 1000000 }, 'max_tokens');
  await checkUnchanged(EP.messages, { max_tokens: 9 });

  // embeddings have no output: nothing is written
  await checkUnchanged(EP.embeddings, {});
});

test('headers: x-tokengate-tokens-in is the gate\'s count; x-tokengate-budget-remaining(-usd) go down by what was charged', async () => {
  const g = await startOrgGate({
    budgets: [{ scope: 'team:search', window: 'day', tokens: 50000, usd: 0.5 }],
  });
  let prev = null;
  const seq = [EP.chat, EP.responses, EP.messages, EP.embeddings, EP['chat stream'], EP.chat];
  for (const ep of seq) {
    const r = await send(g, ep, bearer(KEYS.writer));
    assert.equal(r.status, 200, r.text);
    const rec = await waitLogRecord(g.logPath, r.headers['x-request-id']);
    assert.ok(rec.count && rec.count.input > 0, JSON.stringify(rec));
    assert.equal(Number(r.headers['x-tokengate-tokens-in']), rec.count.input, ep.name);
    const rem = Number(r.headers['x-tokengate-budget-remaining']);
    const remUsd = Number(r.headers['x-tokengate-budget-remaining-usd']);
    assert.ok(Number.isFinite(rem) && Number.isFinite(remUsd), JSON.stringify(r.headers));
    if (prev === null) {
      assert.equal(rem, 50000);
      assert.ok(Math.abs(remUsd - 0.5) < 1e-9, String(remUsd));
    } else {
      assert.equal(rem, prev.rem - prev.rec.tokens_charged, `${ep.name} after ${prev.ep}`);
      assert.ok(Math.abs(remUsd - (prev.remUsd - prev.rec.cost_usd)) <= 1.5e-6,
        `${ep.name}: ${remUsd} after ${prev.remUsd} - ${prev.rec.cost_usd}`);
    }
    assert.ok(rec.tokens_charged > 0);
    prev = { rem, remUsd, rec, ep: ep.name };
  }
});

test('dollar budgets: the cost in the request log and the ledger is the usage times the prices; a dollar budget refuses in usd', async () => {
  const g = await startOrgGate({
    budgets: [
      { scope: 'team:search', window: 'month', usd: 10 },
      { scope: 'team:eval', window: 'day', usd: 0.0003 },
    ],
  });
  const ids = [];
  for (const ep of [EP.chat, EP.responses, EP.messages, EP.embeddings, EP['chat stream']]) {
    const r = await send(g, ep, bearer(KEYS.crawler));
    assert.equal(r.status, 200, r.text);
    const id = r.headers['x-request-id'];
    ids.push(id);
    const rec = await waitLogRecord(g.logPath, id);
    const p = PRICES[rec.model];
    assert.ok(rec.usage, JSON.stringify(rec));
    const nusd = rec.usage.input * p.input * 1000 + rec.usage.output * p.output * 1000;
    assert.ok(nusd > 0);
    assert.ok(Math.abs(rec.cost_usd - nusd / 1e9) < 1e-12,
      `${ep.name}: cost ${rec.cost_usd}, usage ${JSON.stringify(rec.usage)} at ${JSON.stringify(p)}`);
    assert.equal(rec.tokens_charged, rec.usage.input + rec.usage.output);
  }
  const rows = await ledgerRowsFor(g, ids);
  let total = 0;
  for (const id of ids) {
    const row = rows.get(id);
    const p = PRICES[row.model];
    assert.equal(row.cost_nusd, Math.round(row.in_usage * p.input * 1000 + row.out_usage * p.output * 1000),
      JSON.stringify(row));
    total += row.cost_nusd;
  }
  const view = await budgetOf(g, 'team:search', 'month');
  assert.ok(Math.abs(view.used_usd - total / 1e9) < 1e-12, `${view.used_usd} vs ${total}`);

  // a dollar budget used up: 429 in dollars
  const before = await mockCount();
  let refused;
  for (let i = 0; i < 40 && !refused; i++) {
    const r = await send(g, EP.messages, bearer(KEYS.judge));
    if (r.status === 429) refused = r;
    else assert.equal(r.status, 200, r.text);
  }
  assert.ok(refused, 'the dollar budget never refused');
  assertApiError(refused, 'anthropic', 'budget_exceeded', 'messages 429 (usd)');
  const e = refused.json.error;
  assert.equal(e.unit, 'usd');
  assert.equal(e.scope, 'team:eval');
  assert.ok(Math.abs(e.limit - 0.0003) < 1e-12);
  assert.ok(e.used <= 0.0003 + 1e-12 && e.remaining < e.needed, refused.text);
  assert.equal(refused.headers['x-should-retry'], 'false');
  const after = await mockCount();
  const r2 = await send(g, EP.messages, bearer(KEYS.judge));
  assert.equal(r2.status, 429);
  assert.equal(await mockCount(), after, 'a request over its dollar budget was forwarded');
  assert.ok(after > before);
});

// ---- the admin API ------------------------------------------------------------------------

/** Parses Prometheus text: {name{labels}: value}; checks every line's form. */
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      assert.ok(line === '' || /^# (HELP|TYPE) [a-z_]+ /.test(line), `metrics line: ${line}`);
      continue;
    }
    const m = line.match(/^([a-z_]+(?:\{[a-z_]+="[^"]*"(?:,[a-z_]+="[^"]*")*\})?) (-?[0-9.eE+-]+)$/);
    assert.ok(m, `not a Prometheus sample: ${JSON.stringify(line)}`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}

test('admin API: token required; budgets shown, raised and reset; keys made, listed without secrets and revoked; all of it survives a restart; /metrics', async () => {
  const dir = tempDir('tg-budget-admin-');
  const budgets = [{ scope: 'team:eval', window: 'day', tokens: 200 }];
  let g = await startOrgGate({ dir, budgets });

  // the token
  for (const [m, p] of [['GET', '/admin/v1/budgets'], ['GET', '/admin/v1/keys'],
    ['POST', '/admin/v1/keys'], ['PUT', '/admin/v1/budgets'], ['GET', '/metrics'],
    ['DELETE', '/admin/v1/keys/key_000000000000']]) {
    for (const token of [undefined, 'wrong-token-of-some-length', ADMIN_TOKEN + 'x', '']) {
      const r = await adminRequest(g.admin, m, p, { token, body: m === 'GET' || m === 'DELETE' ? undefined : { agent: 'judge' } });
      assert.equal(r.status, 401, `${m} ${p} with ${token}: ${r.text}`);
      assert.equal(r.json.error.type, 'unauthorized');
      assert.equal(r.headers['www-authenticate'], 'Bearer');
    }
  }
  const basic = await adminRequest(g.admin, 'GET', '/admin/v1/budgets',
    { headers: { authorization: `Basic ${ADMIN_TOKEN}` } });
  assert.equal(basic.status, 401);
  const keysNow = await admin(g, 'GET', '/admin/v1/keys');
  assert.equal(keysNow.json.keys.length, 3, 'a refused admin request made a key');

  // the budgets as configured
  let list = await admin(g, 'GET', '/admin/v1/budgets');
  assert.equal(list.status, 200, list.text);
  const eval0 = list.json.budgets.find((b) => b.scope === 'team:eval' && b.window === 'day');
  assert.ok(eval0, list.text);
  assert.equal(eval0.limit_tokens, 200);
  assert.equal(eval0.limit_usd, null);
  assert.equal(eval0.used_tokens, 0);
  assert.equal(eval0.reserved_tokens, 0);
  assert.equal(eval0.remaining_tokens, 200);
  assert.ok(Date.parse(eval0.resets_at) > Date.now());

  // used up, then raised: the refused agent goes again
  const { ok, refused } = await exhaust(g, KEYS.judge);
  assert.equal(refused.status, 429);
  const used1 = ok.length ? (await budgetOf(g, 'team:eval')).used_tokens : 0;
  assert.equal(used1, refused.json.error.used);
  const put = await admin(g, 'PUT', '/admin/v1/budgets', { scope: 'team:eval', window: 'day', tokens: 5000 });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.budgets[0].limit_tokens, 5000);
  assert.equal(put.json.budgets[0].used_tokens, used1);
  const again = await send(g, EP.chat, bearer(KEYS.judge));
  assert.equal(again.status, 200, again.text);
  const badPut = await admin(g, 'PUT', '/admin/v1/budgets', { scope: 'team:nope', window: 'day', tokens: 1 });
  assert.equal(badPut.status, 404, badPut.text);
  const badPut2 = await admin(g, 'PUT', '/admin/v1/budgets', { scope: 'team:eval', window: 'fortnight', tokens: 1 });
  assert.equal(badPut2.status, 400, badPut2.text);

  // reset: spend before now no longer counts; then one request counts again
  const reset = await admin(g, 'POST', '/admin/v1/budgets/reset', { scope: 'team:eval', window: 'day' });
  assert.equal(reset.status, 200, reset.text);
  assert.equal(reset.json.budgets[0].used_tokens, 0);
  assert.equal((await budgetOf(g, 'team:eval')).used_tokens, 0);
  const afterReset = await send(g, EP.chat, bearer(KEYS.judge));
  assert.equal(afterReset.status, 200);
  const rec = await waitLogRecord(g.logPath, afterReset.headers['x-request-id']);
  const usedAfterReset = (await budgetOf(g, 'team:eval')).used_tokens;
  assert.equal(usedAfterReset, rec.tokens_charged);

  // keys: made, usable at once, shown once, listed by id only, revoked
  const made = [];
  for (let i = 0; i < 2; i++) {
    const r = await admin(g, 'POST', '/admin/v1/keys', { agent: 'writer' });
    assert.equal(r.status, 201, r.text);
    assert.match(r.json.key, /^tg-[0-9a-f]{48}$/);
    assert.match(r.json.id, /^key_[0-9a-f]{12}$/);
    assert.equal(r.json.agent, 'writer');
    made.push(r.json);
    const use = await send(g, EP.chat, bearer(r.json.key));
    assert.equal(use.status, 200, use.text);
    const urec = await waitLogRecord(g.logPath, use.headers['x-request-id']);
    assert.equal(urec.agent, 'writer');
    assert.equal(urec.key_id, r.json.id);
  }
  const badKey = await admin(g, 'POST', '/admin/v1/keys', { agent: 'nobody' });
  assert.equal(badKey.status, 404, badKey.text);
  const keys = await admin(g, 'GET', '/admin/v1/keys');
  assert.equal(keys.status, 200);
  assert.equal(keys.json.keys.length, 5, keys.text);
  for (const k of keys.json.keys) {
    assert.deepEqual(Object.keys(k).sort(), ['agent', 'id', 'revoked'], keys.text);
  }
  for (const secret of [...made.map((m) => m.key), ...Object.values(KEYS)])
    assert.ok(!keys.text.includes(secret), 'GET /admin/v1/keys shows a secret');
  assert.ok(!keys.text.includes(made[0].key.slice(3, 20)), 'GET /admin/v1/keys shows part of a secret');
  const crawlerKey = keys.json.keys.find((k) => k.agent === 'crawler');
  assert.ok(crawlerKey);
  for (const id of [made[0].id, crawlerKey.id]) {
    const d = await admin(g, 'DELETE', `/admin/v1/keys/${id}`);
    assert.equal(d.status, 200, d.text);
  }
  const d404 = await admin(g, 'DELETE', '/admin/v1/keys/key_000000000000');
  assert.equal(d404.status, 404);
  const revokedNow = (await admin(g, 'GET', '/admin/v1/keys')).json.keys;
  assert.deepEqual(revokedNow.filter((k) => k.revoked).map((k) => k.id).sort(),
    [made[0].id, crawlerKey.id].sort());
  const before = await mockCount();
  let lastId;
  for (const k of [made[0].key, KEYS.crawler]) {
    const r = await send(g, EP.chat, bearer(k));
    assert.equal(r.status, 401, r.text);
    assert.match(r.json.error.message, /revoked/);
    lastId = r.headers['x-request-id'];
  }
  assert.equal(await mockCount(), before);

  // /metrics, once the last request is counted (its record is written as it ends)
  await waitLogRecord(g.logPath, lastId);
  const recs = records(g);
  let mt, metrics;
  const deadline = Date.now() + ms(15000);
  for (;;) {
    mt = await admin(g, 'GET', '/metrics');
    assert.equal(mt.status, 200);
    metrics = parseMetrics(mt.text);
    const answered = Object.entries(metrics)
      .filter(([k]) => k.startsWith('tokengate_requests_total{'))
      .reduce((t, [, v]) => t + v, 0);
    if (answered >= recs.length || Date.now() > deadline) break;
    await sleep(20);
  }
  assert.match(mt.headers['content-type'], /^text\/plain/);
  const count = (f) => recs.filter(f).length;
  assert.equal(metrics['tokengate_requests_total{status="200"}'], count((r) => r.status === 200));
  assert.equal(metrics['tokengate_requests_total{status="429"}'], count((r) => r.status === 429));
  assert.equal(metrics['tokengate_requests_total{status="401"}'], 2);
  assert.equal(metrics['tokengate_rejections_total{reason="budget"}'], 1);
  assert.equal(metrics['tokengate_rejections_total{reason="auth"}'], 2);
  const charged = recs.reduce((s, r) => s + (r.tokens_charged || 0), 0);
  assert.equal(metrics['tokengate_tokens_total{direction="in"}'] +
    metrics['tokengate_tokens_total{direction="out"}'], charged);
  const cost = recs.reduce((s, r) => s + (r.cost_usd || 0), 0);
  assert.ok(cost > 0 && Math.abs(metrics.tokengate_cost_usd_total - cost) < 1e-9,
    `${metrics.tokengate_cost_usd_total} vs ${cost}`);
  const util = metrics['tokengate_budget_utilization{scope="team:eval",window="day",unit="tokens"}'];
  assert.ok(Math.abs(util - usedAfterReset / 5000) < 1e-6, `${util}`);

  // a restart on the same ledger keeps the raised budget, the reset, the keys and revocations
  const stopped = await g.stop();
  assert.equal(stopped.code, 0, JSON.stringify(stopped));
  g = await startOrgGate({ dir, budgets });
  const ev = await budgetOf(g, 'team:eval');
  assert.equal(ev.limit_tokens, 5000, 'the raised budget was lost in the restart');
  assert.equal(ev.used_tokens, usedAfterReset, 'the reset was lost in the restart');
  const keys2 = (await admin(g, 'GET', '/admin/v1/keys')).json.keys;
  assert.deepEqual(keys2.map((k) => `${k.id}:${k.agent}:${k.revoked}`).sort(),
    revokedNow.map((k) => `${k.id}:${k.agent}:${k.revoked}`).sort());
  const kept = await send(g, EP.chat, bearer(made[1].key));
  assert.equal(kept.status, 200, `a key made through the API was lost in the restart: ${kept.text}`);
  const before2 = await mockCount();
  for (const k of [made[0].key, KEYS.crawler]) {
    const r = await send(g, EP.chat, bearer(k));
    assert.equal(r.status, 401, `a revocation was lost in the restart: ${r.text}`);
    assert.match(r.json.error.message, /revoked/);
  }
  assert.equal(await mockCount(), before2);
  const judge = await send(g, EP.chat, bearer(KEYS.judge));
  assert.equal(judge.status, 200);
  assert.equal(Number(judge.headers['x-tokengate-budget-remaining']), 5000 - usedAfterReset);
});

test('admin API: departments, teams and agents added at run time take keys and budgets, are charged up their path, and survive a restart', async () => {
  const dir = tempDir('tg-budget-');
  let g = await startOrgGate({ dir, budgets: [{ scope: 'department:research', window: 'day', tokens: 100000 }] });

  // the rules: a bad level, a parent of the wrong level, a name taken, a bad name; none is added
  const bad = [
    [{ level: 'agent', name: 'x1', parent: 'department:research' }, 400, /parent must be a team/],
    [{ level: 'team', name: 'search', parent: 'department:research' }, 409, /exists already/],
    [{ level: 'agent', name: 'a b', parent: 'team:search' }, 400, /letters, digits/],
    [{ level: 'org', name: 'x2', parent: 'org' }, 400, /level/],
    [{ level: 'agent', name: 'x3', parent: 'team:nope' }, 404, /no scope/],
    [{ name: 'x4' }, 400, /required/],
  ];
  const before = (await admin(g, 'GET', '/admin/v1/scopes')).json.scopes.length;
  for (const [body, status, msg] of bad) {
    const r = await admin(g, 'POST', '/admin/v1/scopes', body);
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
    assert.match(r.json.error.message, msg);
  }
  assert.equal((await admin(g, 'POST', '/admin/v1/scopes', { level: 'team', name: 'x' }, 'wrong-token')).status, 401);
  assert.equal((await admin(g, 'GET', '/admin/v1/scopes')).json.scopes.length, before);

  // a new department, team and agent
  for (const body of [{ level: 'department', name: 'ops', parent: 'org' },
    { level: 'team', name: 'infra', parent: 'department:ops' },
    { level: 'agent', name: 'bot-1', parent: 'team:infra' },
    { level: 'agent', name: 'bot-2', parent: 'team:search' }]) {
    const r = await admin(g, 'POST', '/admin/v1/scopes', body);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.scope, `${body.level}:${body.name}`);
    assert.equal(r.json.parent, body.parent);
  }
  const tree = (await admin(g, 'GET', '/admin/v1/scopes')).json.scopes;
  assert.deepEqual(tree.find((x) => x.scope === 'agent:bot-1'),
    { scope: 'agent:bot-1', level: 'agent', name: 'bot-1', parent: 'team:infra' });

  // a key and a budget for the new agent's team; its requests are charged up its path
  const key = await admin(g, 'POST', '/admin/v1/keys', { agent: 'bot-1' });
  assert.equal(key.status, 201, key.text);
  const set = await admin(g, 'PUT', '/admin/v1/budgets', { scope: 'team:infra', window: 'day', tokens: 400 });
  assert.equal(set.status, 200, set.text);
  const r1 = await send(g, EP.chat, { ...bearer(key.json.key), 'x-mock-tokens': '20' });
  assert.equal(r1.status, 200, r1.text);
  const rec = (await ledgerRowsFor(g, [r1.headers['x-request-id']])).get(r1.headers['x-request-id']);
  assert.equal(rec.agent, 'bot-1');
  assert.equal(rec.team, 'infra');
  assert.equal(rec.department, 'ops');
  assert.ok(rec.tokens_charged > 20);
  for (const s of ['team:infra', 'department:ops', 'org'])
    assert.equal((await budgetOf(g, s)).used_tokens, rec.tokens_charged, s);
  assert.equal((await budgetOf(g, 'department:research')).used_tokens, 0);
  // the team's budget holds it: past 400 tokens, 429 naming team:infra
  let refused;
  for (let i = 0; i < 40 && !refused; i++) {
    const r = await send(g, EP.chat, { ...bearer(key.json.key), 'x-mock-tokens': '40' });
    if (r.status === 429) refused = r;
    else assert.equal(r.status, 200, r.text);
  }
  assert.ok(refused, 'team:infra was never refused');
  assert.equal(refused.json.error.scope, 'team:infra');

  // after a restart on the same ledger the scopes, the key and the budget are all there
  const used = (await budgetOf(g, 'team:infra')).used_tokens;
  assert.equal((await g.stop()).code, 0);
  g = await startOrgGate({ dir, budgets: [{ scope: 'department:research', window: 'day', tokens: 100000 }] });
  const tree2 = (await admin(g, 'GET', '/admin/v1/scopes')).json.scopes;
  assert.deepEqual(tree2, tree);
  const infra = await budgetOf(g, 'team:infra');
  assert.equal(infra.limit_tokens, 400);
  assert.equal(infra.used_tokens, used);
  const again = await send(g, EP.chat, bearer(key.json.key));
  assert.equal(again.status, 429, again.text);
  assert.equal(again.json.error.scope, 'team:infra');
});

// ---- anonymous use ------------------------------------------------------------------------

test('anonymous: allowed, requests without a key are served and charged to the anonymous budget; not allowed, 401', async () => {
  const g = await startOrgGate({
    anonymous: 'anonymous: { allowed: true }',
    budgets: [{ scope: 'anonymous', window: 'day', tokens: 300 }],
  });
  const first = await send(g, EP.chat, {});
  assert.equal(first.status, 200, first.text);
  const rec = await waitLogRecord(g.logPath, first.headers['x-request-id']);
  assert.equal(rec.agent, 'anonymous');
  assert.equal(rec.decision, 'admitted');
  assert.equal(Number(first.headers['x-tokengate-budget-remaining']), 300);
  const view = await budgetOf(g, 'anonymous');
  assert.equal(view.scope, 'agent:anonymous');
  assert.equal(view.used_tokens, rec.tokens_charged);
  // a key that is wrong is not anonymous
  const bad = await send(g, EP.chat, bearer('tg-bt-not-a-key-at-all'));
  assert.equal(bad.status, 401);
  // known agents are charged to their own budgets, not the anonymous one
  const judge = await send(g, EP.chat, bearer(KEYS.judge));
  assert.equal(judge.status, 200);
  assert.equal((await budgetOf(g, 'anonymous')).used_tokens, rec.tokens_charged);
  // the anonymous budget runs out like any other
  let refused;
  for (let i = 0; i < 40 && !refused; i++) {
    const r = await send(g, EP.messages, {});
    if (r.status === 429) refused = r;
    else assert.equal(r.status, 200, r.text);
  }
  assert.ok(refused, 'the anonymous budget never refused');
  assertApiError(refused, 'anthropic', 'budget_exceeded', 'anonymous 429');
  assert.equal(refused.json.error.scope, 'agent:anonymous');

  // without anonymous: { allowed: true }, no key is a 401
  const closed = await startOrgGate({ anonymous: 'anonymous: { allowed: false }',
    budgets: [{ scope: 'team:eval', window: 'day', tokens: 300 }] });
  const before = await mockCount();
  for (const ep of ENDPOINTS) {
    const r = await send(closed, ep, {});
    assert.equal(r.status, 401, `${ep.name}: ${r.text}`);
    assertApiError(r, ep.fmt, 'authentication_error', ep.name);
  }
  assert.equal(await mockCount(), before);
});

// ---- records --------------------------------------------------------------------------------

test('request records: the JSONL log and tokengate logs carry agent, team, decision, tokens and cost, admitted and rejected', async () => {
  const g = await startOrgGate({
    budgets: [{ scope: 'team:eval', window: 'day', tokens: 250 },
      { scope: 'team:search', window: 'day', tokens: 100000 }],
  });
  const { ok, refused } = await exhaust(g, KEYS.judge);
  const crawler = await send(g, EP.messages, bearer(KEYS.crawler));
  assert.equal(crawler.status, 200);
  const anon = await send(g, EP.chat, {});
  assert.equal(anon.status, 401);
  const want = [
    ...ok.map((r) => ({ id: r.headers['x-request-id'], agent: 'judge', team: 'eval', decision: 'admitted' })),
    { id: refused.headers['x-request-id'], agent: 'judge', team: 'eval', decision: 'rejected' },
    { id: crawler.headers['x-request-id'], agent: 'crawler', team: 'search', decision: 'admitted' },
    { id: anon.headers['x-request-id'], agent: null, team: null, decision: 'unauthenticated' },
  ];
  for (const w of want) assert.ok(w.id, 'a response without x-request-id');
  const rows = await ledgerRowsFor(g, want.map((w) => w.id));
  for (const w of want) {
    const rec = await waitLogRecord(g.logPath, w.id);
    const row = rows.get(w.id);
    const what = `${w.decision} ${w.id}: ${JSON.stringify(rec)}\n${JSON.stringify(row)}`;
    assert.equal(rec.decision, w.decision, what);
    assert.equal(row.decision, w.decision, what);
    assert.equal(rec.agent ?? null, w.agent, what);
    assert.equal(row.agent, w.agent, what);
    assert.equal(rec.team ?? null, w.team, what);
    assert.equal(row.team, w.team, what);
    if (w.agent) assert.equal(row.department, 'research', what);
    assert.equal(row.tokens_charged, rec.tokens_charged, what);
    assert.ok(Math.abs(row.cost_nusd / 1e9 - rec.cost_usd) < 1e-12, what);
    if (w.decision === 'admitted') {
      assert.ok(rec.tokens_charged > 0 && rec.cost_usd > 0, what);
      assert.equal(rec.tokens_charged, rec.usage.input + rec.usage.output, what);
      assert.equal(row.in_usage, rec.usage.input, what);
      assert.equal(row.out_usage, rec.usage.output, what);
      assert.equal(row.status, 200, what);
    } else {
      assert.equal(rec.tokens_charged, 0, what);
      assert.equal(rec.cost_usd, 0, what);
      assert.equal(row.status, w.decision === 'rejected' ? 429 : 401, what);
    }
    if (w.decision === 'rejected') {
      assert.match(rec.error, /budget exceeded/, what);
      assert.match(row.error, /budget exceeded/, what);
      assert.ok(row.in_own > 0, what);
    }
  }
});

// ---- alerts ---------------------------------------------------------------------------------

test('alerts: one webhook POST when the budget crosses 50%', async () => {
  const hook = await startWebhook();
  const g = await startOrgGate({
    budgets: [{ scope: 'team:eval', window: 'day', tokens: 600 }],
    alerts: `alerts: { thresholds: [50], webhook: ${q(hook.url + '/tokengate/alerts')} }`,
  });
  let used = 0;
  for (let i = 0; i < 60 && used < 300; i++) {
    assert.equal(hook.received.length, 0, `an alert at ${used} of 600 tokens`);
    const r = await send(g, EP.chat, bearer(KEYS.judge));
    assert.equal(r.status, 200, r.text);
    used = (await budgetOf(g, 'team:eval')).used_tokens;
  }
  assert.ok(used >= 300, `only ${used} tokens used`);
  const got = await hook.waitFor(1);
  const a = got[0];
  assert.equal(a.method, 'POST');
  assert.equal(a.path, '/tokengate/alerts');
  assert.match(a.headers['content-type'], /application\/json/);
  // one request a connection: an idle kept-alive one would outlive the gate's event loop
  assert.equal(a.headers.connection, 'close');
  assert.ok(a.json, a.body);
  assert.equal(a.json.alert, 'budget_threshold');
  assert.equal(a.json.scope, 'team:eval');
  assert.equal(a.json.window, 'day');
  assert.equal(a.json.percent, 50);
  assert.equal(a.json.unit, 'tokens');
  assert.equal(a.json.limit, 600);
  assert.ok(a.json.used >= 300 && a.json.used <= used, a.body);
  assert.match(g.proc.stderr, /tokengate: alert: team:eval day budget at 50%/);
  // more spend above the threshold sends nothing more
  for (let i = 0; i < 3; i++) {
    const r = await send(g, EP.chat, bearer(KEYS.judge));
    assert.ok(r.status === 200 || r.status === 429, r.text);
  }
  await sleep(ms(500));
  assert.equal(hook.received.length, 1, JSON.stringify(hook.received.map((x) => x.json)));
});

/** Spends on team:eval (600 tokens a day) until it is past half; returns what it used. */
async function spendPastHalf(g, hook) {
  let used = 0;
  for (let i = 0; i < 60 && used < 300; i++) {
    if (hook) assert.equal(hook.received.length, 0, `an alert at ${used} of 600 tokens`);
    const r = await send(g, EP.chat, bearer(KEYS.judge));
    assert.equal(r.status, 200, r.text);
    used = (await budgetOf(g, 'team:eval')).used_tokens;
  }
  assert.ok(used >= 300, `only ${used} tokens used`);
  return used;
}

test('alerts: an https webhook, its certificate checked against upstream.ca_file', async () => {
  const pki = makeTestPKI(tempDir('tg-hook-pki-'));
  const hook = await startWebhook({ cert: pki.cert, key: pki.key });
  assert.match(hook.url, /^https:/);
  const g = await startOrgGate({
    budgets: [{ scope: 'team:eval', window: 'day', tokens: 600 }],
    alerts: `alerts: { thresholds: [50], webhook: ${q(hook.url + '/services/T0/B0/hook-secret')} }\n` +
      `upstream: { ca_file: ${q(pki.ca)} }`,
  });
  const used = await spendPastHalf(g, hook);
  const [a] = await hook.waitFor(1);
  assert.equal(a.encrypted, true);
  assert.equal(a.method, 'POST');
  assert.equal(a.path, '/services/T0/B0/hook-secret');
  assert.equal(a.headers.host, `127.0.0.1:${hook.port}`);
  assert.equal(a.json.alert, 'budget_threshold');
  assert.equal(a.json.scope, 'team:eval');
  assert.equal(a.json.percent, 50);
  assert.ok(a.json.used >= 300 && a.json.used <= used, a.body);
  assert.doesNotMatch(g.proc.stderr, /alert webhook/);
});

test('alerts: an https webhook whose certificate is for another name gets nothing, and stderr says why', async () => {
  const pki = makeTestPKI(tempDir('tg-hook-pki-'));
  // a certificate for other.example, served at 127.0.0.1: the gate must refuse it
  const hook = await startWebhook({ cert: pki.otherCert, key: pki.otherKey });
  const g = await startOrgGate({
    budgets: [{ scope: 'team:eval', window: 'day', tokens: 600 }],
    alerts: `alerts: { thresholds: [50], webhook: ${q(hook.url + '/services/T0/B0/hook-secret')} }\n` +
      `upstream: { ca_file: ${q(pki.ca)} }`,
  });
  await spendPastHalf(g, hook);
  const deadline = Date.now() + ms(15000);
  while (!/alert webhook/.test(g.proc.stderr) && Date.now() < deadline) await sleep(50);
  assert.match(g.proc.stderr, /tokengate: alert: team:eval day budget at 50%/);
  assert.match(g.proc.stderr,
    new RegExp(`tokengate: alert webhook https://127\\.0\\.0\\.1:${hook.port}: [^\n]*; TLS: certificate verify failed, alert dropped`));
  // the path of a webhook is often its secret: never printed
  assert.ok(!g.proc.stderr.includes('hook-secret'), g.proc.stderr);
  assert.equal(hook.received.length, 0);
  // the budget path is untouched: the next request is still answered
  const r = await send(g, EP.chat, bearer(KEYS.judge));
  assert.ok(r.status === 200 || r.status === 429, r.text);
});

test('alerts: a webhook that refuses connections is reported, and requests go on', async () => {
  const closed = await startWebhook();
  const port = closed.port;
  await closed.close();
  const g = await startOrgGate({
    budgets: [{ scope: 'team:eval', window: 'day', tokens: 600 }],
    alerts: `alerts: { thresholds: [50], webhook: ${q(`http://127.0.0.1:${port}/hook`)} }`,
  });
  await spendPastHalf(g);
  const deadline = Date.now() + ms(15000);
  while (!/alert webhook/.test(g.proc.stderr) && Date.now() < deadline) await sleep(50);
  assert.match(g.proc.stderr,
    new RegExp(`tokengate: alert webhook http://127\\.0\\.0\\.1:${port}: cannot connect \\(refused, unreachable or timed out\\), alert dropped`));
  const r = await send(g, EP.chat, bearer(KEYS.judge));
  assert.ok(r.status === 200 || r.status === 429, r.text);
});

// ---- config errors --------------------------------------------------------------------------

test('config errors: --check names a budget on an unknown scope, and keys without an org', async () => {
  const dir = tempDir('tg-budget-conf-');
  const check = (name, text) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return runGate(['serve', '--config', p, '--check']);
  };
  const good = check('good.yaml', orgYaml(dir, { providerKeys: false,
    budgets: [{ scope: 'team:eval', window: 'day', tokens: 100 }] }));
  assert.equal(good.status, 0, good.stderr);

  const unknown = check('unknown-scope.yaml', orgYaml(dir, { providerKeys: false,
    budgets: [{ scope: 'team:nope', window: 'day', tokens: 100 }] }));
  assert.notEqual(unknown.status, 0);
  assert.match(unknown.stderr, /unknown-scope\.yaml/);
  assert.match(unknown.stderr, /no scope 'team:nope'/);

  const noOrg = orgYaml(dir, { providerKeys: false }).split('\n')
    .filter((l) => !/^(org|departments|  research|    teams|      (search|eval)|ledger|admin):?/.test(l))
    .join('\n');
  assert.ok(noOrg.includes('keys:') && !noOrg.includes('org:'), noOrg);
  const keys = check('keys-no-org.yaml', noOrg);
  assert.notEqual(keys.status, 0);
  assert.match(keys.stderr, /keys-no-org\.yaml/);
  assert.match(keys.stderr, /need an 'org'/);
  // the error never shows a secret
  for (const k of Object.values(KEYS)) assert.ok(!keys.stderr.includes(k), keys.stderr);
});
