#!/usr/bin/env bash
# Build both WebAssembly variants into wasm/dist/ (npm run build).
#   BUILD_DIR  CMake build folder (default: ../build/wasm from wasm/)
#   PMW_KERNEL_DIRS  extra folders of kernel .c files, ';'-separated
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -d /usr/share/nodejs ]] && export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
command -v emcmake >/dev/null || { echo "build.sh: emcmake not found (apt-get install emscripten)" >&2; exit 1; }
BUILD_DIR=${BUILD_DIR:-../build/wasm}
emcmake cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
    -DPMW_KERNEL_DIRS="${PMW_KERNEL_DIRS:-}" >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc 2>/dev/null || echo 2)}"
# acorn (a devDependency), vendored into dist/ so that browsers load it
# without a bundler: lib/freevars.js finds free variables with it.
mkdir -p dist/vendor
if [[ -f node_modules/acorn/dist/acorn.mjs ]]; then
    cp node_modules/acorn/dist/acorn.mjs dist/vendor/acorn.mjs
    cp node_modules/acorn/LICENSE dist/vendor/acorn.LICENSE
else
    echo "build.sh: node_modules/acorn missing (npm install): no static closure check" >&2
fi

# The bundles (scripts/build-bundles.mjs): dist/index.cjs for require(),
# dist/index.mjs for Node's import, dist/browser.mjs + dist/worker.js for
# pages without a bundler; made from index.js and lib/ with esbuild (a
# devDependency).
if [[ -d node_modules/esbuild ]]; then
    node scripts/build-bundles.mjs
else
    echo "build.sh: node_modules/esbuild missing (npm install): no bundles: require() and Node's import fail" >&2
fi

echo "build.sh: dist/ ready ($(du -sh dist | cut -f1))"
