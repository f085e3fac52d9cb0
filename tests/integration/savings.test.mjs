// Savings (issue 13, "Review"): what routing, provider prompt caching and the response cache
// saved, per request in the ledger (schema 4 columns) and the request log, summed per scope by
// `tokengate usage --savings`, and in /metrics. Every expected figure is computed here from the
// config's prices and the usage the mock reports for the request (/_mock/usage), never copied
// from the gate: a routed request saves the usage at the asked model's price less what it paid;
// cached reads save their input price less their cached price, less the premium of the writes.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { test, cleanup, startMock, ms, runGate } from './harness.mjs';
import {
  startRoutingGate, bearer, send, mockUsages, ledgerRowsFor, metrics, metric, user, status,
} from './routing-util.mjs';

after(cleanup);

// $ per million tokens
const PRICES = {
  'big-model': { input: 10, output: 40 },
  'small-model': { input: 1, output: 4, cached_input: 0.25 },
  'claude-x': { input: 3, output: 15, cached_input: 0.3, cache_write: 3.75 },
};
const KEYS = { fru: 'tg-sv-frugal-key-000000001', ful: 'tg-sv-full-key-00000000002' };

/** Nano-dollars of n tokens at p $/Mtok: the gate's rounding (up, once per cost). */
const nusd = (n, p) => n * p * 1000;
const cost = (model, u) => {
  const p = PRICES[model];
  const uncached = u.input - (u.cached || 0) - (u.cache_write || 0);
  return Math.ceil(nusd(uncached, p.input) + nusd(u.cached || 0, p.cached_input ?? p.input) +
    nusd(u.cache_write || 0, p.cache_write ?? p.input) + nusd(u.output, p.output));
};
/** "$D.DDDDDD" as `usage --savings` writes nano-dollars (cut to the micro-dollar). */
const usd6 = (n) => {
  const m = Math.abs(n);
  return `${n < 0 ? '-' : ''}$${Math.trunc(m / 1e9)}.${String(Math.trunc((m % 1e9) / 1000)).padStart(6, '0')}`;
};
/** "D.DDDDDDDDD" as the log record writes nano-dollars. */
const usd9 = (n) => `${n < 0 ? '-' : ''}${Math.trunc(Math.abs(n) / 1e9)}.${String(Math.abs(n) % 1e9).padStart(9, '0')}`;

describe('savings', () => {
  let mock, gate;
  const ids = {};

  before(async () => {
    mock = await startMock();
    const models = {};
    for (const [m, p] of Object.entries(PRICES)) {
      const provider = m.startsWith('claude') ? 'mock-anthropic' : 'mock-openai';
      const price = Object.entries(p).map(([k, v]) => `${k}: ${v}`).join(', ');
      models[m] = `{ provider: ${provider}, price: { ${price} } }`;
    }
    gate = await startRoutingGate({
      providers: {
        'mock-openai': { url: `${mock.url}/v1`, format: 'openai' },
        'mock-anthropic': { url: `${mock.url}/v1`, format: 'anthropic' },
      },
      models,
      extra: [
        'org: acme',
        'departments:',
        '  d:',
        '    teams:',
        '      frugal: { agents: { fru: {} } }',
        '      full: { agents: { ful: {} } }',
        'keys:',
        ...Object.entries(KEYS).map(([a, k]) => `  ${k}: ${a}`),
        'tiers:',
        '  cheap: [small-model]',
        '  premium: [big-model]',
        'routing:',
        '  aliases: { smart: premium }',
        '  rules:',
        '    - { name: save, match: { model: big-model, team: frugal }, route: { tier: cheap } }',
        '    - { name: smart-cheap, match: { model: smart }, route: { tier: cheap } }',
      ],
    });
  });

  const chat = (agent, model, headers = {}, extra = {}) =>
    send(gate, mock, { model, messages: user(`savings test ${model} ${Math.random()}`), ...extra },
      { ...bearer(KEYS[agent]), ...headers });

  test('a routed request saves the asked model\'s price less the price paid', async () => {
    const routed = await chat('fru', 'big-model');
    assert.equal(routed.r.status, 200, routed.r.text);
    assert.deepEqual(routed.sent, { 'small-model': 1 });
    const [u] = await mockUsages(mock, routed.id);
    const paid = cost('small-model', u);
    const want = cost('big-model', u) - paid;
    assert.ok(want > 0);
    assert.deepEqual(routed.rec.saved, { response_usd: 0, prompt_usd: 0, routing_usd: want / 1e9 });
    // an alias measures against its own destination's first target
    const alias = await chat('ful', 'smart');
    assert.equal(alias.r.status, 200, alias.r.text);
    assert.deepEqual(alias.sent, { 'small-model': 1 });
    const [ua] = await mockUsages(mock, alias.id);
    const wantAlias = cost('big-model', ua) - cost('small-model', ua);
    assert.equal(alias.rec.saved.routing_usd, wantAlias / 1e9);
    // not routed: nothing
    const plain = await chat('ful', 'big-model');
    assert.deepEqual(plain.sent, { 'big-model': 1 });
    assert.equal(plain.rec.saved.routing_usd, 0);

    const rows = await ledgerRowsFor(gate, [routed.id, alias.id, plain.id]);
    assert.equal(rows.get(routed.id).route_saved_nusd, want);
    assert.equal(rows.get(routed.id).cost_nusd, paid);
    assert.equal(rows.get(alias.id).route_saved_nusd, wantAlias);
    assert.equal(rows.get(plain.id).route_saved_nusd, 0);
    Object.assign(ids, { routed: [routed.id, want], alias: [alias.id, wantAlias] });
  });

  test('cached prompt reads save their input price, less the writes\' premium', async () => {
    const oa = await chat('ful', 'small-model', { 'x-mock-cached': '6' });
    assert.equal(oa.r.status, 200, oa.r.text);
    const [u] = await mockUsages(mock, oa.id);
    assert.equal(u.cached, 6);
    const p = PRICES['small-model'];
    const want = nusd(6, p.input) - nusd(6, p.cached_input);
    assert.equal(oa.rec.saved.prompt_usd, want / 1e9);

    const an = await send(gate, mock,
      { model: 'claude-x', max_tokens: 50,
        messages: user('savings anthropic cache, a prompt long enough to hold the cached reads and the writes') },
      { ...bearer(KEYS.ful), 'x-mock-cached': '8', 'x-mock-cache-write': '4' },
      { path: '/v1/messages' });
    assert.equal(an.r.status, 200, an.r.text);
    const [ua] = await mockUsages(mock, an.id);
    assert.deepEqual([ua.cached, ua.cache_write], [8, 4]);
    const c = PRICES['claude-x'];
    const wantAn = nusd(8, c.input) - nusd(8, c.cached_input) - (nusd(4, c.cache_write) - nusd(4, c.input));
    assert.equal(an.rec.saved.prompt_usd, Number(usd9(wantAn)));
    const rows = await ledgerRowsFor(gate, [oa.id, an.id]);
    assert.equal(rows.get(oa.id).prompt_saved_nusd, want);
    assert.equal(rows.get(an.id).prompt_saved_nusd, wantAn);
    assert.equal(rows.get(an.id).cost_nusd, cost('claude-x', ua));
    Object.assign(ids, { promptOa: [oa.id, want], promptAn: [an.id, wantAn] });
  });

  test('a response-cache hit is recorded with what it saved; the log says hit', async () => {
    const body = { temperature: 0 };
    const miss = await chat('ful', 'small-model', {}, { ...body, messages: user('same question') });
    assert.equal(miss.rec.cache.response, 'miss');
    const hit = await chat('ful', 'small-model', {}, { ...body, messages: user('same question') });
    assert.equal(hit.r.headers['x-tokengate-cache'], 'hit');
    assert.deepEqual(hit.sent, {});
    assert.equal(hit.rec.cache.response, 'hit');
    const [u] = await mockUsages(mock, miss.id);
    assert.equal(hit.rec.cache.saved_tokens, u.input + u.output);
    assert.equal(hit.rec.saved.response_usd, cost('small-model', u) / 1e9);
    const rows = await ledgerRowsFor(gate, [miss.id, hit.id]);
    assert.equal(rows.get(hit.id).cache, 'hit');
    assert.equal(rows.get(hit.id).cost_nusd, 0);
    assert.equal(rows.get(hit.id).saved_nusd, cost('small-model', u));
    assert.equal(rows.get(miss.id).cache, 'miss');
    ids.hit = [hit.id, cost('small-model', u), u.input + u.output];
  });

  test('usage --savings sums them per scope; /metrics counts them', async () => {
    const r = runGate(['usage', '--config', gate.configPath, '--savings', '--format', 'json']);
    assert.equal(r.status, 0, r.stderr);
    const rows = Object.fromEntries(r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .map((o) => [o.scope, o]));
    const frugal = rows['team:frugal'];
    assert.equal(frugal.routing_usd, usd6(ids.routed[1]));
    assert.equal(frugal.routed, 1);
    assert.equal(frugal.prompt_usd, usd6(0));
    const full = rows['team:full'];
    assert.equal(full.routing_usd, usd6(ids.alias[1]));
    assert.equal(full.prompt_usd, usd6(ids.promptOa[1] + ids.promptAn[1]));
    assert.equal(full.hits, 1);
    assert.ok(full.misses >= 1);
    assert.equal(full.saved_tokens, ids.hit[2]);
    assert.equal(full.response_usd, usd6(ids.hit[1]));
    const org = rows.org;
    assert.equal(org.routing_usd, usd6(ids.routed[1] + ids.alias[1]));
    assert.equal(org.saved_usd,
      usd6(ids.routed[1] + ids.alias[1] + ids.promptOa[1] + ids.promptAn[1] + ids.hit[1]));
    assert.equal(rows['agent:fru'].routing_usd, usd6(ids.routed[1]));
    // the table names the columns; --level narrows it
    const t = runGate(['usage', '--config', gate.configPath, '--savings', '--level', 'team']);
    assert.equal(t.status, 0, t.stderr);
    const lines = t.stdout.trim().split('\n');
    assert.match(lines[0], /SCOPE .*HITS .*SAVED_TOKENS .*RESPONSE_USD .*PROMPT_USD .*ROUTING_USD .*SAVED_USD/);
    assert.equal(lines.length, 3, t.stdout); // the head and two teams
    // /metrics
    const text = await metrics(gate);
    assert.equal(metric(text, 'tokengate_saved_usd_total', { source: 'routing' }),
      (ids.routed[1] + ids.alias[1]) / 1e9);
    assert.equal(metric(text, 'tokengate_saved_usd_total', { source: 'prompt_cache' }),
      (ids.promptOa[1] + ids.promptAn[1]) / 1e9);
    assert.equal(metric(text, 'tokengate_saved_usd_total', { source: 'response_cache' }),
      ids.hit[1] / 1e9);
    assert.equal(metric(text, 'tokengate_cache_lookups_total',
      { cache: 'response', scope: 'agent', outcome: 'hit' }), 1);
    assert.ok(metric(text, 'tokengate_cache_lookups_total',
      { cache: 'response', scope: 'agent', outcome: 'bypass' }) >= 5);
    const ratio = metric(text, 'tokengate_cache_hit_ratio', { cache: 'response', scope: 'agent' });
    assert.ok(ratio > 0 && ratio < 1, `ratio ${ratio}`);
    assert.ok(metric(text, 'tokengate_cache_entries', { store: 'responses' }) >= 1);
    assert.ok(metric(text, 'tokengate_cache_max_bytes', { store: 'responses' }) > 0);
    assert.equal(metric(text, 'tokengate_cache_evictions_total', { store: 'tools' }), 0);
    // /status: the caches object
    const st = await status(gate);
    assert.ok(st.caches.responses.entries >= 1, JSON.stringify(st.caches));
    assert.ok(st.caches.responses.max_bytes > 0);
    assert.equal(st.caches.tools.entries, 0);
    assert.equal(st.caches.lookups.response.agent.hit, 1);
    assert.equal(st.caches.saved.routing_usd, (ids.routed[1] + ids.alias[1]) / 1e9);
    assert.equal(st.caches.saved.response_usd, ids.hit[1] / 1e9);
  });
});
