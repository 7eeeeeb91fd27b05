# Platform/WASI.cmake - what CMake needs to know about CMAKE_SYSTEM_NAME WASI
# (found through cmake/wasi.cmake's CMAKE_MODULE_PATH; wasi-sdk ships the same).
# Static libraries and executables only; `WASI` is set for `if(WASI)` tests.
set(WASI 1)
set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
set(CMAKE_STATIC_LIBRARY_PREFIX "lib")
set(CMAKE_STATIC_LIBRARY_SUFFIX ".a")
set_property(GLOBAL PROPERTY TARGET_SUPPORTS_SHARED_LIBS FALSE)
