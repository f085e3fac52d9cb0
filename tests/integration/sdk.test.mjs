// End to end: the official OpenAI and Anthropic SDKs pointed at the gate, in front of the mock.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  test, cleanup, startMock, startGate, mockProviders, closedPort, wordCount, newId, ms,
} from './harness.mjs';

let mock, gate, openai, anthropic;

before(async () => {
  mock = await startMock();
  const dead = await closedPort();
  const base = mockProviders(mock.url);
  gate = await startGate({
    config: {
      providers: {
        ...base.providers,
        'dead-openai': { base_url: `http://127.0.0.1:${dead}/v1`, format: 'openai' },
      },
      models: { ...base.models, 'dead-gpt': 'dead-openai' },
    },
  });
  openai = new OpenAI({ baseURL: `http://127.0.0.1:${gate.port}/v1`, apiKey: 'sk-test',
    maxRetries: 0, timeout: ms(30000) });
  anthropic = new Anthropic({ baseURL: `http://127.0.0.1:${gate.port}`, apiKey: 'sk-ant-test',
    maxRetries: 0, timeout: ms(30000) });
});

after(cleanup);

const messages = [{ role: 'user', content: 'Tell me something in a few words.' }];
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const anthropicTool = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const tokens = (n) => ({ headers: { 'x-mock-tokens': String(n) } });

test('OpenAI SDK: chat completion', async () => {
  const c = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages }, tokens(6));
  assert.equal(c.object, 'chat.completion');
  assert.equal(wordCount(c.choices[0].message.content), 6);
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.equal(c.usage.completion_tokens, 6);
  assert.ok(c.usage.prompt_tokens > 0);
  assert.equal((await mock.last()).headers.authorization, 'Bearer sk-test');
});

test('OpenAI SDK: chat stream with usage asked for by the client', async () => {
  const plain = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages }, tokens(5));
  const stream = await openai.chat.completions.create(
    { model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } },
    tokens(5));
  let text = '';
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      text += ch.delta?.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, plain.choices[0].message.content, 'the streamed words are the same');
  assert.equal(finish, 'stop');
  assert.ok(usage, 'the usage chunk reached the SDK');
  assert.equal(usage.completion_tokens, 5);
  assert.equal(usage.prompt_tokens, plain.usage.prompt_tokens);
});

test('OpenAI SDK: chat stream without usage sees none', async () => {
  const stream = await openai.chat.completions.create(
    { model: 'gpt-4o-mini', messages, stream: true }, tokens(3));
  let n = 0;
  for await (const chunk of stream) {
    assert.ok(!chunk.usage, 'a usage chunk the client did not ask for');
    assert.ok(chunk.choices.length > 0, 'a chunk without choices');
    n++;
  }
  assert.ok(n >= 3);
});

test('OpenAI SDK: tool calls, whole and streamed', async () => {
  const c = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [
    { role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool] });
  const call = c.choices[0].message.tool_calls?.[0];
  assert.ok(call, 'a tool call');
  assert.equal(c.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  const args = JSON.parse(call.function.arguments);
  assert.equal(typeof args, 'object');

  const stream = openai.chat.completions.stream({ model: 'gpt-4o-mini', messages: [
    { role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool] });
  const final = await stream.finalChatCompletion();
  const scall = final.choices[0].message.tool_calls?.[0];
  assert.ok(scall, 'a streamed tool call');
  assert.equal(scall.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(scall.function.arguments), args,
    'the streamed argument pieces add up to the same arguments');
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
});

test('OpenAI SDK: embeddings', async () => {
  const e = await openai.embeddings.create({ model: 'text-embedding-3-small',
    input: ['one', 'two words'], encoding_format: 'float' });
  assert.equal(e.data.length, 2);
  for (const d of e.data) {
    assert.ok(d.embedding.length > 0);
    assert.ok(d.embedding.every((x) => typeof x === 'number' && Number.isFinite(x)));
  }
  assert.notDeepEqual(e.data[0].embedding, e.data[1].embedding);
  assert.ok(e.usage.prompt_tokens > 0);
});

test('OpenAI SDK: responses, whole and streamed', async () => {
  const r = await openai.responses.create({ model: 'gpt-4o-mini', input: 'Say hi.' }, tokens(4));
  assert.equal(r.status, 'completed');
  assert.equal(wordCount(r.output_text), 4);
  assert.equal(r.usage.output_tokens, 4);

  const stream = await openai.responses.create({ model: 'gpt-4o-mini', input: 'Say hi.',
    stream: true }, tokens(4));
  let text = '';
  let completed = null;
  for await (const ev of stream) {
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') completed = ev.response;
  }
  assert.equal(text, r.output_text);
  assert.ok(completed);
  assert.equal(completed.usage.output_tokens, 4);
});

test('OpenAI SDK: errors are typed', async () => {
  await assert.rejects(
    openai.chat.completions.create({ model: 'no-such-model', messages }),
    (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 404);
      assert.equal(e.code, 'model_not_found');
      assert.match(e.requestID ?? '', /^[A-Za-z0-9._:-]{1,64}$/, 'the gate request id');
      return true;
    });
  // an Anthropic model is reached through translation, but 'n' has no counterpart there
  await assert.rejects(
    openai.chat.completions.create({ model: 'claude-haiku-4-5', messages, n: 2 }),
    (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, /'n'/);
      return true;
    });
  await assert.rejects(
    openai.chat.completions.create({ model: 'gpt-4o-mini', messages },
      { headers: { 'x-mock-fault': '429' } }),
    (e) => {
      assert.ok(e instanceof OpenAI.RateLimitError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.headers?.get?.('retry-after') ?? e.headers?.['retry-after'], '2');
      return true;
    });
  await assert.rejects(
    openai.chat.completions.create({ model: 'dead-gpt', messages }),
    (e) => {
      assert.ok(e instanceof OpenAI.InternalServerError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 502);
      assert.match(e.message, /dead-openai/);
      return true;
    });
  // an error in the middle of a stream surfaces as an APIError from the iterator
  const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages,
    stream: true }, { headers: { 'x-mock-fault': 'reset', 'x-mock-tokens': '20' } });
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) void chunk;
    })(),
    (e) => {
      assert.ok(e instanceof OpenAI.APIError, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, /mock-openai/);
      return true;
    });
});

test('Anthropic SDK: messages', async () => {
  const m = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 64,
    system: 'Be brief.', messages }, tokens(7));
  assert.equal(m.type, 'message');
  assert.equal(m.content[0].type, 'text');
  assert.equal(wordCount(m.content[0].text), 7);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.output_tokens, 7);
  const up = await mock.last();
  // this SDK version sends its key as a bearer token; older ones used x-api-key
  assert.ok(up.headers['x-api-key'] === 'sk-ant-test' ||
    up.headers.authorization === 'Bearer sk-ant-test', 'the client key passed through');
  assert.ok(up.headers['anthropic-version'], 'the SDK sends its own version');
});

test('Anthropic SDK: stream and finalMessage', async () => {
  const plain = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 64,
    messages }, tokens(5));
  const stream = anthropic.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 64, messages },
    tokens(5));
  let text = '';
  stream.on('text', (t) => (text += t));
  const final = await stream.finalMessage();
  assert.equal(text, plain.content[0].text);
  assert.equal(final.content[0].text, plain.content[0].text);
  assert.equal(final.usage.output_tokens, 5);
  assert.equal(final.usage.input_tokens, plain.usage.input_tokens);
  assert.equal(final.stop_reason, 'end_turn');
});

test('Anthropic SDK: tool_use, whole and streamed', async () => {
  const req = { model: 'claude-haiku-4-5', max_tokens: 64, tools: [anthropicTool],
    messages: [{ role: 'user', content: 'Weather in Paris?' }] };
  const m = await anthropic.messages.create(req);
  const use = m.content.find((b) => b.type === 'tool_use');
  assert.ok(use, 'a tool_use block');
  assert.equal(use.name, 'get_weather');
  assert.equal(typeof use.input, 'object');
  assert.equal(m.stop_reason, 'tool_use');

  const final = await anthropic.messages.stream(req).finalMessage();
  const suse = final.content.find((b) => b.type === 'tool_use');
  assert.ok(suse, 'a streamed tool_use block');
  assert.equal(suse.name, 'get_weather');
  assert.deepEqual(suse.input, use.input, 'the streamed JSON pieces add up to the same input');
});

test('Anthropic SDK: countTokens', async () => {
  const req = { model: 'claude-haiku-4-5', system: 'Be brief.', messages };
  const n = await anthropic.messages.countTokens(req);
  assert.ok(Number.isInteger(n.input_tokens) && n.input_tokens > 0);
  const m = await anthropic.messages.create({ ...req, max_tokens: 8 });
  assert.equal(n.input_tokens, m.usage.input_tokens, 'the count matches what a message is charged');
});

test('Anthropic SDK: errors are typed', async () => {
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-nope', max_tokens: 8, messages }),
    (e) => {
      assert.ok(e instanceof Anthropic.NotFoundError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 404);
      assert.equal(e.error?.error?.type, 'not_found_error');
      return true;
    });
  await assert.rejects(
    anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages, top_k: 5 }),
    (e) => {
      // an OpenAI model is reached through translation, but top_k has no counterpart there
      assert.ok(e instanceof Anthropic.BadRequestError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.error?.error?.type, 'invalid_request_error');
      assert.match(e.error?.error?.message ?? '', /top_k/);
      return true;
    });
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 8, messages },
      { headers: { 'x-mock-fault': '429' } }),
    (e) => e instanceof Anthropic.RateLimitError);
  // an error event in the middle of a stream
  await assert.rejects(
    anthropic.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 64, messages },
      { headers: { 'x-mock-fault': 'reset', 'x-mock-tokens': '20' } }).finalMessage(),
    (e) => {
      assert.ok(e instanceof Anthropic.APIError, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, /mock-anthropic/);
      return true;
    });
});

test('SDK requests are logged with their usage', async () => {
  const id = newId('sdk');
  const c = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages },
    { headers: { 'x-request-id': id, 'x-mock-tokens': '3' } });
  const rec = await gate.logRecord(id);
  assert.equal(rec.status, 200);
  assert.deepEqual(rec.usage, { input: c.usage.prompt_tokens, output: 3, cached: 0, cache_write: 0 });
});
