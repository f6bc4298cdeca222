#!/usr/bin/env bash
# Runs every test of lti-lambda. This is the README's test command and what CI runs.
#
#   tests/run.sh
#
# It installs what it needs into .tools/ (gitignored, reused between runs), starts
# and stops its own servers on 127.0.0.1, and needs no AWS account and no Docker.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR=never
# A run from a clean clone gains nothing from incremental compilation, which would
# add gigabytes of cache to the target directory.
export CARGO_INCREMENTAL=0
START=$SECONDS
STEPS=()
section() { printf '\n=== %s (%ss) ===\n' "$*" "$((SECONDS - START))"; }
done_step() { STEPS+=("$1: ok"); }

# Every log of the run lands in $TMP as a *.log file: the servers' (lib.sh), the
# interop suite's servers (under $TMP/interop-*), and run.log, everything this script
# and its steps print. The last step scans them all for secrets; the values it cannot
# recognise by their form (admin tokens, the chosen service key) are in
# $TMP/known-secrets.
TMP="$(mktemp -d)"
exec > >(tee "$TMP/run.log") 2>&1
stop_servers() {
  # Each server runs in its own process group (setsid): stop the whole group, so
  # `cargo run` and the binary it started both go.
  for f in "$TMP"/*.pid; do
    [ -e "$f" ] && kill -TERM -- "-$(cat "$f")" 2>/dev/null || true
  done
  rm -f "$TMP"/*.pid
  sleep 0.5
}
cleanup() {
  local status=$?
  if [ "$status" -ne 0 ] && [ -z "${LOGSCAN_FOUND:-}" ]; then
    # A step failed: the servers' own logs say why (secrets are never logged; when the
    # log scan found one, its report says where, and the logs are not printed).
    for log in "$TMP"/*.log; do
      [ -s "$log" ] && [ "$log" != "$TMP/run.log" ] || continue
      echo "--- last lines of $(basename "$log"):"
      tail -n 40 "$log"
    done
  fi
  stop_servers
  rm -rf "$TMP"
}
trap cleanup EXIT

# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"

section "format: cargo fmt --check"
cargo fmt --all -- --check
done_step "format"

section "lint: cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
done_step "clippy"

section "unit, contract, handler and flow tests (benchmarks run once as tests)"
cargo test --workspace --all-targets --locked
done_step "cargo test"

section "tools: moto and cargo-lambda into .tools/venv"
install_aws_tools

section "AWS adapters on moto: contract suites, KMS signer, functions from events/, call budget, replay race"
start_moto
# The template_policy_ tests need the IAM-enforcing moto of the next step.
cargo test --locked -p lti-aws -- --ignored --nocapture --skip template_policy_ 2>&1 | tee "$TMP/aws-tests.log"
echo "--- measured:"
grep -E '^AWS calls' "$TMP/aws-tests.log"
done_step "AWS adapters on moto"

section "IAM on moto: each function's calls with exactly its template.yaml policy"
start_moto --iam
cargo test --locked -p lti-aws --test iam_template -- --ignored --nocapture 2>&1 \
  | tee "$TMP/iam-tests.log"
echo "--- IAM report:"
grep -E '^IAM' "$TMP/iam-tests.log"
done_step "IAM on moto"

section "the Lambda binaries under cargo lambda watch, on moto: their AWS calls, a full launch, deep linking, grades and rosters"
start_lambda_stack 0
echo "LTI_E2E_ADMIN_TOKEN=$LTI_E2E_ADMIN_TOKEN" >>"$TMP/known-secrets"
# First, while the login and launch functions are cold: their AWS calls, counted by
# the proxy in front of moto.
cargo test --locked -q -p lti-e2e --test lambda_latency -- --ignored --nocapture
# A second `cargo lambda watch` of the same functions, same environment: the services
# test's cold second instance (its services function is started before the test by a
# GET of /lti/config, which touches none of the caches the test measures).
LAMBDA_PORT2="$(free_port)"
setsid cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_PORT2" --env-file "$TMP/lambda.env" >"$TMP/watch2.log" 2>&1 &
echo "$!" >"$TMP/watch2.pid"
warm_lambda_functions "http://127.0.0.1:$LAMBDA_PORT2" services/lti/config
# One test at a time: cargo lambda runs one instance of each function (as a cold
# Lambda would), and the tests' flows would otherwise queue behind each other in it.
LTI_E2E_SECOND_LAMBDA_URL="http://127.0.0.1:$LAMBDA_PORT2" \
  cargo test --locked -q -p lti-e2e --test lambda_launch -- --ignored --nocapture --test-threads=1 2>&1 | tee "$TMP/e2e.log"
echo "--- measured:"
grep -E '^services function' "$TMP/e2e.log"
kill -TERM -- "-$(cat "$TMP/watch2.pid")" 2>/dev/null || true
rm -f "$TMP/watch2.pid"
# The interoperability suite against the same functions, through a gateway process on
# the port their LTI_BASE_URL names (free again now the test is over).
LAMBDA_GATEWAY_URL="$(start_server gateway cargo run --locked -q -p lti-e2e --bin lti-gateway -- \
  --port "$LTI_E2E_GATEWAY_PORT" --lambda-url "$LTI_E2E_LAMBDA_URL")"
echo "gateway to the Lambda functions at $LAMBDA_GATEWAY_URL"
done_step "Lambda binaries end to end"

section "the README's run command: cargo run -p lti-dev, then a scripted demo launch and the grades-and-rosters walk-through"
ADMIN_TOKEN="run-sh-admin-token-$(date +%s)-0123456789abcdef"
# The service key of the README's grades-and-rosters walk-through, chosen as the README
# says (LTI_SERVICE_KEY): a generated one would be printed in the banner, into the log.
DEV_SERVICE_KEY="lsk_dev_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
printf 'LTI_DEV_ADMIN_TOKEN=%s\nLTI_DEV_SERVICE_KEY=%s\n' "$ADMIN_TOKEN" "$DEV_SERVICE_KEY" >>"$TMP/known-secrets"
DEV_URL="$(LTI_ADMIN_TOKEN="$ADMIN_TOKEN" LTI_SERVICE_KEY="$DEV_SERVICE_KEY" start_server dev \
  cargo run --locked -q -p lti-dev -- --port "$(free_port)" --data-dir "$TMP/dev-data")"
echo "dev server at $DEV_URL"
LTI_DEV_URL="$DEV_URL" LTI_DEV_SERVICE_KEY="$DEV_SERVICE_KEY" \
  cargo test --locked -q -p lti-dev --test readme_run -- --ignored
done_step "README run command"

section "interoperability: independent platform (lti1p3platform) and tool (pylti1p3)"
LTI_DEV_URL="$DEV_URL" LTI_DEV_ADMIN_TOKEN="$ADMIN_TOKEN" tests/interop/run.sh --basetemp "$TMP/interop-dev"
echo "--- the same tool, deep-linking and grades-and-rosters scenarios against the Lambda binaries (cargo lambda watch, moto):"
# Two scenarios are left out here, for reasons of the stack, not of the tool:
# - Canvas-shaped launches make app tokens over 4 KiB, which KMS signs by digest, and
#   moto signs digests wrongly (see shared/aws/tests/kms_errors.rs for that path);
# - re-registering a platform mid-test: warm functions cache registrations for 60 s.
LTI_DEV_URL="$LAMBDA_GATEWAY_URL" LTI_DEV_ADMIN_TOKEN="$LTI_E2E_ADMIN_TOKEN" tests/interop/run.sh \
  --basetemp "$TMP/interop-lambda" \
  -k "(test_tool_dev or test_deep_linking or test_services) and not canvas_shaped and not from_unregistered_to_accepting"
done_step "interop"

section "real browser: headless Chromium clicks through the demo platform"
LTI_DEV_URL="$DEV_URL" tests/browser/run.sh
done_step "browser"

section "template: cfn-lint, sam validate --lint, sam build (cargo lambda, arm64, no Docker)"
# sam build cross-compiles for arm64 (provided.al2023); that needs the aarch64 Rust
# standard library, which rustup installs from outside the package registries. Where
# it cannot, the lint still runs and the summary says the build was not.
# SKIP_SAM_BUILD=1 leaves the build out (a shared machine's disk and cores).
if [ "${SKIP_SAM_BUILD:-0}" = 1 ]; then
  tests/template-check.sh
  STEPS+=("template: lint ok; sam build NOT RUN (SKIP_SAM_BUILD=1)")
elif rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$' \
  || rustup target add aarch64-unknown-linux-gnu; then
  tests/template-check.sh --build
  done_step "template (lint + sam build)"
else
  tests/template-check.sh
  STEPS+=("template: lint ok; sam build NOT RUN (no aarch64 rust-std on this machine)")
fi

section "operations: the functions' request lines and metrics against template.yaml's alarms"
# Everything the Lambda functions logged above (e2e, second instance, interop). The
# check must also refuse a stray INFO line: fed one, it has to fail.
METRICS_CHECK=("$ROOT/.tools/sam-venv/bin/python" tests/metrics-check.py template.yaml lti-e2e)
LAMBDA_LOGS=("$TMP/watch.log")
[ -e "$TMP/watch2.log" ] && LAMBDA_LOGS+=("$TMP/watch2.log")
"${METRICS_CHECK[@]}" "${LAMBDA_LOGS[@]}"
printf '{"level":"INFO","message":"a stray line"}\n' >"$TMP/stray-info.txt"
if "${METRICS_CHECK[@]}" "${LAMBDA_LOGS[@]}" "$TMP/stray-info.txt" >/dev/null; then
  echo "metrics-check.py accepted a stray INFO line" >&2
  exit 1
fi
done_step "request lines and metrics"

section "logs: no secret in any log of this run (tests/logscan.py; its self-test first)"
# The servers stop first, so their logs are complete.
stop_servers
python3 tests/logscan.py --self-test
python3 tests/logscan.py --known "$TMP/known-secrets" "$TMP" || { LOGSCAN_FOUND=1; exit 1; }
done_step "log scan"

section "summary"
printf '%s\n' "${STEPS[@]}"
