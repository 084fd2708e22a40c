# regionpulse-aggregator around the pure core: configuration, durable verdict history, the
# gRPC services (Ingest, Verdicts, Query, health, reflection), metrics and main.
find_package(ZLIB REQUIRED)  # CRC-32 of verdict history records

add_library(regionpulse_aggregator STATIC
  aggregator.cc
  aggregator_config.cc
  ingest_service.cc
  query_service.cc
  verdict_history.cc
  verdict_service.cc)
target_include_directories(regionpulse_aggregator PUBLIC "${PROJECT_SOURCE_DIR}")
target_link_libraries(regionpulse_aggregator
  PUBLIC regionpulse_aggregator_core regionpulse_common regionpulse_proto gRPC::grpc++ spdlog::spdlog
         prometheus-cpp::core
  PRIVATE gRPC::grpc++_reflection yaml-cpp ZLIB::ZLIB)
target_compile_options(regionpulse_aggregator PRIVATE ${REGIONPULSE_WARNINGS})

add_executable(regionpulse-aggregator main.cc)
target_link_libraries(regionpulse-aggregator PRIVATE regionpulse_aggregator)
target_compile_options(regionpulse-aggregator PRIVATE ${REGIONPULSE_WARNINGS})
