// The Playground in a real browser (Debian's chromium through playwright-core) with no internet: it
// opens at /, loads GraphiQL from this server, runs its example query and shows the result.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

import { graphqlData, oceangraphURL, required } from '../lib/stack.mjs';

const artifacts = new URL('../artifacts/', import.meta.url).pathname;
const screenshot = join(artifacts, 'playground.png');

// Flags for a quiet, reproducible headless run: no GPU, no background calls to Google's services.
const chromiumFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let userDataDir;
let context;

before(async () => {
  userDataDir = mkdtempSync(join(tmpdir(), 'oceangraph-chromium-'));
  // launchPersistentContext is how playwright takes a --user-data-dir: a fresh profile each run.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: required('CHROMIUM_PATH'),
    headless: true,
    args: chromiumFlags,
    viewport: { width: 1280, height: 800 },
  });
});

after(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

test('the Playground runs its example query offline and shows the result', async () => {
  const base = oceangraphURL();
  // What the page should show: the first volume the example query lists, asked over plain HTTP.
  const data = await graphqlData(`${base}/query`, '{ volumes(first: 3) { nodes { name } } }');
  const volumeName = data.volumes.nodes[0].name;

  // Anything not on this server counts as the internet: refused and remembered.
  const offsite = [];
  const assets = [];
  const problems = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.origin === base) return route.continue();
    offsite.push(url.href);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  page.on('response', (response) => {
    if (response.url().startsWith(`${base}/playground/assets/`)) {
      assets.push(`${response.status()} ${response.headers()['content-encoding'] ?? 'identity'} ${response.url().slice(base.length)}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });

  try {
    await runExampleQuery(page, base, volumeName);
  } finally {
    // Saved whatever happened: on a failure it shows what the page looked like.
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: screenshot });
    console.log(`screenshot: ${screenshot}`);
  }

  assert.deepEqual(offsite, [], 'the Playground reached for something other than this server');
  assert.deepEqual(
    assets.sort(),
    [
      '200 gzip /playground/assets/graphiql@4.1.2/graphiql.min.css',
      '200 gzip /playground/assets/graphiql@4.1.2/graphiql.min.js',
      '200 gzip /playground/assets/react-dom@18.2.0/umd/react-dom.production.min.js',
      '200 gzip /playground/assets/react@18.2.0/umd/react.production.min.js',
    ],
    'GraphiQL, React and ReactDOM come from this server, compressed (and pass their SRI check, or they would not run)',
  );
  assert.deepEqual(problems, [], 'the page logged errors');
});

// runExampleQuery opens the Playground, checks it starts with the example query, runs it with the
// run button and waits until the result shows volumeName.
async function runExampleQuery(page, base, volumeName) {
  await page.goto(`${base}/`);
  assert.match(page.url(), /\?query=/, 'the bare page redirects to one with the example query in its URL');
  const run = page.locator('.graphiql-execute-button');
  await run.waitFor({ state: 'visible', timeout: 30_000 });
  const editor = await page.locator('.graphiql-query-editor').innerText();
  assert.match(editor, /query Overview/, 'the query editor opens with the example query');

  await run.click();
  const result = page.locator('.result-window');
  await page.waitForFunction(
    (name) => document.querySelector('.result-window')?.textContent.includes(name),
    volumeName,
    { timeout: 30_000 },
  );
  const shown = await result.innerText();
  assert.match(shown, /"totalCount"/, 'the result shows the volumes connection');
  assert.doesNotMatch(shown, /"errors"/, 'the example query runs without errors against the sandbox');
}
