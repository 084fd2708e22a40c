// Query's unary handlers: check the request, read the view, answer.
#include "aggregator/query_service.h"

#include <algorithm>
#include <string>

namespace regionpulse {
namespace {

grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context, const grpc::Status& status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// A window must be a valid, non-negative protobuf Duration; 0 means the server's default.
grpc::Status CheckRange(const v1::TimeRange& range) {
  const auto& window = range.window();
  if (window.seconds() < 0 || window.nanos() < 0 || window.nanos() >= 1'000'000'000) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "range.window must be a non-negative duration, got " +
                            std::to_string(window.seconds()) + " s " + std::to_string(window.nanos()) +
                            " ns");
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::ServerUnaryReactor* QueryService::ListAgents(grpc::CallbackServerContext* context,
                                                   const v1::ListAgentsRequest* request,
                                                   v1::ListAgentsResponse* response) {
  if (auto allowed = authorizer_.AuthorizeRead(*context); !allowed.ok()) return Answer(context, allowed);
  *response = backend_.ListAgents(*request);
  return Answer(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* QueryService::GetRegionMatrix(grpc::CallbackServerContext* context,
                                                        const v1::GetRegionMatrixRequest* request,
                                                        v1::GetRegionMatrixResponse* response) {
  if (auto allowed = authorizer_.AuthorizeRead(*context); !allowed.ok()) return Answer(context, allowed);
  if (auto status = CheckRange(request->range()); !status.ok()) return Answer(context, status);
  return Answer(context, backend_.RegionMatrix(*request, response));
}

grpc::ServerUnaryReactor* QueryService::GetPaths(grpc::CallbackServerContext* context,
                                                 const v1::GetPathsRequest* request,
                                                 v1::GetPathsResponse* response) {
  if (auto allowed = authorizer_.AuthorizeRead(*context); !allowed.ok()) return Answer(context, allowed);
  if (auto status = CheckRange(request->range()); !status.ok()) return Answer(context, status);
  return Answer(context, backend_.Paths(*request, response));
}

grpc::ServerUnaryReactor* QueryService::GetFlows(grpc::CallbackServerContext* context,
                                                 const v1::GetFlowsRequest* request,
                                                 v1::GetFlowsResponse* response) {
  if (auto allowed = authorizer_.AuthorizeRead(*context); !allowed.ok()) return Answer(context, allowed);
  *response = backend_.Flows(*request);
  return Answer(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* QueryService::GetVerdictHistory(grpc::CallbackServerContext* context,
                                                          const v1::GetVerdictHistoryRequest* request,
                                                          v1::GetVerdictHistoryResponse* response) {
  if (auto allowed = authorizer_.AuthorizeRead(*context); !allowed.ok()) return Answer(context, allowed);
  const uint32_t limit =
      request->limit() == 0 ? kDefaultHistoryLimit : std::min<uint32_t>(request->limit(), kMaxHistoryLimit);
  std::optional<WallClock::time_point> since;
  if (request->has_since()) since = FromTimestamp(request->since());
  for (auto& transition : history_.Newest(limit, since)) *response->add_transitions() = std::move(transition);
  return Answer(context, grpc::Status::OK);
}

}  // namespace regionpulse
