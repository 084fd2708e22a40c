# REGIONPULSE_PCH: the heavy third-party headers (gRPC, protobuf, spdlog, and
# GoogleTest for the tests) are compiled once per build dir into two precompiled headers, and
# every C++ target reuses one of them. For builds from scratch without ccache (tools/check's
# sanitizer dirs); with ccache, leave it off (ccache does not cache precompiled headers).
# Included at the end of the top-level CMakeLists.txt, once every target exists.

set(REGIONPULSE_PCH_HEADERS
    <algorithm> <chrono> <functional> <map> <memory> <mutex> <optional> <string> <thread> <vector>
    <google/protobuf/generated_message_reflection.h> <google/protobuf/message.h>
    <grpcpp/grpcpp.h> <spdlog/spdlog.h>)

# The donors: an empty C++ source each (every project target is C++ only; the BPF programs are
# custom commands), the project's warnings (clang refuses a precompiled header
# built with other language options, so the donors get the same ones as every target).
file(WRITE "${CMAKE_BINARY_DIR}/pch_donor.cc" "// Compiles the precompiled header only.\n")
add_library(regionpulse_pch STATIC "${CMAKE_BINARY_DIR}/pch_donor.cc")
target_link_libraries(regionpulse_pch PRIVATE gRPC::grpc++ protobuf::libprotobuf spdlog::spdlog Boost::system)
target_compile_options(regionpulse_pch PRIVATE ${REGIONPULSE_WARNINGS} -pthread)
target_precompile_headers(regionpulse_pch PRIVATE ${REGIONPULSE_PCH_HEADERS})
if(REGIONPULSE_BUILD_TESTS)
  add_library(regionpulse_pch_tests STATIC "${CMAKE_BINARY_DIR}/pch_donor.cc")
  target_link_libraries(regionpulse_pch_tests PRIVATE gRPC::grpc++ protobuf::libprotobuf spdlog::spdlog
                                                      Boost::system GTest::gtest GTest::gmock)
  target_compile_options(regionpulse_pch_tests PRIVATE ${REGIONPULSE_WARNINGS} ${REGIONPULSE_TEST_OPTIONS} -pthread)
  target_precompile_headers(regionpulse_pch_tests PRIVATE ${REGIONPULSE_PCH_HEADERS} <gmock/gmock.h> <gtest/gtest.h>)
endif()

function(regionpulse_targets_in directory out)
  get_property(targets DIRECTORY "${directory}" PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirectories DIRECTORY "${directory}" PROPERTY SUBDIRECTORIES)
  foreach(subdirectory IN LISTS subdirectories)
    regionpulse_targets_in("${subdirectory}" below)
    list(APPEND targets ${below})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

regionpulse_targets_in("${PROJECT_SOURCE_DIR}" all_targets)
foreach(target IN LISTS all_targets)
  if(target MATCHES "^regionpulse_pch")
    continue()
  endif()
  get_target_property(type ${target} TYPE)
  if(NOT type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$")
    continue()
  endif()
  # Clang refuses a precompiled header built with -pthread (the donors get it from gRPC) in a
  # target without it; it only defines _REENTRANT, so every target gets it.
  target_compile_options(${target} PRIVATE -pthread)
  get_target_property(source_dir ${target} SOURCE_DIR)
  # tests/fuzz is compiled like the libraries (REGIONPULSE_TEST_OPTIONS is for tests/ only).
  if(REGIONPULSE_BUILD_TESTS AND source_dir MATCHES "^${PROJECT_SOURCE_DIR}/tests(/|$)"
     AND NOT source_dir MATCHES "^${PROJECT_SOURCE_DIR}/tests/fuzz$")
    target_precompile_headers(${target} REUSE_FROM regionpulse_pch_tests)
  else()
    target_precompile_headers(${target} REUSE_FROM regionpulse_pch)
  endif()
endforeach()
