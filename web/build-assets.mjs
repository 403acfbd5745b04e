#!/usr/bin/env node
// Fetches the Playground's JavaScript and CSS (GraphiQL, React, ReactDOM) from the npm registry at
// the versions pinned in assets.lock.json, checks them, and writes them to dist/ with a manifest
// (dist/assets.json) that the server reads at start. Nothing here is committed: dist/ is ignored.
//
//   node web/build-assets.mjs [outDir]      (default: web/dist)
//
// Checks, any failure stops with exit code 1 and nothing written:
//   - each tarball's sha512 equals the pinned npm integrity (and what `npm pack` reports);
//   - each file's sha256 equals the pinned SRI (which is gqlgen's own CDN SRI for that file).
// The manifest carries a sha384 SRI per file; the server recomputes it from the bytes it serves.
// Run again with dist/ up to date, it only re-hashes the files and makes no network call.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(process.argv[2] ?? join(here, 'dist'));
const lock = JSON.parse(readFileSync(join(here, 'assets.lock.json'), 'utf8'));

// fail throws, so that the finally below removes the temporary folders before the exit code 1.
function fail(message) {
  throw new Error(message);
}

function sri(algorithm, bytes) {
  return `${algorithm}-${createHash(algorithm).update(bytes).digest('base64')}`;
}

// The folder of one package inside dist/, with its version, so that a new version is a new URL
// and the server can let browsers cache every asset for good.
function packageDir(pkg) {
  return `${pkg.name.replaceAll('/', '+')}@${pkg.version}`;
}

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (result.error) fail(`${command} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited with ${result.status}:\n${result.stderr}`);
  return result.stdout;
}

// upToDate reports whether outDir already holds every pinned file with its pinned hash.
function upToDate() {
  const manifestPath = join(outDir, 'assets.json');
  if (!existsSync(manifestPath)) return false;
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    return lock.packages.every((pkg) =>
      Object.entries(pkg.files).every(([role, file]) => {
        const entry = manifest[role];
        const path = `${packageDir(pkg)}/${file.path}`;
        if (!entry || entry.path !== path) return false;
        const bytes = readFileSync(join(outDir, path));
        return sri('sha256', bytes) === file.sha256 && sri('sha384', bytes) === entry.integrity;
      }),
    );
  } catch {
    return false;
  }
}

if (upToDate()) {
  console.log(`build-assets: ${outDir} is up to date`);
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), 'oceangraph-assets-'));
const staging = `${outDir}.partial-${process.pid}`;
try {
  rmSync(staging, { recursive: true, force: true });
  const manifest = {};
  for (const pkg of lock.packages) {
    const spec = `${pkg.name}@${pkg.version}`;
    // npm pack fetches the tarball through npm's own client and cache, checking it against the
    // registry's integrity; we check it against ours too, so a changed registry answer is refused.
    const packed = JSON.parse(run('npm', ['pack', spec, '--json', '--ignore-scripts', '--pack-destination', work], work));
    const tarball = join(work, packed[0].filename);
    const integrity = sri('sha512', readFileSync(tarball));
    if (integrity !== pkg.integrity || packed[0].integrity !== pkg.integrity) {
      fail(`${spec}: tarball integrity ${integrity} (npm says ${packed[0].integrity}), pinned ${pkg.integrity}`);
    }
    const unpacked = join(work, packageDir(pkg));
    mkdirSync(unpacked, { recursive: true });
    const members = Object.values(pkg.files).map((file) => `package/${file.path}`);
    run('tar', ['-xzf', tarball, '-C', unpacked, ...members], work);

    for (const [role, file] of Object.entries(pkg.files)) {
      const bytes = readFileSync(join(unpacked, 'package', file.path));
      const sha256 = sri('sha256', bytes);
      if (sha256 !== file.sha256) fail(`${spec}/${file.path}: ${sha256}, pinned ${file.sha256}`);
      const path = `${packageDir(pkg)}/${file.path}`;
      mkdirSync(dirname(join(staging, path)), { recursive: true });
      writeFileSync(join(staging, path), bytes);
      manifest[role] = { path, integrity: sri('sha384', bytes), package: spec };
      console.log(`build-assets: ${spec} ${file.path} ${bytes.length} bytes ${sha256} ok`);
    }
  }
  writeFileSync(join(staging, 'assets.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(outDir, { recursive: true, force: true });
  renameSync(staging, outDir);
  console.log(`build-assets: wrote ${outDir}`);
} catch (err) {
  console.error(`build-assets: ${err.message}`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
  rmSync(staging, { recursive: true, force: true });
}
