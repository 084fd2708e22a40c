# The agent daemon.
#   regionpulse_agent_streaming  report buffering, aggregator streams and metrics: needs
#                                neither BPF nor probing, so its tests stand alone
#   regionpulse_agent            the whole daemon wired together (integration tests link it)
#   regionpulse-agent            the executable
add_library(regionpulse_agent_streaming STATIC
  "${CMAKE_CURRENT_LIST_DIR}/report_buffer.cc"
  "${CMAKE_CURRENT_LIST_DIR}/aggregator_stream.cc"
  "${CMAKE_CURRENT_LIST_DIR}/agent_metrics.cc")
target_include_directories(regionpulse_agent_streaming PUBLIC "${PROJECT_SOURCE_DIR}")
target_link_libraries(regionpulse_agent_streaming PUBLIC
  regionpulse_common regionpulse_proto gRPC::grpc++ spdlog::spdlog prometheus-cpp::core Threads::Threads)
target_compile_options(regionpulse_agent_streaming PRIVATE ${REGIONPULSE_WARNINGS})

add_library(regionpulse_agent STATIC "${CMAKE_CURRENT_LIST_DIR}/agent.cc")
target_link_libraries(regionpulse_agent PUBLIC
  regionpulse_agent_streaming regionpulse_agent_probing regionpulse_agent_datapath
  protobuf::libprotobuf Boost::headers)
target_compile_options(regionpulse_agent PRIVATE ${REGIONPULSE_WARNINGS})

add_executable(regionpulse-agent "${CMAKE_CURRENT_LIST_DIR}/main.cc")
target_link_libraries(regionpulse-agent PRIVATE regionpulse_agent)
target_compile_options(regionpulse-agent PRIVATE ${REGIONPULSE_WARNINGS})
install(TARGETS regionpulse-agent RUNTIME DESTINATION bin)
