// The ledger failing must not mean free spend (issue 10, item 5). With the ledger locked by
// another process, on a full disk (a file-size limit lowered on the running gate) or deleted,
// new requests get 503 in the API's format (ledger.on_failure: closed, the default), an alert
// fires (stderr, request log, webhook), responses under way are not held on the lock, and the
// records that could not be committed are kept and written once the ledger works again: in the
// end the ledger has every request once, charged what the mock served.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, gateAdminPort, adminRequest, httpRequest, tempDir, sleep,
  ms, GATE_BIN, startWebhook, readLogNow,
} from './harness.mjs';

const ADMIN_TOKEN = 'ledger-failure-admin-0123456789';
const ENV = { TG_LF_ADMIN: ADMIN_TOKEN };
const KEY = 'tg-ledger-failure-key';

after(cleanup);

function config(dir, mockUrl, { hook, requestLog = true, onFailure } = {}) {
  const q = JSON.stringify;
  const state = path.join(dir, 'state');
  fs.mkdirSync(state, { recursive: true });
  const lines = [
    'listen: 127.0.0.1:0',
    'workers: 1',
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
    '  - { scope: team:ops, window: day, tokens: 1000000 }',
    'ledger:',
    `  path: ${q(path.join(state, 'ledger.db'))}`,
    ...(onFailure ? [`  on_failure: ${onFailure}`] : []),
    'admin: { listen: 127.0.0.1:0, token_env: TG_LF_ADMIN }',
  ];
  if (requestLog) lines.splice(2, 0, `request_log: ${q(path.join(dir, 'requests.jsonl'))}`);
  if (hook) lines.push(`alerts: { thresholds: [99], webhook: ${q(hook.url + '/alerts')} }`);
  return lines.join('\n') + '\n';
}

async function start(dir, mockUrl, opts = {}) {
  const gate = await startGate({ configText: config(dir, mockUrl, opts), dir, env: ENV });
  gate.admin = await gateAdminPort(gate);
  gate.db = path.join(dir, 'state', 'ledger.db');
  return gate;
}

const status = async (gate) => (await httpRequest(gate.port, '/status',
  { headers: { authorization: `Bearer ${KEY}` }, timeoutMs: ms(10000) })).json;

/** Polls /status until pred(status) holds. */
async function until(gate, pred, what, timeoutMs = ms(20000)) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await status(gate);
    if (pred(s)) return s;
    assert.ok(Date.now() < deadline, `${what}: ${JSON.stringify(s)}`);
    await sleep(25);
  }
}

function chat(gate, id, stream = false) {
  return gate.post('/v1/chat/completions', {
    model: 'gpt-4o-mini', max_tokens: 50, stream,
    messages: [{ role: 'user', content: `ledger failure ${id}` }],
  }, { authorization: `Bearer ${KEY}`, 'x-request-id': id, 'x-mock-tokens': '12' },
  { timeoutMs: ms(30000) });
}

function ledgerRecords(db) {
  const r = spawnSync(GATE_BIN, ['logs', '--db', db, '--format', 'json', '--limit', '100000'], {
    encoding: 'utf8', timeout: ms(30000),
  });
  assert.equal(r.status, 0, `tokengate logs: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l).map((l) => JSON.parse(l));
}

/** The 503 a failing ledger answers, in the OpenAI format, and nothing sent to the mock. */
async function assertRefused(gate, mock, id) {
  const before = (await mock.stats()).requests;
  const r = await chat(gate, id);
  assert.equal(r.status, 503, r.text);
  assert.equal(r.json.error.type, 'server_error');
  assert.match(r.json.error.message,
    /cannot record spend right now \(its ledger fails: .+\); requests are refused until it can/);
  assert.equal((await mock.stats()).requests, before, 'nothing was forwarded');
  return r;
}

/**
 * After a restart: every id of ok once, charged the mock's usage; every id of refused once,
 * as unavailable and charged nothing; the budget's used is their sum.
 */
async function assertLedger(gate, mock, ok, refused) {
  const usage = (await mock.hook('GET', '/_mock/usage')).usage;
  const recs = ledgerRecords(gate.db);
  assert.deepEqual(recs.map((r) => r.id).sort(), [...ok, ...refused].sort(),
    'every request once in the ledger');
  let total = 0;
  for (const r of recs) {
    if (ok.includes(r.id)) {
      const u = usage[r.id];
      assert.equal(r.decision, 'admitted', JSON.stringify(r));
      assert.equal(r.tokens_charged, u.input + u.output, JSON.stringify(r));
      assert.ok(r.cost_nusd > 0);
    } else {
      assert.equal(r.decision, 'unavailable', JSON.stringify(r));
      assert.equal(r.status, 503);
      assert.equal(r.tokens_charged, 0);
    }
    total += r.tokens_charged;
  }
  const b = await adminRequest(gate.admin, 'GET', '/admin/v1/budgets?scope=team:ops&window=day',
    { token: ADMIN_TOKEN });
  assert.equal(b.json.budgets[0].used_tokens, total, 'the budget holds all of it after a restart');
}

/** Another process (sqlite3) takes the ledger's write lock and keeps it until its stdin says
 * COMMIT: returns that process once it holds the lock. */
async function lockLedger(db) {
  const holder = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  holder.stdout.on('data', (d) => { out += d; });
  holder.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'locked';\n");
  for (const t0 = Date.now(); !out.includes('locked'); await sleep(10))
    assert.ok(Date.now() - t0 < ms(10000), 'sqlite3 took the lock');
  return holder;
}

/** The alert lines of kind in the request log, once there are n (its writer is a thread). */
async function alertLines(logPath, kind, n = 1) {
  const deadline = Date.now() + ms(10000);
  for (;;) {
    const lines = readLogNow(logPath).filter((r) => r.alert === kind);
    if (lines.length >= n || Date.now() > deadline) return lines;
    await sleep(25);
  }
}

test('locked by another process: 503 and an alert while it is held, no response waits on it, ' +
  'every record written once it is released', { timeout: ms(90000) }, async () => {
  const mock = await startMock();
  const hook = await startWebhook();
  const dir = tempDir('tg-lf-');
  let gate = await start(dir, mock.url, { hook });
  const ok = [];
  for (let i = 0; i < 2; i++) {
    assert.equal((await chat(gate, `before-${i}`)).status, 200);
    ok.push(`before-${i}`);
  }
  // another process takes the write lock and keeps it
  const holder = await lockLedger(gate.db);

  // admitted before the gate knew: answered at once, its record kept
  const t0 = Date.now();
  const r = await chat(gate, 'during-0', true);
  assert.equal(r.status, 200);
  assert.ok(Date.now() - t0 < ms(3000), `the response waited ${Date.now() - t0} ms on the lock`);
  ok.push('during-0');
  const s = await until(gate, (x) => x.ledger_state === 'failing', 'the ledger says it fails');
  assert.match(s.ledger_error, /database is locked/);
  assert.ok(s.ledger_pending >= 1);
  const refused = ['refused-0', 'refused-1'];
  for (const id of refused) await assertRefused(gate, mock, id);
  const m = await adminRequest(gate.admin, 'GET', '/metrics', { token: ADMIN_TOKEN });
  assert.match(m.text, /^tokengate_ledger_failing 1$/m);

  // the alert: stderr, the request log, the webhook
  assert.match(gate.proc.stderr, /tokengate: alert: the ledger cannot commit records \(.*database is locked\)/);
  const fail = await alertLines(gate.logPath, 'ledger_failing');
  assert.equal(fail.length, 1);
  assert.match(fail[0].error, /database is locked/);
  const got = await hook.waitFor(1, ms(10000));
  assert.equal(got[0].json.alert, 'ledger_failing');

  holder.stdin.end('COMMIT;\n');
  await until(gate, (x) => x.ledger_state === 'ok' && x.ledger_pending === 0, 'the ledger works again');
  assert.equal((await alertLines(gate.logPath, 'ledger_recovered')).length, 1);
  assert.equal((await hook.waitFor(2, ms(10000)))[1].json.alert, 'ledger_recovered');
  assert.equal((await chat(gate, 'after-0')).status, 200);
  ok.push('after-0');

  await gate.stop();
  gate = await start(dir, mock.url, { hook });
  await assertLedger(gate, mock, ok, refused);
});

test('a full disk (the file-size limit lowered on the running gate): 503 and an alert, then ' +
  'every record written once there is room', { timeout: ms(90000) }, async () => {
  const mock = await startMock();
  const dir = tempDir('tg-lf-');
  let gate = await start(dir, mock.url, { requestLog: false });
  const ok = [];
  assert.equal((await chat(gate, 'before-0')).status, 200);
  ok.push('before-0');
  // no file of the ledger may grow past what it is now
  const size = (f) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
  const limit = Math.max(size(gate.db), size(gate.db + '-wal'));
  const pl = spawnSync('prlimit', ['--pid', String(gate.pid), `--fsize=${limit}:unlimited`], { encoding: 'utf8' });
  assert.equal(pl.status, 0, pl.stderr);
  // the first is admitted (the gate cannot know yet), its record cannot be committed
  assert.equal((await chat(gate, 'during-0', true)).status, 200);
  ok.push('during-0');
  const s = await until(gate, (x) => x.ledger_state === 'failing', 'the ledger says it fails');
  assert.match(s.ledger_error, /disk is full|disk I\/O error/);
  await assertRefused(gate, mock, 'refused-0');
  assert.match(gate.proc.stderr, /tokengate: alert: the ledger cannot commit records/);

  const pl2 = spawnSync('prlimit', ['--pid', String(gate.pid), '--fsize=unlimited:unlimited'], { encoding: 'utf8' });
  assert.equal(pl2.status, 0, pl2.stderr);
  await until(gate, (x) => x.ledger_state === 'ok' && x.ledger_pending === 0, 'the ledger works again');
  assert.equal((await chat(gate, 'after-0')).status, 200);
  ok.push('after-0');
  await gate.stop();
  gate = await start(dir, mock.url, { requestLog: false });
  await assertLedger(gate, mock, ok, ['refused-0']);
});

test('deleted at run time: the file is made again with what it held; its directory gone is a ' +
  'failure (503, alert) until it is back', { timeout: ms(90000) }, async () => {
  const mock = await startMock();
  const dir = tempDir('tg-lf-');
  let gate = await start(dir, mock.url);
  const state = path.dirname(gate.db);
  const ok = [];
  for (let i = 0; i < 2; i++) {
    assert.equal((await chat(gate, `before-${i}`)).status, 200);
    ok.push(`before-${i}`);
  }
  // the file alone: noticed, made again with every record it held
  for (const f of ['', '-wal', '-shm']) fs.rmSync(gate.db + f, { force: true });
  await gate.proc.waitFor('stderr', /ledger\.db was deleted while the gate ran; made again with every record it held/,
    ms(10000), 'the file made again');
  assert.ok(fs.existsSync(gate.db));
  assert.equal((fs.statSync(gate.db).mode & 0o777).toString(8), '600');
  assert.equal((await chat(gate, 'between-0')).status, 200);
  ok.push('between-0');

  // the directory: nothing to make it in, a failure until it is back
  fs.rmSync(state, { recursive: true, force: true });
  const s = await until(gate, (x) => x.ledger_state === 'failing', 'the ledger says it fails');
  assert.match(s.ledger_error, /deleted/);
  await assertRefused(gate, mock, 'refused-0');
  assert.equal((await alertLines(gate.logPath, 'ledger_failing')).length, 1);
  fs.mkdirSync(state);
  await until(gate, (x) => x.ledger_state === 'ok' && x.ledger_pending === 0, 'the ledger works again');
  assert.equal((await chat(gate, 'after-0')).status, 200);
  ok.push('after-0');
  await gate.stop();
  gate = await start(dir, mock.url);
  await assertLedger(gate, mock, ok, ['refused-0']);
});

test('ledger.on_failure: open admits while the ledger fails, and still writes every record ' +
  'once it works again', { timeout: ms(90000) }, async () => {
  const mock = await startMock();
  const dir = tempDir('tg-lf-');
  let gate = await start(dir, mock.url, { onFailure: 'open' });
  const holder = await lockLedger(gate.db);
  const ok = [];
  assert.equal((await chat(gate, 'open-0')).status, 200);
  ok.push('open-0');
  await until(gate, (x) => x.ledger_state === 'failing', 'the ledger says it fails');
  for (let i = 1; i < 4; i++) {
    assert.equal((await chat(gate, `open-${i}`, i % 2 === 0)).status, 200);
    ok.push(`open-${i}`);
  }
  assert.match(gate.proc.stderr, /requests are still admitted \(ledger\.on_failure: open\)/);
  holder.stdin.end('COMMIT;\n');
  await until(gate, (x) => x.ledger_state === 'ok' && x.ledger_pending === 0, 'the ledger works again');
  await gate.stop();
  gate = await start(dir, mock.url, { onFailure: 'open' });
  await assertLedger(gate, mock, ok, []);
});

test('stopped while the ledger fails: the records go to the spill file, and the next start ' +
  'writes them, once', { timeout: ms(90000) }, async () => {
  const mock = await startMock();
  const dir = tempDir('tg-lf-');
  let gate = await start(dir, mock.url);
  const holder = await lockLedger(gate.db);
  assert.equal((await chat(gate, 'spilled-0')).status, 200);
  await until(gate, (x) => x.ledger_state === 'failing', 'the ledger says it fails');
  await assertRefused(gate, mock, 'refused-0');
  const stopped = await gate.stop();
  assert.equal(stopped.code, 0, `a clean stop while the ledger fails: ${JSON.stringify(stopped)}`);
  assert.match(gate.proc.stderr, /SIGTERM received/);
  const spill = fs.readFileSync(gate.db + '.spill', 'utf8').split('\n').filter((l) => l);
  assert.deepEqual(spill.map((l) => JSON.parse(l).id).sort(), ['refused-0', 'spilled-0']);
  holder.stdin.end('COMMIT;\n');
  await new Promise((r) => holder.on('exit', r));

  gate = await start(dir, mock.url);
  await gate.proc.waitFor('stderr', /2 records written from .*ledger\.db\.spill/, ms(5000),
    'the spill file written');
  assert.ok(!fs.existsSync(gate.db + '.spill'));
  await assertLedger(gate, mock, ['spilled-0'], ['refused-0']);
  await gate.stop();
  gate = await start(dir, mock.url);
  await assertLedger(gate, mock, ['spilled-0'], ['refused-0']);
});

test('a fallback while the ledger fails: both records (the attempt given up and the answer) go ' +
  'to the spill file with their routing, and the next start writes them, once', { timeout: ms(90000) }, async () => {
  const mock = await startMock();
  const dir = tempDir('tg-lf-fb-');
  const q = JSON.stringify;
  // gpt-a answers too late (a first-byte timeout: charged its input), gpt-b answers
  const text = config(dir, mock.url)
    .replace("  gpt-4o-mini: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }",
      "  gpt-a: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }\n" +
      "  gpt-b: { provider: mock-openai, price: { input: 2.50, output: 10.00 } }\n" +
      "tiers:\n  t: [gpt-a, gpt-b]\nrouting:\n  aliases: { auto: t }\n" +
      "timeouts: { upstream_first_byte: 1s }");
  const boot = async () => {
    const g = await startGate({ configText: text, dir, env: ENV });
    g.admin = await gateAdminPort(g);
    g.db = path.join(dir, 'state', 'ledger.db');
    return g;
  };
  let gate = await boot();
  const set = await mock.direct('/_mock/models', { method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: q({ model: 'gpt-a', delay_ms: 5000, times: 1 }) });
  assert.equal(set.status, 200, set.text);
  const holder = await lockLedger(gate.db);
  const id = 'fb-spilled';
  const r = await gate.post('/v1/chat/completions', {
    model: 'auto', max_tokens: 50, messages: [{ role: 'user', content: 'a fallback while it fails' }],
  }, { authorization: `Bearer ${KEY}`, 'x-request-id': id, 'x-mock-tokens': '12' },
  { timeoutMs: ms(30000) });
  assert.equal(r.status, 200, r.text);
  await until(gate, (x) => x.ledger_state === 'failing', 'the ledger says it fails');
  assert.equal((await gate.stop()).code, 0);
  const spill = fs.readFileSync(gate.db + '.spill', 'utf8').split('\n').filter((l) => l)
    .map((l) => JSON.parse(l));
  assert.deepEqual(spill.map((x) => x.id).sort(), [id, `${id}/1`]);
  holder.stdin.end('COMMIT;\n');
  await new Promise((res) => holder.on('exit', res));

  gate = await boot();
  await gate.proc.waitFor('stderr', /2 records written from .*ledger\.db\.spill/, ms(5000),
    'the spill file written');
  const recs = ledgerRecords(gate.db);
  assert.equal(recs.length, 2, q(recs));
  const given = recs.find((x) => x.id === `${id}/1`);
  const answer = recs.find((x) => x.id === id);
  const u = (await mock.hook('GET', '/_mock/usage')).usage[id];
  // the attempt given up: its input at gpt-a's price, its routing kept through the spill file
  assert.equal(given.decision, 'fallback', q(given));
  assert.equal(given.served_model, 'gpt-a');
  assert.ok(given.in_own > 0 && given.tokens_charged === given.in_own, q(given));
  assert.equal(given.tier, 't');
  // the answer: what the mock billed for gpt-b, with the attempt listed
  assert.equal(answer.decision, 'admitted', q(answer));
  assert.equal(answer.served_model, 'gpt-b');
  assert.equal(answer.tier, 't');
  assert.deepEqual(JSON.parse(answer.attempts).map((a) => a.target), ['gpt-a']);
  assert.ok(u, 'the mock billed the answer');
  // (the mock keys usage by request id, which both attempts carry: the answer's own usage is
  // the one its row read, the 12 tokens the mock was asked for)
  assert.equal(answer.out_usage, 12, q(answer));
  assert.equal(answer.tokens_charged, answer.in_usage + answer.out_usage, q(answer));
  const b = await adminRequest(gate.admin, 'GET', '/admin/v1/budgets?scope=team:ops&window=day',
    { token: ADMIN_TOKEN });
  assert.equal(b.json.budgets[0].used_tokens, given.tokens_charged + answer.tokens_charged);
});

test('killed while the ledger fails: a request whose record waited in memory is charged at its ' +
  'reservation on restart', { timeout: ms(90000) }, async () => {
  const mock = await startMock();
  const dir = tempDir('tg-lf-');
  let gate = await start(dir, mock.url);
  const holder = await lockLedger(gate.db);
  assert.equal((await chat(gate, 'waited-0')).status, 200);
  const s = await until(gate, (x) => x.ledger_state === 'failing', 'the ledger says it fails');
  // its response is done, its record waits, and so does its journal slot
  assert.equal(s.journal_in_flight, 1, JSON.stringify(s));
  gate.proc.child.kill('SIGKILL');
  await gate.proc.waitExit(ms(5000));
  holder.stdin.end('COMMIT;\n');
  await new Promise((r) => holder.on('exit', r));

  gate = await start(dir, mock.url);
  const usage = (await mock.hook('GET', '/_mock/usage')).usage['waited-0'];
  const recs = ledgerRecords(gate.db);
  assert.equal(recs.length, 1, JSON.stringify(recs));
  assert.equal(recs[0].id, 'waited-0');
  assert.equal(recs[0].decision, 'unsettled');
  assert.equal(recs[0].tokens_charged, recs[0].reserved_tokens);
  assert.ok(recs[0].tokens_charged >= usage.input + usage.output,
    `the reservation covers what was served: ${recs[0].tokens_charged} ${JSON.stringify(usage)}`);
  const b = await adminRequest(gate.admin, 'GET', '/admin/v1/budgets?scope=team:ops&window=day',
    { token: ADMIN_TOKEN });
  assert.equal(b.json.budgets[0].used_tokens, recs[0].tokens_charged);
});

/** A temperature-0 chat: the response cache stores it (policy responses: auto, the default). */
function cachedChat(gate, id) {
  return gate.post('/v1/chat/completions', {
    model: 'gpt-4o-mini', max_tokens: 50, temperature: 0,
    messages: [{ role: 'user', content: 'ledger failure, the same question each time' }],
  }, { authorization: `Bearer ${KEY}`, 'x-request-id': id, 'x-mock-tokens': '12' },
  { timeoutMs: ms(30000) });
}

test('a response-cache hit while the ledger fails: closed refuses it as any other request ' +
  '(nothing forwarded, nothing served); open serves it, and its record (charged 0, cache hit) ' +
  'is written once the ledger works again', { timeout: ms(120000) }, async () => {
  for (const onFailure of ['closed', 'open']) {
    const mock = await startMock();
    const dir = tempDir('tg-lf-');
    let gate = await start(dir, mock.url, { onFailure });
    const first = await cachedChat(gate, `${onFailure}-fill`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers['x-tokengate-cache'], 'miss');
    const holder = await lockLedger(gate.db);
    // a request the gate admits before it knows, so that the ledger fails
    assert.equal((await chat(gate, `${onFailure}-probe`)).status, 200);
    await until(gate, (x) => x.ledger_state === 'failing', 'the ledger says it fails');
    const before = (await mock.stats()).requests;
    const hit = await cachedChat(gate, `${onFailure}-hit`);
    assert.equal((await mock.stats()).requests, before, 'nothing was forwarded');
    if (onFailure === 'closed') {
      assert.equal(hit.status, 503, hit.text);
      assert.match(hit.json.error.message, /cannot record spend right now/);
    } else {
      assert.equal(hit.status, 200, hit.text);
      assert.equal(hit.headers['x-tokengate-cache'], 'hit');
      assert.deepEqual(hit.json, first.json, 'the hit is the answer stored');
    }
    holder.stdin.end('COMMIT;\n');
    await until(gate, (x) => x.ledger_state === 'ok' && x.ledger_pending === 0,
      'the ledger works again');
    await gate.stop();
    gate = await start(dir, mock.url, { onFailure });
    const usage = (await mock.hook('GET', '/_mock/usage')).usage;
    const recs = ledgerRecords(gate.db);
    const byId = Object.fromEntries(recs.map((r) => [r.id, r]));
    assert.equal(recs.length, 3, JSON.stringify(recs.map((r) => r.id)));
    for (const id of [`${onFailure}-fill`, `${onFailure}-probe`]) {
      assert.equal(byId[id].tokens_charged, usage[id].input + usage[id].output, id);
    }
    const h = byId[`${onFailure}-hit`];
    assert.equal(h.tokens_charged, 0, JSON.stringify(h));
    assert.equal(h.cost_nusd, 0);
    if (onFailure === 'closed') {
      assert.equal(h.decision, 'unavailable', JSON.stringify(h));
      assert.equal(h.status, 503);
    } else {
      assert.equal(h.status, 200, JSON.stringify(h));
      assert.equal(h.cache, 'hit', JSON.stringify(h));
      assert.ok(h.saved_nusd > 0, JSON.stringify(h));
    }
    await gate.stop();
  }
});
