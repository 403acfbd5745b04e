#!/usr/bin/env bash
# The end-to-end suite: an Apollo Federation 2 gateway over oceangraph plus a second subgraph, the
# Playground in headless Chromium, the graphql-http GraphQL-over-HTTP audit and urql's default
# client, all on loopback with no internet.
#
#   bash e2e/run.sh            (from anywhere; CI runs it with CI=true)
#
# It installs what it needs itself: Debian's chromium (apt-get, as root), the pinned npm packages
# (npm ci), the Playground's assets (web/build-assets.mjs). Then it builds the server, starts the
# sandbox on its own loopback port and the server against it, runs `node --test`, and stops both.
# Anything missing fails the run; nothing is skipped. Logs and screenshots go to e2e/artifacts/.
set -euo pipefail
E2E=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$E2E")
ARTIFACTS="$E2E/artifacts"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/oceangraph-e2e.XXXXXX")
PIDS=()
START=$SECONDS

step() { printf '\n=== e2e: %s  (%ss)\n' "$*" "$((SECONDS - START))"; }
die() { printf 'e2e: FAILED: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  if [ "$status" -ne 0 ]; then
    for log in "$ARTIFACTS"/oceangraph.log "$ARTIFACTS"/sandbox.log; do
      [ -f "$log" ] && { printf '\n--- last lines of %s\n' "$log"; tail -n 40 "$log"; }
    done
  fi
  printf '\n=== e2e: %s after %ss\n' "$([ "$status" -eq 0 ] && echo passed || echo FAILED)" "$((SECONDS - START))"
}
trap cleanup EXIT

step "tools"
command -v go >/dev/null || die "go is not installed"
command -v node >/dev/null || die "node (>= 20) is not installed"
command -v npm >/dev/null || die "npm is not installed"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "node $(node --version) is too old: >= 20 needed"
if ! command -v chromium >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "chromium is not installed; as root run: apt-get install -y chromium"
  apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium </dev/null >/dev/null
fi
CHROMIUM_PATH=$(command -v chromium)
export CHROMIUM_PATH
printf 'go %s, node %s, npm %s, %s\n' "$(go env GOVERSION)" "$(node --version)" "$(npm --version 2>/dev/null)" "$("$CHROMIUM_PATH" --version 2>/dev/null)"

step "npm ci (pinned by e2e/package-lock.json)"
(cd "$E2E" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)

step "Playground assets (web/build-assets.mjs: pinned, hash-checked)"
node "$ROOT/web/build-assets.mjs" "$ROOT/web/dist"

step "go build"
(cd "$ROOT" && go build -o "$WORK/oceangraph" .)

# free_port asks the kernel for an unused loopback port.
free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
# wait_for polls url until it answers 2xx, or fails after 60 s or when process $2 has exited.
wait_for() {
  node -e '
    const [url, pid] = process.argv.slice(1);
    const deadline = Date.now() + 60000;
    (async () => {
      for (;;) {
        try { if ((await fetch(url)).ok) return; } catch {}
        try { process.kill(Number(pid), 0); } catch { console.error(`exited before ${url} answered`); process.exit(1); }
        if (Date.now() > deadline) { console.error(`no answer from ${url} in 60 s`); process.exit(1); }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();' "$1" "$2"
}

mkdir -p "$ARTIFACTS"
step "start the sandbox and the server on loopback"
SANDBOX_PORT=$(free_port)
SANDBOX_URL="http://127.0.0.1:$SANDBOX_PORT"
"$WORK/oceangraph" sandbox -addr "127.0.0.1:$SANDBOX_PORT" >"$ARTIFACTS/sandbox.log" 2>&1 &
PIDS+=($!)
wait_for "$SANDBOX_URL/_sandbox/stats" "${PIDS[-1]}" || die "the sandbox did not start (see $ARTIFACTS/sandbox.log)"

PORT=$(free_port)
OCEANGRAPH_URL="http://127.0.0.1:$PORT"
# INTROSPECTION: a real API URL turns it off by default; the Playground's docs and the
# gateway's checks want it on here.
(cd "$ROOT" && exec env LISTEN_HOST=127.0.0.1 PORT="$PORT" DIGITALOCEAN_API_URL="$SANDBOX_URL" \
  DIGITALOCEAN_TOKEN=e2e-account INTROSPECTION=true SHUTDOWN_DRAIN=0s PLAYGROUND_ASSETS_DIR="$ROOT/web/dist" \
  "$WORK/oceangraph") >"$ARTIFACTS/oceangraph.log" 2>&1 &
PIDS+=($!)
wait_for "$OCEANGRAPH_URL/readyz" "${PIDS[-1]}" || die "the server did not start (see $ARTIFACTS/oceangraph.log)"
grep -q 'assets locally' "$ARTIFACTS/oceangraph.log" || die "the server does not serve the Playground's assets locally (see $ARTIFACTS/oceangraph.log)"
export OCEANGRAPH_URL SANDBOX_URL
printf 'oceangraph %s, sandbox %s\n' "$OCEANGRAPH_URL" "$SANDBOX_URL"

step "node --test"
(cd "$E2E" && node --test --test-concurrency=1 --test-reporter=spec test/*.test.mjs)
