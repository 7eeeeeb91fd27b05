# mpi.cmake - libparmap_mpi, the MPI executor (PM_MPI), as a library of its own
# (FFTW's libfftw3_mpi beside libfftw3): libparmap never links MPI, so a
# program that does not use MPI never loads it. Included by the top-level
# CMakeLists.txt after cmake/install.cmake, when PM_WITH_MPI found MPI.
#
# Targets (OUTPUT_NAME parmap_mpi):
#   parmap_mpi         libparmap_mpi.a, alias parmap::mpi; links parmap (static)
#   parmap_mpi_shared  libparmap_mpi.so, alias parmap::mpi_shared; links
#                      parmap_shared, when the shared library is built
# Installs them with the export set parmapMpiTargets (parmapConfig.cmake loads
# it when MPI can be found: find_package(parmap COMPONENTS mpi)) and
# lib/pkgconfig/parmap-mpi.pc (Requires: parmap).
#
# How the pieces meet: the core runs PM_MPI on the executor table that
# src/exec/mpi.c registers (pm_exec_register, include/parmap_exec.h) when the
# library is loaded and from pm_mpi_init. The MPI code includes the public
# headers only (parmap.h, parmap_exec.h; the include path has no src/, which
# proves it), steps jobs through the public executor interface, and runs
# threads of its own (pthreads, src/exec/mpi_team.c). So it needs no pm__ name
# of the core: libparmap.so exports none (tests/link_deps.sh checks).

function(pm_mpi_library name type core)
  add_library(${name} ${type} ${PM_MPI_SOURCES})
  target_link_libraries(${name} PUBLIC ${core} PRIVATE MPI::MPI_C)
  if(Threads_FOUND)
    target_link_libraries(${name} PRIVATE Threads::Threads)
  endif()
  if(NOT WIN32)
    target_link_libraries(${name} PRIVATE m)
  endif()
  set_target_properties(${name} PROPERTIES
    OUTPUT_NAME parmap_mpi C_VISIBILITY_PRESET hidden POSITION_INDEPENDENT_CODE ON)
endfunction()

pm_mpi_library(parmap_mpi STATIC parmap)
set_target_properties(parmap_mpi PROPERTIES EXPORT_NAME mpi)
add_library(parmap::mpi ALIAS parmap_mpi)
set(PM_MPI_INSTALL_TARGETS parmap_mpi)
if(TARGET parmap_shared)
  pm_mpi_library(parmap_mpi_shared SHARED parmap_shared)
  set_target_properties(parmap_mpi_shared PROPERTIES EXPORT_NAME mpi_shared
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
  # Every symbol resolved at link time: what the MPI code needs of the core is
  # public API of libparmap.so, or the build fails here rather than at a
  # user's run time. (Sanitizer runtimes are only linked into programs.)
  if(NOT PM_SANITIZE AND CMAKE_C_COMPILER_ID MATCHES "GNU|Clang" AND NOT APPLE)
    target_link_options(parmap_mpi_shared PRIVATE "LINKER:--no-undefined")
  endif()
  add_library(parmap::mpi_shared ALIAS parmap_mpi_shared)
  list(APPEND PM_MPI_INSTALL_TARGETS parmap_mpi_shared)
endif()

# Install ----------------------------------------------------------------------
install(TARGETS ${PM_MPI_INSTALL_TARGETS}
        EXPORT parmapMpiTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(EXPORT parmapMpiTargets
        NAMESPACE parmap::
        FILE parmapMpiTargets.cmake
        DESTINATION "${PM_CMAKE_INSTALL_DIR}")

# pkg-config: `pkg-config --libs parmap-mpi` gives -lparmap_mpi -lparmap (the
# shared libparmap_mpi.so records MPI itself); --static adds MPI's libraries.
# Debian's Open MPI: -lmpi; other MPIs: build downstream with mpicc instead.
set(PM_MPI_PC_LIBS_PRIVATE "")
foreach(lib IN LISTS MPI_C_LIBRARIES)
  get_filename_component(libname "${lib}" NAME_WE)
  string(REGEX REPLACE "^lib" "" libname "${libname}")
  string(APPEND PM_MPI_PC_LIBS_PRIVATE " -l${libname}")
endforeach()
string(STRIP "${PM_MPI_PC_LIBS_PRIVATE}" PM_MPI_PC_LIBS_PRIVATE)
configure_file("${CMAKE_CURRENT_LIST_DIR}/parmap-mpi.pc.in"
               "${PROJECT_BINARY_DIR}/parmap-mpi.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/parmap-mpi.pc" DESTINATION "${PM_PC_DIR}")
