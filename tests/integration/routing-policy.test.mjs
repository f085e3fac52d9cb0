// Tier routing end to end (issue 12), the policies: the latency-aware choice (prefer_cost with
// max_latency_ms), downgrade under budget pressure (on_exhaustion: downgrade), and a fallback
// re-admitted at its next target's price. Each describe() runs its own org gate and mock on
// loopback ports; checked: the target the mock received (/_mock/stats by_model), the record's
// route object, /status latency, the ledger's charges against the mock's usage and prices.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { test, cleanup, startMock, ms } from './harness.mjs';
import {
  user, bearer, filler, startRoutingGate, status, targetState, ledgerRowsFor, mockUsages, send,
  usedTokens,
} from './routing-util.mjs';

after(cleanup);

// ---- 5 and 7: latency-aware choice, downgrade under budget pressure ------------------------------

describe('policies: latency-aware choice and downgrade', () => {
  const KEYS = {
    racer: 'tg-rt-racer-key-00000001',
    saver: 'tg-rt-saver-key-00000002',
    thrift: 'tg-rt-thrift-key-0000003',
    broke: 'tg-rt-broke-key-00000004',
    strict: 'tg-rt-strict-key-0000005',
    climber: 'tg-rt-climber-key-000006',
  };
  const PRICES = { 'dg-low': [0.15, 0.6], 'dg-mid': [5, 20], 'dg-high': [500, 2000],
    'lat-fast': [1, 4], 'lat-cheap': [0.1, 0.4] };
  const LIMIT_MS = ms(500); // a mock's answer takes a few ms: far under it
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
        '          climber: { policy: frugal }',
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
        '  - { scope: "agent:climber", window: day, usd: 0.01 }',
        'tiers:',
        '  low: [dg-low]',
        '  mid: [dg-mid]',
        '  high: [dg-high]',
        '  lat: [lat-fast, lat-cheap]',
        'routing:',
        '  aliases: { up-high: high }',
        '  rules:',
        '    - { name: climb, match: { model: up-high }, route: { tier: high, tier_up: true } }',
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

  test('a downgraded request that fails over never climbs back to the tier whose price did not fit', async () => {
    assert.equal((await rule({ model: 'dg-mid', status: 503, times: 1 })).status, 200);
    // rule climb: tier high with tier_up; climber's budget fits mid, not high
    const x = await sendAs('climber', { model: 'up-high', messages: user(filler(1000)), max_tokens: 10 });
    assert.equal(x.r.status, 503, x.r.text);
    assert.deepEqual(x.sent, { 'dg-mid': 1 }, 'dg-high is never asked');
    assert.equal(x.rec.route.downgrades, 1);
    assert.equal(x.rec.route.rule, 'climb');
    assert.equal(x.rec.route.target, 'dg-mid');
  });
});

describe('fallback re-admitted at the next target\'s price', () => {
  const KEYS = { plain: 'tg-rt-readmit-plain-0001', frugal: 'tg-rt-readmit-frugal-001' };
  let mock, gate;

  before(async () => {
    mock = await startMock();
    gate = await startRoutingGate({
      providers: { 'mock-openai': { url: `${mock.url}/v1`, format: 'openai' } },
      models: {
        'r-low': '{ provider: mock-openai, price: { input: 0.10, output: 0.10 } }',
        'r-cheap': '{ provider: mock-openai, price: { input: 0.10, output: 0.10 } }',
        'r-pricey': '{ provider: mock-openai, price: { input: 1000, output: 1000 } }',
      },
      extra: [
        'org: acme',
        'departments: { d: { teams: { t: { agents: { plain: {}, frugal: { policy: frugal } } } } } }',
        'keys:',
        ...Object.entries(KEYS).map(([a, k]) => `  ${k}: ${a}`),
        'policies: { frugal: { on_exhaustion: downgrade } }',
        'budgets:',
        '  - { scope: "agent:plain", window: day, usd: 0.001 }',
        '  - { scope: "agent:frugal", window: day, usd: 0.001 }',
        'tiers:',
        '  low: [r-low]',
        '  t: [r-cheap, r-pricey]',
        'routing:',
        '  aliases: { auto: t }',
      ],
    });
  });

  const rule = (r) => mock.direct('/_mock/models',
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });
  const body = { model: 'auto', messages: user('re-admitted'), max_tokens: 10 };

  test('the next target does not fit the budget: 429 budget_exceeded, nothing more forwarded, nothing charged', async () => {
    assert.equal((await rule({ model: 'r-cheap', status: 503, times: 1 })).status, 200);
    const x = await send(gate, mock, body, bearer(KEYS.plain));
    assert.equal(x.r.status, 429, x.r.text);
    assert.equal(x.r.json.error.type, 'budget_exceeded');
    assert.deepEqual(x.sent, { 'r-cheap': 1 }, 'r-pricey is not sent what it would charge for');
    assert.deepEqual(x.rec.route.attempts.map((a) => [a.target, a.status]), [['r-cheap', 503]]);
    const row = (await ledgerRowsFor(gate, [x.id])).get(x.id);
    assert.equal(row.decision, 'rejected');
    assert.equal(row.tokens_charged, 0);
    assert.equal(await usedTokens(gate, 'plain'), 0);
  });

  test('with on_exhaustion: downgrade, the tier below takes it', async () => {
    assert.equal((await rule({ model: 'r-cheap', status: 503, times: 1 })).status, 200);
    const x = await send(gate, mock, body, bearer(KEYS.frugal));
    assert.equal(x.r.status, 200, x.r.text);
    assert.deepEqual(x.sent, { 'r-cheap': 1, 'r-low': 1 });
    assert.equal(x.rec.route.target, 'r-low');
    assert.equal(x.rec.route.tier, 'low');
    assert.equal(x.rec.route.downgrades, 1);
    assert.deepEqual(x.rec.route.attempts.map((a) => [a.target, a.status]), [['r-cheap', 503]]);
    const row = (await ledgerRowsFor(gate, [x.id])).get(x.id);
    const u = (await mockUsages(mock, x.id)).filter((e) => e.complete);
    assert.equal(row.tokens_charged, u[0].input + u[0].output);
    assert.equal(await usedTokens(gate, 'frugal'), row.tokens_charged);
  });
});
