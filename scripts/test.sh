#!/usr/bin/env bash
# scripts/test.sh - THE test command: `bash scripts/test.sh` on a fresh Debian 12
# machine (as root, or with sudo) installs what is missing, then runs every
# test suite and exits nonzero if any failed.
#
#   bash scripts/test.sh                 every suite in SUITES below
#   bash scripts/test.sh c-asan c-tsan   only those suites
#
# Suites today (each builds in its own directory under build/ and runs ctest):
#   c-plain  RelWithDebInfo build, gcc                          build/plain
#            (every C suite builds the MPI executor and runs its tests
#            under mpirun, label "mpi")
#   c-asan   -DPM_SANITIZE=address,undefined, clang             build/asan
#   c-tsan   -DPM_SANITIZE=thread, clang                        build/tsan
#   wasi     clang --target=wasm32-wasi, run under node:wasi    build/wasi
#   node     the npm package (wasm/): emcc builds, node --test   build/wasm
#   browser  the demo page (web/) in headless Chromium, + bench  build/browser
# Environment: JOBS (build parallelism, default nproc), CTEST_JOBS (default 2),
# PM_CC_PLAIN / PM_CC_ASAN / PM_CC_TSAN (compilers), PM_NO_INSTALL=1 (never
# call apt-get: only report what is missing).
#
# Adding a suite (node --test, browser e2e, WASI, ...): write a function
# suite_NAME (dashes in NAME become underscores) that returns nonzero on
# failure and calls `count_results PASSED FAILED SKIPPED` for the totals line;
# add its packages to PACKAGES; append NAME to SUITES. See "Later suites".
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
CTEST_JOBS=${CTEST_JOBS:-2}

SUITES=(c-plain c-asan c-tsan wasi node browser)

# ------------------------------------------------------------ prerequisites
# One line per need: "how to check it" and the Debian 12 package that gives
# it. cmd:X = command X on PATH; pkg:X = dpkg says package X is installed.
# (--no-install-recommends skips libc6-dev and clang's sanitizer runtime, so
# they are listed on their own.)
PACKAGES=(
    "cmd:cmake        cmake"
    "cmd:make         make"
    "cmd:gcc          gcc"
    "pkg:libc6-dev    libc6-dev"
    "cmd:clang        clang"
    "pkg:libclang-rt-14-dev libclang-rt-14-dev"   # clang 14's ASan/UBSan/TSan runtimes
    "cmd:pkg-config   pkg-config"                  # tests/downstream
    "pkg:libomp-dev   libomp-dev"                  # bench/: the OpenMP comparison
    "cmd:setarch      util-linux"                  # TSan/ASan without ASLR, if needed
    "cmd:nm           binutils"                    # tests/downstream: exported symbols
    "cmd:node         nodejs"                      # wasi: node:wasi runs the tests
    "pkg:libopenmpi-dev libopenmpi-dev"            # the MPI executor (PM_MPI)
    "cmd:mpirun       openmpi-bin"                 # its tests run under mpirun
    # Later suites add theirs here.
)

# install_missing: the apt-get block every script in scripts/ shares.
source "$ROOT/scripts/install_missing.sh"

# ------------------------------------------------------------- bookkeeping
TOTAL_PASSED=0 TOTAL_FAILED=0 TOTAL_SKIPPED=0
count_results() { # count_results PASSED FAILED SKIPPED: add a suite's tests
    TOTAL_PASSED=$((TOTAL_PASSED + $1))
    TOTAL_FAILED=$((TOTAL_FAILED + $2))
    TOTAL_SKIPPED=$((TOTAL_SKIPPED + $3))
}

# ------------------------------------------------------------ C (CMake) suites
# Programs built with -fsanitize may refuse to start when the kernel places
# mappings where the sanitizer wants its shadow memory ("unexpected memory
# mapping", seen with large vm.mmap_rnd_bits). Running without address-space
# randomisation (setarch -R) avoids it without changing the machine's sysctls.
# Sets SAN_WRAP to the command prefix that makes a sanitized program run.
SAN_WRAP=()
probe_sanitizer() { # probe_sanitizer CC SANITIZE
    local cc=$1 san=$2 dir
    SAN_WRAP=()
    dir=$(mktemp -d) || return 1
    cat >"$dir/probe.c" <<'EOF'
#include <pthread.h>
static int hits;
static void *hit(void *arg) { (void)arg; __atomic_fetch_add(&hits, 1, __ATOMIC_SEQ_CST); return 0; }
int main(void) {
    pthread_t t;
    if (pthread_create(&t, 0, hit, 0)) return 1;
    hit(0);
    pthread_join(t, 0);
    return hits != 2;
}
EOF
    local rc=0
    if ! "$cc" -fsanitize="$san" -g -pthread "$dir/probe.c" -o "$dir/probe" >"$dir/log" 2>&1; then
        echo "test.sh: $cc cannot build with -fsanitize=$san:" >&2
        cat "$dir/log" >&2
        rc=1
    elif "$dir/probe" >"$dir/log" 2>&1; then
        :
    elif setarch "$(uname -m)" -R "$dir/probe" >/dev/null 2>&1; then
        echo "test.sh: -fsanitize=$san programs need ASLR off here ($(head -n 1 "$dir/log"));" \
             "running ctest under setarch $(uname -m) -R"
        SAN_WRAP=(setarch "$(uname -m)" -R)
    else
        echo "test.sh: a -fsanitize=$san program does not run here, even under setarch -R:" >&2
        cat "$dir/log" >&2
        rc=1
    fi
    rm -rf "$dir"
    return $rc
}

# c_suite NAME SANITIZE CC: configure build/NAME, build it, run ctest in it.
c_suite() {
    local name=$1 san=$2 cc dir="$ROOT/build/$1" log
    cc=$(command -v "$3") || { echo "test.sh: compiler $3 not found" >&2; count_results 0 1 0; return 1; }
    log="$dir/ctest.log"

    # A build dir from another checkout or compiler is started afresh.
    if [[ -f $dir/CMakeCache.txt ]]; then
        local home old_cc
        home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:[A-Z]*=//p' "$dir/CMakeCache.txt")
        old_cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
        if [[ $home != "$ROOT" || $(readlink -f "$old_cc") != $(readlink -f "$cc") ]]; then
            rm -rf "$dir"
        fi
    fi

    SAN_WRAP=()
    if [[ -n $san ]]; then
        probe_sanitizer "$cc" "$san" || { count_results 0 1 0; return 1; }
    fi

    echo "--- configure build/$name ($cc${san:+, PM_SANITIZE=$san})"
    cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DCMAKE_C_COMPILER="$cc" -DPM_SANITIZE="$san" -DPM_BUILD_TESTS=ON -DPM_WITH_MPI=ON \
        || { count_results 0 1 0; return 1; }
    echo "--- build build/$name"
    cmake --build "$dir" -j "$JOBS" || { count_results 0 1 0; return 1; }

    echo "--- ctest build/$name${SAN_WRAP[*]:+ (under ${SAN_WRAP[*]})}"
    local rc=0
    (cd "$dir" && "${SAN_WRAP[@]}" ctest --output-on-failure -j "$CTEST_JOBS") 2>&1 \
        | tee "$log" || rc=1

    # ctest's summary: "N% tests passed, F tests failed out of T"; skipped tests
    # count as passed there and are listed as "(Skipped)" below it.
    local total failed skipped
    total=$(sed -n 's/.*tests passed, [0-9]* tests\{0,1\} failed out of \([0-9]*\).*/\1/p' "$log" | tail -n 1)
    failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of.*/\1/p' "$log" | tail -n 1)
    skipped=$(grep -c '(Skipped)' "$log" || true)
    if [[ -z $total || $total == 0 ]]; then
        echo "test.sh: build/$name ran no test" >&2
        count_results 0 1 0
        return 1
    fi
    count_results $((total - failed - skipped)) "$failed" "$skipped"
    return $rc
}

suite_c_plain() { c_suite plain "" "${PM_CC_PLAIN:-gcc}"; }
suite_c_asan()  { c_suite asan address,undefined "${PM_CC_ASAN:-clang}"; }
# clang for TSan: gcc 12 warns (-Wtsan, an error under -Werror) on
# atomic_thread_fence, which TSan does not model.
suite_c_tsan()  { c_suite tsan thread "${PM_CC_TSAN:-clang}"; }

# WASI: the library and its C tests for wasm32-wasi, run under node:wasi
# (scripts/test_wasi.sh installs wasi-libc and libclang-rt-14-dev-wasm32).
suite_wasi() {
    bash "$ROOT/scripts/test_wasi.sh"
    local rc=$?
    # shellcheck disable=SC2046 # three numbers, split on purpose
    count_results $(cat "$ROOT/build/wasi/results" 2>/dev/null || echo 0 1 0)
    return $rc
}

# Node: the npm package parmap-wasm (wasm/), both WebAssembly builds under
# node --test, including a headless-Chromium test (scripts/test_node.sh
# installs emscripten, chromium and the npm dependencies, and builds).
suite_node() {
    bash "$ROOT/scripts/test_node.sh"
    local rc=$?
    # shellcheck disable=SC2046 # three numbers, split on purpose
    count_results $(cat "$ROOT/build/node/results" 2>/dev/null || echo 0 1 0)
    return $rc
}

# Browser: the demo page (web/) in headless Chromium through playwright-core,
# served with and without COOP/COEP, then web/bench.mjs (scripts/test_browser.sh
# installs chromium and web/'s npm dependencies, and builds wasm/dist if missing).
suite_browser() {
    bash "$ROOT/scripts/test_browser.sh"
    local rc=$?
    # shellcheck disable=SC2046 # three numbers, split on purpose
    count_results $(cat "$ROOT/build/browser/results" 2>/dev/null || echo 0 1 0)
    return $rc
}

# ------------------------------------------------------------------- main
main() {
    local suites=("$@") suite results=() failed_suites=0
    ((${#suites[@]})) || suites=("${SUITES[@]}")
    for suite in "${suites[@]}"; do
        declare -F "suite_${suite//-/_}" >/dev/null \
            || { echo "test.sh: unknown suite '$suite' (have: ${SUITES[*]})" >&2; return 2; }
    done
    install_missing "${PACKAGES[@]}" || return 1

    # Sanitizer reports with stack traces; stop at the first one.
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

    for suite in "${suites[@]}"; do
        echo "=== suite $suite"
        local start=$SECONDS
        if "suite_${suite//-/_}"; then
            results+=("PASS  $suite ($((SECONDS - start)) s)")
        else
            results+=("FAIL  $suite ($((SECONDS - start)) s)")
            failed_suites=$((failed_suites + 1))
        fi
    done

    echo "=== summary"
    printf '%s\n' "${results[@]}"
    echo "total: $TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
    ((failed_suites == 0))
}

main "$@"
