#!/usr/bin/env bash
# scripts/test_wasi.sh - the WASI suite: build the C library and every test
# program for wasm32-wasi (cmake/wasi.cmake) in build/wasi and run them with
# ctest, each under Node's node:wasi (wasi/run.mjs). Exits nonzero if a test
# failed. Installs the wasi-sdk pieces Debian packages when missing (as root,
# or with sudo; PM_NO_INSTALL=1 only reports them).
#
#   bash scripts/test_wasi.sh
#
# Environment: JOBS (build parallelism, default nproc), CTEST_JOBS (default 2),
# PM_CC_WASI (clang to use, default clang).
# Leaves build/wasi/ctest.log and build/wasi/results: one line "PASSED FAILED
# SKIPPED" (test counts; "0 1 0" when configure or build failed), which
# scripts/test.sh adds to its totals.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)
DIR="$ROOT/build/wasi"
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
CTEST_JOBS=${CTEST_JOBS:-2}
CC_WASI=${PM_CC_WASI:-clang}

# Debian 12 packages: wasi-libc (headers, libc.a, crt1.o under
# /usr/{include,lib}/wasm32-wasi), clang 14's wasm32 builtins
# (libclang_rt.builtins-wasm32.a), wasm-ld, clang, cmake, node. A node,
# clang, cmake or wasm-ld from elsewhere on PATH is fine too.
source "$ROOT/scripts/install_missing.sh"
PACKAGES=(
    "pkg:wasi-libc                 wasi-libc"
    "pkg:libclang-rt-14-dev-wasm32 libclang-rt-14-dev-wasm32"
    "pkg:lld|cmd:wasm-ld           lld"
    "pkg:clang|cmd:$CC_WASI        clang"
    "pkg:cmake|cmd:cmake           cmake"
    "pkg:nodejs|cmd:node           nodejs"
)

fail() { # fail: configure/build/setup failed; count it as one failed test
    mkdir -p "$DIR" && echo "0 1 0" >"$DIR/results"
    exit 1
}

install_missing "${PACKAGES[@]}" || fail
command -v node >/dev/null || { echo "test_wasi.sh: node not found" >&2; fail; }

# A build dir from another checkout is started afresh.
if [[ -f $DIR/CMakeCache.txt ]]; then
    home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:[A-Z]*=//p' "$DIR/CMakeCache.txt")
    [[ $home == "$ROOT" ]] || rm -rf "$DIR"
fi
rm -f "$DIR/results"

echo "--- configure build/wasi (cmake/wasi.cmake, $CC_WASI --target=wasm32-wasi)"
cmake -S "$ROOT" -B "$DIR" -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/wasi.cmake" \
      -DCMAKE_C_COMPILER="$CC_WASI" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPM_BUILD_TESTS=ON -DPM_BUILD_EXAMPLES=OFF -DPM_BUILD_BENCH=OFF \
      -DPM_BUILD_SHARED=OFF || fail
echo "--- build build/wasi"
cmake --build "$DIR" -j "$JOBS" || fail

echo "--- ctest build/wasi (node $(node --version), wasi/run.mjs)"
log="$DIR/ctest.log"
rc=0
(cd "$DIR" && ctest --output-on-failure --no-tests=error -j "$CTEST_JOBS") 2>&1 \
    | tee "$log" || rc=1

# ctest's summary: "N% tests passed, F tests failed out of T"; skipped tests
# count as passed there and are listed as "(Skipped)" below it.
total=$(sed -n 's/.*tests passed, [0-9]* tests\{0,1\} failed out of \([0-9]*\).*/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of.*/\1/p' "$log" | tail -n 1)
skipped=$(grep -c '(Skipped)' "$log" || true)
if [[ -z $total || $total == 0 ]]; then
    echo "test_wasi.sh: build/wasi ran no test" >&2
    fail
fi
echo "$((total - failed - skipped)) $failed $skipped" >"$DIR/results"
echo "test_wasi.sh: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
exit $rc
