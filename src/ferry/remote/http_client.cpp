#include <ferry/remote/http_client.hpp>

#include <strings.h>

namespace ferry::remote {

void HttpHeaders::set(const std::string& name, std::string value)
{
  std::erase_if(items, [&](const auto& kv) { return strcasecmp(kv.first.c_str(), name.c_str()) == 0; });
  items.emplace_back(name, std::move(value));
}

std::optional<std::string> HttpHeaders::get(const std::string& name) const
{
  for (const auto& [k, v] : items)
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  return std::nullopt;
}

std::vector<std::string> HttpHeaders::get_all(const std::string& name) const
{
  std::vector<std::string> out;
  for (const auto& [k, v] : items)
    if (strcasecmp(k.c_str(), name.c_str()) == 0) out.push_back(v);
  return out;
}

std::string HttpResponse::read_body(std::size_t limit)
{
  if (!body) return {};
  return read_all(*body, limit, "response body from " + effective_url);
}

void discard_body(HttpResponse& response)
{
  if (!response.body) return;
  try {
    char buf[16384];
    std::size_t total = 0;
    while (total < (std::size_t{64} << 10)) {
      std::size_t n = response.body->read(buf, sizeof buf);
      if (n == 0) break;
      total += n;
    }
  } catch (const std::exception&) {
  }
  response.body.reset();
}

std::function<std::unique_ptr<Reader>()> body_from_string(std::string data)
{
  auto shared = std::make_shared<const std::string>(std::move(data));
  return [shared] { return std::make_unique<StringReader>(*shared); };
}

} // namespace ferry::remote
