// A crash must not make spend disappear (issue 10, item 4): requests that were forwarded when
// the gate was killed are charged on restart at their reservation, recorded as unsettled, from
// the crash journal (gate/budget/journal.c); requests that completed before the crash are charged once.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, gateAdminPort, adminRequest, httpRequest, tempDir, sleep,
  ms, GATE_BIN,
} from './harness.mjs';

const ADMIN_TOKEN = 'crash-admin-token-0123456789';
const ENV = { TG_CRASH_ADMIN: ADMIN_TOKEN };
const KEY = 'tg-crash-worker-key';

after(cleanup);

function config(dir, mockUrl, sync = 'normal') {
  const q = JSON.stringify;
  return [
    'listen: 127.0.0.1:0',
    'workers: 2',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'providers:',
    `  mock-openai: { base_url: ${q(mockUrl + '/v1')}, format: openai }`,
    'models:',
    '  gpt-4o-mini: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }',
    'org: acme',
    'departments:',
    '  lab:',
    '    teams:',
    '      ops: { agents: [runner] }',
    'keys:',
    `  ${KEY}: runner`,
    'budgets:',
    '  - { scope: team:ops, window: day, tokens: 1000000, usd: 100 }',
    `ledger: { path: ${q(path.join(dir, 'ledger.db'))}, sync: ${sync} }`,
    'admin: { listen: 127.0.0.1:0, token_env: TG_CRASH_ADMIN }',
  ].join('\n') + '\n';
}

async function start(dir, mockUrl, sync) {
  const gate = await startGate({ configText: config(dir, mockUrl, sync), dir, env: ENV });
  gate.admin = await gateAdminPort(gate);
  return gate;
}

async function teamDay(gate) {
  const r = await adminRequest(gate.admin, 'GET', '/admin/v1/budgets?scope=team:ops&window=day&all=1',
    { token: ADMIN_TOKEN });
  assert.equal(r.status, 200, r.text);
  return r.json.budgets[0];
}

function ledgerRecords(db) {
  const r = spawnSync(GATE_BIN, ['logs', '--db', db, '--format', 'json', '--limit', '100000'], {
    encoding: 'utf8', timeout: ms(30000),
  });
  assert.equal(r.status, 0, `tokengate logs: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l).map((l) => JSON.parse(l));
}

function chat(gate, id, headers = {}, stream = false) {
  return gate.post('/v1/chat/completions', {
    model: 'gpt-4o-mini', max_tokens: 200, stream,
    messages: [{ role: 'user', content: `crash test request ${id}` }],
  }, { authorization: `Bearer ${KEY}`, 'x-request-id': id, ...headers }, { timeoutMs: ms(30000) });
}

test('kill -9 with requests in flight: each is charged at its reservation on restart, ' +
  'marked unsettled; completed ones are charged once', { timeout: ms(90000) }, async () => {
  const mock = await startMock();
  const dir = tempDir('tg-crash-');
  const db = path.join(dir, 'ledger.db');
  let gate = await start(dir, mock.url);

  // completed before the crash
  const DONE = 4;
  for (let i = 0; i < DONE; i++) {
    const r = await chat(gate, `done-${i}`, { 'x-mock-tokens': String(10 + i) }, i % 2 === 1);
    assert.equal(r.status, 200, r.text);
  }
  // in flight at the crash: the provider got them and never answers
  const HUNG = 6;
  const before = (await mock.stats()).requests;
  const hung = [];
  for (let i = 0; i < HUNG; i++)
    hung.push(chat(gate, `hung-${i}`, { 'x-mock-fault': 'hang' }, i % 2 === 0).catch((e) => e));
  const deadline = Date.now() + ms(20000);
  while ((await mock.stats()).requests < before + HUNG) {
    assert.ok(Date.now() < deadline, 'the mock never received every request');
    await sleep(20);
  }
  const held = await teamDay(gate);
  assert.ok(held.reserved_tokens > 0 && held.reserved_usd > 0, JSON.stringify(held));
  const st = (await httpRequest(gate.port, '/status',
    { headers: { authorization: `Bearer ${KEY}` }, timeoutMs: ms(10000) })).json;
  assert.equal(st.journal_in_flight, HUNG, JSON.stringify(st));

  gate.proc.child.kill('SIGKILL');
  await gate.proc.waitExit(ms(5000));
  await Promise.all(hung);
  assert.ok(fs.existsSync(db + '.inflight'), 'the journal file is there');

  gate = await start(dir, mock.url);
  await gate.proc.waitFor('stderr', /6 requests were in flight when the gate last stopped/,
    ms(5000), 'the recovery line');
  const usage = (await mock.hook('GET', '/_mock/usage')).usage;
  const recs = ledgerRecords(db);
  const ids = recs.map((r) => r.id).sort();
  assert.deepEqual(ids, [...Array(DONE).keys()].map((i) => `done-${i}`)
    .concat([...Array(HUNG).keys()].map((i) => `hung-${i}`)).sort(), 'one record per request');
  let doneTokens = 0;
  let doneNusd = 0;
  let hungTokens = 0;
  let hungNusd = 0;
  for (const r of recs) {
    if (r.id.startsWith('done-')) {
      const u = usage[r.id];
      assert.equal(r.decision, 'admitted');
      assert.equal(r.tokens_charged, u.input + u.output, JSON.stringify(r));
      doneTokens += r.tokens_charged;
      doneNusd += r.cost_nusd;
    } else {
      assert.equal(r.decision, 'unsettled', JSON.stringify(r));
      assert.match(r.error, /in flight: charged at its reservation/);
      assert.equal(r.agent, 'runner');
      assert.equal(r.team, 'ops');
      assert.ok(r.tokens_charged > 200, `the reservation holds the output allowance: ${r.tokens_charged}`);
      assert.equal(r.tokens_charged, r.reserved_tokens);
      assert.ok(r.cost_nusd > 0);
      hungTokens += r.tokens_charged;
      hungNusd += r.cost_nusd;
    }
  }
  // what was reserved before the kill is what is charged now
  assert.equal(hungTokens, held.reserved_tokens);
  assert.ok(Math.abs(hungNusd / 1e9 - held.reserved_usd) < 1e-9, `${hungNusd} vs ${held.reserved_usd}`);
  const now = await teamDay(gate);
  assert.equal(now.used_tokens, doneTokens + hungTokens, JSON.stringify(now));
  assert.ok(Math.abs(now.used_usd - (doneNusd + hungNusd) / 1e9) < 1e-9, JSON.stringify(now));
  assert.equal(now.reserved_tokens, 0);

  // a clean stop and another start: nothing is charged twice
  await gate.stop();
  gate = await start(dir, mock.url);
  assert.equal(ledgerRecords(db).length, DONE + HUNG);
  assert.equal((await teamDay(gate)).used_tokens, doneTokens + hungTokens);
  assert.doesNotMatch(gate.proc.tail(), /were in flight/);
});

test('kill -9 during a fallback: the attempt given up keeps its own row, the attempt in flight is ' +
  'charged at its reservation on restart', { timeout: ms(90000) }, async () => {
  const mock = await startMock();
  const dir = tempDir('tg-crash-fb-');
  const db = path.join(dir, 'ledger.db');
  const q = JSON.stringify;
  // two targets of one tier: the first answers too late (a first-byte timeout: charged its
  // input, a row "ID/1" of its own), the second never answers (in flight at the kill)
  const text = config(dir, mock.url)
    .replace("  gpt-4o-mini: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }",
      "  gpt-a: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }\n" +
      "  gpt-b: { provider: mock-openai, price: { input: 2.50, output: 10.00 } }\n" +
      "tiers:\n  t: [gpt-a, gpt-b]\nrouting:\n  aliases: { auto: t }\n" +
      "timeouts: { upstream_first_byte: 1s }");
  let gate = await startGate({ configText: text, dir, env: ENV });
  gate.admin = await gateAdminPort(gate);
  for (const r of [{ model: 'gpt-a', delay_ms: 5000, times: 1 }, { model: 'gpt-b', fault: 'hang', times: 1 }]) {
    const set = await mock.direct('/_mock/models', { method: 'POST',
      headers: { 'content-type': 'application/json' }, body: q(r) });
    assert.equal(set.status, 200, set.text);
  }
  const id = 'fb-crash-1';
  const pending = gate.post('/v1/chat/completions', {
    model: 'auto', max_tokens: 200, messages: [{ role: 'user', content: 'crash during a fallback' }],
  }, { authorization: `Bearer ${KEY}`, 'x-request-id': id }, { timeoutMs: ms(30000) }).catch((e) => e);
  const deadline = Date.now() + ms(20000);
  for (;;) {
    const by = (await mock.stats()).by_model ?? {};
    if ((by['gpt-a'] ?? 0) >= 1 && (by['gpt-b'] ?? 0) >= 1) break;
    assert.ok(Date.now() < deadline, `the fallback never reached gpt-b: ${q(by)}`);
    await sleep(20);
  }
  await sleep(200); /* the second attempt is on its way: reserved, in the journal */
  const held = await teamDay(gate);
  assert.ok(held.reserved_tokens > 200, q(held));
  gate.proc.child.kill('SIGKILL');
  await gate.proc.waitExit(ms(5000));
  await pending;

  gate = await startGate({ configText: text, dir, env: ENV });
  gate.admin = await gateAdminPort(gate);
  const recs = ledgerRecords(db);
  const given = recs.find((r) => r.id === `${id}/1`);
  const inflight = recs.find((r) => r.id === id);
  assert.ok(given && inflight, q(recs));
  assert.equal(recs.length, 2, q(recs));
  // the attempt given up: its input, at gpt-a's price, recorded before the kill
  assert.equal(given.decision, 'fallback', q(given));
  assert.equal(given.served_model, 'gpt-a', q(given));
  assert.ok(given.in_own > 0 && given.tokens_charged === given.in_own, q(given));
  // the attempt in flight: its reservation at gpt-b's price, from the journal
  assert.equal(inflight.decision, 'unsettled', q(inflight));
  assert.equal(inflight.served_model, 'gpt-b', q(inflight));
  assert.equal(inflight.tokens_charged, inflight.reserved_tokens, q(inflight));
  assert.equal(inflight.tokens_charged, held.reserved_tokens, q({ inflight, held }));
  const now = await teamDay(gate);
  assert.equal(now.used_tokens, given.tokens_charged + inflight.tokens_charged, q(now));
  assert.equal(now.reserved_tokens, 0);
});

test('a second gate on the same ledger is refused: it would recover the first one\'s requests',
  async () => {
    const mock = await startMock();
    const dir = tempDir('tg-crash-');
    await start(dir, mock.url);
    fs.writeFileSync(path.join(dir, 'gate2.yaml'), config(dir, mock.url));
    const r = spawnSync(GATE_BIN, ['serve', '--config', path.join(dir, 'gate2.yaml')], {
      encoding: 'utf8', timeout: ms(20000), env: { ...process.env, ...ENV },
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /journal .*ledger\.db\.inflight is in use: another tokengate runs/);
  });

test('sync: full: the journal\'s thread writes it to the disk; a kill -9 is recovered the same way',
  { timeout: ms(60000) }, async () => {
    const mock = await startMock();
    const dir = tempDir('tg-crash-');
    let gate = await start(dir, mock.url, 'full');
    assert.equal((await chat(gate, 'full-done', { 'x-mock-tokens': '9' })).status, 200);
    const before = (await mock.stats()).requests;
    const hung = [0, 1].map((i) => chat(gate, `full-hung-${i}`, { 'x-mock-fault': 'hang' }).catch((e) => e));
    for (const t0 = Date.now(); (await mock.stats()).requests < before + 2; await sleep(20))
      assert.ok(Date.now() - t0 < ms(20000), 'the mock never received both');
    const held = await teamDay(gate);
    gate.proc.child.kill('SIGKILL');
    await gate.proc.waitExit(ms(5000));
    await Promise.all(hung);
    gate = await start(dir, mock.url, 'full');
    const recs = ledgerRecords(path.join(dir, 'ledger.db'));
    const unsettled = recs.filter((r) => r.decision === 'unsettled').map((r) => r.id).sort();
    assert.deepEqual(unsettled, ['full-hung-0', 'full-hung-1']);
    assert.equal(recs.length, 3);
    const charged = recs.filter((r) => r.decision === 'unsettled').reduce((a, r) => a + r.tokens_charged, 0);
    assert.equal(charged, held.reserved_tokens);
  });
