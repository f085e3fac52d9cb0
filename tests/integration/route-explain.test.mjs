// `tokengate route --explain REQUEST.json`: the routing decision for a request file, without
// sending anything. Each kind of rule condition is explained when it matches and when it does
// not (with its numbers), as are the tier, the target, the candidates skipped, the estimated
// cost against the model asked for, the classifier (--label), budget state read from a ledger,
// and bad input (exit 2).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, cleanup, runGate, tempDir, BUILD } from './harness.mjs';

const FILL_BIN = path.join(BUILD, 'tests', 'ledger_fill');
let dir, config;

// ledger_fill writes a record for agent alice 30 s ago charged 49 tokens: her day budget of 50
// tokens is then 98% used
const CONFIG = (db) => `
providers:
  oa: { base_url: 'http://127.0.0.1:9/v1', format: openai }
  an: { base_url: 'http://127.0.0.1:9/v1', format: anthropic }
models:
  gpt-4o-mini: { provider: oa, price: { input: 0.15, output: 0.60 }, context_window: 128000 }
  gpt-4o: { provider: oa, price: { input: 2.50, output: 10.00 }, context_window: 128000 }
  claude-haiku-4-5: { provider: an, price: { input: 1.00, output: 5.00 }, context_window: 200000 }
  claude-sonnet-4-5: { provider: an, price: { input: 3.00, output: 15.00 }, context_window: 200000 }
  tiny: { provider: oa, price: { input: 0.01, output: 0.02 }, context_window: 40 }
tiers:
  small: [tiny]
  cheap: [gpt-4o-mini, claude-haiku-4-5]
  medium: [gpt-4o]
  expensive: [claude-sonnet-4-5, gpt-4o]
routing:
  aliases: { auto: medium }
  classifier: { target: gpt-4o-mini }
  rules:
    - name: pressure
      match: { model: auto, budget_above: 80 }
      route: { tier: down }
    - name: priority
      match: { header: { x-tokengate-priority: { regex: '^(high|urgent)$' } } }
      route: { tier: expensive }
    - name: eval-team
      match: { model: gpt-4o, team: eval }
      route: { tier: cheap, rewrite_model: true }
    - name: research
      match: { model: auto, department: research }
      route: { tier: expensive }
    - name: canary
      match: { model: auto, agent: [bob] }
      route: { split: [ { target: claude-haiku-4-5, percent: 50 }, { tier: medium, percent: 50 } ] }
    - name: big
      match: { model: auto, input_tokens: { min: 2000 } }
      route: { tier: expensive }
    - name: long-chat
      match: { model: auto, messages: { min: 6 } }
      route: { tier: expensive }
    - name: with-tools
      match: { model: auto, tools: true }
      route: { tier: expensive }
    - name: with-images
      match: { model: auto, images: true }
      route: { tier: expensive }
    - name: json
      match: { model: auto, json_output: true }
      route: { tier: cheap }
    - name: code
      match: { model: auto, last_user: { regex: '\`\`\`|\\bdef \\w' } }
      route: { tier: expensive }
    - name: chit-chat
      match: { model: auto, last_user: { keywords: [hello, thanks] } }
      route: { tier: cheap, max_output_tokens: 300 }
    - name: sorter
      match: { model: auto, system: { keywords: [classifier] } }
      route: { tier: cheap }
    - name: simple
      match: { model: auto, classifier: [simple] }
      route: { tier: cheap }
org: acme
departments:
  eng:
    teams:
      search: { agents: [alice, carol] }
      eval: { agents: [bob] }
  research:
    teams:
      lab: { agents: [dora] }
keys:
  tg-alice-key-1: alice
  tg-bob-key-01: bob
  tg-dora-key-1: dora
budgets:
  - { scope: agent:alice, window: day, tokens: 50 }
ledger: { path: '${db}' }
`;

before(() => {
  dir = tempDir('tg-route-');
  const db = path.join(dir, 'ledger.db');
  assert.ok(fs.existsSync(FILL_BIN), `${FILL_BIN} does not exist: build first`);
  const fill = spawnSync(FILL_BIN, [db], { encoding: 'utf8' });
  assert.equal(fill.status, 0, `ledger_fill failed: ${fill.stderr}`);
  config = path.join(dir, 'gate.yaml');
  fs.writeFileSync(config, CONFIG(db));
});

after(() => cleanup());

let n = 0;
function explain(body, ...args) {
  const f = path.join(dir, `req-${n++}.json`);
  fs.writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body));
  return runGate(['route', '--explain', f, '--config', config, ...args]);
}

function ok(r) {
  assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const user = (text) => ({ model: 'auto', messages: [{ role: 'user', content: text }] });

test('--help prints the usage; bad options are bad usage', () => {
  const h = runGate(['route', '--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /^usage: tokengate route --explain REQUEST\.json/);
  assert.equal(runGate(['route']).status, 2);
  assert.equal(runGate(['route', '--explain']).status, 2);
  assert.equal(runGate(['route', '--nope', 'x']).status, 2);
  const api = runGate(['route', '--explain', 'x.json', '--api', 'grpc']);
  assert.equal(api.status, 2);
  assert.match(api.stderr, /--api is chat, responses, embeddings, messages or count_tokens, not 'grpc'/);
});

test('bad input: a missing file, invalid JSON, no model: a clear error and exit 2', () => {
  let r = runGate(['route', '--explain', path.join(dir, 'nope.json'), '--config', config]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /cannot read .*nope\.json: No such file or directory/);
  r = explain('{"model": "auto", ');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /is not a JSON object \(invalid JSON\)/);
  r = explain('[1, 2]');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /is not a JSON object/);
  r = explain({ messages: [] });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /has no "model" \(a string\): there is nothing to route/);
  r = explain({ model: 'auto', max_tokens: -3, messages: [] });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /the gate would refuse .* \(400\)/);
  assert.equal(r.stdout, '');
});

test('an alias with no matching rule: every rule says why not, the alias decides', () => {
  const out = ok(explain(user('what is the capital of France?'), '--label', 'complex'));
  assert.match(out, /model asked for: auto, an alias of tier medium/);
  assert.match(out, /rule 1 pressure: no: budget: not known, the rule wants 80% used or more/);
  assert.match(out, /rule 2 priority: no: header x-tokengate-priority: absent/);
  assert.match(out, /rule 3 eval-team: no: the model asked for is 'auto', the rule wants gpt-4o/);
  assert.match(out, /rule 4 research: no: department is not known, the rule wants research/);
  assert.match(out, /rule 5 canary: no: agent is not known, the rule wants bob/);
  assert.match(out, /rule 6 big: no: input tokens \d+ < min 2000/);
  assert.match(out, /rule 7 long-chat: no: messages 1 < min 6/);
  assert.match(out, /rule 8 with-tools: no: tools: the rule wants some, the request has none/);
  assert.match(out, /rule 9 with-images: no: images: the rule wants some, the request has none/);
  assert.match(out, /rule 10 json: no: JSON output: the rule wants some, the request has none/);
  assert.match(out, /rule 11 code: no: last user message \(30 bytes\) has no match of regex/);
  assert.match(out, /rule 12 chit-chat: no: last user message \(30 bytes\) has none of the keywords hello, thanks/);
  assert.match(out, /rule 13 sorter: no: system prompt: the request has no system prompt text/);
  assert.match(out, /rule 14 simple: no: classifier label 'complex', the rule wants simple/);
  assert.match(out, /no rule gives a destination: the alias's/);
  assert.match(out, /^rule: none$/m);
  assert.match(out, /^tier: medium$/m);
  assert.match(out, /^target: gpt-4o \(provider oa\)$/m);
  // without rules the alias goes to its own destination: here the same target, no saving
  assert.match(out, /^cost at the alias's own destination, gpt-4o: \$0\.\d{6} /m);
  assert.match(out, /^saving: \$0\.000000 \(0\.0%\)$/m);
  assert.match(out, /^cost at gpt-4o: \$0\.\d{6} \(\d+ input tokens at \$2\.50\/M \+ 256 output tokens at \$10\.00\/M\)$/m);
  assert.match(out, /^budget: not known \(no agent\)$/m);
});

test('names: team, department, agent (a canary split), from the key', () => {
  // a concrete model moved by a rule that names it, for team eval
  let out = ok(explain({ model: 'gpt-4o', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }, '--key', 'tg-bob-key-01'));
  assert.match(out, /^agent: bob \(team eval, department eng\)/m);
  assert.match(out, /rule 3 eval-team: matched \(model gpt-4o; team eval\) -> tier cheap/);
  assert.match(out, /^tier: cheap$/m);
  assert.match(out, /^target: gpt-4o-mini /m);
  assert.match(out, /^rewrite_model: answers name gpt-4o$/m);
  assert.match(out, /^cost at gpt-4o-mini: \$0\.0000\d+ \(\d+ input tokens at \$0\.15\/M \+ 100 output tokens at \$0\.60\/M\)$/m);
  assert.match(out, /^cost at the model asked for, gpt-4o: \$0\.00\d+ /m);
  assert.match(out, /^saving: \$0\.\d+ \(94\.\d%\)$/m);
  // without the key, the same request stays where it was asked
  out = ok(explain({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }));
  assert.match(out, /rule 3 eval-team: no: team is not known, the rule wants eval/);
  assert.match(out, /^target: gpt-4o /m);
  out = ok(explain(user('hi'), '--key', 'tg-dora-key-1'));
  assert.match(out, /rule 4 research: matched \(model auto; department research\) -> tier expensive/);
  out = ok(explain(user('hi'), '--key', 'tg-bob-key-01'));
  assert.match(out, /rule 5 canary: matched \(model auto; agent bob\): canary split, bucket \d+ of 100 -> (target claude-haiku-4-5|tier medium)/);
  // sticky: the same agent lands on the same share every time
  const again = ok(explain(user('hi'), '--key', 'tg-bob-key-01'));
  assert.equal(again.match(/bucket \d+/)[0], out.match(/bucket \d+/)[0]);
  const bad = explain(user('hi'), '--key', 'tg-nobody-key');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /the key is not one of .* keys .*401/);
});

test('a header, by regex', () => {
  let out = ok(explain(user('hi'), '--header', 'X-Tokengate-Priority: urgent'));
  assert.match(out, /rule 2 priority: matched \(header x-tokengate-priority matches the regex\) -> tier expensive/);
  assert.match(out, /^target: claude-sonnet-4-5 \(provider an, translated\)$/m);
  out = ok(explain(user('hi'), '--header', 'x-tokengate-priority: low'));
  assert.match(out, /rule 2 priority: no: header x-tokengate-priority is 'low', the rule wants a match of '\^\(high\|urgent\)\$'/);
});

test('counts and flags: input tokens, messages, tools, images, JSON output', () => {
  let out = ok(explain(user('word '.repeat(2500))));
  assert.match(out, /rule 6 big: matched \(model auto; input tokens (\d+)\) -> tier expensive/);
  assert.ok(Number(out.match(/input tokens (\d+)\)/)[1]) >= 2000);
  const msgs = [];
  for (let i = 0; i < 6; i++) msgs.push({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i}` });
  out = ok(explain({ model: 'auto', messages: msgs }));
  assert.match(out, /rule 7 long-chat: matched \(model auto; messages 6\)/);
  out = ok(explain({ ...user('x'), tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }));
  assert.match(out, /rule 8 with-tools: matched \(model auto; tools present\)/);
  out = ok(explain({ model: 'auto', messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: 'https://example.invalid/a.png' } }] }] }));
  assert.match(out, /rule 9 with-images: matched \(model auto; images present\)/);
  out = ok(explain({ ...user('x'), response_format: { type: 'json_object' } }));
  assert.match(out, /rule 10 json: matched \(model auto; JSON output asked\) -> tier cheap/);
  // Anthropic: a tool_choice forcing a tool named like json
  out = ok(explain({ model: 'auto', max_tokens: 50, system: 'be brief', tool_choice: { type: 'tool', name: 'emit_json' }, messages: [{ role: 'user', content: 'x' }] }));
  assert.match(out, /\(anthropic\.messages, guessed from the body/);
  assert.match(out, /rule 10 json: matched/);
});

test('text: a regex and keywords over the last user message, keywords over the system prompt', () => {
  let out = ok(explain(user('please fix:\n```\ndef f(): pass\n```')));
  assert.match(out, /rule 11 code: matched \(model auto; last user message \(\d+ bytes\) matches regex/);
  out = ok(explain(user('Hello there!')));
  assert.match(out, /rule 12 chit-chat: matched \(model auto; last user message \(12 bytes\) has keyword 'hello'\) -> tier cheap/);
  assert.match(out, /^output cap: 300 \(the rule's\)$/m);
  assert.match(out, /300 output tokens at \$0\.60\/M/);
  // the saving against where the alias goes without rules (tier medium: gpt-4o)
  const chosen = Number(out.match(/^cost at gpt-4o-mini: \$(\d+\.\d+)/m)[1]);
  const dest = Number(out.match(/^cost at the alias's own destination, gpt-4o: \$(\d+\.\d+)/m)[1]);
  const saved = out.match(/^saving: \$(\d+\.\d+) \((\d+\.\d)%\)$/m);
  assert.ok(saved && chosen < dest, out);
  assert.ok(Math.abs(Number(saved[1]) - (dest - chosen)) < 2e-6, out);
  out = ok(explain({ model: 'auto', messages: [{ role: 'system', content: 'You are a classifier.' }, { role: 'user', content: 'x' }] }));
  assert.match(out, /rule 13 sorter: matched \(model auto; system prompt \(21 bytes\) has keyword 'classifier'\)/);
});

test('the classifier: without --label it says it would ask; with one it matches or not', () => {
  let out = ok(explain(user('explain the theory of relativity')));
  assert.match(out, /^classifier: rule simple would ask the classifier \(gpt-4o-mini\) for a label of the last user message; no --label given: taken as no label$/m);
  assert.match(out, /rule 14 simple: no: classifier label none \(no answer\), the rule wants simple/);
  assert.match(out, /^tier: medium$/m);
  out = ok(explain(user('explain the theory of relativity'), '--label', 'simple'));
  assert.match(out, /^classifier: label 'simple' \(--label\)$/m);
  assert.match(out, /rule 14 simple: matched \(model auto; classifier label 'simple'\) -> tier cheap/);
});

test('budget state from the ledger: tier down under pressure', () => {
  const out = ok(explain(user('explain the theory of relativity'), '--key', 'tg-alice-key-1', '--label', 'x'));
  assert.match(out, /^budget: 98\.0% used of the tightest budget on the path \(agent:alice's day token budget\), from the ledger /m);
  assert.match(out, /rule 1 pressure: matched \(model auto; budget 98\.0% used >= 80%\): one tier down, the next rules go on/);
  assert.match(out, /tier down \(rule pressure\): medium -> cheap/);
  assert.match(out, /^rule: pressure$/m);
  assert.match(out, /^tier: cheap$/m);
  // carol's path has no budget
  const carol = fs.readFileSync(config, 'utf8').replace('tg-dora-key-1: dora', 'tg-dora-key-1: dora\n  tg-carol-key1: carol');
  const cfg2 = path.join(dir, 'carol.yaml');
  fs.writeFileSync(cfg2, carol);
  const f = path.join(dir, 'carol.json');
  fs.writeFileSync(f, JSON.stringify(user('hi')));
  const r = runGate(['route', '--explain', f, '--config', cfg2, '--key', 'tg-carol-key1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^budget: no budget on the agent's path/m);
  assert.match(r.stdout, /rule 1 pressure: no: budget: not known/);
});

test('the context window guard: targets skipped, and a 400 with the numbers when none fits', () => {
  let out = explain({ model: 'tier:small', max_tokens: 10, messages: [{ role: 'user', content: 'word '.repeat(60) }] });
  assert.equal(out.status, 1, out.stdout + out.stderr);
  assert.match(out.stdout, /candidate tiny: skipped: (\d+) input \+ 10 output tokens > its context window 40/);
  assert.match(out.stdout, /^result: the gate would answer 400: the request has \d+ input tokens and asks for 10 output; the largest context window among small's targets \(tiny\) is 40$/m);
  out = explain({ model: 'tier:small', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(out.status, 0, out.stdout);
  assert.match(out.stdout, /^target: tiny /m);
  // chat and messages are translated to the other format's targets; an endpoint that cannot be
  // translated (Responses) skips them
  out = ok(explain({ model: 'tier:cheap', max_tokens: 10, system: 's', messages: [{ role: 'user', content: 'hi' }] }));
  assert.match(out, /candidate gpt-4o-mini \(tier cheap\): taken, translated/);
  out = ok(explain({ model: 'tier:cheap', input: 'hi' }));
  assert.match(out, /\(openai\.responses, guessed from the body/);
  assert.match(out, /candidate claude-haiku-4-5: skipped: it speaks the Anthropic format and this endpoint cannot be translated/);
  out = ok(explain({ model: 'tier:cheap', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }, '--api', 'count_tokens'));
  assert.match(out, /\(anthropic\.count_tokens\)/);
  assert.match(out, /candidate gpt-4o-mini: skipped: it speaks the OpenAI format and this endpoint cannot be translated/);
  assert.match(out, /^target: claude-haiku-4-5 /m);
  out = explain({ model: 'claude-haiku-4-5', input: 'hi' });
  assert.equal(out.status, 1);
  assert.match(out.stdout, /result: the gate would answer 400: model 'claude-haiku-4-5' is served in the Anthropic format, and this endpoint \(OpenAI format\) cannot be translated/);
  out = explain({ model: 'nope', messages: [] });
  assert.equal(out.status, 1);
  assert.match(out.stdout, /result: the gate would answer 404: model 'nope' is not configured on this gate/);
});
