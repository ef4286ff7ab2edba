# unmix_add_mpi_test(NAME SOURCES ...): one Catch2 binary, registered with CTest once per process
# count (1, 2, 3, 4). The binary uses tests/mpi/mpi_main.cpp, which gathers the failure count from
# every rank so a rank that fails never leaves the others waiting.
set(UNMIX_MPI_TEST_PROCS 1 2 3 4 CACHE STRING "Process counts for the MPI tests")
set(UNMIX_MPIEXEC_EXTRA --oversubscribe CACHE STRING "Extra mpiexec flags for the MPI tests")

function(unmix_add_mpi_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;PROCS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(NOT ARG_PROCS)
    set(ARG_PROCS ${UNMIX_MPI_TEST_PROCS})
  endif()
  add_executable(${name} ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/tests/mpi/mpi_main.cpp)
  target_link_libraries(${name} PRIVATE unmix_lib unmix_testsupport Catch2::Catch2 unmix::warnings)
  foreach(np IN LISTS ARG_PROCS)
    add_test(NAME ${name}.np${np}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${UNMIX_MPIEXEC_EXTRA}
              ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${name}> ${MPIEXEC_POSTFLAGS})
    set_tests_properties(${name}.np${np} PROPERTIES
      TIMEOUT ${ARG_TIMEOUT} PROCESSORS ${np} LABELS "mpi"
      ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;OPENBLAS_NUM_THREADS=1;UNMIX_SHARED_DATA=${UNMIX_SHARED_DATA};UNMIX_BINARY=$<TARGET_FILE:unmix>")
  endforeach()
endfunction()
