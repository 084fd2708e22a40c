# The agent daemon: report buffering and streaming to aggregators, metrics, wiring (library
# regionpulse_agent, which the integration tests link) and the regionpulse-agent executable.
add_library(regionpulse_agent STATIC
  report_buffer.cc
  aggregator_stream.cc
  agent_metrics.cc)
target_include_directories(regionpulse_agent PUBLIC "${PROJECT_SOURCE_DIR}")
target_link_libraries(regionpulse_agent PUBLIC
  regionpulse_common regionpulse_proto gRPC::grpc++ spdlog::spdlog prometheus-cpp::core)
target_compile_options(regionpulse_agent PRIVATE ${REGIONPULSE_WARNINGS})
