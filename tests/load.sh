#!/usr/bin/env bash
# The load test (its own command, not part of tests/run.sh): complete login → launch
# flows at a concurrency, a replay storm, then a check of the store; on the Lambda
# stack also the store failing for a few seconds mid-run. Prints figures, e.g.
#   load: flows=1000 errors=0 p50_ms=… p95_ms=… p99_ms=… throughput_per_s=…
# and exits non-zero only when a check fails (errors, replays, store contents,
# unclean answers during the outage), never on a latency.
#
#   tests/load.sh                                  # dev server, 1000 flows, 20 at once
#   LOAD_TARGET=lambda tests/load.sh               # the Lambda binaries, cargo lambda + moto
#   LOAD_FLOWS=5000 LOAD_CONCURRENCY=50 LOAD_OUTAGE_SECONDS=5 LOAD_TARGET=lambda tests/load.sh
#
# LOAD_TARGET=lambda: moto, a fault proxy in front of it (the functions'
# AWS_ENDPOINT_URL; the outage is a fault set on it), the four binaries under
# `cargo lambda watch` and the API Gateway stand-in (lti-gateway) in front of them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_INCREMENTAL=0
export LOAD_FLOWS="${LOAD_FLOWS:-1000}" LOAD_CONCURRENCY="${LOAD_CONCURRENCY:-20}"
export LOAD_TARGET="${LOAD_TARGET:-dev}"
TMP="$(mktemp -d)"
cleanup() {
  local pidfile
  for pidfile in "$TMP"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null || kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"   # free_port, start_server, install_aws_tools, start_moto, warm_lambda_functions

# Debug builds, like `cargo run -p lti-dev` and `cargo lambda watch`.
cargo build --locked -q -p lti-load --bins
if [ "$LOAD_TARGET" = dev ]; then
  target/debug/lti-load
  exit
fi
[ "$LOAD_TARGET" = lambda ] || { echo "LOAD_TARGET is dev or lambda" >&2; exit 2; }

install_aws_tools
start_moto

# moto answers in tens of ms alone and in seconds at 20 requests at once (DynamoDB: a
# few ms): the functions get 30 s AWS timeouts instead of budget.rs's production ones
# (1 s an attempt, 2 s a call), so the figures measure the tool rather than moto's
# queue; set both to 0 for the production budgets. One attempt per timeout, too: moto
# ignores TransactWriteItems' client request token, so a launch write retried after
# its first attempt landed late would read as a replay there (DynamoDB answers it as
# the success it was).
export LOAD_AWS_ATTEMPT_TIMEOUT_MS="${LOAD_AWS_ATTEMPT_TIMEOUT_MS:-30000}"
export LOAD_AWS_CALL_TIMEOUT_MS="${LOAD_AWS_CALL_TIMEOUT_MS:-30000}"
TABLE="lti-load-$(date +%s)"
KEY="$(cargo run --locked -q -p lti-aws --example provision -- "$TABLE" "alias/$TABLE")"
ADMIN="load-admin-token-$(date +%s)-0123456789abcdef"
FAULT_URL="$(start_server faults target/debug/lti-fault-proxy --port "$(free_port)" \
  --target "$AWS_ENDPOINT_URL")"
GATEWAY_PORT="$(free_port)"
LAMBDA_PORT="$(free_port)"
cat >"$TMP/lambda.env" <<ENV
LTI_BASE_URL=http://127.0.0.1:$GATEWAY_PORT
LTI_APP_LANDING_URL=http://127.0.0.1:$GATEWAY_PORT/app
LTI_TABLE_NAME=$TABLE
LTI_KMS_KEY_ID=$KEY
LTI_ADMIN_TOKEN=$ADMIN
LTI_INSECURE_ALLOW_LOOPBACK_URLS=true
AWS_ENDPOINT_URL=$FAULT_URL
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
LTI_AWS_ATTEMPT_TIMEOUT_MS=$LOAD_AWS_ATTEMPT_TIMEOUT_MS
LTI_AWS_CALL_TIMEOUT_MS=$LOAD_AWS_CALL_TIMEOUT_MS
RUST_LOG=error
ENV
setsid cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_PORT" --env-file "$TMP/lambda.env" \
  >"$TMP/watch.log" 2>&1 &
echo "$!" >"$TMP/watch.pid"
warm_lambda_functions "http://127.0.0.1:$LAMBDA_PORT" services/lti/config jwks/.well-known/jwks.json \
  login/lti/login launch/lti/launch || { cat "$TMP/watch.log"; exit 1; }
TOOL_URL="$(start_server gateway cargo run --locked -q -p lti-e2e --bin lti-gateway -- \
  --port "$GATEWAY_PORT" --lambda-url "http://127.0.0.1:$LAMBDA_PORT")"
LOAD_TOOL_URL="$TOOL_URL" LOAD_ADMIN_TOKEN="$ADMIN" LOAD_TABLE="$TABLE" \
  LOAD_FAULT_URL="$FAULT_URL" target/debug/lti-load
