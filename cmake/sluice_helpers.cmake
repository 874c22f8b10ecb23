# sluice_add_library(name SOURCES ... DEPS ...): one library per folder.
function(sluice_add_library name)
  cmake_parse_arguments(A "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE -Wall -Wextra)
  target_link_libraries(${name} PUBLIC ${A_PUBLIC_DEPS} PRIVATE ${A_PRIVATE_DEPS})
endfunction()

# sluice_add_test(name SOURCES ... DEPS ... SUITES s1 s2 ...): one Boost.Test binary,
# each suite registered with CTest as its own test (name.suite).
function(sluice_add_test name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS;SUITES;LABELS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} Boost::unit_test_framework)
  target_compile_options(${name} PRIVATE -Wall -Wextra)
  foreach(suite IN LISTS A_SUITES)
    add_test(NAME ${name}.${suite} COMMAND ${name} --run_test=${suite} --log_level=test_suite
             WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    set_tests_properties(${name}.${suite} PROPERTIES TIMEOUT 300 LABELS "${A_LABELS}")
  endforeach()
endfunction()

# sluice_check_headers(dir ...): a target that compiles every .hpp alone.
function(sluice_check_headers)
  set(srcs)
  foreach(dir IN LISTS ARGN)
    file(GLOB_RECURSE hdrs RELATIVE ${PROJECT_SOURCE_DIR} CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${dir}/*.hpp)
    foreach(h IN LISTS hdrs)
      string(MAKE_C_IDENTIFIER ${h} id)
      set(out ${CMAKE_BINARY_DIR}/checkheaders/${id}.cpp)
      file(GENERATE OUTPUT ${out} CONTENT "#include \"${h}\"\n")
      list(APPEND srcs ${out})
    endforeach()
  endforeach()
  add_library(sluice_checkheaders OBJECT EXCLUDE_FROM_ALL ${srcs})
  target_link_libraries(sluice_checkheaders PRIVATE sluice)
endfunction()
