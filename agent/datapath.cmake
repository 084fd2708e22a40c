# The BPF datapath: loads, attaches and reads the tunnel tc programs and the TCP signal
# programs. libbpf types stay inside these sources; others see agent/kernel_datapath.h and
# agent/bpf_datapath.h.
add_library(regionpulse_agent_datapath STATIC
  "${CMAKE_CURRENT_LIST_DIR}/bpf_datapath.cc"
  "${CMAKE_CURRENT_LIST_DIR}/clsact_reaper.cc"
  "${CMAKE_CURRENT_LIST_DIR}/flow_ack_ledger.cc"
  "${CMAKE_CURRENT_LIST_DIR}/flow_connections.cc"
  "${CMAKE_CURRENT_LIST_DIR}/interface_selection.cc"
  "${CMAKE_CURRENT_LIST_DIR}/interface_watcher.cc"
  "${CMAKE_CURRENT_LIST_DIR}/kernel_mounts.cc"
  "${CMAKE_CURRENT_LIST_DIR}/tcp_socket_dump.cc"
  "${CMAKE_CURRENT_LIST_DIR}/tunnel_attachment.cc")
target_include_directories(regionpulse_agent_datapath PUBLIC "${PROJECT_SOURCE_DIR}")
target_link_libraries(regionpulse_agent_datapath
  PUBLIC regionpulse_common
  PRIVATE bpf_tunnel_tc_skel bpf_tcp_signals_skel PkgConfig::LIBBPF spdlog::spdlog Threads::Threads)
target_compile_options(regionpulse_agent_datapath PRIVATE ${REGIONPULSE_WARNINGS})
