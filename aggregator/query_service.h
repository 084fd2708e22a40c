// regionpulse.v1.Query: read-only views for engineers (pulsectl, grpcurl) on gRPC's callback
// API: agents, the region matrix, node-to-node paths, replication flows, verdict history.
#pragma once

#include <cstdint>

#include "aggregator/call_authorizer.h"
#include "aggregator/verdict_history.h"
#include "regionpulse/v1/query.grpc.pb.h"

namespace regionpulse {

// What the views are read from: the registry, matrix and planner behind the aggregator's lock,
// at the backend's clock. Requests reach it already checked.
class QueryBackend {
 public:
  virtual ~QueryBackend() = default;
  virtual v1::ListAgentsResponse ListAgents(const v1::ListAgentsRequest& request) = 0;
  // Not OK (RESOURCE_EXHAUSTED) when answering would need the core lock more often than allowed.
  virtual grpc::Status RegionMatrix(const v1::GetRegionMatrixRequest& request,
                                    v1::GetRegionMatrixResponse* response) = 0;
  virtual grpc::Status Paths(const v1::GetPathsRequest& request, v1::GetPathsResponse* response) = 0;
  virtual v1::GetFlowsResponse Flows(const v1::GetFlowsRequest& request) = 0;
};

class QueryService final : public v1::Query::CallbackService {
 public:
  // GetVerdictHistory returns this many transitions when the request says 0, and never more
  // than kMaxHistoryLimit.
  static constexpr uint32_t kDefaultHistoryLimit = 100;
  static constexpr uint32_t kMaxHistoryLimit = 10'000;

  // Every call must pass authorizer.AuthorizeRead (which the owner may reconfigure until the
  // server starts).
  QueryService(QueryBackend& backend, const VerdictHistory& history, const CallAuthorizer& authorizer)
      : backend_(backend), history_(history), authorizer_(authorizer) {}

  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* context,
                                       const v1::ListAgentsRequest* request,
                                       v1::ListAgentsResponse* response) override;
  grpc::ServerUnaryReactor* GetRegionMatrix(grpc::CallbackServerContext* context,
                                            const v1::GetRegionMatrixRequest* request,
                                            v1::GetRegionMatrixResponse* response) override;
  grpc::ServerUnaryReactor* GetPaths(grpc::CallbackServerContext* context, const v1::GetPathsRequest* request,
                                     v1::GetPathsResponse* response) override;
  grpc::ServerUnaryReactor* GetFlows(grpc::CallbackServerContext* context, const v1::GetFlowsRequest* request,
                                     v1::GetFlowsResponse* response) override;
  grpc::ServerUnaryReactor* GetVerdictHistory(grpc::CallbackServerContext* context,
                                              const v1::GetVerdictHistoryRequest* request,
                                              v1::GetVerdictHistoryResponse* response) override;

 private:
  QueryBackend& backend_;
  const VerdictHistory& history_;
  const CallAuthorizer& authorizer_;
};

}  // namespace regionpulse
