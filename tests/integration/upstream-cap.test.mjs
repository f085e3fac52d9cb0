// The cap on upstream connections per provider (upstream.max_connections) and its wait queue
// (upstream.max_waiting, waits bounded by timeouts.upstream_connect): what is over the cap waits,
// what is over the queue gets a clear 503 in the API's format, the provider never sees more at
// once than the cap, and a request refused or given up while waiting is charged nothing.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, gateConfig, tempDir, gateAdminPort, adminRequest,
  RawClient, rawPost, newId, sleep, ms,
} from './harness.mjs';

after(cleanup);

const ADMIN_TOKEN = 'tga-upstream-cap-test-admin-01';
const AGENT_KEY = 'tg-ucap-agent-key-0000001';
const PROVIDER_KEY = 'sk-ucap-provider-secret-000001';
const STALL = ms(2500); // each served answer's body waits this long at the mock

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'cap test' }] };

/** A gate with one agent key, a team budget, a ledger and the given upstream limits. */
async function startCapGate(mockUrl, upstream, timeouts = {}) {
  const dir = tempDir('tg-ucap-');
  const configText = gateConfig({
    providers: {
      'mock-openai': { base_url: `${mockUrl}/v1`, format: 'openai', api_key_env: 'TG_UCAP_KEY' },
    },
    models: { 'gpt-4o-mini': 'mock-openai' },
    requestLog: path.join(dir, 'requests.jsonl'),
    upstream,
    timeouts,
    extra: ['org: acme', 'departments:', '  lab:', '    teams:', '      t: { agents: [a1] }',
      'keys:', `  ${AGENT_KEY}: a1`,
      'budgets:', '  - { scope: "team:t", window: day, tokens: 100000000 }',
      `ledger: { path: ${JSON.stringify(path.join(dir, 'ledger.db'))} }`,
      'admin: { listen: 127.0.0.1:0, token_env: TG_UCAP_ADMIN }'].join('\n'),
  });
  const g = await startGate({ configText, dir,
    env: { TG_UCAP_ADMIN: ADMIN_TOKEN, TG_UCAP_KEY: PROVIDER_KEY } });
  g.admin = await gateAdminPort(g);
  return g;
}

async function budget(g) {
  const r = await adminRequest(g.admin, 'GET', '/admin/v1/budgets?scope=team:t&window=day&all=1',
    { token: ADMIN_TOKEN });
  assert.equal(r.status, 200, r.text);
  return r.json.budgets[0];
}

/** Polls until get() is true (an event seen through a hook), within a generous bound. */
async function until(get, what, timeoutMs = ms(20000)) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await get()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function send(g, id, headers = {}) {
  return g.post('/v1/chat/completions', chat, {
    authorization: `Bearer ${AGENT_KEY}`, 'x-request-id': id, 'x-mock-tokens': '5', ...headers,
  }, { timeoutMs: ms(60000) });
}

/** Asserts the clear 503 of a full queue or a wait that timed out: no key, the API's format. */
function assertRefused(r, words) {
  assert.equal(r.status, 503, r.text);
  assert.equal(r.headers['retry-after'], '1', 'a 503 for now says when to come back');
  assert.equal(r.json?.error?.type, 'server_error', r.text); // OpenAI's error shape
  for (const w of words) assert.ok(r.json.error.message.includes(w), `no '${w}' in: ${r.text}`);
  assert.ok(!r.text.includes(PROVIDER_KEY) && !r.text.includes(AGENT_KEY), 'a key in the answer');
}

test('cap 2, queue 2: of 6 at once 4 are served, 2 get a clear 503; the mock never has more ' +
  'than 2 at once; the 503s cost nothing and the served are charged what the mock billed',
async () => {
  const mock = await startMock();
  const g = await startCapGate(mock.url, { max_connections: 2, max_waiting: 2 },
    { upstream_connect: '60s' });
  await mock.reset();
  const ids = Array.from({ length: 6 }, (_, i) => newId(`cap${i}`));
  const all = ids.map((id) => send(g, id, { 'x-mock-stall-ms': String(STALL) }));
  const rs = await Promise.all(all);
  const served = ids.filter((id, i) => rs[i].status === 200);
  const refused = rs.filter((r) => r.status !== 200);
  assert.equal(served.length, 4, rs.map((r) => `${r.status} ${r.text}`).join('\n'));
  assert.equal(refused.length, 2);
  for (const r of refused)
    assertRefused(r, ["provider 'mock-openai'", 'upstream.max_connections', 'upstream.max_waiting']);
  const st = await mock.stats();
  assert.equal(st.requests, 4, 'a refused request reached the mock');
  assert.equal(st.peak_active, 2, 'the mock had more (or fewer) than the cap at once');
  assert.equal(st.active, 0);

  // the ledger's view: each served record charged what the mock billed, each 503 nothing
  let billed = 0;
  for (let i = 0; i < 6; i++) {
    const rec = await g.logRecord(ids[i]);
    const u = await mock.usageOf(ids[i]);
    if (rs[i].status === 200) {
      assert.ok(u?.complete, `the mock did not bill ${ids[i]}`);
      assert.equal(rec.tokens_charged, u.input + u.output, JSON.stringify(rec));
      billed += u.input + u.output;
    } else {
      assert.equal(u, undefined, 'the mock saw a refused request');
      assert.equal(rec.status, 503);
      assert.equal(rec.tokens_charged, 0, JSON.stringify(rec));
      assert.match(rec.error, /upstream\.max_waiting/);
    }
  }
  await until(async () => (await budget(g)).reserved_tokens === 0, 'the reservations to go');
  assert.equal((await budget(g)).used_tokens, billed, 'the budget differs from what was billed');
});

test('a queued request goes as soon as a slot frees; one whose client leaves quits the queue ' +
  'and costs nothing', async () => {
  const mock = await startMock();
  const g = await startCapGate(mock.url, { max_connections: 1, max_waiting: 1 },
    { upstream_connect: '60s' });
  await mock.reset();
  const idA = newId('holder');
  const idB = newId('leaver');
  const idC = newId('waiter');
  const a = send(g, idA, { 'x-mock-stall-ms': String(STALL) });
  await until(async () => (await mock.stats()).active === 1, 'the first request at the mock');
  const one = (await budget(g)).reserved_tokens;
  assert.ok(one > 0);

  // B takes the only place in the queue (its reservation shows it got past admission)...
  const b = await RawClient.connect(g.port);
  await b.write(rawPost('/v1/chat/completions', chat, { authorization: `Bearer ${AGENT_KEY}`,
    'x-request-id': idB, 'x-mock-tokens': '5' }));
  await until(async () => (await budget(g)).reserved_tokens === 2 * one, 'B queued');
  // ...and leaves: its reservation goes, and so does its place
  b.destroy();
  await until(async () => (await budget(g)).reserved_tokens === one, 'B out of the queue');
  const recB = await g.logRecord(idB);
  assert.equal(recB.status, 499);
  assert.equal(recB.tokens_charged, 0, JSON.stringify(recB));

  // C gets B's place (a queue still holding B would refuse it) and is served once A is done
  const c = send(g, idC);
  const ra = await a;
  assert.equal(ra.status, 200, ra.text);
  const rc = await c;
  assert.equal(rc.status, 200, rc.text);
  const st = await mock.stats();
  assert.equal(st.requests, 2, 'B reached the mock');
  assert.equal(await mock.usageOf(idB), undefined);
  assert.equal(st.peak_active, 1);
  const uC = await mock.usageOf(idC);
  assert.equal((await g.logRecord(idC)).tokens_charged, uC.input + uC.output);
});

test('a wait longer than timeouts.upstream_connect ends in a clear 503 and costs nothing',
  async () => {
    const mock = await startMock();
    const g = await startCapGate(mock.url, { max_connections: 1, max_waiting: 4 },
      { upstream_connect: '300ms' });
    await mock.reset();
    const idA = newId('slow');
    const idB = newId('timedout');
    const a = send(g, idA, { 'x-mock-stall-ms': String(ms(4000)) });
    await until(async () => (await mock.stats()).active === 1, 'the first request at the mock');
    const rb = await send(g, idB);
    assertRefused(rb, ["provider 'mock-openai'", '300 ms', 'timeouts.upstream_connect',
      'upstream.max_connections']);
    assert.equal((await a).status, 200);
    assert.equal((await mock.stats()).requests, 1, 'the timed-out request reached the mock');
    const recB = await g.logRecord(idB);
    assert.equal(recB.tokens_charged, 0, JSON.stringify(recB));
    const uA = await mock.usageOf(idA);
    await until(async () => (await budget(g)).reserved_tokens === 0, 'the reservations to go');
    assert.equal((await budget(g)).used_tokens, uA.input + uA.output);
  });
