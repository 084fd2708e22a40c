# Tests of the aggregator's pure core: verdict scenarios over simulated time, registry,
# matrix and planner. No I/O, no root.
add_executable(aggregator_core_tests
  core_agent_registry_test.cc
  core_pipeline_test.cc
  core_probe_planner_test.cc
  core_region_matrix_both_ends_test.cc
  core_region_matrix_test.cc
  core_verdict_engine_test.cc
  loss_direction_test.cc
  region_thresholds_test.cc
  slot_ring_test.cc)
target_link_libraries(aggregator_core_tests PRIVATE regionpulse_aggregator_core GTest::gtest_main GTest::gmock)
target_compile_options(aggregator_core_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(aggregator_core_tests DISCOVERY_TIMEOUT 30)
