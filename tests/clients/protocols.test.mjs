// The real client libraries against a running `pairrm serve` (started by tests/test_protocols.cpp,
// ProtocolClients.NpmClients, which passes PAIRRM_URL and PAIRRM_API_KEY): Cohere's SDK (cohere-ai,
// rerank v1 and v2) and OpenAI's (openai: its generic post() for vLLM's /v1/score and /v1/rerank, and its
// error classes on vLLM's error object). Every score is checked against the pointwise definition computed
// through pairrm's own /compare: s = logit(text, ref) - logit(ref, text), relevance = sigmoid(s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CohereClient, CohereClientV2, CohereError } from 'cohere-ai';
import OpenAI from 'openai';

const URL = process.env.PAIRRM_URL;
const KEY = process.env.PAIRRM_API_KEY ?? '';
if (!URL) throw new Error('set PAIRRM_URL to a running `pairrm serve` (tests/test_protocols.cpp does)');

async function post(path, body) {
  const r = await fetch(URL + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

// The pointwise score through /compare (candidate_a = the text, candidate_b = the reference, "" by default).
async function pointwise(prompt, text, ref = '') {
  const r = await post('/compare', { source: prompt, candidate_a: text, candidate_b: ref });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.score;
}
const sigmoid = (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const close = (a, b) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

const QUERY = 'Name a prime number.';
const DOCS = ['7', 'Seven is prime.', '9', '2 is the smallest prime.', 'banana'];

test('cohere-ai v2 rerank (CohereClientV2 -> /v2/rerank): relevance = sigmoid(pointwise), top_n, meta', async () => {
  const cohere = new CohereClientV2({ token: KEY, baseUrl: URL });
  const res = await cohere.rerank({ model: 'rerank-v3.5', query: QUERY, documents: DOCS, topN: 3 });
  assert.equal(typeof res.id, 'string');
  assert.equal(res.results.length, 3);
  const want = await Promise.all(DOCS.map((d) => pointwise(QUERY, d).then(sigmoid)));
  const best = [...want].sort((a, b) => b - a);
  res.results.forEach((r, k) => {
    close(r.relevanceScore, want[r.index]);
    close(r.relevanceScore, best[k]);
  });
  assert.equal(res.meta.apiVersion.version, '2');
  assert.equal(res.meta.billedUnits.searchUnits, 1);
  assert.ok(res.meta.tokens.inputTokens > 0);
});

test('cohere-ai v2 rerank of one document: its pointwise score, not a silent 0', async () => {
  const cohere = new CohereClientV2({ token: KEY, baseUrl: URL });
  const res = await cohere.rerank({ model: 'm', query: 'hello!', documents: ['hi!'] });
  assert.equal(res.results.length, 1);
  close(res.results[0].relevanceScore, sigmoid(await pointwise('hello!', 'hi!')));
  assert.notEqual(res.results[0].relevanceScore, 0.5);
});

test('cohere-ai v1 rerank (CohereClient -> /v1/rerank): returnDocuments, object documents with rankFields', async () => {
  const cohere = new CohereClient({ token: KEY, baseUrl: URL });
  const shown = await cohere.rerank({ query: QUERY, documents: DOCS, returnDocuments: true });
  assert.equal(shown.results.length, DOCS.length);
  for (const r of shown.results) {
    assert.equal(r.document.text, DOCS[r.index]);
    close(r.relevanceScore, sigmoid(await pointwise(QUERY, DOCS[r.index])));
  }
  const hidden = await cohere.rerank({ query: QUERY, documents: DOCS, returnDocuments: false, topN: 2 });
  assert.equal(hidden.results.length, 2);
  for (const r of hidden.results) assert.equal(r.document, undefined);
  assert.equal(hidden.meta.apiVersion.version, '1');

  const objects = [{ title: 'Odd', text: '7' }, { title: 'Even', text: '2' }];
  const fielded = await cohere.rerank({ query: QUERY, documents: objects, rankFields: ['title', 'text'], returnDocuments: true });
  assert.equal(fielded.results.length, objects.length);
  for (const r of fielded.results) {
    const d = objects[r.index];
    assert.deepEqual(r.document, d);
    close(r.relevanceScore, sigmoid(await pointwise(QUERY, `title: ${d.title}\ntext: ${d.text}`)));
  }
});

test('cohere-ai errors: a refused request is the SDK\'s BadRequestError carrying vLLM\'s error object', async () => {
  const cohere = new CohereClientV2({ token: KEY, baseUrl: URL, maxRetries: 0 });
  await assert.rejects(cohere.rerank({ model: 'm', query: QUERY, documents: [] }), (e) => {
    assert.ok(e instanceof CohereError, String(e));
    assert.equal(e.statusCode, 400);
    assert.equal(e.body.error.type, 'BadRequestError');
    assert.equal(e.body.error.code, 400);
    assert.equal(e.body.error.message, 'At least one text_pair element must be given');
    return true;
  });
  const wrongKey = new CohereClientV2({ token: 'wrong', baseUrl: URL, maxRetries: 0 });
  await assert.rejects(wrongKey.rerank({ model: 'm', query: QUERY, documents: DOCS }), (e) => e.statusCode === 401);
});

test('openai client -> vLLM /v1/score: 1:1, 1:N, N:N, usage', async () => {
  const client = new OpenAI({ apiKey: KEY, baseURL: `${URL}/v1`, maxRetries: 0 });
  const one = await client.post('/score', { body: { model: 'pairrm', text_1: QUERY, text_2: DOCS[0] } });
  assert.equal(one.object, 'list');
  assert.equal(one.model, 'pairrm');
  assert.equal(one.data.length, 1);
  assert.deepEqual(Object.keys(one.data[0]).sort(), ['index', 'object', 'score']);
  assert.equal(one.data[0].object, 'score');
  close(one.data[0].score, sigmoid(await pointwise(QUERY, DOCS[0])));
  assert.ok(one.usage.prompt_tokens > 0);
  assert.equal(one.usage.total_tokens, one.usage.prompt_tokens);

  const many = await client.post('/score', { body: { text_1: [QUERY], text_2: DOCS, use_activation: false } });
  assert.equal(many.data.length, DOCS.length);
  for (const [i, d] of many.data.entries()) {
    assert.equal(d.index, i);
    assert.equal(d.score, await pointwise(QUERY, DOCS[i]));
  }
  const pairs = await client.post('/score', { body: { text_1: ['hello!', 'I love you!'], text_2: ['hi!', 'I hate you!'] } });
  assert.equal(pairs.data.length, 2);
  close(pairs.data[0].score, sigmoid(await pointwise('hello!', 'hi!')));
  close(pairs.data[1].score, sigmoid(await pointwise('I love you!', 'I hate you!')));
});

test('openai client -> vLLM /v1/rerank (Jina\'s shape): results with documents and relevance_score', async () => {
  const client = new OpenAI({ apiKey: KEY, baseURL: `${URL}/v1`, maxRetries: 0 });
  const res = await client.post('/rerank', { body: { model: 'jina-reranker', query: QUERY, documents: DOCS, top_n: 2 } });
  assert.equal(res.results.length, 2);
  assert.ok(res.usage.total_tokens > 0);
  for (const r of res.results) {
    assert.equal(r.document.text, DOCS[r.index]);
    close(r.relevance_score, sigmoid(await pointwise(QUERY, DOCS[r.index])));
  }
});

test('openai client errors: vLLM\'s error object becomes OpenAI.BadRequestError with type, param, code', async () => {
  const client = new OpenAI({ apiKey: KEY, baseURL: `${URL}/v1`, maxRetries: 0 });
  await assert.rejects(client.post('/score', { body: { text_1: ['a', 'b', 'c'], text_2: ['x', 'y'] } }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.type, 'BadRequestError');
    assert.equal(e.code, 400);
    assert.equal(e.param, null);
    assert.equal(e.error.message, 'Input lengths must be either 1:1, 1:N or N:N');
    return true;
  });
  await assert.rejects(client.post('/score', { body: { text_2: 'x' } }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.equal(e.type, 'Bad Request');
    assert.equal(e.param, 'body.text_1');
    return true;
  });
  const wrongKey = new OpenAI({ apiKey: 'wrong', baseURL: `${URL}/v1`, maxRetries: 0 });
  await assert.rejects(wrongKey.post('/score', { body: { text_1: 'a', text_2: 'b' } }), (e) => e instanceof OpenAI.AuthenticationError);
});

test('OpenRLHF remote reward, built as openrlhf/utils/agent.py posts it: rewards = /compare against the labels', async () => {
  // aiohttp session.post(url, json={"query": [...], "prompts": [...], "labels": [...]}) to --remote_rm_url.
  const prompts = ['hello!', 'I love you!'];
  const responses = ['hi!', 'I hate you!'];
  const labels = ['hello to you!', null];
  const r = await post('/get_reward', { query: prompts.map((p, i) => p + responses[i]), prompts, labels });
  assert.equal(r.status, 200);
  assert.equal(r.body.rewards.length, prompts.length);
  assert.equal(r.body.scores.length, prompts.length);
  for (let i = 0; i < prompts.length; ++i) {
    const want = await pointwise(prompts[i], responses[i], labels[i] ?? '');
    assert.equal(r.body.rewards[i], want);
    close(r.body.scores[i], sigmoid(want));
  }
  assert.deepEqual(r.body.extra_logs.pairrm_prompt_match, [1, 1]);
});

test('openai models.list() (GET /v1/models): vLLM\'s model list, the served model\'s card', async () => {
  const client = new OpenAI({ apiKey: KEY, baseURL: `${URL}/v1`, maxRetries: 0 });
  const info = await (await fetch(`${URL}/info`, { headers: { authorization: `Bearer ${KEY}` } })).json();
  const page = await client.models.list();
  assert.equal(page.data.length, 1);
  const card = page.data[0];
  assert.equal(card.id, info.served_model_name);
  assert.equal(card.object, 'model');
  assert.equal(typeof card.created, 'number');
  assert.equal(card.owned_by, 'pairrm');
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);  // the SDK's auto-pagination: one page
  assert.deepEqual(ids, [info.served_model_name]);
});
