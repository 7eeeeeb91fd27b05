#!/usr/bin/env bash
# scripts/demo.sh - THE run command: `bash scripts/demo.sh [scale]` on a fresh
# Debian 12 machine installs what is missing, builds the examples in
# build/demo and runs the progress-bar demo (examples/progress.c: counting
# primes on every CPU; scale 1 by default, 0.1 for a quick look, 5 for a long
# one), then examples/hello.c.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
BUILD="$ROOT/build/demo"

# What the build needs, as "check package" (cmd:X = command on PATH,
# pkg:X = Debian package installed). libc6-dev is only a Recommends of gcc.
PACKAGES=(
    "cmd:cmake     cmake"
    "cmd:make      make"
    "cmd:cc        gcc"
    "pkg:libc6-dev libc6-dev"
)
source "$ROOT/scripts/install_missing.sh"
install_missing "${PACKAGES[@]}"

# A build dir from another checkout is started afresh.
if [[ -f $BUILD/CMakeCache.txt ]] &&
   ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD"
fi
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DPM_BUILD_TESTS=OFF -DPM_BUILD_BENCH=OFF -DPM_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" \
      --target pm_example_progress pm_example_hello >/dev/null

echo "=== examples/progress.c ${1:-1}: count primes on $(nproc 2>/dev/null || echo '?') CPUs with a progress bar"
"$BUILD/examples/progress" "${1:-1}"
echo
echo "=== examples/hello.c: square roots with pm_map"
"$BUILD/examples/hello"
