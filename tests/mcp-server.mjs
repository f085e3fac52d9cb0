// A small MCP server over streamable HTTP, for the tests of the gate's MCP proxy
// (tests/integration/mcp.test.mjs). Plain node:http and JSON, on 127.0.0.1 with an ephemeral port.
//
// POST /mcp: one JSON-RPC message or a batch. initialize issues an Mcp-Session-Id; every other
// message needs a live session (400 without one, 404 for one it does not know). Methods:
// initialize, notifications/* (202), ping, tools/list, tools/call. GET /mcp: an event stream
// with one server message, then the end. DELETE /mcp: the session ends.
// Every request must carry `Authorization: Bearer TOKEN` (401 otherwise), so a test can tell
// the gate sent the server's credential and not the agent's.
//
// Tools: search_docs (answers with how many times it was called), get_time (the same),
// slow_stream (answers as an event stream: a progress notification, then the result, when the
// client takes text/event-stream), flash (as search_docs), admin_reset (a tool a team is not
// shown), broken (a tool error: isError). Counters are kept per tool so that a test sees
// whether the gate forwarded a call.
//
// Run alone: `node tests/mcp-server.mjs TOKEN` prints "mcp-server listening on 127.0.0.1:PORT".
// Imported: startMcpServer({token}) resolves to {port, url, stats, close()}.

import http from 'node:http';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const TOOLS = [
  { name: 'search_docs', description: 'Searches the docs', inputSchema: { type: 'object',
    properties: { query: { type: 'string' } } } },
  { name: 'get_time', description: 'The time', inputSchema: { type: 'object', properties: {} } },
  { name: 'slow_stream', description: 'Answers as an event stream', inputSchema: {
    type: 'object', properties: { n: { type: 'number' } } } },
  { name: 'flash', description: 'Cached briefly', inputSchema: { type: 'object', properties: {} } },
  { name: 'admin_reset', description: 'Resets everything', inputSchema: { type: 'object',
    properties: {} } },
  { name: 'broken', description: 'Always fails', inputSchema: { type: 'object', properties: {} } },
];

const MAX_BODY = 1024 * 1024;

export function startMcpServer({ token = 'mcp-server-secret' } = {}) {
  const sessions = new Set();
  const stats = {
    calls: {},        // tool -> tools/call requests seen
    lists: 0,         // tools/list requests seen
    requests: [],     // {method, rpc, headers} of every HTTP request, in order
    deleted: [],      // session ids ended by DELETE
    connections: 0,   // TCP connections accepted (a keep-alive client opens few)
  };

  const send = (res, status, body, headers = {}) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length':
      Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const rpcError = (id, code, message) => ({ jsonrpc: '2.0', id: id ?? null,
    error: { code, message } });

  // The answer to one message: {result} | {error} | null (a notification or a response).
  const handle = (msg, sessionOk) => {
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg))
      return rpcError(null, -32600, 'Invalid Request');
    if (msg.method === undefined) return null; // a response to a server request
    if (msg.id === undefined) return null;     // a notification
    if (!sessionOk && msg.method !== 'initialize') return rpcError(msg.id, -32000, 'no session');
    switch (msg.method) {
      case 'initialize':
        return { jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-06-18',
          capabilities: { tools: { listChanged: false } },
          serverInfo: { name: 'tokengate-test-mcp', version: '1.0.0' } } };
      case 'ping':
        return { jsonrpc: '2.0', id: msg.id, result: {} };
      case 'tools/list':
        stats.lists++;
        return { jsonrpc: '2.0', id: msg.id, result: { tools: TOOLS } };
      case 'tools/call': {
        const name = msg.params?.name;
        if (!TOOLS.some((t) => t.name === name))
          return rpcError(msg.id, -32602, `Unknown tool: ${name}`);
        stats.calls[name] = (stats.calls[name] || 0) + 1;
        if (name === 'broken')
          return { jsonrpc: '2.0', id: msg.id, result: { isError: true,
            content: [{ type: 'text', text: `failed #${stats.calls[name]}` }] } };
        const args = JSON.stringify(msg.params?.arguments ?? {});
        return { jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text',
          text: `${name} ${args} call #${stats.calls[name]}` }] } };
      }
      default:
        return rpcError(msg.id, -32601, `Method not found: ${msg.method}`);
    }
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let rpc;
      try {
        rpc = body ? JSON.parse(body) : undefined;
      } catch {
        rpc = undefined;
      }
      stats.requests.push({ method: req.method, url: req.url, rpc, headers: { ...req.headers } });
      if (req.headers.authorization !== `Bearer ${token}`)
        return send(res, 401, { error: 'the MCP server wants its own token' });
      const sid = req.headers['mcp-session-id'];
      const sessionOk = sid !== undefined && sessions.has(sid);
      if (sid !== undefined && !sessionOk) return send(res, 404, rpcError(null, -32001,
        'Session not found'));

      if (req.method === 'DELETE') {
        if (!sessionOk) return send(res, 400, rpcError(null, -32000, 'no session'));
        sessions.delete(sid);
        stats.deleted.push(sid);
        return send(res, 200, {});
      }
      if (req.method === 'GET') {
        if (!sessionOk) return send(res, 400, rpcError(null, -32000, 'no session'));
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write(`id: 1\nevent: message\ndata: ${JSON.stringify({ jsonrpc: '2.0',
          method: 'notifications/message', params: { level: 'info', data: 'hello from GET' } })}\n\n`);
        return res.end();
      }
      if (req.method !== 'POST') return send(res, 405, { error: 'method' });
      if (rpc === undefined) return send(res, 400, rpcError(null, -32700, 'Parse error'));

      const msgs = Array.isArray(rpc) ? rpc : [rpc];
      const answers = msgs.map((m) => handle(m, sessionOk)).filter((a) => a !== null);
      const headers = {};
      if (!Array.isArray(rpc) && rpc.method === 'initialize') {
        const id = crypto.randomUUID();
        sessions.add(id);
        headers['mcp-session-id'] = id;
      }
      if (answers.length === 0) {
        res.writeHead(202, headers);
        return res.end();
      }
      const streamed = !Array.isArray(rpc) && rpc.method === 'tools/call' &&
        rpc.params?.name === 'slow_stream' && (req.headers.accept || '').includes('text/event-stream');
      if (streamed) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache',
          ...headers });
        res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0',
          method: 'notifications/progress', params: { progressToken: 1, progress: 1,
            total: 2 } })}\n\n`);
        setTimeout(() => {
          res.write(`event: message\ndata: ${JSON.stringify(answers[0])}\n\n`);
          res.end();
        }, 20);
        return;
      }
      send(res, 200, Array.isArray(rpc) ? answers : answers[0], headers);
    });
  });

  // idle keep-alive connections stay open while a test runs, however slow the machine
  server.keepAliveTimeout = 120000;
  server.on('connection', () => {
    stats.connections++;
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        port,
        url: `http://127.0.0.1:${port}/mcp`,
        stats,
        sessions,
        close: () => new Promise((r) => {
          server.closeAllConnections?.();
          server.close(() => r());
        }),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = await startMcpServer({ token: process.argv[2] || 'mcp-server-secret' });
  process.stdout.write(`mcp-server listening on 127.0.0.1:${s.port}\n`);
}
