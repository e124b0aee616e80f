#include <ferry/util/json.hpp>

#include <ferry/error.hpp>

#include <algorithm>

#include <nlohmann/json.hpp>

namespace ferry {

std::size_t json_depth(std::string_view text)
{
  std::size_t depth = 0;
  std::size_t max_depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

void only_keys(const nlohmann::json& j, std::initializer_list<const char*> keys, const std::string& where)
{
  if (!j.is_object()) throw Error(Errc::invalid_manifest, where + ": not a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; }))
      throw Error(Errc::invalid_manifest, where + ": unknown key \"" + key.substr(0, 80) + "\"");
  }
}

} // namespace ferry
