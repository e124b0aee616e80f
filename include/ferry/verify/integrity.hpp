#pragma once
/// Offline integrity of a bundle (issue 3 §Integrity): every blob hashed against its name
/// (the bundle's one scan, LayoutReader at ReadDepth::verify) and every descriptor that
/// points at it, the graph complete.
#include <ferry/record.hpp>
#include <ferry/store/layout.hpp>

namespace ferry::verify {

/// The graph check: every descriptor reachable from index.json (through manifests, config,
/// layers) names a blob the bundle holds, intact and of the size the descriptor gives, and
/// every referrer's subject is in the bundle. Adds what it finds to `bundle.problems()`.
/// `bundle` must have been opened at ReadDepth::verify. A blob `delta` records as left out
/// (same size) is not missing: its base accounts for it (VerifyOptions::delta_base).
void check_graph(LayoutReader& bundle, const DeltaRecord* delta = nullptr);

} // namespace ferry::verify
