#include "core/ocsp.h"

#include <string>

#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::ReadTestFile;

TEST(OcspResponseTest, SummarizesAGoodResponse) {
  absl::StatusOr<OcspResponseInfo> info = ParseOcspResponse(ReadTestFile("server-rsa-ocsp.der"));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->cert_status, "good");
  EXPECT_EQ(info->this_update, "Nov 29 00:53:51 2026 GMT");
  EXPECT_EQ(info->next_update, "Nov  5 00:53:51 2126 GMT");
}

void ExpectBad(const std::string& der, const std::string& message) {
  absl::StatusOr<OcspResponseInfo> info = ParseOcspResponse(der);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(info.status()), kErrInvalidArgValue);
  EXPECT_EQ(info.status().message(), message);
}

TEST(OcspResponseTest, RefusesWhatIsNotExactlyOneDerResponse) {
  ExpectBad("", "not a DER OCSPResponse");
  ExpectBad("not DER", "not a DER OCSPResponse");
  ExpectBad(ReadTestFile("server-rsa-ocsp.der") + "x", "not a DER OCSPResponse");
  std::string der = ReadTestFile("server-rsa-ocsp.der");
  ExpectBad(der.substr(0, der.size() - 1), "not a DER OCSPResponse");
}

TEST(OcspResponseTest, RefusesAnUnsuccessfulStatus) {
  // OCSPResponse { responseStatus tryLater(3) }, without responseBytes.
  ExpectBad(std::string("\x30\x03\x0a\x01\x03", 5), "OCSP response status is trylater");
}

TEST(OcspResponseTest, RefusesASuccessfulStatusWithoutABasicResponse) {
  // OCSPResponse { responseStatus successful(0) }, without responseBytes.
  ExpectBad(std::string("\x30\x03\x0a\x01\x00", 5), "OCSP response has no basic response");
}

}  // namespace
}  // namespace tlsengine
