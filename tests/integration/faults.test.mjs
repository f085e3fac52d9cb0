// Faults: provider errors, resets, hangs, slow and malformed streams, a provider that is down,
// client timeouts, clients that leave, and a client that stops reading a long stream.
// The gate runs with short timeouts so that each of them can be seen in a second or two.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  test, cleanup, startMock, startGate, mockProviders, RawClient, rawPost, parseSSE, newId,
  wordCount, closedPort, sleep, ms, readLogNow, queuedBytes, waitStable,
} from './harness.mjs';

const TIMEOUTS = {
  client_header: '1s',
  client_idle: '2s',
  client_body: '1s',
  upstream_connect: '2s',
  upstream_first_byte: '1s',
  stream_idle: '1s',
};

let mock, delayed, dripper, gate, deadPort;
let slowStream; // started in before(), checked by its test

const userMsg = (text) => [{ role: 'user', content: text }];
const chat = (extra = {}) => ({ model: 'gpt-4o-mini', messages: userMsg('fault test'), ...extra });
const msgs = (extra = {}) => ({ model: 'claude-haiku-4-5', max_tokens: 100,
  messages: userMsg('fault test'), ...extra });

before(async () => {
  mock = await startMock();
  delayed = await startMock({ delayMs: 1500 }); // each token waits longer than stream_idle
  dripper = await startMock(); // only for the slow-drip stream, which runs alongside the rest
  deadPort = await closedPort();
  const provider = (url, format) => ({ base_url: `${url}/v1`, format });
  gate = await startGate({
    config: {
      timeouts: TIMEOUTS,
      limits: { max_response_bytes: '256KiB' },
      providers: {
        'mock-openai': provider(mock.url, 'openai'),
        'mock-anthropic': provider(mock.url, 'anthropic'),
        'delayed-openai': provider(delayed.url, 'openai'),
        'delayed-anthropic': provider(delayed.url, 'anthropic'),
        'drip-openai': provider(dripper.url, 'openai'),
        'dead-openai': provider(`http://127.0.0.1:${deadPort}`, 'openai'),
        'dead-anthropic': provider(`http://127.0.0.1:${deadPort}`, 'anthropic'),
      },
      models: {
        'gpt-4o-mini': 'mock-openai',
        'text-embedding-3-small': 'mock-openai',
        'gpt-4.1*': 'mock-openai',
        'claude-haiku-4-5': 'mock-anthropic',
        'delayed-gpt': 'delayed-openai',
        'delayed-claude': 'delayed-anthropic',
        'drip-gpt': 'drip-openai',
        'dead-gpt': 'dead-openai',
        'dead-claude': 'dead-anthropic',
      },
    },
  });
  // The slow drip sends 16 bytes every 200 ms: the whole stream takes several times
  // stream_idle, but no gap is longer than it. It runs while the other tests do.
  const id = newId('drip');
  const t0 = Date.now();
  slowStream = gate
    .post('/v1/chat/completions', { ...chat({ model: 'drip-gpt', stream: true }) },
      { 'x-mock-fault': 'slow', 'x-mock-tokens': '2', 'x-request-id': id },
      { timeoutMs: ms(90000) })
    .then((r) => ({ r, id, elapsed: Date.now() - t0 }), (error) => ({ error }));
});

after(cleanup);

function openaiError(j, type) {
  assert.ok(j && j.error, `an OpenAI error body: ${JSON.stringify(j)}`);
  assert.equal(typeof j.error.message, 'string');
  assert.equal(j.error.type, type);
  assert.equal(j.error.param, null);
  assert.ok('code' in j.error);
}

function anthropicError(j, type) {
  assert.ok(j && j.type === 'error' && j.error, `an Anthropic error body: ${JSON.stringify(j)}`);
  assert.equal(typeof j.error.message, 'string');
  if (type) assert.equal(j.error.type, type);
}

test('a provider 500 is relayed as it is', async () => {
  const id = newId('f500');
  const r = await gate.post('/v1/chat/completions', chat(), { 'x-mock-fault': '500', 'x-request-id': id });
  assert.equal(r.status, 500);
  const direct = await mock.direct('/v1/chat/completions', { method: 'POST',
    headers: { 'x-mock-fault': '500' }, body: JSON.stringify(chat()) });
  assert.deepEqual(r.json, direct.json, "the provider's own error body");
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 500);
  assert.equal(rec.upstream_status, 500);
  assert.equal(rec.usage, null);

  const a = await gate.post('/v1/messages', msgs(), { 'x-mock-fault': '500' });
  assert.equal(a.status, 500);
  anthropicError(a.json, 'api_error');
});

test('a provider 429 is relayed with its retry-after', async () => {
  for (const body of [chat(), chat({ stream: true })]) {
    const id = newId('f429');
    const r = await gate.post('/v1/chat/completions', body, { 'x-mock-fault': '429', 'x-request-id': id });
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after'], '2');
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.equal(r.json.error.code, 'rate_limit_exceeded');
    const rec = await gate.logRecord(id);
    assert.equal(rec.status, 429);
    assert.equal(rec.upstream_status, 429);
  }
  const a = await gate.post('/v1/messages', msgs(), { 'x-mock-fault': '429' });
  assert.equal(a.status, 429);
  assert.equal(a.headers['retry-after'], '2');
  anthropicError(a.json, 'rate_limit_error');
});

test('any provider status is relayed (x-mock-status)', async () => {
  for (const status of [400, 401, 403, 404, 503, 529]) {
    const r = await gate.post('/v1/chat/completions', chat(), { 'x-mock-status': String(status) });
    assert.equal(r.status, status);
    assert.ok(r.json?.error, `${status}: the provider's error body`);
  }
});

test('a reset in the middle of a stream ends the stream with an error event', async () => {
  const id = newId('reset-stream');
  const r = await gate.post('/v1/chat/completions', chat({ stream: true }),
    { 'x-mock-fault': 'reset', 'x-mock-tokens': '20', 'x-request-id': id }, { timeoutMs: ms(10000) });
  assert.equal(r.status, 200);
  const events = parseSSE(r.text);
  const text = events.filter((e) => e.json?.choices).map((e) => e.json.choices[0]?.delta?.content ?? '')
    .join('');
  assert.ok(wordCount(text) > 0 && wordCount(text) < 20, `part of the stream came (${text})`);
  assert.ok(!events.some((e) => e.data === '[DONE]'), 'no [DONE] after a reset');
  const last = events.at(-1);
  openaiError(last.json, 'upstream_error');
  assert.match(last.json.error.message, /mock-openai/);
  // ended by the reset itself, not later by stream_idle
  assert.doesNotMatch(last.json.error.message, /sent nothing/);
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 200);
  assert.equal(rec.stream, true);
  assert.match(rec.error, /mock-openai/);

  const a = await gate.post('/v1/messages', msgs({ stream: true }),
    { 'x-mock-fault': 'reset', 'x-mock-tokens': '20' }, { timeoutMs: ms(10000) });
  assert.equal(a.status, 200);
  const aev = parseSSE(a.text);
  assert.ok(aev.some((e) => e.event === 'content_block_delta'));
  assert.ok(!aev.some((e) => e.event === 'message_stop'));
  assert.equal(aev.at(-1).event, 'error');
  anthropicError(aev.at(-1).json, 'api_error');
});

test('a reset before the answer -> 502 naming the provider, and no second try', async () => {
  const before = (await mock.stats()).by_path['/v1/chat/completions'] ?? 0;
  const id = newId('reset');
  const r = await gate.post('/v1/chat/completions', chat(), { 'x-mock-fault': 'reset', 'x-request-id': id });
  assert.equal(r.status, 502, r.text);
  openaiError(r.json, 'upstream_error');
  assert.match(r.json.error.message, /mock-openai/);
  const after = (await mock.stats()).by_path['/v1/chat/completions'];
  assert.equal(after - before, 1, 'a request the provider received was sent again');
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 502);
  assert.match(rec.error, /mock-openai/);

  const a = await gate.post('/v1/messages', msgs(), { 'x-mock-fault': 'reset' });
  assert.equal(a.status, 502);
  anthropicError(a.json, 'api_error');
  assert.match(a.json.error.message, /mock-anthropic/);
});

test('a provider that never answers -> 504 after upstream_first_byte', async () => {
  for (const body of [chat(), chat({ stream: true })]) {
    const id = newId('hang');
    const t0 = Date.now();
    const r = await gate.post('/v1/chat/completions', body, { 'x-mock-fault': 'hang', 'x-request-id': id },
      { timeoutMs: ms(10000) });
    const elapsed = Date.now() - t0;
    assert.equal(r.status, 504, r.text);
    assert.ok(elapsed >= 900, `answered after ${elapsed} ms, before the 1 s timeout`);
    assert.match(r.headers['content-type'], /^application\/json/);
    openaiError(r.json, 'upstream_error');
    // the timer that fired is upstream_first_byte (1 s), no other
    assert.match(r.json.error.message, /mock-openai.* no response within 1000 ms/);
    const rec = await gate.logRecord(id);
    assert.equal(rec.status, 504);
    assert.match(rec.error, /mock-openai/);
  }
  const a = await gate.post('/v1/messages', msgs(), { 'x-mock-fault': 'hang' }, { timeoutMs: ms(10000) });
  assert.equal(a.status, 504);
  anthropicError(a.json);
});

test('a stream that stalls longer than stream_idle ends with an error event', async () => {
  const id = newId('stall');
  const t0 = Date.now();
  const r = await gate.post('/v1/chat/completions', chat({ model: 'delayed-gpt', stream: true }),
    { 'x-mock-tokens': '3', 'x-request-id': id }, { timeoutMs: ms(10000) });
  const elapsed = Date.now() - t0;
  assert.equal(r.status, 200);
  assert.ok(elapsed >= 900, `ended after ${elapsed} ms, before stream_idle`);
  const events = parseSSE(r.text);
  assert.ok(events[0].json?.choices, 'the stream had started');
  const last = events.at(-1);
  openaiError(last.json, 'upstream_error');
  assert.match(last.json.error.message, /delayed-openai.* sent nothing for 1000 ms/);
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 200);
  assert.match(rec.error, /delayed-openai/);

  const a = await gate.post('/v1/messages', msgs({ model: 'delayed-claude', stream: true }),
    { 'x-mock-tokens': '3' }, { timeoutMs: ms(10000) });
  assert.equal(a.status, 200);
  const aev = parseSSE(a.text);
  assert.equal(aev[0].event, 'message_start');
  assert.equal(aev.at(-1).event, 'error');
  anthropicError(aev.at(-1).json);
  assert.match(aev.at(-1).json.error.message, /delayed-anthropic/);
});

test('a body that stalls longer than stream_idle: 504, or in a stream an error event; a shorter stall is not cut', async () => {
  // x-mock-stall-ms: the mock sends the head at once and the body that much later
  const id = newId('stall-json');
  const r = await gate.post('/v1/chat/completions', chat(),
    { 'x-mock-tokens': '3', 'x-mock-stall-ms': '2500', 'x-request-id': id }, { timeoutMs: ms(10000) });
  assert.equal(r.status, 504, r.text);
  openaiError(r.json, 'upstream_error');
  assert.match(r.json.error.message, /mock-openai.*sent nothing for 1000 ms/);
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 504);
  assert.match(rec.error, /sent nothing/);

  const a = await gate.post('/v1/messages', msgs(), { 'x-mock-stall-ms': '2500' }, { timeoutMs: ms(10000) });
  assert.equal(a.status, 504, a.text);
  anthropicError(a.json);

  // a stream whose head came and whose first event does not: the error as an event
  const sid = newId('stall-sse');
  const s = await gate.post('/v1/chat/completions', chat({ stream: true }),
    { 'x-mock-stall-ms': '2500', 'x-request-id': sid }, { timeoutMs: ms(10000) });
  assert.equal(s.status, 200, s.text);
  const sev = parseSSE(s.text);
  openaiError(sev.at(-1).json, 'upstream_error');
  assert.match(sev.at(-1).json.error.message, /mock-openai.*sent nothing for 1000 ms/);
  assert.match((await gate.logRecord(sid)).error, /sent nothing/);
  const as = await gate.post('/v1/messages', msgs({ stream: true }), { 'x-mock-stall-ms': '2500' },
    { timeoutMs: ms(10000) });
  assert.equal(as.status, 200, as.text);
  assert.equal(parseSSE(as.text).at(-1).event, 'error');
  anthropicError(parseSSE(as.text).at(-1).json);

  const ok = await gate.post('/v1/chat/completions', chat(), { 'x-mock-tokens': '3', 'x-mock-stall-ms': '200' });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.usage.completion_tokens, 3);
});

test('a slow drip stream longer than stream_idle completes', async () => {
  const { r, id, elapsed, error } = await slowStream;
  if (error) throw error;
  assert.equal(r.status, 200, r.text);
  assert.ok(elapsed > 2000, `the drip took ${elapsed} ms, more than stream_idle`);
  const events = parseSSE(r.text);
  assert.equal(events.at(-1).data, '[DONE]');
  assert.ok(!events.some((e) => e.json?.error), 'an error event in the slow stream');
  const text = events.filter((e) => e.json?.choices).map((e) => e.json.choices[0]?.delta?.content ?? '')
    .join('');
  assert.equal(wordCount(text), 2);
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 200);
  assert.equal(rec.error, undefined);
  assert.equal(rec.usage?.output, 2);
});

test('a malformed event is relayed, the stream goes on and usage is still recorded', async () => {
  const id = newId('malformed');
  const r = await gate.post('/v1/chat/completions', chat({ stream: true }),
    { 'x-mock-fault': 'malformed', 'x-mock-tokens': '4', 'x-request-id': id });
  assert.equal(r.status, 200);
  const events = parseSSE(r.text);
  assert.ok(events.some((e) => e.json === undefined && e.data !== '[DONE]'),
    'the malformed event reached the client');
  assert.equal(events.at(-1).data, '[DONE]');
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 200);
  assert.equal(rec.usage?.output, 4);
  assert.ok(rec.usage.input > 0);

  const aid = newId('malformed-anth');
  const a = await gate.post('/v1/messages', msgs({ stream: true }),
    { 'x-mock-fault': 'malformed', 'x-mock-tokens': '4', 'x-request-id': aid });
  assert.equal(a.status, 200);
  assert.equal(parseSSE(a.text).at(-1).event, 'message_stop');
  assert.equal((await gate.logRecord(aid)).usage?.output, 4);

  // a non-stream body cut in half is relayed; there is no usage to read from it
  const nid = newId('malformed-body');
  const n = await gate.post('/v1/chat/completions', chat(), { 'x-mock-fault': 'malformed', 'x-request-id': nid });
  assert.equal(n.status, 200);
  assert.equal(n.json, undefined, 'the body is the broken JSON the provider sent');
  assert.ok(n.text.length > 0);
  assert.equal((await gate.logRecord(nid)).usage, null);
  assert.equal((await gate.request('/healthz')).status, 200);
});

test('no usage from the provider -> usage null in the log', async () => {
  const id1 = newId('nousage');
  const r = await gate.post('/v1/chat/completions', chat(), { 'x-mock-fault': 'no-usage', 'x-request-id': id1 });
  assert.equal(r.status, 200);
  assert.equal(r.json.usage, undefined);
  assert.equal((await gate.logRecord(id1)).usage, null);

  const id2 = newId('nousage-stream');
  const s = await gate.post('/v1/chat/completions', chat({ stream: true }),
    { 'x-mock-fault': 'no-usage', 'x-request-id': id2 });
  assert.equal(s.status, 200);
  assert.equal(parseSSE(s.text).at(-1).data, '[DONE]');
  assert.equal((await gate.logRecord(id2)).usage, null);

  const id3 = newId('nousage-anth');
  const a = await gate.post('/v1/messages', msgs(), { 'x-mock-fault': 'no-usage', 'x-request-id': id3 });
  assert.equal(a.status, 200);
  assert.equal((await gate.logRecord(id3)).usage, null);
});

test('an answer over max_response_bytes -> 502', async () => {
  const id = newId('toolarge');
  const r = await gate.post('/v1/chat/completions', chat(), { 'x-mock-tokens': '100000', 'x-request-id': id },
    { timeoutMs: ms(20000) });
  assert.equal(r.status, 502, r.text.slice(0, 300));
  openaiError(r.json, 'upstream_error');
  assert.match(r.json.error.message, /larger than/);
  // a stream of the same size is not limited
  const s = await gate.post('/v1/chat/completions', chat({ stream: true }), { 'x-mock-tokens': '3000' },
    { timeoutMs: ms(20000) });
  assert.equal(s.status, 200);
  assert.ok(s.text.length > 256 * 1024);
  assert.equal(parseSSE(s.text).at(-1).data, '[DONE]');
});

test('a provider nobody listens for -> 502 naming the provider', async () => {
  for (const body of [chat({ model: 'dead-gpt' }), chat({ model: 'dead-gpt', stream: true })]) {
    const id = newId('dead');
    const r = await gate.post('/v1/chat/completions', body, { 'x-request-id': id });
    assert.equal(r.status, 502, r.text);
    // refused at once, not given up at upstream_connect (2 s)
    assert.doesNotMatch(r.json.error.message, /timed out/);
    openaiError(r.json, 'upstream_error');
    assert.match(r.json.error.message, /dead-openai/);
    assert.match(r.json.error.message, new RegExp(`127\\.0\\.0\\.1:${deadPort}`));
    const rec = await gate.logRecord(id);
    assert.equal(rec.status, 502);
    assert.equal(rec.provider, 'dead-openai');
    assert.match(rec.error, /dead-openai/);
  }
  const a = await gate.post('/v1/messages', msgs({ model: 'dead-claude' }));
  assert.equal(a.status, 502);
  anthropicError(a.json, 'api_error');
  assert.match(a.json.error.message, /dead-anthropic/);
});

test('request headers that do not arrive in time -> 408 and close', async () => {
  const c = await RawClient.connect(gate.port);
  try {
    const t0 = Date.now();
    await c.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: yes\r\n');
    const r = await c.readResponse({ timeoutMs: ms(15000) });
    const elapsed = Date.now() - t0;
    assert.equal(r.status, 408);
    assert.match(r.headers['x-request-id'] ?? '', /^[A-Za-z0-9._:-]{1,64}$/);
    assert.ok(elapsed >= 900, `408 after ${elapsed} ms, before client_header`);
    openaiError(JSON.parse(r.body), 'invalid_request_error');
    assert.equal(r.headers.connection, 'close');
    assert.ok(await c.waitClosed(ms(3000)), 'the connection was not closed');
  } finally {
    c.destroy();
  }
});

test('a request body that does not arrive in time -> 408 and close', async () => {
  const c = await RawClient.connect(gate.port);
  try {
    const t0 = Date.now();
    await c.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
      'content-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":');
    const r = await c.readResponse({ timeoutMs: ms(15000) });
    const elapsed = Date.now() - t0;
    assert.equal(r.status, 408);
    assert.ok(elapsed >= 900, `408 after ${elapsed} ms, before the timeout`);
    assert.ok(await c.waitClosed(ms(3000)));
  } finally {
    c.destroy();
  }
});

test('an idle connection is closed silently after client_idle', async () => {
  // nothing ever sent
  const c1 = await RawClient.connect(gate.port);
  // one request, then quiet
  const c2 = await RawClient.connect(gate.port);
  try {
    const t0 = Date.now();
    await c2.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.equal((await c2.readResponse()).status, 200);
    const got = c2.received;
    assert.ok(await c1.waitClosed(ms(15000)), 'the silent connection was not closed');
    assert.ok(await c2.waitClosed(ms(15000)), 'the idle keep-alive connection was not closed');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 1500, `closed after ${elapsed} ms, before client_idle`);
    assert.equal(c1.received, 0, 'a silent connection got bytes');
    assert.equal(c2.received, got, 'an idle close sent bytes');
  } finally {
    c1.destroy();
    c2.destroy();
  }
});

async function openConnections() {
  return (await gate.status()).json.connections_open;
}

/** Waits until at most n connections are open (the /status request itself included). */
async function waitConnections(n) {
  const deadline = Date.now() + ms(15000);
  let open;
  while ((open = await openConnections()) > n && Date.now() < deadline) await sleep(50);
  return open;
}

test('a client that leaves mid-stream is logged and the gate keeps serving', async () => {
  // the slow drip may still be running: it holds one connection
  const base = await openConnections();
  const id = newId('leave-stream');
  const c = await RawClient.connect(gate.port);
  await c.write(rawPost('/v1/chat/completions', chat({ model: 'delayed-gpt', stream: true }),
    { 'x-mock-tokens': '5', 'x-request-id': id }));
  // the first chunk comes at once; the next would take 1.5 s
  await c.until(() => c.buf.includes('"role":"assistant"'), ms(5000), 'the first chunk');
  c.destroy();
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 200);
  assert.equal(rec.stream, true);
  assert.equal(rec.error, 'the client closed the connection');
  assert.ok(rec.latency_us < 1000 * 1000 * ms(1), `logged after ${rec.latency_us} us`);

  assert.ok(await waitConnections(base) <= base, 'the connection was not released');
  assert.equal((await gate.request('/healthz')).status, 200);
  assert.equal((await gate.post('/v1/chat/completions', chat())).status, 200);
});

// A stream: the gate stops it at once. (A non-stream answer is read to its end for its usage:
// see settlement.test.mjs.)
test('a client that leaves a stream before the answer is logged as 499', async () => {
  const base = await openConnections();
  const id = newId('leave-early');
  const c = await RawClient.connect(gate.port);
  await c.write(rawPost('/v1/chat/completions', chat({ stream: true }),
    { 'x-mock-fault': 'hang', 'x-request-id': id }));
  await sleep(300);
  c.destroy();
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 499);
  assert.equal(rec.error, 'the client closed the connection');
  assert.ok(await waitConnections(base) <= base, 'the connection was not released');
  assert.equal((await gate.post('/v1/chat/completions', chat())).status, 200);
});

test('backpressure: a client that stops reading does not make the gate buffer the stream',
  { timeout: ms(120000) }, async (t) => {
    // A gate of its own with the default timeouts: a sanitized mock takes seconds to start a
    // stream this long. A long model name (a wildcard entry) makes every chunk about 600 bytes:
    // 100000 tokens are some 60 MB, far more than the kernel's socket buffers and than the RSS
    // bound below.
    // Under AddressSanitizer freed memory sits in a quarantine (256 MB by default) and counts in
    // the RSS: a small one keeps the measure about live buffers.
    const asan = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=4'].filter(Boolean).join(':');
    const big = await startGate({ config: { ...mockProviders(mock.url) },
      env: { ASAN_OPTIONS: asan } });
    const model = 'gpt-4.1-' + 'x'.repeat(400);
    const body = { model, messages: userMsg('long'), stream: true };
    const warm = await big.post('/v1/chat/completions', body, { 'x-mock-tokens': '2000' });
    assert.equal(warm.status, 200);
    const rss0 = big.rssKiB();

    const id = newId('backpressure');
    const sock = net.connect({ host: '127.0.0.1', port: big.port });
    let timer;
    try {
      await new Promise((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
      sock.pause();
      sock.write(Buffer.from(rawPost('/v1/chat/completions', body,
        { 'x-mock-tokens': '100000', 'x-request-id': id }), 'latin1'));

      // The provider is made to wait: the bytes the mock has written to its socket stop
      // growing, far short of the stream's 60 MB.
      const written = async () => (await mock.usageOf(id))?.bytes ?? 0;
      const stalled = await waitStable(written, 'the bytes the mock wrote');
      assert.ok(stalled > 0 && stalled < 16 * 1024 * 1024,
        `the mock wrote ${stalled} bytes with the client paused`);
      // What the gate holds is what the mock wrote less what waits in the kernel's socket
      // queues (mock to gate, gate to client): about the documented 256 KiB watermark (the
      // output past it, plus a read or two), not megabytes.
      const queued = queuedBytes(mock.port) + queuedBytes(big.port);
      const held = stalled - queued;
      const rss1 = big.rssKiB();
      t.diagnostic(`the mock wrote ${stalled} bytes, ${queued} wait in socket queues: the gate ` +
        `holds ${held}; gate RSS ${rss0} KiB before, ${rss1} KiB while the client paused`);
      assert.ok(held >= 192 * 1024 && held <= 1024 * 1024,
        `the gate holds ${held} bytes of the stream while its client reads nothing`);
      assert.ok((rss1 - rss0) / 1024 < 32, `the gate grew by ${(rss1 - rss0) / 1024} MiB`);

      // now read it all
      let total = 0;
      let deltas = 0;
      let head = '';
      let tail = Buffer.alloc(0);
      const needle = Buffer.from('"delta":{"content":"');
      const done = new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`stream not finished: ${total} bytes`)),
          ms(60000));
        sock.on('data', (d) => {
          if (total === 0) head = d.subarray(0, 200).toString('latin1');
          total += d.length;
          // count deltas across reads: keep the last bytes of the previous one
          const buf = Buffer.concat([tail, d]);
          let i = 0;
          while ((i = buf.indexOf(needle, i)) >= 0) {
            if (i + needle.length > tail.length) deltas++;
            i += needle.length;
          }
          tail = buf.subarray(Math.max(0, buf.length - 64));
          if (tail.toString('latin1').endsWith('data: [DONE]\n\n\r\n0\r\n\r\n')) resolve();
        });
        sock.on('error', reject);
        sock.on('end', () => reject(new Error(
          `the gate closed the stream after ${total} bytes: ${JSON.stringify(head)}`)));
      });
      sock.resume();
      await done;
      // reading resumed: the mock wrote the rest
      const u = await mock.usageOf(id);
      assert.ok(u.complete && u.bytes > stalled + 16 * 1024 * 1024, JSON.stringify(u));
      assert.match(head, /^HTTP\/1\.1 200 /);
      assert.ok(total > 50 * 1024 * 1024, `only ${total} bytes: the test needs a longer stream`);
      assert.equal(deltas, 100000);
      const rec = await big.logRecord(id);
      assert.equal(rec.status, 200);
      assert.equal(rec.error, undefined);
      assert.equal(rec.usage?.output, 100000);
      assert.ok(rec.bytes_out >= total - 1024, `bytes_out ${rec.bytes_out} for ${total} sent`);
    } finally {
      clearTimeout(timer);
      sock.destroy();
    }
  });

test('SIGTERM lets a stream under way finish, closes idle connections and exits 0', async () => {
  const paced = await startMock({ delayMs: 100 }); // 10 tokens: about a second
  const g = await startGate({ config: { ...mockProviders(paced.url) } });
  const idle = await RawClient.connect(g.port);
  await idle.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  assert.equal((await idle.readResponse()).status, 200);

  const id = newId('drain');
  const c = await RawClient.connect(g.port);
  try {
    await c.write(rawPost('/v1/chat/completions', chat({ stream: true }),
      { 'x-mock-tokens': '10', 'x-request-id': id }));
    await c.until(() => c.buf.includes('"role":"assistant"'), ms(5000), 'the first chunk');
    const t0 = Date.now();
    g.proc.child.kill('SIGTERM');
    const r = await c.readResponse({ timeoutMs: ms(10000) });
    assert.equal(r.status, 200);
    const events = parseSSE(r.body);
    assert.equal(events.at(-1).data, '[DONE]', 'the stream was cut by the stop');
    assert.equal(wordCount(events.filter((e) => e.json?.choices)
      .map((e) => e.json.choices[0]?.delta?.content ?? '').join('')), 10);
    assert.ok(await idle.waitClosed(ms(3000)), 'the idle connection was kept open');
    const exit = await g.proc.waitExit(ms(10000));
    assert.deepEqual(exit, { code: 0, signal: null });
    // the gate left when its last stream ended, not at the drain deadline (10 s after SIGTERM)
    assert.ok(Date.now() - t0 < 9500, 'the gate waited for the drain deadline');
    assert.match(g.proc.stderr, /SIGTERM received/);
    const rec = readLogNow(g.logPath).find((x) => x.id === id);
    assert.ok(rec, 'the request was logged before the exit');
    assert.equal(rec.status, 200);
    assert.equal(rec.usage?.output, 10);
  } finally {
    c.destroy();
    idle.destroy();
  }
});
