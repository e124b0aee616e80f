// ferry copy: registry to registry with the same graph semantics (being implemented).
#include "common.hpp"

namespace ferry::cli {

void register_copy(CLI::App&, const GlobalOptions&, Action&) {}

} // namespace ferry::cli
