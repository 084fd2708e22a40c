# Tests of the aggregator around its core: configuration, history, the gRPC services in-process,
# and the binary itself (flags, SIGTERM).
add_executable(aggregator_service_tests
  service_config_test.cc
  service_grpc_test.cc
  service_history_test.cc
  service_main_test.cc)
target_link_libraries(aggregator_service_tests PRIVATE regionpulse_aggregator GTest::gtest_main GTest::gmock)
target_include_directories(aggregator_service_tests PRIVATE "${PROJECT_SOURCE_DIR}/tests/support")  # poll_until.h
target_compile_definitions(aggregator_service_tests PRIVATE AGGREGATOR_BINARY="$<TARGET_FILE:regionpulse-aggregator>"
  AGGREGATOR_EXAMPLE_CONFIG="${PROJECT_SOURCE_DIR}/docs/aggregator.example.yaml")
add_dependencies(aggregator_service_tests regionpulse-aggregator)
target_compile_options(aggregator_service_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(aggregator_service_tests DISCOVERY_TIMEOUT 30)
