# The library's portable sources: every target (native, Emscripten, WASI)
# builds these. Other builds (wasm/CMakeLists.txt, wasm/bench) include this file
# rather than keeping their own list. Parts a target lacks compile to nothing
# (fork: src/exec/proc_*.c on WebAssembly).
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
  src/exec/proc_state.c
  src/exec/proc_admit.c
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

# libparmap_mpi, the MPI executor (cmake/mpi.cmake; native builds that find
# MPI only, never part of libparmap).
set(PM_MPI_SOURCES
  src/exec/mpi.c
  src/exec/mpi_owner.c
  src/exec/mpi_follower.c
  src/exec/mpi_wire.c
  src/exec/mpi_team.c
)
