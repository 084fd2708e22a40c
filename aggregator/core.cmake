# The aggregator's pure core: agent registry, region matrix, verdict engine, probe planner.
# No I/O and no clock reads: the service passes reports and time in.
add_library(regionpulse_aggregator_core STATIC
  agent_registry.cc
  loss_direction.cc
  probe_planner.cc
  region_matrix.cc
  verdict_engine.cc
  verdict_evidence.cc)
target_include_directories(regionpulse_aggregator_core PUBLIC "${PROJECT_SOURCE_DIR}")
target_link_libraries(regionpulse_aggregator_core PUBLIC regionpulse_common regionpulse_proto)
target_compile_options(regionpulse_aggregator_core PRIVATE ${REGIONPULSE_WARNINGS})
