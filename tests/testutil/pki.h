#pragma once

// Test certificates made with the openssl command in a test's own directory.
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "tests/testutil/process.h"

namespace stockpile::testing {

// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all from `ca`.
class Pki {
 public:
  explicit Pki(std::string dir) : dir_(std::move(dir)) {}

  bool MakeCa(const std::string& ca) {
    return Run({"openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                Path(ca + ".key"),
                "-out",
                Path(ca + ".pem"),
                "-days",
                "2",
                "-subj",
                "/CN=" + ca,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign"});
  }
  // usage: serverAuth or clientAuth.
  bool MakeLeaf(const std::string& name, const std::string& ca, const std::string& usage) {
    std::ofstream(Path(name + ".ext"))
        << "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        << "keyUsage=critical,digitalSignature\nextendedKeyUsage=" << usage << "\n";
    return Run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", Path(name + ".key"), "-out", Path(name + ".csr"), "-subj",
                "/CN=" + name}) &&
           Run({"openssl", "x509", "-req", "-in", Path(name + ".csr"), "-CA", Path(ca + ".pem"),
                "-CAkey", Path(ca + ".key"), "-CAcreateserial", "-out", Path(name + ".pem"),
                "-days", "2", "-extfile", Path(name + ".ext")});
  }
  std::string Path(const std::string& file) const { return dir_ + "/" + file; }
  std::string log;

 private:
  bool Run(const std::vector<std::string>& argv) {
    std::string output;
    const int rc = RunCommand(argv, &output, "", std::chrono::seconds(30));
    log += output;
    return rc == 0;
  }
  std::string dir_;
};

}  // namespace stockpile::testing
