# The agent daemon: report buffering and streaming to aggregators, metrics and the wiring of
# all agent parts (library regionpulse_agent, which the integration tests link), and the
# regionpulse-agent executable.
add_library(regionpulse_agent STATIC
  "${CMAKE_CURRENT_LIST_DIR}/report_buffer.cc"
  "${CMAKE_CURRENT_LIST_DIR}/aggregator_stream.cc"
  "${CMAKE_CURRENT_LIST_DIR}/agent_metrics.cc"
  "${CMAKE_CURRENT_LIST_DIR}/agent.cc")
target_include_directories(regionpulse_agent PUBLIC "${PROJECT_SOURCE_DIR}")
target_link_libraries(regionpulse_agent PUBLIC
  regionpulse_agent_probing regionpulse_agent_datapath regionpulse_common regionpulse_proto
  gRPC::grpc++ protobuf::libprotobuf spdlog::spdlog prometheus-cpp::core Boost::headers Threads::Threads)
target_compile_options(regionpulse_agent PRIVATE ${REGIONPULSE_WARNINGS})

add_executable(regionpulse-agent "${CMAKE_CURRENT_LIST_DIR}/main.cc")
target_link_libraries(regionpulse-agent PRIVATE regionpulse_agent)
target_compile_options(regionpulse-agent PRIVATE ${REGIONPULSE_WARNINGS})
install(TARGETS regionpulse-agent RUNTIME DESTINATION bin)
