#!/usr/bin/env bash
# The launch and login in round trips: every AWS call held LATENCY_MS (default 10)
# by a proxy in front of moto, which records it. Prints one line per case, e.g.
#   warm launch: calls=2 critical_path=1 server_ms=…
# first for the handlers in process (the SDK counts the calls), then for the real
# Lambda binaries under `cargo lambda watch` (the proxy counts them; the time is the
# request's through cargo lambda). Figures, not assertions on time: the call budget
# is what the tests assert.
#
#   tests/latency.sh            LATENCY_MS=25 tests/latency.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
LATENCY_MS="${LATENCY_MS:-10}"
export LATENCY_MS
TMP="$(mktemp -d)"
cleanup() {
  for f in "$TMP"/*.pid; do
    [ -e "$f" ] && kill -TERM -- "-$(cat "$f")" 2>/dev/null || true
  done
  sleep 0.5
  rm -rf "$TMP"
}
trap cleanup EXIT
# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"

install_aws_tools
start_moto
echo "--- handlers in process (every AWS call held $LATENCY_MS ms):"
cargo test --locked -q -p lti-aws --test latency -- --ignored --nocapture 2>&1 |
  grep -E '^(warm |cold |first |replay )|panicked|FAILED|test result'
echo "--- the Lambda binaries under cargo lambda watch (building them may take minutes):"
start_lambda_stack "$LATENCY_MS"
cargo test --locked -q -p lti-e2e --test lambda_latency -- --ignored --nocapture 2>&1 |
  grep -E '^lambda |panicked|FAILED|test result'
