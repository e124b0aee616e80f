// verify --report: the JSON report as a self-contained HTML page for people.
#include "report_html.hpp"

#include <ferry/error.hpp>
#include <ferry/util/file.hpp>
#include <ferry/util/text.hpp>
#include <ferry/util/utf8.hpp>

#include <string>

namespace fs = std::filesystem;

namespace ferry::cli {

namespace {

using json = nlohmann::json;

constexpr const char* replacement = "\xEF\xBF\xBD";

// A report field as text: strings as they are, null as "none", the rest as JSON.
std::string text(const json& j)
{
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return "none";
  if (j.is_boolean()) return j.get<bool>() ? "yes" : "no";
  return j.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

const json& field(const json& j, const char* key)
{
  static const json null;
  if (!j.is_object()) return null;
  auto it = j.find(key);
  return it == j.end() ? null : *it;
}

std::string esc(const json& j) { return html_escape(text(j)); }

bool truthy(const json& j) { return j.is_boolean() && j.get<bool>(); }

const json& array(const json& j)
{
  static const json empty = json::array();
  return j.is_array() ? j : empty;
}

// A digest or path: monospace, allowed to wrap anywhere.
std::string code(const json& j) { return j.is_null() ? "<span class=\"none\">none</span>" : "<code>" + esc(j) + "</code>"; }

std::string verdict(bool ok, const char* yes = "verified", const char* no = "FAILED")
{
  return std::string("<span class=\"") + (ok ? "ok" : "bad") + "\">" + (ok ? "✓ " : "✗ ") + (ok ? yes : no) +
         "</span>";
}

void row(std::string& out, const char* name, const std::string& value_html)
{
  out += "<tr><th scope=\"row\">";
  out += name;
  out += "</th><td>";
  out += value_html;
  out += "</td></tr>\n";
}

const char* css = R"css(
:root { --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9; --warn: #9a6700; --warn-bg: #fff8c5;
  --skip: #57606a; --skip-bg: #f6f8fa; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328;
  margin: 0 auto; padding: 24px; max-width: 1100px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 6px; }
code { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
thead th { background: var(--skip-bg); }
table.checks td:not(:last-child), table.checks th:not(:last-child), table.crls td:nth-child(n+3),
table.crls th:nth-child(n+3) { white-space: nowrap; overflow-wrap: normal; width: 1%; }
tbody th[scope=row] { width: 190px; font-weight: 600; background: var(--skip-bg); }
.verdict { display: inline-block; font-size: 34px; font-weight: 800; letter-spacing: 0.04em; padding: 6px 22px;
  border-radius: 8px; border: 3px solid; margin: 10px 0 14px; }
.verdict.ok { color: var(--ok); background: var(--ok-bg); }
.verdict.bad { color: var(--bad); background: var(--bad-bg); }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.none { color: var(--skip); font-style: italic; }
section.artifact, section.signature { border-left: 6px solid var(--line); padding-left: 12px; margin: 12px 0; }
section.artifact.ok, section.signature.ok { border-left-color: var(--ok); font-weight: normal; color: inherit; }
section.artifact.bad, section.signature.bad { border-left-color: var(--bad); font-weight: normal; color: inherit; }
tr.pass td.result { color: var(--ok); background: var(--ok-bg); font-weight: 700; }
tr.fail td.result { color: var(--bad); background: var(--bad-bg); font-weight: 700; }
tr.log td.result { color: var(--warn); background: var(--warn-bg); font-weight: 700; }
tr.skipped td.result { color: var(--skip); background: var(--skip-bg); }
tr.stale td.fresh { color: var(--bad); background: var(--bad-bg); font-weight: 700; }
tr.fresh td.fresh { color: var(--ok); font-weight: 700; }
footer { margin-top: 32px; color: var(--skip); font-size: 12px; }
@media print {
  body { font-size: 10pt; padding: 0; max-width: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; }
  table, section.signature { break-inside: avoid; }
  .verdict { font-size: 24pt; }
}
)css";

void render_trust(std::string& out, const json& trust)
{
  out += "<h2 id=\"trust\">Trust material</h2>\n";
  if (!trust.is_object()) {
    out += "<p class=\"none\">None: integrity only (digests and graph; no signature verified).</p>\n";
    return;
  }
  out += "<table class=\"fields\"><tbody>\n";
  row(out, "source", esc(field(trust, "source")));
  row(out, "pin", code(field(trust, "pin")));
  row(out, "trust policy", code(field(trust, "trustPolicy")));
  row(out, "trust policy digest", code(field(trust, "trustPolicyDigest")));
  row(out, "trust store", code(field(trust, "trustStore")));
  std::string crls;
  for (const auto& c : array(field(trust, "crls"))) crls += (crls.empty() ? "" : "<br>") + code(c);
  row(out, "CRL files", crls.empty() ? "<span class=\"none\">none</span>" : crls);
  row(out, "scope", code(field(trust, "scope")));
  out += "</tbody></table>\n";
  // --trust-pin: the carried files used, as titled in the bundle's trust artifact.
  const json& carried = array(field(trust, "carried"));
  if (carried.empty()) return;
  out += "<table class=\"carried\"><thead><tr><th>carried file</th><th>media type</th><th>digest</th></tr></thead><tbody>\n";
  for (const auto& f : carried)
    out += "<tr><td>" + code(field(f, "title")) + "</td><td>" + code(field(f, "mediaType")) + "</td><td>" +
           code(field(f, "digest")) + "</td></tr>\n";
  out += "</tbody></table>\n";
}

void render_integrity(std::string& out, const json& integrity)
{
  bool ok = truthy(field(integrity, "ok"));
  out += "<h2 id=\"integrity\">Integrity</h2>\n<table class=\"fields\"><tbody>\n";
  row(out, "result", verdict(ok, "ok"));
  row(out, "blobs", esc(field(integrity, "blobs")));
  const json& bytes = field(integrity, "bytes");
  row(out, "bytes",
      esc(bytes) + (bytes.is_number_unsigned() ? " (" + html_escape(human_bytes(bytes.get<std::uint64_t>())) + ")" : ""));
  out += "</tbody></table>\n";
  const json& problems = array(field(integrity, "problems"));
  if (problems.empty()) {
    out += "<p class=\"none\">No problem.</p>\n";
    return;
  }
  out += "<table class=\"problems\"><thead><tr><th>problem</th><th>digest</th></tr></thead><tbody>\n";
  for (const auto& p : problems) {
    const json& d = field(p, "digest");
    out += "<tr class=\"fail\"><td class=\"result\">" + esc(field(p, "message")) + "</td><td>" +
           (d.is_null() ? std::string() : code(d)) + "</td></tr>\n";
  }
  out += "</tbody></table>\n";
}

void render_signature(std::string& out, const json& s)
{
  bool ok = truthy(field(s, "verified"));
  out += std::string("<section class=\"signature ") + (ok ? "ok" : "bad") + "\">\n<h3>Signature " + code(field(s, "digest")) +
         "</h3>\n<table class=\"fields\"><tbody>\n";
  row(out, "envelope", code(field(s, "envelope")));
  row(out, "verdict", verdict(ok));
  const json& reason = field(s, "reason");
  if (!text(reason).empty() && !reason.is_null()) row(out, "reason", esc(reason));
  out += "</tbody></table>\n<table class=\"checks\"><thead><tr><th>check</th><th>action</th><th>result</th>"
         "<th>reason</th></tr></thead><tbody>\n";
  for (const auto& c : array(field(s, "checks"))) {
    std::string result = text(field(c, "result"));
    std::string action = text(field(c, "action"));
    // A failed check that is only logged does not fail the signature: amber, not red.
    std::string cls = result == "fail" && action == "log" ? "log" : result;
    out += "<tr class=\"" + html_escape(cls) + "\"><td>" + esc(field(c, "name")) + "</td><td>" + html_escape(action) +
           "</td><td class=\"result\">" + html_escape(result) + "</td><td>" + esc(field(c, "reason")) + "</td></tr>\n";
  }
  out += "</tbody></table>\n</section>\n";
}

void render_referrer(std::string& out, const json& x)
{
  bool ok = truthy(field(x, "verified"));
  bool is_referrer = !field(x, "subject").is_null();
  out += std::string("<section class=\"signature ") + (ok ? "ok" : "bad") + "\">\n<h3>" + (ok ? "✓ " : "✗ ") +
         (is_referrer ? "Referrer " : "Manifest ") + code(field(x, "digest")) + "</h3>\n<table class=\"fields\"><tbody>\n";
  row(out, "artifact type", text(field(x, "artifactType")).empty() ? "<span class=\"none\">none</span>" : code(field(x, "artifactType")));
  row(out, "media type", code(field(x, "mediaType")));
  if (is_referrer) row(out, "subject", code(field(x, "subject")));
  row(out, "verdict", verdict(ok));
  if (!text(field(x, "reason")).empty()) row(out, "reason", esc(field(x, "reason")));
  out += "</tbody></table>\n";
  const json& sigs = array(field(x, "signatures"));
  if (sigs.empty()) out += "<p class=\"none\">No signature checked.</p>\n";
  for (const auto& s : sigs) render_signature(out, s);
  out += "</section>\n";
}

void render_artifact(std::string& out, const json& a, std::size_t n)
{
  bool ok = truthy(field(a, "verified"));
  // --integrity-only lists every root with the integrity verdict; no signature was checked.
  bool checked = !field(a, "signaturesChecked").is_boolean() || truthy(field(a, "signaturesChecked"));
  out += "<section class=\"artifact " + std::string(ok ? "ok" : "bad") + "\" id=\"artifact-" + std::to_string(n) +
         "\">\n<h2>" + (ok ? "✓ " : "✗ ") + esc(field(a, "reference")) + "</h2>\n<table class=\"fields\"><tbody>\n";
  row(out, "reference", esc(field(a, "reference")));
  row(out, "digest", code(field(a, "digest")));
  row(out, "media type", code(field(a, "mediaType")));
  row(out, "scope", code(field(a, "scope")));
  row(out, "policy", field(a, "policy").is_null() ? "<span class=\"none\">none</span>" : esc(field(a, "policy")));
  row(out, "level", field(a, "level").is_null() ? "<span class=\"none\">none</span>" : esc(field(a, "level")));
  row(out, "verdict", checked ? verdict(ok) : verdict(ok, "verified: integrity only, signatures not checked", "FAILED: integrity"));
  if (!text(field(a, "reason")).empty()) row(out, "reason", esc(field(a, "reason")));
  out += "</tbody></table>\n";
  const json& sigs = array(field(a, "signatures"));
  if (!checked) out += "<p class=\"none\">Signatures not checked (integrity only).</p>\n";
  else if (sigs.empty()) out += "<p class=\"none\">No signature.</p>\n";
  for (const auto& s : sigs) render_signature(out, s);
  for (const auto& x : array(field(a, "referrers"))) render_referrer(out, x);
  out += "</section>\n";
}

void render_crls(std::string& out, const json& crls)
{
  out += "<h2 id=\"crls\">CRLs</h2>\n";
  if (array(crls).empty()) {
    out += "<p class=\"none\">No CRL used.</p>\n";
    return;
  }
  out += "<table class=\"crls\"><thead><tr><th>source</th><th>issuer</th><th>thisUpdate</th><th>nextUpdate</th>"
         "<th>fresh</th></tr></thead><tbody>\n";
  for (const auto& c : array(crls)) {
    bool fresh = truthy(field(c, "fresh"));
    out += std::string("<tr class=\"") + (fresh ? "fresh" : "stale") + "\"><td>" + code(field(c, "source")) + "</td><td>" +
           esc(field(c, "issuer")) + "</td><td>" + esc(field(c, "thisUpdate")) + "</td><td>" +
           esc(field(c, "nextUpdate")) + "</td><td class=\"fresh\">" + (fresh ? "fresh" : "STALE") + "</td></tr>\n";
  }
  out += "</tbody></table>\n";
}

} // namespace

std::string html_escape(std::string_view s)
{
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    case '\'': out += "&#39;"; break;
    default:
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
        out += replacement;
      } else if (std::size_t n = utf8_sequence_length(s, i); n == 0) {
        out += replacement;
      } else if (n > 1 && unsafe_for_terminal(s.substr(i, n))) {
        out += replacement;  // C1, bidi and invisible format characters: nothing may reorder or hide text
        i += n;
        continue;
      } else {
        out.append(s.substr(i, n));
        i += n;
        continue;
      }
    }
    ++i;
  }
  return out;
}

std::string verify_report_html(const json& r)
{
  bool ok = truthy(field(r, "verified"));
  const char* word = ok ? "VERIFIED" : "FAILED";
  std::string out;
  out.reserve(16384);
  out += "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<meta name=\"generator\" content=\"ferry " + esc(field(r, "ferryVersion")) + "\">\n<title>";
  out += std::string(word) + ": ferry verify " + esc(field(r, "bundle")) + "</title>\n<style>" + css + "</style>\n</head>\n<body>\n";

  out += "<header>\n<h1>ferry verify report</h1>\n";
  out += std::string("<div class=\"verdict ") + (ok ? "ok" : "bad") + "\" id=\"verdict\">" + (ok ? "✓ " : "✗ ") + word + "</div>\n";
  out += "<table class=\"fields\"><tbody>\n";
  row(out, "bundle", code(field(r, "bundle")));
  row(out, "format", esc(field(r, "format")));
  row(out, "bundle digest", code(field(r, "bundleDigest")) + " <span class=\"none\">(of index.json)</span>");
  row(out, "verification time", esc(field(r, "verificationTime")));
  row(out, "ferry version", esc(field(r, "ferryVersion")));
  if (field(r, "ferry").is_object()) {
    const json& f = field(r, "ferry");
    std::string libs;
    if (field(f, "libraries").is_object())
      for (const auto& [name, version] : field(f, "libraries").items())
        libs += (libs.empty() ? "" : ", ") + esc(name) + " " + esc(version.is_string() ? version.get<std::string>() : "?");
    row(out, "ferry build", "commit " + code(field(f, "commit")) + (libs.empty() ? "" : "; " + libs));
  }
  std::size_t total = array(field(r, "artifacts")).size(), passed = 0;
  for (const auto& a : array(field(r, "artifacts"))) passed += truthy(field(a, "verified")) ? 1 : 0;
  if (field(r, "trust").is_object()) {
    row(out, "artifacts", std::to_string(passed) + " of " + std::to_string(total) + " verified");
    std::size_t referrers = 0, referrers_ok = 0;
    for (const auto& a : array(field(r, "artifacts")))
      for (const auto& x : array(field(a, "referrers"))) {
        ++referrers;
        referrers_ok += truthy(field(x, "verified")) ? 1 : 0;
      }
    if (referrers > 0) row(out, "referrers", std::to_string(referrers_ok) + " of " + std::to_string(referrers) + " verified");
  } else {
    row(out, "artifacts", std::to_string(total) + " listed (integrity only: signatures not checked)");
  }
  out += "</tbody></table>\n";
  render_trust(out, field(r, "trust"));
  out += "</header>\n<main>\n";
  render_integrity(out, field(r, "integrity"));
  if (field(r, "trust").is_object() || total > 0) {
    out += "<h2 id=\"artifacts\">Artifacts</h2>\n";
    if (total == 0) out += "<p class=\"none\">No artifact.</p>\n";
    std::size_t n = 0;
    for (const auto& a : array(field(r, "artifacts"))) render_artifact(out, a, ++n);
    render_crls(out, field(r, "crls"));
  }
  out += "</main>\n<footer>Rendered by ferry " + esc(field(r, "ferryVersion")) +
         " from the report <code>ferry verify --json</code> prints (schemaVersion " + esc(field(r, "schemaVersion")) +
         ").</footer>\n</body>\n</html>\n";
  return out;
}

void check_report_path(const fs::path& path)
{
  fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::exists(dir, ec))
    throw Error(Errc::io, path.string() + ": cannot write the report: directory " + dir.string() + " does not exist");
  if (!fs::is_directory(dir, ec))
    throw Error(Errc::io, path.string() + ": cannot write the report: " + dir.string() + " is not a directory");
  if (fs::is_directory(path, ec)) throw Error(Errc::io, path.string() + ": cannot write the report: is a directory");
}

void write_report(const fs::path& path, const std::string& html)
{
  check_report_path(path);
  OutputFile out(path.string() + ".partial");
  out.write(html.data(), html.size());
  out.commit(path);
}

} // namespace ferry::cli
