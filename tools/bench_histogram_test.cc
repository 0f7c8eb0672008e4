#include "bench_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

namespace synod::bench {
namespace {

TEST(BenchHistogram, EmptyReportsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(BenchHistogram, SmallValuesAreExact) {
  Histogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(100), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(BenchHistogram, BucketsCoverEveryValueInOrder) {
  // Every value maps into a bucket whose highest value is at least the value
  // and within 1/128 of it; indices never go backwards.
  std::set<std::uint64_t> values;
  for (int e = 0; e < 64; ++e) {
    const std::uint64_t p = std::uint64_t{1} << e;
    for (std::uint64_t v : {p, p + 1, p + p / 2, p + p / 3, p - 1 + p}) values.insert(v);
  }
  std::size_t last = 0;
  for (std::uint64_t v : values) {
    const std::size_t i = Histogram::index_of(v);
    ASSERT_LT(i, Histogram::kBuckets) << v;
    ASSERT_GE(i, last) << v;
    last = i;
    const std::uint64_t high = Histogram::highest_in(i);
    ASSERT_GE(high, v);
    ASSERT_LE(high - v, v / 128) << v;
    if (i > 0) {
      ASSERT_LT(Histogram::highest_in(i - 1), v) << v;
    }
  }
}

TEST(BenchHistogram, PercentilesMatchSortedSamplesWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> latency(13.0, 0.8);  // around 0.5 ms in ns
  std::vector<std::uint64_t> samples;
  Histogram a, b;
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<std::uint64_t>(latency(rng));
    samples.push_back(v);
    (i % 2 == 0 ? a : b).record(v);
  }
  a.merge(b);
  std::sort(samples.begin(), samples.end());
  ASSERT_EQ(a.count(), samples.size());
  EXPECT_EQ(a.max(), samples.back());
  EXPECT_EQ(a.min(), samples.front());
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99}) {
    const auto rank = static_cast<std::size_t>(p / 100.0 * samples.size() + 0.999999);
    const double exact = static_cast<double>(samples[rank - 1]);
    const double got = static_cast<double>(a.percentile(p));
    EXPECT_GE(got, exact) << p;
    EXPECT_LE(got, exact * 1.008) << p;
  }
}

}  // namespace
}  // namespace synod::bench
