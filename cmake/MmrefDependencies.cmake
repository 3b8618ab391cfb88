# Third-party dependencies, all from Debian packages (scripts/install_deps.sh installs them), except a
# CUDA libtorch for the `cuda` preset, found through Torch_DIR / CMAKE_PREFIX_PATH.

# --- CUDA toolkit: the kernel library is compiled by nvcc wherever nvcc exists (CPU preset too) ---
set(MMREF_HAS_NVCC OFF)
if(MMREF_CUDA_KERNELS)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES ${MMREF_CUDA_ARCHS})
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(MMREF_HAS_NVCC ON)
    message(STATUS "mmref: CUDA kernels compiled with ${CMAKE_CUDA_COMPILER} "
                   "(${CMAKE_CUDA_COMPILER_VERSION}) for ${CMAKE_CUDA_ARCHITECTURES}")
  else()
    message(STATUS "mmref: nvcc not found, CUDA kernel library not built")
  endif()
endif()

# --- libtorch ---
option(MMREF_TORCH_CUDA "Expect a CUDA-enabled libtorch (the `cuda` preset)" OFF)
if(MMREF_TORCH_CUDA AND NOT Torch_DIR)
  # Let a pip PyTorch be found without arguments: ask the machine's python for its cmake prefix.
  foreach(_py python3 /usr/bin/python3)
    execute_process(COMMAND ${_py} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
    if(_rc EQUAL 0 AND _torch_prefix)
      list(APPEND CMAKE_PREFIX_PATH ${_torch_prefix})
      break()
    endif()
  endforeach()
endif()
find_package(Torch REQUIRED)
set(MMREF_TORCH_HAS_CUDA OFF)
if(TARGET torch_cuda OR TARGET c10_cuda OR "${TORCH_LIBRARIES}" MATCHES "torch_cuda")
  set(MMREF_TORCH_HAS_CUDA ON)
endif()
if(MMREF_TORCH_CUDA AND NOT MMREF_TORCH_HAS_CUDA)
  message(FATAL_ERROR "mmref: the cuda preset needs a CUDA libtorch; found a CPU-only one at "
                      "${TORCH_INSTALL_PREFIX}. Pass -DTorch_DIR=<site-packages>/torch/share/cmake/Torch")
endif()
# libtorch's flags (e.g. _GLIBCXX_USE_CXX11_ABI) as a list of options for our targets.
separate_arguments(MMREF_TORCH_CXX_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")
add_library(mmref_torch INTERFACE)
target_link_libraries(mmref_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(mmref_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_compile_options(mmref_torch INTERFACE ${MMREF_TORCH_CXX_FLAGS})
message(STATUS "mmref: libtorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX} (CUDA: ${MMREF_TORCH_HAS_CUDA})")

# --- the rest, Debian packages ---
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 CONFIG QUIET)
if(NOT CLI11_FOUND)
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 SYSTEM INTERFACE ${CLI11_INCLUDE_DIR})
endif()
find_package(Threads REQUIRED)

# yaml-cpp 0.7's config exports a plain `yaml-cpp` target; make a namespaced alias.
if(TARGET yaml-cpp AND NOT TARGET yaml-cpp::yaml-cpp)
  add_library(yaml-cpp::yaml-cpp ALIAS yaml-cpp)
endif()

# --- NVTX3 (header only) from the CUDA toolkit; a no-op shim when absent ---
set(MMREF_HAS_NVTX OFF)
find_path(MMREF_NVTX3_INCLUDE nvtx3/nvToolsExt.h
  HINTS /usr/local/cuda/include ${CUDAToolkit_INCLUDE_DIRS} NO_CACHE)
add_library(mmref_nvtx INTERFACE)
if(MMREF_NVTX3_INCLUDE)
  set(MMREF_HAS_NVTX ON)
  # Only the nvtx3 folder: the rest of the CUDA include tree must not shadow anything in a CPU build.
  set(_nvtx_dir ${CMAKE_BINARY_DIR}/nvtx_include)
  file(MAKE_DIRECTORY ${_nvtx_dir})
  if(NOT EXISTS ${_nvtx_dir}/nvtx3)
    file(CREATE_LINK ${MMREF_NVTX3_INCLUDE}/nvtx3 ${_nvtx_dir}/nvtx3 SYMBOLIC)
  endif()
  target_include_directories(mmref_nvtx SYSTEM INTERFACE ${_nvtx_dir})
  target_compile_definitions(mmref_nvtx INTERFACE MMREF_HAS_NVTX=1)
  target_link_libraries(mmref_nvtx INTERFACE ${CMAKE_DL_LIBS})
endif()

if(MMREF_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(MMREF_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()

if(MMREF_BUILD_DATA)
# --- src/data only (STYLE.md rule 7): FFmpeg, HDF5, SentencePiece, espeak-ng ---
find_package(PkgConfig REQUIRED)
pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET
  libavformat libavcodec libavutil libswscale libswresample libavfilter)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
find_package(HDF5 REQUIRED COMPONENTS C)
add_library(mmref_hdf5 INTERFACE)
target_include_directories(mmref_hdf5 SYSTEM INTERFACE ${HDF5_INCLUDE_DIRS})
target_link_libraries(mmref_hdf5 INTERFACE ${HDF5_LIBRARIES})
# HDF5_DEFINITIONS (_FORTIFY_SOURCE etc.) are left out: they would invalidate the shared PCH.
find_path(ESPEAK_NG_INCLUDE_DIR espeak-ng/speak_lib.h REQUIRED)
find_library(ESPEAK_NG_LIBRARY espeak-ng REQUIRED)
add_library(mmref_espeak INTERFACE)
target_include_directories(mmref_espeak SYSTEM INTERFACE ${ESPEAK_NG_INCLUDE_DIR})
target_link_libraries(mmref_espeak INTERFACE ${ESPEAK_NG_LIBRARY})
endif()
