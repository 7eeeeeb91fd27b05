# pthread-preload.cmake - run after linking the threaded build for browsers
# (wasm/CMakeLists.txt, POST_BUILD: cmake -DFILE=dist/web/parmap-mt.worker.js -P this):
# Emscripten's pthread worker script imports the glue only when the main
# thread's 'load' message comes, which the main thread posts once it has
# loaded the glue and the .wasm itself; on a cold page the worker then spent
# another 10-20 ms fetching and evaluating the same glue. The line added here
# starts that import as soon as the worker's script runs, in the worker that
# lib/host-web.js startPthreadWorker starts before the glue has loaded: it
# names that worker "parmap-glue:" + the glue's URL. The script's own import
# on 'load' (the same URL) then finds the module loaded or loading. An error
# is left to that import to report.
file(READ "${FILE}" text)
string(FIND "${text}" "parmap-glue:" seen)
if(seen GREATER -1)
  return()   # (added already)
endif()
set(preload "if(typeof self==\"object\"&&typeof self.name==\"string\"&&self.name.indexOf(\"parmap-glue:\")===0)import(self.name.slice(12)).catch(function(){});")
set(strict "\"use strict\";")
string(LENGTH "${strict}" n)
string(SUBSTRING "${text}" 0 ${n} head)
if(head STREQUAL strict)
  # (after the directive, which must stay first)
  string(SUBSTRING "${text}" ${n} -1 rest)
  file(WRITE "${FILE}" "${strict}${preload}${rest}")
else()
  file(WRITE "${FILE}" "${preload}${text}")
endif()
