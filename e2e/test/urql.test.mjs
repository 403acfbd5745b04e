// urql (@urql/core, pinned by package-lock.json) in its default configuration against the running
// server: it sends queries as GET with no Content-Type, and the caller's token in fetchOptions. Such a
// request cannot be a simple cross-site one (its Authorization header forces a CORS preflight), so
// CSRF prevention must let it through, and it must run on the caller's token, not the server's.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { cacheExchange, createClient, fetchExchange } from '@urql/core';

import { graphqlData, oceangraphURL } from '../lib/stack.mjs';

const query = '{ volumes(first: 3) { totalCount nodes { id name } } }';

// urqlClient is urql's documented default setup; `fetch` only records the requests it sends.
function urqlClient(token, sent) {
  return createClient({
    url: `${oceangraphURL()}/query`,
    exchanges: [cacheExchange, fetchExchange],
    fetchOptions: { headers: { Authorization: `Bearer ${token}` } },
    fetch: (url, init) => {
      sent.push({ url: String(url), method: init?.method ?? 'GET', headers: init?.headers });
      return fetch(url, init);
    },
  });
}

test('urql with its default configuration runs a query as GET on the caller token', async () => {
  const sent = [];
  const result = await urqlClient('urql-account', sent).query(query, {}).toPromise();

  assert.equal(result.error, undefined, `urql got an error: ${result.error}`);
  assert.equal(sent.length, 1, 'urql sent one request');
  assert.equal(sent[0].method, 'GET', 'urql sends queries as GET by default');
  assert.equal(result.data.volumes.nodes.length, 3);

  // The same query over POST with the same token answers the same account; the server's own
  // token (DIGITALOCEAN_TOKEN=e2e-account) is another account with other volumes.
  // (urql's document cache adds __typename to every selection, so ids are compared.)
  const ids = (data) => data.volumes.nodes.map((v) => v.id);
  const own = await postAs('urql-account');
  assert.deepEqual(ids(result.data), ids(own), 'GET and POST on one token see one account');
  const servers = await graphqlData(`${oceangraphURL()}/query`, query);
  assert.notDeepEqual(
    ids(result.data),
    ids(servers),
    "urql's GET ran on the server's token, not the caller's",
  );
});

test('a GET with no Authorization and no preflight header is still refused (it would run on the server token)', async () => {
  const url = new URL(`${oceangraphURL()}/query`);
  url.searchParams.set('query', query);
  const response = await fetch(url);
  assert.equal(response.status, 400, 'CSRF prevention answers 400');
  const body = await response.json();
  assert.equal(body.errors?.[0]?.extensions?.code, 'BAD_REQUEST', JSON.stringify(body));
});

async function postAs(token) {
  const response = await fetch(`${oceangraphURL()}/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}
