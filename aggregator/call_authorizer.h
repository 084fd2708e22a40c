// Which gRPC calls a peer may make, from its TLS client certificate: Ingest needs one from
// tls.client_ca_file (naming the node when tls.require_node_identity), Verdicts and Query one
// from tls.read_client_ca_file. Without those files (or with --plaintext) every call passes.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "aggregator/aggregator_config.h"
#include "aggregator/peer_identity.h"
#include "common/result.h"

namespace regionpulse {

class CallAuthorizer {
 public:
  // Called with the API ("ingest", "read") and the reason for each refused call.
  using DeniedCallback =
      std::function<void(const char* api, const std::string& peer, const std::string& reason)>;

  // Admits every call.
  CallAuthorizer() = default;
  // Reads the CA files the configuration names (none when plaintext).
  static Result<CallAuthorizer> FromConfig(const AggregatorConfig& config);

  void set_on_denied(DeniedCallback on_denied) { on_denied_ = std::move(on_denied); }

  // OK, with the node the certificate names when node identity is required; else
  // PERMISSION_DENIED saying why.
  grpc::Status AuthorizeIngest(const grpc::ServerContextBase& context,
                               std::optional<CertifiedNode>* certified) const;
  // OK, or PERMISSION_DENIED saying why.
  grpc::Status AuthorizeRead(const grpc::ServerContextBase& context) const;

  bool ingest_checked() const { return ingest_ca_ != nullptr; }
  bool read_checked() const { return read_ca_ != nullptr; }

 private:
  grpc::Status Deny(const char* api, const grpc::ServerContextBase& context, const std::string& reason) const;

  std::shared_ptr<const CertificateAuthority> ingest_ca_;
  std::shared_ptr<const CertificateAuthority> read_ca_;
  bool require_node_identity_ = false;
  DeniedCallback on_denied_;
};

}  // namespace regionpulse
