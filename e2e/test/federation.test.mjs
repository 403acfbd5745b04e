// oceangraph as an Apollo Federation 2 subgraph: its live SDL composes with a second subgraph (a
// watchlist that points at volumes and invoices by key), and a real @apollo/gateway answers a query
// that crosses both, with the entities fetched in batches and each upstream resource fetched once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { composeServices } from '@apollo/composition';
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

import { graphql, graphqlData, oceangraphURL, resetSandboxStats, sandboxStats } from '../lib/stack.mjs';

// The second subgraph: it knows only the keys of oceangraph's entities.
const watchlistTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])

  type Query {
    "Resources someone keeps an eye on."
    watchlist: [Watch!]!
  }

  type Watch {
    note: String!
    volume: Volume
    invoice: Invoice
  }

  type Volume @key(fields: "id", resolvable: false) {
    id: ID!
  }

  type Invoice @key(fields: "uuid", resolvable: false) {
    uuid: ID!
  }
`);

let watches = []; // what the watchlist subgraph returns, set by the gateway test
let watchlistServer;
let watchlistURL;
let gatewayServer;
let gatewayURL;
const subgraphRequests = []; // every request the gateway sent to a subgraph

before(async () => {
  watchlistServer = new ApolloServer({
    schema: buildSubgraphSchema({
      typeDefs: watchlistTypeDefs,
      resolvers: {
        Query: {
          watchlist: () =>
            watches.map((w) => ({
              note: w.note,
              volume: { __typename: 'Volume', id: w.volume.id },
              invoice: { __typename: 'Invoice', uuid: w.invoice.uuid },
            })),
        },
      },
    }),
    // Traces are for Apollo's cloud; without this the subgraph announces them in the test output.
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
  ({ url: watchlistURL } = await startStandaloneServer(watchlistServer, { listen: { host: '127.0.0.1', port: 0 } }));
});

after(async () => {
  await gatewayServer?.stop();
  await watchlistServer?.stop();
});

async function oceangraphSDL() {
  const data = await graphqlData(`${oceangraphURL()}/query`, '{ _service { sdl } }');
  return data._service.sdl;
}

test('oceangraph publishes a Federation 2 SDL with its entity keys', async () => {
  const sdl = await oceangraphSDL();
  assert.match(sdl, /@link\(\s*url: "https:\/\/specs\.apollo\.dev\/federation\/v2\.\d+"/, 'SDL links the federation 2 spec');
  assert.match(sdl, /type Invoice @key\(fields: "uuid"\)/, 'Invoice is an entity keyed by uuid');
  assert.match(sdl, /type Volume @key\(fields: "id"\)/, 'Volume is an entity keyed by id');
  assert.match(sdl, /type PageInfo @shareable/, 'PageInfo is shareable');
});

test('the live SDL composes with a second subgraph', async () => {
  const { errors, supergraphSdl, hints } = composeServices([
    { name: 'oceangraph', url: `${oceangraphURL()}/query`, typeDefs: parse(await oceangraphSDL()) },
    { name: 'watchlist', url: watchlistURL, typeDefs: watchlistTypeDefs },
  ]);
  assert.equal(errors, undefined, `composition failed:\n${(errors ?? []).map((e) => e.message).join('\n')}`);
  for (const hint of hints) console.log(`composition hint: ${hint.toString()}`);
  assert.match(supergraphSdl, /@join__type\(graph: OCEANGRAPH, key: "id"\)/, 'the supergraph resolves Volume by id in oceangraph');
  assert.match(supergraphSdl, /@join__type\(graph: OCEANGRAPH, key: "uuid"\)/, 'the supergraph resolves Invoice by uuid in oceangraph');
});

test('a gateway query across both subgraphs batches entities and fetches each resource once', async () => {
  // Volumes and invoices of the sandbox account, read from oceangraph directly.
  const seed = await graphqlData(
    `${oceangraphURL()}/query`,
    `{
      volumes(first: 3) { nodes { id name sizeGigabytes region { slug } } }
      invoices(first: 2) { nodes { uuid invoiceId period amount } }
    }`,
  );
  const [v0, v1, v2] = seed.volumes.nodes;
  const [i0, i1] = seed.invoices.nodes;
  assert.ok(v2 && i1, `the sandbox account has 3 volumes and 2 invoices: ${JSON.stringify(seed)}`);
  // Two watches share an invoice: oceangraph's per-request loader must fetch it once.
  watches = [
    { note: 'database disk', volume: v0, invoice: i0 },
    { note: 'log archive', volume: v1, invoice: i0 },
    { note: 'backups', volume: v2, invoice: i1 },
  ];

  const gateway = new ApolloGateway({
    supergraphSdl: new IntrospectAndCompose({
      subgraphs: [
        { name: 'oceangraph', url: `${oceangraphURL()}/query` },
        { name: 'watchlist', url: watchlistURL },
      ],
    }),
    buildService: ({ name, url }) =>
      new RemoteGraphQLDataSource({
        url,
        willSendRequest({ request }) {
          subgraphRequests.push({ subgraph: name, query: request.query, representations: request.variables?.representations });
        },
      }),
  });
  gatewayServer = new ApolloServer({ gateway });
  ({ url: gatewayURL } = await startStandaloneServer(gatewayServer, { listen: { host: '127.0.0.1', port: 0 } }));

  subgraphRequests.length = 0; // forget the gateway's start-up (_service) calls
  await resetSandboxStats();
  const body = await graphql(
    gatewayURL,
    `query Watchlist {
      watchlist {
        note
        volume { id name sizeGigabytes region { slug } }
        invoice { uuid invoiceId period amount }
      }
    }`,
  );
  const stats = await sandboxStats();

  assert.equal(body.errors, undefined, `the gateway answered with errors: ${JSON.stringify(body.errors)}`);
  assert.deepEqual(
    body.data.watchlist,
    watches.map((w) => ({ note: w.note, volume: w.volume, invoice: w.invoice })),
    'each watch carries the volume and invoice oceangraph serves for those keys',
  );

  // The gateway asks oceangraph once per entity type, with every representation of that type in
  // one _entities request (gqlgen's FindMany resolvers), never once per watch.
  const toOceangraph = subgraphRequests.filter((r) => r.subgraph === 'oceangraph');
  const summary = toOceangraph.map((r) => ({
    entities: r.query.includes('_entities'),
    typenames: [...new Set((r.representations ?? []).map((rep) => rep.__typename))].sort().join(','),
    count: r.representations?.length ?? 0,
  }));
  assert.equal(subgraphRequests.filter((r) => r.subgraph === 'watchlist').length, 1, 'one request to the watchlist');
  assert.equal(toOceangraph.length, 2, `two requests to oceangraph, one per entity type: ${JSON.stringify(summary)}`);
  assert.ok(
    summary.every((r) => r.entities),
    `the gateway sent oceangraph only _entities requests: ${JSON.stringify(summary)}`,
  );
  const volumeReps = summary.filter((r) => r.typenames === 'Volume');
  const invoiceReps = summary.filter((r) => r.typenames === 'Invoice');
  assert.equal(volumeReps.length, 1, `volumes come in one batch: ${JSON.stringify(summary)}`);
  assert.equal(volumeReps[0].count, 3, 'the volume batch holds the 3 volumes');
  assert.equal(invoiceReps.length, 1, `invoices come in one batch: ${JSON.stringify(summary)}`);
  // The gateway does not de-duplicate representations: the shared invoice arrives twice.
  assert.equal(invoiceReps[0].count, 3, 'the invoice batch holds one representation per watch');

  // At DigitalOcean (the sandbox): one GET per volume (the API has no batch read by ids) and one
  // summary per distinct invoice (2, though 3 watches point at invoices), nothing else.
  assert.deepEqual(
    stats.counts,
    {
      'GET /v2/volumes/{id}': 3,
      'GET /v2/customers/my/invoices/{uuid}/summary': 2,
    },
    `upstream requests of the crossing query:\n${stats.requests.join('\n')}`,
  );
  assert.equal(stats.total, 5);
  console.log(`oceangraph requests from the gateway: ${JSON.stringify(summary)}; upstream: ${JSON.stringify(stats.counts)}`);
});
