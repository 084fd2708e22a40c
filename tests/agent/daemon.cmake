# Agent daemon tests: report buffer (pure), the aggregator stream against an in-process
# Ingest stand-in (loopback, no root), and the agent integration tests in namespaces (root).
add_executable(agent_daemon_tests
  daemon_report_buffer_test.cc
  daemon_aggregator_stream_test.cc
  daemon_agent_metrics_test.cc)
target_link_libraries(agent_daemon_tests PRIVATE regionpulse_agent_streaming regionpulse_test_ingest GTest::gtest_main GTest::gmock)
target_compile_options(agent_daemon_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(agent_daemon_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120)

# regionpulse-agent processes in network namespaces (root: netns, veth, nftables, BPF).
add_executable(agent_daemon_integration_tests daemon_integration_test.cc)
target_link_libraries(agent_daemon_integration_tests PRIVATE
  regionpulse_common regionpulse_test_agent regionpulse_test_ingest regionpulse_test_support GTest::gtest_main)
target_compile_definitions(agent_daemon_integration_tests PRIVATE
  REGIONPULSE_AGENT_BINARY="$<TARGET_FILE:regionpulse-agent>")
add_dependencies(agent_daemon_integration_tests regionpulse-agent)
target_compile_options(agent_daemon_integration_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(agent_daemon_integration_tests DISCOVERY_TIMEOUT 30
  PROPERTIES LABELS root TIMEOUT 180 RUN_SERIAL TRUE)

# The agent's aggregator stream, and the agent binary (BPF off), over TLS and mutual TLS
# against the real aggregator on loopback, with certificates made at test time (no root).
add_executable(agent_daemon_tls_tests daemon_tls_test.cc daemon_tls_certificates.cc)
target_link_libraries(agent_daemon_tls_tests PRIVATE
  regionpulse_agent_streaming regionpulse_aggregator regionpulse_test_agent OpenSSL::Crypto
  GTest::gtest_main GTest::gmock)
target_compile_definitions(agent_daemon_tls_tests PRIVATE
  REGIONPULSE_AGENT_BINARY="$<TARGET_FILE:regionpulse-agent>")
add_dependencies(agent_daemon_tls_tests regionpulse-agent)
target_compile_options(agent_daemon_tls_tests PRIVATE ${REGIONPULSE_WARNINGS})
gtest_discover_tests(agent_daemon_tls_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120)
