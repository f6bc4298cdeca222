#!/usr/bin/env bash
# The launch and login in round trips: every AWS call delayed by LATENCY_MS (default
# 10) through a proxy in front of moto; prints one line per case, e.g.
#   warm launch: calls=2 critical_path=1 server_ms=…
# Figures, not assertions on time (the call budget is asserted).
#
#   tests/latency.sh            LATENCY_MS=25 tests/latency.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.tools/venv"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum tests/aws-requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/aws-requirements.txt
  echo "$want" >"$STAMP"
fi
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
setsid "$VENV/bin/python" tests/moto_server.py 127.0.0.1 "$PORT" >/dev/null 2>&1 &
MOTO=$!
trap 'kill -TERM -- "-$MOTO" 2>/dev/null || kill "$MOTO" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
    "http://127.0.0.1:$PORT/moto-api/" 2>/dev/null && break
  sleep 0.2
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
cargo test --locked -q -p lti-aws --test latency -- --ignored --nocapture 2>&1 |
  grep -E '^(every AWS call|warm |cold |first |replay )|panicked|FAILED|test result'
