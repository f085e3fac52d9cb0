// Shared helpers for the integration tests: they run the real binaries (the gate and the mock
// provider) on ephemeral ports, talk to them over plain sockets, HTTP or the official SDKs, and
// read the gate's request log.
//
// Every process a test file starts is registered here and stopped by cleanup(), which each file
// calls from an after() hook: cleanup also checks that the gate exits 0 on SIGTERM and that no
// sanitizer wrote to its stderr. Use test() from this module instead of node:test's: it adds the
// gate's stderr to a failing test's output and fails a test after which the gate's stderr holds
// sanitizer output.
//
// Environment: TG_BUILD (the build directory, default build/), TG_KEEP_TMP (keep the temporary
// directories: configs, request logs, certificates), TG_IT_DEBUG (say how each process stopped).

import { test as nodeTest } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');
export const BUILD = path.resolve(process.env.TG_BUILD || path.join(REPO, 'build'));
export const GATE_BIN = path.join(BUILD, 'tokengate');
export const MOCK_BIN = path.join(BUILD, 'tokengate-mock');

for (const bin of [GATE_BIN, MOCK_BIN]) {
  if (!fs.existsSync(bin))
    throw new Error(`${bin} does not exist: build first (ninja -C ${BUILD}) or set TG_BUILD`);
}

/** True when the binaries carry AddressSanitizer, which makes everything a few times slower. */
export const SANITIZED = (() => {
  const fd = fs.openSync(GATE_BIN, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, 64 * 1024 * 1024));
    fs.readSync(fd, buf, 0, buf.length, 0);
    return buf.includes('__asan_init');
  } finally {
    fs.closeSync(fd);
  }
})();

/** Scales a time bound for the build in use. */
export const SLOW = SANITIZED ? 3 : 1;
export function ms(n) {
  return Math.round(n * SLOW);
}

export const sleep = (n) => new Promise((r) => setTimeout(r, n));

const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ThreadSanitizer/;
const OUTPUT_CAP = 4 * 1024 * 1024;

// ---- temporary files -------------------------------------------------------------------------

const tempDirs = [];

/** A fresh temporary directory, removed by cleanup() (kept when TG_KEEP_TMP is set). */
/** JSON.parse(text), or undefined when text is not JSON (a body a test still wants to see). */
export function parseJsonOrUndefined(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function tempDir(prefix = 'tg-it-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

// ---- processes -------------------------------------------------------------------------------

const live = new Set();

function killAll() {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

// Whatever way this test process ends, it takes its gates and mocks with it.
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    killAll();
    process.kill(process.pid, sig);
  });
}

/**
 * A child process with its output collected. ready() waits for a pattern on one of its streams.
 */
class Proc {
  constructor(name, bin, args, env) {
    this.name = name;
    this.bin = bin;
    this.args = args;
    this.stdout = '';
    this.stderr = '';
    this.exited = null; // {code, signal} once it has exited
    this.child = spawn(bin, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pid = this.child.pid;
    this.waiters = new Set();
    const add = (which) => (chunk) => {
      if (this[which].length < OUTPUT_CAP) this[which] += chunk.toString('utf8');
      this.notify();
    };
    this.child.stdout.on('data', add('stdout'));
    this.child.stderr.on('data', add('stderr'));
    this.exitPromise = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        live.delete(this);
        this.notify();
        resolve(this.exited);
      });
    });
    this.child.on('error', (err) => {
      this.stderr += `\n[spawn error: ${err.message}]`;
      this.exited = this.exited || { code: null, signal: null, error: err };
      live.delete(this);
      this.notify();
    });
    live.add(this);
  }

  notify() {
    for (const w of [...this.waiters]) w();
  }

  describe() {
    return `${this.name} (pid ${this.pid}: ${path.basename(this.bin)} ${this.args.join(' ')})`;
  }

  /** The last n characters of stderr, for error messages. */
  tail(n = 4000) {
    return this.stderr.length > n ? '...' + this.stderr.slice(-n) : this.stderr;
  }

  /** Waits until stream ('stdout' or 'stderr') matches re; returns the match. */
  waitFor(stream, re, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this[stream].match(re);
        if (m) {
          done();
          resolve(m);
        } else if (this.exited) {
          done();
          reject(
            new Error(
              `${this.describe()} exited (${JSON.stringify(this.exited)}) before ${what}\n` +
                `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.tail()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `${this.describe()}: no ${what} within ${timeoutMs} ms\n` +
              `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.tail()}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Waits for the exit; returns {code, signal}, or null after timeoutMs. */
  async waitExit(timeoutMs) {
    if (this.exited) return this.exited;
    let timer;
    const t = new Promise((r) => (timer = setTimeout(() => r(null), timeoutMs)));
    const r = await Promise.race([this.exitPromise, t]);
    clearTimeout(timer);
    return r;
  }

  /**
   * SIGTERM, then SIGKILL after timeoutMs (the default leaves room for the gate's 10 s grace
   * period for requests under way). Returns {code, signal, killed}.
   */
  async stop(timeoutMs = 12000 + ms(5000)) {
    if (!this.exited) this.child.kill('SIGTERM');
    let r = await this.waitExit(timeoutMs);
    if (r) return { ...r, killed: false };
    this.child.kill('SIGKILL');
    r = await this.waitExit(5000);
    return { ...(r || {}), killed: true };
  }

  sanitizerReport() {
    const m = this.stderr.match(SANITIZER_RE);
    if (!m) return null;
    return this.stderr.slice(Math.max(0, m.index - 200), m.index + 6000);
  }
}

const gates = new Set();
const mocks = new Set();

/**
 * Starts the mock provider on an ephemeral port. opts: tokens, delayMs, tlsCert, tlsKey, ca and
 * servername (to verify it), args.
 * Returns a Mock with port, url (http[s]://127.0.0.1:PORT) and the hook helpers.
 */
export async function startMock(opts = {}) {
  const args = ['--listen', '127.0.0.1:0'];
  if (opts.tokens !== undefined) args.push('--tokens', String(opts.tokens));
  if (opts.delayMs !== undefined) args.push('--delay-ms', String(opts.delayMs));
  if (opts.tlsCert) args.push('--tls-cert', opts.tlsCert, '--tls-key', opts.tlsKey);
  if (opts.args) args.push(...opts.args);
  const p = new Proc('mock', MOCK_BIN, args, opts.env || {});
  mocks.add(p);
  const m = await p.waitFor('stdout', /listening on 127\.0\.0\.1:(\d+)/, ms(10000), 'port');
  return new Mock(p, Number(m[1]), opts.tlsCert ? 'https' : 'http', opts.ca, opts.servername);
}

class Mock {
  constructor(proc, port, scheme, ca, servername) {
    this.proc = proc;
    this.port = port;
    this.scheme = scheme;
    this.ca = ca; // for a TLS mock: the CA its certificate chains to
    this.servername = servername; // ...and the name it is for, when not 127.0.0.1
    this.url = `${scheme}://127.0.0.1:${port}`;
  }

  async hook(method, p) {
    const r = await httpRequest(this.port, p, {
      method,
      tls: this.scheme === 'https',
      ca: this.ca,
      servername: this.servername,
      timeoutMs: ms(10000),
    });
    if (r.status !== 200)
      throw new Error(`mock ${method} ${p}: ${r.status} ${r.text}\n${this.proc.tail()}`);
    return r.json;
  }

  /** {requests, by_path, active, peak_active} (replies in progress now, and most at once) */
  stats() {
    return this.hook('GET', '/_mock/stats');
  }

  /** {method, path, headers (lowercase names), body (raw string)} of the last request. */
  last() {
    return this.hook('GET', '/_mock/last');
  }

  reset() {
    return this.hook('POST', '/_mock/reset');
  }

  /**
   * The mock's /_mock/usage entry of x-request-id id (see bench/README.md), or undefined:
   * {input, output, complete, usage, absurd, cached, reasoning, sent, bytes, closed}.
   */
  async usageOf(id) {
    return (await this.hook('GET', '/_mock/usage')).usage[id];
  }

  /** Sends a request straight to the mock (not through the gate). */
  direct(p, opts = {}) {
    return httpRequest(this.port, p, { tls: this.scheme === 'https', ca: this.ca,
      servername: this.servername, ...opts });
  }

  stop() {
    return this.proc.stop();
  }
}

/** Quotes a YAML scalar (a JSON string is a valid YAML double-quoted scalar). */
function y(v) {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * Renders a gate config. opts: requestLog, workers, limits {}, timeouts {}, upstream {},
 * tls {cert, key}, providers {name: {base_url, format, api_key_env}},
 * models {name: provider | {provider, upstream_model}}, extra (raw YAML appended).
 */
export function gateConfig(opts) {
  const lines = [`listen: 127.0.0.1:0`, `workers: ${opts.workers ?? 1}`];
  if (opts.requestLog) lines.push(`request_log: ${y(opts.requestLog)}`);
  const section = (name, obj) => {
    const keys = Object.keys(obj || {}).filter((k) => obj[k] !== undefined);
    if (keys.length === 0) return;
    lines.push(`${name}:`);
    for (const k of keys) lines.push(`  ${k}: ${y(obj[k])}`);
  };
  section('limits', opts.limits);
  section('timeouts', opts.timeouts);
  section('upstream', opts.upstream);
  section('tls', opts.tls);
  lines.push('providers:');
  for (const [name, p] of Object.entries(opts.providers)) {
    lines.push(`  ${y(name)}:`);
    for (const [k, v] of Object.entries(p)) if (v !== undefined) lines.push(`    ${k}: ${y(v)}`);
  }
  lines.push('models:');
  for (const [name, m] of Object.entries(opts.models)) {
    if (typeof m === 'string') {
      lines.push(`  ${y(name)}: ${y(m)}`);
    } else {
      lines.push(`  ${y(name)}:`);
      for (const [k, v] of Object.entries(m)) lines.push(`    ${k}: ${y(v)}`);
    }
  }
  if (opts.extra) lines.push(opts.extra);
  return lines.join('\n') + '\n';
}

/** The providers and models most tests use, all pointing at one mock. */
export function mockProviders(mockUrl) {
  return {
    providers: {
      'mock-openai': { base_url: `${mockUrl}/v1`, format: 'openai' },
      'mock-anthropic': { base_url: `${mockUrl}/v1`, format: 'anthropic' },
    },
    models: {
      'gpt-4o-mini': 'mock-openai',
      'text-embedding-3-small': 'mock-openai',
      'claude-haiku-4-5': 'mock-anthropic',
      'gpt-4.1*': 'mock-openai',
      renamed: { provider: 'mock-openai', upstream_model: 'gpt-4o-mini' },
    },
  };
}

/**
 * Starts the gate. opts: config (object for gateConfig, requestLog defaults to DIR/requests.jsonl)
 * or configText, env, args (extra command-line arguments), dir.
 * Returns a Gate with port, url, pid, logPath, proc.
 */
export async function startGate(opts) {
  const dir = opts.dir || tempDir();
  const logPath = opts.config?.requestLog ?? path.join(dir, 'requests.jsonl');
  const text =
    opts.configText ?? gateConfig({ ...opts.config, requestLog: logPath });
  const configPath = path.join(dir, opts.configName || 'gate.yaml');
  fs.writeFileSync(configPath, text);
  const p = new Proc('gate', GATE_BIN, ['serve', '--config', configPath, ...(opts.args || [])],
    opts.env || {});
  gates.add(p);
  const m = await p.waitFor(
    'stderr',
    /tokengate: listening on (https?):\/\/127\.0\.0\.1:(\d+) with (\d+) worker/,
    ms(10000),
    'listening line',
  );
  return new Gate(p, m[1], Number(m[2]), Number(m[3]), logPath, configPath, dir);
}

class Gate {
  constructor(proc, scheme, port, workers, logPath, configPath, dir) {
    this.proc = proc;
    this.pid = proc.pid;
    this.scheme = scheme;
    this.port = port;
    this.workers = workers;
    this.logPath = logPath;
    this.configPath = configPath;
    this.dir = dir;
    this.url = `${scheme}://127.0.0.1:${port}`;
  }

  /** An HTTP request to the gate (see httpRequest). */
  request(p, opts = {}) {
    return httpRequest(this.port, p, opts);
  }

  /** POSTs a JSON body; headers optional. */
  post(p, body, headers = {}, opts = {}) {
    return httpRequest(this.port, p, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...opts,
    });
  }

  /**
   * GET /status: every test reads it through here, so that how it is asked for (a key, another
   * listener) is a change of one line.
   */
  status(opts = {}) {
    return this.request('/status', opts);
  }

  /** Resident memory in KiB, from /proc. */
  rssKiB() {
    const s = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return Number(s.match(/VmRSS:\s+(\d+)\s+kB/)[1]);
  }

  /** The request-log record with this id, waiting for the log writer. */
  logRecord(id, timeoutMs) {
    return waitLogRecord(this.logPath, id, timeoutMs);
  }

  stop() {
    return this.proc.stop();
  }
}

/** Stops every process this file started; fails on a dirty gate exit or sanitizer output. */
export async function cleanup() {
  const problems = [];
  const stopping = [];
  for (const p of [...gates, ...mocks]) {
    stopping.push(
      (async () => {
        const wasRunning = !p.exited;
        const t0 = Date.now();
        const r = await p.stop();
        if (process.env.TG_IT_DEBUG)
          process.stderr.write(`cleanup: ${p.describe()} stopped in ${Date.now() - t0} ms: ` +
            `${JSON.stringify(r)}\n`);
        const isGate = gates.has(p);
        const san = p.sanitizerReport();
        if (san && isGate) problems.push(`${p.describe()}: sanitizer output:\n${san}`);
        else if (san)
          process.stderr.write(`warning: ${p.describe()}: sanitizer output:\n${san}\n`);
        if (isGate && wasRunning && (r.killed || r.code !== 0))
          problems.push(
            `${p.describe()}: SIGTERM did not end it with exit 0 (${JSON.stringify(r)})\n` +
              `--- stderr ---\n${p.tail()}`,
          );
      })(),
    );
  }
  await Promise.all(stopping);
  gates.clear();
  mocks.clear();
  for (const s of servers) s.close();
  servers.clear();
  if (!process.env.TG_KEEP_TMP)
    for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  if (problems.length) throw new Error(problems.join('\n\n'));
}

/**
 * node:test's test(), plus: a failing test prints the stderr of the gates (and mocks) this file
 * started; a test after which a gate's stderr shows sanitizer output fails. Default timeout 60 s
 * (scaled for sanitized builds).
 */
export function test(name, opts, fn) {
  if (typeof opts === 'function') {
    fn = opts;
    opts = {};
  }
  const options = { timeout: ms(60000), ...opts };
  return nodeTest(name, options, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      const logs = [...gates, ...mocks].map(processReport).join('\n');
      if (e && typeof e === 'object' && typeof e.message === 'string') {
        try {
          e.message += `\n${logs}`;
        } catch {
          t.diagnostic(logs);
        }
      } else {
        t.diagnostic(logs);
      }
      throw e;
    }
    for (const p of gates) {
      const san = p.sanitizerReport();
      if (san && !reported.has(p)) {
        reported.add(p);
        throw new Error(`${p.describe()}: sanitizer output:\n${san}`);
      }
    }
  });
}

const reported = new Set(); // processes whose sanitizer report a failure has shown already

/** What a failing test shows of a process: its stderr tail, or a sanitizer report once. */
function processReport(p) {
  const state = p.exited ? ` (exited: ${JSON.stringify(p.exited)})` : '';
  const san = p.sanitizerReport();
  if (san && reported.has(p)) return `--- ${p.describe()}${state}: sanitizer report above ---`;
  if (san) reported.add(p);
  return `--- ${p.describe()}${state} stderr ---\n${san ?? p.tail(3000)}`;
}

// ---- HTTP over node:http ---------------------------------------------------------------------

/**
 * One request on its own connection (no pooling, so no keep-alive races).
 * opts: method, headers, body, tls, ca, timeoutMs, servername.
 * Returns {status, headers (lowercase names), text, json (or undefined), rawHeaders}.
 */
export function httpRequest(port, p, opts = {}) {
  const mod = opts.tls ? https : http;
  const timeoutMs = opts.timeoutMs ?? ms(30000);
  return new Promise((resolve, reject) => {
    const req = mod.request(
      {
        host: '127.0.0.1',
        port,
        path: p,
        method: opts.method || 'GET',
        headers: opts.headers || {},
        agent: false,
        ca: opts.ca,
        servername: opts.servername,
        rejectUnauthorized: opts.rejectUnauthorized ?? true,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          const json = parseJsonOrUndefined(text);
          resolve({ status: res.statusCode, headers: res.headers, text, json,
            rawHeaders: res.rawHeaders });
        });
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`${opts.method || 'GET'} ${p} on port ${port}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Parses server-sent events: [{event, data, json}] (json undefined when data is not JSON). */
export function parseSSE(text) {
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (block.trim() === '') continue;
    let event;
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    const d = data.join('\n');
    const json = parseJsonOrUndefined(d);
    events.push({ event, data: d, json });
  }
  return events;
}

// ---- raw HTTP/1.1 over node:net --------------------------------------------------------------

/**
 * A client socket that keeps what it receives, for requests node's HTTP client refuses to send
 * (malformed framing, pipelining) and for watching the connection itself.
 */
export class RawClient {
  /** Connects to 127.0.0.1:port (TLS when opts.tls, with opts.ca). */
  static connect(port, opts = {}) {
    return new Promise((resolve, reject) => {
      const c = new RawClient();
      const onErr = (e) => reject(e);
      const sock = opts.tls
        ? tls.connect({ host: '127.0.0.1', port, ca: opts.ca, servername: opts.servername },
          () => {
            sock.off('error', onErr);
            resolve(c);
          })
        : net.connect({ host: '127.0.0.1', port }, () => {
          sock.off('error', onErr);
          resolve(c);
        });
      sock.once('error', onErr);
      c.attach(sock);
    });
  }

  attach(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.received = 0; // bytes ever received
    this.ended = false; // the peer closed (FIN or RST)
    this.error = null;
    this.waiters = new Set();
    sock.on('data', (d) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.received += d.length;
      this.notify();
    });
    sock.on('end', () => {
      this.ended = true;
      this.notify();
    });
    sock.on('close', () => {
      this.ended = true;
      this.notify();
    });
    sock.on('error', (e) => {
      this.error = e;
      this.ended = true;
      this.notify();
    });
  }

  notify() {
    for (const w of [...this.waiters]) w();
  }

  write(data) {
    return new Promise((resolve, reject) =>
      this.sock.write(data, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Resolves with cond()'s first truthy value, or rejects after timeoutMs. */
  until(cond, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const check = () => {
        let v;
        try {
          v = cond();
        } catch (e) {
          done();
          reject(e);
          return;
        }
        if (v) {
          done();
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`raw client: ${what} did not happen within ${timeoutMs} ms ` +
          `(received ${this.received} bytes, closed: ${this.ended}, buffered: ` +
          `${JSON.stringify(this.buf.subarray(0, 600).toString('latin1'))})`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /**
   * Reads one final response (1xx interim answers are skipped and kept in .interim).
   * Returns {status, reason, headers, body, json, chunked, complete}. With allowPartial, a
   * connection that closes in the middle of a body gives complete: false instead of an error.
   * head: the answer to a HEAD request, which has no body whatever its headers say.
   */
  readResponse({ timeoutMs = ms(15000), allowPartial = false, head = false } = {}) {
    const interim = [];
    return this.until(
      () => {
        for (;;) {
          const r = parseResponse(this.buf, this.ended, false, head);
          if (r === null) {
            if (this.ended) {
              if (allowPartial && this.buf.length > 0) {
                const p = parseResponse(this.buf, true, true);
                if (p) {
                  this.buf = Buffer.alloc(0);
                  return { ...p, interim };
                }
              }
              throw new Error(
                `raw client: connection closed before a complete response (buffered: ` +
                  `${JSON.stringify(this.buf.subarray(0, 600).toString('latin1'))})`);
            }
            return null;
          }
          this.buf = this.buf.subarray(r.consumed);
          if (r.status >= 100 && r.status < 200) {
            interim.push(r);
            continue;
          }
          return { ...r, interim };
        }
      },
      timeoutMs,
      'a complete response',
    );
  }

  /** Resolves true when the peer closes within timeoutMs, false otherwise. */
  async waitClosed(timeoutMs) {
    try {
      await this.until(() => this.ended, timeoutMs, 'close');
      return true;
    } catch {
      return false;
    }
  }

  pause() {
    this.sock.pause();
  }

  resume() {
    this.sock.resume();
  }

  /** Closes our side gracefully. */
  end() {
    this.sock.end();
  }

  destroy() {
    this.sock.destroy();
  }
}

/**
 * Parses one response at the start of buf. Returns null when it is not all there yet, else
 * {status, reason, headers, body, bodyBuf, chunked, complete, consumed}. partial: accept a
 * body cut short (the connection ended). headOnly: the response to a HEAD request.
 */
function parseResponse(buf, ended, partial = false, headOnly = false) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const head = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const sm = head[0].match(/^HTTP\/1\.[01] (\d{3}) ?(.*)$/);
  if (!sm) throw new Error(`raw client: bad status line ${JSON.stringify(head[0])}`);
  const status = Number(sm[1]);
  const headers = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    const name = line.slice(0, i).toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let pos = headEnd + 4;
  const base = { status, reason: sm[2], headers, chunked: false };
  if ((status >= 100 && status < 200) || status === 204 || status === 304 || headOnly)
    return { ...base, body: '', bodyBuf: Buffer.alloc(0), complete: true, consumed: pos };
  if (/chunked/i.test(headers['transfer-encoding'] || '')) {
    const parts = [];
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', pos);
      if (lineEnd < 0) break;
      const size = parseInt(buf.subarray(pos, lineEnd).toString('latin1'), 16);
      if (Number.isNaN(size)) throw new Error('raw client: bad chunk size from the server');
      if (size === 0) {
        // no trailers expected: the last chunk is "0\r\n\r\n"
        if (buf.length < lineEnd + 4) break;
        const bodyBuf = Buffer.concat(parts);
        return { ...base, chunked: true, chunks: parts.map((p) => p.toString('utf8')), bodyBuf,
          body: bodyBuf.toString('utf8'), complete: true, consumed: lineEnd + 4 };
      }
      if (buf.length < lineEnd + 2 + size + 2) break;
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      pos = lineEnd + 2 + size + 2;
    }
    if (!partial) return null;
    const bodyBuf = Buffer.concat(parts);
    return { ...base, chunked: true, chunks: parts.map((p) => p.toString('utf8')), bodyBuf,
      body: bodyBuf.toString('utf8'), complete: false, consumed: buf.length };
  }
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (buf.length < pos + n) {
      if (!partial) return null;
      const bodyBuf = buf.subarray(pos);
      return { ...base, bodyBuf, body: bodyBuf.toString('utf8'), complete: false,
        consumed: buf.length };
    }
    const bodyBuf = buf.subarray(pos, pos + n);
    return { ...base, bodyBuf, body: bodyBuf.toString('utf8'), complete: true, consumed: pos + n };
  }
  // no framing: the body runs to the close
  if (!ended) return null;
  const bodyBuf = buf.subarray(pos);
  return { ...base, bodyBuf, body: bodyBuf.toString('utf8'), complete: true, consumed: buf.length };
}

function withJson(r) {
  const json = parseJsonOrUndefined(r.body);
  return { ...r, json };
}

/**
 * Sends data (a string is sent as latin1, so tests control every byte) on a new connection and
 * reads one response. Then waits for the close: up to closeWaitMs (default 3 s, scaled) when the
 * response says "connection: close", else briefly (300 ms).
 * Returns {status, headers, body, json, closed, client}.
 */
export async function rawRequest(port, data, opts = {}) {
  const c = await RawClient.connect(port, opts);
  try {
    await c.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
    const r = withJson(await c.readResponse({ timeoutMs: opts.timeoutMs ?? ms(15000) }));
    const wantsClose = /close/i.test(r.headers.connection || '');
    const closed = await c.waitClosed(wantsClose ? (opts.closeWaitMs ?? ms(3000)) : 300);
    return { ...r, closed, client: c };
  } finally {
    if (!opts.keepOpen) c.destroy();
  }
}

/** Builds a request as a latin1 string: a JSON body gets content-type and content-length. */
export function rawPost(p, body, headers = {}) {
  const b = typeof body === 'string' ? body : JSON.stringify(body);
  let s = `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n`;
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
  return s + `content-length: ${Buffer.byteLength(b)}\r\n\r\n` + Buffer.from(b).toString('latin1');
}

// ---- the request log -------------------------------------------------------------------------

/** Parses the complete lines of the log (a last line without its newline is left out). */
export function readLogNow(logPath) {
  let text;
  try {
    text = fs.readFileSync(logPath, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
  const lines = text.split('\n');
  lines.pop();
  return lines.filter((l) => l.length > 0).map((l) => JSON.parse(l));
}

/**
 * Polls the JSONL request log until it holds at least waitForCount records; returns them all.
 * Fails after timeoutMs saying how many there were.
 */
export async function readLog(logPath, waitForCount = 1, timeoutMs = ms(5000)) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const recs = readLogNow(logPath);
    if (recs.length >= waitForCount) return recs;
    if (Date.now() > deadline)
      throw new Error(`request log ${logPath}: ${recs.length} records after ${timeoutMs} ms, ` +
        `wanted ${waitForCount}`);
    await sleep(20);
  }
}

/** Polls the log for the record with this request id. */
export async function waitLogRecord(logPath, id, timeoutMs = ms(5000)) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rec = readLogNow(logPath).find((r) => r.id === id);
    if (rec) return rec;
    if (Date.now() > deadline)
      throw new Error(`request log ${logPath}: no record with id ${id} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

let idSeq = 0;
/** A request id unique within this test run. */
export function newId(tag = 'it') {
  return `${tag}-${process.pid}-${++idSeq}-${Date.now().toString(36)}`;
}

// ---- a scripted upstream ---------------------------------------------------------------------

const servers = new Set();

/**
 * A tiny HTTP/1.1 server over node:net for upstream behaviour the mock does not have.
 * handler({method, path, headers, body}) returns the raw response bytes (string). Connections
 * stay open for the next request. Returns {port, requests, close()}.
 */
export function startScriptedUpstream(handler) {
  const requests = [];
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1').split('\r\n');
        const [method, target] = head[0].split(' ');
        const headers = {};
        for (const l of head.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
        }
        const len = Number(headers['content-length'] || 0);
        if (buf.length < end + 4 + len) return;
        const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
        buf = buf.subarray(end + 4 + len);
        const req = { method, path: target, headers, body };
        requests.push(req);
        sock.write(Buffer.from(handler(req), 'latin1'));
      }
    });
    sock.on('error', () => {});
  });
  servers.add(server);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ port: server.address().port, requests, close: () => server.close() });
    });
  });
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
export function closedPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Runs `tokengate ARGS` to its end; returns {status, stdout, stderr}. */
export function runGate(args, env = {}) {
  const r = spawnSync(GATE_BIN, args, {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: ms(20000),
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Counts the words of a mock reply (each token is one word with a leading space). */
export function wordCount(text) {
  return (text.match(/ [^ ]+/g) || []).length;
}

// ---- budgets: the admin API, the ledger and alert webhooks -----------------------------------

/** The admin listener's port, from the gate's "admin API on" line (printed before it listens). */
export async function gateAdminPort(gate, timeoutMs = ms(10000)) {
  const m = await gate.proc.waitFor('stderr',
    /tokengate: admin API on http:\/\/127\.0\.0\.1:(\d+)/, timeoutMs, 'admin API line');
  return Number(m[1]);
}

/**
 * A request to an admin API on port. opts: token (sent as Authorization: Bearer), body (an
 * object, sent as JSON), headers. Returns what httpRequest returns.
 */
export function adminRequest(port, method, p, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  return httpRequest(port, p, { method, headers, body, timeoutMs: opts.timeoutMs });
}

/**
 * A test PKI in dir, made with the openssl command: a CA, a server certificate for IP
 * 127.0.0.1 and one for DNS other.example, both signed by it. Returns their paths and the CA's
 * PEM: {ca, caPem, cert, key, otherCert, otherKey}.
 */
export function makeTestPKI(dir) {
  const openssl = (args) => {
    const r = spawnSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=tokengate test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const leaf = (name, san) => {
    fs.writeFileSync(path.join(dir, `${name}.ext`),
      `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n` +
      `subjectAltName=${san}\n`);
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
      '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
  };
  leaf('server', 'IP:127.0.0.1');
  leaf('other', 'DNS:other.example');
  const p = (f) => path.join(dir, f);
  return {
    ca: p('ca.pem'), caPem: fs.readFileSync(p('ca.pem')),
    cert: p('server.pem'), key: p('server.key'),
    otherCert: p('other.pem'), otherKey: p('other.key'),
  };
}

/**
 * An HTTP server on 127.0.0.1 that records what is POSTed to it (an alert webhook), closed by
 * cleanup(); HTTPS with opts {cert, key} (file paths). Returns {port, url, received: [{method,
 * path, headers, body, json, encrypted}], waitFor(n, timeoutMs), close()} where waitFor resolves
 * once n requests arrived and rejects after timeoutMs, and close() stops listening.
 */
export function startWebhook(opts = {}) {
  const received = [];
  const waiters = new Set();
  const secure = Boolean(opts.cert);
  const handler = (req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= 1024 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const json = parseJsonOrUndefined(body);
      received.push({ method: req.method, path: req.url, headers: req.headers, body, json,
        encrypted: Boolean(req.socket.encrypted) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      for (const w of [...waiters]) w();
    });
  };
  const server = secure
    ? https.createServer({ cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) }, handler)
    : http.createServer(handler);
  servers.add(server);
  const waitFor = (n, timeoutMs = ms(5000)) =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (received.length >= n) {
          done();
          resolve(received.slice());
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`webhook: ${received.length} requests after ${timeoutMs} ms, ` +
          `wanted ${n}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      const close = () => new Promise((res) => {
        servers.delete(server);
        server.close(() => res());
        server.closeAllConnections?.();
      });
      resolve({ port, url: `${secure ? 'https' : 'http'}://127.0.0.1:${port}`, received, waitFor,
        close });
    });
  });
}

/**
 * Bytes waiting in the kernel's queues (written and not yet acknowledged, or received and not
 * yet read, at either end) of the established TCP connections to or from port on loopback,
 * from /proc/net/tcp (Linux).
 */
export function queuedBytes(port) {
  let sum = 0;
  for (const line of fs.readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || f[3] !== '01') continue; // 01: established
    const local = parseInt(f[1].split(':')[1], 16);
    const remote = parseInt(f[2].split(':')[1], 16);
    if (local !== port && remote !== port) continue;
    const [tx, rx] = f[4].split(':').map((h) => parseInt(h, 16));
    sum += tx + rx;
  }
  return sum;
}

/**
 * Polls get() every 100 ms until it returns the same number for stableMs; resolves with it.
 * Rejects after timeoutMs (a bound for a stuck test, not a measure).
 */
export async function waitStable(get, what, stableMs = 1000, timeoutMs = ms(30000)) {
  const t0 = Date.now();
  let last = await get();
  let since = Date.now();
  for (;;) {
    await sleep(100);
    const v = await get();
    if (v !== last) {
      last = v;
      since = Date.now();
    } else if (Date.now() - since >= stableMs) {
      return v;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what} kept changing for ${timeoutMs} ms: ${v}`);
  }
}
