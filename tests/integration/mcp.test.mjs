// The MCP proxy (issue 13, "Tool results"): /mcp/{server} in front of a small MCP server
// written for the tests (tests/mcp-server.mjs). The agents call with their gate keys; the server
// gets the gate's own credential and never the agent's; tools/call results of allowlisted tools
// and tools/list are cached (the server's counters show what was forwarded); a team's allowlist
// hides tools; SSE answers are relayed; sessions belong to the key that opened them; nothing is
// billed; /metrics and the request log count calls and hits per tool and agent.

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  test, cleanup, startGate, gateAdminPort, adminRequest, httpRequest, tempDir, sleep, ms,
  parseSSE, readLogNow, waitLogRecord, newId, closedPort,
} from './harness.mjs';
import { startMcpServer } from '../mcp-server.mjs';

const ADMIN_TOKEN = 'mcp-test-admin-0123456789';
const SERVER_TOKEN = 'mcp-server-credential-5f2a9c';
const KEYS = {
  crawler: 'tg-mcp-crawler-key',
  crawler2: 'tg-mcp-crawler-second-key', // a second key of the same agent
  indexer: 'tg-mcp-indexer-key',         // another agent of the same team
  helper: 'tg-mcp-helper-key',           // team support: sees some tools only
  writer: 'tg-mcp-writer-key',           // team shared, whose policy's cache scope is the team
  editor: 'tg-mcp-editor-key',
};
const ENV = { TG_MCP_ADMIN: ADMIN_TOKEN, TG_MCP_DOCS_KEY: SERVER_TOKEN,
  TG_MCP_WRONG_KEY: 'not-the-server-credential' };

let mcp, gate, dir, downPort;

function config(url, { reloaded = false } = {}) {
  const q = JSON.stringify;
  fs.mkdirSync(path.join(dir, 'state'), { recursive: true });
  return [
    'listen: 127.0.0.1:0',
    'workers: 2',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'providers:',
    "  o: { base_url: 'http://127.0.0.1:9/v1' }",
    'models:',
    '  gpt-4o-mini: o',
    'org: acme',
    'departments:',
    '  research:',
    '    teams:',
    '      search: { agents: [crawler, indexer] }',
    '      support: { agents: [helper] }',
    '      shared: { policy: teamscope, agents: [writer, editor] }',
    'keys:',
    `  ${KEYS.crawler}: crawler`,
    `  ${KEYS.crawler2}: crawler`,
    `  ${KEYS.indexer}: indexer`,
    `  ${KEYS.helper}: helper`,
    `  ${KEYS.writer}: writer`,
    `  ${KEYS.editor}: editor`,
    'policies:',
    '  teamscope: { cache: { scope: team } }',
    'ledger:',
    `  path: ${q(path.join(dir, 'state', 'ledger.db'))}`,
    'admin: { listen: 127.0.0.1:0, token_env: TG_MCP_ADMIN }',
    'mcp:',
    '  servers:',
    '    docs:',
    `      url: ${q(url)}`,
    '      api_key_env: TG_MCP_DOCS_KEY',
    '      list_ttl: 1m',
    '      tools:',
    '        search_docs: 10m',
    '        slow_stream: 10m',
    '        flash: 1s',
    '        broken: 10m',
    '      teams:',
    reloaded ? '        support: [get_time]' : '        support: [search_docs, get_time, slow_stream]',
    ...(reloaded ? ['    docs2:', `      url: ${q(url)}`, '      api_key_env: TG_MCP_DOCS_KEY'] : []),
    '    down:',
    `      url: ${q(`http://127.0.0.1:${downPort}/mcp`)}`,
    '    wrongkey:',
    `      url: ${q(url)}`,
    '      api_key_env: TG_MCP_WRONG_KEY',
  ].join('\n') + '\n';
}

before(async () => {
  dir = tempDir();
  mcp = await startMcpServer({ token: SERVER_TOKEN });
  downPort = await closedPort();
  gate = await startGate({ configText: config(mcp.url), dir, env: ENV });
  gate.admin = await gateAdminPort(gate);
});

after(async () => {
  await mcp?.close();
  await cleanup();
});

let rpcId = 0;

/** Fails when an answer shows the server's credential to the agent. */
function noCredential(r) {
  assert.ok(!r.text.includes(SERVER_TOKEN) && !JSON.stringify(r.headers).includes(SERVER_TOKEN),
    'an answer showed the MCP server\'s credential');
  return r;
}

/** POSTs one JSON-RPC message (or a raw string) to /mcp/{server} with key. */
async function post(key, msg, { server = 'docs', session, accept, id, headers = {} } = {}) {
  const h = {
    'content-type': 'application/json',
    accept: accept ?? 'application/json, text/event-stream',
    'x-request-id': id ?? newId('mcp'),
    ...headers,
  };
  if (key) h.authorization = `Bearer ${key}`;
  if (session) h['mcp-session-id'] = session;
  return noCredential(await httpRequest(gate.port, `/mcp/${server}`, {
    method: 'POST', headers: h, body: typeof msg === 'string' ? msg : JSON.stringify(msg),
  }));
}

const call = (name, args) => ({ jsonrpc: '2.0', id: ++rpcId, method: 'tools/call',
  params: { name, arguments: args } });
const list = () => ({ jsonrpc: '2.0', id: ++rpcId, method: 'tools/list', params: {} });

/** initialize + notifications/initialized: the session id the gate passed on. */
async function openSession(key) {
  const r = await post(key, { jsonrpc: '2.0', id: ++rpcId, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {},
      clientInfo: { name: 'mcp-test', version: '1' } } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.result.serverInfo.name, 'tokengate-test-mcp');
  const sid = r.headers['mcp-session-id'];
  assert.ok(sid, 'the server issued a session id, and the gate relayed it');
  const n = await post(key, { jsonrpc: '2.0', method: 'notifications/initialized' },
    { session: sid });
  assert.equal(n.status, 202, n.text);
  return sid;
}

/** Sends a head with Expect: 100-continue and no body yet: what the gate answers first. */
function expectContinue(key) {
  return new Promise((resolve, reject) => {
    const s = net.connect(gate.port, '127.0.0.1', () => {
      s.write(`POST /mcp/docs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\n` +
        'content-type: application/json\r\ncontent-length: 40\r\nexpect: 100-continue\r\n\r\n');
    });
    let text = '';
    s.on('data', (d) => {
      text += d;
      if (/\r\n\r\n/.test(text)) {
        s.destroy();
        resolve(text);
      }
    });
    s.on('error', reject);
  });
}

/** A POST with two Mcp-Session-Id headers, over a raw socket: the answer's text. */
function rawTwoSessions(key, first, second) {
  const body = JSON.stringify(call('get_time', {}));
  return new Promise((resolve, reject) => {
    const s = net.connect(gate.port, '127.0.0.1', () => {
      s.write(`POST /mcp/docs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\n` +
        `content-type: application/json\r\naccept: application/json\r\n` +
        `mcp-session-id: ${first}\r\nmcp-session-id: ${second}\r\nconnection: close\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    let text = '';
    s.on('data', (d) => { text += d; });
    s.on('end', () => resolve(text));
    s.on('error', reject);
  });
}

const calls = (tool) => mcp.stats.calls[tool] || 0;
const textOf = (r) => r.json.result.content[0].text;

test('initialize, tools/list cached once for two lists, and the server gets the gate\'s credential, never the agent\'s', async () => {
  const sid = await openSession(KEYS.crawler);
  const before = mcp.stats.lists;
  const a = await post(KEYS.crawler, list(), { session: sid });
  assert.equal(a.status, 200, a.text);
  assert.deepEqual(a.json.result.tools.map((t) => t.name),
    ['search_docs', 'get_time', 'slow_stream', 'flash', 'admin_reset', 'broken']);
  assert.equal(a.headers['x-tokengate-cache'], 'miss');
  const idB = ++rpcId;
  const b = await post(KEYS.crawler, { jsonrpc: '2.0', id: idB, method: 'tools/list' },
    { session: sid });
  assert.equal(b.status, 200, b.text);
  assert.equal(b.headers['x-tokengate-cache'], 'hit');
  assert.equal(b.json.id, idB, 'the cached answer carries the client\'s own id');
  assert.deepEqual(b.json.result, a.json.result);
  assert.equal(mcp.stats.lists - before, 1, 'the server saw one tools/list for two');

  // every request the server saw carried the server's token, never a gate key
  assert.ok(mcp.stats.requests.length > 0);
  for (const r of mcp.stats.requests) {
    assert.equal(r.headers.authorization, `Bearer ${SERVER_TOKEN}`);
    for (const v of Object.values(r.headers))
      for (const k of Object.values(KEYS)) assert.ok(!String(v).includes(k), `${k} reached the server`);
  }
  const ping = await post(KEYS.crawler, { jsonrpc: '2.0', id: ++rpcId, method: 'ping' },
    { session: sid });
  assert.equal(ping.status, 200);
  assert.deepEqual(ping.json.result, {});
  assert.equal(ping.headers['x-tokengate-cache'], undefined, 'ping is not the cache\'s');

  // the gate keeps its connections to the server alive (one pool per worker: 2 workers)
  const c0 = mcp.stats.connections;
  for (let i = 0; i < 10; i++)
    assert.equal((await post(KEYS.crawler, { jsonrpc: '2.0', id: ++rpcId, method: 'ping' },
      { session: sid })).status, 200);
  assert.ok(mcp.stats.connections - c0 <= 2,
    `10 requests opened ${mcp.stats.connections - c0} connections to the server`);
});

test('a cacheable tool: miss, then hit (the server not called), other arguments miss; an uncacheable tool always forwarded; a tool error never cached', async () => {
  const sid = await openSession(KEYS.crawler);
  const n0 = calls('search_docs');
  const a = await post(KEYS.crawler, call('search_docs', { query: 'pricing', limit: 3 }),
    { session: sid });
  assert.equal(a.status, 200, a.text);
  assert.equal(a.headers['x-tokengate-cache'], 'miss');
  assert.equal(calls('search_docs'), n0 + 1);
  // the same arguments in another order and spacing: the same entry
  const b = await post(KEYS.crawler,
    `{"jsonrpc":"2.0","id":${++rpcId},"method":"tools/call","params":{"arguments":{ "limit":3, "query":"pricing"},"name":"search_docs"}}`,
    { session: sid });
  assert.equal(b.status, 200, b.text);
  assert.equal(b.headers['x-tokengate-cache'], 'hit');
  assert.equal(b.json.id, rpcId);
  assert.equal(textOf(b), textOf(a));
  assert.equal(calls('search_docs'), n0 + 1, 'a hit is not forwarded');
  const c = await post(KEYS.crawler, call('search_docs', { query: 'refunds', limit: 3 }),
    { session: sid });
  assert.equal(c.headers['x-tokengate-cache'], 'miss');
  assert.equal(calls('search_docs'), n0 + 2);
  // no arguments at all is the same call as {}
  const e1 = await post(KEYS.crawler, call('search_docs', {}), { session: sid });
  const e2 = await post(KEYS.crawler, { jsonrpc: '2.0', id: ++rpcId, method: 'tools/call',
    params: { name: 'search_docs' } }, { session: sid });
  assert.equal(e2.headers['x-tokengate-cache'], 'hit');
  assert.equal(textOf(e2), textOf(e1));

  const t0 = calls('get_time');
  for (let i = 0; i < 3; i++) {
    const r = await post(KEYS.crawler, call('get_time', {}), { session: sid });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-tokengate-cache'], 'bypass');
  }
  assert.equal(calls('get_time'), t0 + 3, 'a tool off the allowlist is always forwarded');

  const e0 = calls('broken');
  for (let i = 0; i < 2; i++) {
    const r = await post(KEYS.crawler, call('broken', {}), { session: sid });
    assert.equal(r.json.result.isError, true);
    assert.equal(r.headers['x-tokengate-cache'], 'miss');
  }
  assert.equal(calls('broken'), e0 + 2, 'a tool\'s error is not cached');
});

test('expiry: an entry past its tool\'s TTL is fetched again', async () => {
  const sid = await openSession(KEYS.crawler);
  const f0 = calls('flash');
  const t0 = Date.now(); // the entry is stored after this, so it lives at least until t0 + 1 s
  assert.equal((await post(KEYS.crawler, call('flash', {}), { session: sid }))
    .headers['x-tokengate-cache'], 'miss');
  const again = await post(KEYS.crawler, call('flash', {}), { session: sid });
  if (Date.now() - t0 < 1000) { // else a loaded machine took longer than the TTL: no claim
    assert.equal(again.headers['x-tokengate-cache'], 'hit');
    assert.equal(calls('flash'), f0 + 1);
  }
  await sleep(1300); // flash: 1s
  const r = await post(KEYS.crawler, call('flash', {}), { session: sid });
  assert.equal(r.headers['x-tokengate-cache'], 'miss');
  assert.equal(calls('flash'), f0 + (again.headers['x-tokengate-cache'] === 'hit' ? 2 : 3));
});

test('two agents of one team never share a cached result (agent scope); two keys of one agent do', async () => {
  const args = { query: `scoped-${Date.now()}` };
  const s1 = await openSession(KEYS.crawler);
  const s2 = await openSession(KEYS.indexer);
  const s3 = await openSession(KEYS.crawler2);
  const n0 = calls('search_docs');
  const a = await post(KEYS.crawler, call('search_docs', args), { session: s1 });
  assert.equal(a.headers['x-tokengate-cache'], 'miss');
  const b = await post(KEYS.indexer, call('search_docs', args), { session: s2 });
  assert.equal(b.headers['x-tokengate-cache'], 'miss', 'another agent missed');
  assert.notEqual(textOf(b), textOf(a));
  assert.equal(calls('search_docs'), n0 + 2);
  const c = await post(KEYS.crawler2, call('search_docs', args), { session: s3 });
  assert.equal(c.headers['x-tokengate-cache'], 'hit', 'the same agent, another key');
  assert.equal(textOf(c), textOf(a));
  assert.equal(calls('search_docs'), n0 + 2);
});

test('a policy with cache scope team: its agents share results, other teams do not', async () => {
  const args = { query: `team-${Date.now()}` };
  const sw = await openSession(KEYS.writer);
  const se = await openSession(KEYS.editor);
  const sc = await openSession(KEYS.crawler);
  const n0 = calls('search_docs');
  const a = await post(KEYS.writer, call('search_docs', args), { session: sw });
  assert.equal(a.headers['x-tokengate-cache'], 'miss');
  const b = await post(KEYS.editor, call('search_docs', args), { session: se });
  assert.equal(b.headers['x-tokengate-cache'], 'hit', 'the same team under scope team');
  assert.equal(textOf(b), textOf(a));
  const c = await post(KEYS.crawler, call('search_docs', args), { session: sc });
  assert.equal(c.headers['x-tokengate-cache'], 'miss', 'another team');
  assert.equal(calls('search_docs'), n0 + 2);
});

test('a tool hidden from a team: absent from its list, its call refused, the server never sees it', async () => {
  const sid = await openSession(KEYS.helper);
  const l = await post(KEYS.helper, list(), { session: sid });
  assert.equal(l.status, 200, l.text);
  assert.deepEqual(l.json.result.tools.map((t) => t.name),
    ['search_docs', 'get_time', 'slow_stream']);
  // the full list is what the other team gets from the same entry
  const s2 = await openSession(KEYS.crawler);
  const full = await post(KEYS.crawler, list(), { session: s2 });
  assert.equal(full.json.result.tools.length, 6);

  const before = mcp.stats.requests.length;
  const r = await post(KEYS.helper, call('admin_reset', {}), { session: sid });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.jsonrpc, '2.0');
  assert.equal(r.json.id, rpcId);
  assert.equal(r.json.error.code, -32602);
  assert.match(r.json.error.message, /unknown tool: admin_reset/);
  // in a batch too
  const batch = await post(KEYS.helper, [call('get_time', {}), call('admin_reset', {})],
    { session: sid });
  assert.equal(batch.json.error.code, -32602);
  assert.equal(mcp.stats.requests.length, before, 'nothing was forwarded');
  assert.ok(!mcp.stats.requests.some((q) => JSON.stringify(q.rpc ?? '').includes('admin_reset')),
    'the server never saw the hidden tool called');

  // a list the gate had not cached (another page): the server's answer is cut on its way
  const page = await post(KEYS.helper, { jsonrpc: '2.0', id: ++rpcId, method: 'tools/list',
    params: { cursor: 'p2' } }, { session: sid });
  assert.equal(page.headers['x-tokengate-cache'], 'miss');
  assert.deepEqual(page.json.result.tools.map((t) => t.name),
    ['search_docs', 'get_time', 'slow_stream']);
  assert.ok(!page.text.includes('admin_reset'));

  // over SSE (a client that takes only event streams), cut too
  const sse = await post(KEYS.helper, list(), { session: sid, accept: 'text/event-stream' });
  assert.equal(sse.headers['content-type'], 'text/event-stream');
  const ev = parseSSE(sse.text).find((e) => e.json?.result);
  assert.deepEqual(ev.json.result.tools.map((t) => t.name),
    ['search_docs', 'get_time', 'slow_stream']);
});

test('an SSE answer is relayed event by event, and its result event is what is cached', async () => {
  const sid = await openSession(KEYS.crawler);
  const s0 = calls('slow_stream');
  const a = await post(KEYS.crawler, call('slow_stream', { n: 1 }), { session: sid });
  assert.equal(a.status, 200, a.text);
  assert.match(a.headers['content-type'], /^text\/event-stream/);
  assert.equal(a.headers['x-tokengate-cache'], 'miss');
  const evs = parseSSE(a.text);
  assert.equal(evs.length, 2, a.text);
  assert.equal(evs[0].json.method, 'notifications/progress');
  assert.equal(evs[1].json.id, rpcId);
  assert.equal(calls('slow_stream'), s0 + 1);
  const b = await post(KEYS.crawler, call('slow_stream', { n: 1 }), { session: sid });
  assert.equal(b.headers['x-tokengate-cache'], 'hit');
  assert.match(b.headers['content-type'], /^application\/json/);
  assert.deepEqual(b.json.result, evs[1].json.result);
  assert.equal(calls('slow_stream'), s0 + 1);
  // a client that takes only event streams gets the hit as one event
  const c = await post(KEYS.crawler, call('slow_stream', { n: 1 }),
    { session: sid, accept: 'text/event-stream' });
  assert.equal(c.headers['content-type'], 'text/event-stream');
  assert.deepEqual(parseSSE(c.text)[0].json.result, evs[1].json.result);

  // GET: the server's own stream, relayed
  const g = await httpRequest(gate.port, '/mcp/docs', { headers: {
    authorization: `Bearer ${KEYS.crawler}`, accept: 'text/event-stream', 'mcp-session-id': sid } });
  assert.equal(g.status, 200, g.text);
  assert.equal(parseSSE(g.text)[0].json.params.data, 'hello from GET');
});

test('unknown server 404; no key 401; a session another key opened 404, never forwarded; DELETE ends a session', async () => {
  const u = await post(KEYS.crawler, list(), { server: 'nope' });
  assert.equal(u.status, 404);
  assert.match(u.json.error.message, /no MCP server named 'nope'/);
  const k = await post(undefined, list());
  assert.equal(k.status, 401);
  // Expect: 100-continue: the key is checked before the body is asked for
  assert.match(await expectContinue('tg-not-a-key'), /^HTTP\/1\.1 401 /);
  assert.match(await expectContinue(KEYS.crawler), /^HTTP\/1\.1 100 /);

  const sid = await openSession(KEYS.crawler);
  const before = mcp.stats.requests.length;
  for (const key of [KEYS.indexer, KEYS.crawler2]) {
    const r = await post(key, call('get_time', {}), { session: sid });
    assert.equal(r.status, 404, r.text);
    assert.match(r.json.error.message, /unknown MCP session/);
  }
  const made = await post(KEYS.crawler, call('get_time', {}), { session: 'made-up-session' });
  assert.equal(made.status, 404);
  // two session headers: the key's own first, another key's second
  const mine = await openSession(KEYS.indexer);
  const twice = await rawTwoSessions(KEYS.indexer, mine, sid);
  assert.match(twice, /^HTTP\/1\.1 400 /);
  assert.match(twice, /more than one Mcp-Session-Id header/);
  const before2 = mcp.stats.requests.length;
  const del = await httpRequest(gate.port, '/mcp/docs', { method: 'DELETE',
    headers: { authorization: `Bearer ${KEYS.indexer}`, 'mcp-session-id': sid } });
  assert.equal(del.status, 404);
  assert.equal(mcp.stats.requests.length, before2, 'none of these reached the server');

  const d = await httpRequest(gate.port, '/mcp/docs', { method: 'DELETE',
    headers: { authorization: `Bearer ${KEYS.crawler}`, 'mcp-session-id': sid } });
  assert.equal(d.status, 200, d.text);
  assert.deepEqual(mcp.stats.deleted.slice(-1), [sid]);
  const after = await post(KEYS.crawler, call('get_time', {}), { session: sid });
  assert.equal(after.status, 404, 'the ended session is forgotten');

  // a server that refuses the gate's credential: 502 naming the setting, not a 401 for the agent
  const w = await post(KEYS.crawler, list(), { server: 'wrongkey' });
  assert.equal(w.status, 502, w.text);
  assert.match(w.json.error.message,
    /the MCP server 'wrongkey' refused the gate's credential for it \(status 401\): see mcp\.servers\.wrongkey\.api_key_env/);

  // a server that does not answer: 502, in the gate's error shape
  const down = await post(KEYS.crawler, list(), { server: 'down' });
  assert.equal(down.status, 502, down.text);
  assert.ok(down.json.error.message);

  const m = await httpRequest(gate.port, '/mcp/docs', { method: 'PUT',
    headers: { authorization: `Bearer ${KEYS.crawler}` } });
  assert.equal(m.status, 405);
  assert.equal(m.headers.allow, 'GET, POST, DELETE');
});

test('bad JSON: 400 with JSON-RPC error -32700, nothing forwarded; an empty batch -32600', async () => {
  const before = mcp.stats.requests.length;
  const r = await post(KEYS.crawler, '{"jsonrpc": "2.0", "method": ');
  assert.equal(r.status, 400);
  assert.equal(r.json.jsonrpc, '2.0');
  assert.equal(r.json.id, null);
  assert.equal(r.json.error.code, -32700);
  const e = await post(KEYS.crawler, '[]');
  assert.equal(e.status, 400);
  assert.equal(e.json.error.code, -32600);
  const s = await post(KEYS.crawler, '"hello"');
  assert.equal(s.json.error.code, -32600);
  assert.equal(mcp.stats.requests.length, before);
});

test('/metrics counts calls per tool, agent and outcome; the log has the mcp object; no ledger row; the server\'s credential in no answer or log', async () => {
  const sid = await openSession(KEYS.indexer);
  const id = newId('mcp-log');
  const args = { query: `metrics-${Date.now()}` };
  await post(KEYS.indexer, call('search_docs', args), { session: sid });
  const hitId = newId('mcp-log-hit');
  await post(KEYS.indexer, call('search_docs', args), { session: sid, id: hitId });
  const rec = await waitLogRecord(gate.logPath, hitId);
  assert.deepEqual(rec.mcp, { server: 'docs', method: 'tools/call', tool: 'search_docs',
    cache: 'hit' });
  assert.equal(rec.agent, 'indexer');
  assert.equal(rec.status, 200);
  assert.equal(rec.decision, undefined, 'no budget decision: nothing billed');

  const m = await adminRequest(gate.admin, 'GET', '/metrics', { token: ADMIN_TOKEN });
  assert.equal(m.status, 200);
  const line = (tool, agent, cache) => {
    const re = new RegExp(`^tokengate_tool_calls_total\\{server="docs",tool="${tool}",` +
      `agent="${agent}",cache="${cache}"\\} (\\d+)$`, 'm');
    const x = m.text.match(re);
    return x ? Number(x[1]) : 0;
  };
  assert.ok(line('search_docs', 'indexer', 'hit') >= 1, m.text);
  assert.ok(line('search_docs', 'indexer', 'miss') >= 2);
  assert.ok(line('get_time', 'crawler', 'bypass') >= 3);
  assert.equal(line('admin_reset', 'helper', 'miss') + line('admin_reset', 'helper', 'bypass'), 0,
    'a refused call is not a call');
  // the caches' counters: tool lookups by the scope level they were made at, lists at the org
  const lookups = (cache, scope, outcome) => {
    const x = m.text.match(new RegExp(`^tokengate_cache_lookups_total\\{cache="${cache}",` +
      `scope="${scope}",outcome="${outcome}"\\} (\\d+)$`, 'm'));
    return x ? Number(x[1]) : 0;
  };
  assert.ok(lookups('tool', 'agent', 'hit') >= 1, m.text);
  assert.ok(lookups('tool', 'team', 'hit') >= 1, 'the team-scope policy\'s lookups');
  assert.ok(lookups('tool', 'agent', 'bypass') >= 3);
  assert.ok(lookups('mcp_list', 'org', 'hit') >= 1);
  assert.ok(lookups('mcp_list', 'org', 'miss') >= 1);

  // the ledger has no row for any MCP request (nothing else was asked of this gate)
  await sleep(200);
  const q = spawnSync('sqlite3', [path.join(dir, 'state', 'ledger.db'),
    "SELECT count(*) FROM requests WHERE endpoint LIKE '/mcp/%'"], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  assert.equal(q.stdout.trim(), '0');

  const log = fs.readFileSync(gate.logPath, 'utf8');
  assert.ok(log.includes('"mcp"'));
  assert.ok(!log.includes(SERVER_TOKEN), 'the server\'s credential is not in the log');
  assert.ok(!m.text.includes(SERVER_TOKEN));
  assert.ok(!gate.proc.stderr.includes(SERVER_TOKEN));
  void id;
});

test('a reload: a team\'s allowlist changed and a server added take effect; sessions opened before go on', async () => {
  const sid = await openSession(KEYS.helper);
  fs.writeFileSync(gate.configPath, config(mcp.url, { reloaded: true }));
  const before = (gate.proc.stderr.match(/configuration reloaded: /g) || []).length;
  gate.proc.child.kill('SIGHUP');
  for (let i = 0; i < 200 && (gate.proc.stderr.match(/configuration reloaded: /g) || []).length <= before; i++)
    await sleep(50);
  assert.ok((gate.proc.stderr.match(/configuration reloaded: /g) || []).length > before,
    `no reload line: ${gate.proc.stderr}`);
  const l = await post(KEYS.helper, list(), { session: sid });
  assert.equal(l.status, 200, l.text);
  assert.deepEqual(l.json.result.tools.map((t) => t.name), ['get_time']);
  const r = await post(KEYS.helper, call('search_docs', { query: 'x' }), { session: sid });
  assert.equal(r.json.error.code, -32602);
  const s2 = await openSession(KEYS.helper); // the same key, a new session
  assert.notEqual(s2, sid);
  const d2 = await post(KEYS.crawler, { jsonrpc: '2.0', id: ++rpcId, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {},
      clientInfo: { name: 'mcp-test', version: '1' } } }, { server: 'docs2' });
  assert.equal(d2.status, 200, d2.text);
  assert.ok(d2.headers['mcp-session-id']);
  // a session of one server is not one of another, even on the same upstream
  const cross = await post(KEYS.crawler, list(), { server: 'docs2', session: sid });
  assert.equal(cross.status, 404);
});

test('an open gate (no org): a credential is required; its hash scopes sessions and cached results', async () => {
  const d = tempDir();
  const q = JSON.stringify;
  const open = await startGate({ dir: d, env: ENV, configText: [
    'listen: 127.0.0.1:0',
    'workers: 1',
    'providers:',
    "  o: { base_url: 'http://127.0.0.1:9/v1' }",
    'models:',
    '  gpt-4o-mini: o',
    'mcp:',
    '  servers:',
    '    docs:',
    `      url: ${q(mcp.url)}`,
    '      api_key_env: TG_MCP_DOCS_KEY',
    '      tools: { search_docs: 10m }',
  ].join('\n') + '\n' });
  const send = (cred, msg, session) => httpRequest(open.port, '/mcp/docs', { method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
      ...(cred ? { authorization: `Bearer ${cred}` } : {}),
      ...(session ? { 'mcp-session-id': session } : {}) },
    body: JSON.stringify(msg) });
  const none = await send(undefined, list());
  assert.equal(none.status, 401);
  assert.match(none.json.error.message, /the MCP proxy needs a credential/);

  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion:
    '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } };
  const a = await send('client-a-own-key', init);
  const sa = a.headers['mcp-session-id'];
  const b = await send('client-b-own-key', init);
  const sb = b.headers['mcp-session-id'];
  assert.ok(sa && sb);
  assert.equal((await send('client-b-own-key', list(), sa)).status, 404);

  const args = { query: `open-${Date.now()}` };
  const n0 = calls('search_docs');
  const ra = await send('client-a-own-key', call('search_docs', args), sa);
  assert.equal(ra.headers['x-tokengate-cache'], 'miss');
  const rb = await send('client-b-own-key', call('search_docs', args), sb);
  assert.equal(rb.headers['x-tokengate-cache'], 'miss', 'two credentials never share');
  const ra2 = await send('client-a-own-key', call('search_docs', args), sa);
  assert.equal(ra2.headers['x-tokengate-cache'], 'hit');
  assert.equal(calls('search_docs'), n0 + 2);
  // the clients' own keys never reach the server
  assert.ok(!mcp.stats.requests.some((r) => JSON.stringify(r.headers).includes('own-key')));
});
