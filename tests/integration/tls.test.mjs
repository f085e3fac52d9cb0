// TLS: to providers (verified against upstream.ca_file or the system store, by IP address) and
// on the gate's own listener. Certificates are made with the openssl command for each run.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, mockProviders, tempDir, httpRequest, RawClient, parseSSE,
  newId, wordCount, runGate, gateConfig, makeTestPKI,
} from './harness.mjs';

let dir, pki, mockGood, mockOtherName, gateCA, gateSystem, gateListener;

before(async () => {
  dir = tempDir('tg-tls-');
  pki = makeTestPKI(dir);
  mockGood = await startMock({ tlsCert: pki.cert, tlsKey: pki.key, ca: pki.caPem });
  mockOtherName = await startMock({ tlsCert: pki.otherCert, tlsKey: pki.otherKey, ca: pki.caPem,
    servername: 'other.example' });
  const base = mockProviders(mockGood.url);
  const providers = {
    ...base.providers,
    'other-name': { base_url: `${mockOtherName.url}/v1`, format: 'openai' },
  };
  const models = { ...base.models, 'other-gpt': 'other-name' };
  [gateCA, gateSystem, gateListener] = await Promise.all([
    startGate({ config: { upstream: { ca_file: pki.ca }, providers, models } }),
    startGate({ config: { providers, models } }),
    startGate({ config: { upstream: { ca_file: pki.ca }, tls: { cert: pki.cert, key: pki.key },
      providers, models } }),
  ]);
});

after(cleanup);

const chat = (extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'tls' }],
  ...extra });

test('the mock really speaks TLS with the test CA', async () => {
  const r = await mockGood.direct('/v1/models');
  assert.equal(r.status, 200);
  await assert.rejects(httpRequest(mockGood.port, '/v1/models'), 'plain HTTP to a TLS port fails');
});

test('an https provider verified with upstream.ca_file', async () => {
  const id = newId('tls');
  const r = await gateCA.post('/v1/chat/completions', chat(), { 'x-mock-tokens': '3', 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  assert.equal(wordCount(r.json.choices[0].message.content), 3);
  const up = await mockGood.last();
  assert.equal(up.headers['x-request-id'], id);
  assert.equal(up.headers.host, `127.0.0.1:${mockGood.port}`);

  const s = await gateCA.post('/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 10,
    stream: true, messages: [{ role: 'user', content: 'tls' }] }, { 'x-mock-tokens': '4' });
  assert.equal(s.status, 200, s.text);
  const events = parseSSE(s.text);
  assert.equal(events.at(-1).event, 'message_stop');
  assert.equal(wordCount(events.filter((e) => e.event === 'content_block_delta')
    .map((e) => e.json.delta.text).join('')), 4);
  const rec = await gateCA.logRecord(id);
  assert.equal(rec.status, 200);
  assert.ok(rec.usage);

  // kept-alive TLS connections are reused
  const s1 = (await gateCA.status()).json.upstream_connections_opened;
  for (let i = 0; i < 3; i++) assert.equal((await gateCA.post('/v1/chat/completions', chat())).status, 200);
  assert.equal((await gateCA.status()).json.upstream_connections_opened, s1);
});

test('without ca_file the system store does not trust the test CA -> 502', async () => {
  const id = newId('tls-untrusted');
  const r = await gateSystem.post('/v1/chat/completions', chat(), { 'x-request-id': id });
  assert.equal(r.status, 502, r.text);
  assert.equal(r.json.error.type, 'upstream_error');
  assert.match(r.json.error.message, /certificate verif/i);
  assert.match(r.json.error.message, /mock-openai/);
  const rec = await gateSystem.logRecord(id);
  assert.equal(rec.status, 502);
  assert.match(rec.error, /certificate verif/i);

  const a = await gateSystem.post('/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 5,
    messages: [{ role: 'user', content: 'x' }] });
  assert.equal(a.status, 502);
  assert.equal(a.json.error.type, 'api_error');
  assert.match(a.json.error.message, /certificate verif/i);
});

test('a certificate for another name -> 502', async () => {
  const before = (await mockOtherName.stats()).requests;
  const r = await gateCA.post('/v1/chat/completions', chat({ model: 'other-gpt' }));
  assert.equal(r.status, 502, r.text);
  assert.equal(r.json.error.type, 'upstream_error');
  assert.match(r.json.error.message, /certificate verif/i);
  assert.match(r.json.error.message, /other-name/);
  assert.equal((await mockOtherName.stats()).requests, before, 'the request was sent anyway');
});

test('listener TLS: https with the CA works', async () => {
  assert.equal(gateListener.scheme, 'https');
  const r = await httpRequest(gateListener.port, '/healthz', { tls: true, ca: pki.caPem });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ok' });
  const id = newId('tls-listener');
  const c = await httpRequest(gateListener.port, '/v1/chat/completions', {
    tls: true, ca: pki.caPem, method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-tokens': '2', 'x-request-id': id },
    body: JSON.stringify(chat({ stream: true })),
  });
  assert.equal(c.status, 200, c.text);
  assert.equal(parseSSE(c.text).at(-1).data, '[DONE]');
  assert.equal((await gateListener.logRecord(id)).status, 200);

  // keep-alive over TLS
  const rc = await RawClient.connect(gateListener.port, { tls: true, ca: pki.caPem });
  try {
    for (let i = 0; i < 2; i++) {
      await rc.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      assert.equal((await rc.readResponse()).status, 200);
    }
  } finally {
    rc.destroy();
  }
});

test('listener TLS: clients that do not speak TLS or do not trust it do not hurt the gate',
  async () => {
    const raw = await RawClient.connect(gateListener.port);
    await raw.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.ok(await raw.waitClosed(5000), 'plain HTTP on the TLS port was not closed');
    assert.ok(!raw.buf.toString('latin1').startsWith('HTTP/1.1 200'));
    raw.destroy();
    await assert.rejects(httpRequest(gateListener.port, '/healthz', { tls: true }),
      /self.signed|unable to (get|verify)|certificate/i);
    const r = await httpRequest(gateListener.port, '/healthz', { tls: true, ca: pki.caPem });
    assert.equal(r.status, 200);
  });

test('listener TLS with a key that does not match the certificate -> exit 1', () => {
  const file = path.join(dir, 'mismatch.yaml');
  fs.writeFileSync(file, gateConfig({ tls: { cert: pki.cert, key: pki.otherKey },
    ...mockProviders('http://127.0.0.1:9') }));
  const r = runGate(['serve', '--config', file]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /tls\.key/);
  assert.doesNotMatch(r.stderr, /listening/);
});

test('an unreadable upstream.ca_file -> exit 1', () => {
  const file = path.join(dir, 'noca.yaml');
  fs.writeFileSync(file, gateConfig({ upstream: { ca_file: path.join(dir, 'nonexistent.pem') },
    ...mockProviders('http://127.0.0.1:9') }));
  const r = runGate(['serve', '--config', file]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /ca_file/);
});
