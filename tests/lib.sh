# Shell functions shared by tests/run.sh and tests/latency.sh (sourced, not run).
# The sourcing script sets ROOT and TMP (a temporary directory it removes on exit,
# after stopping every process group whose pid is in $TMP/*.pid).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts "$@" in the background, logging to $TMP/$name.log, and waits until the log
# shows "listening on URL"; prints the URL.
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

# moto and cargo-lambda into .tools/venv (reinstalled when the requirements change),
# and on PATH.
install_aws_tools() {
  VENV="$ROOT/.tools/venv"
  local stamp="$VENV/.requirements.sha256" want
  want="$(sha256sum "$ROOT/tests/aws-requirements.txt" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tests/aws-requirements.txt"
    echo "$want" >"$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

# Starts a moto server and points the AWS SDK at it (AWS_ENDPOINT_URL and test
# credentials, exported). With --iam, a dedicated second server instead, enforcing IAM
# (tests/moto_server.py's LTI_MOTO_IAM mode; enforcement is process-wide in moto, so
# never the shared one): exports LTI_MOTO_IAM_URL and LTI_MOTO_PYTHON (its Python,
# which has boto3 and cfn-lint through moto[server]) and leaves AWS_ENDPOINT_URL alone.
start_moto() {
  local port name=moto iam=0
  if [ "${1:-}" = "--iam" ]; then name=moto-iam; iam=1; fi
  port="$(free_port)"
  LTI_MOTO_IAM=$iam setsid "$VENV/bin/python" "$ROOT/tests/moto_server.py" 127.0.0.1 "$port" \
    >"$TMP/$name.log" 2>&1 &
  echo "$!" >"$TMP/$name.pid"
  for _ in $(seq 1 100); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://127.0.0.1:$port/moto-api/" 2>/dev/null && break
    sleep 0.2
  done
  if [ "$iam" = 1 ]; then
    export LTI_MOTO_IAM_URL="http://127.0.0.1:$port" LTI_MOTO_PYTHON="$VENV/bin/python"
    return 0
  fi
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
}

# The four Lambda binaries under `cargo lambda watch`, on a fresh table and KMS key in
# moto, every AWS call going through lti-aws-proxy (held $1 ms, default 0, and
# recorded); each function built and started by a first request. Exports the
# LTI_E2E_* variables the lti-e2e tests read.
start_lambda_stack() {
  local delay_ms=${1:-0}
  LTI_E2E_TABLE="lti-e2e-$(date +%s)"
  LTI_E2E_KMS_KEY="$(cargo run --locked -q -p lti-aws --example provision -- \
    "$LTI_E2E_TABLE" "alias/$LTI_E2E_TABLE")"
  LTI_E2E_ADMIN_TOKEN="e2e-admin-token-$(date +%s)-0123456789abcdef"
  LTI_E2E_GATEWAY_PORT="$(free_port)"
  local lambda_port
  lambda_port="$(free_port)"
  LTI_E2E_LAMBDA_URL="http://127.0.0.1:$lambda_port"
  LTI_E2E_AWS_PROXY_URL="$(start_server aws-proxy cargo run --locked -q -p lti-e2e \
    --bin lti-aws-proxy -- --port "$(free_port)" --target "$AWS_ENDPOINT_URL" \
    --delay-ms "$delay_ms")"
  export LTI_E2E_TABLE LTI_E2E_KMS_KEY LTI_E2E_ADMIN_TOKEN LTI_E2E_GATEWAY_PORT \
    LTI_E2E_LAMBDA_URL LTI_E2E_AWS_PROXY_URL
  cat >"$TMP/lambda.env" <<ENV
LTI_BASE_URL=http://127.0.0.1:$LTI_E2E_GATEWAY_PORT
LTI_APP_LANDING_URL=http://127.0.0.1:$LTI_E2E_GATEWAY_PORT/app
LTI_TABLE_NAME=$LTI_E2E_TABLE
LTI_KMS_KEY_ID=$LTI_E2E_KMS_KEY
LTI_ADMIN_TOKEN=$LTI_E2E_ADMIN_TOKEN
LTI_INSECURE_ALLOW_LOOPBACK_URLS=true
LTI_METRICS_NAMESPACE=lti-lambda/lti-e2e
AWS_ENDPOINT_URL=$LTI_E2E_AWS_PROXY_URL
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
ENV
  setsid cargo lambda watch -A 127.0.0.1 -P "$lambda_port" --env-file "$TMP/lambda.env" \
    >"$TMP/watch.log" 2>&1 &
  echo "$!" >"$TMP/watch.pid"
  # Each function is built on its first request: start all four (the jwks function's
  # first answer also keeps the KMS key's public half in the table).
  warm_lambda_functions "$LTI_E2E_LAMBDA_URL" services/lti/config jwks/.well-known/jwks.json \
    login/lti/login launch/lti/launch || { cat "$TMP/watch.log"; return 1; }
}

# Starts the functions behind a `cargo lambda watch` at URL $1 by one request each to
# the paths that follow (`<function>/<path>`), waiting until each has answered.
warm_lambda_functions() {
  local url=$1 path
  shift
  for path in "$@"; do
    python3 - "$url/lambda-url/$path" <<'PY' || return 1
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
}
