// How the rows are cut into shards and which rank scores which shard.
//
// Shard s covers rows [s * shard_rows, min((s + 1) * shard_rows, rows)) and belongs to rank
// s % world. The cut depends only on rows and shard_rows, never on the world size, so a run
// restarted with another number of ranks still finds the same shard files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace batch_infer {

struct ShardRange {
  std::size_t index = 0;
  std::uint64_t begin = 0;  // first row
  std::uint64_t end = 0;    // one past the last row
  std::uint64_t rows() const noexcept { return end - begin; }
};

class ShardPlan {
 public:
  // REQUIRES: shard_rows > 0.
  ShardPlan(std::uint64_t rows, std::uint64_t shard_rows) noexcept;

  std::uint64_t rows() const noexcept { return rows_; }
  std::uint64_t shard_rows() const noexcept { return shard_rows_; }
  std::size_t num_shards() const noexcept;
  // REQUIRES: s < num_shards().
  ShardRange shard(std::size_t s) const noexcept;

  // REQUIRES: world > 0.
  static int owner(std::size_t s, int world) noexcept;
  // The shards `rank` owns, in ascending order. REQUIRES: 0 <= rank < world.
  std::vector<std::size_t> shards_of(int rank, int world) const;
  // Rounds of the main loop: in round r, rank k scores shard r * world + k when there is one.
  std::size_t rounds(int world) const noexcept;

 private:
  std::uint64_t rows_;
  std::uint64_t shard_rows_;
};

}  // namespace batch_infer
