# The library's portable sources: every target (native, Emscripten, WASI)
# builds these. Other builds (wasm/CMakeLists.txt, wasm/bench) include this file
# rather than keeping their own list. Optional parts compile to stubs unless the
# build defines them (PM_HAVE_MPI: src/exec/mpi.c).
set(PM_SOURCES
  src/core/status.c
  src/core/opts.c
  src/core/chunker.c
  src/core/progress.c
  src/core/job.c
  src/core/map.c
  src/core/imap.c
  src/core/iter.c
  src/core/collector.c
  src/core/pool.c
  src/exec/serial.c
  src/exec/crew.c
  src/exec/threads.c
  src/platform/platform.c
  src/platform/process.c
  src/exec/processes.c
  src/exec/proc_worker.c
  src/exec/proc_lane.c
  src/exec/mpi.c
  src/exec/mpi_owner.c
  src/exec/mpi_follower.c
  src/exec/mpi_wire.c
  src/value/value.c
  src/value/dict.c
  src/value/json.c
  src/value/json_parse.c
  src/value/msgpack.c
  src/value/msgpack_decode.c
  src/value/call.c
  src/value/vmap.c
  src/value/viter.c
)
