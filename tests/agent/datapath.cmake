# A terminal program standing in for Cilium's, to prove ours never hides packets from it.
regionpulse_bpf_object(cilium_standin)

# BpfDatapath integration tests: real programs attached in network namespaces (root).
add_executable(agent_datapath_tests
  "${CMAKE_CURRENT_LIST_DIR}/datapath_veth_test.cc"
  "${CMAKE_CURRENT_LIST_DIR}/datapath_cilium_test.cc"
  "${CMAKE_CURRENT_LIST_DIR}/datapath_wireguard_test.cc"
  "${CMAKE_CURRENT_LIST_DIR}/datapath_vxlan_test.cc"
  "${CMAKE_CURRENT_LIST_DIR}/datapath_watcher_test.cc"
  "${CMAKE_CURRENT_LIST_DIR}/datapath_wireguard_fallback_test.cc")
target_include_directories(agent_datapath_tests PRIVATE "${CMAKE_CURRENT_LIST_DIR}")
target_link_libraries(agent_datapath_tests PRIVATE regionpulse_agent_datapath regionpulse_test_support
  bpf_cilium_standin_skel GTest::gtest_main)
target_compile_options(agent_datapath_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(agent_datapath_tests DISCOVERY_TIMEOUT 30 PROPERTIES LABELS root)

# The datapath's pure pieces and the capability check (root: it drops capabilities it has).
add_executable(agent_datapath_unit_tests "${CMAKE_CURRENT_LIST_DIR}/datapath_unit_test.cc")
target_link_libraries(agent_datapath_unit_tests PRIVATE regionpulse_agent_datapath GTest::gtest_main)
target_compile_options(agent_datapath_unit_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(agent_datapath_unit_tests DISCOVERY_TIMEOUT 30 PROPERTIES LABELS root)

# The clsact reaper's rtnetlink requests and reply parsing (pure, no root).
add_executable(agent_clsact_reaper_unit_tests "${CMAKE_CURRENT_LIST_DIR}/datapath_clsact_reaper_unit_test.cc")
target_link_libraries(agent_clsact_reaper_unit_tests PRIVATE regionpulse_agent_datapath GTest::gtest_main)
target_compile_options(agent_clsact_reaper_unit_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(agent_clsact_reaper_unit_tests DISCOVERY_TIMEOUT 30)

# The clsact fallback's cleanup on destruction and, through the reaper, after SIGKILL (root).
add_executable(agent_datapath_clsact_tests "${CMAKE_CURRENT_LIST_DIR}/datapath_clsact_test.cc")
target_include_directories(agent_datapath_clsact_tests PRIVATE "${CMAKE_CURRENT_LIST_DIR}")
target_link_libraries(agent_datapath_clsact_tests PRIVATE regionpulse_agent_datapath regionpulse_test_support
  GTest::gtest_main)
target_compile_options(agent_datapath_clsact_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(agent_datapath_clsact_tests DISCOVERY_TIMEOUT 30 PROPERTIES LABELS root)

# Replication flows' acknowledged bytes from closed and live sockets, and the sock_diag port
# filter (pure, no root).
add_executable(agent_flow_ack_unit_tests "${CMAKE_CURRENT_LIST_DIR}/datapath_flow_ack_ledger_test.cc")
target_link_libraries(agent_flow_ack_unit_tests PRIVATE regionpulse_agent_datapath GTest::gtest_main)
target_compile_options(agent_flow_ack_unit_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(agent_flow_ack_unit_tests DISCOVERY_TIMEOUT 30)
