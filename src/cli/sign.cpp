// ferry sign: adds a Notary Project signature to roots of a bundle (being implemented).
#include "common.hpp"

namespace ferry::cli {

void register_sign(CLI::App&, const GlobalOptions&, Action&) {}

} // namespace ferry::cli
