#!/usr/bin/env bash
# scripts/test_node.sh - the Node suite: build the npm package parmap-wasm
# (wasm/: the C core compiled with Emscripten, threaded and single-thread) and
# run its `node --test` suites (wasm/test/), each on the three engines
# (threaded, workers, single). Exits nonzero if a test failed.
# Installs what is missing: Debian's emscripten (as root, or with sudo;
# PM_NO_INSTALL=1 only reports it) and the package's npm dependencies.
#
#   bash scripts/test_node.sh
#
# Environment: JOBS (build parallelism), PARMAP_HUGE_STREAM (items of the
# flat-memory imap test, run in a child process on each engine, default 1e8;
# ~30 s each), PARMAP_LONG_STREAM (items of the in-runner imap stream, 1e6).
# Leaves build/node/test.log and build/node/results: one line "PASSED FAILED
# SKIPPED" (test counts; "0 1 0" when setup or the build failed), which
# scripts/test.sh adds to its totals.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)
OUT="$ROOT/build/node"
mkdir -p "$OUT"
rm -f "$OUT/results"

fail() { echo "0 1 0" >"$OUT/results"; exit 1; }

source "$ROOT/scripts/install_missing.sh"
PACKAGES=(
    "cmd:emcc     emscripten"
    "cmd:node     nodejs"
    "cmd:npm      npm"
    "cmd:cmake    cmake"
    "cmd:make     make"
    "cmd:chromium chromium"   # the browser test
)
install_missing --recommends "${PACKAGES[@]}" || fail
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
    || { echo "test_node.sh: Node 20 or later is needed (have $(node --version))" >&2; fail; }
[[ -d /usr/share/nodejs ]] && export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}

cd "$ROOT/wasm" || fail
echo "--- npm dependencies (wasm/)"
if [[ -f package-lock.json ]]; then
    npm ci --no-audit --no-fund || npm install --no-audit --no-fund || fail
else
    npm install --no-audit --no-fund || fail
fi

echo "--- build wasm/dist (emcc $(emcc --version | head -n 1 | sed 's/.*) //'))"
BUILD_DIR="$ROOT/build/wasm" bash scripts/build.sh || fail

echo "--- node --test wasm/test (node $(node --version))"
log="$OUT/test.log"
rc=0
# One file at a time: the suites measure timing (a non-blocking main thread,
# cancellation) and each uses every core. No hang can stall CI: a test fails
# after TEST_TIMEOUT_MS, a file whose process does not exit after its tests
# fails (scripts/node_test_watchdog.mjs), and the whole run is bounded.
node_test=(node --test --test-concurrency=1 --test-reporter=spec
           --test-timeout="${TEST_TIMEOUT_MS:-300000}" --import "$ROOT/scripts/node_test_watchdog.mjs")
timeout -k 30 "${SUITE_TIMEOUT_S:-2400}" "${node_test[@]}" test/ 2>&1 | tee "$log" || rc=1

# The spec reporter's summary: "ℹ pass N", "ℹ fail N", "ℹ skipped N".
passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -n 1)
skipped=$(sed -n 's/^ℹ skipped \([0-9]*\)$/\1/p' "$log" | tail -n 1)
if [[ -z $passed || -z $failed ]]; then
    echo "test_node.sh: no test summary in $log" >&2
    fail
fi
[[ $failed == 0 ]] || rc=1
echo "$passed $failed ${skipped:-0}" >"$OUT/results"
echo "test_node.sh: $passed passed, $failed failed, ${skipped:-0} skipped"
exit $rc
