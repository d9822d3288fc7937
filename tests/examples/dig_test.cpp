// Tests of trellis-dig as a real process against trellis-dns, beside
// Debian's dig on the same server: both must print the same answer data for
// every record type (so the codec, the presentation format and the tool
// agree with an independent implementation), and the exit status and
// errors must follow dig's conventions.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "support/process.hpp"

namespace trellis {
namespace {

using namespace std::chrono_literals;

const std::string dig_bin = std::string(TRELLIS_BIN_DIR) + "/trellis-dig";
const std::string dns_bin = std::string(TRELLIS_BIN_DIR) + "/trellis-dns";
const std::string zone = std::string(TRELLIS_SOURCE_DIR) + "/examples/dns/example.zone";

class DigTool : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(dig_bin.c_str(), X_OK) != 0 || ::access(dns_bin.c_str(), X_OK) != 0)
      GTEST_SKIP() << "trellis-dig or trellis-dns is not built";
    server_ = std::make_unique<test::process>(
        std::vector<std::string>{dns_bin, "--zone", zone, "--port", "0", "--workers", "1"});
    ASSERT_TRUE(server_->wait_for_output("listening", 10s, true)) << server_->err();
    const auto port = test::logged_port(server_->err());
    ASSERT_TRUE(port) << server_->err();
    port_ = std::to_string(*port);
  }

  test::run_result trellis_dig(std::vector<std::string> args) {
    args.insert(args.begin(), {dig_bin, "@127.0.0.1", "-p", port_});
    return test::run(args, {}, 20s);
  }

  std::unique_ptr<test::process> server_;
  std::string port_;
};

TEST_F(DigTool, ShortAnswersMatchDigForEveryType) {
  if (!test::program_exists("dig")) GTEST_SKIP() << "needs dig (Debian package bind9-dnsutils)";
  const std::pair<const char*, const char*> cases[] = {
      {"www.example.test", "A"},
      {"www.example.test", "AAAA"},
      {"example.test", "NS"},
      {"example.test", "SOA"},
      {"example.test", "MX"},
      {"txt.example.test", "TXT"},
      {"_http._tcp.example.test", "SRV"},
      {"ptr.example.test", "PTR"},
      {"example.test", "CAA"},
      {"alias.example.test", "A"},
      {"x.apps.example.test", "A"},
  };
  for (const auto& [qname, type] : cases) {
    const auto ours = trellis_dig({qname, type, "+short"});
    ASSERT_TRUE(ours.status.success()) << qname << " " << type << ": " << ours.err;
    const auto theirs =
        test::run({"dig", "@127.0.0.1", "-p", port_, qname, type, "+short"}, {}, 20s);
    ASSERT_TRUE(theirs.status.success()) << theirs.err;
    EXPECT_FALSE(ours.out.empty()) << qname << " " << type;
    EXPECT_EQ(ours.out, theirs.out) << qname << " " << type;
  }
}

TEST_F(DigTool, FullOutputHasDigsSections) {
  const auto r = trellis_dig({"nope.example.test"});
  ASSERT_TRUE(r.status.success()) << r.err;  // NXDOMAIN is an answer
  EXPECT_NE(r.out.find("status: NXDOMAIN"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(";; AUTHORITY SECTION:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("IN\tSOA\tns1.example.test."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(UDP)"), std::string::npos) << r.out;
  const auto tcp = trellis_dig({"www.example.test", "+tcp"});
  EXPECT_NE(tcp.out.find("(TCP)"), std::string::npos) << tcp.out;
}

TEST_F(DigTool, NoServerExitsNineAndUsageErrorsExitOne) {
  // Nothing listens on port 1 of 127.0.0.1: the query is refused at once.
  const auto dead =
      test::run({dig_bin, "@127.0.0.1", "-p", "1", "www.example.test", "+timeout=500"}, {}, 20s);
  EXPECT_EQ(dead.status.code, 9) << dead.out << dead.err;
  EXPECT_NE(dead.out.find("no answer from 127.0.0.1#1"), std::string::npos) << dead.out;
  const auto bad_type = trellis_dig({"www.example.test", "BOGUS"});
  EXPECT_EQ(bad_type.status.code, 1);
  EXPECT_NE(bad_type.err.find("unknown type BOGUS"), std::string::npos) << bad_type.err;
  const auto bad_name = trellis_dig({"a..b"});
  EXPECT_EQ(bad_name.status.code, 1);
  EXPECT_NE(bad_name.err.find("is not a domain name"), std::string::npos) << bad_name.err;
}

}  // namespace
}  // namespace trellis
