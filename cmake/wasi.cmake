# wasi.cmake - CMake toolchain file for WebAssembly System Interface targets:
# the C library and its test programs compiled to wasm32-wasi (WASI preview 1)
# with Debian's wasi-sdk pieces (wasi-libc, libclang-rt-14-dev-wasm32, lld),
# and ctest running each test .wasm through Node's node:wasi (wasi/run.mjs).
#
#   cmake -S . -B build/wasi -DCMAKE_TOOLCHAIN_FILE=cmake/wasi.cmake \
#         -DPM_BUILD_EXAMPLES=OFF -DPM_BUILD_BENCH=OFF -DPM_BUILD_SHARED=OFF
#   cmake --build build/wasi && (cd build/wasi && ctest --output-on-failure)
#
# (scripts/test_wasi.sh does all of that.) WASI libc here has no threads: the
# build has the serial executor only (src/platform/platform.h sets
# PM_HAVE_THREADS 0), PM_AUTO runs serial, PM_THREADS gives PM_ENOTSUP.
#
# Overridable on the command line: CMAKE_C_COMPILER (default: clang on PATH),
# PM_WASI_SYSROOT (default /usr, where Debian's wasi-libc puts
# include/wasm32-wasi and lib/wasm32-wasi), PM_NODE (default: node on PATH).

set(CMAKE_SYSTEM_NAME WASI)
set(CMAKE_SYSTEM_VERSION 1)
set(CMAKE_SYSTEM_PROCESSOR wasm32)

# CMake has no Platform/WASI.cmake of its own (wasi-sdk ships one); ours is
# beside this file. Without it CMake warns "System is unknown to cmake".
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")

if(NOT CMAKE_C_COMPILER)
  set(CMAKE_C_COMPILER clang)
endif()
set(CMAKE_C_COMPILER_TARGET wasm32-wasi)

set(PM_WASI_SYSROOT "/usr" CACHE PATH "Sysroot holding include/wasm32-wasi and lib/wasm32-wasi")
set(CMAKE_SYSROOT "${PM_WASI_SYSROOT}")

set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
# The wasm linker has no shared libraries here.
set_property(GLOBAL PROPERTY TARGET_SUPPORTS_SHARED_LIBS FALSE)

# Programs (node, bash) come from the host. Libraries and packages are not
# restricted to the sysroot: with sysroot /usr, "ONLY" would re-root a
# downstream project's CMAKE_PREFIX_PATH (e.g. a parmap install prefix) under
# /usr and never find it.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# wasi-libc has no threads: never let find_package(Threads) add -pthread.
set(CMAKE_DISABLE_FIND_PACKAGE_Threads ON)

# ctest runs each test program as `node --no-warnings wasi/run.mjs prog.wasm`.
if(NOT PM_NODE)
  find_program(PM_NODE node)
  if(NOT PM_NODE)
    set(PM_NODE node)
  endif()
endif()
get_filename_component(PM_WASI_REPO "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
# --dir: the tests read their vectors and fuzz corpus from the source tree.
set(CMAKE_CROSSCOMPILING_EMULATOR
    "${PM_NODE};--no-warnings;${PM_WASI_REPO}/wasi/run.mjs;--dir=${PM_WASI_REPO}/tests")
