# Compiler settings shared by every mmref target: ccache, a link pool of 1 (libtorch links are
# memory-hungry), strict warnings for project code, optional sanitizers.

find_program(MMREF_CCACHE ccache)
if(MMREF_CCACHE)
  # pch_defines/time_macros let ccache cache translation units that use the precompiled header.
  set(_launcher ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      CCACHE_BASEDIR=${CMAKE_SOURCE_DIR} ${MMREF_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${_launcher})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${_launcher})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${_launcher})
endif()

set_property(GLOBAL PROPERTY JOB_POOLS link_pool=1)
set(CMAKE_JOB_POOL_LINK link_pool)

# Warnings apply to our targets only (mmref_set_warnings); third-party headers come in as SYSTEM.
set(MMREF_WARNING_FLAGS -Wall -Wextra)
if(MMREF_WERROR)
  list(APPEND MMREF_WARNING_FLAGS -Werror)
endif()

if(MMREF_ASAN)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# Debian's gold/bfd are slow on libtorch; use lld or gold when present.
include(CheckCXXSourceCompiles)
find_program(MMREF_LLD ld.lld)
if(MMREF_LLD)
  add_link_options(-fuse-ld=lld)
endif()
