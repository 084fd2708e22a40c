// TestCertificates with the OpenSSL 3 library API (see tls_certificates.h).
#include "tests/support/tls_certificates.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

namespace regionpulse::test {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

[[noreturn]] void Fail(const std::string& step) {
  char reason[256] = "no OpenSSL error queued";
  if (unsigned long code = ERR_get_error(); code != 0) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  throw std::runtime_error("test certificates: " + step + ": " + reason);
}

Key NewKey() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) Fail("EC P-256 key generation");
  return key;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  if (extension == nullptr) Fail("extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  int added = X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
  if (added != 1) Fail("adding extension " + std::string(OBJ_nid2sn(nid)));
}

struct Issuer {
  X509* cert;  // nullptr: self-signed
  EVP_PKEY* key;
};

// extensions: (nid, value) in OpenSSL's configuration syntax.
Cert NewCertificate(const std::string& common_name, EVP_PKEY* key, long serial, Issuer issuer,
                    const std::vector<std::pair<int, std::string>>& extensions) {
  Cert cert(X509_new());
  if (!cert) Fail("X509_new");
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  // An hour into the past, so a clock a little behind in another process still accepts it.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  if (X509_set_pubkey(cert.get(), key) != 1) Fail("X509_set_pubkey for " + common_name);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("regionpulse test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer.cert != nullptr ? issuer.cert : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) != 1) Fail("issuer name");
  AddExtension(cert.get(), issuer_cert, NID_subject_key_identifier, "hash");
  AddExtension(cert.get(), issuer_cert, NID_authority_key_identifier, "keyid:always");
  for (const auto& [nid, value] : extensions) AddExtension(cert.get(), issuer_cert, nid, value);
  if (X509_sign(cert.get(), issuer.key, EVP_sha256()) == 0) Fail("signing " + common_name);
  return cert;
}

Cert NewCa(const std::string& common_name, EVP_PKEY* key, long serial) {
  return NewCertificate(
      common_name, key, serial, Issuer{nullptr, key},
      {{NID_basic_constraints, "critical,CA:TRUE"}, {NID_key_usage, "critical,keyCertSign,cRLSign"}});
}

std::unique_ptr<BIO, BioFree> OpenForWriting(const std::string& path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "w"));
  if (!bio) Fail("opening " + path);
  return bio;
}

std::string WriteCert(const std::string& path, X509* cert) {
  auto bio = OpenForWriting(path);
  if (PEM_write_bio_X509(bio.get(), cert) != 1) Fail("writing " + path);
  return path;
}

std::string WriteKey(const std::string& path, EVP_PKEY* key) {
  auto bio = OpenForWriting(path);
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    Fail("writing " + path);
  }
  return path;
}

}  // namespace

TestCertificates MakeTestCertificates(const std::string& directory) {
  Key ca_key = NewKey();
  Cert ca = NewCa("regionpulse test CA", ca_key.get(), 1);
  Key other_ca_key = NewKey();
  Cert other_ca = NewCa("unrelated test CA", other_ca_key.get(), 1);

  Key server_key = NewKey();
  Cert server = NewCertificate("regionpulse-aggregator", server_key.get(), 2, Issuer{ca.get(), ca_key.get()},
                               {{NID_basic_constraints, "critical,CA:FALSE"},
                                {NID_key_usage, "critical,digitalSignature"},
                                {NID_ext_key_usage, "serverAuth"},
                                {NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"}});
  const std::vector<std::pair<int, std::string>> client_extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, "clientAuth"}};
  Key client_key = NewKey();
  Cert client = NewCertificate("regionpulse-agent", client_key.get(), 3, Issuer{ca.get(), ca_key.get()},
                               client_extensions);
  Key node_client_key = NewKey();
  auto node_extensions = client_extensions;
  node_extensions.push_back(
      {NID_subject_alt_name, "URI:spiffe://regionpulse/region/eu-west-1/node/eu-west-1-node-1"});
  Cert node_client = NewCertificate("eu-west-1-node-1", node_client_key.get(), 4,
                                    Issuer{ca.get(), ca_key.get()}, node_extensions);
  Key other_client_key = NewKey();
  Cert other_client = NewCertificate("regionpulse-agent", other_client_key.get(), 2,
                                     Issuer{other_ca.get(), other_ca_key.get()}, client_extensions);

  TestCertificates files;
  files.ca_cert = WriteCert(directory + "/ca.pem", ca.get());
  files.other_ca_cert = WriteCert(directory + "/other-ca.pem", other_ca.get());
  files.server_cert = WriteCert(directory + "/server.pem", server.get());
  files.server_key = WriteKey(directory + "/server-key.pem", server_key.get());
  files.client_cert = WriteCert(directory + "/client.pem", client.get());
  files.client_key = WriteKey(directory + "/client-key.pem", client_key.get());
  files.node_client_cert = WriteCert(directory + "/node-client.pem", node_client.get());
  files.node_client_key = WriteKey(directory + "/node-client-key.pem", node_client_key.get());
  files.other_client_cert = WriteCert(directory + "/other-client.pem", other_client.get());
  files.other_client_key = WriteKey(directory + "/other-client-key.pem", other_client_key.get());
  return files;
}

}  // namespace regionpulse::test
