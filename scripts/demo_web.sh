#!/usr/bin/env bash
# scripts/demo_web.sh - THE run command of the browser demo (web/): builds the
# npm package parmap-wasm into wasm/dist (as scripts/test_node.sh does: npm
# dependencies, then wasm/scripts/build.sh into build/wasm), then serves web/
# with web/serve.mjs, cross-origin isolated (COOP/COEP), and prints the URL
# to open in a browser.
#
#   bash scripts/demo_web.sh                  build, then serve on http://127.0.0.1:8080/
#   bash scripts/demo_web.sh --port 9000      any option of web/serve.mjs:
#   bash scripts/demo_web.sh --no-isolation     no COOP/COEP: the workers engine (parallel without SharedArrayBuffer)
#   bash scripts/demo_web.sh --host 0.0.0.0     listen on every interface (a phone on the LAN)
#   bash scripts/demo_web.sh --build-only     only build wasm/dist (scripts/test_browser.sh)
#
# Installs what is missing (Debian packages emscripten, nodejs, npm, cmake,
# make; as root, or with sudo; PM_NO_INSTALL=1 only reports them). With no
# emcc but a built wasm/dist, it serves that build as it is.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)

build_only=0
serve_args=()
for a in "$@"; do
    case $a in
        --build-only) build_only=1 ;;
        -h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) serve_args+=("$a") ;;
    esac
done

dist_built() {
    [[ -f $ROOT/wasm/dist/web/parmap-mt.wasm && -f $ROOT/wasm/dist/web/parmap-st.wasm &&
       -f $ROOT/wasm/dist/web/parmap-mt.mjs && -f $ROOT/wasm/dist/vendor/acorn.mjs &&
       -f $ROOT/wasm/dist/browser.mjs && -f $ROOT/wasm/dist/worker.js ]]
}

source "$ROOT/scripts/install_missing.sh"

# The package build, the same steps as scripts/test_node.sh: npm dependencies
# of wasm/ (acorn, vendored into dist/), then both Emscripten builds
# (incremental: quick when nothing changed).
build_package() {
    install_missing --recommends "cmd:emcc emscripten" "cmd:node nodejs" "cmd:npm npm" \
        "cmd:cmake cmake" "cmd:make make" || return 1
    node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
        || { echo "demo_web.sh: Node 20 or later is needed (have $(node --version))" >&2; return 1; }
    [[ -d /usr/share/nodejs ]] && export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
    (
        cd "$ROOT/wasm" || exit 1
        if [[ ! -f node_modules/acorn/dist/acorn.mjs ]]; then
            echo "--- npm dependencies (wasm/)"
            npm ci --no-audit --no-fund || npm install --no-audit --no-fund || exit 1
        fi
        # (sed, not head: emcc is Python and complains of a broken pipe)
        echo "--- build wasm/dist (emcc $(emcc --version 2>/dev/null | sed -n '1s/.*) \([0-9][0-9.]*\).*/\1/p'))"
        BUILD_DIR="$ROOT/build/wasm" bash scripts/build.sh
    )
}

if command -v emcc >/dev/null || ! dist_built; then
    build_package || { echo "demo_web.sh: the build of wasm/dist failed" >&2; exit 1; }
else
    echo "demo_web.sh: no emcc; serving the wasm/dist already built"
fi
dist_built || { echo "demo_web.sh: wasm/dist is incomplete after the build" >&2; exit 1; }
((build_only)) && exit 0

install_missing --recommends "cmd:node nodejs" || exit 1
echo "--- web/serve.mjs: open the URL below in a browser (Ctrl-C stops the server)"
exec node "$ROOT/web/serve.mjs" "${serve_args[@]}"
