#include "support/certs.hpp"

#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "support/process.hpp"

namespace trellis::test {
namespace {

namespace fs = std::filesystem;

// One configuration for every step, so the result does not depend on the
// machine's /etc/ssl/openssl.cnf. Sections name the certificate profiles.
constexpr const char* profiles = R"([req]
distinguished_name = req_dn
[req_dn]

[root_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

# `openssl ca` is the one 3.0 command that accepts explicit validity dates;
# its [test_ca] section is added by openssl_cnf(), with paths into the PKI
# directory (it would resolve relative ones against the test's cwd).
[ca]
default_ca = test_ca
[any_name]
commonName = supplied
)";

std::string openssl_cnf(const std::string& dir) {
  return std::string(profiles) + "[test_ca]\n" +  // signs the expired certificate
         "database = " + dir + "/index.txt\n" +   // what `ca` has signed
         "serial = " + dir + "/serial\n" +        // required by `ca`, even with -rand_serial
         "new_certs_dir = " + dir + "\n" +        // a copy of each certificate
         "default_md = sha256\n" +                // signature hash
         "policy = any_name\n" +                  // no rules on the subject
         "unique_subject = no\n";
}

constexpr int validity_days = 30;

void openssl(std::vector<std::string> args, const std::string& dir) {
  args.insert(args.begin(), "openssl");
  auto r = run(args, {}, std::chrono::seconds(30));
  if (!r.status.success()) {
    std::string cmd;
    for (const auto& a : args) cmd += a + " ";
    throw std::runtime_error("test PKI in " + dir + ": `" + cmd + "` failed (" +
                             r.status.describe() + (r.timed_out ? ", timed out" : "") + "):\n" +
                             r.err);
  }
}

// "YYYYMMDDHHMMSSZ", the form `openssl ca -startdate/-enddate` takes.
std::string asn1_time(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%SZ", &tm);
  return buf;
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream f(p);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

// Generates a P-256 key and a certificate for `subject`: self-signed when
// `issuer` is null, else signed by it. `profile` is a section of the config.
cert_and_key make_cert(const std::string& dir, const std::string& cnf, const std::string& name,
                       const std::string& subject, const std::string& profile,
                       const cert_and_key* issuer) {
  cert_and_key out{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
  std::vector<std::string> args{"req", "-x509", "-config", cnf, "-extensions", profile};
  args.insert(args.end(), {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"});
  args.insert(args.end(), {"-subj", subject, "-days", std::to_string(validity_days)});
  args.insert(args.end(), {"-keyout", out.key_file, "-out", out.cert_file});
  if (issuer) {
    // OpenSSL 3.0's `req -x509 -CA`: make the key and the CA-signed
    // certificate in one step, no CSR file.
    args.insert(args.end(), {"-CA", issuer->cert_file, "-CAkey", issuer->key_file});
  }
  openssl(std::move(args), dir);
  return out;
}

pki generate(const std::string& dir) {
  const std::string cnf = dir + "/openssl.cnf";
  write_file(cnf, openssl_cnf(dir));
  write_file(dir + "/index.txt", "");

  pki p;
  p.dir = dir;
  const cert_and_key ca = make_cert(dir, cnf, "ca", "/CN=trellis test CA", "root_ca", nullptr);
  p.ca_file = ca.cert_file;
  p.server = make_cert(dir, cnf, "server", "/CN=localhost", "server", &ca);
  p.client = make_cert(dir, cnf, "client", "/CN=trellis test client", "client", &ca);
  const cert_and_key other =
      make_cert(dir, cnf, "other-ca", "/CN=trellis untrusted CA", "root_ca", nullptr);
  p.other_ca_file = other.cert_file;
  p.untrusted_server = make_cert(dir, cnf, "untrusted-server", "/CN=localhost", "server", &other);

  // Expired: a CSR, then `openssl ca` with a validity window in the past.
  p.expired_server = {dir + "/expired-server.pem", dir + "/expired-server.key"};
  const std::string csr = dir + "/expired-server.csr";
  openssl({"req", "-new", "-config", cnf, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-subj", "/CN=localhost", "-keyout", p.expired_server.key_file, "-out", csr},
          dir);
  const auto now = std::chrono::system_clock::now();
  const auto day = std::chrono::hours(24);
  std::vector<std::string> sign{"ca", "-batch", "-config", cnf, "-extensions", "server"};
  sign.insert(sign.end(), {"-rand_serial", "-notext", "-cert", ca.cert_file, "-keyfile",
                           ca.key_file, "-in", csr, "-out", p.expired_server.cert_file});
  sign.insert(sign.end(),
              {"-startdate", asn1_time(now - 2 * day), "-enddate", asn1_time(now - day)});
  openssl(std::move(sign), dir);
  return p;
}

// Owns the directory: removes it when the test process exits.
struct pki_holder {
  pki value;
  pki_holder() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/trellis-pki-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      throw std::system_error(errno, std::system_category(), "mkdtemp " + tmpl);
    try {
      value = generate(tmpl);
    } catch (...) {
      std::error_code ignored;
      fs::remove_all(tmpl, ignored);
      throw;
    }
  }
  ~pki_holder() {
    std::error_code ignored;
    fs::remove_all(value.dir, ignored);
  }
  pki_holder(const pki_holder&) = delete;
  pki_holder& operator=(const pki_holder&) = delete;
};

}  // namespace

const pki& test_pki() {
  // A function-local static: generated once, on first use, thread-safely; if
  // generation throws, the next call tries again.
  static const pki_holder holder;
  return holder.value;
}

}  // namespace trellis::test
