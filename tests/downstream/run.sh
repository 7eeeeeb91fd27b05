#!/usr/bin/env bash
# run.sh BUILD_DIR - prove an installed parmap is usable by another project.
#
# 1. `cmake --install BUILD_DIR` into a temporary prefix and check its layout.
# 2. Configure, build and run tests/downstream (find_package(parmap) against
#    that prefix only), linking parmap::parmap (static) and, when it was built,
#    parmap::parmap_shared.
# 3. Compile main.c with `cc $(pkg-config --cflags --libs parmap)` (shared, or
#    static when only the archive is there) and with `pkg-config --static`
#    against a copy of the prefix that has no shared library.
# 4. Check that the shared library exports nothing but pm_* symbols.
# When parmap was built with MPI, each step also covers libparmap_mpi:
# parmap::mpi / parmap::mpi_shared and pkg-config parmap-mpi build main_mpi.c,
# which runs plainly and, when the build's mpiexec is there, under it on 2
# ranks; and a program without it (main.c) loads no MPI.
#
# The downstream builds reuse BUILD_DIR's C compiler and PM_SANITIZE flags: a
# sanitized libparmap.a only links into a program built with the same runtime.
# Registered as the ctest test `install_downstream` by cmake/install.cmake.
# Exit 0 = pass, 1 = fail, 77 = cannot run here (says why).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:?usage: run.sh BUILD_DIR}
build=$(cd "$build" && pwd)
cache="$build/CMakeCache.txt"
[[ -f $cache ]] || { echo "run.sh: $cache not found: not a configured build" >&2; exit 1; }

cache_get() { # cache_get NAME -> value of NAME in the build's CMakeCache.txt
    sed -n "s/^$1:[A-Z]*=//p" "$cache" | head -n 1
}
cc=$(cache_get CMAKE_C_COMPILER)
sanitize=$(cache_get PM_SANITIZE)
generator=$(cache_get CMAKE_GENERATOR)
build_type=$(cache_get CMAKE_BUILD_TYPE)
san_flags=""
if [[ -n $sanitize ]]; then
    san_flags="-fsanitize=$sanitize -fno-omit-frame-pointer -fno-sanitize-recover=all"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parmap-downstream.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }
# run_logged LOG CMD...: run quietly, show the log only when the command fails.
run_logged() {
    local log=$1; shift
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        fail "$*"
    fi
}

step "cmake --install $build --prefix $prefix"
run_logged "$tmp/install.log" cmake --install "$build" --prefix "$prefix"

header=$(find "$prefix" -path '*/include/parmap.h' | head -n 1)
archive=$(find "$prefix" -name libparmap.a | head -n 1)
shared=$(find "$prefix" -name 'libparmap.so' | head -n 1)
pcfile=$(find "$prefix" -name parmap.pc | head -n 1)
config=$(find "$prefix" -name parmapConfig.cmake | head -n 1)
version_file=$(find "$prefix" -name parmapConfigVersion.cmake | head -n 1)
[[ -n $header ]]       || fail "include/parmap.h not installed"
[[ -n $archive ]]      || fail "libparmap.a not installed"
[[ -n $pcfile ]]       || fail "parmap.pc not installed"
[[ -n $config ]]       || fail "parmapConfig.cmake not installed"
[[ -n $version_file ]] || fail "parmapConfigVersion.cmake not installed"
if grep -q 'parmap::parmap_shared' "$(dirname "$config")/parmapTargets.cmake"; then
    [[ -n $shared ]] || fail "parmap::parmap_shared is exported but libparmap.so is not installed"
fi
# libparmap_mpi: all of it or nothing (PM_HAVE_MPI in the build).
mpi_archive=$(find "$prefix" -name libparmap_mpi.a | head -n 1)
mpi_shared=$(find "$prefix" -name 'libparmap_mpi.so' | head -n 1)
mpi_pcfile=$(find "$prefix" -name parmap-mpi.pc | head -n 1)
mpi_targets=$(find "$prefix" -name parmapMpiTargets.cmake | head -n 1)
mpi=0
[[ $(cache_get PM_WITH_MPI) != OFF && -f $build/parmap-mpi.pc ]] && mpi=1
if [[ $mpi == 1 ]]; then
    [[ -n $mpi_archive ]] || fail "libparmap_mpi.a not installed"
    [[ -n $mpi_pcfile ]]  || fail "parmap-mpi.pc not installed"
    [[ -n $mpi_targets ]] || fail "parmapMpiTargets.cmake not installed"
    [[ -z $shared || -n $mpi_shared ]] || fail "libparmap.so is installed but libparmap_mpi.so is not"
else
    [[ -z $mpi_archive$mpi_shared$mpi_pcfile$mpi_targets ]] \
        || fail "libparmap_mpi files installed by a build without MPI"
fi
libdir=$(dirname "$archive")
header_version=$(sed -n 's/^#define PM_VERSION_STRING "\(.*\)"/\1/p' "$header")
echo "installed parmap $header_version: $(cd "$prefix" && find . -type f | sort | tr '\n' ' ')"

# --- CMake find_package ------------------------------------------------------
step "find_package(parmap) downstream build (compiler $cc${sanitize:+, -fsanitize=$sanitize})"
gen_args=()
case $generator in "Unix Makefiles"|Ninja) gen_args=(-G "$generator") ;; esac
run_logged "$tmp/configure.log" cmake -S "$here" -B "$tmp/ds" "${gen_args[@]}" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE="${build_type:-Release}" \
    -DCMAKE_C_FLAGS="$san_flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$san_flags"
found_dir=$(sed -n 's/^parmap_DIR:[A-Z]*=//p' "$tmp/ds/CMakeCache.txt")
[[ $found_dir == "$prefix"/* ]] || fail "find_package used $found_dir, not the fresh prefix $prefix"
run_logged "$tmp/build.log" cmake --build "$tmp/ds"

# MPI runs: the build's mpiexec, with the flags CMakeLists.txt gives Open MPI
# (as root, 2 ranks on any number of cores), and in sanitizer builds the
# suppressions of what Open MPI itself leaks or locks (tests/mpi/lsan.supp,
# tests/mpi/tsan.supp: Open MPI is not built with the sanitizers).
mpiexec=$(cache_get MPIEXEC_EXECUTABLE)
mpi_flags=()
if [[ -n $mpiexec && -x $mpiexec ]] && [[ $("$mpiexec" --version 2>/dev/null) =~ Open\ MPI|OpenRTE ]]; then
    mpi_flags=(--allow-run-as-root --oversubscribe --bind-to none)
fi
run_mpi() { # run_mpi NAME PROGRAM: plainly, then on 2 ranks when mpiexec is there
    local name=$1 program=$2
    local tsan="halt_on_error=1:second_deadlock_stack=1:suppressions=$here/../mpi/tsan.supp"
    LSAN_OPTIONS="suppressions=$here/../mpi/lsan.supp:print_suppressions=0" ASAN_OPTIONS=fast_unwind_on_malloc=0 \
        TSAN_OPTIONS=$tsan "$program" || fail "$name exited $?"
    if [[ -n $mpiexec && -x $mpiexec ]]; then
        step "$name under $(basename "$mpiexec") -n 2"
        LSAN_OPTIONS="suppressions=$here/../mpi/lsan.supp:print_suppressions=0" ASAN_OPTIONS=fast_unwind_on_malloc=0 \
            TSAN_OPTIONS=$tsan timeout 120 "$mpiexec" -n 2 "${mpi_flags[@]}" "$program" \
            || fail "$name on 2 ranks exited $?"
    fi
}
no_mpi_loaded() { # no_mpi_loaded PROGRAM: ldd lists no MPI library
    command -v ldd >/dev/null || return 0
    local deps
    deps=$(ldd "$1")
    [[ ! $deps =~ lib(mpi|open-(rte|pal))[._-] ]] || fail "$(basename "$1") loads MPI: $deps"
}

step "app_static (parmap::parmap)"
"$tmp/ds/app_static" || fail "app_static (parmap::parmap) exited $?"
if [[ -x $tmp/ds/app_shared ]]; then
    step "app_shared (parmap::parmap_shared)"
    "$tmp/ds/app_shared" || fail "app_shared (parmap::parmap_shared) exited $?"
    if command -v ldd >/dev/null; then
        # (no `ldd | grep -q`: grep's early exit would fail the pipe under pipefail)
        deps=$(ldd "$tmp/ds/app_shared")
        [[ $deps == *"$prefix/"*libparmap.so* ]] \
            || fail "app_shared does not load libparmap.so from the prefix: $deps"
    fi
    no_mpi_loaded "$tmp/ds/app_shared"
elif [[ -n $shared ]]; then
    fail "libparmap.so is installed but parmap::parmap_shared was not exported"
fi
no_mpi_loaded "$tmp/ds/app_static"
if [[ $mpi == 1 ]]; then
    [[ -x $tmp/ds/app_mpi_static ]] || fail "parmap::mpi was not found by find_package(parmap)"
    step "app_mpi_static (parmap::mpi)"
    run_mpi app_mpi_static "$tmp/ds/app_mpi_static"
    if [[ -n $mpi_shared ]]; then
        [[ -x $tmp/ds/app_mpi_shared ]] || fail "parmap::mpi_shared was not found by find_package(parmap)"
        step "app_mpi_shared (parmap::mpi_shared)"
        run_mpi app_mpi_shared "$tmp/ds/app_mpi_shared"
        if command -v ldd >/dev/null; then
            deps=$(ldd "$tmp/ds/app_mpi_shared")
            [[ $deps == *"$prefix/"*libparmap_mpi.so* && $deps == *"$prefix/"*libparmap.so* ]] \
                || fail "app_mpi_shared does not load both libraries from the prefix: $deps"
        fi
    fi
fi

# --- pkg-config ----------------------------------------------------------------
if ! command -v pkg-config >/dev/null; then
    echo "pkg-config not found: pkg-config checks skipped (apt-get install pkg-config)"
else
    export PKG_CONFIG_PATH
    PKG_CONFIG_PATH=$(dirname "$pcfile")
    pc_version=$(pkg-config --modversion parmap) || fail "pkg-config cannot read parmap.pc"
    [[ $pc_version == "$header_version" ]] \
        || fail "parmap.pc says $pc_version, parmap.h says $header_version"

    # The plain recipe: with a shared library next to the archive the linker
    # takes the shared one; without it a static link needs Libs.private.
    if [[ -n $shared ]]; then
        step "$cc main.c \$(pkg-config --cflags --libs parmap)"
        # shellcheck disable=SC2046,SC2086
        run_logged "$tmp/pc.log" "$cc" $san_flags -o "$tmp/app_pc" "$here/main.c" \
            $(pkg-config --cflags --libs parmap)
        LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/app_pc" \
            || fail "app_pc exited $?"
        no_mpi_loaded "$tmp/app_pc"
    fi
    if [[ $mpi == 1 ]]; then
        pc_version=$(pkg-config --modversion parmap-mpi) || fail "pkg-config cannot read parmap-mpi.pc"
        [[ $pc_version == "$header_version" ]] \
            || fail "parmap-mpi.pc says $pc_version, parmap.h says $header_version"
        if [[ -n $mpi_shared ]]; then
            step "$cc main_mpi.c \$(pkg-config --cflags --libs parmap-mpi)"
            # shellcheck disable=SC2046,SC2086
            run_logged "$tmp/pc-mpi.log" "$cc" $san_flags -o "$tmp/app_pc_mpi" "$here/main_mpi.c" \
                $(pkg-config --cflags --libs parmap-mpi)
            (export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
             run_mpi app_pc_mpi "$tmp/app_pc_mpi")
        fi
    fi

    step "$cc main.c \$(pkg-config --static --cflags --libs parmap), archive only"
    cp -a "$prefix" "$tmp/static-prefix"
    find "$tmp/static-prefix" -name 'libparmap.so*' -delete
    find "$tmp/static-prefix" -name 'libparmap_mpi.so*' -delete
    PKG_CONFIG_PATH=$(dirname "$(find "$tmp/static-prefix" -name parmap.pc)")
    # shellcheck disable=SC2046,SC2086
    run_logged "$tmp/pc-static.log" "$cc" $san_flags -o "$tmp/app_pc_static" "$here/main.c" \
        $(pkg-config --static --cflags --libs parmap)
    "$tmp/app_pc_static" || fail "app_pc_static exited $?"
    if command -v readelf >/dev/null && [[ $(readelf -d "$tmp/app_pc_static") == *libparmap* ]]; then
        fail "app_pc_static needs a shared libparmap"
    fi
    if [[ $mpi == 1 ]]; then
        step "$cc main_mpi.c \$(pkg-config --static --cflags --libs parmap-mpi), archives only"
        # shellcheck disable=SC2046,SC2086
        run_logged "$tmp/pc-mpi-static.log" "$cc" $san_flags -o "$tmp/app_pc_mpi_static" \
            "$here/main_mpi.c" $(pkg-config --static --cflags --libs parmap-mpi)
        run_mpi app_pc_mpi_static "$tmp/app_pc_mpi_static"
        if command -v readelf >/dev/null && [[ $(readelf -d "$tmp/app_pc_mpi_static") == *libparmap* ]]; then
            fail "app_pc_mpi_static needs a shared libparmap"
        fi
    fi
fi

# --- the shared library's exports --------------------------------------------
# Built with -fvisibility=hidden: only the PM_API functions may be visible.
if [[ -n $shared ]] && command -v nm >/dev/null; then
    step "exported symbols of $(basename "$(readlink -f "$shared")")"
    extra=$(nm -D --defined-only "$shared" | awk '$2 ~ /^[A-Z]$/ && $2 != "A" { print $3 }' \
            | grep -v '^pm_' | grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' || true)
    [[ -z $extra ]] || fail "libparmap.so exports non-pm_ symbols: ${extra//$'\n'/ }"
    echo "exports: $(nm -D --defined-only "$shared" | awk '$3 ~ /^pm_/ { print $3 }' | tr '\n' ' ')"
fi
if [[ -n $mpi_shared ]] && command -v nm >/dev/null; then
    extra=$(nm -D --defined-only "$mpi_shared" | awk '$2 ~ /^[A-Z]$/ && $2 != "A" { print $3 }' \
            | grep -v '^pm_mpi_' | grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' || true)
    [[ -z $extra ]] || fail "libparmap_mpi.so exports more than pm_mpi_*: ${extra//$'\n'/ }"
fi

echo "install_downstream: ok"
