// certs: a throw-away PKI for TLS tests, made with the openssl command line.
//
// Tests must not depend on certificates committed to the tree (they expire,
// and a private key in a repository teaches the wrong habit), so the first
// call to test_pki() creates a fresh one in a new temporary directory:
//
//   ca                 trusted test root ("trellis test CA")
//   server             CN=localhost, subjectAltName DNS:localhost, IP:127.0.0.1,
//                      serverAuth, signed by ca
//   client             CN=trellis test client, clientAuth, signed by ca (mTLS)
//   other_ca           an unrelated root that nobody trusts
//   untrusted_server   like server, but signed by other_ca
//   expired_server     like server, signed by ca, valid from 2 days ago to
//                      1 day ago (made with `openssl ca -startdate -enddate`,
//                      since OpenSSL 3.0's req and x509 cannot back-date)
//
// Keys are EC P-256, which openssl generates in milliseconds (RSA 2048
// takes far longer). The PKI is generated once per test process and the
// directory is removed at exit. CTest runs each TEST() in its own process,
// so each TLS test pays the generation once (~0.1 s).
//
// Thread-safety: test_pki() may be called from any thread (static
// initialisation); the returned object is immutable.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "support/process.hpp"

// Skips the test (visibly) when the openssl command line tool is missing.
#define REQUIRE_OPENSSL()                                                               \
  do {                                                                                  \
    if (!test::program_exists("openssl"))                                               \
      GTEST_SKIP() << "needs the `openssl` command line tool (Debian package openssl)"; \
  } while (0)

namespace trellis::test {

// Paths of a PEM certificate (with no intermediates) and its unencrypted key.
struct cert_and_key {
  std::string cert_file;
  std::string key_file;
};

struct pki {
  std::string dir;  // the temporary directory holding every file below
  std::string ca_file;
  cert_and_key server;
  cert_and_key client;
  std::string other_ca_file;
  cert_and_key untrusted_server;
  cert_and_key expired_server;
};

// The PKI of this test process, generated on first use.
// REQUIRES: program_exists("openssl"); tests should GTEST_SKIP otherwise.
// Throws std::runtime_error carrying openssl's output if a step fails.
const pki& test_pki();

}  // namespace trellis::test
