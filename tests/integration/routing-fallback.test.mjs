// Tier routing end to end (issue 12): fallback on each fault mode of the mock (connect failure,
// timeout, 500/503/529, 429 with retry-after, resets, an answer cut after its head), the attempts
// cap, tier_up, streams before and after their first byte, other APIs, a target whose translation
// cannot carry the body, and the routing metrics of it all. One org gate in front of the mock
// (per-model faults: POST /_mock/models), a closed port and a provider that cuts its answers.
// Checked: the status, the models the mock received (/_mock/stats by_model), the record's route
// object and attempts, the ledger's rows ("ID/N" for an attempt that cost something) and the
// budget against the mock's usage, /status and /metrics.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  test, cleanup, startMock, closedPort, ms, sleep, parseSSE, readLogNow,
} from './harness.mjs';
import {
  user, bearer, admin, startRoutingGate, metrics, metric, status, targetState, ledgerRows,
  ledgerRowsFor, rowsOf, mockUsages, send, usedTokens,
} from './routing-util.mjs';

after(cleanup);

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
        'mock-anthropic': { url: `${mock.url}/v1`, format: 'anthropic' },
      },
      models: {
        'f-dead': `{ provider: dead-openai, ${price} }`,
        'f-cut': `{ provider: cut-openai, ${price} }`,
        'f-a': `{ provider: mock-openai, ${price} }`,
        'f-b': `{ provider: mock-openai, ${price} }`,
        'f-c': `{ provider: mock-openai, ${price} }`,
        'f-d': `{ provider: mock-openai, ${price} }`,
        'f-up': `{ provider: mock-openai, ${price} }`,
        'f-claude': '{ provider: mock-anthropic, price: { input: 3.00, output: 15.00 } }',
        'f-claude2': '{ provider: mock-anthropic, price: { input: 3.00, output: 15.00 } }',
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
        '  mixed: [f-a, f-claude]',
        '  mixed3: [f-a, f-claude, f-b]',
        '  claude-first: [f-claude, f-b]',
        '  anth: [f-claude, f-claude2]',
        'routing:',
        '  aliases: { dead-first: conn, cut-first: cut, fall: fb, four: four, pair: pair,',
        '    mixed: mixed, mixed3: mixed3, claude-first: claude-first, anth: anth }',
        '  attempts: 3',
        '  breaker: { failures: 1000, error_ratio: 100, min_requests: 100000 }',
        '  rules:',
        '    - { name: climb, match: { model: pair, header: { x-climb: yes } }, route: { tier: pair, tier_up: true } }',
      ],
    });
  });

  const ask = (model, extra = {}) => ({ model, messages: user('fallback, please'), ...extra });
  const sendFb = (body, headers = {}, p = undefined) =>
    send(gate, mock, body, { ...bearer(KEY), ...headers }, { path: p });
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
    const set = await rule({ model: 'f-a', status: 429, retry_after: 3, times: 1 });
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
    // the provider had the prompt and may be making the answer: its input is charged
    assert.ok(aloneRow.tokens_charged > 0 && aloneRow.tokens_charged === aloneRow.in_own,
      JSON.stringify(aloneRow));

    await rule({ model: 'f-a', delay_ms: 2500, times: 1 });
    const used0 = await usedTokens(gate, 'fb');
    const t0 = Date.now();
    const x = await sendFb(ask('fall'));
    assert.ok(Date.now() - t0 >= 900, 'waited for upstream_first_byte');
    assert.deepEqual(x.sent, { 'f-a': 1, 'f-b': 1 });
    const { own } = await assertFellBack(x, 'f-b',
      [{ target: 'f-a', status: 0, reason: /./ }], used0);
    assert.equal(x.rec.route.attempts[0].tokens_charged, aloneRow.tokens_charged);
    assert.equal(own.length, 1); /* the attempt's own row: "ID/1", decision fallback */
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

  test('fallback to a target of the other format: translated, re-counted and charged at its own price', async () => {
    for (const stream of [false, true]) {
      await rule({ model: 'f-a', status: 503, times: 1 });
      const used0 = await usedTokens(gate, 'fb');
      const body = ask('mixed', stream ? { stream: true, stream_options: { include_usage: true } } : {});
      const x = await sendFb(body);
      assert.equal(x.r.status, 200, x.r.text);
      assert.deepEqual(x.sent, { 'f-a': 1, 'f-claude': 1 });
      if (stream) {
        const ev = parseSSE(x.r.text);
        assert.equal(ev.at(-1).data, '[DONE]', 'an OpenAI stream, to its end');
        assert.ok(ev.some((e) => e.json?.object === 'chat.completion.chunk'));
      } else {
        assert.equal(x.r.json.object, 'chat.completion', x.r.text);
      }
      const rt = x.rec.route;
      assert.equal(rt.target, 'f-claude');
      assert.equal(rt.translation, 'openai.chat->anthropic.messages');
      assert.deepEqual(rt.attempts.map((a) => [a.target, a.status, a.tokens_charged]), [['f-a', 503, 0]]);
      const row = (await ledgerRowsFor(gate, [x.id])).get(x.id);
      const u = (await mockUsages(mock, x.id)).filter((e) => e.complete);
      assert.equal(u.length, 1);
      assert.equal(row.tokens_charged, u[0].input + u[0].output);
      assert.equal(row.cost_nusd, u[0].input * 3000 + u[0].output * 15000, 'at f-claude\'s price');
      assert.equal(row.translation, 'openai.chat->anthropic.messages');
      assert.equal(await usedTokens(gate, 'fb') - used0, row.tokens_charged);
    }
  });

  test('a target whose translation cannot carry the body is passed over; when none is left, the provider\'s error is relayed', async () => {
    const lp = (model) => ask(model, { logprobs: true }); // no Anthropic equivalent
    // first in its tier: passed over for the next, which speaks the client's format
    const x = await sendFb(lp('claude-first'));
    assert.equal(x.r.status, 200, x.r.text);
    assert.deepEqual(x.sent, { 'f-b': 1 });
    assert.equal(x.rec.route.target, 'f-b');
    assert.equal(x.rec.route.translation, undefined);
    assert.deepEqual(x.rec.route.attempts, []);
    // a fallback passes over it too
    await rule({ model: 'f-a', status: 503, times: 1 });
    const y = await sendFb(lp('mixed3'));
    assert.equal(y.r.status, 200, y.r.text);
    assert.deepEqual(y.sent, { 'f-a': 1, 'f-b': 1 });
    assert.deepEqual(y.rec.route.attempts.map((a) => [a.target, a.status]), [['f-a', 503]]);
    // nothing after it: the 503 is the client's, not a 400 about a target it never asked for
    await rule({ model: 'f-a', status: 503, times: 1 });
    const z = await sendFb(lp('mixed'));
    assert.equal(z.r.status, 503, z.r.text);
    assert.deepEqual(z.sent, { 'f-a': 1 });
    assert.deepEqual(z.rec.route.attempts, []);
    // the only target: the 400 names the field, nothing forwarded
    const c0 = (await mock.stats()).requests;
    const w = await sendFb(lp('f-claude'));
    assert.equal(w.r.status, 400, w.r.text);
    assert.match(w.r.json.error.message, /logprobs/);
    assert.equal((await mock.stats()).requests, c0);
  });

  test('no reservation is left behind by the attempts given up', async () => {
    const r = await admin(gate, 'GET', '/admin/v1/budgets?scope=agent:fb&window=day&all=1');
    const b = r.json.budgets[0];
    assert.equal(b.reserved_tokens, 0, JSON.stringify(b));
    const m = await metrics(gate);
    assert.equal(metric(m, 'tokengate_reserved_tokens'), 0);
  });

  test('/metrics and /status: fallbacks and cost by tier, target and rule, attempts included', async () => {
    const recs = readLogNow(gate.logPath).filter((r) => r.route);
    const rows = ledgerRows(gate);
    const text = await metrics(gate);
    const groups = new Map();
    for (const r of recs) {
      const k = `${r.route.tier ?? ''}|${r.route.target}|${r.route.rule ?? ''}`;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(r);
    }
    let fallbacks = 0;
    for (const [k, rs] of groups) {
      const [tier, target, rule] = k.split('|');
      const labels = { tier, target, rule };
      const fb = rs.filter((r) => r.route.attempts.length > 0).length;
      fallbacks += fb;
      assert.equal(metric(text, 'tokengate_route_requests_total', labels), rs.length, k);
      assert.equal(metric(text, 'tokengate_route_fallbacks_total', labels) ?? 0, fb, k);
      // the cost of the answers and of the attempts given up ("ID/N" rows)
      const ids = new Set(rs.map((r) => r.id));
      const nusd = rows.filter((r) => ids.has(r.id.replace(/\/\d+$/, '')))
        .reduce((a, r) => a + r.cost_nusd, 0);
      assert.ok(Math.abs((metric(text, 'tokengate_route_cost_usd_total', labels) ?? 0) - nusd / 1e9) < 1e-9,
        `${k}: ${metric(text, 'tokengate_route_cost_usd_total', labels)} against ${nusd / 1e9}`);
    }
    assert.ok(fallbacks >= 8, `${fallbacks}`);
    const st = await status(gate);
    assert.equal(st.routing.fallbacks, fallbacks);
    assert.equal(st.routing.requests, recs.length);
  });

  // (the mock's reset of a stream comes after some of it: see the test after these)
  for (const [what, fault, status, model, first] of [['a 503', { status: 503 }, 503, 'fall', 'f-a'],
    ['no first byte in time', { delay_ms: 2500 }, 0, 'fall', 'f-a'],
    ['connect failure', null, 0, 'dead-first', 'f-dead']]) {
    test(`a stream falls back before its first byte: ${what}`, async () => {
      if (fault) await rule({ model: 'f-a', ...fault, times: 1 });
      const x = await sendFb(ask(model, { stream: true, stream_options: { include_usage: true } }));
      assert.equal(x.r.status, 200, x.r.text);
      assert.match(x.r.headers['content-type'], /text\/event-stream/);
      const ev = parseSSE(x.r.text);
      assert.equal(ev.at(-1).data, '[DONE]');
      assert.ok(!ev.some((e) => e.json?.error), 'no error event');
      assert.deepEqual(x.sent, first === 'f-a' ? { 'f-a': 1, 'f-b': 1 } : { 'f-b': 1 });
      assert.equal(x.rec.route.target, 'f-b');
      assert.deepEqual(x.rec.route.attempts.map((a) => [a.target, a.status]), [[first, status]]);
      const rows = await ledgerRowsFor(gate, [x.id]);
      const u = (await mockUsages(mock, x.id)).filter((e) => e.complete);
      assert.equal(rows.get(x.id).tokens_charged, u[0].input + u[0].output);
    });
  }

  test('Anthropic Messages (a 529, stream and not) and the Responses API fall back too', async () => {
    for (const stream of [false, true]) {
      await rule({ model: 'f-claude', status: 529, times: 1 });
      const x = await sendFb({ model: 'anth', max_tokens: 20, messages: user('overloaded?'), stream },
        {}, '/v1/messages');
      assert.equal(x.r.status, 200, x.r.text);
      if (stream) assert.equal(parseSSE(x.r.text).at(-1).event, 'message_stop');
      else assert.equal(x.r.json.type, 'message', x.r.text);
      assert.deepEqual(x.sent, { 'f-claude': 1, 'f-claude2': 1 });
      assert.deepEqual(x.rec.route.attempts.map((a) => [a.target, a.status]), [['f-claude', 529]]);
      const row = (await ledgerRowsFor(gate, [x.id])).get(x.id);
      const u = (await mockUsages(mock, x.id)).filter((e) => e.complete);
      assert.equal(row.tokens_charged, u[0].input + u[0].output);
    }
    await rule({ model: 'f-a', status: 500, times: 1 });
    const r = await sendFb({ model: 'fall', input: 'responses, please' }, {}, '/v1/responses');
    assert.equal(r.r.status, 200, r.r.text);
    assert.equal(r.r.json.object, 'response', r.r.text);
    assert.deepEqual(r.sent, { 'f-a': 1, 'f-b': 1 });
    assert.deepEqual(r.rec.route.attempts.map((a) => [a.target, a.status]), [['f-a', 500]]);
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
