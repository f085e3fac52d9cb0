// Config reload (issue 11, item 6): SIGHUP and POST /admin/v1/reload load the file again while
// the gate serves. Requests under way finish on the config they started with; budgets' spend
// carries over; a file that does not load, or that changes what cannot change, leaves the
// running config in force and says why (FILE:LINE: reason).

import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, tempDir, gateAdminPort, adminRequest, parseSSE,
  RawClient, rawPost, wordCount, sleep, ms, GATE_BIN,
} from './harness.mjs';

after(cleanup);

const ADMIN_TOKEN = 'tga-reload-test-admin-token-0001';
const ENV = { TG_RL_ADMIN_TOKEN: ADMIN_TOKEN };
const KEY1 = 'tg-reload-agent-one-key-0001'; // a1: the load
const KEY2 = 'tg-reload-agent-two-key-0002'; // a2: its budget changes
const KEY3 = 'tg-reload-agent-new-key-0003'; // a3: added by the reload
const q = JSON.stringify;
const say = [{ role: 'user', content: 'Say something short about reloading.' }];

/**
 * The config file. o: teamTokens (team:t's daily budget), a2Tokens (agent:a2's, none when
 * undefined), added (a3 with KEY3 and model gpt-reloaded), second (provider mock-second and
 * its model gpt-second, true unless false), workers (2 unless given), openaiUrl (mock-openai's
 * address when not mockUrl's), heldUrl (provider held and its model gpt-held there, when
 * given), tail (raw YAML appended).
 */
function orgYaml(dir, mockUrl, o = {}) {
  const lines = [
    'listen: 127.0.0.1:0',
    `workers: ${o.workers ?? 2}`,
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'providers:',
    `  mock-openai: { base_url: ${q((o.openaiUrl ?? mockUrl) + '/v1')}, format: openai }`,
  ];
  if (o.second !== false) lines.push(`  mock-second: { base_url: ${q(mockUrl + '/v1')}, format: openai }`);
  if (o.heldUrl) lines.push(`  held: { base_url: ${q(o.heldUrl + '/v1')}, format: openai }`);
  lines.push('models:', '  gpt-4o-mini: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }');
  if (o.second !== false) lines.push('  gpt-second: { provider: mock-second, price: { input: 0.15, output: 0.60 } }');
  if (o.added) lines.push('  gpt-reloaded: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }');
  if (o.heldUrl) lines.push('  gpt-held: { provider: held, price: { input: 0.15, output: 0.60 } }');
  lines.push('org: acme', 'departments:', '  lab:', '    teams:',
    `      t: { agents: [a1, a2${o.added ? ', a3' : ''}] }`,
    'keys:', `  ${KEY1}: a1`, `  ${KEY2}: a2`);
  if (o.added) lines.push(`  ${KEY3}: a3`);
  lines.push('budgets:', `  - { scope: "team:t", window: day, tokens: ${o.teamTokens ?? 100000000} }`);
  if (o.a2Tokens !== undefined) lines.push(`  - { scope: "agent:a2", window: day, tokens: ${o.a2Tokens} }`);
  lines.push(`ledger: { path: ${q(path.join(dir, 'ledger.db'))} }`,
    'admin: { listen: 127.0.0.1:0, token_env: TG_RL_ADMIN_TOKEN }');
  if (o.tail) lines.push(o.tail);
  return lines.join('\n') + '\n';
}

async function startOrg(mockUrl, o = {}) {
  const dir = tempDir('tg-reload-');
  const g = await startGate({ configText: orgYaml(dir, mockUrl, o), dir, env: ENV });
  g.admin = await gateAdminPort(g);
  g.db = path.join(dir, 'ledger.db');
  g.write = (opts) => {
    const text = orgYaml(dir, mockUrl, opts);
    fs.writeFileSync(g.configPath + '.new', text);
    fs.renameSync(g.configPath + '.new', g.configPath); // the gate never reads half a file
    return text;
  };
  return g;
}

const admin = (g, method, p, body, token = ADMIN_TOKEN) =>
  adminRequest(g.admin, method, p, { token, body });

async function teamDay(g) {
  const r = await admin(g, 'GET', '/admin/v1/budgets?scope=team:t&window=day&all=1');
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

/** The ledger's records once it holds at least n of them (its writer commits in batches). */
async function recordsWhen(db, n) {
  let recs = [];
  for (let i = 0; i < 100; i++) {
    recs = ledgerRecords(db);
    if (recs.length >= n) return recs;
    await sleep(100);
  }
  assert.fail(`the ledger has ${recs.length} records, not ${n}`);
}

/** s as a regular expression matching it literally. */
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Counts the occurrences of a pattern in the gate's stderr so far. */
const count = (g, re) => (g.proc.stderr.match(new RegExp(re.source, 'g')) || []).length;

/** Sends SIGHUP and waits for the reload's outcome line (the n-th of its kind). */
async function sighup(g, re = /configuration reloaded: /) {
  const before = count(g, re);
  g.proc.child.kill('SIGHUP');
  for (let i = 0; i < 200 && count(g, re) <= before; i++) await sleep(50);
  assert.ok(count(g, re) > before, `no line ${re} after SIGHUP`);
}

/**
 * A provider whose chat stream the test holds open: it sends the head and the first content
 * event, then waits for release() before the rest (HELD_WORDS words in all) and its usage
 * (HELD_USAGE). Returns {url, got (resolves when a request came), release()}.
 */
const HELD_WORDS = 8;
const HELD_USAGE = { prompt_tokens: 14, completion_tokens: HELD_WORDS };
async function startHeldProvider() {
  let release;
  const released = new Promise((r) => { release = r; });
  let got;
  const gotRequest = new Promise((r) => { got = r; });
  const ev = (o) => {
    const e = `data: ${typeof o === 'string' ? o : JSON.stringify(o)}\n\n`;
    return `${Buffer.byteLength(e).toString(16)}\r\n${e}\r\n`;
  };
  const chunk = (delta, more = {}) => ({ id: 'chatcmpl-held', object: 'chat.completion.chunk', created: 1,
    model: 'gpt-held', choices: [{ index: 0, delta, finish_reason: null }], ...more });
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('error', () => {});
    sock.on('data', async (d) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
      if (end < 0 || buf.length < end + 4 + len) return;
      buf = '';
      sock.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n' +
        'connection: close\r\n\r\n' + ev(chunk({ role: 'assistant', content: '' })) + ev(chunk({ content: ' held' })));
      got();
      await released;
      let rest = '';
      for (let i = 1; i < HELD_WORDS; i++) rest += ev(chunk({ content: ` w${i}` }));
      rest += ev({ ...chunk({}), choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
      rest += ev({ ...chunk({}), choices: [], usage: { ...HELD_USAGE, total_tokens: HELD_USAGE.prompt_tokens + HELD_USAGE.completion_tokens } });
      sock.end(rest + ev('[DONE]') + '0\r\n\r\n');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  after(() => server.close());
  return { url: `http://127.0.0.1:${server.address().port}`, got: gotRequest, release };
}

function chat(g, key, id, o = {}) {
  return g.post('/v1/chat/completions', { model: o.model ?? 'gpt-4o-mini', messages: say, stream: !!o.stream },
    { authorization: `Bearer ${key}`, 'x-request-id': id, 'x-mock-tokens': String(o.tokens ?? 8) });
}

/** A reply read whole: a stream ends with [DONE] and carries `tokens` words. */
function assertWhole(r, stream, tokens, what) {
  assert.equal(r.status, 200, `${what}: ${r.status} ${r.text}`);
  if (stream) {
    const ev = parseSSE(r.text);
    assert.equal(ev.at(-1).data, '[DONE]', `${what}: a stream was cut`);
    const text = ev.filter((e) => e.json?.choices).map((e) => e.json.choices[0]?.delta?.content ?? '').join('');
    assert.equal(wordCount(text), tokens, what);
  } else {
    assert.equal(wordCount(r.json.choices[0].message.content), tokens, what);
  }
}

/** Every record charged what the mock billed; returns the sum. */
async function chargedAsBilled(g, mock, ids) {
  const recs = await recordsWhen(g.db, ids.length);
  const usage = (await mock.hook('GET', '/_mock/usage')).usage;
  const byId = new Map(recs.map((r) => [r.id, r]));
  let sum = 0;
  for (const id of ids) {
    const r = byId.get(id);
    assert.ok(r, `no ledger record for ${id}`);
    assert.equal(r.tokens_charged, usage[id].input + usage[id].output, `${id}: ${q({ r, u: usage[id] })}`);
    sum += r.tokens_charged;
  }
  return sum;
}

test('SIGHUP under load changes a budget, adds a model and a key: no request fails, the new budget holds at once, spend from before is kept', async () => {
  const mock = await startMock({ delayMs: 20 }); // a stream of 8 tokens takes ~160 ms
  const held = await startHeldProvider();
  const g = await startOrg(mock.url, { heldUrl: held.url });
  const ok = []; // ids answered 200 and charged as the mock billed

  // before: a2 spends, a3's key and the new model are unknown
  const pre = await chat(g, KEY2, 'a2-before');
  assertWhole(pre, false, 8, 'a2 before');
  ok.push('a2-before');
  assert.equal((await chat(g, KEY3, 'a3-before')).status, 401);
  assert.equal((await chat(g, KEY1, 'model-before', { model: 'gpt-reloaded' })).status, 404);
  const usedBefore = (await teamDay(g)).used_tokens;
  assert.ok(usedBefore > 0);

  // a stream under way through the reload, by construction: its provider sends the first
  // event, and the rest only once the reload is done
  const hc = await RawClient.connect(g.port);
  await hc.write(rawPost('/v1/chat/completions', { model: 'gpt-held', messages: say, stream: true },
    { authorization: `Bearer ${KEY1}`, 'x-request-id': 'held' }));
  await held.got;
  await hc.until(() => hc.buf.includes('"content":" held"'), ms(10000), 'the held stream\'s first event');

  // load: 6 clients, streams and not, through the reload: each goes on until it has sent
  // AFTER requests that started after the reload was done (at most MAX_PER in all)
  const LOOPS = 6;
  const AFTER = 2;
  const MAX_PER = 60;
  const results = [];
  let tReloaded = Infinity;
  const loop = async (k) => {
    let after = 0;
    for (let i = 0; i < MAX_PER && after < AFTER; i++) {
      const id = `load-${k}-${i}`;
      const stream = (i + k) % 2 === 0;
      const t0 = Date.now();
      const r = await chat(g, KEY1, id, { stream });
      results.push({ id, stream, r, t0, t1: Date.now() });
      if (t0 > tReloaded) after++;
    }
  };
  const load = Promise.all([...Array(LOOPS).keys()].map(loop));
  for (let i = 0; i < 400 && results.length < 20; i++) await sleep(25);
  assert.ok(results.length >= 20, 'the load did not start');
  g.write({ a2Tokens: 1, teamTokens: 90000000, added: true, heldUrl: held.url });
  await sighup(g);
  tReloaded = Date.now();
  assert.ok(!hc.buf.includes('[DONE]') && !hc.ended, 'the held stream ended before its provider was released');
  held.release();
  await load;

  for (const x of results) {
    assertWhole(x.r, x.stream, 8, x.id);
    ok.push(x.id);
  }
  assert.ok(results.filter((x) => x.t0 > tReloaded).length >= LOOPS * AFTER, 'the load stopped before the reload');
  assert.match(g.proc.stderr, /configuration reloaded: .*: 4 models \(were 3\) \(\+gpt-reloaded\).* 3 keys \(were 2\)/);

  // the stream held across the reload went on to its end, and is charged its provider's usage
  const hr = await hc.readResponse({ timeoutMs: ms(15000) });
  hc.destroy();
  assert.equal(hr.status, 200);
  const hev = parseSSE(hr.body);
  assert.equal(hev.at(-1).data, '[DONE]', 'the held stream was cut');
  assert.equal(wordCount(hev.filter((e) => e.json?.choices).map((e) => e.json.choices[0]?.delta?.content ?? '').join('')), HELD_WORDS);

  // the new budget holds on a2's next request; its spend from before counts against it
  const refused = await chat(g, KEY2, 'a2-after');
  assert.equal(refused.status, 429, refused.text);
  assert.equal(refused.json.error.code, 'budget_exceeded');
  assert.match(refused.json.error.scope ?? refused.json.error.message, /a2/);
  // the new key and the new model work
  const fresh = await chat(g, KEY3, 'a3-after', { model: 'gpt-reloaded', stream: true });
  assertWhole(fresh, true, 8, 'a3 on the new model');
  ok.push('a3-after');
  assert.equal(JSON.parse((await mock.last()).body).model, 'gpt-reloaded');

  // spend: the team's counter kept what came before, and every request is charged as billed
  const team = await teamDay(g);
  assert.equal(team.limit_tokens, 90000000, q(team));
  assert.equal(team.reserved_tokens, 0, q(team));
  const billed = await chargedAsBilled(g, mock, ok);
  const heldRec = (await recordsWhen(g.db, ok.length + 1)).find((r) => r.id === 'held');
  assert.ok(heldRec, 'no ledger record for the held stream');
  assert.equal(heldRec.tokens_charged, HELD_USAGE.prompt_tokens + HELD_USAGE.completion_tokens, q(heldRec));
  assert.equal(team.used_tokens, billed + heldRec.tokens_charged, q(team));
  assert.ok(team.used_tokens > usedBefore);
});

test('a broken file on SIGHUP: the running config stays, the log names FILE:LINE; fixed, the next SIGHUP applies it', async () => {
  const mock = await startMock();
  const g = await startOrg(mock.url);
  const broken = g.write({ added: true, tail: 'timeouts:\n  client_idle: soon' });
  const brokenLine = broken.split('\n').indexOf('  client_idle: soon') + 1;
  await sighup(g, /reload refused/);
  assert.match(g.proc.stderr, new RegExp(`reload refused, the configuration in force is kept: ${esc(g.configPath)}:${brokenLine}: .*client_idle`));
  assert.equal(g.proc.exited, null);
  // still the old one: a3's key and gpt-reloaded are not there, the old model serves
  assertWhole(await chat(g, KEY1, 'old-still'), false, 8, 'old config');
  assert.equal((await chat(g, KEY3, 'new-key-not-yet')).status, 401);
  assert.equal((await chat(g, KEY1, 'new-model-not-yet', { model: 'gpt-reloaded' })).status, 404);

  g.write({ added: true });
  await sighup(g);
  assertWhole(await chat(g, KEY3, 'new-now', { model: 'gpt-reloaded' }), false, 8, 'new config');
});

test('a reload brings in tiers and rules: "auto" is refused before, routed after; the summary counts them', async () => {
  const mock = await startMock();
  const g = await startOrg(mock.url);
  const before = await chat(g, KEY1, 'auto-before', { model: 'auto' });
  assert.equal(before.status, 404, before.text);
  g.write({
    tail: ['tiers:', '  cheap: [gpt-4o-mini]', '  other: [gpt-second]', 'routing:',
      '  aliases: { auto: other }', '  rules:',
      "    - { name: short, match: { model: auto, input_tokens: { max: 100 } }, route: { tier: cheap } }",
    ].join('\n'),
  });
  await sighup(g);
  assert.match(g.proc.stderr, /configuration reloaded: .*2 tiers \(were 0\), 1 routing rules \(were 0\)/);
  assertWhole(await chat(g, KEY1, 'auto-after', { model: 'auto' }), false, 8, 'routed');
  // the request log is written by a thread of its own: wait for the record (bounded)
  let rec;
  for (let i = 0; i < 200 && !rec; i++) {
    rec = fs.readFileSync(path.join(path.dirname(g.configPath), 'requests.jsonl'), 'utf8')
      .split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((r) => r.id === 'auto-after');
    if (!rec) await sleep(25);
  }
  assert.ok(rec, 'the routed request was not logged');
  assert.equal(rec.route.rule, 'short');
  assert.equal(rec.route.tier, 'cheap');
  assert.equal(rec.route.target, 'gpt-4o-mini');
  assert.equal(rec.upstream_model, 'gpt-4o-mini');
});

test('POST /admin/v1/reload: 401 without the admin token (nothing reloaded), 400 with the loader\'s message, 400 for what cannot change, 200 and applied', async () => {
  const mock = await startMock();
  const g = await startOrg(mock.url);
  g.write({ added: true });
  for (const token of [undefined, 'wrong-token-of-some-length', ''])
    assert.equal((await adminRequest(g.admin, 'POST', '/admin/v1/reload', { token })).status, 401);
  assert.equal((await chat(g, KEY3, 'no-reload-yet')).status, 401, 'a refused admin call reloaded');

  // a broken file: 400, the same message as the log, the old config serving
  const good = orgYaml(path.dirname(g.configPath), mock.url, { added: true });
  fs.writeFileSync(g.configPath, good + 'models: {}\n');
  const bad = await admin(g, 'POST', '/admin/v1/reload');
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.json.error.type, 'invalid_config');
  const line = good.split('\n').length;
  assert.match(bad.json.error.message, new RegExp(`^${esc(g.configPath)}:${line}: 'models' is given twice`));
  await g.proc.waitFor('stderr', new RegExp(`reload refused, the configuration in force is kept: ${esc(bad.json.error.message)}`),
    ms(5000), 'the same message in the log');
  assert.equal((await chat(g, KEY3, 'still-old')).status, 401);

  // what a reload cannot change: refused as a whole, the listener as it was
  fs.writeFileSync(g.configPath, good.replace('workers: 2', 'workers: 3'));
  const fixed = await admin(g, 'POST', '/admin/v1/reload');
  assert.equal(fixed.status, 400, fixed.text);
  assert.match(fixed.json.error.message, /workers cannot change by reload: restart the gate/);
  assert.equal((await chat(g, KEY3, 'still-old-2')).status, 401);

  fs.writeFileSync(g.configPath, good);
  const done = await admin(g, 'POST', '/admin/v1/reload');
  assert.equal(done.status, 200, done.text);
  assert.equal(done.json.reloaded, true);
  assert.match(done.json.summary, /\+gpt-reloaded/);
  assertWhole(await chat(g, KEY3, 'admin-new', { model: 'gpt-reloaded' }), false, 8, 'after the admin reload');
});

test('a reload that removes a provider while a stream to it is under way: the stream completes and is charged', async () => {
  const mock = await startMock({ delayMs: 50 }); // 30 tokens: about 1.5 s
  const g = await startOrg(mock.url);
  const c = await RawClient.connect(g.port);
  try {
    await c.write(rawPost('/v1/chat/completions', { model: 'gpt-second', messages: say, stream: true },
      { authorization: `Bearer ${KEY1}`, 'x-request-id': 'on-removed', 'x-mock-tokens': '30' }));
    await c.until(() => c.buf.includes('"role":"assistant"'), ms(5000), 'the first chunk');
    g.write({ second: false });
    const r = await admin(g, 'POST', '/admin/v1/reload');
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.summary, /-gpt-second.*-mock-second/);
    // gone for new requests...
    assert.equal((await chat(g, KEY1, 'after-removal', { model: 'gpt-second' })).status, 404);
    // ...while the one under way goes on to its end
    const resp = await c.readResponse({ timeoutMs: ms(20000) });
    assert.equal(resp.status, 200);
    const ev = parseSSE(resp.body);
    assert.equal(ev.at(-1).data, '[DONE]', 'the stream was cut');
    assert.equal(wordCount(ev.filter((e) => e.json?.choices)
      .map((e) => e.json.choices[0]?.delta?.content ?? '').join('')), 30);
  } finally {
    c.destroy();
  }
  const charged = await chargedAsBilled(g, mock, ['on-removed']);
  assert.ok(charged > 30);
  const team = await teamDay(g);
  assert.equal(team.used_tokens, charged, q(team));
  assert.equal(team.reserved_tokens, 0, q(team));
});

test('upstream pools are kept by provider name: an unchanged provider\'s idle connection serves after a reload; a moved one gets a new pool', async () => {
  const mock = await startMock();
  const other = await startMock();
  const g = await startOrg(mock.url, { workers: 1 });
  const opened = async () => (await g.status({ headers: { authorization: `Bearer ${KEY1}` } })).json
    .upstream_connections_opened;
  assertWhole(await chat(g, KEY1, 'pool-1'), false, 8, 'first');
  assert.equal(await opened(), 1);
  g.write({ workers: 1, added: true });
  await sighup(g);
  assertWhole(await chat(g, KEY1, 'pool-2'), false, 8, 'after a reload');
  assert.equal(await opened(), 1, 'the reload dropped the pool of a provider it did not change');
  assert.equal((await mock.stats()).requests, 2);
  // mock-openai moves to another address: a new pool, there
  g.write({ workers: 1, added: true, openaiUrl: other.url });
  await sighup(g);
  assertWhole(await chat(g, KEY1, 'pool-3'), false, 8, 'after the move');
  assert.equal(await opened(), 2);
  assert.equal((await other.stats()).requests, 1);
  assert.equal((await mock.stats()).requests, 2);
});
