#pragma once
// Documentation generated from the CLI11 definition itself: the ferry(1) man page and the bash
// completion script, so neither can drift from the options the binary accepts.
#include "common.hpp"

#include <string>

namespace ferry::cli {

/// Registers the hidden `--help-man` flag (prints ferry(1) and exits 0) and the `completion`
/// subcommand (`ferry completion bash`). Call after every other subcommand is registered: both
/// walk `app` when they run, not when they are registered.
void register_docs(CLI::App& app, Action& action);

/// The ferry(1) man page (roff, man macros) describing `app`, its options and every visible
/// subcommand. Hidden options and subcommands (empty group) are left out, as in --help.
std::string man_page(const CLI::App& app);

/// A bash completion script for `app`: `complete -F _ferry ferry`.
std::string bash_completion(const CLI::App& app);

} // namespace ferry::cli
