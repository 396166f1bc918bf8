# dogwatch_library(NAME SOURCES ... DEPS ...): one small library, one target, includes rooted at the repo.
function(dogwatch_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/proto_gen)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# dogwatch_test(NAME SOURCES ... DEPS ... [LABELS ...]): a Catch2 test binary registered with ctest.
function(dogwatch_test name)
  if(NOT DOGWATCH_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} Catch2::Catch2WithMain)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  # Where the executables and the sources are, for integration tests and doc checks
  # ($DOGWATCH_BIN_DIR overrides the first at run time).
  target_compile_definitions(${name} PRIVATE DOGWATCH_TEST_BIN_DIR="${PROJECT_BINARY_DIR}/bin"
                                             DOGWATCH_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  catch_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}")
endfunction()

# dogwatch_fuzzer(NAME SOURCES ... DEPS ...): a libFuzzer target, built only with DOGWATCH_BUILD_FUZZERS.
function(dogwatch_fuzzer name)
  if(NOT DOGWATCH_BUILD_FUZZERS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz)
  set_property(GLOBAL APPEND PROPERTY DOGWATCH_FUZZERS ${name})
endfunction()

# dogwatch_benchmark(NAME SOURCES ... DEPS ...): a Google Benchmark binary.
function(dogwatch_benchmark name)
  if(NOT DOGWATCH_BUILD_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
endfunction()
