#include "services/common/auth/tls.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "services/common/status_macros.h"

namespace stockpile::auth {
namespace {

absl::StatusOr<std::string> ReadPem(absl::string_view what, const std::string& path) {
  if (path.empty())
    return absl::InvalidArgumentError(absl::StrCat("TLS ", what, " file is required"));
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read TLS ", what, " file ", path));
  std::ostringstream out;
  out << in.rdbuf();
  if (out.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("TLS ", what, " file ", path, " is empty"));
  }
  return out.str();
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

X509Ptr ParseCert(const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
}

absl::Status CheckCertificate(absl::string_view what, const std::string& path,
                              const std::string& pem) {
  if (ParseCert(pem) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS ", what, " file ", path, " holds no PEM certificate"));
  }
  return absl::OkStatus();
}

// The key must parse and belong to the certificate: a mismatch otherwise shows up only as a
// failed handshake with no hint at the cause. The key's bytes never reach a message.
absl::Status CheckKeyPair(const TlsFiles& files, const std::string& cert_pem,
                          const std::string& key_pem) {
  BioPtr bio = MemoryBio(key_pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS key file ", files.key, " holds no unencrypted PEM private key"));
  }
  X509Ptr cert = ParseCert(cert_pem);
  if (cert == nullptr || X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS key file ", files.key, " does not match certificate ", files.cert));
  }
  return absl::OkStatus();
}

struct KeyCert {
  std::string cert;
  std::string key;
};

absl::StatusOr<KeyCert> ReadKeyCert(const TlsFiles& files) {
  ASSIGN_OR_RETURN(std::string cert, ReadPem("certificate", files.cert));
  ASSIGN_OR_RETURN(std::string key, ReadPem("key", files.key));
  RETURN_IF_ERROR(CheckCertificate("certificate", files.cert, cert));
  RETURN_IF_ERROR(CheckKeyPair(files, cert, key));
  return KeyCert{std::move(cert), std::move(key)};
}

absl::StatusOr<std::string> ReadCa(const TlsFiles& files) {
  ASSIGN_OR_RETURN(std::string ca, ReadPem("CA", files.ca));
  RETURN_IF_ERROR(CheckCertificate("CA", files.ca, ca));
  return ca;
}

grpc_ssl_client_certificate_request_type ClientCertPolicy(const TlsFiles& files) {
  if (files.require_client_cert) return GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  if (!files.ca.empty()) return GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  return GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsOptions& options) {
  if (options.insecure) {
    std::cerr << "WARNING: plaintext gRPC listener (--insecure): no TLS, traffic and bearer "
                 "tokens travel unencrypted; use only for local development\n";
    return grpc::InsecureServerCredentials();
  }
  const TlsFiles& files = options.files;
  ASSIGN_OR_RETURN(KeyCert pair, ReadKeyCert(files));
  grpc::SslServerCredentialsOptions ssl(ClientCertPolicy(files));
  if (files.require_client_cert && files.ca.empty()) {
    return absl::InvalidArgumentError("TLS CA file is required when client certificates are");
  }
  if (!files.ca.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadCa(files));
  }
  ssl.pem_key_cert_pairs.push_back({pair.key, pair.cert});
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const TlsOptions& options) {
  if (options.insecure) {
    std::cerr << "WARNING: plaintext gRPC client (--insecure): no TLS, traffic and bearer tokens "
                 "travel unencrypted; use only for local development\n";
    return grpc::InsecureChannelCredentials();
  }
  const TlsFiles& files = options.files;
  grpc::SslCredentialsOptions ssl;
  ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadCa(files));
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError(
        "TLS client certificate and key go together: give both or neither");
  }
  if (!files.cert.empty()) {
    ASSIGN_OR_RETURN(KeyCert pair, ReadKeyCert(files));
    ssl.pem_cert_chain = std::move(pair.cert);
    ssl.pem_private_key = std::move(pair.key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace stockpile::auth
