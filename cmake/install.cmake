# install.cmake - what `cmake --install` puts in a prefix, and the test that
# proves a downstream project can use it.
#
# Included by the top-level CMakeLists.txt after the library targets exist
# (PM_INSTALL_TARGETS lists them: `parmap` static, and `parmap_shared` when the
# shared library is built; both have OUTPUT_NAME parmap). libparmap_mpi's
# files (parmap-mpi.pc, parmapMpiTargets*.cmake) are installed by
# cmake/mpi.cmake, which reuses the PM_PC_* values computed here. Installs:
#   include/parmap.h, parmap_value.h, parmap_exec.h
#   lib/libparmap.a, lib/libparmap.so*       (libdir from GNUInstallDirs)
#   lib/pkgconfig/parmap.pc                   (from cmake/parmap.pc.in)
#   lib/cmake/parmap/parmapConfig.cmake, parmapConfigVersion.cmake,
#   parmapTargets*.cmake                      (imported targets parmap::parmap =
#                                              static, parmap::parmap_shared = shared)
# so that both `find_package(parmap)` + `target_link_libraries(app parmap::parmap)`
# and `cc app.c $(pkg-config --cflags --libs parmap)` work.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PM_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/parmap")

# Header and libraries --------------------------------------------------------
install(FILES "${PROJECT_SOURCE_DIR}/include/parmap.h" "${PROJECT_SOURCE_DIR}/include/parmap_value.h"
              "${PROJECT_SOURCE_DIR}/include/parmap_exec.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

install(TARGETS ${PM_INSTALL_TARGETS}
        EXPORT parmapTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

# CMake package config --------------------------------------------------------
# The targets carry Threads::Threads in their link interface, so the config
# must find Threads before it loads them (find_dependency in the template).
if(Threads_FOUND)
  set(PM_CONFIG_NEEDS_THREADS 1)
else()
  set(PM_CONFIG_NEEDS_THREADS 0)
endif()

install(EXPORT parmapTargets
        NAMESPACE parmap::
        FILE parmapTargets.cmake
        DESTINATION "${PM_CMAKE_INSTALL_DIR}")

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/parmapConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/parmapConfig.cmake"
  INSTALL_DESTINATION "${PM_CMAKE_INSTALL_DIR}")

# 0.x releases may break the API between minor versions, so while the major
# version is 0 a request for 0.1 is only satisfied by 0.1.x.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(PM_VERSION_COMPAT SameMinorVersion)
else()
  set(PM_VERSION_COMPAT SameMajorVersion)
endif()
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/parmapConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY ${PM_VERSION_COMPAT})

install(FILES "${PROJECT_BINARY_DIR}/parmapConfig.cmake"
              "${PROJECT_BINARY_DIR}/parmapConfigVersion.cmake"
        DESTINATION "${PM_CMAKE_INSTALL_DIR}")

# pkg-config ------------------------------------------------------------------
# The .pc file locates the prefix from its own directory (${pcfiledir}) so the
# install stays correct under `cmake --install --prefix X` and DESTDIR, which
# are chosen after configure time. That needs relative install dirs; an
# absolute CMAKE_INSTALL_LIBDIR/INCLUDEDIR is written as is.
set(PM_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(PM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(PM_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  # e.g. lib/pkgconfig -> "../..", lib/x86_64-linux-gnu/pkgconfig -> "../../.."
  file(RELATIVE_PATH PM_PC_UP "/pc/${PM_PC_DIR}" "/pc")
  string(REGEX REPLACE "/$" "" PM_PC_UP "${PM_PC_UP}")
  set(PM_PC_PREFIX "\${pcfiledir}/${PM_PC_UP}")
  set(PM_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(PM_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(PM_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# What a static link needs besides libparmap.a (the shared library records
# these itself). Targets without pthreads or libm (WASI, Emscripten) need none.
set(PM_PC_LIBS_PRIVATE "")
if(Threads_FOUND)
  string(APPEND PM_PC_LIBS_PRIVATE " -lpthread")
endif()
if(NOT WIN32 AND NOT EMSCRIPTEN AND NOT CMAKE_SYSTEM_NAME STREQUAL "WASI")
  string(APPEND PM_PC_LIBS_PRIVATE " -lm")
endif()
string(STRIP "${PM_PC_LIBS_PRIVATE}" PM_PC_LIBS_PRIVATE)

configure_file("${CMAKE_CURRENT_LIST_DIR}/parmap.pc.in"
               "${PROJECT_BINARY_DIR}/parmap.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/parmap.pc" DESTINATION "${PM_PC_DIR}")

# Test: install into a temporary prefix and build a downstream project -------
# (tests/downstream/run.sh; it reuses this build's compiler and sanitizer
# flags, so it also runs in the sanitizer builds). Needs bash, which the
# Emscripten/WASI targets' test runners do not provide.
if(PM_BUILD_TESTS AND NOT EMSCRIPTEN AND NOT CMAKE_SYSTEM_NAME STREQUAL "WASI")
  find_program(PM_BASH bash)
  if(PM_BASH)
    add_test(NAME install_downstream
             COMMAND "${PM_BASH}" "${PROJECT_SOURCE_DIR}/tests/downstream/run.sh"
                     "${PROJECT_BINARY_DIR}")
    set_tests_properties(install_downstream PROPERTIES
      TIMEOUT 300 SKIP_RETURN_CODE 77)
  endif()
endif()
