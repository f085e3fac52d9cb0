// Resources and operations under hostile input (issue 10): bodies that would cost quadratic
// time or unbounded memory, and signals an operator sends.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import {
  test, cleanup, startMock, startGate, mockProviders, RawClient, rawPost, parseSSE, newId,
  wordCount, ms, readLogNow,
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
