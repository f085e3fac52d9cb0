// Tier routing end to end (issue 12): rules of every kind, the context-window guard, the canary
// split, the records (log `route`, ledger rows, `tokengate logs --tier --rule`, /metrics) and
// configs refused at load. Fallback is in routing-fallback.test.mjs, the breaker in
// routing-health.test.mjs, latency and downgrade in routing-policy.test.mjs (their helpers in
// routing-util.mjs). Each describe() runs its own gate (and mock) on loopback ports; what
// a platform engineer would check is checked: the status, the model the mock received
// (/_mock/last, /_mock/stats by_model), the record's route object, the ledger's rows and their
// charges against the mock's usage, /status and /metrics.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  test, cleanup, startMock, tempDir, runGate, newId, ms, sleep, parseSSE,
} from './harness.mjs';
import {
  user, bearer, filler, startRoutingGate, admin, metrics, metric, status, ledgerRows, ledgerRowsFor,
  byModel, moved, send, usedTokens,
} from './routing-util.mjs';

after(cleanup);

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
        '    - { name: capped, match: { model: auto, header: { x-cap: "yes" } }, route: { tier: cheap, max_output_tokens: 5, rewrite_model: true } }',
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

  const capOf = (b) => Math.min(b.max_tokens ?? Infinity, b.max_completion_tokens ?? Infinity);

  test('a rule\'s output cap comes down on a larger cap of the request, and leaves a smaller one', async () => {
    for (const [own, want] of [[3, 3], [100, 5]]) {
      const x = await sendAs('crawler', auto({ max_tokens: own }), { 'x-cap': 'yes' });
      assertRoute(x, { target: 'gpt-4o-mini', tier: 'cheap', rule: 'capped' });
      const sent = JSON.parse((await mock.last()).body);
      assert.equal(sent.model, 'gpt-4o-mini');
      assert.equal(capOf(sent), want, `asked ${own}: ${JSON.stringify(sent)}`);
      assert.ok(x.r.json.usage.completion_tokens <= want, x.r.text);
    }
  });

  test('a rule\'s output cap is written into a request that has none', async () => {
    const x = await sendAs('crawler', auto(), { 'x-cap': 'yes' });
    assertRoute(x, { target: 'gpt-4o-mini', tier: 'cheap', rule: 'capped' });
    const sent = JSON.parse((await mock.last()).body);
    assert.equal(capOf(sent), 5, JSON.stringify(sent));
    assert.ok(x.r.json.usage.completion_tokens <= 5, x.r.text);
  });

  test('rewrite_model: answers, whole and streamed, carry the name asked for', async () => {
    const x = await sendAs('crawler', auto({ max_tokens: 3 }), { 'x-cap': 'yes' });
    assertRoute(x, { target: 'gpt-4o-mini', tier: 'cheap', rule: 'capped' });
    assert.equal(x.r.json.model, 'auto', x.r.text);
    const s = await sendAs('crawler', auto({ stream: true, max_tokens: 3 }), { 'x-cap': 'yes' });
    assertRoute(s, { target: 'gpt-4o-mini', tier: 'cheap', rule: 'capped' });
    const chunks = parseSSE(s.r.text).filter((e) => e.json?.model);
    assert.ok(chunks.length > 0 && chunks.every((e) => e.json.model === 'auto'), s.r.text.slice(0, 400));
  });

  test('rewrite_model on a translated answer: the name asked for', async () => {
    const x = await send(gate, mock, { model: 'auto', max_tokens: 3, messages: user('hi there') },
      { 'x-api-key': KEYS.crawler, 'x-cap': 'yes' }, { path: '/v1/messages' });
    assertRoute(x, { target: 'gpt-4o-mini', tier: 'cheap', rule: 'capped' });
    assert.equal(x.r.json.type, 'message', x.r.text);
    assert.equal(x.r.json.model, 'auto', x.r.text);
  });

  test('without rewrite_model, answers carry the target\'s name', async () => {
    const plain = await sendAs('crawler', auto());
    assertRoute(plain, { target: 'gpt-4o', tier: 'medium', rule: null });
    assert.equal(plain.r.json.model, 'gpt-4o');
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

  test('Anthropic Messages bodies: the same rules read system blocks, image blocks, tools and the last user turn', async () => {
    const msg = (extra) => ({ model: 'auto', max_tokens: 20, messages: user('Say something short.'), ...extra });
    const viaMessages = async (body, rule, target, tier) => {
      const x = await send(gate, mock, body, { 'x-api-key': KEYS.crawler }, { path: '/v1/messages' });
      assertRoute(x, { target, tier, rule });
      assert.equal(x.r.json.type, 'message', x.r.text);
      assert.equal(x.rec.route.translation, 'anthropic.messages->openai.chat');
      return x;
    };
    await viaMessages(msg(), null, 'gpt-4o', 'medium');
    await viaMessages(msg({ system: [{ type: 'text', text: 'You are a ticket classifier.' }] }),
      'sys', 'gpt-4o-mini', 'cheap');
    await viaMessages(msg({ system: 'You are a classifier.' }), 'sys', 'gpt-4o-mini', 'cheap');
    await viaMessages(msg({ messages: [{ role: 'user', content: [
      { type: 'text', text: 'What is in it?' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
    ] }] }), 'images', 'gpt-4.1', 'expensive');
    await viaMessages(msg({ tools: [{ name: 'lookup', input_schema: { type: 'object' } }] }),
      'tools', 'gpt-4.1', 'expensive');
    // the last user turn with text of its own: a turn of tool results only is skipped
    await viaMessages(msg({
      tools: undefined,
      messages: [
        { role: 'user', content: 'hello, look it up' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'tu_1', name: 'lookup', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: 'found' }] },
      ],
    }), 'chit', 'gpt-4o-mini', 'cheap');
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
    // the tightest budget on the path counts: the team's, for an agent of its own far below
    const team = await admin(gate, 'GET', '/admin/v1/budgets?scope=team:eval&window=day&all=1');
    assert.equal(team.status, 200, team.text);
    const teamUsed = team.json.budgets[0].used_tokens;
    const judgeUsed = await usedTokens(gate, 'judge');
    assert.ok(judgeUsed < teamUsed * 0.5, `judge ${judgeUsed} of the team's ${teamUsed}`);
    const putTeam = await admin(gate, 'PUT', '/admin/v1/budgets',
      { scope: 'team:eval', window: 'day', tokens: Math.ceil(teamUsed / 0.85), usd: null });
    assert.equal(putTeam.status, 200, putTeam.text);
    assertRoute(await sendAs('judge', auto({ max_tokens: 10 })),
      { target: 'gpt-4o-mini', tier: 'cheap', rule: 'near-budget' });
    const clearTeam = await admin(gate, 'PUT', '/admin/v1/budgets',
      { scope: 'team:eval', window: 'day', tokens: null, usd: null });
    assert.equal(clearTeam.status, 200, clearTeam.text);
    assertRoute(await sendAs('judge', auto({ max_tokens: 10 })),
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
    // route --explain with the agent's key says the same target
    const req = path.join(tempDir(), 'canary.json');
    fs.writeFileSync(req, JSON.stringify({ model: 'canary', messages: user('question') }));
    for (const [agent, s] of Object.entries(seen)) {
      const r = runGate(['route', '--explain', req, '--config', gate.configPath, '--key', KEYS[agent]]);
      assert.equal(r.status, 0, r.stderr);
      const m = r.stdout.match(/^target: (\S+)/m);
      assert.ok(m, r.stdout);
      assert.equal(m[1], [...s][0], `${agent}: explain says ${m[1]}\n${r.stdout}`);
    }
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
      const labels = { tier, target, rule };
      const what = `{tier="${tier}",target="${target}",rule="${rule}"}`;
      assert.equal(metric(text, 'tokengate_route_requests_total', labels), n,
        `tokengate_route_requests_total${what}`);
      const mine = all.filter((r) => `${r.tier ?? ''}|${r.served_model}|${r.rule ?? ''}` === k);
      const sum = (f) => mine.reduce((a, r) => a + f(r), 0);
      assert.equal(metric(text, 'tokengate_route_tokens_total', { ...labels, kind: 'input' }),
        sum((r) => r.in_usage ?? r.in_own), `input tokens${what}`);
      assert.equal(metric(text, 'tokengate_route_tokens_total', { ...labels, kind: 'output' }),
        sum((r) => r.out_usage ?? r.out_own), `output tokens${what}`);
      assert.ok(Math.abs(metric(text, 'tokengate_route_cost_usd_total', labels) -
        sum((r) => r.cost_nusd) / 1e9) < 1e-9, `cost${what}`);
      assert.equal(metric(text, 'tokengate_route_fallbacks_total', labels), 0, `fallbacks${what}`);
    }
    const st = await status(gate);
    assert.equal(st.routing.requests_by_rule.chit, all.filter((r) => r.rule === 'chit').length);
    // every tier's targets are listed, tried or not (small-a never was: its window is too small)
    for (const t of ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'small-a', 'small-b']) {
      const ts = st.targets.find((x) => x.target === t);
      assert.ok(ts, `${t} in /status targets: ${JSON.stringify(st.targets.map((x) => x.target))}`);
      assert.equal(ts.state, 'closed');
    }
    assert.equal(metric(text, 'tokengate_target_state', { target: 'gpt-4o' }), 0);
  });

  test('/metrics tokengate_target_state shows a tier\'s target not tried yet, as /status does', async () => {
    const text = await metrics(gate);
    assert.equal(metric(text, 'tokengate_target_state', { target: 'small-a' }), 0);
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
        '    - { name: mixed, match: { model: tier:base }, route: { split: [ { target: c-a, percent: 30 }, { tier: base, percent: 70 } ] } }',
      ],
    });
  });

  test('2,000 requests from an open gate land within a few percent of 10/90', { timeout: ms(180000) }, async () => {
    const N = 2000;
    const b0 = await byModel(mock);
    let next = 0;
    const statuses = {};
    const t0 = Date.now();
    const worker = async () => {
      while (next < N && Date.now() - t0 < ms(150000)) {
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
  test('a split share may be a tier: the record names the tier for those, none for the target\'s', async () => {
    const N = 500;
    const ids = [];
    const b0 = await byModel(mock);
    for (let i = 0; i < N; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, async () => {
        const id = newId('mixed');
        const r = await gate.post('/v1/chat/completions', { model: 'tier:base', messages: user('x') },
          { 'x-request-id': id });
        assert.equal(r.status, 200, r.text);
        return id;
      }));
      ids.push(...batch);
    }
    const d = moved(b0, await byModel(mock));
    assert.equal((d['c-a'] || 0) + (d['c-b'] || 0), N);
    const share = d['c-a'] / N;
    assert.ok(share > 0.2 && share < 0.4, `c-a had ${(share * 100).toFixed(1)}%`);
    const recs = [];
    for (const id of ids.slice(-20)) recs.push(await gate.logRecord(id));
    for (const rec of recs) {
      assert.equal(rec.route.rule, 'mixed');
      if (rec.route.target === 'c-a') assert.equal(rec.route.tier, undefined, JSON.stringify(rec.route));
      else assert.deepEqual([rec.route.target, rec.route.tier], ['c-b', 'base']);
    }
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
    ['two rules with one name', R2, '    - { name: r1, match: { model: auto }, route: { tier: cheap } }', /r1/],
    ['a split not summing to 100', R2, '    - { name: r2, match: { model: auto }, route: { split: [ { target: m-a, percent: 10 }, { tier: medium, percent: 80 } ] } }', /100/],
    ['an unknown key in a rule\'s match', R1, '    - { name: r1, match: { model: auto, colour: red }, route: { tier: cheap } }', /colour/],
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
