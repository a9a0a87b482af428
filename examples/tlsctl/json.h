// A small JSON writer for tlsctl's one-object-per-line output.
//
//   JsonObject o;
//   o.Add("event", "secureConnect").Add("id", 1).Add("authorized", true);
//   std::cout << o.Line();   // {"event":"secureConnect","id":1,"authorized":true}\n
#ifndef TLSENGINE_EXAMPLES_TLSCTL_JSON_H_
#define TLSENGINE_EXAMPLES_TLSCTL_JSON_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace tlsengine {
namespace tlsctl {

// `text` as a JSON string literal, quotes included. Control characters,
// quote and backslash are escaped; bytes that are not valid UTF-8 become
// U+FFFD so the output always parses.
std::string JsonString(absl::string_view text);

// True when `bytes` is valid UTF-8 (no overlongs, no surrogates).
bool IsValidUtf8(absl::string_view bytes);

// Builds one object; keys are written in the order added.
class JsonObject {
 public:
  JsonObject& Add(absl::string_view key, absl::string_view value);
  JsonObject& Add(absl::string_view key, const char* value) { return Add(key, absl::string_view(value)); }
  JsonObject& Add(absl::string_view key, const std::string& value) { return Add(key, absl::string_view(value)); }
  JsonObject& Add(absl::string_view key, int64_t value);
  JsonObject& Add(absl::string_view key, int value) { return Add(key, static_cast<int64_t>(value)); }
  JsonObject& Add(absl::string_view key, uint64_t value);
  JsonObject& Add(absl::string_view key, bool value);
  JsonObject& Add(absl::string_view key, const JsonObject& value);
  JsonObject& AddNull(absl::string_view key);
  // A string, or null when `value` is empty (Node's false/null for "none").
  JsonObject& AddOrNull(absl::string_view key, absl::string_view value);
  // `json` must already be valid JSON (an array, say).
  JsonObject& AddRaw(absl::string_view key, absl::string_view json);

  std::string Str() const { return body_ + "}"; }
  std::string Line() const { return Str() + "\n"; }

 private:
  void Key(absl::string_view key);
  std::string body_ = "{";
};

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_JSON_H_
