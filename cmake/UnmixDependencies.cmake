# Every dependency comes from a Debian package (run/setup installs them).
find_package(MPI REQUIRED COMPONENTS C CXX)

set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "unmix needs the MPI build of HDF5 (Debian: libhdf5-openmpi-dev)")
endif()
add_library(unmix_hdf5 INTERFACE)
add_library(unmix::hdf5 ALIAS unmix_hdf5)
target_include_directories(unmix_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(unmix_hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES})
target_compile_definitions(unmix_hdf5 INTERFACE ${HDF5_DEFINITIONS})

# Debian's ScaLAPACK CMake config names a file that does not exist: use pkg-config.
find_package(PkgConfig REQUIRED)
pkg_check_modules(SCALAPACK REQUIRED IMPORTED_TARGET scalapack-openmpi)
add_library(unmix_scalapack INTERFACE)
add_library(unmix::scalapack ALIAS unmix_scalapack)
target_link_libraries(unmix_scalapack INTERFACE PkgConfig::SCALAPACK)

set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_package(LAPACK REQUIRED)
add_library(unmix_lapack INTERFACE)
add_library(unmix::lapack ALIAS unmix_lapack)
find_library(LAPACKE_LIBRARY NAMES lapacke REQUIRED)
target_link_libraries(unmix_lapack INTERFACE ${LAPACKE_LIBRARY} ${LAPACK_LIBRARIES} ${BLAS_LIBRARIES})

find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(Catch2 2 REQUIRED)

# FFTW (FFTs) and libsndfile (WAV) for the signal commands.
pkg_check_modules(FFTW3 REQUIRED IMPORTED_TARGET fftw3)
pkg_check_modules(SNDFILE REQUIRED IMPORTED_TARGET sndfile)
add_library(unmix_signal_libs INTERFACE)
add_library(unmix::signal ALIAS unmix_signal_libs)
target_link_libraries(unmix_signal_libs INTERFACE PkgConfig::FFTW3 PkgConfig::SNDFILE)

# zlib for gzip-compressed MatrixMarket counts (unmix spatial).
find_package(ZLIB REQUIRED)
