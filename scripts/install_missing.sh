# shellcheck shell=bash
# scripts/install_missing.sh - the one apt-get block of the scripts in
# scripts/; each of them sources it:
#
#   source "$ROOT/scripts/install_missing.sh"
#   install_missing [--recommends] "CHECK PACKAGE" ... || exit 1
#
# installs the Debian packages whose CHECK fails, as root or with sudo:
#   cmd:X      command X on PATH (a name or a path)
#   pkg:X      Debian package X installed
#   A|B        either check passes, e.g. "pkg:lld|cmd:wasm-ld lld"
# It says what is missing (prefixed with the calling script's name), runs
# apt-get update once, then apt-get install, with --no-install-recommends
# unless --recommends comes first (so list libc6-dev and the like yourself).
# Returns nonzero when something is missing and was not installed: the
# install failed, PM_NO_INSTALL=1 (only report what is missing), no
# apt-get, or neither root nor sudo.

have() { # have CHECK: true when one of its |-separated checks passes
    local check checks
    IFS='|' read -ra checks <<<"$1"
    for check in "${checks[@]}"; do
        case $check in
            cmd:*) command -v "${check#cmd:}" >/dev/null 2>&1 && return 0 ;;
            pkg:*) [[ $(dpkg-query -W -f '${Status}' "${check#pkg:}" 2>/dev/null) == "install ok installed" ]] &&
                       return 0 ;;
        esac
    done
    return 1
}

install_missing() {
    local me line check pkg missing=() sudo=() recommends=(--no-install-recommends)
    me=$(basename "$0")
    if [[ ${1:-} == --recommends ]]; then
        recommends=()
        shift
    fi
    for line in "$@"; do
        read -r check pkg <<<"$line"
        have "$check" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    echo "$me: missing: ${missing[*]}"
    if [[ ${PM_NO_INSTALL:-} == 1 ]] || ! command -v apt-get >/dev/null; then
        echo "$me: install them (apt-get install ${missing[*]}) and run again" >&2
        return 1
    fi
    if [[ $(id -u) != 0 ]]; then
        command -v sudo >/dev/null || { echo "$me: not root and no sudo" >&2; return 1; }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q || echo "$me: apt-get update failed; trying the install anyway"
    "${sudo[@]}" apt-get install -y -q "${recommends[@]}" "${missing[@]}"
}
