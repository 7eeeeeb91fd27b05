# scripts/install_missing.sh - sourced by the demo scripts: install_missing
# "check package" ... installs (apt-get, as root or with sudo) the Debian
# packages whose check fails: cmd:X = command X on PATH, pkg:X = package X
# installed. --no-install-recommends, so list libc6-dev and the like yourself.
have() {
    case $1 in
        cmd:*) command -v "${1#cmd:}" >/dev/null 2>&1 ;;
        pkg:*) [[ $(dpkg-query -W -f '${Status}' "${1#pkg:}" 2>/dev/null) == "install ok installed" ]] ;;
    esac
}

install_missing() {
    local line check pkg missing=() sudo=()
    for line in "$@"; do
        read -r check pkg <<<"$line"
        have "$check" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    echo "$(basename "$0"): installing ${missing[*]}"
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q || true
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}
