#!/usr/bin/env bash
# scripts/demo_mpi.sh - the MPI executor on one machine: `bash scripts/demo_mpi.sh
# [ranks] [n]` on a fresh Debian 12 machine installs Open MPI and the build
# tools when missing, builds examples/mpi.c with the MPI executor in
# build/demo-mpi and runs it under mpirun: Collatz chain lengths of 1..n
# (default 2,000,000) over `ranks` ranks (default 2), results on rank 0.
# The example links libparmap_mpi (the MPI executor, parmap::mpi) beside
# libparmap, which itself links no MPI: the script shows both.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
BUILD="$ROOT/build/demo-mpi"
RANKS=${1:-2}
N=${2:-2000000}

PACKAGES=(
    "cmd:cmake     cmake"
    "cmd:make      make"
    "cmd:cc        gcc"
    "pkg:libc6-dev libc6-dev"
    "pkg:libopenmpi-dev libopenmpi-dev"
    "cmd:mpirun    openmpi-bin"
)
source "$ROOT/scripts/install_missing.sh"
install_missing "${PACKAGES[@]}"

if [[ -f $BUILD/CMakeCache.txt ]] &&
   ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD"
fi
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPM_WITH_MPI=ON \
      -DPM_BUILD_TESTS=OFF -DPM_BUILD_BENCH=OFF -DPM_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target pm_example_mpi parmap_mpi_shared \
      >/dev/null

# What loads MPI: libparmap_mpi does, libparmap does not.
if command -v readelf >/dev/null; then
    needs() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
    echo "=== libparmap.so needs: $(needs "$BUILD/libparmap.so")"
    echo "=== libparmap_mpi.so needs: $(needs "$BUILD/libparmap_mpi.so")"
fi

# Open MPI on one machine: as root it wants --allow-run-as-root, more ranks
# than cores --oversubscribe, and --bind-to none lets a rank use every core.
flags=(--oversubscribe --bind-to none)
[[ $(id -u) == 0 ]] && flags+=(--allow-run-as-root)
echo "=== examples/mpi.c: mpirun -np $RANKS ${flags[*]} build/demo-mpi/examples/mpi $N"
mpirun -np "$RANKS" "${flags[@]}" "$BUILD/examples/mpi" "$N"
