// Strict HTTP on the agents' port and limits on the admin port: slow bodies (a whole-body
// deadline), declared chunk sizes, chunk extensions and trailers, header names and empty values,
// Expect: 100-continue with a bad key, bytes in the request target, NULs and control characters
// in the model. Each case checks the status, the error text, and what reached the provider.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, mockProviders, rawRequest, rawPost, RawClient, tempDir,
  gateAdminPort, adminRequest, ms, sleep,
} from './harness.mjs';

const MAX_BODY = 64 * 1024;
const BODY_DEADLINE_S = Math.ceil(ms(2000) / 1000); // timeouts.client_body for these gates
const KEY = 'tg-hs-good-key-00000001';
const ADMIN_TOKEN = 'tg-hs-admin-token-0000000000001';

let mock, gate, org;

const q = (s) => JSON.stringify(s);

before(async () => {
  mock = await startMock();
  gate = await startGate({ config: { ...mockProviders(mock.url),
    limits: { max_header_bytes: '8KiB', max_headers: 20, max_body_bytes: '64KiB' },
    timeouts: { client_body: `${BODY_DEADLINE_S}s` } } });
  const dir = tempDir('tg-hs-org-');
  org = await startGate({ dir, env: { TG_HS_ADMIN: ADMIN_TOKEN }, configText: [
    'listen: 127.0.0.1:0',
    'workers: 1',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'limits: { max_header_bytes: 8KiB }',
    'providers:',
    `  mock-openai: { base_url: ${q(mock.url + '/v1')}, format: openai }`,
    'models:',
    '  gpt-4o-mini: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }',
    'org: acme',
    'departments:',
    '  research:',
    '    teams:',
    '      search: { agents: [crawler] }',
    'keys:',
    `  ${KEY}: crawler`,
    `ledger: { path: ${q(path.join(dir, 'ledger.db'))} }`,
    'admin: { listen: 127.0.0.1:0, token_env: TG_HS_ADMIN }',
  ].join('\n') + '\n' });
  org.admin = await gateAdminPort(org);
});

after(cleanup);

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
const HEAD = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n';
const CHUNKED = HEAD + 'transfer-encoding: chunked\r\n\r\n';
const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;

/** Runs fn and checks that the provider received nothing meanwhile. */
async function noUpstream(fn) {
  const before = (await mock.stats()).requests;
  const r = await fn();
  const st = await mock.stats();
  assert.equal(st.requests, before,
    `the provider received ${st.requests - before} request(s): ${JSON.stringify(st.by_path)}`);
  return r;
}

/** Runs fn and checks that the provider received exactly one request; returns fn's result and
 * that request as the mock saw it. */
async function oneUpstream(fn) {
  const before = (await mock.stats()).requests;
  const r = await fn();
  assert.equal((await mock.stats()).requests, before + 1, 'one request reached the provider');
  return { r, seen: await mock.last() };
}

function openaiError(r, status, code, re) {
  assert.equal(r.status, status, r.body);
  assert.ok(r.json && r.json.error, `a JSON error body: ${r.body}`);
  if (code !== undefined) assert.equal(r.json.error.code, code, r.body);
  assert.match(r.json.error.message, re);
}

// ---- item 10: slow bodies and declared sizes ------------------------------------------------

/** Sends the head, then the body one byte at a time with gaps much shorter than the deadline,
 * until the gate answers. Returns the response and how long it took. */
async function dribble(head, expectContinue) {
  const c = await RawClient.connect(gate.port);
  try {
    const t0 = Date.now();
    await c.write(head);
    if (expectContinue) await c.until(() => c.buf.includes('HTTP/1.1 100'), ms(5000), '100');
    let sent = 0;
    const reading = c.readResponse({ timeoutMs: ms(30000) });
    let answered = false;
    reading.then(() => { answered = true; }, () => { answered = true; });
    // the deadline is several seconds; a byte every 250 ms never leaves a long gap
    while (!answered && !c.ended && sent < 1000) {
      await c.write('{').catch(() => {});
      sent++;
      await sleep(250);
    }
    const r = await reading;
    return { r, elapsed: Date.now() - t0, sent, closed: await c.waitClosed(ms(3000)) };
  } finally {
    c.destroy();
  }
}

test('a body that dribbles in is cut at the whole-body deadline with 408 (timeouts.client_body)', async () => {
  const { r, elapsed, sent, closed } = await noUpstream(() =>
    dribble(HEAD + 'content-length: 10000\r\n\r\n', false));
  assert.equal(r.status, 408, r.body);
  assert.match(JSON.parse(r.body).error.message, /request body did not arrive in time/);
  assert.equal(closed, true, 'the connection closes');
  // at least the deadline went by, and bytes kept arriving all along
  assert.ok(elapsed >= BODY_DEADLINE_S * 1000 - 100, `answered after ${elapsed} ms`);
  assert.ok(sent >= 4, `only ${sent} bytes were sent`);
});

test('after 100 Continue, a dribbled body meets the same deadline', async () => {
  const { r, closed } = await noUpstream(() =>
    dribble(HEAD + 'expect: 100-continue\r\ncontent-length: 10000\r\n\r\n', true));
  assert.equal(r.status, 408, r.body);
  assert.equal(r.interim.length, 1, 'the 100 came first');
  assert.match(JSON.parse(r.body).error.message, /request body did not arrive in time/);
  assert.equal(closed, true);
});

test('a chunked body within the limits and the deadline goes through', async () => {
  const { r, seen } = await oneUpstream(() =>
    rawRequest(gate.port, CHUNKED + chunk(CHAT.slice(0, 10)) + chunk(CHAT.slice(10)) + '0\r\n\r\n'));
  assert.equal(r.status, 200, r.body);
  assert.equal(seen.body, CHAT);
});

test('a declared chunk size over max_body_bytes is refused with 413 before any of it is sent', async () => {
  for (const size of ['10001', 'fffffff', 'ffffffffffff']) {
    // nothing follows the size line: the answer must not wait for the data
    const r = await noUpstream(() => rawRequest(gate.port, CHUNKED + `${size}\r\n`));
    openaiError(r, 413, 'request_too_large', /request body is larger than the limit/);
    assert.equal(r.closed, true, size);
  }
  // chunks that add up past the cap, each small
  const half = 'a'.repeat(MAX_BODY / 2);
  const r = await noUpstream(() =>
    rawRequest(gate.port, CHUNKED + chunk(half) + chunk(half) + '1\r\n'));
  openaiError(r, 413, 'request_too_large', /larger than the limit/);
});

test('chunk extensions and trailers count against max_body_bytes', async () => {
  const ext = `1;x=${'v'.repeat(MAX_BODY)}\r\n{\r\n`;
  const r1 = await noUpstream(() => rawRequest(gate.port, CHUNKED + ext));
  openaiError(r1, 413, 'request_too_large', /larger than the limit/);
  // many small extensions add up too
  const many = Array.from({ length: 40 }, () => `1;${'e'.repeat(2000)}\r\n \r\n`).join('');
  const r2 = await noUpstream(() => rawRequest(gate.port, CHUNKED + many));
  openaiError(r2, 413, 'request_too_large', /larger than the limit/);
  const trailers = Array.from({ length: 40 }, (_, i) => `x-t${i}: ${'t'.repeat(2000)}\r\n`).join('');
  const r3 = await noUpstream(() =>
    rawRequest(gate.port, CHUNKED + chunk(CHAT) + '0\r\n' + trailers + '\r\n'));
  openaiError(r3, 413, 'request_too_large', /larger than the limit/);
  // a short extension is allowed and dropped
  const { r, seen } = await oneUpstream(() =>
    rawRequest(gate.port, CHUNKED + `${Buffer.byteLength(CHAT).toString(16)};name=val\r\n${CHAT}\r\n0\r\n\r\n`));
  assert.equal(r.status, 200, r.body);
  assert.equal(seen.body, CHAT);
});

// ---- item 12: trailers are dropped --------------------------------------------------------

test('trailer fields are dropped: never forwarded, never read as headers', async () => {
  const { r, seen } = await oneUpstream(() => rawRequest(gate.port,
    CHUNKED + chunk(CHAT) + '0\r\nx-trailer-test: 1\r\ncontent-type: text/evil\r\n\r\n'));
  assert.equal(r.status, 200, r.body);
  assert.equal(seen.headers['x-trailer-test'], undefined, JSON.stringify(seen.headers));
  assert.equal(seen.headers['content-type'], 'application/json');
  assert.equal(seen.body, CHAT);
});

test('an authorization trailer does not authenticate', async () => {
  const r = await noUpstream(() => rawRequest(org.port,
    CHUNKED + chunk(CHAT) + `0\r\nauthorization: Bearer ${KEY}\r\n\r\n`));
  openaiError(r, 401, 'invalid_api_key', /no API key/);
  // the same key as a header does
  const { r: ok } = await oneUpstream(() => rawRequest(org.port,
    CHUNKED.replace('\r\n\r\n', `\r\nauthorization: Bearer ${KEY}\r\n\r\n`) + chunk(CHAT) + '0\r\n\r\n'));
  assert.equal(ok.status, 200, ok.body);
});

// ---- items 13 and 14: header names and empty values -----------------------------------------

test('a header name with a space or a byte outside the token characters is refused with 400', async () => {
  for (const name of ['content length', 'transfer encoding', 'x-a b', 'x-a\x7fb', 'x-\xe9', 'x{y}']) {
    const raw = HEAD + `${name}: 5\r\ncontent-length: ${CHAT.length}\r\n\r\n${CHAT}`;
    const r = await noUpstream(() => rawRequest(gate.port, raw));
    assert.equal(r.status, 400, `${JSON.stringify(name)}: ${r.body}`);
    assert.equal(r.json.error.code, 'bad_http', name);
    assert.match(r.json.error.message,
      /header name has a character that is not allowed|Invalid header token/, name);
    assert.equal(r.closed, true, name);
  }
});

test('an empty header value is valid and forwarded as empty', async () => {
  for (const line of ['x-empty:', 'x-empty:   ', 'x-empty:\t']) {
    const raw = HEAD + `${line}\r\nx-after: 1\r\ncontent-length: ${CHAT.length}\r\n\r\n${CHAT}`;
    const { r, seen } = await oneUpstream(() => rawRequest(gate.port, raw));
    assert.equal(r.status, 200, `${JSON.stringify(line)}: ${r.body}`);
    assert.equal(seen.headers['x-empty'], '', JSON.stringify(seen.headers));
    assert.equal(seen.headers['x-after'], '1');
  }
  // a real fold is still refused
  const r = await noUpstream(() => rawRequest(gate.port,
    HEAD + `x-fold:\r\n folded\r\ncontent-length: ${CHAT.length}\r\n\r\n${CHAT}`));
  openaiError(r, 400, 'bad_http', /folded header line/);
});

// ---- item 15: Expect with a bad key --------------------------------------------------------

async function expectContinue(headers) {
  const c = await RawClient.connect(org.port);
  try {
    await c.write(HEAD + headers + `expect: 100-continue\r\ncontent-length: ${CHAT.length}\r\n\r\n`);
    // the client waits for the 100 (or an answer) before it sends the body
    await c.until(() => c.buf.length > 0, ms(5000), 'an answer to the head');
    if (c.buf.toString('latin1').startsWith('HTTP/1.1 100')) await c.write(CHAT);
    const r = await c.readResponse();
    return { ...r, json: JSON.parse(r.body), closed: await c.waitClosed(ms(3000)) };
  } finally {
    c.destroy();
  }
}

test('Expect: 100-continue with a bad or missing key is answered 401 without a 100', async () => {
  for (const h of ['authorization: Bearer tg-hs-not-a-key\r\n', 'x-api-key: nope\r\n', '']) {
    const r = await noUpstream(() => expectContinue(h));
    assert.equal(r.status, 401, `${h}: ${r.body}`);
    assert.equal(r.interim.length, 0, `${h}: a 100 was sent before the 401`);
    assert.match(r.json.error.message, h ? /not valid for this gate/ : /no API key/);
    assert.equal(r.closed, true, 'the connection closes (the body may still come)');
  }
  const { r } = await oneUpstream(() => expectContinue(`authorization: Bearer ${KEY}\r\n`));
  assert.equal(r.status, 200, r.body);
  assert.equal(r.interim.length, 1);
  assert.equal(r.interim[0].status, 100);
});

// ---- item 16: the request target and the model ----------------------------------------------

test('control bytes, white space, bytes over 0x7F and fragments in the target are refused with 400', async () => {
  for (const target of ['/v1/chat/completions?a=1\tb', '/v1/chat/completions?a=\xe9',
    '/v1/chat/completions?a=1#frag', '/v1/chat/completions#frag', '/v1/chat/complet\xe9ons']) {
    const raw = rawPost(target, CHAT);
    const r = await noUpstream(() => rawRequest(gate.port, raw));
    assert.equal(r.status, 400, `${JSON.stringify(target)}: ${r.body}`);
    assert.equal(r.json.error.code, 'bad_http');
    assert.match(r.json.error.message, /request target has a byte that must be percent-encoded/);
  }
  // llhttp refuses the other control bytes itself
  const r = await noUpstream(() => rawRequest(gate.port, rawPost('/v1/chat/completions?a=\x01', CHAT)));
  assert.equal(r.status, 400, r.body);
  // percent-encoded, the same bytes pass, as sent
  const { r: ok, seen } = await oneUpstream(() =>
    rawRequest(gate.port, rawPost('/v1/chat/completions?a=%C3%A9%09b', CHAT)));
  assert.equal(ok.status, 200, ok.body);
  assert.equal(seen.uri, '/v1/chat/completions?a=%C3%A9%09b');
});

test('a NUL or a control character in the model is refused with 400', async () => {
  const cases = [
    ['{"model":"gpt-4o-mini\\u0000x","messages":[{"role":"user","content":"x"}]}', /NUL/],
    ['{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x\\u0000 hidden"}]}', /NUL/],
    ['{"model":"gpt-4o-mini\\n","messages":[{"role":"user","content":"x"}]}', /'model' has a control character/],
    ['{"model":"gpt-4o-mini\\u001b[0m","messages":[]}', /'model' has a control character/],
    ['{"model":"gpt-4o-mini\x7f","messages":[]}', /'model' has a control character/],
    ['{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x\x00y"}]}', /NUL/],
  ];
  for (const [body, re] of cases) {
    const r = await noUpstream(() => rawRequest(gate.port, rawPost('/v1/chat/completions', body)));
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.body}`);
    assert.equal(r.json.error.code, 'invalid_request');
    assert.match(r.json.error.message, re);
  }
});

// ---- item 11: the admin listener's caps ------------------------------------------------------

/** Sends headBytes of header lines (no token) to the admin port in 16 KiB writes, stopping
 * when the gate answers or closes, then the end of the head (with a content-length when
 * bodyLength is given) unless it has answered. Nothing is written after an answer (a write
 * into a reset connection can lose the answer). Returns {status (null when the gate closed
 * without an answer the client could read), sent}. */
async function adminFlood(headBytes, bodyLength) {
  const c = await RawClient.connect(org.admin);
  const answered = () => c.ended || c.buf.length > 0;
  try {
    await c.write('POST /admin/v1/keys HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    let sent = 0;
    const line = `x-pad: ${'p'.repeat(1000)}\r\n`;
    while (sent < headBytes && !answered()) {
      const n = Math.min(16, Math.ceil((headBytes - sent) / line.length));
      await c.write(line.repeat(n)).catch(() => {});
      sent += line.length * n;
    }
    await c.until(answered, ms(500), 'an early answer').catch(() => {});
    if (!answered())
      await c.write(bodyLength === undefined ? '\r\n' : `content-length: ${bodyLength}\r\n\r\n`)
        .catch(() => {});
    try {
      const r = await c.readResponse({ timeoutMs: ms(10000), allowPartial: true });
      return { status: r.status, sent };
    } catch {
      return { status: null, sent };
    }
  } finally {
    c.destroy();
  }
}

test('the admin listener caps the head and the body before it checks the token', async () => {
  // a head over limits.max_header_bytes (8 KiB here): refused (libevent answers 400)
  const over = await adminFlood(9 * 1024);
  assert.equal(over.status, 400, `head: ${over.status}`);
  // a flood of headers is not read to its end, and the gate does not grow with it
  const rss0 = org.rssKiB();
  const big = await adminFlood(64 * 1024 * 1024);
  assert.ok(big.status === null || big.status === 400, `status ${big.status}`);
  assert.ok(big.sent < 64 * 1024 * 1024, `the gate read all ${big.sent} bytes of headers`);
  const rss1 = org.rssKiB();
  assert.ok(rss1 - rss0 < 16 * 1024, `the gate grew by ${rss1 - rss0} KiB`);
  // a declared body over the admin body cap (64 KiB), without a token: refused, not read
  const body = await adminFlood(0, 128 * 1024);
  assert.equal(body.status, 413, `body: ${body.status}`);
  // within the caps, the token is checked as before
  const r = await adminRequest(org.admin, 'GET', '/admin/v1/budgets', { token: 'wrong' });
  assert.equal(r.status, 401);
  const ok = await adminRequest(org.admin, 'GET', '/admin/v1/budgets', { token: ADMIN_TOKEN,
    headers: { 'x-pad': 'p'.repeat(4000) } });
  assert.equal(ok.status, 200, ok.text);
});
