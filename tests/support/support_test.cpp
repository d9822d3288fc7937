// Tests of the test-support utilities: other tests rely on them behaving
// exactly as documented (children reaped, deadlines kept, certificates valid
// for what they claim).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/certs.hpp"
#include "support/process.hpp"

namespace trellis::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST(process, captures_stdout_stderr_and_the_exit_code) {
  auto r = run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status.code, 3);
  EXPECT_FALSE(r.status.success());
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(process, feeds_stdin_and_then_eof) {
  auto r = run({"cat"}, "line one\nline two\n");
  EXPECT_TRUE(r.status.success()) << r.status.describe();
  EXPECT_EQ(r.out, "line one\nline two\n");
}

TEST(process, drains_output_larger_than_a_pipe_buffer) {
  // 1 MiB: a child writing this much blocks forever unless we read as it writes.
  auto r = run({"head", "-c", "1048576", "/dev/zero"}, {}, 10s);
  EXPECT_TRUE(r.status.success()) << r.status.describe();
  EXPECT_EQ(r.out.size(), 1048576u);
}

TEST(process, kills_a_child_that_outlives_its_deadline) {
  const auto start = std::chrono::steady_clock::now();
  auto r = run({"sleep", "30"}, {}, 200ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.status.signal, SIGTERM) << r.status.describe();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(process, escalates_to_sigkill_when_sigterm_is_ignored) {
  // An ignored signal stays ignored across exec, so `sleep` ignores SIGTERM.
  process p({"sh", "-c", "trap '' TERM; echo ready; exec sleep 30"});
  ASSERT_TRUE(p.wait_for_output("ready", 5s));
  auto status = p.wait_or_kill(0ms, 200ms);
  EXPECT_EQ(status.signal, SIGKILL) << status.describe();
}

TEST(process, waits_for_output_as_it_is_printed) {
  process p({"sh", "-c", "echo starting; sleep 0.2; echo READY >&2; exec sleep 30"});
  EXPECT_TRUE(p.wait_for_output("READY", 5s, /*from_stderr=*/true));
  EXPECT_TRUE(p.running());
  EXPECT_EQ(p.out(), "starting\n");
  EXPECT_FALSE(p.wait_for_output("never printed", 100ms));
  p.kill();
  auto status = p.wait_for(5s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->signal, SIGKILL);
}

TEST(process, writing_to_a_child_that_exited_fails_without_sigpipe) {
  process p({"true"}, {.pipe_stdin = true});
  ASSERT_TRUE(p.wait_for(5s));
  EXPECT_FALSE(p.write_stdin("nobody reads this\n"));  // and the test binary is still alive
}

TEST(process, reports_a_missing_program) {
  EXPECT_FALSE(program_exists("trellis-no-such-program"));
  EXPECT_TRUE(program_exists("sh"));
  EXPECT_THAT(find_program("sh").value_or(""), ::testing::EndsWith("/sh"));
  try {
    process p({"trellis-no-such-program"});
    FAIL() << "starting a missing program must throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
    EXPECT_THAT(e.what(), HasSubstr("trellis-no-such-program"));
  }
}

// The generated PKI is checked with `openssl verify`, independently of trellis.
run_result verify(std::vector<std::string> args) {
  args.insert(args.begin(), {"openssl", "verify"});
  return run(args, {}, 10s);
}

TEST(certs, server_certificate_is_valid_for_localhost_and_127_0_0_1) {
  REQUIRE_OPENSSL();
  const auto& pki = test_pki();
  auto by_name = verify({"-CAfile", pki.ca_file, "-purpose", "sslserver", "-verify_hostname",
                         "localhost", pki.server.cert_file});
  EXPECT_TRUE(by_name.status.success()) << by_name.out << by_name.err;
  auto by_ip = verify({"-CAfile", pki.ca_file, "-verify_ip", "127.0.0.1", pki.server.cert_file});
  EXPECT_TRUE(by_ip.status.success()) << by_ip.out << by_ip.err;
}

TEST(certs, client_certificate_is_valid_for_client_authentication) {
  REQUIRE_OPENSSL();
  const auto& pki = test_pki();
  auto r = verify({"-CAfile", pki.ca_file, "-purpose", "sslclient", pki.client.cert_file});
  EXPECT_TRUE(r.status.success()) << r.out << r.err;
}

TEST(certs, expired_and_untrusted_certificates_fail_verification) {
  REQUIRE_OPENSSL();
  const auto& pki = test_pki();
  auto expired = verify({"-CAfile", pki.ca_file, pki.expired_server.cert_file});
  EXPECT_FALSE(expired.status.success());
  EXPECT_THAT(expired.out + expired.err, HasSubstr("certificate has expired"));

  auto untrusted = verify({"-CAfile", pki.ca_file, pki.untrusted_server.cert_file});
  EXPECT_FALSE(untrusted.status.success());
  EXPECT_THAT(untrusted.out + untrusted.err, HasSubstr("unable to get local issuer certificate"));
  // ...and it is a proper certificate: its own CA vouches for it.
  auto own_ca = verify({"-CAfile", pki.other_ca_file, pki.untrusted_server.cert_file});
  EXPECT_TRUE(own_ca.status.success()) << own_ca.out << own_ca.err;
}

}  // namespace
}  // namespace trellis::test
