# sluice_make_include_root(): <build>/include/sluice, a symbolic link to the source root,
# so "sluice/core/batch.hpp" names core/batch.hpp in-tree as it does in an installed prefix
# (<prefix>/include/sluice/core/batch.hpp). The source root itself is on no include path:
# an include without the prefix fails here as it would for a user. See
# scripts/prefix-includes.sh for why a link and not a copy.
function(sluice_make_include_root)
  set(dir ${PROJECT_BINARY_DIR}/include)
  file(MAKE_DIRECTORY ${dir})
  set(target "")
  if(IS_SYMLINK ${dir}/sluice)
    file(READ_SYMLINK ${dir}/sluice target)
  endif()
  if(NOT target STREQUAL PROJECT_SOURCE_DIR)
    file(REMOVE ${dir}/sluice)
    file(CREATE_LINK ${PROJECT_SOURCE_DIR} ${dir}/sluice SYMBOLIC)
  endif()
  set(SLUICE_INCLUDE_ROOT ${dir} PARENT_SCOPE)
endfunction()

# sluice_add_library(name SOURCES ... PUBLIC_DEPS ... PRIVATE_DEPS ... [EXPORT_NAME n]): one
# static library per folder. sluice_<folder> is exported (and aliased in-tree) as
# Sluice::<folder>, or Sluice::<n> when EXPORT_NAME is given, so a
# parent project writes the same target names whether it uses add_subdirectory or
# find_package(Sluice).
function(sluice_add_library name)
  cmake_parse_arguments(A "" "EXPORT_NAME" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  string(REGEX REPLACE "^sluice_" "" export_name ${name})
  if(A_EXPORT_NAME)
    set(export_name ${A_EXPORT_NAME})
  endif()
  set_target_properties(${name} PROPERTIES EXPORT_NAME ${export_name})
  add_library(Sluice::${export_name} ALIAS ${name})
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${SLUICE_INCLUDE_ROOT}>
                                            $<INSTALL_INTERFACE:include>)
  target_compile_features(${name} PUBLIC cxx_std_20)
  target_compile_options(${name} PRIVATE -Wall -Wextra)
  target_link_libraries(${name} PUBLIC ${A_PUBLIC_DEPS} PRIVATE ${A_PRIVATE_DEPS})
endfunction()

# sluice_add_test(name SOURCES ... DEPS ... SUITES s1 s2 ...): one Boost.Test binary,
# each suite registered with CTest as its own test (name.suite).
# sluice_test_optimization(target): test programs at -O1 in optimized builds. Tests assert
# outcomes, never speed (speed is the benchmarks' business, and they stay at -O2), and -O1
# halves the compile time of a test file full of job templates, which is most of a cold CI
# build on two cores. The engine's libraries and the samples keep the build type's flags.
function(sluice_test_optimization target)
  target_compile_options(${target} PRIVATE $<$<CONFIG:RelWithDebInfo,Release,MinSizeRel>:-O1>)
endfunction()

function(sluice_add_test name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS;SUITES;LABELS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} Boost::unit_test_framework)
  target_compile_options(${name} PRIVATE -Wall -Wextra)
  sluice_test_optimization(${name})
  foreach(suite IN LISTS A_SUITES)
    add_test(NAME ${name}.${suite} COMMAND ${name} --run_test=${suite} --log_level=test_suite
             WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    set_tests_properties(${name}.${suite} PROPERTIES TIMEOUT 300 LABELS "${A_LABELS}")
  endforeach()
endfunction()

# sluice_check_headers(dir ...): a target that compiles every .hpp alone, included as
# "sluice/<dir>/x.hpp" (the way users include it).
function(sluice_check_headers)
  set(srcs)
  foreach(dir IN LISTS ARGN)
    file(GLOB_RECURSE hdrs RELATIVE ${PROJECT_SOURCE_DIR} CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${dir}/*.hpp)
    foreach(h IN LISTS hdrs)
      string(MAKE_C_IDENTIFIER ${h} id)
      set(out ${CMAKE_BINARY_DIR}/checkheaders/${id}.cpp)
      file(GENERATE OUTPUT ${out} CONTENT "#include \"sluice/${h}\"\n")
      list(APPEND srcs ${out})
    endforeach()
  endforeach()
  add_library(sluice_checkheaders OBJECT EXCLUDE_FROM_ALL ${srcs})
  target_link_libraries(sluice_checkheaders PRIVATE sluice)
endfunction()
