#pragma once
/// The one pinned clock of the unit tests (design §8: no test depends on the date). Every
/// certificate, CRL, timestamp and signature a unit test makes is dated relative to k_now,
/// and every check runs at an instant derived from it, never at the wall clock; the suites
/// pass at any date, and .ci/run proves it by running them again 1,000 days ahead.
#include <chrono>
#include <ctime>

namespace ferry::test_clock {

/// 2026-11-23T00:00:00Z, the reference date of the upstream Notation corpus.
inline constexpr std::chrono::sys_seconds k_now{std::chrono::sys_days{std::chrono::year{2026} / 11 / 23}};

/// k_now as a time_t, for ASN1_TIME_set (never X509_gmtime_adj, which reads the wall clock).
inline constexpr std::time_t k_now_time_t = static_cast<std::time_t>(k_now.time_since_epoch().count());

} // namespace ferry::test_clock
