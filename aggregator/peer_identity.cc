// Certificate identities with OpenSSL: URI SANs, and chain checks against one CA bundle.
#include "aggregator/peer_identity.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

namespace regionpulse {
namespace {

constexpr char kNodeSegment[] = "/node/";

struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::string OpenSslReason() {
  char reason[256] = "no OpenSSL error queued";
  if (unsigned long code = ERR_get_error(); code != 0) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  return reason;
}

// Every certificate in a PEM text, in order.
std::vector<X509Ptr> ReadCertificates(const std::string& pem) {
  std::vector<X509Ptr> certs;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  if (!bio) return certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(cert);
  ERR_clear_error();  // the end of the text reads as an error
  return certs;
}

bool ValidNamePart(const std::string& part) {
  return !part.empty() && part.find('/') == std::string::npos;
}

std::string CommonNameOf(X509* cert) {
  char name[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof(name));
  return name;
}

}  // namespace

std::string NodeIdentityUri(const CertifiedNode& identity) {
  return kNodeIdentityUriPrefix + identity.region + kNodeSegment + identity.node;
}

std::optional<CertifiedNode> ParseNodeIdentityUri(const std::string& uri) {
  const std::string prefix = kNodeIdentityUriPrefix;
  if (!uri.starts_with(prefix)) return std::nullopt;
  const std::string rest = uri.substr(prefix.size());
  const size_t node_at = rest.find(kNodeSegment);
  if (node_at == std::string::npos) return std::nullopt;
  CertifiedNode identity{rest.substr(0, node_at), rest.substr(node_at + sizeof(kNodeSegment) - 1)};
  if (!ValidNamePart(identity.region) || !ValidNamePart(identity.node)) return std::nullopt;
  return identity;
}

Result<CertifiedNode> NodeIdentityOf(const std::vector<std::string>& uri_sans) {
  std::optional<CertifiedNode> found;
  for (const auto& uri : uri_sans) {
    auto identity = ParseNodeIdentityUri(uri);
    if (!identity) continue;
    if (found && !(*found == *identity)) {
      return Error{"client certificate names more than one node (" + NodeIdentityUri(*found) + ", " + uri +
                   ")"};
    }
    found = identity;
  }
  if (!found) {
    return Error{"client certificate has no URI SAN " + std::string(kNodeIdentityUriPrefix) +
                 "<region>/node/<node> naming the agent's node"};
  }
  return *found;
}

std::optional<std::string> IdentityMismatch(const v1::Hello& hello, const CertifiedNode& certified) {
  if (hello.node() == certified.node && hello.region() == certified.region) return std::nullopt;
  return "Hello claims node '" + hello.node() + "' in region '" + hello.region() +
         "' but the client certificate is for node '" + certified.node + "' in region '" + certified.region +
         "'";
}

std::string PeerCertificate::Describe() const {
  auto certs = ReadCertificates(pem);
  if (certs.empty()) return "no client certificate";
  std::string text = "CN=" + CommonNameOf(certs.front().get());
  if (auto uris = UriSansOf(pem); uris && !uris->empty()) {
    for (const auto& uri : *uris) text += " URI:" + uri;
  }
  return text;
}

PeerCertificate PeerCertificateOf(const grpc::AuthContext* context) {
  PeerCertificate certificate;
  if (context == nullptr) return certificate;
  for (const auto& value : context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
    certificate.pem.assign(value.data(), value.size());
  }
  for (const auto& value : context->FindPropertyValues(GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME)) {
    certificate.chain_pem.assign(value.data(), value.size());
  }
  return certificate;
}

Result<std::vector<std::string>> UriSansOf(const std::string& pem) {
  auto certs = ReadCertificates(pem);
  if (certs.empty()) return Error{"not a PEM certificate"};
  std::vector<std::string> uris;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certs.front().get(), NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)), ASN1_STRING_length(uri));
  }
  GENERAL_NAMES_free(names);
  return uris;
}

struct CertificateAuthority::Store {
  X509_STORE* store = X509_STORE_new();
  ~Store() { X509_STORE_free(store); }
};

CertificateAuthority::CertificateAuthority(std::unique_ptr<Store> store) : store_(std::move(store)) {}
CertificateAuthority::~CertificateAuthority() = default;

Result<std::shared_ptr<const CertificateAuthority>> CertificateAuthority::FromPem(const std::string& pem,
                                                                                  const std::string& what) {
  auto store = std::make_unique<Store>();
  if (store->store == nullptr) return Error{what + ": X509_STORE_new: " + OpenSslReason()};
  auto certs = ReadCertificates(pem);
  if (certs.empty()) return Error{what + ": no PEM certificate in it"};
  for (auto& cert : certs) {
    if (X509_STORE_add_cert(store->store, cert.get()) != 1) {
      return Error{what + ": cannot use a certificate: " + OpenSslReason()};
    }
  }
  return std::shared_ptr<const CertificateAuthority>(new CertificateAuthority(std::move(store)));
}

std::string CertificateAuthority::Problem(const PeerCertificate& certificate) const {
  auto leaf = ReadCertificates(certificate.pem);
  if (leaf.empty()) return "no client certificate";
  auto chain = ReadCertificates(certificate.chain_pem);
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (auto& cert : chain) sk_X509_push(untrusted, cert.get());
  X509_STORE_CTX* context = X509_STORE_CTX_new();
  std::string problem;
  if (context == nullptr || X509_STORE_CTX_init(context, store_->store, leaf.front().get(), untrusted) != 1) {
    problem = "cannot check the certificate: " + OpenSslReason();
  } else if (X509_verify_cert(context) != 1) {
    problem = X509_verify_cert_error_string(X509_STORE_CTX_get_error(context));
    ERR_clear_error();
  }
  X509_STORE_CTX_free(context);
  sk_X509_free(untrusted);  // the certificates belong to `chain`
  return problem;
}

}  // namespace regionpulse
