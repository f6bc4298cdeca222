#!/usr/bin/env bash
# Real-browser tests: Debian's Chromium, driven by playwright-core, clicks through the
# demo LMS at /platform into the demo app at /app, as a person would (launch.test.mjs),
# and launches the tool inside the platform's iframe, the platform on localhost and the
# tool on 127.0.0.1, with third-party cookies blocked and allowed (iframe.test.mjs);
# storage-script.test.mjs unit-tests the tool's postMessage script in node.
#
#   tests/browser/run.sh                                  # starts its own dev server
#   LTI_DEV_URL=http://127.0.0.1:3000 tests/browser/run.sh  # uses a running one
#
# Installs what is missing: Debian's chromium (only if $LTI_CHROMIUM, default
# /usr/bin/chromium, is absent) and node_modules (npm ci, only when package-lock.json
# changed since the last install). Screenshots go to tests/browser/artifacts/.
# No browser download: playwright-core drives the system Chromium.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
START=$SECONDS
export LTI_CHROMIUM="${LTI_CHROMIUM:-/usr/bin/chromium}"

# 1. Chromium, from Debian's packages.
if [ ! -x "$LTI_CHROMIUM" ]; then
  echo "== installing Debian chromium (apt)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  T=$SECONDS
  $SUDO env DEBIAN_FRONTEND=noninteractive bash -c \
    'apt-get update -qq && apt-get install -y -qq chromium >/dev/null'
  echo "   chromium installed in $((SECONDS - T))s"
fi
"$LTI_CHROMIUM" --version 2>/dev/null | grep -i chromium || true

# 2. playwright-core, pinned by package-lock.json.
LOCK_SUM="$(cat "$HERE/package-lock.json" <(node --version) | sha256sum | cut -d' ' -f1)"
STAMP="$HERE/node_modules/.installed-lock.sha256"
if [ ! -d "$HERE/node_modules/playwright-core" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$LOCK_SUM" ]; then
  echo "== npm ci (tests/browser)"
  T=$SECONDS
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$LOCK_SUM" >"$STAMP"
  echo "   node_modules installed in $((SECONDS - T))s"
fi

# 3. The dev server: $LTI_DEV_URL, or our own on a free port.
DEV_PID=""
TMP=""
cleanup() {
  if [ -n "$DEV_PID" ]; then
    # setsid made the server its own process group: stop `cargo run` and lti-dev both.
    kill -TERM -- "-$DEV_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 -- "-$DEV_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$DEV_PID" 2>/dev/null || true
  fi
  [ -z "$TMP" ] || rm -rf "$TMP"
}
trap cleanup EXIT

if [ -z "${LTI_DEV_URL:-}" ]; then
  TMP="$(mktemp -d)"
  PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  echo "== starting the dev server: cargo run -q -p lti-dev -- --port $PORT"
  (cd "$ROOT" && exec setsid cargo run -q -p lti-dev -- --port "$PORT" --data-dir "$TMP/data") \
    >"$TMP/dev.log" 2>&1 &
  DEV_PID=$!
  URL=""
  # A cold `cargo run` compiles the workspace first: allow it time.
  DEADLINE=$((SECONDS + ${LTI_DEV_START_TIMEOUT:-1200}))
  while [ $SECONDS -lt $DEADLINE ]; do
    URL="$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$TMP/dev.log" | head -n1)"
    [ -n "$URL" ] && break
    kill -0 "$DEV_PID" 2>/dev/null || break
    sleep 0.5
  done
  if [ -z "$URL" ]; then
    echo "the dev server did not start; its log:" >&2
    cat "$TMP/dev.log" >&2
    exit 1
  fi
  export LTI_DEV_URL="$URL"
fi
echo "== dev server at $LTI_DEV_URL ($((SECONDS - START))s so far)"

# 4. The tests.
mkdir -p "$HERE/artifacts"
rm -f "$HERE/artifacts/"*.png
T=$SECONDS
status=0
node --test --test-reporter=spec --test-timeout=60000 "$HERE/launch.test.mjs" "$HERE/dynamic_registration.test.mjs" "$HERE/iframe.test.mjs" "$HERE/storage-script.test.mjs" || status=$?
echo "== browser tests took $((SECONDS - T))s (whole script $((SECONDS - START))s); screenshots in tests/browser/artifacts/"
exit $status
