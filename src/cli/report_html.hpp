#pragma once
// verify --report: the verification report as one self-contained HTML page, rendered from the
// very JSON document `verify --json` prints, so the two cannot disagree.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <string_view>

namespace ferry::cli {

/// `s` with & < > " ' as character references; C0 controls other than tab, newline and
/// carriage return, DEL, the other code points `unsafe_for_terminal` names (C1, bidi
/// controls such as U+202E, invisible format characters) and bytes that are not UTF-8
/// become U+FFFD.
std::string html_escape(std::string_view s);

/// verify's report (schemaVersion 1, with `trust`) as an HTML5 page: inline CSS only, no
/// script, nothing to fetch; every string from the report escaped.
std::string verify_report_html(const nlohmann::json& report);

/// Throws Errc::io naming `path` when the report cannot be written there: its directory
/// does not exist, or `path` is a directory.
void check_report_path(const std::filesystem::path& path);

/// Writes `html` to `path` atomically (`path` + ".partial", fsync, rename). Throws Errc::io
/// naming `path` (check_report_path's, or naming the temporary file).
void write_report(const std::filesystem::path& path, const std::string& html);

} // namespace ferry::cli
