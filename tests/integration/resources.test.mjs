// Resources and operations under hostile input (issue 10): bodies that would cost quadratic
// time or unbounded memory, and signals an operator sends.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, gateConfig, mockProviders, RawClient, rawPost, parseSSE,
  newId, wordCount, ms, readLogNow, tempDir, gateAdminPort, adminRequest,
} from './harness.mjs';

after(cleanup);

const userMsg = (text) => [{ role: 'user', content: text }];
const chat = (extra = {}) => ({ model: 'gpt-4o-mini', messages: userMsg('resource test'), ...extra });

test('SIGHUP during streams under way: every stream completes, the gate logs it and stays up',
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
      await g.proc.waitFor('stderr', /SIGHUP received and ignored: configuration reload is not supported yet/,
        ms(5000), 'the SIGHUP line');
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
      const recs = readLogNow(g.logPath);
      for (const id of ids)
        assert.equal(recs.find((x) => x.id === id)?.status, 200, `request ${id} not logged as 200`);
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
