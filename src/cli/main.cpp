// ferry: carries signed OCI artifacts across an air gap. The thin CLI over libferry.
#include "common.hpp"
#include "docgen.hpp"
#include "progress.hpp"

#include <unistd.h>

#include <ferry/error.hpp>

#include <cstdio>

int main(int argc, char** argv)
{
  using namespace ferry;
  CLI::App app{"ferry: carry signed OCI artifacts and their referrers across an air gap"};
  app.name("ferry");
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", std::string("ferry ") + FERRY_VERSION);
  cli::GlobalOptions global;
  app.add_flag("-q,--quiet", global.quiet, "No progress on stderr");
  cli::Action action;
  cli::register_save(app, global, action);
  cli::register_push(app, global, action);
  cli::register_inspect(app, global, action);
  cli::register_verify(app, global, action);
  cli::register_sign(app, global, action);
  cli::register_copy(app, global, action);
  cli::register_docs(app, action);  // last: it walks every subcommand
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
