// The settlement matrix: every way a request can end, for chat completions, responses and
// messages, under an org with budgets and prices, each checked in the ledger against what the
// mock provider billed (/_mock/usage by x-request-id) or sent. And the rules that keep a
// budget whole whatever the provider does: every output cap clamped, caps refused when they are
// not whole numbers, usage trusted only when final and sane, compressed answers read, streams
// cut when they run past their allowance, clients that never read let go.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, tempDir, runGate, gateAdminPort, adminRequest, sleep, ms,
  RawClient, rawPost, parseSSE, newId, queuedBytes,
} from './harness.mjs';

const ADMIN_TOKEN = 'tga-settlement-admin-token-000001';
const KEY = 'tg-settle-agent-key-0001';
const PRICE = { in: 0.15, out: 0.6, ain: 1.0, aout: 5.0 }; // USD per million tokens

let mock;
let gate;

before(async () => {
  mock = await startMock();
  gate = await startOrgGate();
});

after(cleanup);

const q = (s) => JSON.stringify(s);

/** A gate with one agent (team t, budgets big enough never to refuse) and a ledger. */
function orgYaml(dir, extra = '', tokens = 100000000) {
  return [
    'listen: 127.0.0.1:0',
    'workers: 1',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    extra,
    'providers:',
    `  mock-openai: { base_url: ${q(mock.url + '/v1')}, format: openai }`,
    `  mock-anthropic: { base_url: ${q(mock.url + '/v1')}, format: anthropic }`,
    'models:',
    `  gpt-4o-mini: { provider: mock-openai, price: { input: ${PRICE.in}, output: ${PRICE.out} } }`,
    `  claude-haiku-4-5: { provider: mock-anthropic, price: { input: ${PRICE.ain}, output: ${PRICE.aout} } }`,
    'org: acme',
    'departments:',
    '  d: { teams: { t: { agents: [agent] } } }',
    'keys:',
    `  ${KEY}: agent`,
    'budgets:',
    `  - { scope: team:t, window: day, tokens: ${tokens}, usd: 10000 }`,
    `ledger: { path: ${q(path.join(dir, 'ledger.db'))} }`,
    'admin: { listen: 127.0.0.1:0, token_env: TG_ST_ADMIN }',
  ].join('\n') + '\n';
}

async function startOrgGate(extra = '', tokens = undefined) {
  const dir = tempDir('tg-settle-');
  const g = await startGate({ configText: orgYaml(dir, extra, tokens), dir, env: { TG_ST_ADMIN: ADMIN_TOKEN } });
  g.admin = await gateAdminPort(g);
  g.ledgerPath = path.join(dir, 'ledger.db');
  return g;
}

// ---- the three APIs ---------------------------------------------------------------------------

const WORDS = ['budget', 'token', 'stream', 'ledger', 'agent', 'model', 'provider', 'cost'];
/** A prompt that differs from one request to the next. */
function prompt() {
  const n = 4 + Math.floor(Math.random() * 12);
  return Array.from({ length: n }, () => WORDS[Math.floor(Math.random() * WORDS.length)]).join(' ');
}

const APIS = [
  { name: 'chat', path: '/v1/chat/completions', fmt: 'openai', price: [PRICE.in, PRICE.out],
    body: (o = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt() }],
      ...(o.cap !== undefined ? { max_tokens: o.cap } : {}), ...(o.stream ? { stream: true } : {}) }) },
  { name: 'responses', path: '/v1/responses', fmt: 'openai', price: [PRICE.in, PRICE.out],
    body: (o = {}) => ({ model: 'gpt-4o-mini', input: prompt(),
      ...(o.cap !== undefined ? { max_output_tokens: o.cap } : {}), ...(o.stream ? { stream: true } : {}) }) },
  { name: 'messages', path: '/v1/messages', fmt: 'anthropic', price: [PRICE.ain, PRICE.aout],
    body: (o = {}) => ({ model: 'claude-haiku-4-5', max_tokens: o.cap ?? 1024,
      messages: [{ role: 'user', content: prompt() }], ...(o.stream ? { stream: true } : {}) }) },
];

const auth = { authorization: `Bearer ${KEY}` };

/** Sends a request; returns the response and its id. */
async function send(api, o = {}, headers = {}, g = gate) {
  const id = newId(`st-${api.name}`);
  const r = await g.post(api.path, api.body(o), { ...auth, 'x-request-id': id, ...headers });
  return { r, id };
}

/** The ledger row of a request, waiting for it (failed requests are written unheld). */
async function ledgerRow(id, g = gate, timeoutMs = ms(10000)) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = runGate(['logs', '--db', g.ledgerPath, '--format', 'json', '--limit', '2000']);
    assert.equal(out.status, 0, out.stderr);
    const row = out.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((x) => x.id === id);
    if (row) return row;
    if (Date.now() > deadline) throw new Error(`ledger: no row for ${id}`);
    await sleep(50);
  }
}

/** What the mock billed and sent for a request: {input, output, sent, closed, usage, ...}. */
async function billed(id) {
  const deadline = Date.now() + ms(10000);
  for (;;) {
    const u = (await mock.hook('GET', '/_mock/usage')).usage[id];
    if (u) return u;
    if (Date.now() > deadline) throw new Error(`mock: no usage entry for ${id}`);
    await sleep(50);
  }
}

/** Nano-dollars of tokens at a price in USD per million tokens, rounded up as the gate does. */
const nusd = (input, output, [pin, pout]) => Math.ceil((input * pin * 1e6 + output * pout * 1e6) / 1000);

/** Reservations still held by the agent's team (0 once every request settled). */
async function reserved(g = gate) {
  const r = await adminRequest(g.admin, 'GET', '/admin/v1/budgets?scope=team:t&window=day',
    { token: ADMIN_TOKEN });
  assert.equal(r.status, 200, r.text);
  return r.json.budgets[0].reserved_tokens;
}

async function settledToZero(g = gate) {
  const deadline = Date.now() + ms(10000);
  while ((await reserved(g)) !== 0) {
    if (Date.now() > deadline) assert.fail(`reservations still held: ${await reserved(g)}`);
    await sleep(50);
  }
}

/** Charged = the gate's own count of input and relayed output (no usage trusted). */
function assertOwnCount(row, what) {
  assert.ok(row.in_own > 0, `${what}: ${q(row)}`);
  assert.equal(row.tokens_charged, row.in_own + row.out_own, `${what}: ${q(row)}`);
}

/** No final usage: charged the larger of the gate's count and the partial usage, each. */
function assertPartial(row, what) {
  const want = Math.max(row.in_own, row.in_usage ?? 0) + Math.max(row.out_own, row.out_usage ?? 0);
  assert.equal(row.tokens_charged, want, `${what}: ${q(row)}`);
}

// ---- the matrix -------------------------------------------------------------------------------

for (const api of APIS) {
  for (const stream of [false, true]) {
    test(`${api.name}${stream ? ' stream' : ''}: final usage is charged exactly, in tokens and dollars`, async () => {
      const { r, id } = await send(api, { stream, cap: 40 }, { 'x-mock-tokens': String(10 + Math.floor(Math.random() * 20)) });
      assert.equal(r.status, 200, r.text);
      const [row, b] = await Promise.all([ledgerRow(id), billed(id)]);
      assert.equal(b.usage, true);
      assert.equal(row.tokens_charged, b.input + b.output, q({ row, b }));
      assert.equal(row.cost_nusd, nusd(b.input, b.output, api.price), q({ row, b }));
    });
  }

  test(`${api.name} stream: no usage reported: charged the gate's count of input and output relayed`, async () => {
    const { r, id } = await send(api, { stream: true, cap: 60 }, { 'x-mock-fault': 'no-usage', 'x-mock-tokens': '25' });
    assert.equal(r.status, 200);
    const [row, b] = await Promise.all([ledgerRow(id), billed(id)]);
    assert.equal(b.usage, false);
    assertOwnCount(row, 'no usage');
    assert.equal(row.out_own, b.sent, q({ row, b }));
  });

  test(`${api.name} stream: upstream reset mid-stream: charged what was relayed, not partial usage`, async () => {
    const { r, id } = await send(api, { stream: true, cap: 200 }, { 'x-mock-cut-after': '30', 'x-mock-tokens': '150' });
    assert.equal(r.status, 200);
    const events = parseSSE(r.text);
    assert.ok(events.some((e) => e.event === 'error' || /"error"/.test(e.data)), `an error event ends it: ${r.text.slice(-400)}`);
    const [row, b] = await Promise.all([ledgerRow(id), billed(id)]);
    assert.equal(b.sent, 30);
    assert.equal(row.out_own, 30, q(row));
    // Anthropic's message_start said output_tokens: 1; the input it reported is kept if larger
    assert.equal(row.tokens_charged, Math.max(row.in_own, api.name === 'messages' ? b.input : 0) + 30, q({ row, b }));
    await settledToZero();
  });

  test(`${api.name} stream: client gone mid-stream: generation stopped, charged what was relayed`, async () => {
    const id = newId(`st-gone-${api.name}`);
    const c = await RawClient.connect(gate.port);
    await c.write(rawPost(api.path, api.body({ stream: true, cap: 90000 }),
      { ...auth, 'x-request-id': id, 'x-mock-tokens': '90000' }));
    await c.until(() => c.received > 4000, ms(10000), 'some of the stream');
    c.destroy();
    const row = await ledgerRow(id);
    const b = await billed(id);
    assert.equal(row.status, 200);
    assertOwnCount(row, 'client gone');
    assert.ok(row.out_own > 0 && row.out_own <= b.sent, q({ row, b }));
    // the gate closed the upstream connection: the mock stopped well short of the 90000
    const deadline = Date.now() + ms(10000);
    let last = await billed(id);
    while (!last.closed && Date.now() < deadline) { await sleep(50); last = await billed(id); }
    assert.equal(last.closed, true, q(last));
    assert.ok(last.sent < 90000, q(last));
    await settledToZero();
  });

  test(`${api.name} stream: client gone after the provider sent it all: what came already is read, final usage charged`, async () => {
    const id = newId(`st-gone-all-${api.name}`);
    const c = await RawClient.connect(gate.port);
    c.pause(); // the gate's output fills, it stops reading; the rest waits in socket buffers
    await c.write(rawPost(api.path, api.body({ stream: true, cap: 3000 }),
      { ...auth, 'x-request-id': id, 'x-mock-tokens': '2500' }));
    const deadline = Date.now() + ms(15000);
    let b = await billed(id);
    while (!b.complete && Date.now() < deadline) { await sleep(50); b = await billed(id); }
    assert.equal(b.complete, true, `the mock wrote the whole stream: ${q(b)}`);
    c.destroy();
    const row = await ledgerRow(id);
    assert.equal(row.tokens_charged, b.input + b.output, `the provider's final usage: ${q({ row, b })}`);
    assert.equal(row.out_usage, b.output);
    await settledToZero();
  });

  test(`${api.name}: a non-stream answer the client left before is read to its end and charged its usage`, async () => {
    const id = newId(`st-left-${api.name}`);
    const c = await RawClient.connect(gate.port);
    await c.write(rawPost(api.path, api.body({ cap: 500 }),
      { ...auth, 'x-request-id': id, 'x-mock-fault': 'slow', 'x-mock-tokens': '20' }));
    await sleep(300);
    c.destroy();
    const row = await ledgerRow(id, gate, ms(30000));
    const b = await billed(id);
    assert.equal(row.status, 499, q(row));
    assert.equal(row.tokens_charged, b.input + b.output, q({ row, b }));
  });

  test(`${api.name}: gzip and deflate answers are decoded: usage read, the client gets plain text`, async () => {
    for (const coding of ['gzip', 'deflate']) {
      for (const stream of [false, true]) {
        const { r, id } = await send(api, { stream, cap: 50 }, { 'x-mock-fault': coding, 'x-mock-tokens': '12' });
        assert.equal(r.status, 200, `${coding} ${stream}: ${r.text}`);
        assert.equal(r.headers['content-encoding'], undefined);
        if (stream) assert.ok(parseSSE(r.text).length > 3, r.text);
        else assert.ok(r.json, `${coding}: a JSON body: ${r.text.slice(0, 200)}`);
        const [row, b] = await Promise.all([ledgerRow(id), billed(id)]);
        assert.equal(row.tokens_charged, b.input + b.output, `${coding} ${stream}: ${q({ row, b })}`);
        assert.equal(row.out_usage, b.output);
      }
    }
  });

  test(`${api.name}: absurd usage is never trusted: the gate's count is charged and the record says why`, async () => {
    for (const kind of ['negative', 'huge', 'fraction', 'string']) {
      for (const stream of [false, true]) {
        const { r, id } = await send(api, { stream, cap: 50 }, { 'x-mock-usage': kind, 'x-mock-tokens': '15' });
        assert.equal(r.status, 200);
        const row = await ledgerRow(id);
        assertOwnCount(row, `${kind} ${stream}`);
        assert.equal(row.out_own, 15, q(row));
        assert.match(row.error, /usage was not trusted/, q(row));
      }
    }
  });

  test(`${api.name} stream: a runaway provider is cut at the allowance plus the margin`, async () => {
    const cap = 40;
    const { r, id } = await send(api, { stream: true, cap }, { 'x-mock-fault': 'runaway', 'x-mock-tokens': '500000' });
    assert.equal(r.status, 200);
    const events = parseSSE(r.text);
    const last = events[events.length - 1];
    if (api.fmt === 'anthropic') assert.equal(last.event, 'error', r.text.slice(-300));
    assert.match(last.data, /output_limit_exceeded|more output than this request was allowed/, r.text.slice(-300));
    const row = await ledgerRow(id);
    assertOwnCount(row, 'runaway');
    // exact counts: cap + cap/16 + 32; approximate (Anthropic): cap + cap/4 + 64; plus one event
    const limit = api.fmt === 'anthropic' ? cap + Math.floor(cap / 4) + 64 : cap + Math.floor(cap / 16) + 32;
    assert.ok(row.out_own > limit && row.out_own <= limit + 2, `${limit}: ${q(row)}`);
    const deadline = Date.now() + ms(10000);
    let b = await billed(id);
    while (!b.closed && Date.now() < deadline) { await sleep(50); b = await billed(id); }
    assert.equal(b.closed, true, 'the upstream connection was closed');
    assert.ok(b.sent < 500000, q(b));
    await settledToZero();
  });

  test(`${api.name}: an answer that does not parse is charged no less than its reservation`, async () => {
    const { r, id } = await send(api, { cap: 300 }, { 'x-mock-fault': 'malformed', 'x-mock-tokens': '20' });
    assert.equal(r.status, 200);
    const [row, b] = await Promise.all([ledgerRow(id), billed(id)]);
    assert.ok(row.reserved_tokens > 300, q(row));
    assert.equal(row.tokens_charged, row.reserved_tokens, q(row));
    assert.ok(row.tokens_charged >= b.input + b.output, q({ row, b }));
  });

  test(`${api.name} stream: a mid-stream error event settles at what was relayed or the final usage`, async () => {
    const { r, id } = await send(api, { stream: true, cap: 100 }, { 'x-mock-fault': 'error-event', 'x-mock-tokens': '50' });
    assert.equal(r.status, 200);
    const [row, b] = await Promise.all([ledgerRow(id), billed(id)]);
    if (b.usage) assert.equal(row.tokens_charged, b.input + b.output, q({ row, b }));
    else {
      assertOwnCount(row, 'error event');
      assert.equal(row.out_own, b.sent, q({ row, b }));
    }
  });
}

// ---- a client gone, the provider's stream waiting unread, the gate slow to get to it ----------

// The gate reads a stream on for a moment after its client left (250 ms), for what the provider
// made before it could see the close. What the provider has sent by the time that moment is
// over and waits unread in the gate's socket is billed: it must be read and charged however late
// the gate gets to it (a loaded machine, a sanitizer build), not cut by the gate's clock. Here
// the gate is stopped (SIGSTOP) from just after it saw the client go until well past that
// moment, while the provider sends the whole stream.
test('chat stream: client gone, the gate stopped past its drain moment while the provider sent it all: all of it read, final usage charged', async () => {
  const api = APIS[0];
  const id = newId('st-gone-late');
  const c = await RawClient.connect(gate.port);
  let stopped = false;
  try {
    await c.write(rawPost(api.path, api.body({ stream: true, cap: 3000 }),
      { ...auth, 'x-request-id': id, 'x-mock-tokens': '1500', 'x-mock-stall-ms': '1000' }));
    await billed(id); // the provider has the request: it stalls, then sends the stream at once
    c.destroy();
    await sleep(100); // the gate sees the client go (were it later, it would only be less late)
    process.kill(gate.pid, 'SIGSTOP');
    stopped = true;
    const deadline = Date.now() + ms(15000);
    let b = await billed(id);
    while (!b.complete && Date.now() < deadline) { await sleep(50); b = await billed(id); }
    assert.equal(b.complete, true, `the mock wrote the whole stream: ${q(b)}`);
    // the whole of it on the wire (in the kernel's queues) before the gate goes on
    while (queuedBytes(mock.port) < b.bytes && Date.now() < deadline) await sleep(20);
    assert.ok(queuedBytes(mock.port) >= b.bytes, `the stream waits in the kernel: ${queuedBytes(mock.port)} of ${b.bytes}`);
    await sleep(300); // and well past the gate's 250 ms
    process.kill(gate.pid, 'SIGCONT');
    stopped = false;
    const row = await ledgerRow(id);
    assert.match(row.error ?? '', /client closed/, q(row));
    assert.equal(row.tokens_charged, b.input + b.output, `the provider's final usage: ${q({ row, b })}`);
    assert.equal(row.out_usage, b.output, q(row));
    assert.equal(row.out_own, b.output, q(row)); // every event counted, none relayed
    await settledToZero();
  } finally {
    if (stopped) process.kill(gate.pid, 'SIGCONT');
    c.destroy();
  }
});

// ---- limits of their own: a small response cap, a short stream idle, a short write timeout -----

test('a 200 over max_response_bytes (502 to the client) is charged its reservation, not its input', async () => {
  const g = await startOrgGate('limits: { max_response_bytes: 1KiB }');
  for (const api of APIS) {
    const { r, id } = await send(api, { cap: 2000 }, { 'x-mock-tokens': '600' }, g);
    assert.equal(r.status, 502, r.text);
    const [row, b] = await Promise.all([ledgerRow(id, g), billed(id)]);
    assert.equal(row.tokens_charged, row.reserved_tokens, q(row));
    assert.ok(row.tokens_charged >= b.input + b.output, q({ row, b }));
  }
  await settledToZero(g);
});

test('stream idle: a stream that stalls is ended and charged what was relayed', async () => {
  const slowMock = await startMock({ delayMs: 1500 });
  const dir = tempDir('tg-settle-idle-');
  const yaml = orgYaml(dir, 'timeouts: { stream_idle: 400ms }').replaceAll(mock.url, slowMock.url);
  const g = await startGate({ configText: yaml, dir, env: { TG_ST_ADMIN: ADMIN_TOKEN } });
  g.admin = await gateAdminPort(g);
  g.ledgerPath = path.join(dir, 'ledger.db');
  for (const api of APIS) {
    const { r, id } = await send(api, { stream: true, cap: 50 }, { 'x-mock-tokens': '10' }, g);
    assert.equal(r.status, 200);
    assert.match(r.text, /gateway_timeout|timeout_error/, r.text.slice(-300));
    const row = await ledgerRow(id, g);
    assertPartial(row, 'stream idle');
    assert.ok(row.out_own <= 1, q(row));
  }
  await settledToZero(g);
});

test('a client that never reads is let go after timeouts.client_write: reservation released, generation stopped', async () => {
  const g = await startOrgGate('timeouts: { client_write: 1s }');
  const ids = [];
  const clients = [];
  for (const api of APIS) {
    const id = newId(`st-noread-${api.name}`);
    const c = await RawClient.connect(g.port);
    c.pause();
    await c.write(rawPost(api.path, api.body({ stream: true, cap: 5000000 }),
      { ...auth, 'x-request-id': id, 'x-mock-fault': 'runaway', 'x-mock-tokens': '5000000' }));
    ids.push(id);
    clients.push(c);
  }
  for (const id of ids) {
    const row = await ledgerRow(id, g, ms(30000));
    assert.match(row.error, /client_write/, q(row));
    assertOwnCount(row, 'never reads');
    const b = await billed(id);
    assert.ok(row.out_own <= b.sent, q({ row, b }));
  }
  await settledToZero(g);
  for (const id of ids) {
    const deadline = Date.now() + ms(10000);
    let b = await billed(id);
    while (!b.closed && Date.now() < deadline) { await sleep(50); b = await billed(id); }
    assert.equal(b.closed, true);
    assert.ok(b.sent < 5000000);
  }
  for (const c of clients) c.destroy();
});

// ---- output caps ------------------------------------------------------------------------------

async function mockRequests() {
  return (await mock.stats()).requests;
}

test('chat: max_completion_tokens and max_tokens both come down to the allowance', async () => {
  const g = await startOrgGate('', 2000);
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt() }],
    max_completion_tokens: 100000, max_tokens: 100000 };
  // the smaller of two caps is what the provider is held to, whichever member carries it
  const r1 = await g.post('/v1/chat/completions', { ...body, max_tokens: 7 }, auth);
  assert.equal(r1.status, 200, r1.text);
  const sent1 = JSON.parse((await mock.last()).body);
  assert.equal(sent1.max_completion_tokens, 7, q(sent1));
  assert.equal(sent1.max_tokens, 7, q(sent1));
  // both far over the budget: both cut to what the day has left
  const before = await mockRequests();
  const id = newId('st-twocaps');
  const r = await g.post('/v1/chat/completions', body, { ...auth, 'x-request-id': id, 'x-mock-tokens': '100000' });
  assert.equal(r.status, 200, r.text);
  assert.equal(await mockRequests(), before + 1);
  const sent = JSON.parse((await mock.last()).body);
  const row = await ledgerRow(id, g);
  const allowance = sent.max_completion_tokens;
  assert.equal(sent.max_tokens, allowance, `both members clamped: ${q(sent)}`);
  assert.ok(allowance < 2000, q(sent));
  const spent = await adminRequest(g.admin, 'GET', '/admin/v1/budgets?scope=team:t&window=day', { token: ADMIN_TOKEN });
  assert.ok(spent.json.budgets[0].used_tokens <= 2000, `the day's 2000 held: ${spent.text}`);
  assert.equal(row.tokens_charged, row.in_usage + allowance, q(row));
  await settledToZero(g);
});

test('an output cap or n that is not a whole number in range is refused with 400 naming it; nothing is forwarded', async () => {
  const cases = [];
  for (const api of APIS) {
    const members = api.name === 'chat' ? ['max_completion_tokens', 'max_tokens']
      : api.name === 'responses' ? ['max_output_tokens'] : ['max_tokens'];
    for (const m of members)
      for (const v of [10.5, '10', 1e30, -1, true])
        cases.push({ api, patch: { [m]: v }, name: m });
  }
  for (const v of [0, 129, 2.5, '2'])
    cases.push({ api: APIS[0], patch: { n: v }, name: 'n' });
  const before = await mockRequests();
  for (const c of cases) {
    const id = newId('st-badcap');
    const r = await gate.post(c.api.path, { ...c.api.body({ cap: 10 }), ...c.patch }, { ...auth, 'x-request-id': id });
    assert.equal(r.status, 400, `${q(c.patch)}: ${r.text}`);
    assert.match(r.json.error.message, new RegExp(`'${c.name}' must be a whole number`), r.text);
    if (c.api.fmt === 'anthropic') assert.equal(r.json.type, 'error');
    const row = await ledgerRow(id);
    assert.equal(row.tokens_charged, 0);
  }
  assert.equal(await mockRequests(), before, 'nothing reached the provider');
});

test('n > 1 reserves the output allowance once per choice', async () => {
  const g = await startOrgGate('', 3000);
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt() }], n: 4 };
  const id = newId('st-n4');
  const r = await g.post('/v1/chat/completions', body, { ...auth, 'x-request-id': id, 'x-mock-tokens': '5000' });
  assert.equal(r.status, 200, r.text);
  const sent = JSON.parse((await mock.last()).body);
  const allowance = sent.max_completion_tokens;
  assert.ok(allowance > 0 && allowance * 4 <= 3000, q(sent));
  const row = await ledgerRow(id, g);
  assert.ok(row.reserved_tokens >= row.in_own + 4 * allowance, `4 allowances reserved: ${q(row)}`);
  assert.equal(r.json.choices.length, 4);
  assert.ok(row.tokens_charged <= 3000, q(row));
});

test('responses: with less than 16 tokens of headroom the answer is the budget\'s 429, not a provider 400', async () => {
  const g = await startOrgGate('', 50);
  const input = Array.from({ length: 30 }, (_, i) => WORDS[i % WORDS.length]).join(' ');
  const before = await mockRequests();
  const r = await g.post('/v1/responses', { model: 'gpt-4o-mini', input }, auth);
  assert.equal(r.status, 429, r.text);
  assert.equal(r.json.error.type, 'budget_exceeded');
  assert.equal(await mockRequests(), before, 'nothing forwarded');
  // the same headroom is enough for chat, which takes a cap of 1
  const c = await g.post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: input }] }, auth);
  assert.equal(c.status, 200, c.text);
  assert.ok(JSON.parse((await mock.last()).body).max_completion_tokens < 16);
});

test('SIGTERM while a request goes on without its client: the gate waits for it, records it, exits 0', async () => {
  const g = await startOrgGate();
  const ids = [];
  for (const api of APIS) {
    const id = newId(`st-term-${api.name}`);
    const c = await RawClient.connect(g.port);
    await c.write(rawPost(api.path, api.body({ cap: 500 }),
      { ...auth, 'x-request-id': id, 'x-mock-fault': 'slow', 'x-mock-tokens': '20' }));
    await sleep(200);
    c.destroy();
    ids.push(id);
  }
  const exit = await g.proc.stop();
  assert.deepEqual([exit.code, exit.killed], [0, false], q(exit));
  assert.equal(g.proc.sanitizerReport(), null);
  for (const id of ids) {
    const [row, b] = await Promise.all([ledgerRow(id, g), billed(id)]);
    assert.equal(row.status, 499, q(row));
    assert.equal(row.tokens_charged, b.input + b.output, q({ row, b }));
  }
});
