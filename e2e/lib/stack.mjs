// What every e2e test needs: where run.sh started oceangraph and its standalone sandbox, and small
// clients for both. A missing setting fails the test (never a skip): run the suite with e2e/run.sh.

export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the end-to-end suite with e2e/run.sh`);
  return value;
}

/** Base URL of the oceangraph server under test, e.g. http://127.0.0.1:43123 */
export const oceangraphURL = () => required('OCEANGRAPH_URL');
/** Base URL of the standalone sandbox oceangraph uses as DigitalOcean. */
export const sandboxURL = () => required('SANDBOX_URL');

/**
 * Sends one GraphQL request and returns the parsed body; an HTTP error or a body without `data`
 * throws with the body, so that the test output shows what the server said.
 */
export async function graphql(url, query, variables = undefined) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url}: HTTP ${response.status}: ${text}`);
  const body = JSON.parse(text);
  if (!body.data) throw new Error(`POST ${url}: no data: ${text}`);
  return body;
}

/** Like graphql, but GraphQL errors in the answer throw too: for queries a test relies on. */
export async function graphqlData(url, query, variables = undefined) {
  const body = await graphql(url, query, variables);
  if (body.errors) throw new Error(`POST ${url}: errors: ${JSON.stringify(body.errors)}\nfor query: ${query}`);
  return body.data;
}

/** Zeroes the sandbox's request counters. */
export async function resetSandboxStats() {
  const response = await fetch(`${sandboxURL()}/_sandbox/reset`, { method: 'POST' });
  if (response.status !== 204) throw new Error(`POST /_sandbox/reset: HTTP ${response.status}`);
}

/** The DigitalOcean requests the sandbox served since the last reset: { total, counts, requests }. */
export async function sandboxStats() {
  const response = await fetch(`${sandboxURL()}/_sandbox/stats`);
  if (!response.ok) throw new Error(`GET /_sandbox/stats: HTTP ${response.status}`);
  return response.json();
}
