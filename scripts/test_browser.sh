#!/usr/bin/env bash
# scripts/test_browser.sh - the browser suite: the demo page (web/) in headless
# Chromium, driven by playwright-core (web/test/e2e.test.mjs under node
# --test): cross-origin isolated -> threaded build, a 2-thread render with
# rising progress, Cancel, the JavaScript-function mode, keyboard and phone
# layout; without COOP/COEP -> the single-thread build. Then the benchmark
# (web/bench.mjs: mapKernel 1 vs 2 threads, x => x * 2 over 10^6 numbers,
# 10^5 objects vs hand-batched workerpool).
# Exits nonzero if a test failed.
#
#   bash scripts/test_browser.sh
#
# Installs what is missing: Debian's chromium, nodejs and npm (as root, or
# with sudo; PM_NO_INSTALL=1 only reports them) and web/'s npm dependencies
# (playwright-core, which never downloads a browser: it drives
# /usr/bin/chromium; workerpool, the benchmark's peer); builds wasm/dist (scripts/demo_web.sh --build-only)
# when it is missing.
#
# Environment: CHROMIUM (the browser to drive, default: chromium on PATH),
# PARMAP_NO_BENCH=1 (skip the benchmark), BENCH_REPS (default 5).
# Leaves build/browser/test.log, build/browser/bench.jsonl (the benchmark's
# JSON lines), build/web/screenshots/*.png, and build/browser/results: one
# line "PASSED FAILED SKIPPED" (test counts, the benchmark counting as one
# test; "0 1 0" when setup failed), which scripts/test.sh adds to its totals.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)
OUT="$ROOT/build/browser"
SHOTS="$ROOT/build/web/screenshots"
mkdir -p "$OUT"
rm -f "$OUT/results"

fail() { echo "0 1 0" >"$OUT/results"; exit 1; }

source "$ROOT/scripts/install_missing.sh"
PACKAGES=("cmd:node nodejs" "cmd:npm npm")
[[ -n ${CHROMIUM:-} ]] || PACKAGES+=("cmd:chromium chromium")
install_missing --recommends "${PACKAGES[@]}" || fail
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
    || { echo "test_browser.sh: Node 20 or later is needed (have $(node --version))" >&2; fail; }

echo "--- npm dependencies (web/: playwright-core, no browser download; workerpool, the benchmark's peer)"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd "$ROOT/web" && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; }) || fail

if [[ ! -f $ROOT/wasm/dist/web/parmap-mt.wasm || ! -f $ROOT/wasm/dist/web/parmap-st.wasm ||
      ! -f $ROOT/wasm/dist/vendor/acorn.mjs || ! -f $ROOT/wasm/dist/browser.mjs ]]; then
    echo "--- wasm/dist is missing: building it (scripts/demo_web.sh --build-only)"
    bash "$ROOT/scripts/demo_web.sh" --build-only || fail
fi

echo "--- node --test web/test ($("${CHROMIUM:-chromium}" --version 2>/dev/null | head -n 1), node $(node --version))"
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
log="$OUT/test.log"
rc=0
# Bounded as in test_node.sh: per test, per file's exit, and the whole run.
(cd "$ROOT/web" && PARMAP_SCREENSHOTS="$SHOTS" timeout -k 30 "${SUITE_TIMEOUT_S:-1800}" \
    node --test --test-concurrency=1 --test-reporter=spec --test-timeout="${TEST_TIMEOUT_MS:-300000}" \
         --import "$ROOT/scripts/node_test_watchdog.mjs" test/) 2>&1 \
    | tee "$log" || rc=1

# The spec reporter's summary: "ℹ pass N", "ℹ fail N", "ℹ skipped N".
passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -n 1)
skipped=$(sed -n 's/^ℹ skipped \([0-9]*\)$/\1/p' "$log" | tail -n 1)
if [[ -z $passed || -z $failed ]]; then
    echo "test_browser.sh: no test summary in $log" >&2
    fail
fi
skipped=${skipped:-0}
[[ $failed == 0 ]] || rc=1
shots=("$SHOTS"/*.png)
echo "test_browser.sh: ${#shots[@]} screenshots in ${SHOTS#"$ROOT"/}/"

# The benchmark: measurements, not pass/fail on a shared machine; it counts
# as a failed test only when it cannot run.
if [[ ${PARMAP_NO_BENCH:-} == 1 ]]; then
    skipped=$((skipped + 1))
else
    echo "--- node web/bench.mjs (JSON lines, also in build/browser/bench.jsonl)"
    if (cd "$ROOT/web" && timeout -k 10 600 node bench.mjs --reps "${BENCH_REPS:-5}" --out "$OUT/bench.jsonl"); then
        passed=$((passed + 1))
    else
        echo "test_browser.sh: the benchmark failed" >&2
        failed=$((failed + 1))
        rc=1
    fi
fi

echo "$passed $failed $skipped" >"$OUT/results"
echo "test_browser.sh: $passed passed, $failed failed, $skipped skipped"
exit $rc
