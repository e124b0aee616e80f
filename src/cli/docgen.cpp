// ferry --help-man and ferry completion bash: documentation generated from the CLI11 model.
#include "docgen.hpp"

#include <ferry/store/layout.hpp>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace ferry::cli {

namespace {

// ---------------------------------------------------------------------------------------------
// The CLI model, as --help shows it.

bool visible(const CLI::Option* opt) { return !opt->get_group().empty(); }

std::vector<const CLI::Option*> named_options(const CLI::App& app)
{
  return app.get_options([](const CLI::Option* o) { return o->nonpositional() && visible(o); });
}

std::vector<const CLI::Option*> positionals(const CLI::App& app)
{
  return app.get_options([](const CLI::Option* o) { return !o->nonpositional() && o->get_positional() && visible(o); });
}

std::vector<const CLI::App*> subcommands(const CLI::App& app)
{
  return app.get_subcommands([](const CLI::App* a) { return !a->get_name().empty() && !a->get_group().empty(); });
}

bool takes_value(const CLI::Option* opt) { return opt->get_expected_max() != 0; }  // flags expect 0

bool repeats(const CLI::Option* opt) { return opt->get_items_expected_max() >= CLI::detail::expected_max_vector_size; }

// Every spelling of a named option: -o, --output.
std::vector<std::string> spellings(const CLI::Option* opt)
{
  std::vector<std::string> out;
  for (const auto& s : opt->get_snames()) out.push_back("-" + s);
  for (const auto& l : opt->get_lnames()) out.push_back("--" + l);
  return out;
}

// The name an option is referred to by: its first long name, else its short one, else its
// positional name.
std::string display_name(const CLI::Option* opt)
{
  if (!opt->get_lnames().empty()) return "--" + opt->get_lnames().front();
  if (!opt->get_snames().empty()) return "-" + opt->get_snames().front();
  return opt->get_name(true, false);
}

std::string join(const std::vector<std::string>& parts, std::string_view sep)
{
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// What a value is completed with. Options validated with CLI::IsMember carry their values in the
// type name ("TEXT:{jws,cose}"), CLI::ExistingFile/ExistingDirectory theirs ("TEXT:FILE"); the
// others are named here, by long or positional name.

struct ValueKind {
  enum Kind { none, file, dir, choice } kind = none;
  std::vector<std::string> words;
};

ValueKind value_kind(const CLI::Option* opt)
{
  const std::string type = opt->get_type_name();
  if (auto open = type.find('{'), close = type.rfind('}'); open != std::string::npos && close != std::string::npos && close > open) {
    ValueKind k{ValueKind::choice, {}};
    std::string inner = type.substr(open + 1, close - open - 1);
    for (std::size_t start = 0; start <= inner.size();) {
      auto comma = inner.find(',', start);
      if (comma == std::string::npos) comma = inner.size();
      if (comma > start) k.words.push_back(inner.substr(start, comma - start));
      start = comma + 1;
    }
    return k;
  }
  std::string name = opt->get_lnames().empty() ? opt->get_name(true, false) : opt->get_lnames().front();
  if (name == "format")
    return {ValueKind::choice,
            {format_name(BundleFormat::tar), format_name(BundleFormat::tar_zst), format_name(BundleFormat::tar_gz),
             format_name(BundleFormat::dir)}};
  if (name == "trust-store") return {ValueKind::dir, {}};
  for (const char* file : {"bundle", "output", "images-file", "trust-policy", "crl", "ca-file", "registry-config", "key",
                           "cert", "tsa-ca", "report"})
    if (name == file) return {ValueKind::file, {}};
  if (type.find(":DIR") != std::string::npos) return {ValueKind::dir, {}};
  if (type.find(":FILE") != std::string::npos || type.find(":PATH") != std::string::npos) return {ValueKind::file, {}};
  return {};
}

// ---------------------------------------------------------------------------------------------
// roff

// Text for a roff line: backslashes and hyphens escaped (so "--output" is two minus signs, never
// a hyphenation point), and a control character at the start of a line defused.
std::string esc(std::string_view text)
{
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\') out += "\\e";
    else if (c == '-') out += "\\-";
    else out += c;
    line_start = c == '\n';
  }
  return out;
}

std::string bold(std::string_view text) { return "\\fB" + esc(text) + "\\fR"; }
std::string italic(std::string_view text) { return "\\fI" + esc(text) + "\\fR"; }

// "Nov 23 2026" (which GCC and clang take from SOURCE_DATE_EPOCH when it is set) as 2026-11-23:
// the page is dated with the binary it describes.
std::string page_date()
{
  const char* date = __DATE__;
  const char* months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const char* found = std::strstr(months, std::string(date, 3).c_str());
  int month = found ? static_cast<int>(found - months) / 3 + 1 : 1;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", std::atoi(date + 7) % 10000, month, std::atoi(date + 4) % 100);
  return buf;
}

// "ferry save [options] -o TEXT [references...]": options that are required, then positionals.
std::string synopsis(const CLI::App& cmd, const std::string& path)
{
  std::string out = ".B " + esc(path) + "\n";
  std::vector<std::string> words;
  if (!named_options(cmd).empty()) words.push_back("[\\fIoptions\\fR]");
  for (const auto* opt : named_options(cmd))
    if (opt->get_required())
      words.push_back(bold(display_name(opt)) + (takes_value(opt) ? " " + italic(opt->get_type_name()) : ""));
  for (const auto* opt : positionals(cmd)) {
    std::string w = italic(opt->get_name(true, false)) + (repeats(opt) ? "..." : "");
    words.push_back(opt->get_required() ? w : "[" + w + "]");
  }
  if (!cmd.get_parent() && !subcommands(cmd).empty()) words.push_back("\\fIcommand\\fR [\\fIargs\\fR]");
  return out + join(words, " ") + "\n";
}

std::string option_entry(const CLI::Option* opt)
{
  std::string out = ".TP\n";
  if (opt->nonpositional()) {
    std::vector<std::string> names;
    for (const auto& s : spellings(opt)) names.push_back(bold(s));
    out += join(names, ", ");
    if (takes_value(opt)) out += " " + italic(opt->get_type_name());
  } else {
    out += italic(opt->get_name(true, false)) + (repeats(opt) ? "..." : "");
  }
  out += "\n";
  std::string description = opt->get_description();
  if (!description.empty() && description.back() != '.') description += '.';
  out += esc(description) + "\n";
  if (opt->get_required()) out += "Required.\n";
  if (!opt->get_default_str().empty()) out += "Default: " + italic(opt->get_default_str()) + ".\n";
  if (!opt->get_envname().empty()) out += "Environment: " + bold(opt->get_envname()) + ".\n";
  if (!opt->get_needs().empty()) {
    std::vector<std::string> needs;
    for (const auto* n : opt->get_needs()) needs.push_back(bold(display_name(n)));
    out += "Needs " + join(needs, ", ") + ".\n";
  }
  if (!opt->get_excludes().empty()) {
    std::vector<std::string> excludes;
    for (const auto* n : opt->get_excludes()) excludes.push_back(bold(display_name(n)));
    out += "Not with " + join(excludes, ", ") + ".\n";
  }
  return out;
}

constexpr const char* k_description = R"roff(.SH DESCRIPTION
.B ferry
copies images, multi\-arch indexes and any OCI artifact together with every referrer of them
(Notary Project signatures, SBOMs, signatures of SBOMs: the OCI 1.1 \fBsubject\fR graph) from a
registry into one OCI image layout bundle, and pushes such a bundle into another registry with
every digest, tag and referrer link intact.
It verifies a bundle offline: every blob against its digest, the graph complete, and a Notary
Project signature (JWS or COSE) on every root that passes a Notation trust policy, with
revocation checked against CRLs given or carried in the bundle.
The signatures of referrers (an SBOM's, an attestation's) are checked too, under their root's
statement, and each referrer is reported with its own verdict; an unsigned or failing one fails
verification only with \fB\-\-require\-referrer\-signatures\fR.
.PP
A \fIBUNDLE\fR's format follows its name: \fI*.tar\fR a plain tar, \fI*.tar.zst\fR or
\fI*.tzst\fR a zstd\-compressed tar, \fI*.tar.gz\fR or \fI*.tgz\fR a gzip\-compressed tar,
anything else an OCI layout directory (\fBsave\fR refuses other archive names such as
\fI*.zip\fR or \fI*.tar.xz\fR); \fB\-\-format\fR tar|tar.zst|tar.gz|dir overrides.
An archive is read as what its bytes are (a zstd or gzip stream whatever its name).
Files of other tools beside the layout (\fImanifest.json\fR of \fBctr export\fR and
\fBdocker save\fR) are ignored with a note, never pushed.
A bundle is written to \fIBUNDLE\fB.partial\fR, synced and renamed, so a failed command leaves
nothing at \fIBUNDLE\fR.
.PP
Every command takes \fB\-\-json\fR to print one JSON document on standard output.
Progress goes to standard error; \fB\-q\fR silences it.
An error is one line on standard error, \fBferry: error:\fR followed by the reference, file or
digest concerned.
)roff";

constexpr const char* k_trailer = R"roff(.SH EXIT STATUS
.TP
.B 0
Success.
.TP
.B 1
The operation failed: network, I/O, not found, malformed input.
.TP
.B 2
Usage error.
.TP
.B 3
Verification failed: integrity or signature policy (\fBverify\fR, and \fBpush\fR or \fBcopy\fR
with \fB\-\-verify\fR, which then send nothing).
.SH ENVIRONMENT
.TP
.B DOCKER_CONFIG
Directory of the docker \fIconfig.json\fR that registry credentials are read from when
\fB\-\-registry\-config\fR is not given.
.TP
.B HOME
Without \fBDOCKER_CONFIG\fR (or without a \fIconfig.json\fR there), credentials are read from
\fI$HOME/.docker/config.json\fR.
.TP
.B PATH
Searched for the docker credential helpers \fBdocker\-credential\-\fIname\fR that
\fIconfig.json\fR names in \fBcredHelpers\fR and \fBcredsStore\fR.
.TP
.B TMPDIR
Where trust material carried in a bundle is unpacked while \fB\-\-trust\-pin\fR verification runs,
and where \fBcopy \-\-verify\fR stages the graph it verifies.
.TP
.B FERRY_TEST_HOOK_BEFORE_PROOF
For tests only: a command that \fBpush\fR and \fBcopy\fR run between the transfer and the
proof, to simulate a registry that loses a referrer.
.TP
.B FERRY_TEST_HOOK_AFTER_VERIFY
For tests only: a command that \fBpush \-\-verify\fR and \fBcopy \-\-verify\fR run after the
verification passed and before the first request to the destination, to change the bundle
in between.
.SH FILES
.TP
.I $DOCKER_CONFIG/config.json\fR, \fI~/.docker/config.json
Registry credentials: \fBauths\fR (base64 \fBauth\fR, \fBusername\fR and \fBpassword\fR,
\fBidentitytoken\fR), \fBcredHelpers\fR and \fBcredsStore\fR.
Explicit \fB\-u\fR and \fB\-\-password\-stdin\fR win over this file for every registry.
.TP
.IR BUNDLE .partial ", " BUNDLE .partial.resume
A save in progress, and what it has finished so far.
A save interrupted once blobs were written keeps both; the same command run again fetches only
what is missing.
.TP
.IR trustpolicy.json ", " truststore/x509/ "{ca,signingAuthority,tsa}/" name /
Notation's trust policy and trust store, as given to \fB\-\-trust\-policy\fR and
\fB\-\-trust\-store\fR (for example from \fI~/.config/notation/\fR).
.SH EXAMPLES
On the connected side, save what must cross with all its referrers, and the trust material the
far side verifies with; \fBsave\fR prints the bundle's trust pin, which travels out of band:
.PP
.RS 4
.nf
ferry save registry.example:5000/team/app:v1 \e
    registry.example:5000/team/base:v3 \-o transfer.tar.zst \e
    \-\-trust\-policy ~/.config/notation/trustpolicy.oci.json \e
    \-\-trust\-store ~/.config/notation/truststore \-\-crl crls/
ferry inspect transfer.tar.zst
.fi
.RE
.PP
On the disconnected side, verify offline with the bundle's own trust material, then push into
the internal registry (each image lands at \fITARGET\fR/\fIsource repository\fR):
.PP
.RS 4
.nf
ferry verify transfer.tar.zst \-\-trust\-pin sha256:4c1f...
ferry push transfer.tar.zst internal.reg:443/mirror
ferry push transfer.tar.zst internal.reg:443 \-\-map team/app=prod/app
.fi
.RE
.PP
Verify with local trust material instead, or digests and the graph only:
.PP
.RS 4
.nf
ferry verify transfer.tar.zst \-\-trust\-policy P \-\-trust\-store T \-\-crl C
ferry verify transfer.tar.zst \-\-integrity\-only
.fi
.RE
.PP
Load the bash completion into the current shell:
.PP
.RS 4
.nf
source <(ferry completion bash)
.fi
.RE
.SH SEE ALSO
.BR notation (1),
.BR skopeo (1),
.BR oras ,
.BR umoci (1)
)roff";

// ---------------------------------------------------------------------------------------------
// bash

std::string shell_words(const std::vector<std::string>& words) { return "\"" + join(words, " ") + "\""; }

// One `case` arm per kind of value, for the options of `opts` that take one; `return` in each.
std::string value_cases(const std::vector<const CLI::Option*>& opts, const std::string& indent)
{
  std::string out;
  std::vector<std::string> files, dirs, none;
  std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> words;
  for (const auto* opt : opts) {
    if (!takes_value(opt)) continue;
    auto names = spellings(opt);
    ValueKind k = value_kind(opt);
    auto& into = k.kind == ValueKind::file ? files : k.kind == ValueKind::dir ? dirs : none;
    if (k.kind == ValueKind::choice) words.push_back({names, k.words});
    else into.insert(into.end(), names.begin(), names.end());
  }
  if (!files.empty()) out += indent + join(files, "|") + ") _ferry_files; return 0 ;;\n";
  if (!dirs.empty()) out += indent + join(dirs, "|") + ") _ferry_dirs; return 0 ;;\n";
  for (const auto& [names, values] : words) out += indent + join(names, "|") + ") _ferry_words " + shell_words(values) + "; return 0 ;;\n";
  if (!none.empty()) out += indent + join(none, "|") + ") return 0 ;;\n";
  return out;
}

std::string positional_action(const CLI::Option* opt)
{
  ValueKind k = value_kind(opt);
  switch (k.kind) {
  case ValueKind::file: return "_ferry_files";
  case ValueKind::dir: return "_ferry_dirs";
  case ValueKind::choice: return "_ferry_words " + shell_words(k.words);
  case ValueKind::none: break;
  }
  return ":";
}

std::string function_name(const CLI::App& cmd)
{
  std::string name = "_ferry_";
  for (char c : cmd.get_name()) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

std::string subcommand_function(const CLI::App& app, const CLI::App& cmd)
{
  // Options of the app itself are accepted after the command too (fallthrough).
  std::vector<const CLI::Option*> opts = named_options(cmd);
  if (cmd.get_fallthrough())
    for (const auto* opt : named_options(app))
      if (opt != app.get_help_ptr() && opt != app.get_version_ptr()) opts.push_back(opt);
  std::vector<std::string> names, valued;
  for (const auto* opt : opts) {
    auto s = spellings(opt);
    names.insert(names.end(), s.begin(), s.end());
    if (takes_value(opt)) valued.insert(valued.end(), s.begin(), s.end());
  }
  std::string out = "# ferry " + cmd.get_name() + "; $1: the index of the first word after it.\n";
  out += function_name(cmd) + "()\n{\n";
  if (std::string cases = value_cases(opts, "        "); !cases.empty()) out += "    case \"$prev\" in\n" + cases + "    esac\n";
  out += "    if [[ $cur == -* ]]; then _ferry_words " + shell_words(names) + "; return 0; fi\n";
  auto pos = positionals(cmd);
  if (pos.empty()) return out + "}\n\n";
  // Which positional the word being completed is: count the words before it that are neither
  // options nor an option's value.
  out += "    local n=0 i\n";
  out += "    for (( i = $1; i < COMP_CWORD; i++ )); do\n";
  out += "        case \"${COMP_WORDS[i]}\" in\n";
  if (!valued.empty())
    out += "            " + join(valued, "|") + ") (( i++ )); [[ ${COMP_WORDS[i]} == = ]] && (( i++ )) ;;\n";
  out += "            =) (( i++ )) ;;  # the rest of a word with an '=' in it\n";
  out += "            -*) ;;\n";
  out += "            *) (( n++ )) ;;\n";
  out += "        esac\n";
  out += "    done\n";
  out += "    case $n in\n";
  for (std::size_t i = 0; i < pos.size(); ++i) {
    bool last = repeats(pos[i]);
    out += "        " + (last ? std::string("*") : std::to_string(i)) + ") " + positional_action(pos[i]) + " ;;\n";
    if (last) break;
  }
  out += "    esac\n}\n\n";
  return out;
}

} // namespace

std::string man_page(const CLI::App& app)
{
  std::string out;
  out += ".\\\" ferry(1), generated by `ferry --help-man` from ferry's command line definition; do not edit.\n";
  out += ".TH FERRY 1 " + page_date() + " \"ferry " FERRY_VERSION "\" \"User Commands\"\n";
  // No hyphenation and a ragged right margin: option names stay whole, and searchable.
  out += ".nh\n.ad l\n";
  out += ".SH NAME\nferry \\- carry signed OCI artifacts and their referrers across an air gap\n";

  out += ".SH SYNOPSIS\n";
  out += synopsis(app, "ferry");
  for (const auto* cmd : subcommands(app)) out += ".br\n" + synopsis(*cmd, "ferry " + cmd->get_name());

  out += k_description;

  out += ".SH OPTIONS\n";
  out += "These options are accepted before the command";
  out += app.get_fallthrough() ? " and after it.\n" : ".\n";
  for (const auto* opt : named_options(app)) out += option_entry(opt);

  out += ".SH COMMANDS\n";
  for (const auto* cmd : subcommands(app)) {
    out += ".SS \"ferry " + esc(cmd->get_name()) + "\"\n";
    std::string description = cmd->get_description();
    if (!description.empty() && description.back() != '.') description += '.';
    out += esc(description) + "\n";
    out += ".PP\n" + synopsis(*cmd, "ferry " + cmd->get_name());
    for (const auto* opt : positionals(*cmd)) out += option_entry(opt);
    for (const auto* opt : named_options(*cmd)) out += option_entry(opt);
  }

  out += k_trailer;
  return out;
}

std::string bash_completion(const CLI::App& app)
{
  std::string out = R"bash(# bash completion for ferry                                  -*- shell-script -*-
# Generated by `ferry completion bash` from ferry's command line definition; do not edit.
# Install it as bash-completion/completions/ferry, or load it with: source <(ferry completion bash)

_ferry_words()
{
    local IFS=$' \t\n'
    COMPREPLY=($(compgen -W "$1" -- "$cur"))
}

_ferry_files()
{
    compopt -o filenames 2>/dev/null
    local IFS=$'\n'
    COMPREPLY=($(compgen -f -- "$cur"))
}

_ferry_dirs()
{
    compopt -o filenames 2>/dev/null
    local IFS=$'\n'
    COMPREPLY=($(compgen -d -- "$cur"))
}

)bash";
  std::vector<std::string> commands, app_options, app_valued;
  for (const auto* cmd : subcommands(app)) {
    commands.push_back(cmd->get_name());
    out += subcommand_function(app, *cmd);
  }
  for (const auto* opt : named_options(app)) {
    auto s = spellings(opt);
    app_options.insert(app_options.end(), s.begin(), s.end());
    if (takes_value(opt)) app_valued.insert(app_valued.end(), s.begin(), s.end());
  }
  out += R"bash(_ferry()
{
    local cur="" prev="" cmd="" i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
    # bash splits --option=value at the '=' (COMP_WORDBREAKS).
    if [[ $cur == = ]]; then
        cur=""
    elif [[ $prev == = ]] && (( COMP_CWORD > 1 )); then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi
    for (( i = 1; i < COMP_CWORD; i++ )); do
        case "${COMP_WORDS[i]}" in
)bash";
  if (!app_valued.empty()) out += "            " + join(app_valued, "|") + ") (( i++ )) ;;\n";
  out += R"bash(            =) (( i++ )) ;;
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    case "$cmd" in
        "")
)bash";
  if (std::string cases = value_cases(named_options(app), "                "); !cases.empty())
    out += "            case \"$prev\" in\n" + cases + "            esac\n";
  out += "            if [[ $cur == -* ]]; then _ferry_words " + shell_words(app_options) +
         "; else _ferry_words " + shell_words(commands) + "; fi\n";
  out += "            ;;\n";
  for (const auto* cmd : subcommands(app))
    out += "        " + cmd->get_name() + ") " + function_name(*cmd) + " $((i + 1)) ;;\n";
  out += R"bash(    esac
    return 0
}

complete -F _ferry ferry
)bash";
  return out;
}

void register_docs(CLI::App& app, Action& action)
{
  // Hidden (empty group): for `meson compile` and packagers, not for operators' --help.
  app.add_flag_callback(
         "--help-man",
         [&app] {
           std::fputs(man_page(app).c_str(), stdout);
           throw CLI::Success();
         },
         "Print the ferry(1) man page (roff) and exit")
      ->group("");

  auto* cmd = app.add_subcommand("completion", "Print a shell completion script: ferry completion bash");
  auto shell = std::make_shared<std::string>();  // kept alive by the callback, which outlives parsing
  cmd->add_option("shell", *shell, "The shell to complete for")->required()->check(CLI::IsMember({"bash"}));
  cmd->callback([&app, &action, shell] {
    action = [&app] {
      std::fputs(bash_completion(app).c_str(), stdout);
      return 0;
    };
  });
}

} // namespace ferry::cli
