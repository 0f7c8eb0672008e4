// A latency histogram for synod-bench: log-linear buckets in the manner of
// HdrHistogram. Values (nanoseconds) below 256 have a bucket each; above, every
// power of two [2^e, 2^(e+1)) is split into 128 equal buckets, so a reported
// percentile is within 1/128 (< 0.8%) of the true sample and p99.9 of a run is
// as exact as the clock. Fixed memory (about 60 KB) whatever the run's length,
// where keeping every sample of a minute at 100k ops/s would take 48 MB.
//
// Not thread-safe: synod-bench keeps one per client connection, touched only by
// that connection's I/O thread, and merges them after the run.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace synod::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 7;  // 128 sub-buckets per power of two
  static constexpr std::uint64_t kLinear = std::uint64_t{2} << kSubBits;  // 256 exact buckets
  static constexpr std::size_t kBuckets =
      kLinear + (64 - (kSubBits + 1)) * (std::size_t{1} << kSubBits);

  Histogram() : counts_(kBuckets, 0) {}

  void record(std::uint64_t value) {
    ++counts_[index_of(value)];
    ++count_;
    sum_ += value;
    max_ = std::max(max_, value);
    min_ = count_ == 1 ? value : std::min(min_, value);
  }

  void merge(const Histogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    if (other.count_ == 0) return;
    min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
  }

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  std::uint64_t min() const { return min_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The value at percentile p (0 < p <= 100): the highest value of the bucket
  // holding the ceil(p% * count)-th smallest sample, capped at max(). 0 when empty.
  std::uint64_t percentile(double p) const {
    if (count_ == 0) return 0;
    p = std::clamp(p, 0.0, 100.0);
    auto rank = static_cast<std::uint64_t>(p / 100.0 * static_cast<double>(count_) + 0.999999);
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(highest_in(i), max_);
    }
    return max_;
  }

  static std::size_t index_of(std::uint64_t v) {
    if (v < kLinear) return static_cast<std::size_t>(v);
    const int e = std::bit_width(v) - 1;  // >= kSubBits + 1
    const int shift = e - kSubBits;
    const std::uint64_t sub = (v >> shift) - (std::uint64_t{1} << kSubBits);  // [0, 128)
    return static_cast<std::size_t>(kLinear + (e - (kSubBits + 1)) * (1u << kSubBits) + sub);
  }

  static std::uint64_t highest_in(std::size_t index) {
    if (index < kLinear) return index;
    const std::size_t rest = index - kLinear;
    const int e = static_cast<int>(rest >> kSubBits) + kSubBits + 1;
    const int shift = e - kSubBits;
    const std::uint64_t sub = (rest & ((1u << kSubBits) - 1)) + (std::uint64_t{1} << kSubBits);
    const std::uint64_t low = sub << shift;
    return low + ((std::uint64_t{1} << shift) - 1);
  }

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = 0;
};

}  // namespace synod::bench
