# Probing: agent configuration, the STAMP codec, reflector and prober on Boost.Asio, and the
# pure window folding that turns probe events and kernel counters into HealthReports.
add_library(regionpulse_agent_probing STATIC
  agent_config.cc
  probe_codec.cc
  prober.cc
  reflector.cc
  window_folder.cc)
target_include_directories(regionpulse_agent_probing PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}"
                                                            "${PROJECT_SOURCE_DIR}/bpf")
target_link_libraries(regionpulse_agent_probing
  PUBLIC regionpulse_common regionpulse_proto Boost::headers Boost::system yaml-cpp OpenSSL::Crypto
         spdlog::spdlog Threads::Threads)
target_compile_options(regionpulse_agent_probing PRIVATE ${REGIONPULSE_WARNINGS})
