#include "checkpoint/shard_io.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

namespace cohort::ckpt {
namespace {

std::vector<std::byte> pattern(std::size_t bytes, std::uint64_t seed) {
  std::vector<std::byte> v(bytes);
  std::uint64_t x = seed;
  for (auto& b : v) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    b = static_cast<std::byte>(x >> 56);
  }
  return v;
}

// (total bytes, pieces, misalignment of every destination and source): below and above the
// threshold for stream stores, and above the size that splits the copy over threads.
class SnapshotCopyTest : public ::testing::TestWithParam<std::tuple<std::size_t, int, std::size_t>> {};

TEST_P(SnapshotCopyTest, CopiesEveryPieceExactlyAndNothingElse) {
  const auto [total, count, skew] = GetParam();
  constexpr std::size_t kGuard = 64;
  const std::vector<std::byte> src = pattern(total + skew, 1);
  std::vector<std::byte> dst(total + count * (kGuard + skew) + kGuard, std::byte{0x5a});
  std::vector<HostCopy> pieces;
  std::size_t from = skew, to = kGuard + skew;
  for (int i = 0; i < count; ++i) {
    // Uneven sizes, one of them empty, the last taking the rest.
    std::size_t n = i + 1 == count ? total - (from - skew) : (i == 1 ? 0 : total / count + 7 * i);
    pieces.push_back({dst.data() + to, src.data() + from, n});
    from += n;
    to += n + kGuard + skew;
  }
  ASSERT_EQ(from - skew, total);
  snapshot_copy(pieces);
  for (const HostCopy& p : pieces) {
    ASSERT_EQ(std::memcmp(p.dst, p.src, p.bytes), 0) << "piece at source offset " << p.src - src.data();
  }
  // Every byte outside the pieces still holds the fill.
  std::size_t untouched = 0;
  std::size_t at = 0;
  for (const HostCopy& p : pieces) {
    for (; dst.data() + at < p.dst; ++at)
      untouched += dst[at] == std::byte{0x5a};
    at += p.bytes;
  }
  for (; at < dst.size(); ++at)
    untouched += dst[at] == std::byte{0x5a};
  EXPECT_EQ(untouched, dst.size() - total) << "a byte outside the pieces was written";
}

INSTANTIATE_TEST_SUITE_P(Sizes, SnapshotCopyTest,
                         ::testing::Combine(::testing::Values(std::size_t{1000}, std::size_t{9} << 20,
                                                              (std::size_t{80} << 20) + 12345),
                                            ::testing::Values(1, 5), ::testing::Values(std::size_t{0}, 13)));

TEST(SnapshotCopyEdgeTest, NoPiecesIsNothing) {
  snapshot_copy({});
}

TEST(StagingBufferTest, MapsWritableMemoryAndMovesIt) {
  auto mapped = StagingBuffer::map(std::size_t{3} << 20);
  ASSERT_TRUE(mapped.ok()) << mapped.status().to_string();
  StagingBuffer a = std::move(mapped).value();
  ASSERT_EQ(a.size(), std::size_t{3} << 20);
  a.data()[0] = std::byte{1};
  a.data()[a.size() - 1] = std::byte{2};
  StagingBuffer b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.data()[b.size() - 1], std::byte{2});
  b = StagingBuffer();
  EXPECT_EQ(b.data(), nullptr);
}

TEST(StagingBufferTest, NothingToMapIsEmpty) {
  auto empty = StagingBuffer::map(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->data(), nullptr);
}

TEST(StagingBufferTest, TooMuchIsResourceExhaustedNamingTheSize) {
  // Beyond any address space, so it fails whatever the overcommit policy.
  const std::size_t absurd = std::numeric_limits<std::size_t>::max() / 2;
  auto mapped = StagingBuffer::map(absurd);
  ASSERT_FALSE(mapped.ok());
  EXPECT_EQ(mapped.status().code(), Code::kResourceExhausted);
  EXPECT_NE(mapped.status().message().find(std::to_string(absurd)), std::string::npos) << mapped.status().to_string();
}

}  // namespace
}  // namespace cohort::ckpt
