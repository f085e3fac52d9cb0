// The command line: every subcommand's --help, and listen addresses that --check and serve
// must judge alike.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, cleanup, runGate, tempDir } from './harness.mjs';

after(() => cleanup());

test('every subcommand\'s --help (and -h) prints its usage on stdout and exits 0', () => {
  for (const cmd of ['serve', 'count', 'encode', 'decode', 'usage', 'logs', 'version']) {
    for (const flag of ['--help', '-h']) {
      const r = runGate([cmd, flag]);
      assert.equal(r.status, 0, `${cmd} ${flag}: exit ${r.status}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: tokengate ${cmd}\\b`), `${cmd} ${flag}: ${r.stdout}`);
      assert.equal(r.stderr, '', `${cmd} ${flag}`);
    }
  }
  // an unknown option is still bad usage
  for (const cmd of ['serve', 'usage', 'logs', 'count']) {
    const r = runGate([cmd, '--no-such-option']);
    assert.equal(r.status, 2, `${cmd}: ${r.stderr}`);
  }
});

const PROVIDERS = 'providers:\n  p: { base_url: "http://127.0.0.1:9/v1", format: openai }\nmodels:\n  m: p\n';

test('listen: a name such as localhost is refused alike by --check and by serve, with the reason', () => {
  const dir = tempDir('tg-cli-listen-');
  const cases = [
    ['listen: localhost:0\n', /'listen' must be HOST:PORT with a numeric address.*'localhost:0' \(names are not resolved\)/],
    ['listen: 127.0.0.1:0\nadmin: { listen: "localhost:0", token_env: TG_CLI_NONE }\n',
      /admin: 'listen' must be HOST:PORT with a numeric address/],
  ];
  for (const [head, re] of cases) {
    const f = path.join(dir, 'gate.yaml');
    fs.writeFileSync(f, head + PROVIDERS);
    const check = runGate(['serve', '--config', f, '--check']);
    const serve = runGate(['serve', '--config', f]);
    for (const [what, r] of [['--check', check], ['serve', serve]]) {
      assert.equal(r.status, 1, `${what}: exit ${r.status}: ${r.stderr}`);
      assert.match(r.stderr, re, what);
      assert.doesNotMatch(r.stderr, /listening on/, what);
    }
  }
  // the command line's --listen is judged the same way, before --check answers
  const f = path.join(dir, 'ok.yaml');
  fs.writeFileSync(f, 'listen: 127.0.0.1:0\n' + PROVIDERS);
  assert.equal(runGate(['serve', '--config', f, '--check']).status, 0);
  const r = runGate(['serve', '--config', f, '--check', '--listen', 'localhost:0']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--listen must be HOST:PORT with a numeric address.*'localhost:0'/);
  const v6 = runGate(['serve', '--config', f, '--check', '--listen', '[::1]:0']);
  assert.equal(v6.status, 0, v6.stderr);
});
