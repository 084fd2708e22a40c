// libFuzzer: any bytes as a serialized HealthReport from a registered agent, through what the
// aggregator does with a report: validation and the registry's checks, then (when accepted)
// the region matrix, its query views and the verdict evidence built from it.
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "aggregator/agent_registry.h"
#include "aggregator/region_matrix.h"
#include "aggregator/verdict_evidence.h"
#include "common/proto_convert.h"
#include "common/report_validation.h"
#include "regionpulse/v1/ingest.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace regionpulse;
  v1::HealthReport report;
  if (!report.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)ReportProblems(report);

  // 2027-01-15: reports near this time pass the future-window check.
  const WallClock::time_point now{std::chrono::seconds(1'800'000'000)};
  AgentRegistry registry;
  RegionMatrix matrix;
  v1::Hello hello;
  hello.set_node("us-node-1");
  hello.set_region("us-east-1");
  hello.set_zone("us-east-1a");
  hello.set_instance_id(1);
  hello.mutable_probe_endpoint()->set_address("10.1.0.1");
  hello.mutable_probe_endpoint()->set_port(862);
  *hello.mutable_window() = ToDuration(std::chrono::seconds(1));
  const auto registered = registry.Hello(hello, now);
  if (!registered.ok) __builtin_trap();
  const auto accepted = registry.Accept(registered.session, report, now);
  if (accepted.stored_now()) matrix.Add(accepted.agent, report, now);
  // A second copy of the same report is a duplicate, never stored twice.
  (void)registry.Accept(registered.session, report, now);

  (void)matrix.Matrix(std::chrono::seconds(30), now);
  (void)matrix.Paths(v1::GetPathsRequest(), now);
  (void)matrix.Flows(v1::GetFlowsRequest(), now);
  (void)BuildVerdictEvidence(matrix, registry.Presence(now), {"us-east-1", "eu-west-1", "ap-southeast-1"},
                             now);
  matrix.Evict(now + std::chrono::hours(1));
  return 0;
}
