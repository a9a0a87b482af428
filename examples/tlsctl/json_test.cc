#include "examples/tlsctl/json.h"

#include "gtest/gtest.h"

namespace tlsengine {
namespace tlsctl {
namespace {

TEST(JsonStringTest, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(JsonString(std::string("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(JsonString("\b\f"), "\"\\b\\f\"");
}

TEST(JsonStringTest, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(JsonString("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92\"");
  EXPECT_EQ(JsonString("\xff"), "\"\\ufffd\"");
  EXPECT_EQ(JsonString("\xc3"), "\"\\ufffd\"");              // truncated sequence
  EXPECT_EQ(JsonString("\xc0\xaf"), "\"\\ufffd\\ufffd\"");    // overlong '/'
  EXPECT_EQ(JsonString("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // surrogate
}

TEST(IsValidUtf8Test, Classifies) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("hello\n"));
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));   // U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

TEST(JsonObjectTest, WritesFieldsInOrderOnOneLine) {
  JsonObject inner;
  inner.Add("name", "TLS_AES_128_GCM_SHA256").Add("version", "TLSv1.3");
  JsonObject o;
  o.Add("event", "secureConnect")
      .Add("id", 7)
      .Add("big", uint64_t{18446744073709551615u})
      .Add("authorized", false)
      .AddOrNull("servername", "")
      .AddOrNull("alpnProtocol", "h2")
      .Add("cipher", inner)
      .AddRaw("list", "[1,2]")
      .Add("text", "x\ny");
  EXPECT_EQ(o.Line(),
            "{\"event\":\"secureConnect\",\"id\":7,\"big\":18446744073709551615,\"authorized\":false,"
            "\"servername\":null,\"alpnProtocol\":\"h2\",\"cipher\":{\"name\":\"TLS_AES_128_GCM_SHA256\","
            "\"version\":\"TLSv1.3\"},\"list\":[1,2],\"text\":\"x\\ny\"}\n");
  EXPECT_EQ(JsonObject().Str(), "{}");
}

}  // namespace
}  // namespace tlsctl
}  // namespace tlsengine
