#include "shard_plan.hpp"

#include <algorithm>
#include <cassert>

namespace batch_infer {

ShardPlan::ShardPlan(std::uint64_t rows, std::uint64_t shard_rows) noexcept : rows_(rows), shard_rows_(shard_rows) {
  assert(shard_rows > 0);
}

std::size_t ShardPlan::num_shards() const noexcept {
  return static_cast<std::size_t>((rows_ + shard_rows_ - 1) / shard_rows_);
}

ShardRange ShardPlan::shard(std::size_t s) const noexcept {
  assert(s < num_shards());
  const std::uint64_t begin = static_cast<std::uint64_t>(s) * shard_rows_;
  return {.index = s, .begin = begin, .end = std::min(begin + shard_rows_, rows_)};
}

int ShardPlan::owner(std::size_t s, int world) noexcept {
  assert(world > 0);
  return static_cast<int>(s % static_cast<std::size_t>(world));
}

std::vector<std::size_t> ShardPlan::shards_of(int rank, int world) const {
  assert(rank >= 0 && rank < world);
  std::vector<std::size_t> out;
  for (std::size_t s = static_cast<std::size_t>(rank); s < num_shards(); s += static_cast<std::size_t>(world))
    out.push_back(s);
  return out;
}

std::size_t ShardPlan::rounds(int world) const noexcept {
  const auto w = static_cast<std::size_t>(world);
  return (num_shards() + w - 1) / w;
}

}  // namespace batch_infer
