#!/usr/bin/env bash
# link_deps.sh LIBPARMAP_SO LIBPARMAP_A PROGRAM [LIBPARMAP_MPI_SO] - libparmap
# never links MPI (issue 14, item 4): a program that uses parmap without MPI
# must not load Open MPI at start-up.
#
# Checks, with readelf (and nm, ldd where present):
#  - libparmap.so and PROGRAM (an example linked to libparmap.a) have no
#    NEEDED entry for MPI's libraries, and ldd finds none among PROGRAM's;
#  - libparmap.a calls no MPI_ function;
#  - libparmap.so exports no pm__ name (libparmap_mpi, like every binding,
#    uses the public API only);
#  - LIBPARMAP_MPI_SO (when given) needs libmpi and libparmap.so.
# Registered as the ctest test link_deps (label fast) by tests/CMakeLists.txt.
# Exit 0 = pass, 1 = fail, 77 = cannot run here (no readelf).
set -euo pipefail

core_so=${1:?usage: link_deps.sh LIBPARMAP_SO LIBPARMAP_A PROGRAM [LIBPARMAP_MPI_SO]}
core_a=${2:?}
program=${3:?}
mpi_so=${4:-}

command -v readelf >/dev/null || { echo "readelf not found (binutils): skipped"; exit 77; }

# Open MPI's libraries and what they pull in; MPICH's libmpi too.
mpi_re='lib(mpi|open-(rte|pal)|pmix|hwloc|event)[._-]'
status=0
fail() { echo "FAIL: $*" >&2; status=1; }

needed() { # needed FILE -> its NEEDED entries, one a line
    readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

for f in "$core_so" "$program"; do
    deps=$(needed "$f")
    echo "$(basename "$f") needs: $(echo "$deps" | tr '\n' ' ')"
    bad=$(echo "$deps" | grep -E "$mpi_re" || true)
    [[ -z $bad ]] || fail "$(basename "$f") needs MPI: $(echo "$bad" | tr '\n' ' ')"
done

if command -v ldd >/dev/null; then
    all=$(ldd "$program" 2>&1 || true)
    bad=$(echo "$all" | grep -E "$mpi_re" || true)
    [[ -z $bad ]] || fail "$(basename "$program") loads MPI: $(echo "$bad" | tr '\n' ' ')"
fi

if command -v nm >/dev/null; then
    calls=$(nm -u "$core_a" 2>/dev/null | awk '{ print $NF }' | grep -E '^P?MPI_' | sort -u || true)
    [[ -z $calls ]] || fail "libparmap.a calls MPI: $(echo "$calls" | tr '\n' ' ')"
    exported=$(nm -D --defined-only "$core_so" | awk '$3 ~ /^pm__/ { print $3 }' | sort)
    for name in $exported; do
        fail "libparmap.so exports internal $name"
    done
    echo "libparmap.so exports $(nm -D --defined-only "$core_so" | awk '$3 ~ /^pm_/' | wc -l) pm_ names, no pm__ name"
fi

if [[ -n $mpi_so ]]; then
    deps=$(needed "$mpi_so")
    echo "$(basename "$mpi_so") needs: $(echo "$deps" | tr '\n' ' ')"
    [[ $deps == *libmpi* ]] || fail "$(basename "$mpi_so") does not need libmpi"
    [[ $deps == *libparmap.so* ]] || fail "$(basename "$mpi_so") does not need libparmap.so"
fi

[[ $status == 0 ]] && echo "link_deps: ok"
exit "$status"
