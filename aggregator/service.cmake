# regionpulse-aggregator around the pure core: configuration, durable verdict history, the
# gRPC services (Ingest, Verdicts, Query, health, reflection), metrics and main.
find_package(ZLIB REQUIRED)  # CRC-32 of verdict history records

add_library(regionpulse_aggregator STATIC
  aggregator_config.cc
  verdict_history.cc)
target_include_directories(regionpulse_aggregator PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}")
target_link_libraries(regionpulse_aggregator
  PUBLIC regionpulse_common regionpulse_proto spdlog::spdlog
  PRIVATE yaml-cpp ZLIB::ZLIB)
target_compile_options(regionpulse_aggregator PRIVATE ${REGIONPULSE_WARNINGS})
