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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts "$@" in the background (its own process group) and waits for its
# "listening on URL" line; prints the URL.
start_server() {
  local name=$1; shift
  setsid "$@" >"$TMP/$name.log" 2>&1 &
  local pid=$! url=""
  echo "$pid" >"$TMP/$name.pid"
  for _ in $(seq 1 600); do
    url="$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$TMP/$name.log" | head -n1)"
    [ -n "$url" ] && { echo "$url"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "$name did not start; its log:" >&2
  cat "$TMP/$name.log" >&2
  return 1
}

# Debug builds, like `cargo run -p lti-dev` and `cargo lambda watch`.
cargo build --locked -q -p lti-load --bins
if [ "$LOAD_TARGET" = dev ]; then
  target/debug/lti-load
  exit
fi
[ "$LOAD_TARGET" = lambda ] || { echo "LOAD_TARGET is dev or lambda" >&2; exit 2; }

VENV="${LTI_TOOLS_VENV:-$ROOT/.tools/venv}"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum tests/aws-requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/aws-requirements.txt
  echo "$want" >"$STAMP"
fi
export PATH="$VENV/bin:$PATH"

MOTO_PORT="$(free_port)"
setsid "$VENV/bin/python" tests/moto_server.py 127.0.0.1 "$MOTO_PORT" >"$TMP/moto.log" 2>&1 &
echo "$!" >"$TMP/moto.pid"
for _ in $(seq 1 100); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
    "http://127.0.0.1:$MOTO_PORT/moto-api/" 2>/dev/null && break
  sleep 0.2
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true

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
for path in services/lti/config jwks/.well-known/jwks.json login/lti/login launch/lti/launch; do
  python3 - "http://127.0.0.1:$LAMBDA_PORT/lambda-url/$path" <<'PY' || { cat "$TMP/watch.log"; exit 1; }
import sys, time, urllib.request, urllib.error
deadline = time.time() + 900
while True:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=900)
        break
    except urllib.error.HTTPError:
        break  # the function answered (an error status is fine for a warm-up)
    except Exception:
        if time.time() > deadline:
            sys.exit(f"no answer from {sys.argv[1]}")
        time.sleep(0.5)
PY
done
TOOL_URL="$(start_server gateway cargo run --locked -q -p lti-e2e --bin lti-gateway -- \
  --port "$GATEWAY_PORT" --lambda-url "http://127.0.0.1:$LAMBDA_PORT")"
LOAD_TOOL_URL="$TOOL_URL" LOAD_ADMIN_TOKEN="$ADMIN" LOAD_TABLE="$TABLE" \
  LOAD_FAULT_URL="$FAULT_URL" target/debug/lti-load
