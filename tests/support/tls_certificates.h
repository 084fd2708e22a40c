// Throwaway certificates for TLS tests, made at test time with the OpenSSL library (no files
// in the repository, nothing that expires under a long-lived checkout): a CA, a server
// certificate for 127.0.0.1 and localhost and a client certificate both signed by it, and a
// second, unrelated CA for the "wrong CA" cases. Keys are EC P-256.
#pragma once

#include <string>

namespace regionpulse::test {

struct TestCertificates {
  std::string ca_cert;      // the CA both leaf certificates chain to
  std::string server_cert;  // CN regionpulse-aggregator, SAN IP:127.0.0.1, DNS:localhost
  std::string server_key;
  std::string client_cert;  // CN regionpulse-agent, extendedKeyUsage clientAuth
  std::string client_key;
  std::string other_ca_cert;      // a CA that signed none of the above
  std::string other_client_cert;  // a client certificate signed by the other CA
  std::string other_client_key;
  // A client certificate signed by the CA that names an agent's node in a URI SAN:
  // spiffe://regionpulse/region/eu-west-1/node/eu-west-1-node-1 (TwelveAgents()[4]).
  std::string node_client_cert;
  std::string node_client_key;
};

// Writes the PEM files into `directory` and returns their paths. Throws std::runtime_error
// with OpenSSL's reason when a step fails.
TestCertificates MakeTestCertificates(const std::string& directory);

}  // namespace regionpulse::test
