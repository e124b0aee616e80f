// ferry: carries signed OCI artifacts across an air gap. The thin CLI over libferry.
#include "common.hpp"
#include "docgen.hpp"
#include "progress.hpp"

#include <unistd.h>

#include <ferry/error.hpp>
#include <ferry/version.hpp>

#include <algorithm>
#include <optional>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Optimal string alignment distance (Levenshtein with adjacent transpositions): "pusj" and
// "psuh" are both one edit from "push".
std::size_t edit_distance(std::string_view a, std::string_view b)
{
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// The first word that is not an option, when it names no command: "unknown command", with
// the closest commands (as git and cargo do) when one is near enough to be a typo.
std::optional<std::string> unknown_command(const CLI::App& app, int argc, char** argv)
{
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word == "--") return std::nullopt;
    if (!word.empty() && word[0] == '-') continue;  // ferry's own options take no value
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      if (sub->check_name(std::string(word))) return std::nullopt;
      if (!sub->get_name().empty() && !sub->get_group().empty()) names.push_back(sub->get_name());
    }
    std::size_t best = std::max<std::size_t>(2, word.size() / 3) + 1;
    std::vector<std::string> near;
    for (const auto& n : names) {
      std::size_t dist = edit_distance(word, n);
      if (n.rfind(word, 0) == 0 && word.size() >= 2) dist = std::min<std::size_t>(dist, 1);  // a prefix: "ver"
      if (dist < best) {
        best = dist;
        near.clear();
      }
      if (dist == best) near.push_back(n);
    }
    std::string msg = "unknown command " + ferry::quote_name(word);
    if (!near.empty()) {
      msg += "; did you mean ";
      for (std::size_t k = 0; k < near.size(); ++k) msg += (k ? (k + 1 == near.size() ? " or " : ", ") : "") + ("'" + near[k] + "'");
      msg += "?";
    }
    return msg;
  }
  return std::nullopt;
}

} // namespace

int main(int argc, char** argv)
{
  using namespace ferry;
  CLI::App app{"ferry: carry signed OCI artifacts and their referrers across an air gap"};
  app.name("ferry");
  app.require_subcommand(1);
  app.fallthrough();
  // `ferry --version`: the version, the commit and the libraries it runs with; with --json
  // the same as one JSON document (issue 19).
  app.set_version_flag("--version", [] {
    std::string text = version_text();
    if (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  });
  if (argc == 3 && ((std::string_view(argv[1]) == "--version" && std::string_view(argv[2]) == "--json") ||
                    (std::string_view(argv[1]) == "--json" && std::string_view(argv[2]) == "--version"))) {
    std::printf("%s\n", version_json().dump(2).c_str());
    return 0;
  }
  cli::GlobalOptions global;
  app.add_flag("-q,--quiet", global.quiet, "No progress on stderr");
  cli::Action action;
  cli::register_save(app, global, action);
  cli::register_push(app, global, action);
  cli::register_inspect(app, global, action);
  cli::register_verify(app, global, action);
  cli::register_sign(app, global, action);
  cli::register_copy(app, global, action);
  cli::register_inventory(app, global, action);
  cli::register_serve(app, global, action);
  cli::register_docs(app, action);  // last: it walks every subcommand
  if (auto unknown = unknown_command(app, argc, argv)) {
    cli::err_line("ferry: error: %s (see ferry --help)", unknown->c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::Success&) {
    return 0;  // --help-man, printed
  } catch (const CLI::ParseError& e) {
    cli::err_line("ferry: error: %s (see ferry --help)", e.what());
    return 2;
  }
  global.started = std::chrono::steady_clock::now();
  if (!global.quiet && ::isatty(::fileno(stderr))) global.progress = std::make_shared<cli::TtyProgress>(stderr);
  auto clear = [&] {
    if (global.progress) global.progress->finish();  // the bars go before the error line
  };
  try {
    int rc = action ? action() : 2;
    clear();
    return rc;
  } catch (const Error& e) {
    clear();
    cli::err_line("ferry: error: %s", e.what());  // escaped whole: it names entries, references, annotations
    return exit_code_for(e.code());
  } catch (const std::exception& e) {
    clear();
    cli::err_line("ferry: error: %s", e.what());
    return 1;
  }
}
