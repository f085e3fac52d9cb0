// /v1/tool-cache (issue 13): agents that run tools themselves store a result under the tool's
// canonical arguments and look it up again. Checked: a put then a get hits (and a lookup by
// POST), a miss, expiry, the arguments in another key order hit, two agents never share under
// the agent scope, a team scope shares within the team only, an unlisted tool 403 naming the
// allowlist, a result past cache.tools.max_entry_bytes 413 naming it, no key 401, a delete;
// the log's tool_cache object and the tool cache's counters in /metrics. Nothing here reaches
// a provider: the mock must see no request.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  test, cleanup, startMock, startGate, mockProviders, sleep, newId,
} from './harness.mjs';
import { startRoutingGate, bearer, metrics, metric } from './routing-util.mjs';

after(cleanup);

const KEYS = {
  a1: 'tg-tc-a1-key-000000000001',
  a2: 'tg-tc-a2-key-000000000002',
  s1: 'tg-tc-s1-key-000000000003',
  s2: 'tg-tc-s2-key-000000000004',
  o1: 'tg-tc-o1-key-000000000005',
};
const MAX_ENTRY = 2048;

describe('/v1/tool-cache', () => {
  let mock, gate;

  before(async () => {
    mock = await startMock();
    gate = await startRoutingGate({
      providers: { 'mock-openai': { url: `${mock.url}/v1`, format: 'openai' } },
      models: { 'gpt-4o-mini': '{ provider: mock-openai, price: { input: 1, output: 2 } }' },
      extra: [
        'org: acme',
        'departments:',
        '  d:',
        '    teams:',
        '      alpha: { agents: { a1: {}, a2: {} } }',
        '      shared: { agents: { s1: { policy: teamcache }, s2: { policy: teamcache } } }',
        '      other: { agents: { o1: { policy: teamcache } } }',
        'keys:',
        ...Object.entries(KEYS).map(([a, k]) => `  ${k}: ${a}`),
        'policies:',
        '  teamcache: { cache: { scope: team } }',
        'cache:',
        '  tools:',
        `    max_entry_bytes: ${MAX_ENTRY}`,
        '    ttl:',
        '      get_weather: 10m',
        '      search_docs: 1h',
        '      quick: 1s',
      ],
    });
  });

  const json = { 'content-type': 'application/json' };
  const put = (agent, tool, body) =>
    gate.request(`/v1/tool-cache/${tool}`, {
      method: 'PUT', headers: { ...json, ...bearer(KEYS[agent]) }, body: JSON.stringify(body),
    });
  const get = (agent, tool, args, headers = {}) =>
    gate.request(`/v1/tool-cache/${tool}?arguments=${encodeURIComponent(JSON.stringify(args))}`,
      { headers: { ...bearer(KEYS[agent]), ...headers } });
  const lookup = (agent, tool, args) =>
    gate.request(`/v1/tool-cache/${tool}/lookup`, {
      method: 'POST', headers: { ...json, ...bearer(KEYS[agent]) },
      body: JSON.stringify({ arguments: args }),
    });

  test('put then get: a hit with the result as stored; a miss is 404', async () => {
    const result = { temp: 21.5, sky: 'clear', hourly: [1, 2, 3] };
    const p = await put('a1', 'get_weather', { arguments: { city: 'Paris', units: 'C' }, result });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.stored, true);
    assert.equal(p.json.ttl_s, 600);

    const id = newId('tc');
    const g = await get('a1', 'get_weather', { city: 'Paris', units: 'C' }, { 'x-request-id': id });
    assert.equal(g.status, 200, g.text);
    assert.equal(g.headers['x-tokengate-cache'], 'hit');
    assert.deepEqual(g.json.result, result);
    assert.ok(Number.isInteger(g.json.age_s) && g.json.age_s >= 0, g.text);
    const rec = await gate.logRecord(id);
    assert.deepEqual(
      { tool: rec.tool_cache.tool, op: rec.tool_cache.op, cache: rec.tool_cache.cache },
      { tool: 'get_weather', op: 'get', cache: 'hit' });

    const l = await lookup('a1', 'get_weather', { units: 'C', city: 'Paris' });
    assert.equal(l.status, 200, l.text);
    assert.deepEqual(l.json.result, result);

    const mid = newId('tc');
    const m = await get('a1', 'get_weather', { city: 'Rome', units: 'C' }, { 'x-request-id': mid });
    assert.equal(m.status, 404, m.text);
    assert.equal(m.headers['x-tokengate-cache'], 'miss');
    assert.match(m.json.error.message, /no cached result/);
    assert.equal((await gate.logRecord(mid)).tool_cache.cache, 'miss');
  });

  test('the arguments in another key order and spacing are the same key', async () => {
    const r = await put('a1', 'search_docs', {
      arguments: { q: 'budgets', filter: { lang: 'en', since: 2024 }, limit: 5 },
      result: ['doc1', 'doc2'],
    });
    assert.equal(r.status, 200, r.text);
    // the query's JSON spelled by hand: other order, white space, 5.0 for 5
    const raw = '{ "limit": 5.0, "filter": {"since":2024, "lang":"en"}, "q":"budgets" }';
    const g = await gate.request(`/v1/tool-cache/search_docs?arguments=${encodeURIComponent(raw)}`,
      { headers: bearer(KEYS.a1) });
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.json.result, ['doc1', 'doc2']);
    // one argument more is another key
    const m = await get('a1', 'search_docs',
      { q: 'budgets', filter: { lang: 'en', since: 2024 }, limit: 5, page: 2 });
    assert.equal(m.status, 404);
  });

  test('expiry: past the tool ttl (and past a shorter ttl the put asked for), a miss', async () => {
    assert.equal((await put('a1', 'quick', { arguments: { n: 1 }, result: 'one' })).status, 200);
    const short = await put('a1', 'get_weather',
      { arguments: { city: 'Oslo' }, result: 'snow', ttl: '1s' });
    assert.equal(short.status, 200, short.text);
    assert.equal(short.json.ttl_s, 1);
    // a ttl longer than the tool's is cut to it
    const long = await put('a1', 'quick', { arguments: { n: 2 }, result: 'two', ttl: '1h' });
    assert.equal(long.json.ttl_s, 1);
    assert.equal((await get('a1', 'quick', { n: 1 })).status, 200);
    await sleep(1600);
    assert.equal((await get('a1', 'quick', { n: 1 })).status, 404);
    assert.equal((await get('a1', 'quick', { n: 2 })).status, 404);
    assert.equal((await get('a1', 'get_weather', { city: 'Oslo' })).status, 404);
  });

  test('agent scope: two agents of one team never share', async () => {
    const args = { city: 'Lisbon' };
    assert.equal((await put('a1', 'get_weather', { arguments: args, result: 'a1 sun' })).status, 200);
    assert.equal((await get('a2', 'get_weather', args)).status, 404);
    assert.equal((await put('a2', 'get_weather', { arguments: args, result: 'a2 rain' })).status, 200);
    assert.equal((await get('a1', 'get_weather', args)).json.result, 'a1 sun');
    assert.equal((await get('a2', 'get_weather', args)).json.result, 'a2 rain');
  });

  test('team scope: shared within the team, never with another team', async () => {
    const args = { city: 'Madrid' };
    assert.equal((await put('s1', 'get_weather', { arguments: args, result: 'team hot' })).status,
      200);
    const same = await get('s2', 'get_weather', args);
    assert.equal(same.status, 200, same.text);
    assert.equal(same.json.result, 'team hot');
    // another team with the same policy, and an agent-scoped agent: misses
    assert.equal((await get('o1', 'get_weather', args)).status, 404);
    assert.equal((await get('a1', 'get_weather', args)).status, 404);
  });

  test('an unlisted tool is 403 naming the allowlist; a result too large 413 naming the cap', async () => {
    const u = await put('a1', 'run_shell', { arguments: { cmd: 'ls' }, result: 'x' });
    assert.equal(u.status, 403, u.text);
    assert.match(u.json.error.message, /run_shell/);
    assert.match(u.json.error.message, /cache\.tools\.ttl/);
    assert.match(u.json.error.message, /get_weather/);
    assert.equal((await get('a1', 'run_shell', { cmd: 'ls' })).status, 403);

    const big = await put('a1', 'get_weather', { arguments: { city: 'Big' }, result: 'x'.repeat(MAX_ENTRY + 1) });
    assert.equal(big.status, 413, big.text);
    assert.match(big.json.error.message, /cache\.tools\.max_entry_bytes/);
    assert.match(big.json.error.message, new RegExp(String(MAX_ENTRY)));
    assert.equal((await get('a1', 'get_weather', { city: 'Big' })).status, 404);
  });

  test('bad requests: 400 with a clear message; no key 401', async () => {
    const noArgs = await put('a1', 'get_weather', { result: 1 });
    assert.equal(noArgs.status, 400);
    assert.match(noArgs.json.error.message, /'arguments'/);
    const noResult = await put('a1', 'get_weather', { arguments: {} });
    assert.equal(noResult.status, 400);
    assert.match(noResult.json.error.message, /'result'/);
    const badJson = await gate.request('/v1/tool-cache/get_weather', {
      method: 'PUT', headers: { ...json, ...bearer(KEYS.a1) }, body: '{"arguments": {',
    });
    assert.equal(badJson.status, 400);
    assert.match(badJson.json.error.message, /not valid JSON/);
    const noQuery = await gate.request('/v1/tool-cache/get_weather', { headers: bearer(KEYS.a1) });
    assert.equal(noQuery.status, 400);
    assert.match(noQuery.json.error.message, /\?arguments=/);
    const badQuery = await gate.request('/v1/tool-cache/get_weather?arguments=%7Bnope',
      { headers: bearer(KEYS.a1) });
    assert.equal(badQuery.status, 400);
    const badTtl = await put('a1', 'get_weather', { arguments: {}, result: 1, ttl: 'soon' });
    assert.equal(badTtl.status, 400);
    assert.match(badTtl.json.error.message, /'ttl'/);
    const wrongMethod = await gate.request('/v1/tool-cache/get_weather', {
      method: 'POST', headers: { ...json, ...bearer(KEYS.a1) }, body: '{"arguments":{}}',
    });
    assert.equal(wrongMethod.status, 405);

    const anon = await gate.request(
      `/v1/tool-cache/get_weather?arguments=${encodeURIComponent('{"city":"Paris","units":"C"}')}`);
    assert.equal(anon.status, 401, anon.text);
    const anonPut = await gate.request('/v1/tool-cache/get_weather', {
      method: 'PUT', headers: json, body: JSON.stringify({ arguments: {}, result: 1 }),
    });
    assert.equal(anonPut.status, 401);
  });

  test('delete drops the entry; deleting it again says there was none', async () => {
    const args = { city: 'Vienna' };
    assert.equal((await put('a1', 'get_weather', { arguments: args, result: 'cold' })).status, 200);
    const q = encodeURIComponent(JSON.stringify(args));
    const d = await gate.request(`/v1/tool-cache/get_weather?arguments=${q}`,
      { method: 'DELETE', headers: bearer(KEYS.a1) });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.deleted, true);
    assert.equal((await get('a1', 'get_weather', args)).status, 404);
    const again = await gate.request(`/v1/tool-cache/get_weather?arguments=${q}`,
      { method: 'DELETE', headers: bearer(KEYS.a1) });
    assert.equal(again.json.deleted, false);
  });

  test('nothing reached the provider; /metrics counts the tool cache by scope', async () => {
    const st = await mock.stats();
    assert.equal(st.requests, 0);
    const text = await metrics(gate);
    const val = (re) => {
      const m = text.match(re);
      return m ? Number(m[1]) : undefined;
    };
    const hits = val(/^tokengate_cache_lookups_total\{cache="tool",scope="agent",outcome="hit"\} (\d+)/m);
    const misses = val(/^tokengate_cache_lookups_total\{cache="tool",scope="agent",outcome="miss"\} (\d+)/m);
    const teamHits = val(/^tokengate_cache_lookups_total\{cache="tool",scope="team",outcome="hit"\} (\d+)/m);
    assert.ok(hits >= 5, `agent hits ${hits}`);
    assert.ok(misses >= 5, `agent misses ${misses}`);
    assert.ok(teamHits >= 1, `team hits ${teamHits}`);
    assert.match(text, /^tokengate_cache_hit_ratio\{cache="tool",scope="agent"\} 0\.\d+/m);
    assert.match(text, /^tokengate_cache_entries\{store="tools"\} \d+/m);
    // per tool and agent (server "": /v1/tool-cache, not an MCP server)
    const a1Hits = val(/^tokengate_tool_calls_total\{server="",tool="get_weather",agent="a1",cache="hit"\} (\d+)/m);
    const a1Misses = val(/^tokengate_tool_calls_total\{server="",tool="get_weather",agent="a1",cache="miss"\} (\d+)/m);
    assert.ok(a1Hits >= 1, `a1's get_weather hits ${a1Hits}`);
    assert.ok(a1Misses >= 1, `a1's get_weather misses ${a1Misses}`);
  });
});

describe('/v1/tool-cache on an open gate (no org)', () => {
  let gate;

  before(async () => {
    const mock = await startMock();
    gate = await startGate({
      config: {
        ...mockProviders(mock.url),
        extra: ['cache:', '  tools:', '    ttl:', '      lookup_user: 1m'].join('\n'),
      },
    });
  });

  test('entries are kept per client credential; no credential is 401', async () => {
    const args = encodeURIComponent(JSON.stringify({ id: 7 }));
    const put = (key) => gate.request('/v1/tool-cache/lookup_user', {
      method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ arguments: { id: 7 }, result: { owner: key } }),
    });
    const get = (headers) => gate.request(`/v1/tool-cache/lookup_user?arguments=${args}`, { headers });
    assert.equal((await put('sk-client-one')).status, 200);
    const mine = await get({ authorization: 'Bearer sk-client-one' });
    assert.equal(mine.status, 200, mine.text);
    assert.deepEqual(mine.json.result, { owner: 'sk-client-one' });
    // the same key in x-api-key is the same client
    assert.equal((await get({ 'x-api-key': 'sk-client-one' })).status, 200);
    assert.equal((await get({ authorization: 'Bearer sk-client-two' })).status, 404);
    assert.equal((await get({})).status, 401);
  });
});

describe('/v1/tool-cache past cache.tools.max_bytes', () => {
  let gate;
  const KEY = 'tg-tc-evict-key-0000000001';

  before(async () => {
    const mock = await startMock();
    gate = await startRoutingGate({
      providers: { 'mock-openai': { url: `${mock.url}/v1`, format: 'openai' } },
      models: { 'gpt-4o-mini': '{ provider: mock-openai, price: { input: 1, output: 2 } }' },
      extra: [
        'org: acme',
        'departments: { d: { teams: { t: { agents: { e1: {} } } } } }',
        'keys:',
        `  ${KEY}: e1`,
        'cache:',
        '  tools: { max_bytes: 8KiB, max_entry_bytes: 2KiB, ttl: { fetch_page: 10m } }',
      ],
    });
  });

  test('the least recently used results are evicted; the cache stays under its cap', async () => {
    const N = 24; // about 1 KiB each: three times the cap
    const q = (i) => `/v1/tool-cache/fetch_page?arguments=${encodeURIComponent(JSON.stringify({ page: i }))}`;
    for (let i = 0; i < N; i++) {
      const r = await gate.request('/v1/tool-cache/fetch_page', {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...bearer(KEY) },
        body: JSON.stringify({ arguments: { page: i }, result: `${i}:${'x'.repeat(900)}` }),
      });
      assert.equal(r.status, 200, r.text);
    }
    const found = [];
    for (let i = 0; i < N; i++) found.push((await gate.request(q(i), { headers: bearer(KEY) })).status);
    assert.equal(found[N - 1], 200, 'the newest is kept');
    assert.equal(found[0], 404, 'the oldest is evicted');
    const kept = found.filter((s) => s === 200).length;
    assert.ok(kept >= 2 && kept < N / 2, `kept ${kept} of ${N}`);
    const text = await metrics(gate);
    assert.ok(metric(text, 'tokengate_cache_evictions_total', { store: 'tools' }) >= N / 2);
    assert.equal(metric(text, 'tokengate_cache_max_bytes', { store: 'tools' }), 8192);
    assert.ok(metric(text, 'tokengate_cache_bytes', { store: 'tools' }) <= 8192);
  });
});
