// ferry sign: adds a Notary Project signature to roots of a bundle, offline.
#include "common.hpp"

#include <ferry/error.hpp>
#include <ferry/sign.hpp>
#include <ferry/verify/openssl.hpp>

namespace ferry::cli {

void register_sign(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* cmd = app.add_subcommand(
      "sign", "Sign roots of a bundle with a Notary Project signature (as notation does), offline, as referrers");
  struct State {
    std::string bundle;
    std::vector<std::string> refs;
    std::string format;
    std::string key;
    std::string cert;
    std::string envelope = "jws";
    std::string expiry;
    std::string signing_agent = std::string("ferry/") + FERRY_VERSION;
    std::string timestamp_url;
    std::string tsa_ca;
    std::string signing_time;
    OutputOptions out;
    LimitFlags limits;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("bundle", s->bundle, "Bundle (*.tar, *.tar.zst, *.tar.gz/*.tgz or a layout directory), rewritten in place")->required();
  cmd->add_option("ref", s->refs,
                  "Roots to sign: source reference (io.containerd.image.name), tag or digest (default: every root)");
  cmd->add_option("--key", s->key, "PEM private key (RSA 2048/3072/4096 or EC P-256/P-384/P-521)")->required();
  cmd->add_option("--cert", s->cert, "PEM certificate chain of the key, leaf first, up to the root")->required();
  cmd->add_option("--envelope,--signature-format", s->envelope, "Signature envelope: jws (default) or cose")
      ->check(CLI::IsMember({"jws", "cose"}));
  cmd->add_option("-e,--expiry", s->expiry, "Signature expiry after the signing time: 24h, 30m, 7d, 1h30m ...");
  cmd->add_option("--signing-agent", s->signing_agent, "io.cncf.notary.signingAgent value (default ferry/<version>)");
  cmd->add_option("--timestamp-url", s->timestamp_url, "RFC 3161 timestamp authority URL (needs --tsa-ca)");
  cmd->add_option("--tsa-ca,--timestamp-root-cert", s->tsa_ca, "PEM root certificate(s) the TSA's token must chain to");
  cmd->add_option("--signing-time", s->signing_time, "RFC 3339 signing time claimed (default now; for reproducible tests)")
      ->group("");
  cmd->add_option("--format", s->format, "Override the bundle format: tar, tar.zst, tar.gz or dir");
  cmd->add_flag("--json", s->out.json, "Print the result as JSON on stdout");
  s->limits.add_to(*cmd, false);
  cmd->callback([s, &action, &global] {
    action = [s, &global] {
      sign::SignOptions o;
      o.limits = s->limits.limits;
      o.bundle = s->bundle;
      if (!s->format.empty()) o.format = parse_format(s->format);
      o.references = s->refs;
      o.key_file = s->key;
      o.cert_file = s->cert;
      o.envelope = sign::parse_envelope_format(s->envelope);
      if (!s->expiry.empty()) o.expiry = sign::parse_duration(s->expiry);
      o.signing_agent = s->signing_agent;
      o.timestamp_url = s->timestamp_url;
      o.tsa_ca_file = s->tsa_ca;
      if (o.timestamp_url.empty() != o.tsa_ca_file.empty())
        throw Error(Errc::invalid_argument, "--timestamp-url and --tsa-ca must be given together");
      if (!s->signing_time.empty()) o.time = verify::parse_rfc3339(s->signing_time, "--signing-time");
      auto r = sign::sign_bundle(o, make_logger(global));
      if (s->out.json) {
        nlohmann::json sigs = nlohmann::json::array();
        for (const auto& x : r.signatures)
          sigs.push_back({{"reference", x.reference},
                          {"subject", x.subject.to_json_basic()},
                          {"signature", x.signature.to_json_basic()},
                          {"envelope", x.envelope.to_json_basic()},
                          {"timestamped", x.timestamped}});
        nlohmann::json doc = {{"schemaVersion", 1},
                              {"command", "sign"},
                              {"bundle", r.bundle.string()},
                              {"format", format_name(r.format)},
                              {"algorithm", r.alg},
                              {"signingTime", verify::format_rfc3339(r.signing_time)},
                              {"signatures", sigs}};
        doc["expiry"] = r.expiry ? nlohmann::json(verify::format_rfc3339(*r.expiry)) : nlohmann::json(nullptr);
        print_json(doc);
        return 0;
      }
      for (const auto& x : r.signatures)
        out_line("signed %s (%s): signature %s (%s, %s%s)", x.reference.c_str(), x.subject.digest.str().c_str(),
                 x.signature.digest.str().c_str(), r.alg.c_str(), x.envelope.media_type.c_str(),
                 x.timestamped ? ", timestamped" : "");
      return 0;
    };
  });
}

} // namespace ferry::cli
