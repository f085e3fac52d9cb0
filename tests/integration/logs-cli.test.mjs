// `tokengate logs` end to end: a ledger written through the ledger module by the test helper
// tests/unit/budget/ledger_fill.c (five known records: r1 and r2 in January 2026, r3 30 s old, r4 3 h
// old, r5 2 days old), then the real binary run with each filter and format, its exit status,
// its rows and its complaints about bad options.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, cleanup, runGate, tempDir, BUILD } from './harness.mjs';

const FILL_BIN = path.join(BUILD, 'tests', 'ledger_fill');
let db;

before(() => {
  assert.ok(fs.existsSync(FILL_BIN), `${FILL_BIN} does not exist: build first`);
  db = path.join(tempDir('tg-logs-'), 'ledger.db');
  const r = spawnSync(FILL_BIN, [db], { encoding: 'utf8' });
  assert.equal(r.status, 0, `ledger_fill failed: ${r.stderr}`);
});

after(() => cleanup());

function logs(...args) {
  return runGate(['logs', '--db', db, ...args]);
}

/** The ids of the rows of a JSON-lines run, in order. */
function jsonIds(...args) {
  const r = logs('--format', 'json', ...args);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l).id);
}

/** A table's rows split into cells on runs of two or more spaces. */
function table(...args) {
  const r = logs(...args);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  return { lines, rows: lines.map((l) => l.trim().split(/ {2,}/)) };
}

/** RFC 4180 fields of one CSV line (no line breaks inside fields in this data). */
function csvFields(line) {
  const out = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        if (line[i] === '"' && line[i + 1] === '"') { v += '"'; i += 2; }
        else if (line[i] === '"') { i++; break; }
        else v += line[i++];
      }
      out.push(v);
      i++; // the comma
    } else {
      const j = line.indexOf(',', i);
      const end = j < 0 ? line.length : j;
      out.push(line.slice(i, end));
      i = end + 1;
    }
  }
  return out;
}

test('table: newest first, aligned, own counts marked with ~, cost in dollars', () => {
  const { lines, rows } = table();
  assert.deepEqual(rows[0], ['TIME', 'ID', 'AGENT', 'TEAM', 'MODEL', 'SERVED', 'TIER', 'STATUS',
    'IN', 'OUT', 'COST', 'LATENCY_MS', 'DECISION', 'CACHE']);
  assert.deepEqual(rows.slice(1).map((r) => r[1]), ['r3', 'r4', 'r5', 'r2', 'r1']);
  const byId = Object.fromEntries(rows.slice(1).map((r) => [r[1], r]));
  assert.deepEqual(byId.r1, ['2026-01-10T08:00:00Z', 'r1', 'alice', 'search', 'gpt-4.1',
    'gpt-4.1-2025-04-14', 'cheap', '200', '1200', '300', '$0.000123', '250', 'admitted', 'miss']);
  assert.deepEqual(byId.r2, ['2026-01-11T09:30:00Z', 'r2', 'bob', 'ads', 'claude-haiku-4-5', '-',
    '-', '429', '~50', '-', '$0.000000', '0', 'rejected', '-']);
  assert.deepEqual(byId.r3.slice(6),
    ['expensive', '502', '~42', '~7', '$0.000000', '2', 'error', 'bypass']);
  assert.equal(byId.r5[13], 'hit');
  assert.deepEqual(byId.r4.slice(1, 8), ['r4', '-', '-', '-', '-', '-', '401']);
  assert.equal(byId.r5[10], '$1.500000');
  // aligned: every column starts at the same offset on every line
  const col = (l, text) => l.indexOf(text);
  const idCol = col(lines[0], 'ID');
  for (const [i, id] of ['r3', 'r4', 'r5', 'r2', 'r1'].entries())
    assert.equal(col(lines[i + 1], ` ${id} `) + 1, idCol, `line ${i + 1}: ${lines[i + 1]}`);
  const decisionCol = col(lines[0], 'DECISION');
  for (const l of lines.slice(1)) assert.match(l.slice(decisionCol), /^[a-z]/, l);
});

test('filters: agent, team, department, model, status, limit', () => {
  assert.deepEqual(jsonIds('--agent', 'alice'), ['r3', 'r1']);
  assert.deepEqual(jsonIds('--team', 'search'), ['r3', 'r5', 'r1']);
  assert.deepEqual(jsonIds('--department', 'sales'), ['r2']);
  assert.deepEqual(jsonIds('--model', 'gpt-4.1'), ['r5', 'r1']);
  assert.deepEqual(jsonIds('--status', '200'), ['r5', 'r1']);
  assert.deepEqual(jsonIds('--status', '4xx'), ['r4', 'r2']);
  assert.deepEqual(jsonIds('--status', '5xx'), ['r3']);
  assert.deepEqual(jsonIds('--status', '2xx', '--team', 'search', '--agent', 'carol'), ['r5']);
  assert.deepEqual(jsonIds('--limit', '2'), ['r3', 'r4']);
  assert.deepEqual(jsonIds('--agent', 'nobody'), []);
  // a value that would change SQL pasted into a query is just a value here
  assert.deepEqual(jsonIds('--agent', "alice' OR '1'='1"), []);
});

test('since and until: ISO 8601 UTC times, dates and ages', () => {
  assert.deepEqual(jsonIds('--since', '1h'), ['r3']);
  assert.deepEqual(jsonIds('--since', '15m'), ['r3']);
  assert.deepEqual(jsonIds('--since', '4h'), ['r3', 'r4']);
  assert.deepEqual(jsonIds('--since', '3d'), ['r3', 'r4', 'r5']);
  // r5 is 2 days (172800 s) old when the ledger is filled: 10 minutes to spare, not 100 s
  assert.deepEqual(jsonIds('--since', '173400s'), ['r3', 'r4', 'r5']);
  assert.deepEqual(jsonIds('--until', '1d'), ['r5', 'r2', 'r1']);
  assert.deepEqual(jsonIds('--since', '2026-01-11'), ['r3', 'r4', 'r5', 'r2']);
  assert.deepEqual(jsonIds('--since', '2026-01-10T08:00:00Z', '--until', '2026-01-11T09:30:00Z'),
    ['r1']);
  assert.deepEqual(jsonIds('--since', '2026-01-10T08:00:01Z', '--until', '2026-01-12'), ['r2']);
});

test('json: one object per line with every field, null for none', () => {
  const r = logs('--format', 'json', '--agent', 'alice', '--limit', '1', '--since', '2026-01-01');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1);
  const o = JSON.parse(lines[0]);
  assert.equal(o.id, 'r3');
  assert.equal(o.stream, true);
  assert.equal(o.in_usage, null);
  assert.equal(o.in_own, 42);
  assert.equal(o.error, 'upstream said "no", then closed');
  const all = logs('--format', 'json').stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const r1 = all.find((x) => x.id === 'r1');
  const r4 = all.find((x) => x.id === 'r4');
  assert.deepEqual(r1, {
    time: '2026-01-10T08:00:00.250Z', ts: 1768032000.25, id: 'r1', key_id: 'key_0123456789ab',
    agent: 'alice', team: 'search', department: 'eng', endpoint: '/v1/chat/completions',
    model: 'gpt-4.1', served_model: 'gpt-4.1-2025-04-14', provider: 'openai', status: 200,
    stream: false, in_own: 1190, out_own: 298, in_usage: 1200, out_usage: 300, cached: 1024,
    cache_write: 0, tokens_charged: 1500, cost_nusd: 123000, reserved_tokens: 2000,
    latency_us: 250400, decision: 'admitted', error: null, rule: 'chit-chat', tier: 'cheap',
    attempts: '[{"target":"gpt-4o-mini","reason":"status 503","status":503}]',
    translation: 'openai.chat->anthropic.messages', cache: 'miss', saved_tokens: 0,
    saved_nusd: 0, prompt_saved_nusd: 2700, route_saved_nusd: 45000, cache_write_1h: 0,
  });
  const r5 = all.find((x) => x.id === 'r5');
  assert.deepEqual([r5.cache, r5.saved_tokens, r5.saved_nusd], ['hit', 32, 777000]);
  assert.equal(r4.cache, null);
  assert.equal(r4.agent, null);
  assert.equal(r4.out_usage, null);
});

test('--tier and --rule: the rows routed by that tier or rule', () => {
  assert.deepEqual(jsonIds('--tier', 'cheap'), ['r1']);
  assert.deepEqual(jsonIds('--tier', 'expensive'), ['r3']);
  assert.deepEqual(jsonIds('--rule', 'code'), ['r3']);
  assert.deepEqual(jsonIds('--rule', 'chit-chat', '--tier', 'cheap'), ['r1']);
  assert.deepEqual(jsonIds('--rule', 'chit-chat', '--tier', 'expensive'), []);
  assert.deepEqual(jsonIds('--tier', 'no-such-tier'), []);
});

test('--cache: the rows the response cache hit, missed or bypassed', () => {
  assert.deepEqual(jsonIds('--cache', 'hit'), ['r5']);
  assert.deepEqual(jsonIds('--cache', 'miss'), ['r1']);
  assert.deepEqual(jsonIds('--cache', 'bypass'), ['r3']);
  assert.deepEqual(jsonIds('--cache', 'hit', '--team', 'ads'), []);
});

test('a ledger of schema 3 is still read: no cache outcome, no savings; usage --savings says why not', () => {
  const dir = tempDir('tg-logs-v3-');
  const old = path.join(dir, 'ledger.db');
  const fill = spawnSync(FILL_BIN, [old, '--schema3'], { encoding: 'utf8' });
  assert.equal(fill.status, 0, `ledger_fill --schema3 failed: ${fill.stderr}`);
  const { rows } = (() => {
    const r = runGate(['logs', '--db', old]);
    assert.equal(r.status, 0, r.stderr);
    return { rows: r.stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/ {2,}/)) };
  })();
  assert.equal(rows[0].at(-1), 'CACHE');
  assert.deepEqual(rows.slice(1).map((r) => r.at(-1)), ['-', '-', '-', '-', '-']);
  const j = runGate(['logs', '--db', old, '--format', 'json']);
  const r1 = j.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((x) => x.id === 'r1');
  assert.deepEqual([r1.cache, r1.saved_nusd, r1.route_saved_nusd, r1.cost_nusd], [null, 0, 0, 123000]);
  assert.equal(runGate(['logs', '--db', old, '--cache', 'miss', '--format', 'json']).stdout, '');
  const cfg = path.join(dir, 'gate.yaml');
  fs.writeFileSync(cfg, [
    'listen: 127.0.0.1:0',
    'providers: { openai: { base_url: "http://127.0.0.1:9/v1", format: openai } }',
    'models: { gpt-4.1: openai }',
    `ledger: { path: ${JSON.stringify(old)} }`,
    'org: acme',
    'departments: { eng: { teams: { search: { agents: { alice: {} } } } } }',
  ].join('\n') + '\n');
  const u = runGate(['usage', '--config', cfg, '--savings']);
  assert.equal(u.status, 1, u.stdout + u.stderr);
  assert.match(u.stderr, /older than its savings columns \(schema 4\)/);
});

test('csv: a header and RFC 4180 quoting', () => {
  const r = logs('--format', 'csv');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  const head = csvFields(lines[0]);
  assert.equal(head[0], 'time');
  assert.ok(head.includes('cost_nusd') && head.includes('error'));
  assert.equal(lines.length, 6);
  const rows = lines.slice(1).map(csvFields).map((f) => Object.fromEntries(head.map((h, i) => [h, f[i]])));
  for (const row of rows) assert.equal(Object.keys(row).length, head.length);
  assert.deepEqual(rows.map((x) => x.id), ['r3', 'r4', 'r5', 'r2', 'r1']);
  assert.equal(rows[0].error, 'upstream said "no", then closed');
  assert.match(lines[1], /,"upstream said ""no"", then closed",code,expensive,,,bypass,0,0,0,0,0$/);
  assert.equal(rows[4].tier, 'cheap');
  assert.equal(rows[4].attempts, '[{"target":"gpt-4o-mini","reason":"status 503","status":503}]');
  assert.equal(rows[1].agent, '');
  assert.equal(rows[4].cost_nusd, '123000');
  assert.equal(rows[4].time, '2026-01-10T08:00:00.250Z');
});

test('bad options: exit 2 with a message naming the option and the expected forms', () => {
  const cases = [
    [['--since', 'yesterday'], /--since 'yesterday': expected ISO 8601 UTC .*30s, 15m, 2h, 7d/],
    [['--until', '2026-02-30'], /--until '2026-02-30': expected ISO 8601/],
    [['--since', '2026-11-23T10:00:00'], /--since .*expected ISO 8601/],
    [['--since', '5y'], /--since '5y'/],
    [['--status', '6xx'], /--status '6xx': expected a code \(100 to 599\) or a class/],
    [['--status', '20'], /--status '20'/],
    [['--limit', '0'], /--limit '0': expected a whole number/],
    [['--limit', 'ten'], /--limit 'ten'/],
    [['--format', 'xml'], /--format 'xml': expected table, json or csv/],
    [['--colour'], /unknown option '--colour'/],
    [['--agent'], /--agent needs a value/],
    [['--cache', 'maybe'], /--cache 'maybe': expected hit, miss or bypass/],
  ];
  for (const [args, re] of cases) {
    const r = logs(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stdout, '');
  }
});

test('a missing or foreign database: exit 1 with the path and the reason', () => {
  const dir = tempDir('tg-logs-missing-');
  const missing = path.join(dir, 'none.db');
  let r = runGate(['logs', '--db', missing]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`${missing}.*No such file or directory`));
  assert.ok(!fs.existsSync(missing), 'logs must not create a database');

  const foreign = path.join(dir, 'foreign.db');
  fs.writeFileSync(foreign, 'not a database at all, but long enough to be read as one\n');
  r = runGate(['logs', '--db', foreign]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not a tokengate ledger/);
});

test('the default database is state/ledger.db under the working directory', () => {
  const dir = tempDir('tg-logs-cwd-');
  fs.mkdirSync(path.join(dir, 'state'));
  fs.copyFileSync(db, path.join(dir, 'state', 'ledger.db'));
  const r = spawnSync(path.join(BUILD, 'tokengate'), ['logs', '--format', 'json', '--limit', '1'],
    { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).id, 'r3');
});

test('csv and table: text from clients is escaped (controls, C1, bidi, bytes not UTF-8), and a field that starts a formula gets a leading quote', () => {
  const hostileDb = path.join(tempDir('tg-logs-hostile-'), 'ledger.db');
  const fill = spawnSync(FILL_BIN, [hostileDb, '--hostile'], { encoding: 'utf8' });
  assert.equal(fill.status, 0, `ledger_fill --hostile failed: ${fill.stderr}`);
  const run = (...args) => {
    const r = spawnSync(path.join(BUILD, 'tokengate'), ['logs', '--db', hostileDb, ...args]);
    assert.equal(r.status, 0, String(r.stderr));
    return r.stdout; // bytes, not decoded: what a terminal or a spreadsheet would get
  };
  const raw = { model: 'gpt-4.1\x1b[31mred\x1b[0m\r\nfake,row\x7f' };
  for (const format of ['csv', 'table']) {
    const out = run('--format', format);
    const lines = out.toString('latin1').split('\n');
    assert.equal(lines.at(-1), '', `${format}: the output does not end with a line break`);
    assert.equal(lines.length, 3, `${format}: a line break inside a field made a new row:\n${out}`);
    for (const [i, b] of out.entries()) {
      assert.ok(b === 0x0a || (b >= 0x20 && b !== 0x7f), `${format}: control byte 0x${b.toString(16)} at ${i}`);
    }
    const text = out.toString('utf8');
    assert.ok(!text.includes('\u009b') && !text.includes('\u202e'), `${format}: a C1 control or a bidi override was written raw`);
    assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(out),
      `${format}: a byte that is not UTF-8 was written raw`);
  }
  const csv = run('--format', 'csv').toString('utf8').split('\n').filter(Boolean);
  const head = csvFields(csv[0]);
  const row = Object.fromEntries(head.map((h, i) => [h, csvFields(csv[1])[i]]));
  assert.equal(row.model, 'gpt-4.1\\x1b[31mred\\x1b[0m\\r\\nfake,row\\x7f');
  assert.notEqual(row.model, raw.model);
  assert.equal(row.served_model, "'+1\\u009b2J\\u202eevil");
  assert.equal(row.provider, 'openai\\x9b\\xff');
  assert.equal(row.agent, "'-2+3");
  assert.equal(row.team, "'@SUM(A1)");
  assert.equal(row.error, "'=cmd|' /C calc'!A0\\x07\\t\"q\"");
  assert.equal(row.status, '200');
  assert.equal(row.tokens_charged, '2');
  const table = run().toString('utf8').split('\n');
  assert.match(table[1], /gpt-4\.1\\x1b\[31mred\\x1b\[0m\\r\\nfake,row\\x7f {2}\+1\\u009b2J\\u202eevil /);
  // json keeps the text as it was (JSON escapes what it must)
  const j = JSON.parse(run('--format', 'json').toString('utf8'));
  assert.equal(j.model, raw.model);
});
