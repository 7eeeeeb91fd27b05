# pthread-worker.cmake - run after linking the threaded build for browsers
# (wasm/CMakeLists.txt, POST_BUILD:
#   cmake -DGLUE=dist/web/parmap-mt.mjs -DWORKER=dist/web/parmap-mt.worker.js -P this).
#
# Makes the glue its own pthread worker script. Emscripten (3.1.6) starts
# each pthread as a classic worker running parmap-mt.worker.js, which imports
# the glue when the main thread's 'load' message comes: two requests, one
# after the other, each 15-25 ms on a cold page, on the first call's path.
# lib/host-web.js starts pthread workers instead as module workers of the glue
# itself, named "parmap-pthread" (as later Emscriptens do: one file). This
# appends Emscripten's worker script to the glue, run only in such a worker,
# with its import of the glue replaced by the glue's own factory. The main
# thread and the pthread workers thus load the very same file, and
# parmap-mt.worker.js goes (the Node build keeps its own).
file(READ "${GLUE}" glue)
string(FIND "${glue}" "\"parmap-pthread\"" seen)
if(seen GREATER -1)
  return()   # (appended already)
endif()
file(READ "${WORKER}" worker)
set(import "(e.data.urlOrBlob?import(e.data.urlOrBlob):import(\"./parmap-mt.mjs\"))")
string(FIND "${worker}" "${import}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "pthread-worker.cmake: ${WORKER} does not import the glue as '${import}': "
    "another Emscripten version? The glue cannot be its own worker script without that.")
endif()
string(REPLACE "${import}" "Promise.resolve({default:createParmapMT})" worker "${worker}")
# (a module is strict already; the directive would not be first any more)
string(REPLACE "\"use strict\";" "" worker "${worker}")
file(APPEND "${GLUE}" "\n// A pthread's worker (wasm/scripts/pthread-worker.cmake): Emscripten's worker script.\n"
  "if(typeof WorkerGlobalScope!==\"undefined\"&&self.name===\"parmap-pthread\"){${worker}}\n")
# (nothing loads Emscripten's own file any more: not shipped)
file(REMOVE "${WORKER}")
