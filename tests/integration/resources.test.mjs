// Resources and operations under hostile input (issue 10): bodies that would cost quadratic
// time or unbounded memory, and signals an operator sends.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, gateConfig, mockProviders, RawClient, rawPost, parseSSE,
  newId, wordCount, ms, tempDir, gateAdminPort, adminRequest,
} from './harness.mjs';

after(cleanup);

const userMsg = (text) => [{ role: 'user', content: text }];
const chat = (extra = {}) => ({ model: 'gpt-4o-mini', messages: userMsg('resource test'), ...extra });

test('SIGHUP during streams under way: the config is reloaded, every stream completes, the gate logs it and stays up',
  async () => {
    const paced = await startMock({ delayMs: 100 }); // 10 tokens: about a second
    const g = await startGate({ config: { ...mockProviders(paced.url) } });
    const clients = [];
    const ids = [];
    try {
      for (let i = 0; i < 6; i++) {
        const id = newId('hup');
        const c = await RawClient.connect(g.port);
        await c.write(rawPost('/v1/chat/completions', chat({ stream: true }),
          { 'x-mock-tokens': '10', 'x-request-id': id }));
        clients.push(c);
        ids.push(id);
      }
      for (const c of clients)
        await c.until(() => c.buf.includes('"role":"assistant"'), ms(5000), 'the first chunk');
      g.proc.child.kill('SIGHUP');
      await g.proc.waitFor('stderr', /SIGHUP received: reloading[^]*configuration reloaded: /,
        ms(5000), 'the SIGHUP and reload lines');
      g.proc.child.kill('SIGHUP'); // a second one is no different
      for (const c of clients) {
        const r = await c.readResponse({ timeoutMs: ms(10000) });
        assert.equal(r.status, 200);
        const events = parseSSE(r.body);
        assert.equal(events.at(-1).data, '[DONE]', 'a stream was cut');
        assert.equal(wordCount(events.filter((e) => e.json?.choices)
          .map((e) => e.json.choices[0]?.delta?.content ?? '').join('')), 10);
      }
      assert.equal(g.proc.exited, null, 'the gate exited on SIGHUP');
      const h = await g.request('/healthz');
      assert.equal(h.status, 200, 'the gate stopped answering after SIGHUP');
      const r = await g.post('/v1/chat/completions', chat(), { 'x-mock-tokens': '3' });
      assert.equal(r.status, 200);
      await g.proc.waitFor('stderr', /SIGHUP received[^]*SIGHUP received/, ms(5000), 'two SIGHUP lines');
      for (const id of ids)
        assert.equal((await g.logRecord(id)).status, 200, `request ${id} not logged as 200`);
    } finally {
      for (const c of clients) c.destroy();
    }
  });

const ADMIN_TOKEN = 'tga-resources-test-admin-token-01';
const AGENT_KEY = 'tg-res-agent-key-000001';

/** A gate with a small org (one agent, one key), a ledger and an admin listener. */
async function startOrgGate(mockUrl, limits) {
  const dir = tempDir('tg-res-');
  const configText = gateConfig({
    ...mockProviders(mockUrl),
    requestLog: path.join(dir, 'requests.jsonl'),
    limits,
    extra: ['org: acme', 'departments:', '  lab:', '    teams:', '      t: { agents: [a1] }',
      'keys:', `  ${AGENT_KEY}: a1`,
      'budgets:', '  - { scope: "team:t", window: day, tokens: 100000000 }',
      `ledger: { path: ${JSON.stringify(path.join(dir, 'ledger.db'))} }`,
      'admin: { listen: 127.0.0.1:0, token_env: TG_RES_ADMIN }'].join('\n'),
  });
  const g = await startGate({ configText, dir, env: { TG_RES_ADMIN: ADMIN_TOKEN } });
  g.admin = await gateAdminPort(g);
  return g;
}

test('/status needs a gate key with an org (401 without), is on the admin listener with the admin token, and /healthz stays open', async () => {
  const mock = await startMock();
  const g = await startOrgGate(mock.url);
  const ok = await g.post('/v1/chat/completions', chat(), { authorization: `Bearer ${AGENT_KEY}` });
  assert.equal(ok.status, 200, ok.text);
  for (const headers of [{}, { authorization: 'Bearer tg-res-not-a-key' }, { 'x-api-key': ADMIN_TOKEN }]) {
    const r = await g.request('/status', { headers });
    assert.equal(r.status, 401, `${JSON.stringify(headers)}: ${r.text}`);
    assert.equal(r.json?.error?.code, 'invalid_api_key', r.text);
    assert.equal(r.json.requests_by_status, undefined, 'the status document leaked');
    assert.ok(!r.text.includes('token_count_drift'), r.text);
  }
  const withKey = await g.request('/status', { headers: { authorization: `Bearer ${AGENT_KEY}` } });
  assert.equal(withKey.status, 200, withKey.text);
  assert.equal(withKey.json.requests_by_status['200'], 1, withKey.text);
  assert.ok(withKey.json.token_count_drift['gpt-4o-mini'], withKey.text);

  const adminNo = await adminRequest(g.admin, 'GET', '/admin/v1/status', {});
  assert.equal(adminNo.status, 401, adminNo.text);
  const adminAgentKey = await adminRequest(g.admin, 'GET', '/admin/v1/status', { token: AGENT_KEY });
  assert.equal(adminAgentKey.status, 401, adminAgentKey.text);
  const adminOk = await adminRequest(g.admin, 'GET', '/admin/v1/status', { token: ADMIN_TOKEN });
  assert.equal(adminOk.status, 200, adminOk.text);
  assert.match(adminOk.headers['content-type'], /application\/json/);
  assert.equal(adminOk.json.version, withKey.json.version);
  assert.ok(adminOk.json.requests_by_status['401'] >= 3, adminOk.text);
  assert.ok(adminOk.json.token_count_drift['gpt-4o-mini'], adminOk.text);

  const h = await g.request('/healthz');
  assert.equal(h.status, 200, h.text);
  assert.deepEqual(h.json, { status: 'ok' });

  // without an org there are no keys: /status stays open
  const open = await startGate({ config: { ...mockProviders(mock.url) } });
  const s = await open.request('/status');
  assert.equal(s.status, 200, s.text);
  assert.equal(typeof s.json.uptime_s, 'number');
});

/** A body of `size` bytes: `[1,1,1,...]`, or a chat request carrying such an array. */
function numbersBody(size, asChat) {
  const head = asChat ? '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"pad":[' : '[';
  const tail = asChat ? ']}' : ']';
  const n = Math.floor((size - head.length - tail.length + 1) / 2);
  return Buffer.from(head + '1,'.repeat(n - 1) + '1' + tail);
}

/** The gate's /status (no org in these gates: no key needed). */
async function gateStatus(g) {
  const r = await g.request('/status');
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function memoryBackTo(g, atMost, timeoutMs = ms(10000)) {
  const deadline = Date.now() + timeoutMs;
  let s;
  while (Date.now() < deadline) {
    s = await gateStatus(g);
    if (s.memory_in_flight <= atMost) return s.memory_in_flight;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`memory_in_flight stayed at ${s?.memory_in_flight}, above ${atMost}`);
}

test('a body that needs more memory to parse than limits.max_request_memory gets 413 naming it; nothing is forwarded and the gate stays small', { timeout: ms(120000) }, async () => {
  const mock = await startMock();
  const g = await startGate({ config: { ...mockProviders(mock.url),
    limits: { max_request_memory: '16MiB' } } });
  const ok = await g.post('/v1/chat/completions', chat(), { 'x-mock-tokens': '2' });
  assert.equal(ok.status, 200, ok.text);
  const forwarded = (await mock.stats()).requests;
  const rss0 = g.rssKiB();
  let peak = rss0;
  const sampler = setInterval(() => { try { peak = Math.max(peak, g.rssKiB()); } catch { /* exited */ } }, 10);
  // the case: two 32 MiB bodies of [1,1,1,...] in flight at once (one of them a chat
  // request that would be valid, with a large array in it); each took the gate up by 700 MB
  const size = 32 * 1024 * 1024 - 1024;
  const bodies = [numbersBody(size, false), numbersBody(size, true)];
  const ids = bodies.map(() => newId('big'));
  let rs;
  try {
    rs = await Promise.all(bodies.map((b, i) => g.request('/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': ids[i] },
      body: b, timeoutMs: ms(60000) })));
  } finally {
    clearInterval(sampler);
  }
  for (const r of rs) {
    assert.equal(r.status, 413, r.text);
    assert.match(r.json.error.message,
      /needs more memory to parse and check than limits\.max_request_memory allows \(16777216 bytes\)/);
  }
  assert.equal((await mock.stats()).requests, forwarded, 'a refused body reached the provider');
  const grewMiB = (peak - rss0) / 1024;
  if (process.env.TG_IT_DEBUG) process.stderr.write(`rss grew by ${grewMiB.toFixed(0)} MiB\n`);
  // two bodies (32 MiB each, and a contiguous copy of each) and two 16 MiB arenas: about
  // 200 MiB at most; the old gate grew by 1,400 MiB. 600 MiB leaves room for allocator slack.
  assert.ok(grewMiB < 600, `the gate grew by ${grewMiB.toFixed(0)} MiB`);
  // everything was given back, and the gate still serves
  await memoryBackTo(g, 1024 * 1024);
  const after = await g.post('/v1/chat/completions', chat(), { 'x-mock-tokens': '2' });
  assert.equal(after.status, 200, after.text);
  for (const id of ids) {
    const rec = await g.logRecord(id);
    assert.equal(rec.status, 413);
    assert.match(rec.error, /limits\.max_request_memory/);
  }
});

test('past limits.max_memory_in_flight a new request gets 503 with retry-after before its body is read; nothing is forwarded; memory held is given back', async () => {
  const mock = await startMock();
  const g = await startGate({ config: { ...mockProviders(mock.url),
    limits: { max_body_bytes: '8MiB', max_memory_in_flight: '20MiB' } } });
  const forwarded = (await mock.stats()).requests;
  const size = 8 * 1024 * 1024 - 64;
  // 4 MiB of text: the gate counts it twice (the body and its copy upstream), 8 MiB
  const first = Buffer.from(JSON.stringify(chat({
    messages: userMsg('hello '.repeat(Math.floor(4 * 1024 * 1024 / 6) - 20)) })));
  const head = (len, id) => 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
    `content-type: application/json\r\nx-mock-tokens: 2\r\nx-request-id: ${id}\r\n` +
    `content-length: ${len}\r\n\r\n`;
  // the first upload declares 4 MiB and sends a little: the gate holds 8 MiB for it
  const holder = await RawClient.connect(g.port);
  const idHold = newId('hold');
  await holder.write(head(first.length, idHold));
  await holder.write(first.subarray(0, 4096));
  const deadline = Date.now() + ms(10000);
  while ((await gateStatus(g)).memory_in_flight < 2 * first.length) {
    assert.ok(Date.now() < deadline, 'the first body was never counted');
    await new Promise((r) => setTimeout(r, 20));
  }
  // a second one of 8 MiB (16 MiB counted) does not fit beside it in 20 MiB: 503 at once,
  // before its body is sent, and the connection is closed
  const idBusy = newId('busy');
  const busy = await RawClient.connect(g.port);
  try {
    await busy.write(head(size, idBusy));
    const r = await busy.readResponse({ timeoutMs: ms(10000) });
    assert.equal(r.status, 503, r.body.toString());
    assert.equal(r.headers['retry-after'], '1');
    const err = JSON.parse(r.body.toString()).error;
    assert.match(err.message, /limits\.max_memory_in_flight allows \(20971520 bytes\); retry shortly/);
    assert.ok(await busy.waitClosed(ms(3000)), 'the refused connection stayed open');
  } finally {
    busy.destroy();
  }
  // a small request still fits beside the held one
  const small = await g.post('/v1/chat/completions', chat(), { 'x-mock-tokens': '2' });
  assert.equal(small.status, 200, small.text);
  // the first upload completes and is served
  await holder.write(first.subarray(4096));
  const done = await holder.readResponse({ timeoutMs: ms(20000) });
  assert.equal(done.status, 200, done.body.toString().slice(0, 300));
  holder.destroy();
  assert.equal((await mock.stats()).requests, forwarded + 2, 'only the small and the held request were forwarded');
  // all of it is given back: the same body goes through again
  await memoryBackTo(g, 1024 * 1024);
  const again = await g.request('/v1/chat/completions', { method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-tokens': '2' }, body: first });
  assert.equal(again.status, 200, again.text.slice(0, 300));
  assert.equal((await g.logRecord(idBusy)).status, 503);
});

test('a body with 150,000 keys in one object is checked and rewritten in linear time; a duplicate among them is still found', { timeout: ms(120000) }, async () => {
  const mock = await startMock();
  const g = await startOrgGate(mock.url);
  const wide = (extra = '') => {
    let s = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":{';
    const parts = [];
    for (let i = 0; i < 150000; i++) parts.push(`"k${i}":${i}`);
    return s + parts.join(',') + extra + '}}';
  };
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${AGENT_KEY}`,
    'x-mock-tokens': '2' };
  const before = (await mock.stats()).requests;
  // the pairwise check took 50 s on such a body; 20 s is a bound a loaded machine keeps
  let t0 = Date.now();
  const ok = await g.request('/v1/chat/completions', { method: 'POST', headers, body: wide(),
    timeoutMs: ms(60000) });
  const took = Date.now() - t0;
  assert.equal(ok.status, 200, ok.text);
  assert.ok(took < ms(20000), `150,000 keys took ${took} ms`);
  const last = await mock.last();
  assert.equal(JSON.parse(last.body).metadata.k149999, 149999, 'the body reached the provider cut');
  assert.match(last.body, /"max_completion_tokens":\d+|"max_tokens":\d+/, 'the output cap was not written');
  // the same body with one key twice, deep in the object: refused, nothing forwarded
  t0 = Date.now();
  const dup = await g.request('/v1/chat/completions', { method: 'POST', headers,
    body: wide(',"k\\u0031234":0'), timeoutMs: ms(60000) });
  assert.equal(dup.status, 400, dup.text);
  assert.match(dup.json.error.message, /has the key 'k1234' twice in one object/);
  assert.ok(Date.now() - t0 < ms(20000));
  assert.equal((await mock.stats()).requests, before + 1);
});

test('a chunked body is counted as it arrives: the chunk that passes limits.max_memory_in_flight gets 503 with retry-after, and nothing is forwarded', async () => {
  const mock = await startMock();
  const g = await startGate({ config: { ...mockProviders(mock.url),
    limits: { max_body_bytes: '10MiB', max_memory_in_flight: '20MiB' } } });
  const forwarded = (await mock.stats()).requests;
  // a declared upload holds all but about 128 KiB of the 20 MiB (its body counted twice)
  const holdLen = 10 * 1024 * 1024 - 64 * 1024;
  const holder = await RawClient.connect(g.port);
  await holder.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
    `content-type: application/json\r\ncontent-length: ${holdLen}\r\n\r\n{"model":`);
  const deadline = Date.now() + ms(10000);
  while ((await gateStatus(g)).memory_in_flight < 2 * holdLen) {
    assert.ok(Date.now() < deadline, 'the declared body was never counted');
    await new Promise((r) => setTimeout(r, 20));
  }
  const c = await RawClient.connect(g.port);
  try {
    // a first small chunk fits; the next, of 100 KiB (200 KiB counted), does not
    const piece = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"';
    await c.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
      'content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n' +
      `${piece.length.toString(16)}\r\n${piece}\r\n`);
    const big = 'x'.repeat(100 * 1024);
    await c.write(`${big.length.toString(16)}\r\n${big}\r\n`);
    const r = await c.readResponse({ timeoutMs: ms(10000) });
    assert.equal(r.status, 503, r.body.toString());
    assert.equal(r.headers['retry-after'], '1');
    assert.match(JSON.parse(r.body.toString()).error.message, /limits\.max_memory_in_flight/);
    assert.ok(await c.waitClosed(ms(3000)), 'the refused connection stayed open');
  } finally {
    c.destroy();
    holder.destroy();
  }
  assert.equal((await mock.stats()).requests, forwarded, 'a refused body reached the provider');
  // the holder left, the refused one too: everything is given back
  await memoryBackTo(g, 1024 * 1024);
});

test('a body nested deeper than a splice handles in linear time is printed instead: forwarded whole, with the cap written', async () => {
  const mock = await startMock();
  const g = await startOrgGate(mock.url);
  const depth = 200; // past JSONEDIT_MAX_DEPTH (64), within cJSON's limit (1000)
  const deep = '['.repeat(depth) + '"deep"' + ']'.repeat(depth);
  const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":{"d":${deep}}}`;
  const r = await g.request('/v1/chat/completions', { method: 'POST', body,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_KEY}`,
      'x-mock-tokens': '2' } });
  assert.equal(r.status, 200, r.text);
  const sent = JSON.parse((await mock.last()).body);
  let v = sent.metadata.d;
  for (let i = 0; i < depth; i++) v = v[0];
  assert.equal(v, 'deep', 'the nested value did not reach the provider whole');
  assert.ok(Number.isInteger(sent.max_completion_tokens ?? sent.max_tokens), 'no output cap written');
});
