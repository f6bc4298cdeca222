#!/usr/bin/env bash
# Run the interoperability suite (tests/interop) in its own venv.
#   tests/interop/run.sh [pytest args...]
# The venv is .tools/interop-venv at the repo root (gitignored); packages are
# (re)installed only when requirements.txt or the Python version changed.
# Tests that need our Rust dev server read its URL and admin token from
# LTI_DEV_URL and LTI_DEV_ADMIN_TOKEN and fail without them, unless
# LTI_INTEROP_SKIP_DEV=1 (then they are skipped). See README.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/.tools/interop-venv"
PY="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"

if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv --clear "$VENV"
fi
want="$( { cat "$HERE/requirements.txt"; "$VENV/bin/python" -c 'import sys; print(sys.version)'; } \
  | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
  echo "interop: installing requirements into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$want" > "$STAMP"
fi

cd "$ROOT"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/interop "$@"
