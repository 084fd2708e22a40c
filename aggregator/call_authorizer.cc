// Per-call checks of the peer's certificate against the CA of the API it calls.
#include "aggregator/call_authorizer.h"

#include <fstream>
#include <sstream>

namespace regionpulse {
namespace {

Result<std::shared_ptr<const CertificateAuthority>> LoadAuthority(const std::string& path,
                                                                  const std::string& key) {
  std::ifstream in(path);
  if (!in) return Error{"cannot read " + key + " " + path, errno};
  std::stringstream text;
  text << in.rdbuf();
  return CertificateAuthority::FromPem(text.str(), key + " " + path);
}

}  // namespace

Result<CallAuthorizer> CallAuthorizer::FromConfig(const AggregatorConfig& config) {
  CallAuthorizer authorizer;
  if (config.plaintext || !config.tls.Enabled()) return authorizer;
  if (!config.tls.client_ca_file.empty()) {
    auto ca = LoadAuthority(config.tls.client_ca_file, "tls.client_ca_file");
    if (!ca) return ca.error();
    authorizer.ingest_ca_ = std::move(*ca);
    authorizer.require_node_identity_ = config.tls.require_node_identity;
  }
  if (!config.tls.read_client_ca_file.empty()) {
    auto ca = LoadAuthority(config.tls.read_client_ca_file, "tls.read_client_ca_file");
    if (!ca) return ca.error();
    authorizer.read_ca_ = std::move(*ca);
  }
  return authorizer;
}

grpc::Status CallAuthorizer::Deny(const char* api, const grpc::ServerContextBase& context,
                                  const std::string& reason) const {
  if (on_denied_) on_denied_(api, context.peer(), reason);
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, reason);
}

grpc::Status CallAuthorizer::AuthorizeIngest(const grpc::ServerContextBase& context,
                                             std::optional<CertifiedNode>* certified) const {
  certified->reset();
  if (!ingest_ca_) return grpc::Status::OK;
  const PeerCertificate certificate = PeerCertificateOf(context.auth_context().get());
  if (std::string problem = ingest_ca_->Problem(certificate); !problem.empty()) {
    return Deny("ingest", context,
                "Ingest needs a client certificate issued by tls.client_ca_file (" + certificate.Describe() +
                    ": " + problem + ")");
  }
  if (!require_node_identity_) return grpc::Status::OK;
  auto uris = UriSansOf(certificate.pem);
  if (!uris) return Deny("ingest", context, "client certificate: " + uris.error().message);
  auto identity = NodeIdentityOf(*uris);
  if (!identity) return Deny("ingest", context, identity.error().message);
  *certified = std::move(*identity);
  return grpc::Status::OK;
}

grpc::Status CallAuthorizer::AuthorizeRead(const grpc::ServerContextBase& context) const {
  if (!read_ca_) return grpc::Status::OK;
  const PeerCertificate certificate = PeerCertificateOf(context.auth_context().get());
  if (std::string problem = read_ca_->Problem(certificate); !problem.empty()) {
    return Deny("read", context,
                "Verdicts and Query need a client certificate issued by tls.read_client_ca_file (" +
                    certificate.Describe() + ": " + problem + ")");
  }
  return grpc::Status::OK;
}

}  // namespace regionpulse
