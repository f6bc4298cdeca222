#!/usr/bin/env bash
# The longer run of the property tests of hostile input (issue 14, item 1). The test
# command (tests/run.sh, `cargo test`) runs every fuzz_* test with its fixed case count
# and seed; this runs them with many more cases, a seed of your choice, and prints how
# long each suite took.
#
#   tests/fuzz.sh                                   # 100000 cases a test, seed 0x5EED1414 (= 1592595476)
#   PROPTEST_CASES=1000000 PROPTEST_RNG_SEED=7 tests/fuzz.sh
#
# A failure prints the shrunk input; make it a named regression test next to the
# property, then fix the code.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_INCREMENTAL=0
export PROPTEST_CASES="${PROPTEST_CASES:-100000}"
echo "fuzz: PROPTEST_CASES=$PROPTEST_CASES PROPTEST_RNG_SEED=${PROPTEST_RNG_SEED:-default}"
# Debug test binaries, shared with the test command (no second build).
for suite in "lti-core --test fuzz" "lti-dev --test fuzz_http"; do
  started=$(date +%s)
  # shellcheck disable=SC2086
  cargo test --locked -p $suite -- --test-threads=2 fuzz_
  echo "fuzz: $suite took $(($(date +%s) - started)) s"
done
