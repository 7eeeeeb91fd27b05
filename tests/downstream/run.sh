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
elif [[ -n $shared ]]; then
    fail "libparmap.so is installed but parmap::parmap_shared was not exported"
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
    fi

    step "$cc main.c \$(pkg-config --static --cflags --libs parmap), archive only"
    cp -a "$prefix" "$tmp/static-prefix"
    find "$tmp/static-prefix" -name 'libparmap.so*' -delete
    PKG_CONFIG_PATH=$(dirname "$(find "$tmp/static-prefix" -name parmap.pc)")
    # shellcheck disable=SC2046,SC2086
    run_logged "$tmp/pc-static.log" "$cc" $san_flags -o "$tmp/app_pc_static" "$here/main.c" \
        $(pkg-config --static --cflags --libs parmap)
    "$tmp/app_pc_static" || fail "app_pc_static exited $?"
    if command -v readelf >/dev/null && [[ $(readelf -d "$tmp/app_pc_static") == *libparmap* ]]; then
        fail "app_pc_static needs a shared libparmap"
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

echo "install_downstream: ok"
