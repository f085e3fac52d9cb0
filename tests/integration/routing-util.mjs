// Helpers shared by the routing*.test.mjs files: routing gates with an admin listener (and a
// ledger when there is an org), and what the tests read of them and of the mock.

import assert from 'node:assert/strict';
import path from 'node:path';
import {
  startGate, tempDir, runGate, newId, ms, sleep, gateAdminPort, adminRequest,
} from './harness.mjs';

export const ADMIN_TOKEN = 'tga-routing-test-admin-token-01';
export const ENV = { TG_RT_ADMIN_TOKEN: ADMIN_TOKEN };
export const q = (s) => JSON.stringify(s);

export const user = (text) => [{ role: 'user', content: text }];
export const bearer = (k) => (k ? { authorization: `Bearer ${k}` } : {});

/** A text of about n tokens that no text rule matches. */
export function filler(n) {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'theta', 'kappa'];
  const out = [];
  for (let i = 0; i < n; i++) out.push(words[i % words.length]);
  return out.join(' ');
}

/**
 * The lines of a gate config: listen, one worker, the request log, admin, providers (name ->
 * {url, format}), models (name -> YAML flow text), then the extra lines.
 */
export function configText(dir, { providers, models, extra = [], org = true }) {
  const lines = [
    'listen: 127.0.0.1:0',
    'workers: 1',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'admin: { listen: 127.0.0.1:0, token_env: TG_RT_ADMIN_TOKEN }',
    'providers:',
  ];
  for (const [name, p] of Object.entries(providers))
    lines.push(`  ${name}: { base_url: ${q(p.url)}, format: ${p.format} }`);
  lines.push('models:');
  for (const [name, m] of Object.entries(models)) lines.push(`  ${name}: ${m}`);
  if (org) lines.push(`ledger: { path: ${q(path.join(dir, 'ledger.db'))} }`);
  lines.push(...extra);
  return lines.join('\n') + '\n';
}

/** Starts a gate on configText; returns it with .admin (port) and .ledgerPath. */
export async function startRoutingGate(opts) {
  const dir = tempDir('tg-route-');
  const gate = await startGate({ configText: configText(dir, opts), dir, env: ENV });
  gate.admin = await gateAdminPort(gate);
  gate.ledgerPath = path.join(dir, 'ledger.db');
  return gate;
}

export function admin(gate, method, p, body) {
  return adminRequest(gate.admin, method, p, { token: ADMIN_TOKEN, body });
}

export async function metrics(gate) {
  const r = await admin(gate, 'GET', '/metrics');
  assert.equal(r.status, 200, r.text);
  return r.text;
}

/** The value of one /metrics sample (labels in any order), or undefined. */
export function metric(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_]+)(?:\{(.*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const l of (m[2] || '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) have[l[1]] = l[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** /admin/v1/status: the gate's /status document. */
export async function status(gate) {
  const r = await admin(gate, 'GET', '/admin/v1/status');
  assert.equal(r.status, 200, r.text);
  return r.json;
}

export function targetState(st, name) {
  return (st.targets || []).find((t) => t.target === name);
}

/** `tokengate logs --db LEDGER --format json ARGS`, parsed. */
export function ledgerRows(gate, args = []) {
  const r = runGate(['logs', '--db', gate.ledgerPath, '--format', 'json', '--limit', '10000',
    ...args]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Polls the ledger until it holds rows with these ids; returns a Map id -> row. */
export async function ledgerRowsFor(gate, ids, timeoutMs = ms(15000)) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const byId = new Map(ledgerRows(gate).map((r) => [r.id, r]));
    if (ids.every((id) => byId.has(id))) return byId;
    if (Date.now() > deadline)
      throw new Error(`ledger: missing ${ids.filter((id) => !byId.has(id)).join(', ')}`);
    await sleep(50);
  }
}

/** The ledger rows of one request: its own and its attempts' ("ID/N"). */
export function rowsOf(gate, id) {
  return ledgerRows(gate).filter((r) => r.id === id || r.id.startsWith(`${id}/`));
}

/**
 * Every /_mock/usage entry noted under x-request-id id (a request sent again after a fallback
 * carries the same id, and the mock notes each: the JSON then has the key more than once).
 */
export async function mockUsages(mock, id) {
  const r = await mock.direct('/_mock/usage');
  assert.equal(r.status, 200);
  const out = [];
  const re = new RegExp(`${q(id).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\{[^{}]*\\})`, 'g');
  for (const m of r.text.matchAll(re)) out.push(JSON.parse(m[1]));
  return out;
}

export async function byModel(mock) {
  return (await mock.stats()).by_model || {};
}

/** The difference of two by_model snapshots, only the models that moved. */
export function moved(before, after) {
  const d = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] || 0)) d[k] = v - (before[k] || 0);
  return d;
}

/**
 * Sends a chat request through the gate and returns {r, id, rec, sent}: the response, the
 * request id, the log record and the model names the mock received for it.
 */
export async function send(gate, mock, body, headers = {}, opts = {}) {
  const id = newId('rt');
  const b0 = await byModel(mock);
  const r = await gate.post(opts.path || '/v1/chat/completions', body,
    { 'x-request-id': id, ...headers }, { timeoutMs: ms(30000) });
  const rec = await gate.logRecord(id, ms(10000));
  const sent = moved(b0, await byModel(mock));
  return { r, id, rec, sent };
}

/** The agents' used tokens in the day window (admin usage of agent:NAME). */
export async function usedTokens(gate, agent) {
  const r = await admin(gate, 'GET', `/admin/v1/budgets?scope=agent:${agent}&window=day&all=1`);
  assert.equal(r.status, 200, r.text);
  return r.json.budgets[0].used_tokens;
}
