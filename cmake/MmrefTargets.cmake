# Helpers that give every mmref target the same flags, the shared precompiled header and test labels.

# Everything our C++ targets share. One set of flags for all of them, so the one precompiled header
# (src/core/pch.h, built once in mmref_pch) is valid for every target that REUSE_FROMs it.
add_library(mmref_common INTERFACE)
target_link_libraries(mmref_common INTERFACE
  mmref_torch mmref_nvtx yaml-cpp::yaml-cpp spdlog::spdlog fmt::fmt nlohmann_json::nlohmann_json
  Threads::Threads)
target_include_directories(mmref_common INTERFACE
  ${PROJECT_SOURCE_DIR}/src ${PROJECT_BINARY_DIR}/generated)
target_compile_options(mmref_common INTERFACE $<$<COMPILE_LANGUAGE:CXX>:${MMREF_WARNING_FLAGS}>)

add_library(mmref_pch OBJECT ${PROJECT_SOURCE_DIR}/src/core/pch.cpp)
target_link_libraries(mmref_pch PUBLIC mmref_common)
target_precompile_headers(mmref_pch PRIVATE ${PROJECT_SOURCE_DIR}/src/core/pch.h)

# mmref_add_library(<name> DIR <folder> [DEPS <targets>...])
# Builds every .cpp under <folder> (recursively) into a static library.
function(mmref_add_library name)
  cmake_parse_arguments(A "" "DIR" "DEPS" ${ARGN})
  file(GLOB_RECURSE _srcs CONFIGURE_DEPENDS ${A_DIR}/*.cpp)
  if(NOT _srcs)
    message(FATAL_ERROR "mmref_add_library(${name}): no sources under ${A_DIR}")
  endif()
  add_library(${name} STATIC ${_srcs})
  target_link_libraries(${name} PUBLIC mmref_common ${A_DEPS})
  target_precompile_headers(${name} REUSE_FROM mmref_pch)
endfunction()

# mmref_add_test_binary(<name> DIR <folder> DEPS <targets>...)
# One GoogleTest binary per library. Test labels come from suite names (the part before the dot):
#   *Golden*  -> golden (reads MMREF_GOLDEN_DIR), *Gpu* -> gpu, *Slow* -> slow, everything else -> unit.
function(mmref_add_test_binary name)
  cmake_parse_arguments(A "" "DIR" "DEPS" ${ARGN})
  file(GLOB_RECURSE _srcs CONFIGURE_DEPENDS ${A_DIR}/*.cpp)
  if(NOT _srcs)
    message(STATUS "mmref: no tests under ${A_DIR} yet, ${name} not built")
    return()
  endif()
  add_executable(${name} ${_srcs})
  target_link_libraries(${name} PRIVATE mmref_common ${A_DEPS} GTest::gtest GTest::gtest_main)
  target_precompile_headers(${name} REUSE_FROM mmref_pch)
  target_compile_definitions(${name} PRIVATE
    MMREF_SOURCE_DIR="${PROJECT_SOURCE_DIR}" MMREF_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set(_env "MMREF_SOURCE_DIR=${PROJECT_SOURCE_DIR};MMREF_BINARY_DIR=${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST TEST_FILTER "-*Golden*.*:*Gpu*.*:*Slow*.*"
    PROPERTIES LABELS unit ENVIRONMENT "${_env}")
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST TEST_FILTER "*Golden*.*"
    PROPERTIES LABELS golden ENVIRONMENT "${_env}")
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST TEST_FILTER "*Gpu*.*"
    PROPERTIES LABELS gpu ENVIRONMENT "${_env}")
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST TEST_FILTER "*Slow*.*"
    PROPERTIES LABELS slow ENVIRONMENT "${_env}" TIMEOUT 1800)
endfunction()

# mmref_cuda_syntax_check(<target> DEFINE <macro> SOURCES <files>... [PCH] [DEPENDS <files>...])
# CUDA-only branches (#ifdef <macro>) of CPU-libtorch builds: where nvcc exists but this libtorch has no
# CUDA, each source is syntax-checked with <macro>=1 against this libtorch's headers, the CUDA toolkit's
# and a stub of the one generated c10/cuda header a CPU libtorch lacks. <target> is part of `all`, so code
# that no longer compiles fails the CPU build instead of rotting unseen. PCH: with the precompiled
# header's includes (sources that rely on them).
function(mmref_cuda_syntax_check target)
  cmake_parse_arguments(A "PCH" "DEFINE" "SOURCES;DEPENDS" ${ARGN})
  set(_stub ${PROJECT_BINARY_DIR}/cuda_binding_stub)
  if(NOT EXISTS ${_stub}/c10/cuda/impl/cuda_cmake_macros.h)
    file(WRITE ${_stub}/c10/cuda/impl/cuda_cmake_macros.h
         "// Stub for syntax-checking CUDA branches against a CPU libtorch (cmake/MmrefTargets.cmake).\n#pragma once\n")
  endif()
  set(_incs -I${PROJECT_SOURCE_DIR}/src -I${PROJECT_BINARY_DIR}/generated -isystem ${_stub})
  foreach(_d ${TORCH_INCLUDE_DIRS} ${CUDAToolkit_INCLUDE_DIRS})
    if(NOT _d STREQUAL "/usr/include")  # a default dir as -isystem breaks libstdc++'s #include_next
      list(APPEND _incs -isystem ${_d})
    endif()
  endforeach()
  set(_pch)
  if(A_PCH)
    set(_pch -include ${PROJECT_SOURCE_DIR}/src/core/pch.h)
  endif()
  set(_stamps)
  foreach(_f ${A_SOURCES})
    get_filename_component(_n ${_f} NAME_WE)
    set(_stamp ${CMAKE_CURRENT_BINARY_DIR}/${_n}.syntax_ok)
    add_custom_command(OUTPUT ${_stamp}
      COMMAND ${CMAKE_CXX_COMPILER} -std=c++17 -fsyntax-only -Wall -Wextra -Werror -D${A_DEFINE}=1
              ${MMREF_TORCH_CXX_FLAGS} ${_incs} ${_pch} ${_f}
      COMMAND ${CMAKE_COMMAND} -E touch ${_stamp}
      DEPENDS ${_f} ${A_DEPENDS} IMPLICIT_DEPENDS CXX ${_f}
      COMMENT "Syntax-checking ${_n}.cpp with ${A_DEFINE} (no CUDA libtorch here)" VERBATIM)
    list(APPEND _stamps ${_stamp})
  endforeach()
  add_custom_target(${target} ALL DEPENDS ${_stamps})
endfunction()
