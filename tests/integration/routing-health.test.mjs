// Tier routing end to end (issue 12): target health. A concrete model is relayed whatever its
// health; the circuit breaker opens on failures in a row or on an error ratio, skips the target
// (the mock sees nothing), shows it in /status and /metrics, lets one probe through after the
// cool-down and closes on its success; a probe taken but never sent is given back; a 429's
// retry-after is honoured up to routing.retry_after_max. Fallback is in routing-fallback.test.mjs,
// the latency-aware choice in routing-policy.test.mjs.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  test, cleanup, startMock, ms, sleep,
} from './harness.mjs';
import {
  user, startRoutingGate, metrics, metric, status, targetState, byModel, moved, send,
} from './routing-util.mjs';

after(cleanup);

describe('a concrete model without a rule', () => {
  let mock, gate;

  before(async () => {
    mock = await startMock();
    gate = await startRoutingGate({
      org: false,
      providers: { 'mock-openai': { url: `${mock.url}/v1`, format: 'openai' } },
      models: { 'plain': '{ provider: mock-openai }', 'other': '{ provider: mock-openai }' },
      extra: ['tiers:', '  t: [other]', 'routing:', '  aliases: { pinned: t }', '  rules:',
        '    - { name: pin, match: { model: pinned }, route: { target: other } }'],
    });
  });

  // The issue: "A concrete model is routed only if a rule says so; otherwise it goes where it
  // goes today" - and today a provider's answer is relayed as it is (README, Errors): health
  // (a 429's retry-after, an open circuit) holds back only a tier's targets, which have others.
  test('is not held back by health: provider errors and 429s are relayed as they are, every time', async () => {
    const c0 = (await mock.stats()).requests;
    for (let i = 0; i < 2; i++) {
      const r = await gate.post('/v1/chat/completions', { model: 'plain', messages: user('x') },
        { 'x-mock-fault': '429' });
      assert.equal(r.status, 429, `429 number ${i + 1}: ${r.text}`);
    }
    for (let i = 0; i < 7; i++) {
      const r = await gate.post('/v1/chat/completions', { model: 'plain', messages: user('x') },
        { 'x-mock-status': '500' });
      assert.equal(r.status, 500, `500 number ${i + 1}: ${r.text}`);
    }
    assert.equal((await mock.stats()).requests - c0, 9, 'each one forwarded');
    // /status shows what happened to it all the same
    const st = targetState(await status(gate), 'plain');
    assert.equal(st.state, 'open', JSON.stringify(st));
  });

  test('the same model chosen through a tier is held back while its circuit is open; a rule\'s target is not', async () => {
    const c0 = (await mock.stats()).requests;
    for (let i = 0; i < 5; i++) {
      const r = await gate.post('/v1/chat/completions', { model: 'other', messages: user('x') },
        { 'x-mock-status': '500' });
      assert.equal(r.status, 500);
    }
    const r = await gate.post('/v1/chat/completions', { model: 'tier:t', messages: user('x') });
    assert.equal(r.status, 503, r.text);
    assert.match(r.json.error.message, /every target of tier t is unavailable/);
    // when the circuit's cool-down (the default 15 s) ends, not a blind 1 s
    const ra = Number(r.headers['retry-after']);
    assert.ok(ra >= 10 && ra <= 15, JSON.stringify(r.headers));
    assert.equal((await mock.stats()).requests - c0, 5, 'the sixth not forwarded');
    // a rule's target has no other either: tried whatever its health, its answer relayed
    const pinned = await send(gate, mock, { model: 'pinned', messages: user('x') },
      { 'x-mock-status': '500' });
    assert.equal(pinned.r.status, 500, pinned.r.text);
    assert.deepEqual(pinned.sent, { other: 1 });
    assert.equal(pinned.rec.route.rule, 'pin');
  });
});

// ---- 4: the circuit breaker -------------------------------------------------------------------

describe('circuit breaker', () => {
  const COOLDOWN_S = Math.round(ms(4000) / 1000); // room for the requests made while it is open
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
        '  retry_after_max: 2s',
        `  breaker: { failures: 3, error_ratio: 100, min_requests: 100000, window: 30s, cooldown: ${COOLDOWN_S}s }`,
      ],
    });
  });

  const rule = (r) => mock.direct('/_mock/models',
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });
  const ask = () => send(gate, mock, { model: 'auto', messages: user('breaker') });

  /** Polls /status until b-a's cool-down is over (bounded). */
  async function coolDown() {
    const deadline = Date.now() + ms(15000) + COOLDOWN_S * 1000;
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
    assert.ok(st.open_for_s > 0 && st.open_for_s <= COOLDOWN_S, JSON.stringify(st));
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
    assert.equal((await rule({ model: 'b-a', delay_ms: ms(1500), times: -1 })).status, 200);
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

  test('a 429\'s retry-after is honoured up to routing.retry_after_max, and is no failure', async () => {
    assert.equal((await rule({ model: 'b-a', status: 429, retry_after: 3600, times: 1 })).status, 200);
    const x = await ask();
    assert.deepEqual(x.sent, { 'b-a': 1, 'b-b': 1 });
    assert.deepEqual(x.rec.route.attempts.map((a) => [a.target, a.status]), [['b-a', 429]]);
    const st = targetState(await status(gate), 'b-a');
    assert.ok(st.retry_after_s >= 1 && st.retry_after_s <= 2, JSON.stringify(st));
    assert.equal(st.state, 'closed');
    assert.equal(st.failures_in_row, 0);
    assert.deepEqual((await ask()).sent, { 'b-b': 1 }, 'held back meanwhile');
    // back within the cap, not an hour later (bounded wait)
    const deadline = Date.now() + ms(10000);
    let y;
    do {
      await sleep(200);
      y = await ask();
    } while (y.rec.route.target !== 'b-a' && Date.now() < deadline);
    assert.deepEqual(y.sent, { 'b-a': 1 });
  });
});

describe('circuit breaker: two targets half-open at once', () => {
  let mock, gate;

  before(async () => {
    mock = await startMock();
    gate = await startRoutingGate({
      org: false,
      providers: { 'mock-openai': { url: `${mock.url}/v1`, format: 'openai' } },
      models: { 'p-a': '{ provider: mock-openai }', 'p-b': '{ provider: mock-openai }',
        'p-c': '{ provider: mock-openai }' },
      extra: [
        'tiers:',
        '  t: [p-a, p-b, p-c]',
        'routing:',
        '  aliases: { auto: t }',
        '  breaker: { failures: 2, error_ratio: 100, min_requests: 100000, cooldown: 2s }',
      ],
    });
  });

  const rule = (r) => mock.direct('/_mock/models',
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });
  const ask = (i) => send(gate, mock, { model: 'auto', messages: user(`two probes ${i}`) });

  // Both get a probe when one request lists them; the request is answered by the first, and
  // the other's probe, never sent, must be given back: else the target waits out the lost-probe
  // delay (60 s at least) before anyone probes it, healthy as it is.
  test('the probe a request took but never sent is given back: the next request probes that target', async () => {
    assert.equal((await rule([{ model: 'p-a', status: 500, times: -1 },
      { model: 'p-b', status: 500, times: -1 }])).status, 200);
    for (let i = 0; i < 2; i++)
      assert.deepEqual((await ask(i)).sent, { 'p-a': 1, 'p-b': 1, 'p-c': 1 });
    let st = await status(gate);
    assert.equal(targetState(st, 'p-a').state, 'open');
    assert.equal(targetState(st, 'p-b').state, 'open');
    assert.equal((await rule([{ model: 'p-a' }, { model: 'p-b' }])).status, 200);
    const deadline = Date.now() + ms(15000);
    while (targetState(await status(gate), 'p-a').open_for_s > 0) {
      assert.ok(Date.now() < deadline, 'the cool-down ends');
      await sleep(100);
    }
    while (targetState(await status(gate), 'p-b').open_for_s > 0) {
      assert.ok(Date.now() < deadline, 'the cool-down ends');
      await sleep(100);
    }
    const first = await ask(10);
    assert.equal(first.r.status, 200);
    assert.equal(Object.keys(first.sent).length, 1, JSON.stringify(first.sent));
    const probed = Object.keys(first.sent)[0];
    const other = probed === 'p-a' ? 'p-b' : 'p-a';
    assert.ok(['p-a', 'p-b'].includes(probed), `a probe went first: ${probed}`);
    assert.equal(targetState(await status(gate), probed).state, 'closed');
    const next = await ask(11);
    assert.deepEqual(next.sent, { [other]: 1 }, `the next request probes ${other}`);
    st = await status(gate);
    assert.equal(targetState(st, 'p-a').state, 'closed', JSON.stringify(targetState(st, 'p-a')));
    assert.equal(targetState(st, 'p-b').state, 'closed', JSON.stringify(targetState(st, 'p-b')));
    assert.deepEqual((await ask(12)).sent, { 'p-a': 1 }, 'the tier\'s order again');
  });
});

describe('circuit breaker: error ratio', () => {
  let mock, gate;

  before(async () => {
    mock = await startMock();
    gate = await startRoutingGate({
      org: false,
      providers: { 'mock-openai': { url: `${mock.url}/v1`, format: 'openai' } },
      models: { 'e-a': '{ provider: mock-openai }', 'e-b': '{ provider: mock-openai }' },
      extra: [
        'tiers:',
        '  t: [e-a, e-b]',
        'routing:',
        '  aliases: { auto: t }',
        '  breaker: { failures: 1000, error_ratio: 50, min_requests: 4, window: 60s, cooldown: 60s }',
      ],
    });
  });

  const rule = (r) => mock.direct('/_mock/models',
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });

  test('failures over the ratio of at least min_requests in the window open the circuit, none of them in a row', async () => {
    let st;
    let i = 0;
    for (; i < 12; i++) {
      if (i % 2 === 0) await rule({ model: 'e-a', status: 503, times: 1 }); // fail, succeed, ...
      const x = await send(gate, mock, { model: 'auto', messages: user(`ratio ${i}`) });
      assert.equal(x.r.status, 200, x.r.text);
      st = targetState(await status(gate), 'e-a');
      assert.ok(st.failures_in_row <= 1, JSON.stringify(st));
      if (st.state === 'open') break;
    }
    assert.equal(st.state, 'open', JSON.stringify(st));
    assert.ok(st.requests_in_window >= 4 && st.error_ratio >= 0.5, JSON.stringify(st));
    assert.ok(i >= 3, `opened after ${i + 1} requests`);
    assert.equal(i % 2, 0, 'opened by a failure');
    const x = await send(gate, mock, { model: 'auto', messages: user('after') });
    assert.deepEqual(x.sent, { 'e-b': 1 });
  });
});
