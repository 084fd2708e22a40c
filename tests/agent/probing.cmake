# Probing tests. probing_tests: codec, window folding, config and prober/reflector on
# loopback (no privileges). probing_netns_tests: the same over veth between network
# namespaces, IPv4 and IPv6 (root). probing_interop_tests: Scapy's STAMP layers as sender
# and as reflector against ours.
add_executable(probing_tests
  probing_codec_test.cc
  probing_config_test.cc
  probing_loopback_test.cc
  probing_window_folder_test.cc)
target_include_directories(probing_tests PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}")
target_link_libraries(probing_tests PRIVATE regionpulse_agent_probing GTest::gtest_main)
target_compile_options(probing_tests PRIVATE ${REGIONPULSE_WARNINGS})
target_compile_definitions(probing_tests PRIVATE AGENT_EXAMPLE_CONFIG="${PROJECT_SOURCE_DIR}/docs/agent.example.yaml")
gtest_discover_tests(probing_tests DISCOVERY_TIMEOUT 30)

add_executable(probing_interop_tests probing_interop_test.cc)
target_include_directories(probing_interop_tests PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}")
target_compile_definitions(probing_interop_tests
  PRIVATE PROBING_SCAPY_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/probing_scapy_stamp.py")
target_link_libraries(probing_interop_tests PRIVATE regionpulse_agent_probing GTest::gtest_main)
target_compile_options(probing_interop_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(probing_interop_tests DISCOVERY_TIMEOUT 30)

add_executable(probing_netns_tests probing_netns_test.cc)
target_include_directories(probing_netns_tests PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}")
target_link_libraries(probing_netns_tests PRIVATE regionpulse_agent_probing regionpulse_test_support GTest::gtest_main)
target_compile_options(probing_netns_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(probing_netns_tests DISCOVERY_TIMEOUT 30 PROPERTIES LABELS root)
