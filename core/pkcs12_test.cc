#include "core/pkcs12.h"

#include <string>

#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::Cert;
using testing::ReadTestFile;

TEST(Pkcs12Test, ReadsTheCertificateAndTheCaCertificates) {
  for (const auto& [file, passphrase] : {std::pair<const char*, const char*>{"server-rsa.pfx", "secret"},
                                         {"server-rsa-nopass.pfx", ""}}) {
    SCOPED_TRACE(file);
    absl::StatusOr<Pkcs12Contents> pfx = ReadPkcs12(ReadTestFile(file), passphrase);
    ASSERT_TRUE(pfx.ok()) << pfx.status();
    absl::StatusOr<CertificateInfo> leaf = CertificateInfo::FromPem(Cert("server-rsa"));
    ASSERT_TRUE(leaf.ok());
    EXPECT_EQ(pfx->certificate.fingerprint256, leaf->fingerprint256);
    ASSERT_EQ(pfx->ca.size(), 1u);
    EXPECT_EQ(pfx->ca[0].subject.Get("CN"), "Test Intermediate CA 1");
  }
}

// The same codes and messages as SecureContext::Create gives for `pfx`.
TEST(Pkcs12Test, NamesWhatIsWrong) {
  absl::StatusOr<Pkcs12Contents> pfx = ReadPkcs12("this is not a pfx", "");
  ASSERT_FALSE(pfx.ok());
  EXPECT_EQ(pfx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(pfx.status()), kErrInvalidArgValue);
  EXPECT_EQ(pfx.status().message(), "pfx: not enough data (not a PKCS#12 (PFX) file)");
  for (const char* wrong : {"wrong", ""}) {
    pfx = ReadPkcs12(ReadTestFile("server-rsa.pfx"), wrong);
    ASSERT_FALSE(pfx.ok());
    EXPECT_EQ(NodeCode(pfx.status()), kErrInvalidArgValue);
    EXPECT_EQ(pfx.status().message(), "pfx: mac verify failure (wrong passphrase?)");
  }
}

}  // namespace
}  // namespace tlsengine
