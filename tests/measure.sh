#!/usr/bin/env bash
# Measures the four Lambda binaries and prints the figures; it asserts nothing.
#
#   tests/measure.sh
#
#   1. size: `cargo build --release --locked` of login, launch, jwks, services for the
#      host (x86_64, the workspace's release profile), each binary's size and its
#      size zipped (what Lambda stores); then, when
#      .tools/venv/bin/cargo-lambda exists (tests/run.sh installs it), the same for
#      `cargo lambda build --release --arm64 --bin …` (zig cross-compile; what `sam
#      build` runs, so these are the deployed binaries).
#   2. cold start: tests/measure/coldstart.py runs each host binary N times against a
#      fake Lambda Runtime API on 127.0.0.1 with a full configuration and AWS pointed
#      at 127.0.0.1:9, and times spawn -> first /next (ready) and spawn -> the response
#      to one API Gateway event from events/ (first response).
#   3. a table of everything.
#
# Knobs (environment): MEASURE_RUNS (cold starts per function, default 20),
# MEASURE_ARM64=0 (skip the arm64 build), MEASURE_BUILD=0 (use the binaries already in
# target/release). Cold starts are wall-clock times on this machine: run it on an idle
# one; the table prints the load average. The release builds dominate the run time
# (minutes on 2 cores; seconds when nothing changed). Re-runnable; every process it
# starts is stopped on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR=never
FUNCTIONS=(login launch jwks services)
PACKAGES=(-p lti-login -p lti-launch -p lti-jwks -p lti-services)
RUNS="${MEASURE_RUNS:-20}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
START=$SECONDS

TMP="$(mktemp -d)"
HARNESS_PID=""
cleanup() {
  if [ -n "$HARNESS_PID" ]; then
    kill -TERM "$HARNESS_PID" 2>/dev/null || true
    wait "$HARNESS_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section() { printf '\n=== %s (%ss) ===\n' "$*" "$((SECONDS - START))"; }
SIZES="$TMP/sizes.tsv"
NOTES="$TMP/notes.txt"
: >"$SIZES"
: >"$NOTES"

# record FUNCTION KEY FILE: its size, and the size of a zip holding it as bootstrap.
record() {
  local name=$1 key=$2 file=$3
  printf '%s\t%s\t%s\n' "$name" "$key" "$(stat -c %s "$file")" >>"$SIZES"
  python3 - "$file" "$TMP/$name-$key.zip" <<'EOF' >>"$SIZES"
import os, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.write(src, "bootstrap")
name, key = os.path.basename(dst)[:-4].split("-", 1)
print(f"{name}\t{key}_zip\t{os.path.getsize(dst)}")
EOF
}

section "release build, host ($(rustc -vV | sed -n 's/^host: //p'))"
if [ "${MEASURE_BUILD:-1}" != 0 ]; then
  t=$SECONDS
  cargo build --release --locked "${PACKAGES[@]}"
  echo "build: $((SECONDS - t)) s" | tee -a "$NOTES"
fi
for f in "${FUNCTIONS[@]}"; do
  record "$f" x86_64 "$TARGET_DIR/release/$f"
  printf '%-9s %s bytes\n' "$f" "$(stat -c %s "$TARGET_DIR/release/$f")"
done

section "release build, arm64 (cargo lambda)"
LAMBDA_BIN="$ROOT/.tools/venv/bin/cargo-lambda"
if [ "${MEASURE_ARM64:-1}" = 0 ]; then
  echo "skipped (MEASURE_ARM64=0)"
elif [ ! -x "$LAMBDA_BIN" ]; then
  echo "skipped: $LAMBDA_BIN not installed (tests/run.sh installs it)" | tee -a "$NOTES"
else
  # cargo-lambda finds zig (the ziglang wheel) through the venv's python.
  export PATH="$ROOT/.tools/venv/bin:$PATH"
  arm_ok=1
  if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    rustup target add aarch64-unknown-linux-gnu || arm_ok=0
  fi
  if [ "$arm_ok" = 1 ]; then
    t=$SECONDS
    bins=()
    for f in "${FUNCTIONS[@]}"; do bins+=(--bin "$f"); done
    set +e
    cargo lambda build --release --arm64 --locked "${bins[@]}" 2>&1 | tee "$TMP/arm64.log"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" = 0 ]; then
      echo "arm64 build (cargo lambda, zig): $((SECONDS - t)) s" | tee -a "$NOTES"
      # cargo lambda --release fills in what [profile.release] leaves unset (strip, lto,
      # codegen-units, panic) and adds -C target-cpu for the Lambda CPU.
      if ! sed -n '/^\[profile\.release\]/,/^\[/p' Cargo.toml | grep -q '^panic'; then
        echo "arm64 binaries are built with panic=\"abort\" (cargo lambda's default when [profile.release] sets no panic) and -C target-cpu=neoverse-n1; the host build unwinds" | tee -a "$NOTES"
      fi
      for f in "${FUNCTIONS[@]}"; do
        record "$f" arm64 "$TARGET_DIR/lambda/$f/bootstrap"
        printf '%-9s %s bytes (%s)\n' "$f" "$(stat -c %s "$TARGET_DIR/lambda/$f/bootstrap")" \
          "$(file -b "$TARGET_DIR/lambda/$f/bootstrap" 2>/dev/null | cut -d, -f1-2 || true)"
      done
    else
      echo "arm64 build failed; last lines:" | tee -a "$NOTES"
      tail -n 20 "$TMP/arm64.log" | tee -a "$NOTES"
    fi
  else
    echo "arm64 skipped: rustup target add aarch64-unknown-linux-gnu failed" | tee -a "$NOTES"
  fi
fi

section "cold start: fake Lambda Runtime API, $RUNS runs per function"
python3 tests/measure/coldstart.py --bin-dir "$TARGET_DIR/release" --events events \
  --runs "$RUNS" --sizes "$SIZES" --notes "$NOTES" &
HARNESS_PID=$!
status=0
wait "$HARNESS_PID" || status=$?
HARNESS_PID=""
echo "total: $((SECONDS - START)) s"
exit "$status"
