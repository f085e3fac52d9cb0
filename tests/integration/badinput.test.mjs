// Bad input: every request the gate must refuse (malformed HTTP, limits, unknown paths and
// methods, unusable bodies, unknown models), checked for the status, the error body, whether the
// connection closes, and that nothing reached the provider. Then invalid configurations.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, mockProviders, rawRequest, rawPost, RawClient, runGate,
  tempDir, gateConfig, newId, ms, readLogNow, sleep,
} from './harness.mjs';

const ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
const LIMITS = { max_header_bytes: '8KiB', max_headers: 20, max_body_bytes: '64KiB' };
const MAX_BODY = 64 * 1024;

let mock, gate;

before(async () => {
  mock = await startMock();
  gate = await startGate({ config: { ...mockProviders(mock.url), limits: LIMITS } });
});

after(cleanup);

/** Runs fn and checks that the mock saw no request meanwhile. */
async function noUpstream(fn) {
  const before = (await mock.stats()).requests;
  const r = await fn();
  const st = await mock.stats();
  assert.equal(st.requests, before,
    `the provider received ${st.requests - before} request(s): ${JSON.stringify(st.by_path)}`);
  return r;
}

function openaiError(j, type, code) {
  assert.ok(j && typeof j === 'object', 'a JSON error body');
  assert.deepEqual(Object.keys(j), ['error']);
  assert.equal(typeof j.error.message, 'string');
  assert.ok(j.error.message.length > 0, 'a message');
  assert.equal(j.error.type, type);
  assert.equal(j.error.param, null);
  assert.ok('code' in j.error, 'a code member');
  if (code !== undefined) assert.equal(j.error.code, code);
}

function anthropicError(j, type) {
  assert.ok(j && typeof j === 'object', 'a JSON error body');
  assert.equal(j.type, 'error');
  assert.equal(typeof j.error.message, 'string');
  assert.ok(j.error.message.length > 0, 'a message');
  assert.equal(j.error.type, type);
}

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
const MSGS = JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 5,
  messages: [{ role: 'user', content: 'x' }] });
const len = (s) => Buffer.byteLength(s);
const head = (p = '/v1/chat/completions') => `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
// a valid request that must not be reached (smuggled behind a malformed one)
const SMUGGLED = rawPost('/v1/chat/completions', CHAT, { 'x-request-id': 'smuggled' });

const MALFORMED = [
  ['Content-Length and Transfer-Encoding together',
    head() + `Content-Length: ${len(CHAT)}\r\nTransfer-Encoding: chunked\r\n\r\n` +
    `${len(CHAT).toString(16)}\r\n${CHAT}\r\n0\r\n\r\n`],
  ['two Content-Length headers',
    head() + `Content-Length: ${len(CHAT)}\r\nContent-Length: ${len(CHAT)}\r\n\r\n${CHAT}`],
  ['two different Content-Length headers',
    head() + `Content-Length: 2\r\nContent-Length: ${len(CHAT)}\r\n\r\n${CHAT}`],
  ['an obs-fold header line',
    head() + `X-Folded: first\r\n  second\r\nContent-Length: ${len(CHAT)}\r\n\r\n${CHAT}`],
  ['a bare LF ending a header line',
    head() + `X-Bare: lf\nContent-Length: ${len(CHAT)}\r\n\r\n${CHAT}`],
  ['a bare LF ending the request line',
    `POST /v1/chat/completions HTTP/1.1\nHost: 127.0.0.1\r\nContent-Length: ${len(CHAT)}\r\n\r\n${CHAT}`],
  ['a bare LF ending the header block',
    head() + `Content-Length: ${len(CHAT)}\r\n\n${CHAT}`],
  ['a bad chunk size',
    head() + `Transfer-Encoding: chunked\r\n\r\nzz\r\n${CHAT}\r\n0\r\n\r\n`],
  ['white space before a colon',
    head() + `Content-Length : ${len(CHAT)}\r\n\r\n${CHAT}`],
  ['a tab before a colon',
    head() + `X-Tab\t: v\r\nContent-Length: ${len(CHAT)}\r\n\r\n${CHAT}`],
  ['a non-chunked transfer coding',
    head() + `Transfer-Encoding: gzip\r\n\r\n${CHAT}`],
  ['chunked not as the last transfer coding',
    head() + `Transfer-Encoding: chunked, gzip\r\n\r\n${len(CHAT).toString(16)}\r\n${CHAT}\r\n0\r\n\r\n`],
];

for (const [name, data, todo] of MALFORMED) {
  test(`malformed HTTP: ${name} -> 400, connection closed`, { todo }, async () => {
    await noUpstream(async () => {
      const r = await rawRequest(gate.port, data + SMUGGLED);
      assert.equal(r.status, 400, r.body);
      assert.match(r.headers['content-type'], /^application\/json/);
      openaiError(r.json, 'invalid_request_error');
      assert.match(r.json.error.message, /malformed|invalid|transfer/i);
      assert.equal(r.headers.connection, 'close');
      assert.equal(r.closed, true, 'the connection was not closed');
    });
  });
}

test('a malformed request is counted and logged as a 400 with the reason', async () => {
  const before = (await gate.status()).json.requests_by_status['400'] ?? 0;
  const r = await rawRequest(gate.port,
    head() + `Content-Length: 3\r\nContent-Length: 3\r\n\r\n{}x`);
  assert.equal(r.status, 400);
  const after = (await gate.status()).json.requests_by_status['400'] ?? 0;
  assert.equal(after - before, 1);
  const deadline = Date.now() + ms(5000);
  let rec;
  while (!rec && Date.now() < deadline) {
    rec = readLogNow(gate.logPath).find((x) => x.error === r.json.error.message);
    if (!rec) await sleep(20);
  }
  assert.ok(rec, `no log record with error ${r.json.error.message}`);
  assert.equal(rec.status, 400);
  assert.equal(rec.usage, null);
});

test('headers larger than max_header_bytes -> 431, connection closed', async () => {
  await noUpstream(async () => {
    const r = await rawRequest(gate.port,
      head() + `X-Big: ${'a'.repeat(9000)}\r\nContent-Length: ${len(CHAT)}\r\n\r\n${CHAT}`);
    assert.equal(r.status, 431, r.body);
    openaiError(r.json, 'invalid_request_error');
    assert.match(r.json.error.message, /header/i);
    assert.equal(r.closed, true);
  });
  // many headers that are each small but together too large
  await noUpstream(async () => {
    let h = '';
    for (let i = 0; i < 15; i++) h += `X-H${i}: ${'b'.repeat(600)}\r\n`;
    const r = await rawRequest(gate.port, head() + h + `Content-Length: ${len(CHAT)}\r\n\r\n${CHAT}`);
    assert.equal(r.status, 431, r.body);
    assert.equal(r.closed, true);
  });
});

test('a URL larger than max_header_bytes -> 431 or 414, connection closed', async () => {
  await noUpstream(async () => {
    const r = await rawRequest(gate.port,
      `GET /v1/models?q=${'u'.repeat(9000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    assert.ok(r.status === 431 || r.status === 414, `status ${r.status}`);
    assert.equal(r.closed, true);
  });
});

test('more headers than max_headers -> 431, connection closed', async () => {
  await noUpstream(async () => {
    let h = '';
    for (let i = 0; i < 25; i++) h += `X-Many-${i}: v\r\n`;
    const r = await rawRequest(gate.port, head() + h + `Content-Length: ${len(CHAT)}\r\n\r\n${CHAT}`);
    assert.equal(r.status, 431, r.body);
    openaiError(r.json, 'invalid_request_error');
    assert.equal(r.closed, true);
  });
  // exactly max_headers is fine (Host, Content-Type, Content-Length + 17)
  let h = '';
  for (let i = 0; i < 17; i++) h += `X-Ok-${i}: v\r\n`;
  const r = await rawRequest(gate.port,
    head() + h + `Content-Type: application/json\r\nContent-Length: ${len(CHAT)}\r\n\r\n${CHAT}`);
  assert.equal(r.status, 200, r.body);
});

test('a Content-Length over max_body_bytes -> 413 before the body is sent', async () => {
  await noUpstream(async () => {
    // only the head: the gate must answer from the Content-Length alone
    const r = await rawRequest(gate.port, head() + `Content-Length: ${MAX_BODY + 1}\r\n\r\n`,
      { timeoutMs: ms(5000) });
    assert.equal(r.status, 413, r.body);
    openaiError(r.json, 'invalid_request_error');
    assert.match(r.json.error.message, /large|limit/i);
    assert.equal(r.closed, true);
  });
});

test('a chunked body over max_body_bytes -> 413, connection closed', async () => {
  await noUpstream(async () => {
    // one chunk one byte over the limit, and nothing after it, so the gate reads all we send
    const n = MAX_BODY + 1;
    const r = await rawRequest(gate.port,
      head() + `Transfer-Encoding: chunked\r\n\r\n${n.toString(16)}\r\n` + 'x'.repeat(n),
      { timeoutMs: ms(10000) });
    assert.equal(r.status, 413, r.body);
    assert.equal(r.closed, true);
  });
});

test('a body of exactly max_body_bytes is accepted', async () => {
  const pad = MAX_BODY - len(CHAT) - len(',"pad":""');
  const body = CHAT.slice(0, -1) + `,"pad":"${'p'.repeat(pad)}"}`;
  assert.equal(len(body), MAX_BODY);
  const r = await gate.post('/v1/chat/completions', body);
  assert.equal(r.status, 200, r.text);
});

test('unknown paths -> 404 unknown_url, connection kept', async () => {
  await noUpstream(async () => {
    for (const p of ['/v1/completions', '/v2/chat/completions', '/', '/v1/chat/completionsX']) {
      const r = await gate.post(p, CHAT);
      assert.equal(r.status, 404, `${p}: ${r.text}`);
      openaiError(r.json, 'invalid_request_error', 'unknown_url');
      assert.ok(r.json.error.message.includes(p.split('?')[0]), `the message names ${p}`);
    }
    const r = await gate.post('/v1/messages/batches', MSGS);
    assert.equal(r.status, 404);
    anthropicError(r.json, 'not_found_error');
    // a 404 does not close the connection
    const c = await RawClient.connect(gate.port);
    try {
      await c.write('GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      assert.equal((await c.readResponse()).status, 404);
      await c.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      assert.equal((await c.readResponse()).status, 200);
    } finally {
      c.destroy();
    }
  });
});

test('wrong methods -> 405 with an allow header', async () => {
  await noUpstream(async () => {
    const cases = [
      ['GET', '/v1/chat/completions', 'POST', 'openai'],
      ['PUT', '/v1/embeddings', 'POST', 'openai'],
      ['DELETE', '/v1/responses', 'POST', 'openai'],
      ['POST', '/v1/models', 'GET', 'openai'],
      ['POST', '/healthz', 'GET', 'openai'],
      ['POST', '/status', 'GET', 'openai'],
      ['GET', '/v1/messages', 'POST', 'anthropic'],
      ['PATCH', '/v1/messages/count_tokens', 'POST', 'anthropic'],
    ];
    for (const [method, p, allow, fmt] of cases) {
      const r = await gate.request(p, { method, headers: { 'content-type': 'application/json' },
        body: method === 'GET' ? undefined : CHAT });
      assert.equal(r.status, 405, `${method} ${p}: ${r.text}`);
      assert.equal(r.headers.allow, allow, `${method} ${p}`);
      if (fmt === 'openai') openaiError(r.json, 'invalid_request_error');
      else anthropicError(r.json, 'invalid_request_error');
    }
  });
});

const BAD_BODIES = [
  ['not JSON', '{"model": "gpt-4o-mini", '],
  ['an array', '[{"model": "gpt-4o-mini"}]'],
  ['a string', '"gpt-4o-mini"'],
  ['empty', ''],
  ['without a model', '{"messages": []}'],
  ['with a numeric model', '{"model": 4}'],
  ['with an empty model', '{"model": ""}'],
  // a proxy that read one "model" and a provider that read the other would disagree
  ['with a duplicate model key', '{"model": "gpt-4o-mini", "model": "claude-haiku-4-5"}'],
  ['with a duplicate key elsewhere', '{"model": "gpt-4o-mini", "stream": false, "stream": true}'],
];

for (const [name, body, todo] of BAD_BODIES) {
  test(`a body ${name} -> 400 in the format of the path`, { todo }, async () => {
    await noUpstream(async () => {
      for (const [p, fmt] of [['/v1/chat/completions', 'openai'], ['/v1/embeddings', 'openai'],
        ['/v1/responses', 'openai'], ['/v1/messages', 'anthropic'],
        ['/v1/messages/count_tokens', 'anthropic']]) {
        const id = newId('badbody');
        const c = await RawClient.connect(gate.port);
        try {
          await c.write(Buffer.from(rawPost(p, body, { 'x-request-id': id }), 'latin1'));
          const r = await c.readResponse();
          const json = JSON.parse(r.body);
          assert.equal(r.status, 400, `${p}: ${r.body}`);
          assert.equal(r.headers['x-request-id'], id);
          if (fmt === 'openai') openaiError(json, 'invalid_request_error');
          else anthropicError(json, 'invalid_request_error');
          // a bad body does not need the connection closed: the next request on it is served
          await c.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
          assert.equal((await c.readResponse()).status, 200, `${p}: the connection was not kept`);
        } finally {
          c.destroy();
        }
      }
    });
  });
}

test('a bad body is logged with status 400 and the reason', async () => {
  const id = newId('badlog');
  const r = await gate.post('/v1/chat/completions', '{"messages": []}', { 'x-request-id': id });
  assert.equal(r.status, 400);
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 400);
  assert.equal(rec.endpoint, '/v1/chat/completions');
  assert.equal(rec.error, r.json.error.message);
  assert.equal(rec.usage, null);
});

test('an unconfigured model -> 404 model_not_found', async () => {
  await noUpstream(async () => {
    let r = await gate.post('/v1/chat/completions',
      { model: 'gpt-nonexistent', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 404, r.text);
    openaiError(r.json, 'invalid_request_error', 'model_not_found');
    assert.match(r.json.error.message, /gpt-nonexistent/);

    r = await gate.post('/v1/messages',
      { model: 'claude-nonexistent', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 404, r.text);
    anthropicError(r.json, 'not_found_error');
    assert.match(r.json.error.message, /claude-nonexistent/);

    r = await gate.post('/v1/embeddings', { model: 'text-embedding-nope', input: 'x' });
    assert.equal(r.status, 404);
    openaiError(r.json, 'invalid_request_error', 'model_not_found');
  });
});

test("a model served in the other API's format, on an endpoint that is not translated -> 400", async () => {
  // chat completions and messages are translated (translate.test.mjs); the other endpoints
  // have no counterpart in the other API
  await noUpstream(async () => {
    let r = await gate.post('/v1/responses', { model: 'claude-haiku-4-5', input: 'x' });
    assert.equal(r.status, 400, r.text);
    openaiError(r.json, 'invalid_request_error');
    assert.match(r.json.error.message, /claude-haiku-4-5/);
    assert.match(r.json.error.message, /Anthropic format.*cannot be translated/);

    r = await gate.post('/v1/messages/count_tokens',
      { model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 400);
    anthropicError(r.json, 'invalid_request_error');

    r = await gate.post('/v1/embeddings', { model: 'claude-haiku-4-5', input: 'x' });
    assert.equal(r.status, 400);
    openaiError(r.json, 'invalid_request_error');
    assert.match(r.json.error.message, /cannot be translated/);
  });
});

test('refused requests carry an x-request-id too', async () => {
  for (const data of [
    head() + `Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}`,
    head() + `Content-Length: ${MAX_BODY + 1}\r\n\r\n`,
    head() + `X-Big: ${'a'.repeat(9000)}\r\n\r\n`,
  ]) {
    const r = await rawRequest(gate.port, data);
    assert.match(r.headers['x-request-id'] ?? '', ID_RE, `status ${r.status}`);
  }
});

test('limits on /v1/messages are answered in the Anthropic format', async () => {
  let r = await rawRequest(gate.port, head('/v1/messages') + `Content-Length: ${MAX_BODY + 1}\r\n\r\n`);
  assert.equal(r.status, 413);
  anthropicError(r.json, 'request_too_large');
  r = await rawRequest(gate.port, head('/v1/messages') + `X-Big: ${'a'.repeat(9000)}\r\n\r\n`);
  assert.equal(r.status, 431);
  anthropicError(r.json, 'invalid_request_error');
  r = await rawRequest(gate.port, head('/v1/messages') + 'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}');
  assert.equal(r.status, 400);
  anthropicError(r.json, 'invalid_request_error');
});

test('a response to HEAD has no body', async () => {
  const c = await RawClient.connect(gate.port);
  try {
    await c.write('HEAD /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' +
      'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const h = await c.readResponse({ head: true });
    assert.ok(h.status === 405 || h.status === 200, `HEAD: ${h.status}`);
    const r = await c.readResponse();
    assert.equal(r.status, 200, 'the response after HEAD');
    assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
  } finally {
    c.destroy();
  }
});

test('after a request asking for an Upgrade the connection works or closes', async () => {
  const c = await RawClient.connect(gate.port);
  try {
    await c.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
      'Connection: Upgrade\r\n\r\n');
    const r1 = await c.readResponse();
    assert.equal(r1.status, 200);
    if (/close/i.test(r1.headers.connection ?? '')) {
      assert.ok(await c.waitClosed(ms(3000)), 'connection: close, but it stayed open');
      return;
    }
    await c.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const r2 = await c.readResponse({ timeoutMs: ms(3000) });
    assert.equal(r2.status, 200);
  } finally {
    c.destroy();
  }
});

test('the gate keeps serving after all of the above', async () => {
  const r = await gate.post('/v1/chat/completions', CHAT);
  assert.equal(r.status, 200, r.text);
  assert.equal((await gate.request('/healthz')).status, 200);
});

// ---- configuration ---------------------------------------------------------------------------

/**
 * Lines of a valid config; a case replaces or adds lines and marks the line the error must name.
 */
function baseLines() {
  return [
    'listen: 127.0.0.1:0',
    'workers: 1',
    'timeouts:',
    '  client_header: 10s',
    'limits:',
    '  max_body_bytes: 1MiB',
    'providers:',
    '  p-openai:',
    '    base_url: http://127.0.0.1:9/v1',
    '    format: openai',
    'models:',
    '  gpt-4o-mini: p-openai',
  ];
}

// [name, edit(lines) -> index of the offending line (0-based), reason pattern]
const BAD_CONFIGS = [
  ['an unknown top-level key', (l) => (l.splice(2, 0, 'colour: blue'), 2), /unknown setting 'colour'/],
  ['a port out of range', (l) => ((l[0] = 'listen: 127.0.0.1:99999'), 0), /'listen' must be HOST:PORT/],
  ['a listen without a port', (l) => ((l[0] = 'listen: 127.0.0.1'), 0), /'listen' must be HOST:PORT/],
  ['a model naming an unknown provider', (l) => (l.push('  gpt-x: nowhere'), l.length - 1),
    /no provider named 'nowhere'/],
  ['an unknown provider format', (l) => ((l[9] = '    format: soap'), 9),
    /format must be openai or anthropic/],
  ['an unknown key in a provider', (l) => (l.splice(10, 0, '    colour: red'), 10),
    /unknown key 'colour'/],
  ['a base_url that is not http(s)', (l) => ((l[8] = '    base_url: ftp://127.0.0.1/v1'), 8),
    /base_url must start with http/],
  ['a bad duration', (l) => ((l[3] = '  client_header: soon'), 3), /positive duration/],
  ['an unknown timeout', (l) => ((l[3] = '  client_patience: 10s'), 3), /unknown key 'client_patience'/],
  ['a bad size', (l) => ((l[5] = '  max_body_bytes: lots'), 5), /positive size/],
  ['zero workers', (l) => ((l[1] = 'workers: 0'), 1), /whole number from 1 to 256/],
  // a section's problem is reported at its first line
  ['tls with a cert but no key', (l) => (l.splice(2, 0, 'tls:', '  cert: /nonexistent.pem'), 3),
    /tls needs both/],
  // any key twice in one mapping, a model's name among them, names both lines
  ['a model defined twice', (l) => (l.push('  gpt-4o-mini: p-openai'), l.length - 1),
    /'gpt-4o-mini' is given twice in one mapping \(first on line \d+\)/],
  ['a provider with no base_url', (l) => (l.splice(8, 1), 8), /has no base_url/],
];

for (const [name, edit, reason] of BAD_CONFIGS) {
  test(`invalid config: ${name} -> exit 1 naming FILE:LINE`, async () => {
    const dir = tempDir();
    const lines = baseLines();
    const bad = edit(lines);
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const r = runGate(['serve', '--config', file]);
    assert.equal(r.status, 1, `exit status; stderr: ${r.stderr}`);
    const m = r.stderr.match(/^tokengate: invalid config: (.+?):(\d+): (.*)$/m);
    assert.ok(m, `no "invalid config: FILE:LINE: reason" in: ${r.stderr}`);
    assert.equal(m[1], file);
    assert.equal(Number(m[2]), bad + 1, `line number; stderr: ${r.stderr}`);
    assert.match(m[3], reason);
    assert.doesNotMatch(r.stderr, /listening/);
    // --check says the same
    const c = runGate(['serve', '--config', file, '--check']);
    assert.equal(c.status, 1);
    assert.match(c.stderr, new RegExp(`invalid config: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${bad + 1}: `));
  });
}

test('invalid config: YAML syntax errors name the file and a line', () => {
  const dir = tempDir();
  const file = path.join(dir, 'syntax.yaml');
  fs.writeFileSync(file, 'listen: 127.0.0.1:0\nproviders: { a: [1, 2\nmodels: {}\n');
  const r = runGate(['serve', '--config', file]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`invalid config: ${file.replace(/\./g, '\\.')}:\\d+: \\S`));
});

test('invalid config: a missing file', () => {
  const file = path.join(tempDir(), 'missing.yaml');
  const r = runGate(['serve', '--config', file]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /invalid config: .*missing\.yaml: cannot open/);
});

test('--check on a good config exits 0 and starts nothing', () => {
  const dir = tempDir();
  const file = path.join(dir, 'good.yaml');
  fs.writeFileSync(file, gateConfig({ requestLog: path.join(dir, 'log.jsonl'),
    ...mockProviders('http://127.0.0.1:9') }));
  const r = runGate(['serve', '--config', file, '--check']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /configuration is valid \(2 providers, 5 models\)/);
  assert.doesNotMatch(r.stderr, /listening/);
  assert.ok(!fs.existsSync(path.join(dir, 'log.jsonl')), '--check opened the request log');
  // the base config of the invalid-config cases is itself valid
  const base = path.join(dir, 'base.yaml');
  fs.writeFileSync(base, baseLines().join('\n') + '\n');
  assert.equal(runGate(['serve', '--config', base, '--check']).status, 0);
});
