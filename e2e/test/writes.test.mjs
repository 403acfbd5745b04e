// The write side end to end, with the real npm clients a frontend uses for subscriptions:
// graphql-ws (WebSocket, graphql-transport-ws protocol) and graphql-sse (Server-Sent Events).
// A volume is created, attached to one of the account's Droplets while graphql-ws watches the action
// go IN_PROGRESS → COMPLETED, its dropletIds change, it is detached while graphql-sse watches, and
// deleted. Then 50 clients watch one action at once, and the sandbox counts one poller's calls.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createClient as createSSEClient } from 'graphql-sse';
import { createClient as createWSClient } from 'graphql-ws';
import WebSocket from 'ws';

import { oceangraphURL, resetSandboxStats, sandboxStats } from '../lib/stack.mjs';

// A token of its own: the sandbox keeps one account per token, so this test's writes touch no other test.
const token = 'e2e-writes';

async function gql(query, variables) {
  const response = await fetch(`${oceangraphURL()}/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `HTTP ${response.status}: ${text}`);
  const body = JSON.parse(text);
  assert.equal(body.errors, undefined, `errors: ${text}\nfor: ${query}`);
  return body.data;
}

const wsURL = () => `${oceangraphURL().replace(/^http/, 'ws')}/query`;

/** A graphql-ws client that sends the token in connection_init, as a browser must. */
function wsClient() {
  return createWSClient({
    url: wsURL(),
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
}

/** A graphql-sse client (distinct connections mode) that sends the token as a header. */
function sseClient() {
  return createSSEClient({
    url: `${oceangraphURL()}/query`,
    headers: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
}

/** Runs one subscription to its end and returns every payload it delivered. */
function collect(client, query, variables) {
  return new Promise((resolve, reject) => {
    const payloads = [];
    client.subscribe(
      { query, variables },
      {
        next: (payload) => payloads.push(payload),
        error: (err) => reject(err instanceof Error ? err : new Error(JSON.stringify(err))),
        complete: () => resolve(payloads),
      },
    );
  });
}

const progress = `subscription Progress($volumeId: ID!, $actionId: ID!) {
  volumeActionProgress(volumeId: $volumeId, actionId: $actionId) { id type status completedAt volume { id dropletIds } }
}`;

const progressLight = `subscription Progress($volumeId: ID!, $actionId: ID!) {
  volumeActionProgress(volumeId: $volumeId, actionId: $actionId) { id status }
}`;

/** One of the account's Droplets (one a volume is attached to) and its region. */
async function someDroplet() {
  const data = await gql('{ volumes(first: 200) { nodes { dropletIds region { slug } } } }');
  const attached = data.volumes.nodes.find((v) => v.dropletIds.length > 0);
  assert.ok(attached, 'the sandbox account has no attached volume to learn a Droplet from');
  return { dropletId: attached.dropletIds[0], region: attached.region.slug };
}

function statuses(payloads) {
  return payloads.map((p) => {
    assert.equal(p.errors, undefined, `a subscription event carried errors: ${JSON.stringify(p)}`);
    return p.data.volumeActionProgress.status;
  });
}

test('create, attach (graphql-ws), detach (graphql-sse), delete', async () => {
  const { dropletId, region } = await someDroplet();
  const name = `e2e-${Date.now().toString(36)}`;

  const created = await gql(
    `mutation($input: CreateVolumeInput!) { createVolume(input: $input) { volume { id name sizeGigabytes dropletIds } userErrors { field code message } } }`,
    { input: { name, region, sizeGigabytes: 10, idempotencyKey: `${name}-create` } },
  );
  assert.deepEqual(created.createVolume.userErrors, []);
  const volume = created.createVolume.volume;
  assert.equal(volume.name, name);
  assert.deepEqual(volume.dropletIds, []);

  const attached = await gql(
    `mutation($input: AttachVolumeInput!) { attachVolume(input: $input) { action { id type status } userErrors { field code message } } }`,
    { input: { volumeId: volume.id, dropletId } },
  );
  assert.deepEqual(attached.attachVolume.userErrors, []);
  assert.equal(attached.attachVolume.action.type, 'attach_volume');
  assert.equal(attached.attachVolume.action.status, 'IN_PROGRESS');

  const ws = wsClient();
  const attachEvents = await collect(ws, progress, { volumeId: volume.id, actionId: attached.attachVolume.action.id });
  await ws.dispose();
  assert.deepEqual(statuses(attachEvents), ['IN_PROGRESS', 'COMPLETED'], 'graphql-ws: the attach action as it went');
  assert.deepEqual(attachEvents.at(-1).data.volumeActionProgress.volume.dropletIds, [dropletId], 'the volume as the COMPLETED event shows it');
  const afterAttach = await gql('query($id: ID!) { volume(id: $id) { dropletIds } }', { id: volume.id });
  assert.deepEqual(afterAttach.volume.dropletIds, [dropletId]);

  const detached = await gql(
    `mutation($input: DetachVolumeInput!) { detachVolume(input: $input) { action { id type status } userErrors { field code message } } }`,
    { input: { volumeId: volume.id, dropletId } },
  );
  assert.deepEqual(detached.detachVolume.userErrors, []);
  const sse = sseClient();
  const detachEvents = await collect(sse, progress, { volumeId: volume.id, actionId: detached.detachVolume.action.id });
  sse.dispose();
  assert.deepEqual(statuses(detachEvents), ['IN_PROGRESS', 'COMPLETED'], 'graphql-sse: the detach action as it went');
  assert.deepEqual(detachEvents.at(-1).data.volumeActionProgress.volume.dropletIds, []);

  const deleted = await gql(
    `mutation($input: DeleteVolumeInput!) { deleteVolume(input: $input) { deletedVolumeId userErrors { code } } }`,
    { input: { id: volume.id } },
  );
  assert.equal(deleted.deleteVolume.deletedVolumeId, volume.id);
  const gone = await fetch(`${oceangraphURL()}/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: 'query($id: ID!) { volume(id: $id) { id } }', variables: { id: volume.id } }),
  }).then((r) => r.json());
  assert.equal(gone.errors?.[0]?.extensions?.code, 'NOT_FOUND', `the deleted volume: ${JSON.stringify(gone)}`);
});

test('50 subscribers of one action (25 graphql-ws, 25 graphql-sse) cost one poller', async () => {
  const { dropletId, region } = await someDroplet();
  const name = `e2e-fifty-${Date.now().toString(36)}`;
  const created = await gql(
    `mutation($input: CreateVolumeInput!) { createVolume(input: $input) { volume { id } userErrors { code message } } }`,
    { input: { name, region, sizeGigabytes: 1 } },
  );
  const volumeId = created.createVolume.volume.id;

  // One subscriber alone first: what one poller costs for an action of the sandbox's delay.
  const alone = await gql(
    `mutation($input: AttachVolumeInput!) { attachVolume(input: $input) { action { id } userErrors { code message } } }`,
    { input: { volumeId, dropletId } },
  );
  await resetSandboxStats();
  const ws0 = wsClient();
  assert.deepEqual(statuses(await collect(ws0, progressLight, { volumeId, actionId: alone.attachVolume.action.id })), ['IN_PROGRESS', 'COMPLETED']);
  await ws0.dispose();
  const onePoller = actionPolls(await sandboxStats());

  const action = await gql(
    `mutation($input: DetachVolumeInput!) { detachVolume(input: $input) { action { id } userErrors { code message } } }`,
    { input: { volumeId, dropletId } },
  );
  const actionId = action.detachVolume.action.id;
  await resetSandboxStats();
  const clients = [];
  const runs = [];
  for (let i = 0; i < 50; i++) {
    const client = i % 2 === 0 ? wsClient() : sseClient();
    clients.push(client);
    runs.push(collect(client, progressLight, { volumeId, actionId }));
  }
  const all = await Promise.all(runs);
  for (const client of clients) await client.dispose();
  for (const [i, payloads] of all.entries()) {
    const seen = statuses(payloads);
    assert.equal(seen.at(-1), 'COMPLETED', `subscriber ${i} ended with ${seen}`);
  }
  const polls = actionPolls(await sandboxStats());
  console.log(`action polls at the sandbox: ${onePoller} for one subscriber, ${polls} for 50`);
  assert.ok(polls >= 1, 'no poll reached the sandbox');
  assert.ok(polls <= onePoller + 1, `50 subscribers caused ${polls} action polls; one subscriber alone caused ${onePoller}`);

  await gql(`mutation($input: DeleteVolumeInput!) { deleteVolume(input: $input) { deletedVolumeId } }`, { input: { id: volumeId } });
});

test('a WebSocket from an unlisted origin is refused', async () => {
  const socket = new WebSocket(wsURL(), 'graphql-transport-ws', { origin: 'https://evil.example' });
  const status = await new Promise((resolve) => {
    socket.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    socket.on('open', () => resolve('open'));
    socket.on('error', () => {});
  });
  socket.terminate();
  assert.equal(status, 403);
});

/** How many GETs of one action the sandbox served (GET /v2/volumes/{id}/actions/{action_id}). */
function actionPolls(stats) {
  return (stats.requests ?? []).filter((r) => /^GET \/v2\/volumes\/[^/]+\/actions\/[^/?]+/.test(r)).length;
}
