// The GraphQL-over-HTTP audit of the graphql-http package (pinned by package-lock.json) against the
// running server: every MUST holds and no SHOULD warns. Each audit is its own test, so a failure
// names the audit and shows what the server answered.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { serverAudits } from 'graphql-http';

import { oceangraphURL } from '../lib/stack.mjs';

const audits = serverAudits({ url: () => `${oceangraphURL()}/query` });

test('the audit has its full list of checks', () => {
  // A version of graphql-http that dropped its audits would pass everything below.
  assert.ok(audits.length > 50, `only ${audits.length} audits`);
});

for (const audit of audits) {
  test(`graphql-http audit ${audit.id}: ${audit.name}`, async () => {
    const result = await audit.fn();
    if (result.status === 'ok') return;
    // A MAY that the server does not do is a notice, not a fault (e.g. GETs without a content type
    // that would run on the server's own token are refused by CSRF prevention).
    if (result.status === 'notice') return;
    let body = '';
    try {
      body = await result.response.text();
    } catch {}
    assert.fail(
      `${result.status}: ${result.reason}\n` +
        `answer: HTTP ${result.response.status} ${result.response.headers.get('content-type')}\n${body.slice(0, 500)}`,
    );
  });
}
