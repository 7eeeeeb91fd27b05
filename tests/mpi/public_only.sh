#!/usr/bin/env bash
# public_only.sh SOURCE_DIR [LIBPARMAP_MPI_SO] - libparmap_mpi is built on the
# public headers only (parmap.h, parmap_exec.h, parmap_value.h), as every
# binding and optional backend must be. Its include path has no src/ (cmake/
# mpi.cmake), but a quoted include with a relative path ("../core/internal.h",
# "crew.h" beside it) would not need one, so this reads the sources:
#  - src/exec/mpi*.c and mpi.h include, in quotes, only mpi.h (their own)
#    and the public headers; no include names a path;
#  - they name no pm__ symbol of the core (pm__mpi_* are the executor's own);
#  - LIBPARMAP_MPI_SO (when given) needs no pm__ symbol from elsewhere.
# Registered as the ctest test mpi_public_only (label mpi) by
# tests/mpi/CMakeLists.txt. Exit 0 = pass, 1 = fail.
set -euo pipefail

src=${1:?usage: public_only.sh SOURCE_DIR [LIBPARMAP_MPI_SO]}
mpi_so=${2:-}
status=0
fail() { echo "FAIL: $*" >&2; status=1; }

files=("$src"/src/exec/mpi*.c "$src"/src/exec/mpi.h)
[[ -f ${files[0]} ]] || { echo "FAIL: no MPI sources under $src/src/exec" >&2; exit 1; }

includes=$(grep -Hn '^[[:space:]]*#[[:space:]]*include' "${files[@]}")
bad=$(echo "$includes" | grep '"' |
      grep -vE '"(mpi|parmap|parmap_exec|parmap_value)\.h"' || true)
[[ -z $bad ]] && bad=$(echo "$includes" | grep -E '["<][^">]*(\.\./|src/)' || true)
[[ -z $bad ]] || fail "includes beyond the public headers:"$'\n'"$bad"

names=$(grep -Hnio 'pm__[a-z0-9_]*' "${files[@]}" | grep -vi ':pm__mpi_' || true)
[[ -z $names ]] || fail "core-internal names:"$'\n'"$names"

if [[ -n $mpi_so ]] && command -v nm >/dev/null; then
    undef=$(nm -D --undefined-only "$mpi_so" | awk '$NF ~ /^pm__/ { print $NF }' || true)
    [[ -z $undef ]] || fail "$(basename "$mpi_so") needs internal $(echo "$undef" | tr '\n' ' ')"
fi

[[ $status == 0 ]] && echo "public_only: ok (${#files[@]} files)"
exit "$status"
