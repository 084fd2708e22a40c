// Who the peer of a gRPC call proved to be with its TLS client certificate, and whether a
// certificate was issued by a given CA. One CA file may admit agents (tls.client_ca_file) and
// another read clients (tls.read_client_ca_file); the server's handshake accepts both, so each
// call checks which one issued the certificate it came with.
//
// An agent's certificate names its node and region in a URI SAN:
//   spiffe://regionpulse/region/<region>/node/<node>
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "regionpulse/v1/ingest.pb.h"

namespace grpc {
class AuthContext;
}

namespace regionpulse {

// The node and region a certificate was issued for.
struct CertifiedNode {
  std::string region;
  std::string node;
  bool operator==(const CertifiedNode&) const = default;
};

inline constexpr char kNodeIdentityUriPrefix[] = "spiffe://regionpulse/region/";

// "spiffe://regionpulse/region/<region>/node/<node>".
std::string NodeIdentityUri(const CertifiedNode& identity);
// The identity a URI names, nullopt when it is not a regionpulse node URI.
std::optional<CertifiedNode> ParseNodeIdentityUri(const std::string& uri);
// The one node identity among a certificate's URI SANs; an error saying why when there is none
// or more than one (a certificate for two nodes proves neither).
Result<CertifiedNode> NodeIdentityOf(const std::vector<std::string>& uri_sans);
// Why a Hello does not match the certificate's identity, naming claimed and certified; nullopt
// when node and region both match.
std::optional<std::string> IdentityMismatch(const v1::Hello& hello, const CertifiedNode& certified);

// The PEM certificate (and the chain it came with) of a TLS peer; empty pem without one.
struct PeerCertificate {
  std::string pem;
  std::string chain_pem;
  // "CN=... (URI:...)": for refusals and logs.
  std::string Describe() const;
};
PeerCertificate PeerCertificateOf(const grpc::AuthContext* context);

// The URI SANs of a PEM certificate.
Result<std::vector<std::string>> UriSansOf(const std::string& pem);

// Checks certificates against the CAs of one PEM bundle (thread-safe once built).
class CertificateAuthority {
 public:
  // `what` names the bundle in errors ("tls.read_client_ca_file /etc/...").
  static Result<std::shared_ptr<const CertificateAuthority>> FromPem(const std::string& pem,
                                                                     const std::string& what);
  ~CertificateAuthority();
  CertificateAuthority(const CertificateAuthority&) = delete;
  CertificateAuthority& operator=(const CertificateAuthority&) = delete;

  // Empty when the certificate chains to one of the CAs (the chain's intermediates may help);
  // else why not.
  std::string Problem(const PeerCertificate& certificate) const;

 private:
  struct Store;
  explicit CertificateAuthority(std::unique_ptr<Store> store);
  std::unique_ptr<Store> store_;
};

}  // namespace regionpulse
