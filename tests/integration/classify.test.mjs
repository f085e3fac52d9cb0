// The classifier rule end to end: a gate with tiers and rules that match on the label a
// classifier model gives the last user message (routing.classifier), in front of the mock,
// which answers a classification deterministically (bench/mock-classify.c: `complex` for 60
// words or more or a code fence, `moderate` for 20 or more, else `simple`) and counts each in
// /_mock/stats by_path "(classify)". Checked: where each label sends a request (the tier, the
// target the mock saw), the label cached per agent and text, a slow (a scripted upstream that
// never answers) or failing (500) classifier falling through to the next rule at its timeout,
// the request it got (the provider's key, its own id), and the classifier's tokens charged to
// the agent (its budget) and recorded as a ledger row of its own, against the mock's usage.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  test, cleanup, startMock, startGate, tempDir, runGate, newId, ms, sleep, startScriptedUpstream,
} from './harness.mjs';

const KEYS = { a1: 'tg-cls-agent-one-000001', a2: 'tg-cls-agent-two-000002' };
const OPENAI_KEY = 'sk-cls-provider-openai-0001';
const ANTHROPIC_KEY = 'sk-ant-cls-provider-0002';
const ENV = { TG_CT_OPENAI_KEY: OPENAI_KEY, TG_CT_ANTHROPIC_KEY: ANTHROPIC_KEY };
const BUDGET = 1000000; // tokens a day, per agent
const TIMEOUT_MS = 300; // routing.classifier.timeout_ms

const SIMPLE = 'hello, how are you today?';
const COMPLEX = 'fix this:\n```c\nint main(void) { return 0 }\n```';
const MODERATE = 'explain in a few paragraphs how a hash map works, what a collision is, how ' +
  'resizing keeps lookups fast, and when a tree would be the better choice';

let mock;

before(async () => {
  mock = await startMock();
});

after(cleanup);

const q = (s) => JSON.stringify(s);

/** A gate whose classifier is `classifier` (classifier-mini: OpenAI; classifier-haiku:
 * Anthropic; classifier-scripted: an OpenAI provider at scriptedPort, a scripted upstream),
 * with rules hard (complex -> expensive), easy (simple -> cheap), rest (medium). */
async function startClassifyingGate(classifier = 'classifier-mini', scriptedPort = undefined) {
  const dir = tempDir('tg-cls-');
  const lines = [
    'listen: 127.0.0.1:0',
    'workers: 1',
    `request_log: ${q(path.join(dir, 'requests.jsonl'))}`,
    'providers:',
    `  mock-openai: { base_url: ${q(mock.url + '/v1')}, format: openai, api_key_env: TG_CT_OPENAI_KEY }`,
    `  mock-anthropic: { base_url: ${q(mock.url + '/v1')}, format: anthropic, api_key_env: TG_CT_ANTHROPIC_KEY }`,
    ...(scriptedPort ? [`  scripted: { base_url: "http://127.0.0.1:${scriptedPort}/v1", format: openai, api_key_env: TG_CT_OPENAI_KEY }`] : []),
    'models:',
    '  gpt-4o-mini: { provider: mock-openai, price: { input: 0.15, output: 0.60 } }',
    '  gpt-4.1: { provider: mock-openai, price: { input: 2.00, output: 8.00 } }',
    '  gpt-4o: { provider: mock-openai, price: { input: 2.50, output: 10.00 } }',
    '  classifier-mini: { provider: mock-openai, price: { input: 0.10, output: 0.40 } }',
    '  classifier-haiku: { provider: mock-anthropic, price: { input: 1.00, output: 5.00 } }',
    ...(scriptedPort ? ['  classifier-scripted: { provider: scripted, price: { input: 0.10, output: 0.40 } }'] : []),
    'tiers:',
    '  cheap: [gpt-4o-mini]',
    '  medium: [gpt-4.1]',
    '  expensive: [gpt-4o]',
    'routing:',
    '  aliases: { auto: medium }',
    `  classifier: { target: ${classifier}, timeout_ms: ${TIMEOUT_MS} }`,
    '  rules:',
    '    - name: hard',
    '      match: { model: auto, classifier: [complex] }',
    '      route: { tier: expensive }',
    '    - name: easy',
    '      match: { model: auto, classifier: [simple] }',
    '      route: { tier: cheap }',
    '    - name: rest',
    '      match: { model: auto }',
    '      route: { tier: medium }',
    'org: acme',
    'departments:',
    '  research:',
    '    teams:',
    '      search: { agents: [a1, a2] }',
    'keys:',
    ...Object.entries(KEYS).map(([agent, k]) => `  ${k}: ${agent}`),
    'budgets:',
    `  - { scope: "agent:a1", window: day, tokens: ${BUDGET} }`,
    `  - { scope: "agent:a2", window: day, tokens: ${BUDGET} }`,
    `ledger: { path: ${q(path.join(dir, 'ledger.db'))} }`,
  ];
  const gate = await startGate({ configText: lines.join('\n') + '\n', dir, env: ENV });
  gate.ledgerPath = path.join(dir, 'ledger.db');
  return gate;
}

/** A chat request for "auto" from agent with user text; returns {r, id, rec}. */
async function ask(gate, agent, text) {
  const id = newId('cls');
  const r = await gate.post('/v1/chat/completions', {
    model: 'auto',
    max_tokens: 20,
    messages: [{ role: 'user', content: text }],
  }, { authorization: `Bearer ${KEYS[agent]}`, 'x-request-id': id });
  assert.equal(r.status, 200, r.text);
  const rec = await gate.logRecord(id);
  return { r, id, rec };
}

async function classifications() {
  return (await mock.stats()).by_path['(classify)'] ?? 0;
}

/** `tokengate logs --db LEDGER --format json`, by id, once every id in ids is there. */
async function ledgerRows(gate, ids, timeoutMs = ms(15000)) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = runGate(['logs', '--db', gate.ledgerPath, '--format', 'json', '--limit', '1000']);
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const byId = new Map(rows.map((row) => [row.id, row]));
    if (ids.every((id) => byId.has(id))) return byId;
    if (Date.now() > deadline)
      throw new Error(`ledger: missing ${ids.filter((id) => !byId.has(id)).join(', ')}`);
    await sleep(50);
  }
}

/** The mock's /_mock/usage entry of x-request-id id, waiting for it. */
async function mockUsage(id) {
  const deadline = Date.now() + ms(5000);
  for (;;) {
    const u = await mock.usageOf(id);
    if (u) return u;
    if (Date.now() > deadline) throw new Error(`mock: no usage entry for ${id}`);
    await sleep(20);
  }
}

test('each label goes where its rule sends it: complex to expensive, simple to cheap, moderate on', async () => {
  const gate = await startClassifyingGate();
  const before = await classifications();

  const hard = await ask(gate, 'a1', COMPLEX);
  assert.equal(hard.r.json.model, 'gpt-4o');
  assert.equal(hard.rec.route.rule, 'hard');
  assert.equal(hard.rec.route.tier, 'expensive');
  assert.equal(hard.rec.classifier.label, 'complex');
  assert.equal(hard.rec.classifier.outcome, 'answered');
  assert.equal(hard.rec.classifier.model, 'classifier-mini');

  const easy = await ask(gate, 'a1', SIMPLE);
  assert.equal(easy.r.json.model, 'gpt-4o-mini');
  assert.equal(easy.rec.route.rule, 'easy');
  assert.equal(easy.rec.route.tier, 'cheap');
  assert.equal(easy.rec.classifier.label, 'simple');

  const mid = await ask(gate, 'a1', MODERATE);
  assert.equal(mid.r.json.model, 'gpt-4.1');
  assert.equal(mid.rec.route.rule, 'rest');
  assert.equal(mid.rec.classifier.label, 'moderate');

  assert.equal(await classifications(), before + 3);
  // the classifier's answer was one word, billed as one token
  const u = await mockUsage(`${easy.id}/classify`);
  assert.equal(u.output, 1);
  await gate.stop();
});

test('the label is cached per agent: two identical prompts of one agent ask once, of two agents twice', async () => {
  const gate = await startClassifyingGate();
  const text = `${SIMPLE} (${newId('text')})`;
  const before = await classifications();

  const first = await ask(gate, 'a1', text);
  assert.equal(first.rec.classifier.outcome, 'answered');
  const second = await ask(gate, 'a1', text);
  assert.equal(second.rec.classifier.outcome, 'cached');
  assert.equal(second.rec.classifier.label, 'simple');
  assert.equal(second.rec.route.rule, 'easy');
  assert.equal(await classifications(), before + 1);

  const other = await ask(gate, 'a2', text);
  assert.equal(other.rec.classifier.outcome, 'answered');
  assert.equal(await classifications(), before + 2);

  const rows = await ledgerRows(gate, [first.id, `${first.id}/classify`, `${other.id}/classify`]);
  assert.ok(!rows.has(`${second.id}/classify`), 'a cached label costs nothing');
  await gate.stop();
});

test('the classifier\'s tokens are charged to the agent and recorded as a ledger row of their own', async () => {
  const gate = await startClassifyingGate();
  const text = `${COMPLEX} // ${newId('text')}`;

  const first = await ask(gate, 'a1', text);
  const cls = await mockUsage(`${first.id}/classify`);
  const main = await mockUsage(first.id);
  const rows = await ledgerRows(gate, [first.id, `${first.id}/classify`]);
  const row = rows.get(`${first.id}/classify`);
  assert.equal(row.endpoint, 'classifier');
  assert.equal(row.model, 'classifier-mini');
  assert.equal(row.agent, 'a1');
  assert.equal(row.decision, 'admitted');
  assert.equal(row.status, 200);
  assert.equal(row.in_usage, cls.input);
  assert.equal(row.out_usage, cls.output);
  assert.equal(row.tokens_charged, cls.input + cls.output);
  // dollars at the classifier's own price: input 0.10, output 0.40 USD per million tokens,
  // that is 100 and 400 nano-dollars a token
  assert.equal(row.cost_nusd, cls.input * 100 + cls.output * 400, JSON.stringify(row));
  assert.equal(first.rec.classifier.input_tokens, cls.input);
  assert.equal(first.rec.classifier.output_tokens, cls.output);
  const mainRow = rows.get(first.id);
  assert.equal(mainRow.tokens_charged, main.input + main.output);
  assert.equal(row.key_id, mainRow.key_id);

  // the agent's budget holds both: the next request (same text: cached, nothing more asked)
  // sees what is left after the request and its classification
  const second = await ask(gate, 'a1', text);
  assert.equal(second.rec.classifier.outcome, 'cached');
  assert.equal(Number(second.r.headers['x-tokengate-budget-remaining']),
    BUDGET - mainRow.tokens_charged - row.tokens_charged);
  await gate.stop();
});

test('a slow classifier falls through to the next rule at its timeout, charged its input', async () => {
  // a classifier that never answers: the provider has the prompt, no word comes back
  const stalled = await startScriptedUpstream(() => '');
  const gate = await startClassifyingGate('classifier-scripted', stalled.port);
  const text = `${SIMPLE} ${newId('slow')}`;
  const slow = await ask(gate, 'a1', text);
  assert.equal(stalled.requests.length, 1);
  const sent = stalled.requests[0];
  assert.equal(sent.path, '/v1/chat/completions');
  assert.equal(sent.headers.authorization, `Bearer ${OPENAI_KEY}`); // never the agent's key
  assert.equal(sent.headers['x-request-id'], `${slow.id}/classify`);
  assert.ok(JSON.parse(sent.body).messages[0].content.startsWith(
    'Classify the complexity of the user\'s request.'));
  assert.equal(slow.rec.classifier.outcome, 'timeout');
  assert.equal(slow.rec.classifier.label, '');
  assert.equal(slow.rec.route.rule, 'rest'); // easy needs the label: not matched
  assert.equal(slow.r.json.model, 'gpt-4.1');
  assert.ok(slow.rec.classifier.ms >= TIMEOUT_MS - 10, JSON.stringify(slow.rec.classifier));
  assert.equal(slow.rec.classifier.output_tokens, 0);
  assert.ok(slow.rec.classifier.input_tokens > 0);
  const rows = await ledgerRows(gate, [`${slow.id}/classify`]);
  const row = rows.get(`${slow.id}/classify`);
  assert.equal(row.status, 504);
  assert.equal(row.endpoint, 'classifier');
  assert.equal(row.tokens_charged, slow.rec.classifier.input_tokens);
  assert.equal(row.in_own, slow.rec.classifier.input_tokens);
  // no label was cached: the next identical request asks again
  const again = await ask(gate, 'a1', text);
  assert.equal(again.rec.classifier.outcome, 'timeout');
  assert.equal(stalled.requests.length, 2);
  await gate.stop();
  stalled.close();
});

test('a classifier the mock delays past the timeout: the request goes on by the next rule', async () => {
  const gate = await startClassifyingGate();
  const delay = ms(3000);
  const rule = (r) => mock.direct('/_mock/models', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r),
  });
  const set = await rule({ model: 'classifier-mini', delay_ms: delay });
  assert.equal(set.status, 200, set.text);
  try {
    const slow = await ask(gate, 'a2', `${COMPLEX} ${newId('delayed')}`);
    assert.equal(slow.rec.classifier.outcome, 'timeout');
    assert.equal(slow.rec.classifier.label, '');
    assert.equal(slow.rec.route.rule, 'rest'); // not hard: no label came
    assert.equal(slow.r.json.model, 'gpt-4.1');
    // the gate gave up at its timeout, before the mock's delay was over
    assert.ok(slow.rec.classifier.ms < delay, JSON.stringify(slow.rec.classifier));
    const rows = await ledgerRows(gate, [`${slow.id}/classify`]);
    assert.equal(rows.get(`${slow.id}/classify`).status, 504);
    assert.equal(rows.get(`${slow.id}/classify`).tokens_charged, slow.rec.classifier.input_tokens);
  } finally {
    await rule({ model: 'classifier-mini' }); // a rule with only the model: removed
  }
  await gate.stop();
});

test('a failing classifier (500) falls through to the next rule, nothing charged', async () => {
  const body = '{"error":{"message":"the classifier broke","type":"server_error"}}';
  const failing = await startScriptedUpstream(() => 'HTTP/1.1 500 Internal Server Error\r\n' +
    `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
  const gate = await startClassifyingGate('classifier-scripted', failing.port);
  const failed = await ask(gate, 'a1', `${COMPLEX} ${newId('fail')}`);
  assert.equal(failing.requests.length, 1);
  assert.equal(failed.rec.classifier.outcome, 'failed');
  assert.equal(failed.rec.classifier.label, '');
  assert.equal(failed.rec.classifier.error, 'the classifier answered status 500');
  assert.equal(failed.rec.route.rule, 'rest');
  assert.equal(failed.r.json.model, 'gpt-4.1');
  const rows = await ledgerRows(gate, [`${failed.id}/classify`]);
  assert.equal(rows.get(`${failed.id}/classify`).status, 500);
  assert.equal(rows.get(`${failed.id}/classify`).tokens_charged, 0);
  await gate.stop();
  failing.close();
});

test('a classifier in the Anthropic format is asked in its own format', async () => {
  const gate = await startClassifyingGate('classifier-haiku');
  const hard = await ask(gate, 'a2', `${COMPLEX} ${newId('anth')}`);
  assert.equal(hard.rec.classifier.model, 'classifier-haiku');
  assert.equal(hard.rec.classifier.outcome, 'answered');
  assert.equal(hard.rec.route.rule, 'hard');
  const cls = await mockUsage(`${hard.id}/classify`);
  assert.equal(hard.rec.classifier.input_tokens, cls.input);
  await gate.stop();
});
