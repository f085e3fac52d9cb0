// Tier routing end to end (issue 12): rules of every kind, the context-window guard, fallback on
// each fault of the mock, the circuit breaker, the latency-aware choice, the canary split,
// downgrade under budget pressure, the records (log `route`, ledger rows, `tokengate logs
// --tier --rule`, /metrics) and configs refused at load. Each describe() runs its own gate (and
// mock) on loopback ports; what a platform engineer would check is checked: the status, the
// model the mock received (/_mock/last, /_mock/stats by_model), the record's route object, the
// ledger's rows and their charges against the mock's usage, /status and /metrics.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, tempDir, runGate, newId, ms, sleep, closedPort,
  waitLogRecord, gateAdminPort, adminRequest, parseSSE,
} from './harness.mjs';

const ADMIN_TOKEN = 'tga-routing-test-admin-token-01';
const ENV = { TG_RT_ADMIN_TOKEN: ADMIN_TOKEN };
const q = (s) => JSON.stringify(s);

after(cleanup);

// ---- helpers -------------------------------------------------------------------------------

const user = (text) => [{ role: 'user', content: text }];
const bearer = (k) => (k ? { authorization: `Bearer ${k}` } : {});

/** A text of about n tokens that no text rule matches. */
function filler(n) {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'theta', 'kappa'];
  const out = [];
  for (let i = 0; i < n; i++) out.push(words[i % words.length]);
  return out.join(' ');
}

/**
 * The lines of a gate config: listen, one worker, the request log, admin, providers (name ->
 * {url, format}), models (name -> YAML flow text), then the extra lines.
 */
function configText(dir, { providers, models, extra = [], org = true }) {
  const lines = [
    'listen: 127.0.0.1:0',
    'workers: 1',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'admin: { listen: 127.0.0.1:0, token_env: TG_RT_ADMIN_TOKEN }',
    'providers:',
  ];
  for (const [name, p] of Object.entries(providers))
    lines.push(`  ${name}: { base_url: ${q(p.url)}, format: ${p.format} }`);
  lines.push('models:');
  for (const [name, m] of Object.entries(models)) lines.push(`  ${name}: ${m}`);
  if (org) lines.push(`ledger: { path: ${q(path.join(dir, 'ledger.db'))} }`);
  lines.push(...extra);
  return lines.join('\n') + '\n';
}

/** Starts a gate on configText; returns it with .admin (port) and .ledgerPath. */
async function startRoutingGate(opts) {
  const dir = tempDir('tg-route-');
  const gate = await startGate({ configText: configText(dir, opts), dir, env: ENV });
  gate.admin = await gateAdminPort(gate);
  gate.ledgerPath = path.join(dir, 'ledger.db');
  return gate;
}

function admin(gate, method, p, body) {
  return adminRequest(gate.admin, method, p, { token: ADMIN_TOKEN, body });
}

async function metrics(gate) {
  const r = await admin(gate, 'GET', '/metrics');
  assert.equal(r.status, 200, r.text);
  return r.text;
}

/** The value of one /metrics sample (labels in any order), or undefined. */
function metric(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_]+)(?:\{(.*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const l of (m[2] || '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) have[l[1]] = l[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** /admin/v1/status: the gate's /status document. */
async function status(gate) {
  const r = await admin(gate, 'GET', '/admin/v1/status');
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function targetState(st, name) {
  return (st.targets || []).find((t) => t.target === name);
}

/** `tokengate logs --db LEDGER --format json ARGS`, parsed. */
function ledgerRows(gate, args = []) {
  const r = runGate(['logs', '--db', gate.ledgerPath, '--format', 'json', '--limit', '10000',
    ...args]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Polls the ledger until it holds rows with these ids; returns a Map id -> row. */
async function ledgerRowsFor(gate, ids, timeoutMs = ms(15000)) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const byId = new Map(ledgerRows(gate).map((r) => [r.id, r]));
    if (ids.every((id) => byId.has(id))) return byId;
    if (Date.now() > deadline)
      throw new Error(`ledger: missing ${ids.filter((id) => !byId.has(id)).join(', ')}`);
    await sleep(50);
  }
}

/** The ledger rows of one request: its own and its attempts' ("ID/N"). */
function rowsOf(gate, id) {
  return ledgerRows(gate).filter((r) => r.id === id || r.id.startsWith(`${id}/`));
}

/**
 * Every /_mock/usage entry noted under x-request-id id (a request sent again after a fallback
 * carries the same id, and the mock notes each: the JSON then has the key more than once).
 */
async function mockUsages(mock, id) {
  const r = await mock.direct('/_mock/usage');
  assert.equal(r.status, 200);
  const out = [];
  const re = new RegExp(`${q(id).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\{[^{}]*\\})`, 'g');
  for (const m of r.text.matchAll(re)) out.push(JSON.parse(m[1]));
  return out;
}

async function byModel(mock) {
  return (await mock.stats()).by_model || {};
}

/** The difference of two by_model snapshots, only the models that moved. */
function moved(before, after) {
  const d = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] || 0)) d[k] = v - (before[k] || 0);
  return d;
}

/**
 * Sends a chat request through the gate and returns {r, id, rec, sent}: the response, the
 * request id, the log record and the model names the mock received for it.
 */
async function send(gate, mock, body, headers = {}, opts = {}) {
  const id = newId('rt');
  const b0 = await byModel(mock);
  const r = await gate.post(opts.path || '/v1/chat/completions', body,
    { 'x-request-id': id, ...headers }, { timeoutMs: ms(30000) });
  const rec = await gate.logRecord(id, ms(10000));
  const sent = moved(b0, await byModel(mock));
  return { r, id, rec, sent };
}

/** The agents' used tokens in the day window (admin usage of agent:NAME). */
async function usedTokens(gate, agent) {
  const r = await admin(gate, 'GET', `/admin/v1/budgets?scope=agent:${agent}&window=day&all=1`);
  assert.equal(r.status, 200, r.text);
  return r.json.budgets[0].used_tokens;
}

// ---- 1, 2, 8: rules, the context guard, logs and metrics ------------------------------------

describe('routing rules, the context guard and the records', () => {
  const KEYS = {
    crawler: 'tg-rt-crawler-key-000001',
    writer: 'tg-rt-writer-key-0000002',
    judge: 'tg-rt-judge-key-00000003',
    grader: 'tg-rt-grader-key-0000004',
    bot: 'tg-rt-bot-key-0000000005',
  };
  let mock, gate, small;

  before(async () => {
    mock = await startMock();
    const price = (i, o) => `price: { input: ${i}, output: ${o} }`;
    gate = await startRoutingGate({
      providers: { 'mock-openai': { url: `${mock.url}/v1`, format: 'openai' } },
      models: {
        'gpt-4o-mini': `{ provider: mock-openai, ${price(0.15, 0.6)} }`,
        'gpt-4o': `{ provider: mock-openai, ${price(2.5, 10)} }`,
        'gpt-4.1': `{ provider: mock-openai, ${price(2, 8)} }`,
        'small-a': `{ provider: mock-openai, ${price(0.1, 0.4)}, context_window: 200, encoding: o200k_base }`,
        'small-b': `{ provider: mock-openai, ${price(0.2, 0.8)}, context_window: 600, encoding: o200k_base }`,
      },
      extra: [
        'org: acme',
        'departments:',
        '  research:',
        '    teams:',
        '      search: { agents: [crawler, writer] }',
        '      eval: { agents: [judge, grader] }',
        '  ops:',
        '    teams:',
        '      infra: { agents: [bot] }',
        'keys:',
        ...Object.entries(KEYS).map(([a, k]) => `  ${k}: ${a}`),
        'tiers:',
        '  cheap: [gpt-4o-mini]',
        '  medium: [gpt-4o]',
        '  expensive: [gpt-4.1]',
        '  tight: [small-a, small-b]',
        'routing:',
        '  aliases: { auto: medium, fit: tight, canary: medium }',
        '  rules:',
        '    - { name: near-budget, match: { model: auto, budget_above: 80 }, route: { tier: down } }',
        '    - { name: hdr-exact, match: { model: auto, header: { x-tokengate-priority: high } }, route: { tier: expensive } }',
        `    - { name: hdr-regex, match: { model: auto, header: { x-route: { regex: '^(urgent|asap)$' } } }, route: { target: gpt-4.1 } }`,
        '    - { name: writer, match: { model: auto, agent: writer }, route: { tier: expensive } }',
        '    - { name: eval-4o, match: { model: gpt-4o, team: eval }, route: { tier: cheap } }',
        '    - { name: ops, match: { model: auto, department: ops }, route: { tier: cheap } }',
        '    - { name: tools, match: { model: auto, tools: true }, route: { tier: expensive } }',
        '    - { name: images, match: { model: auto, images: true }, route: { tier: expensive } }',
        '    - { name: json, match: { model: auto, json_output: true }, route: { tier: cheap } }',
        '    - { name: long, match: { model: auto, input_tokens: { min: 1000 } }, route: { tier: expensive } }',
        '    - { name: mid, match: { model: auto, input_tokens: { min: 300, max: 999 } }, route: { tier: cheap } }',
        '    - { name: many, match: { model: auto, messages: { min: 6, max: 8 } }, route: { tier: cheap } }',
        `    - { name: code, match: { model: auto, last_user: { regex: '\`\`\`|\\bdef\\s+\\w+\\(' } }, route: { tier: expensive } }`,
        '    - { name: chit, match: { model: auto, last_user: { keywords: [thanks, hello] } }, route: { tier: cheap } }',
        '    - { name: sys, match: { model: auto, system: { keywords: [classifier] } }, route: { tier: cheap } }',
        '    - { name: split, match: { model: canary }, route: { split: [ { target: gpt-4o-mini, percent: 50 }, { target: gpt-4.1, percent: 50 } ] } }',
      ],
    });
  });

  const sendAs = (agent, body, headers = {}) =>
    send(gate, mock, body, { ...bearer(KEYS[agent]), ...headers });
  const auto = (extra = {}) => ({ model: 'auto', messages: user('Say something short.'), ...extra });

  /** Checks the request went to target by rule (null: none) in tier, and the mock saw it. */
  function assertRoute(x, { target, tier, rule, via, asked = 'auto' }) {
    assert.equal(x.r.status, 200, x.r.text);
    assert.deepEqual(x.sent, { [target]: 1 }, `the mock received: ${JSON.stringify(x.sent)}`);
    const rt = x.rec.route;
    assert.ok(rt, `a route object in ${JSON.stringify(x.rec)}`);
    assert.equal(rt.asked, asked);
    assert.equal(rt.target, target);
    assert.equal(rt.tier, tier ?? undefined);
    assert.equal(rt.rule, rule ?? undefined);
    if (via) assert.equal(rt.via, via);
    assert.deepEqual(rt.attempts, []);
    assert.equal(x.rec.status, 200);
  }

  test('no rule matches: the alias\'s tier, and the provider gets the target\'s name', async () => {
    const x = await sendAs('crawler', auto());
    assertRoute(x, { target: 'gpt-4o', tier: 'medium', rule: null, via: 'alias' });
    const last = await mock.last();
    assert.equal(JSON.parse(last.body).model, 'gpt-4o');
  });

  test('tier:NAME names a tier without an alias', async () => {
    const x = await sendAs('crawler', auto({ model: 'tier:expensive' }));
    assertRoute(x, { target: 'gpt-4.1', tier: 'expensive', rule: null, asked: 'tier:expensive' });
  });

  test('header: an exact value, and a regex', async () => {
    assertRoute(await sendAs('crawler', auto(), { 'x-tokengate-priority': 'high' }),
      { target: 'gpt-4.1', tier: 'expensive', rule: 'hdr-exact', via: 'rule' });
    // the exact rule wants exactly "high"
    assertRoute(await sendAs('crawler', auto(), { 'x-tokengate-priority': 'higher' }),
      { target: 'gpt-4o', tier: 'medium', rule: null });
    // a target, not a tier: no tier in the record
    assertRoute(await sendAs('crawler', auto(), { 'x-route': 'asap' }),
      { target: 'gpt-4.1', tier: null, rule: 'hdr-regex' });
    assertRoute(await sendAs('crawler', auto(), { 'x-route': 'not urgent' }),
      { target: 'gpt-4o', tier: 'medium', rule: null });
  });

  test('agent, team and department', async () => {
    assertRoute(await sendAs('writer', auto()),
      { target: 'gpt-4.1', tier: 'expensive', rule: 'writer' });
    assertRoute(await sendAs('bot', auto()), { target: 'gpt-4o-mini', tier: 'cheap', rule: 'ops' });
    // team eval's gpt-4o is moved by the rule that names it; the same from team search is not
    assertRoute(await sendAs('judge', auto({ model: 'gpt-4o' })),
      { target: 'gpt-4o-mini', tier: 'cheap', rule: 'eval-4o', asked: 'gpt-4o' });
    const untouched = await sendAs('crawler', auto({ model: 'gpt-4o' }));
    assertRoute(untouched, { target: 'gpt-4o', tier: null, rule: null, via: 'model', asked: 'gpt-4o' });
  });

  test('a concrete model without a rule goes where it went before routing', async () => {
    // every rule but eval-4o asks for auto: gpt-4o-mini with tools, keywords and a long input
    // stays gpt-4o-mini
    const x = await sendAs('writer', {
      model: 'gpt-4o-mini', messages: user(`hello thanks ${filler(1200)}`),
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
    }, { 'x-tokengate-priority': 'high' });
    assertRoute(x, { target: 'gpt-4o-mini', tier: null, rule: null, via: 'model', asked: 'gpt-4o-mini' });
  });

  test('tools, images and JSON output present', async () => {
    const tool = { type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } };
    assertRoute(await sendAs('crawler', auto({ tools: [tool] })),
      { target: 'gpt-4.1', tier: 'expensive', rule: 'tools' });
    const image = [{ role: 'user', content: [
      { type: 'text', text: 'What is in it?' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
    ] }];
    assertRoute(await sendAs('crawler', auto({ messages: image })),
      { target: 'gpt-4.1', tier: 'expensive', rule: 'images' });
    assertRoute(await sendAs('crawler', auto({ response_format: { type: 'json_object' } })),
      { target: 'gpt-4o-mini', tier: 'cheap', rule: 'json' });
    assertRoute(await sendAs('crawler', auto({ response_format: { type: 'json_schema',
      json_schema: { name: 'x', schema: { type: 'object' } } } })),
    { target: 'gpt-4o-mini', tier: 'cheap', rule: 'json' });
    assertRoute(await sendAs('crawler', auto({ response_format: { type: 'text' } })),
      { target: 'gpt-4o', tier: 'medium', rule: null });
  });

  test('input tokens: min and max bounds', async () => {
    const long = await sendAs('crawler', auto({ messages: user(filler(1500)) }));
    assertRoute(long, { target: 'gpt-4.1', tier: 'expensive', rule: 'long' });
    assert.ok(long.rec.count.input >= 1000, `counted ${long.rec.count.input}`);
    const mid = await sendAs('crawler', auto({ messages: user(filler(500)) }));
    assertRoute(mid, { target: 'gpt-4o-mini', tier: 'cheap', rule: 'mid' });
    assert.ok(mid.rec.count.input >= 300 && mid.rec.count.input <= 999, `counted ${mid.rec.count.input}`);
    const short = await sendAs('crawler', auto({ messages: user(filler(200)) }));
    assertRoute(short, { target: 'gpt-4o', tier: 'medium', rule: null });
    assert.ok(short.rec.count.input < 300, `counted ${short.rec.count.input}`);
  });

  test('messages count', async () => {
    const turns = (n) => Array.from({ length: n }, (_, i) =>
      ({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i}` }));
    assertRoute(await sendAs('crawler', auto({ messages: turns(7) })),
      { target: 'gpt-4o-mini', tier: 'cheap', rule: 'many' });
    assertRoute(await sendAs('crawler', auto({ messages: turns(9) })),
      { target: 'gpt-4o', tier: 'medium', rule: null });
    assertRoute(await sendAs('crawler', auto({ messages: turns(5) })),
      { target: 'gpt-4o', tier: 'medium', rule: null });
  });

  test('last user message: regex and keywords; system keywords', async () => {
    assertRoute(await sendAs('crawler', auto({ messages: user('fix it:\n```c\nint x;\n```') })),
      { target: 'gpt-4.1', tier: 'expensive', rule: 'code' });
    assertRoute(await sendAs('crawler', auto({ messages: user('what does def parse(s) do') })),
      { target: 'gpt-4.1', tier: 'expensive', rule: 'code' });
    assertRoute(await sendAs('crawler', auto({ messages: user('Hello there!') })),
      { target: 'gpt-4o-mini', tier: 'cheap', rule: 'chit' });
    // keywords are whole words; only the last user message counts
    assertRoute(await sendAs('crawler', auto({ messages: user('thanksgiving plans') })),
      { target: 'gpt-4o', tier: 'medium', rule: null });
    assertRoute(await sendAs('crawler', auto({ messages: [
      { role: 'user', content: 'thanks' }, { role: 'assistant', content: 'ok' },
      { role: 'user', content: 'now the report' }] })),
    { target: 'gpt-4o', tier: 'medium', rule: null });
    assertRoute(await sendAs('crawler', auto({ messages: [
      { role: 'system', content: 'You are a Classifier of tickets.' },
      { role: 'user', content: 'printer broken' }] })),
    { target: 'gpt-4o-mini', tier: 'cheap', rule: 'sys' });
  });

  test('the first rule that matches wins', async () => {
    // hdr-exact, tools and chit all hold: hdr-exact is listed first
    const tool = { type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } };
    assertRoute(await sendAs('crawler', auto({ tools: [tool], messages: user('hello') }),
      { 'x-tokengate-priority': 'high' }),
    { target: 'gpt-4.1', tier: 'expensive', rule: 'hdr-exact' });
    // json (cheap) before long (expensive)
    assertRoute(await sendAs('crawler', auto({ messages: user(filler(1200)),
      response_format: { type: 'json_object' } })),
    { target: 'gpt-4o-mini', tier: 'cheap', rule: 'json' });
  });

  test('budget_above: an agent near its budget goes down a tier (tier: down)', async () => {
    // grader spends, then gets a budget it has used 85% of (spend before the limit counts)
    const before = await sendAs('grader', auto());
    assertRoute(before, { target: 'gpt-4o', tier: 'medium', rule: null });
    for (let i = 0; i < 3; i++) {
      const r = await gate.post('/v1/chat/completions', { model: 'gpt-4o-mini',
        messages: user(filler(100)) }, { ...bearer(KEYS.grader), 'x-mock-tokens': '100' });
      assert.equal(r.status, 200, r.text);
    }
    const used = await usedTokens(gate, 'grader');
    assert.ok(used > 300, `used ${used}`);
    const limit = Math.ceil(used / 0.85);
    const put = await admin(gate, 'PUT', '/admin/v1/budgets',
      { scope: 'agent:grader', window: 'day', tokens: limit, usd: null });
    assert.equal(put.status, 200, put.text);
    const down = await sendAs('grader', auto({ max_tokens: 10 }));
    assertRoute(down, { target: 'gpt-4o-mini', tier: 'cheap', rule: 'near-budget' });
    // a rule's tier is shifted too: the header rule's expensive becomes medium
    const shifted = await sendAs('grader', auto({ max_tokens: 10 }), { 'x-tokengate-priority': 'high' });
    assertRoute(shifted, { target: 'gpt-4o', tier: 'medium', rule: 'hdr-exact' });
    // a concrete target is not shifted
    const target = await sendAs('grader', auto({ max_tokens: 10 }), { 'x-route': 'urgent' });
    assertRoute(target, { target: 'gpt-4.1', tier: null, rule: 'hdr-regex' });
    // below the threshold (limit raised): no shift
    const raised = await admin(gate, 'PUT', '/admin/v1/budgets',
      { scope: 'agent:grader', window: 'day', tokens: limit * 10, usd: null });
    assert.equal(raised.status, 200, raised.text);
    assertRoute(await sendAs('grader', auto({ max_tokens: 10 })),
      { target: 'gpt-4o', tier: 'medium', rule: null });
  });

  test('context window: a target too small is skipped; none fits: 400 with the numbers, nothing forwarded', async () => {
    // about 300 input tokens: small-a (200) is skipped, small-b (600) takes it
    const body = { model: 'fit', messages: user(filler(300)), max_tokens: 50 };
    const x = await sendAs('crawler', body);
    assertRoute(x, { target: 'small-b', tier: 'tight', rule: null, asked: 'fit' });
    assert.ok(x.rec.count.input + 50 > 200 && x.rec.count.input + 50 <= 600, `${x.rec.count.input}`);
    // the request's own cap is the allowance: 400 more do not fit small-b
    const big = { model: 'fit', messages: user(filler(300)), max_tokens: 400 };
    const c0 = (await mock.stats()).requests;
    const id = newId('nofit');
    const r = await gate.post('/v1/chat/completions', big,
      { ...bearer(KEYS.crawler), 'x-request-id': id });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.type, 'invalid_request_error', r.text);
    const m = r.json.error.message.match(/the request has (\d+) input tokens and asks for (\d+) output; the largest context window among tight's targets \(small-b\) is 600/);
    assert.ok(m, r.json.error.message);
    assert.equal(Number(m[1]), x.rec.count.input, 'the input tokens as counted');
    assert.equal(Number(m[2]), 400);
    assert.equal((await mock.stats()).requests, c0, 'nothing forwarded');
    const rec = await gate.logRecord(id);
    assert.equal(rec.status, 400);
    assert.match(rec.error, /context window/);
    assert.equal(rec.route, undefined, 'not routed');
    const rows = await ledgerRowsFor(gate, [id]);
    assert.equal(rows.get(id).tokens_charged, 0);
  });

  test('canary split with agents: each agent\'s requests land on one target', async () => {
    const seen = {};
    for (const agent of Object.keys(KEYS)) {
      seen[agent] = new Set();
      for (let i = 0; i < 6; i++) {
        const x = await sendAs(agent, { model: 'canary', messages: user(`question ${i}`) });
        assert.equal(x.r.status, 200, x.r.text);
        assert.equal(x.rec.route.rule, 'split');
        assert.equal(Object.keys(x.sent).length, 1);
        assert.equal(Object.keys(x.sent)[0], x.rec.route.target);
        seen[agent].add(x.rec.route.target);
      }
    }
    for (const [agent, s] of Object.entries(seen))
      assert.equal(s.size, 1, `${agent} went to ${[...s].join(' and ')}`);
  });

  test('tokengate logs --tier T --rule R, and /metrics tokengate_route_requests_total', async () => {
    // a few more, so that the counts are not all 1
    for (let i = 0; i < 3; i++)
      assert.equal((await sendAs('crawler', auto({ messages: user(`hello ${i}`) }))).r.status, 200);
    const all = ledgerRows(gate).filter((r) => r.decision === 'admitted');
    const want = (f) => all.filter(f).map((r) => r.id).sort();
    const ids = (rows) => rows.map((r) => r.id).sort();

    const cheapChit = ids(ledgerRows(gate, ['--tier', 'cheap', '--rule', 'chit']));
    assert.ok(cheapChit.length >= 4, `${cheapChit.length}`);
    assert.deepEqual(cheapChit, want((r) => r.tier === 'cheap' && r.rule === 'chit'));
    const expensive = ids(ledgerRows(gate, ['--tier', 'expensive']));
    assert.deepEqual(expensive, want((r) => r.tier === 'expensive'));
    assert.ok(expensive.length >= 5);
    const code = ledgerRows(gate, ['--rule', 'code']);
    assert.equal(code.length, 2);
    assert.ok(code.every((r) => r.rule === 'code' && r.tier === 'expensive' &&
      r.served_model === 'gpt-4.1' && r.model === 'auto'), JSON.stringify(code));
    assert.deepEqual(ledgerRows(gate, ['--tier', 'no-such-tier']), []);
    // csv has the columns
    const csv = runGate(['logs', '--db', gate.ledgerPath, '--format', 'csv', '--rule', 'code']);
    assert.equal(csv.status, 0, csv.stderr);
    const head = csv.stdout.split('\n')[0].split(',');
    for (const c of ['rule', 'tier', 'attempts', 'translation']) assert.ok(head.includes(c), head.join(','));

    // /metrics counts by tier, target and rule, as the ledger does
    const text = await metrics(gate);
    const groups = new Map();
    for (const r of all) {
      const k = `${r.tier ?? ''}|${r.served_model}|${r.rule ?? ''}`;
      groups.set(k, (groups.get(k) || 0) + 1);
    }
    for (const [k, n] of groups) {
      const [tier, target, rule] = k.split('|');
      assert.equal(metric(text, 'tokengate_route_requests_total', { tier, target, rule }), n,
        `tokengate_route_requests_total{tier="${tier}",target="${target}",rule="${rule}"}`);
    }
    const st = await status(gate);
    assert.equal(st.routing.requests_by_rule.chit, all.filter((r) => r.rule === 'chit').length);
  });
});

// ---- 3: fallback on each fault mode of the mock ---------------------------------------------

/**
 * A provider that answers every request with a 200 head and half a JSON body, then resets the
 * connection (the mock resets before its head). Returns {port, requests}, closed at exit.
 */
function startCutUpstream() {
  const st = { requests: 0 };
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number((buf.match(/content-length: *(\d+)/i) || [])[1] || 0);
      if (buf.length < end + 4 + len) return;
      st.requests++;
      sock.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n' +
        '{"id":"chatcmpl-cut","object":"chat.completion","choices":[{"index":0,"message":' +
        '{"role":"assistant","content":"half of it', () => setTimeout(() => sock.resetAndDestroy(), 50));
    });
    sock.on('error', () => {});
  });
  server.unref(); // nothing to close: it goes with the test process
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    st.port = server.address().port;
    resolve(st);
  }));
}

describe('fallback to the next target', () => {
  const KEY = 'tg-rt-fallback-key-00001';
  let mock, gate, deadPort, cut;
  const price = 'price: { input: 1.00, output: 2.00 }';

  before(async () => {
    mock = await startMock();
    deadPort = await closedPort();
    cut = await startCutUpstream();
    gate = await startRoutingGate({
      providers: {
        'mock-openai': { url: `${mock.url}/v1`, format: 'openai' },
        'dead-openai': { url: `http://127.0.0.1:${deadPort}/v1`, format: 'openai' },
        'cut-openai': { url: `http://127.0.0.1:${cut.port}/v1`, format: 'openai' },
      },
      models: {
        'f-dead': `{ provider: dead-openai, ${price} }`,
        'f-cut': `{ provider: cut-openai, ${price} }`,
        'f-a': `{ provider: mock-openai, ${price} }`,
        'f-b': `{ provider: mock-openai, ${price} }`,
        'f-c': `{ provider: mock-openai, ${price} }`,
        'f-d': `{ provider: mock-openai, ${price} }`,
        'f-up': `{ provider: mock-openai, ${price} }`,
      },
      extra: [
        'timeouts: { upstream_connect: 2s, upstream_first_byte: 1s, stream_idle: 2s }',
        'org: acme',
        'departments: { d: { teams: { t: { agents: [fb] } } } }',
        `keys: { ${KEY}: fb }`,
        'tiers:',
        '  conn: [f-dead, f-b]',
        '  cut: [f-cut, f-b]',
        '  fb: [f-a, f-b, f-c]',
        '  four: [f-a, f-b, f-c, f-d]',
        '  pair: [f-a, f-b]',
        '  top: [f-up]',
        'routing:',
        '  aliases: { dead-first: conn, cut-first: cut, fall: fb, four: four, pair: pair }',
        '  attempts: 3',
        '  breaker: { failures: 1000, error_ratio: 100, min_requests: 100000 }',
        '  rules:',
        '    - { name: climb, match: { model: pair, header: { x-climb: yes } }, route: { tier: pair, tier_up: true } }',
      ],
    });
  });

  const ask = (model, extra = {}) => ({ model, messages: user('fallback, please'), ...extra });
  const sendFb = (body, headers = {}) => send(gate, mock, body, { ...bearer(KEY), ...headers });
  const rule = (r) => mock.direct('/_mock/models',
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });

  /**
   * Checks a request answered by `by` after the attempts `given` ([{target, status, reason}]):
   * the log, the ledger (the answer's row, a "fallback" row for each attempt that cost
   * something, none for the others) and the budget against the mock's usage.
   */
  async function assertFellBack(x, by, given, used0) {
    assert.equal(x.r.status, 200, x.r.text);
    const rt = x.rec.route;
    assert.equal(rt.target, by, JSON.stringify(rt));
    assert.equal(rt.attempts.length, given.length, JSON.stringify(rt.attempts));
    given.forEach((g, i) => {
      const a = rt.attempts[i];
      assert.equal(a.target, g.target, JSON.stringify(a));
      assert.equal(a.status, g.status, JSON.stringify(a));
      assert.match(a.reason, g.reason, JSON.stringify(a));
      assert.equal(typeof a.tokens_charged, 'number');
    });
    assert.equal(x.rec.status, 200);
    const rows = await ledgerRowsFor(gate, [x.id]);
    const answer = rows.get(x.id);
    assert.equal(answer.decision, 'admitted');
    assert.equal(answer.served_model, by);
    assert.deepEqual(JSON.parse(answer.attempts).map((a) => a.target), given.map((g) => g.target));
    // the answer's charge is the mock's usage of the answer
    const usages = await mockUsages(mock, x.id);
    const done = usages.filter((u) => u.complete);
    assert.equal(done.length, 1, JSON.stringify(usages));
    assert.equal(answer.tokens_charged, done[0].input + done[0].output);
    // an attempt that cost something is a ledger row of its own, "ID/N"; the others are not
    await sleep(100);
    const own = rowsOf(gate, x.id).filter((r) => r.id !== x.id);
    const costly = rt.attempts.map((a, i) => ({ ...a, n: i + 1 })).filter((a) => a.tokens_charged > 0);
    assert.deepEqual(own.map((r) => r.id).sort(), costly.map((a) => `${x.id}/${a.n}`).sort());
    for (const r of own) {
      assert.equal(r.decision, 'fallback');
      const a = costly.find((c) => `${x.id}/${c.n}` === r.id);
      assert.equal(r.tokens_charged, a.tokens_charged);
      assert.equal(r.served_model, a.target);
    }
    // the budget: every row of the request, no more
    const charged = answer.tokens_charged + own.reduce((s, r) => s + r.tokens_charged, 0);
    assert.equal(await usedTokens(gate, 'fb') - used0, charged, 'the agent charged its rows');
    assert.equal(charged, answer.tokens_charged +
      rt.attempts.reduce((s, a) => s + a.tokens_charged, 0));
    return { answer, own, usages };
  }

  test('connect failure: the next target answers; the attempt cost nothing', async () => {
    const used0 = await usedTokens(gate, 'fb');
    const x = await sendFb(ask('dead-first'));
    assert.deepEqual(x.sent, { 'f-b': 1 });
    const { own } = await assertFellBack(x, 'f-b', [{ target: 'f-dead', status: 0, reason: /./ }], used0);
    assert.equal(own.length, 0);
    assert.equal(x.rec.route.attempts[0].tokens_charged, 0);
  });

  for (const status of [500, 503, 529]) {
    test(`a ${status}: the next target answers; the error cost nothing`, async () => {
      const set = await rule({ model: 'f-a', status, times: 1 });
      assert.equal(set.status, 200, set.text);
      const used0 = await usedTokens(gate, 'fb');
      const x = await sendFb(ask('fall'));
      assert.deepEqual(x.sent, { 'f-a': 1, 'f-b': 1 });
      await assertFellBack(x, 'f-b', [{ target: 'f-a', status, reason: new RegExp(String(status)) }], used0);
      assert.equal(x.rec.route.attempts[0].tokens_charged, 0);
    });
  }

  test('a 429 with retry-after: the next target answers, and the limited one rests meanwhile', async () => {
    const set = await rule({ model: 'f-a', status: 429, retry_after: 2, times: 1 });
    assert.equal(set.status, 200, set.text);
    const used0 = await usedTokens(gate, 'fb');
    const x = await sendFb(ask('fall'));
    assert.deepEqual(x.sent, { 'f-a': 1, 'f-b': 1 });
    await assertFellBack(x, 'f-b', [{ target: 'f-a', status: 429, reason: /429/ }], used0);
    // within its retry-after f-a is not asked: f-b first
    const y = await sendFb(ask('fall'));
    assert.equal(y.r.status, 200);
    assert.deepEqual(y.sent, { 'f-b': 1 });
    assert.deepEqual(y.rec.route.attempts, []);
    const st = targetState(await status(gate), 'f-a');
    assert.ok(st && st.retry_after_s > 0, JSON.stringify(st));
    // after it, f-a again (bounded wait)
    const deadline = Date.now() + ms(10000);
    let z;
    do {
      await sleep(250);
      z = await sendFb(ask('fall'));
    } while (z.rec.route.target !== 'f-a' && Date.now() < deadline);
    assert.deepEqual(z.sent, { 'f-a': 1 });
  });

  test('a timeout (no first byte in time): the next target answers; the attempt is charged as a timeout is', async () => {
    // what the gate charges for the same timeout on its own (no fallback: a concrete model)
    await rule({ model: 'f-a', delay_ms: 2500, times: 1 });
    const alone = await sendFb(ask('f-a'));
    assert.equal(alone.r.status, 504, alone.r.text);
    const aloneRow = (await ledgerRowsFor(gate, [alone.id])).get(alone.id);

    await rule({ model: 'f-a', delay_ms: 2500, times: 1 });
    const used0 = await usedTokens(gate, 'fb');
    const t0 = Date.now();
    const x = await sendFb(ask('fall'));
    assert.ok(Date.now() - t0 >= 900, 'waited for upstream_first_byte');
    assert.deepEqual(x.sent, { 'f-a': 1, 'f-b': 1 });
    const { own } = await assertFellBack(x, 'f-b',
      [{ target: 'f-a', status: 0, reason: /./ }], used0);
    assert.equal(x.rec.route.attempts[0].tokens_charged, aloneRow.tokens_charged);
    assert.equal(own.length, aloneRow.tokens_charged > 0 ? 1 : 0);
  });

  test('a reset before any answer: the next target answers; the attempt cost nothing', async () => {
    await rule({ model: 'f-a', fault: 'reset', times: 1 });
    const used0 = await usedTokens(gate, 'fb');
    const x = await sendFb(ask('fall'));
    assert.deepEqual(x.sent, { 'f-a': 1, 'f-b': 1 });
    const { own } = await assertFellBack(x, 'f-b', [{ target: 'f-a', status: 0, reason: /reset/ }], used0);
    assert.equal(own.length, 0);
  });

  test('an answer cut after its head (not a stream): the next target answers; the attempt that cost something is a ledger row "ID/1"', async () => {
    // what the gate charges for the same cut answer on its own (no fallback: a concrete model)
    const alone = await sendFb(ask('f-cut'));
    assert.equal(alone.r.status, 502, alone.r.text);
    const aloneRow = (await ledgerRowsFor(gate, [alone.id])).get(alone.id);
    assert.ok(aloneRow.tokens_charged > 0, 'the provider had the prompt and answered: charged');

    const used0 = await usedTokens(gate, 'fb');
    const n0 = cut.requests;
    const x = await sendFb(ask('cut-first'));
    assert.equal(cut.requests - n0, 1);
    assert.deepEqual(x.sent, { 'f-b': 1 });
    const { own } = await assertFellBack(x, 'f-b', [{ target: 'f-cut', status: 200, reason: /./ }], used0);
    assert.equal(x.rec.route.attempts[0].tokens_charged, aloneRow.tokens_charged);
    assert.equal(own.length, 1);
    assert.equal(own[0].id, `${x.id}/1`);
    assert.equal(own[0].status, 200);
    assert.equal(own[0].cost_nusd, aloneRow.cost_nusd);
    assert.match(own[0].error, /./);
    assert.equal(x.rec.route.attempts[0].cost_usd, aloneRow.cost_nusd / 1e9);
  });

  test('attempts cap: at most routing.attempts targets; the last one\'s answer is relayed', async () => {
    for (const m of ['f-a', 'f-b', 'f-c', 'f-d']) {
      const set = await rule({ model: m, status: 503, times: 1 });
      assert.equal(set.status, 200, set.text);
    }
    const x = await sendFb(ask('four'));
    assert.equal(x.r.status, 503, x.r.text);
    assert.deepEqual(x.sent, { 'f-a': 1, 'f-b': 1, 'f-c': 1 }, 'f-d is never asked');
    assert.deepEqual(x.rec.route.attempts.map((a) => [a.target, a.status]),
      [['f-a', 503], ['f-b', 503]]);
    assert.equal(x.rec.route.target, 'f-c');
    assert.equal(x.rec.status, 503);
    await rule({ model: 'f-d' }); // its rule is not used up: remove it
  });

  test('tier_up: once the tier is used up, the next tier up', async () => {
    await rule([{ model: 'f-a', status: 500, times: 1 }, { model: 'f-b', status: 500, times: 1 }]);
    const used0 = await usedTokens(gate, 'fb');
    const x = await sendFb(ask('pair'), { 'x-climb': 'yes' });
    assert.deepEqual(x.sent, { 'f-a': 1, 'f-b': 1, 'f-up': 1 });
    await assertFellBack(x, 'f-up', [{ target: 'f-a', status: 500, reason: /500/ },
      { target: 'f-b', status: 500, reason: /500/ }], used0);
    assert.equal(x.rec.route.tier, 'top');
    assert.equal(x.rec.route.rule, 'climb');
    // without the rule (tier_up false): the tier's own last answer
    await rule([{ model: 'f-a', status: 500, times: 1 }, { model: 'f-b', status: 500, times: 1 }]);
    const y = await sendFb(ask('pair'));
    assert.equal(y.r.status, 500);
    assert.deepEqual(y.sent, { 'f-a': 1, 'f-b': 1 });
  });

  test('a stream falls back before its first byte', async () => {
    await rule({ model: 'f-a', status: 503, times: 1 });
    const x = await sendFb(ask('fall', { stream: true, stream_options: { include_usage: true } }));
    assert.equal(x.r.status, 200, x.r.text);
    assert.match(x.r.headers['content-type'], /text\/event-stream/);
    const ev = parseSSE(x.r.text);
    assert.equal(ev.at(-1).data, '[DONE]');
    assert.ok(!ev.some((e) => e.json?.error), 'no error event');
    assert.deepEqual(x.sent, { 'f-a': 1, 'f-b': 1 });
    assert.equal(x.rec.route.target, 'f-b');
    assert.deepEqual(x.rec.route.attempts.map((a) => [a.target, a.status]), [['f-a', 503]]);
    const rows = await ledgerRowsFor(gate, [x.id]);
    const u = (await mockUsages(mock, x.id)).filter((e) => e.complete);
    assert.equal(rows.get(x.id).tokens_charged, u[0].input + u[0].output);
  });

  test('a stream cut after its first byte is not retried: the client gets the error event', async () => {
    await rule({ model: 'f-a', fault: 'reset', times: 1 });
    const x = await sendFb(ask('fall', { stream: true }), { 'x-mock-tokens': '20' });
    assert.equal(x.r.status, 200);
    const ev = parseSSE(x.r.text);
    assert.ok(ev.some((e) => e.json?.choices?.[0]?.delta?.content), 'part of the answer came');
    assert.ok(ev.at(-1).json?.error, `an error event last: ${x.r.text.slice(-300)}`);
    assert.ok(!ev.some((e) => e.data === '[DONE]'));
    assert.deepEqual(x.sent, { 'f-a': 1 }, 'no other target asked');
    assert.equal(x.rec.route.target, 'f-a');
    assert.deepEqual(x.rec.route.attempts, []);
    assert.match(x.rec.error, /./);
    const rows = await ledgerRowsFor(gate, [x.id]);
    assert.ok(rows.get(x.id).tokens_charged > 0, 'the part sent is charged');
    assert.equal(rowsOf(gate, x.id).length, 1);
  });
});

// ---- 4: the circuit breaker -------------------------------------------------------------------

describe('circuit breaker', () => {
  let mock, gate;

  before(async () => {
    mock = await startMock();
    gate = await startRoutingGate({
      org: false,
      providers: { 'mock-openai': { url: `${mock.url}/v1`, format: 'openai' } },
      models: { 'b-a': '{ provider: mock-openai }', 'b-b': '{ provider: mock-openai }' },
      extra: [
        'tiers:',
        '  br: [b-a, b-b]',
        'routing:',
        '  aliases: { auto: br }',
        '  attempts: 2',
        '  breaker: { failures: 3, error_ratio: 100, min_requests: 100000, window: 30s, cooldown: 2s }',
      ],
    });
  });

  const rule = (r) => mock.direct('/_mock/models',
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });
  const ask = () => send(gate, mock, { model: 'auto', messages: user('breaker') });

  /** Polls /status until b-a's cool-down is over (bounded). */
  async function coolDown() {
    const deadline = Date.now() + ms(15000);
    for (;;) {
      const st = targetState(await status(gate), 'b-a');
      if (st.open_for_s === 0) return st;
      assert.ok(Date.now() < deadline, `still open: ${JSON.stringify(st)}`);
      await sleep(200);
    }
  }

  test('failures in a row open the circuit: the target is skipped, /status and /metrics show it; after the cool-down one probe, and a success closes it', async () => {
    assert.equal((await rule({ model: 'b-a', status: 500, times: -1 })).status, 200);
    for (let i = 1; i <= 3; i++) {
      const x = await ask();
      assert.equal(x.r.status, 200, x.r.text);
      assert.deepEqual(x.sent, { 'b-a': 1, 'b-b': 1 }, `request ${i}`);
      assert.deepEqual(x.rec.route.attempts.map((a) => [a.target, a.status]), [['b-a', 500]]);
      const st = targetState(await status(gate), 'b-a');
      assert.equal(st.failures_in_row, i, JSON.stringify(st));
      assert.equal(st.state, i < 3 ? 'closed' : 'open', JSON.stringify(st));
    }
    // open: b-a is not asked at all
    for (let i = 0; i < 3; i++) {
      const x = await ask();
      assert.equal(x.r.status, 200);
      assert.deepEqual(x.sent, { 'b-b': 1 }, 'the open target gets nothing');
      assert.deepEqual(x.rec.route.attempts, []);
      assert.equal(x.rec.route.target, 'b-b');
    }
    let st = targetState(await status(gate), 'b-a');
    assert.equal(st.state, 'open');
    assert.ok(st.open_for_s > 0 && st.open_for_s <= 2, JSON.stringify(st));
    assert.equal(st.failures_total, 3);
    assert.equal(targetState(await status(gate), 'b-b').state, 'closed');
    let text = await metrics(gate);
    assert.equal(metric(text, 'tokengate_target_state', { target: 'b-a' }), 1);
    assert.equal(metric(text, 'tokengate_target_state', { target: 'b-b' }), 0);
    assert.equal(metric(text, 'tokengate_target_failures_total', { target: 'b-a' }), 3);

    // after the cool-down, still failing: one probe, which fails: open again
    await coolDown();
    const probe = await ask();
    assert.deepEqual(probe.sent, { 'b-a': 1, 'b-b': 1 }, 'the probe went to b-a first');
    assert.equal(probe.r.status, 200);
    st = targetState(await status(gate), 'b-a');
    assert.equal(st.state, 'open', JSON.stringify(st));
    assert.deepEqual((await ask()).sent, { 'b-b': 1 });

    // after the cool-down, healthy (but slow): of requests sent together, one probes
    await coolDown();
    assert.equal((await rule({ model: 'b-a', delay_ms: 500, times: -1 })).status, 200);
    const b0 = await byModel(mock);
    const together = await Promise.all([0, 1, 2, 3].map(async (i) => {
      await sleep(i * 50);
      return gate.post('/v1/chat/completions', { model: 'auto', messages: user(`probe ${i}`) });
    }));
    for (const r of together) assert.equal(r.status, 200, r.text);
    assert.deepEqual(moved(b0, await byModel(mock)), { 'b-a': 1, 'b-b': 3 }, 'one probe only');
    st = targetState(await status(gate), 'b-a');
    assert.equal(st.state, 'closed', JSON.stringify(st));
    assert.equal(st.failures_in_row, 0);
    text = await metrics(gate);
    assert.equal(metric(text, 'tokengate_target_state', { target: 'b-a' }), 0);
    // closed: b-a first again
    assert.equal((await rule({ model: 'b-a' })).status, 200);
    assert.deepEqual((await ask()).sent, { 'b-a': 1 });
  });
});

// ---- 5 and 7: latency-aware choice, downgrade under budget pressure ------------------------------

describe('policies: latency-aware choice and downgrade', () => {
  const KEYS = {
    racer: 'tg-rt-racer-key-00000001',
    saver: 'tg-rt-saver-key-00000002',
    thrift: 'tg-rt-thrift-key-0000003',
    broke: 'tg-rt-broke-key-00000004',
    strict: 'tg-rt-strict-key-0000005',
  };
  const PRICES = { 'dg-low': [0.15, 0.6], 'dg-mid': [5, 20], 'dg-high': [500, 2000],
    'lat-fast': [1, 4], 'lat-cheap': [0.1, 0.4] };
  const LIMIT_MS = 300;
  let mock, gate;

  before(async () => {
    mock = await startMock();
    const models = {};
    for (const [m, [i, o]] of Object.entries(PRICES))
      models[m] = `{ provider: mock-openai, price: { input: ${i}, output: ${o} } }`;
    gate = await startRoutingGate({
      providers: { 'mock-openai': { url: `${mock.url}/v1`, format: 'openai' } },
      models,
      extra: [
        'org: acme',
        'departments:',
        '  d:',
        '    teams:',
        '      perf: { agents: { racer: { policy: quick } } }',
        '      money:',
        '        agents:',
        '          saver: { policy: frugal }',
        '          thrift: { policy: frugal }',
        '          broke: { policy: frugal }',
        '          strict: {}',
        'keys:',
        ...Object.entries(KEYS).map(([a, k]) => `  ${k}: ${a}`),
        'policies:',
        `  quick: { routing: { prefer_cost: true, max_latency_ms: ${LIMIT_MS} } }`,
        '  frugal: { on_exhaustion: downgrade }',
        'budgets:',
        '  - { scope: "agent:saver", window: day, usd: 0.01 }',
        '  - { scope: "agent:thrift", window: day, usd: 0.0005 }',
        '  - { scope: "agent:broke", window: day, usd: 0.00001 }',
        '  - { scope: "agent:strict", window: day, usd: 0.01 }',
        'tiers:',
        '  low: [dg-low]',
        '  mid: [dg-mid]',
        '  high: [dg-high]',
        '  lat: [lat-fast, lat-cheap]',
      ],
    });
  });

  const rule = (r) => mock.direct('/_mock/models',
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });
  const sendAs = (agent, body) => send(gate, mock, body, bearer(KEYS[agent]));

  test('prefer_cost with max_latency_ms: the cheaper target while it is fast, the other once its p90 passes the limit', async () => {
    const ask = (i) => sendAs('racer', { model: 'tier:lat', messages: user(`latency ${i}`) });
    // warm-up: the cheaper (listed second) is taken first, and it is fast
    for (let i = 0; i < 6; i++) {
      const x = await ask(i);
      assert.equal(x.r.status, 200, x.r.text);
      assert.deepEqual(x.sent, { 'lat-cheap': 1 }, `warm-up ${i}`);
    }
    let st = targetState(await status(gate), 'lat-cheap');
    assert.ok(st.total_ms_p90 !== null && st.total_ms_p90 < LIMIT_MS, JSON.stringify(st));
    // the cheaper turns slow: taken until its p90 shows it, then the other
    assert.equal((await rule({ model: 'lat-cheap', delay_ms: 2 * LIMIT_MS, times: -1 })).status, 200);
    let slow = 0;
    let x;
    for (let i = 0; i < 20; i++) {
      x = await ask(100 + i);
      assert.equal(x.r.status, 200, x.r.text);
      if (x.rec.route.target !== 'lat-cheap') break;
      slow++;
    }
    assert.deepEqual(x.sent, { 'lat-fast': 1 }, `after ${slow} slow answers`);
    assert.ok(slow >= 1 && slow <= 6, `${slow} slow answers before the switch`);
    st = targetState(await status(gate), 'lat-cheap');
    assert.ok(st.total_ms_p90 > LIMIT_MS, JSON.stringify(st));
    for (let i = 0; i < 3; i++)
      assert.deepEqual((await ask(200 + i)).sent, { 'lat-fast': 1 });
    // an agent without the policy: the tier's order (lat-fast first)
    const plain = await sendAs('strict', { model: 'tier:lat', messages: user('no policy'),
      max_tokens: 5 });
    assert.equal(plain.r.status, 200, plain.r.text);
    assert.deepEqual(plain.sent, { 'lat-fast': 1 });
    await rule({ model: 'lat-cheap' });
  });

  test('on_exhaustion: downgrade: a request the tier\'s price does not fit goes down a tier; 429 when nothing fits', async () => {
    const body = { model: 'tier:high', messages: user(filler(1000)), max_tokens: 10 };
    // saver: high ($0.5 of input) does not fit $0.01, mid ($0.005) does
    const x = await sendAs('saver', body);
    assert.equal(x.r.status, 200, x.r.text);
    assert.deepEqual(x.sent, { 'dg-mid': 1 });
    assert.equal(x.rec.route.target, 'dg-mid');
    assert.equal(x.rec.route.tier, 'mid');
    assert.equal(x.rec.route.downgrades, 1);
    const row = (await ledgerRowsFor(gate, [x.id])).get(x.id);
    const u = (await mockUsages(mock, x.id))[0];
    assert.equal(row.tokens_charged, u.input + u.output);
    const [pi, po] = PRICES['dg-mid'];
    assert.equal(row.cost_nusd, Math.round(u.input * pi * 1000 + u.output * po * 1000),
      'charged at the price of the target used');
    assert.equal(row.tier, 'mid');
    // thrift: two tiers down
    const y = await sendAs('thrift', body);
    assert.equal(y.r.status, 200, y.r.text);
    assert.deepEqual(y.sent, { 'dg-low': 1 });
    assert.equal(y.rec.route.downgrades, 2);
    assert.equal(y.rec.route.tier, 'low');
    // broke: not even the cheapest tier fits: 429, nothing forwarded
    const c0 = (await mock.stats()).requests;
    const z = await sendAs('broke', body);
    assert.equal(z.r.status, 429, z.r.text);
    assert.equal(z.r.json.error.type, 'budget_exceeded');
    assert.equal((await mock.stats()).requests, c0, 'nothing forwarded');
    // strict (no downgrade policy): 429 at the tier asked for
    const s = await sendAs('strict', body);
    assert.equal(s.r.status, 429, s.r.text);
    assert.equal((await mock.stats()).requests, c0, 'nothing forwarded');
  });
});

// ---- 6: canary split over an open gate --------------------------------------------------------

describe('canary split', () => {
  let mock, gate;

  before(async () => {
    mock = await startMock({ tokens: 2 });
    gate = await startRoutingGate({
      org: false,
      providers: { 'mock-openai': { url: `${mock.url}/v1`, format: 'openai' } },
      models: { 'c-a': '{ provider: mock-openai }', 'c-b': '{ provider: mock-openai }' },
      extra: [
        'tiers:',
        '  base: [c-b]',
        'routing:',
        '  aliases: { auto: base }',
        '  rules:',
        '    - { name: canary, match: { model: auto }, route: { split: [ { target: c-a, percent: 10 }, { target: c-b, percent: 90 } ] } }',
      ],
    });
  });

  test('2,000 requests from an open gate land within a few percent of 10/90', async () => {
    const N = 2000;
    const b0 = await byModel(mock);
    let next = 0;
    const statuses = {};
    const t0 = Date.now();
    const worker = async () => {
      while (next < N && Date.now() - t0 < ms(120000)) {
        next++;
        const r = await gate.post('/v1/chat/completions', { model: 'auto', messages: user('canary') });
        statuses[r.status] = (statuses[r.status] || 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    assert.deepEqual(statuses, { 200: N });
    const d = moved(b0, await byModel(mock));
    assert.equal((d['c-a'] || 0) + (d['c-b'] || 0), N, JSON.stringify(d));
    const share = d['c-a'] / N;
    assert.ok(share > 0.07 && share < 0.13, `c-a had ${(share * 100).toFixed(1)}%`);
    // the log says the same
    const deadline = Date.now() + ms(10000);
    let recs;
    do {
      await sleep(100);
      recs = fs.readFileSync(gate.logPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    } while (recs.length < N && Date.now() < deadline);
    assert.equal(recs.length, N);
    assert.equal(recs.filter((r) => r.route?.rule === 'canary' && r.route.target === 'c-a').length, d['c-a']);
    const text = await metrics(gate);
    assert.equal(metric(text, 'tokengate_route_requests_total', { tier: '', target: 'c-a', rule: 'canary' }), d['c-a']);
  });
});

// ---- 9: configs refused at load ---------------------------------------------------------------

describe('bad routing config', () => {
  const base = [
    'listen: 127.0.0.1:0',
    'providers:',
    '  p: { base_url: "http://127.0.0.1:9/v1", format: openai }',
    'models:',
    '  m-a: { provider: p }',
    '  m-b: { provider: p }',
    '  "w-*": { provider: p }',
    'tiers:',
    '  cheap: [m-a]',
    '  medium: [m-b]',
    'routing:',
    '  aliases: { auto: medium }',
    '  rules:',
    '    - { name: r1, match: { model: auto, last_user: { regex: "^hi" } }, route: { tier: cheap } }',
    '    - { name: r2, match: { model: auto }, route: { split: [ { target: m-a, percent: 10 }, { tier: medium, percent: 90 } ] } }',
  ];
  const ALIASES = 11;
  const R1 = 13;
  const R2 = 14;
  const CASES = [
    ['an unknown tier in an alias', ALIASES, '  aliases: { auto: premium }', /premium/],
    ['an unknown tier in a rule', R1, '    - { name: r1, match: { model: auto }, route: { tier: premium } }', /premium/],
    ['an unknown tier in a split', R2, '    - { name: r2, match: { model: auto }, route: { split: [ { target: m-a, percent: 10 }, { tier: gold, percent: 90 } ] } }', /gold/],
    ['a rule that names a missing target', R1, '    - { name: r1, match: { model: auto }, route: { target: m-zzz } }', /m-zzz/],
    ['a rule that names a wildcard entry', R1, '    - { name: r1, match: { model: auto }, route: { target: w-1 } }', /w-1/],
    ['a tier listing a missing model', 8, '  cheap: [m-a, m-nope]', /m-nope/],
    ['a bad regex', R1, '    - { name: r1, match: { model: auto, last_user: { regex: "(unclosed" } }, route: { tier: cheap } }', /regex|parenthes/i],
    ['a bad header regex', R1, '    - { name: r1, match: { model: auto, header: { x-p: { regex: "[a-" } } }, route: { tier: cheap } }', /regex|class|range/i],
  ];

  test('the base config is valid', () => {
    const file = path.join(tempDir(), 'good.yaml');
    fs.writeFileSync(file, base.join('\n') + '\n');
    const r = runGate(['serve', '--check', '--config', file]);
    assert.equal(r.status, 0, r.stderr);
  });

  for (const [name, line, text, reason] of CASES) {
    test(`refused: ${name}, with FILE:LINE: reason`, () => {
      const lines = base.slice();
      lines[line] = text;
      const file = path.join(tempDir(), 'bad.yaml');
      fs.writeFileSync(file, lines.join('\n') + '\n');
      const r = runGate(['serve', '--check', '--config', file]);
      assert.notEqual(r.status, 0, `exit status; stderr: ${r.stderr}`);
      const m = r.stderr.match(/invalid config: (.+?):(\d+): (.*)$/m);
      assert.ok(m, `no "FILE:LINE: reason" in: ${r.stderr}`);
      assert.equal(m[1], file);
      assert.equal(Number(m[2]), line + 1, r.stderr);
      assert.match(m[3], reason);
    });
  }
});
