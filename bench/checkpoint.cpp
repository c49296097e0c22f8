// cohort-bench checkpoint: what a Checkpointer costs against writing and reading the same bytes by
// hand. One rank (a standalone world of one) saves N tensors of the same total size three ways in
// each round: a plain write(2) + fsync of one file (the baseline a user would write), a synchronous
// save(), an asynchronous save() (the time it blocks the caller, and until wait() returns); then
// reads them back: a plain read(2) of the file (the baseline) against restore_latest(), which
// verifies checksums. Rounds are interleaved so drift in the machine's load falls on all of them;
// the table shows medians and the three ratios against their targets. Bench::round says why the
// measurements run in the order they do.
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cohort/checkpoint.hpp"
#include "cohort/collectives.hpp"
#include "cohort/context.hpp"
#include "cohort/status.hpp"

namespace fs = std::filesystem;
using cohort::Result;
using cohort::Status;

namespace {

// The chunk of each write(2)/read(2) of the baseline: large enough that the calls cost nothing
// next to copying the bytes, small enough not to need a second buffer.
constexpr std::size_t kChunkBytes = std::size_t{8} << 20;
// The async Checkpointer's staging room beyond the tensors' bytes, so a shard that also counts its
// metadata (≤ 1 MiB by the API) is never saved synchronously by surprise.
constexpr std::size_t kStagingSlack = std::size_t{1} << 20;

struct Options {
  std::uint64_t bytes = 0;
  fs::path dir;
  int tensors = 16;
  int repeat = 3;
  bool json = false;
  bool drop_caches = false;
};

struct Samples {
  std::vector<double> raw_write, sync_save, async_stall, async_total, raw_read, restore;  // seconds
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&&) = delete;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  // close(2)'s own error, which on some filesystems is the first report of a failed write.
  Status close(const fs::path& path) {
    const int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? Status() : cohort::errno_status("close", errno, path.string());
  }

 private:
  int fd_;
};

Result<UniqueFd> open_fd(const fs::path& path, int flags, mode_t mode = 0) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return cohort::errno_status("open", errno, path.string());
  return UniqueFd(fd);
}

// What the benchmark writes under --dir: the baseline's file and the two checkpoint directories,
// plus --dir itself and its parents where they did not exist. Removed on every return; what was
// already there before is never touched (prepare() refuses to start over it).
class Scratch {
 public:
  explicit Scratch(fs::path dir) : dir_(std::move(dir)) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    std::error_code ignored;
    if (owned_) {
      for (const fs::path& p : {raw(), sync_dir(), async_dir()}) {
        fs::remove_all(p, ignored);
      }
    }
    // Innermost first; remove() (not remove_all) leaves a directory someone else wrote into.
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      fs::remove(*it, ignored);
    }
  }

  Status prepare() {
    std::error_code ec;
    for (fs::path p = fs::absolute(dir_, ec); !ec && !fs::exists(p, ec); p = p.parent_path()) {
      created_.insert(created_.begin(), p);
      if (p == p.parent_path()) break;
    }
    for (const fs::path& p : created_) {
      if (!fs::create_directory(p, ec) && ec) {
        return {cohort::Code::kIoError, "mkdir " + p.string() + ": " + ec.message()};
      }
    }
    if (!fs::is_directory(dir_, ec)) return cohort::invalid_argument("--dir " + dir_.string() + " is not a directory");
    for (const fs::path& p : {raw(), sync_dir(), async_dir()}) {
      if (fs::exists(fs::symlink_status(p, ec))) {
        return {cohort::Code::kAlreadyExists,
                p.string() + " already exists (left by an earlier run?): remove it or choose another --dir"};
      }
    }
    owned_ = true;
    return {};
  }

  fs::path raw() const { return dir_ / "raw.bin"; }
  fs::path sync_dir() const { return dir_ / "sync"; }
  fs::path async_dir() const { return dir_ / "async"; }

 private:
  fs::path dir_;
  std::vector<fs::path> created_;  // outermost first
  bool owned_ = false;             // raw(), sync_dir() and async_dir() are ours to remove
};

// The baseline write: one new file, write(2) in large chunks, fsync the file, fsync the directory.
Status raw_write(const fs::path& file, const std::byte* data, std::size_t bytes) {
  COHORT_ASSIGN_OR_RETURN(UniqueFd fd, open_fd(file, O_WRONLY | O_CREAT | O_EXCL, 0644));
  for (std::size_t done = 0; done < bytes;) {
    const ssize_t n = ::write(fd.get(), data + done, std::min(kChunkBytes, bytes - done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return cohort::errno_status("write", errno, file.string());
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return cohort::errno_status("fsync", errno, file.string());
  COHORT_TRY(fd.close(file));
  COHORT_ASSIGN_OR_RETURN(UniqueFd dir, open_fd(file.parent_path(), O_RDONLY | O_DIRECTORY));
  if (::fsync(dir.get()) != 0) return cohort::errno_status("fsync", errno, file.parent_path().string());
  return {};
}

// The baseline read: the whole file into a buffer allocated for it (not zeroed: read fills it).
Result<std::unique_ptr<std::byte[]>> raw_read(const fs::path& file, std::size_t bytes) {
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(bytes);
  COHORT_ASSIGN_OR_RETURN(UniqueFd fd, open_fd(file, O_RDONLY));
  for (std::size_t done = 0; done < bytes;) {
    const ssize_t n = ::read(fd.get(), buffer.get() + done, std::min(kChunkBytes, bytes - done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return cohort::errno_status("read", errno, file.string());
    if (n == 0) return Status(cohort::Code::kDataLoss, file.string() + " is shorter than it was written");
    done += static_cast<std::size_t>(n);
  }
  return buffer;
}

Status drop_page_cache() {
  ::sync();  // dirty pages are not dropped; everything was fsynced already, but be sure
  const char* path = "/proc/sys/vm/drop_caches";
  COHORT_ASSIGN_OR_RETURN(UniqueFd fd, open_fd(path, O_WRONLY));
  if (::write(fd.get(), "3", 1) != 1) return cohort::errno_status("write", errno, path);
  return fd.close(path).with_context("--drop-caches");
}

// Non-constant bytes, so nothing on the way can shortcut zeros. splitmix64.
std::vector<std::byte> make_data(std::size_t bytes) {
  std::vector<std::byte> data(bytes);
  std::uint64_t x = 0x9e3779b97f4a7c15;
  for (std::size_t i = 0; i < bytes; i += sizeof x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    z ^= z >> 31;
    std::memcpy(data.data() + i, &z, std::min(sizeof z, bytes - i));
  }
  return data;
}

Status check_restored(const Result<std::optional<cohort::Restored>>& restored, std::int64_t step,
                      const cohort::ShardView& shard) {
  if (!restored.ok()) return restored.status().with_context("restore_latest");
  if (!restored->has_value()) return {cohort::Code::kDataLoss, "restore_latest found no checkpoint after a save"};
  const cohort::Restored& r = **restored;
  if (r.step != step) {
    return {cohort::Code::kDataLoss,
            "restore_latest gave step " + std::to_string(r.step) + ", the last save was " + std::to_string(step)};
  }
  for (const cohort::TensorView& t : shard.tensors) {
    const cohort::RestoredTensor* got = r.find(t.name);
    if (got == nullptr || got->bytes.size() != t.bytes || std::memcmp(got->bytes.data(), t.data, t.bytes) != 0) {
      return {cohort::Code::kDataLoss, "restored tensor " + t.name + " differs from the one saved"};
    }
  }
  return {};
}

// The order of a round, and why. On the development VM (Firecracker, nested virtualization, free
// page reporting), filling 1 GiB of page cache takes ~0.6 s when the same thread just deleted a
// file of that size on the same CPU (its pages are still in that CPU's free lists) and 2-7 s when
// the pages must come back from the host; anonymous memory costs ~1.3 s per GiB of page faults
// either way. So the two compared writes each start right after this thread deleted `bytes`:
//   - delete the previous round's raw file (untimed)
//   sync save                    (which deletes its previous step at the end: keep_last = 1)
//   raw write
//   async save                   (starts cold here: async_total_s is pessimistic on such a VM)
//   raw read, restore            (each into fresh memory)
// Round 0 is a warm-up, untimed: it has nothing to delete, and the first async save allocates
// its staging memory, a cost paid once per job.
class Bench {
 public:
  Bench(const Options& o, const Scratch& scratch, const std::vector<std::byte>& data, const cohort::ShardView& shard,
        cohort::Checkpointer& sync, cohort::Checkpointer& async)
      : o_(o), scratch_(scratch), data_(data), shard_(shard), sync_(sync), async_(async) {}

  // Round `round` (0: the warm-up, recorded nowhere when `out` is null).
  Status round(int round, Samples* out) {
    const std::int64_t step = round + 1;
    const auto record = [&](std::vector<double> Samples::*series, std::chrono::steady_clock::time_point start) {
      if (out != nullptr) (out->*series).push_back(seconds_since(start));
    };
    const fs::path raw = scratch_.raw();
    if (round > 0 && ::unlink(raw.c_str()) != 0) return cohort::errno_status("unlink", errno, raw.string());

    auto start = std::chrono::steady_clock::now();
    COHORT_TRY(sync_.save(step, shard_).with_context("synchronous save"));
    record(&Samples::sync_save, start);

    start = std::chrono::steady_clock::now();
    COHORT_TRY(raw_write(raw, data_.data(), o_.bytes));
    record(&Samples::raw_write, start);

    start = std::chrono::steady_clock::now();
    COHORT_TRY(async_.save(step, shard_).with_context("asynchronous save"));
    record(&Samples::async_stall, start);
    COHORT_TRY(async_.wait().with_context("asynchronous save (wait)"));
    record(&Samples::async_total, start);

    if (o_.drop_caches) COHORT_TRY(drop_page_cache());
    start = std::chrono::steady_clock::now();
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<std::byte[]> back, raw_read(raw, o_.bytes));
    record(&Samples::raw_read, start);
    if (std::memcmp(back.get(), data_.data(), o_.bytes) != 0) {
      return {cohort::Code::kDataLoss, raw.string() + " read back differs from what was written"};
    }
    back.reset();

    if (o_.drop_caches) COHORT_TRY(drop_page_cache());
    start = std::chrono::steady_clock::now();
    auto restored = sync_.restore_latest();
    record(&Samples::restore, start);
    return check_restored(restored, step, shard_);
  }

 private:
  const Options& o_;
  const Scratch& scratch_;
  const std::vector<std::byte>& data_;
  const cohort::ShardView& shard_;
  cohort::Checkpointer& sync_;
  cohort::Checkpointer& async_;
};

// The warm-up round and `repeat` timed rounds into `out`. Everything written under --dir is gone
// when it returns, on success or not.
Status measure(const Options& o, Samples& out) {
  COHORT_ASSIGN_OR_RETURN(cohort::Context ctx, cohort::Context::from_environment());
  if (ctx.world_size != 1) {
    return cohort::invalid_argument("this benchmark measures one rank, but the environment describes " +
                                    ctx.describe() + ": run it without a launcher");
  }
  // Every read lands in memory fresh from the kernel, as a restore at job start does. Left to
  // itself, glibc raises its mmap threshold after the first free of a large block, so a restore of
  // tensors under 32 MiB would reuse the previous round's heap without a page fault, while the
  // baseline's one large buffer never can.
  mallopt(M_MMAP_THRESHOLD, kChunkBytes / 64);
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<cohort::Communicator> comm, cohort::Communicator::create(ctx));
  Scratch scratch(o.dir);  // after comm, before the Checkpointers: destroyed after they finish
  COHORT_TRY(scratch.prepare());

  const std::vector<std::byte> data = make_data(o.bytes);
  cohort::ShardView shard;
  const std::size_t per_tensor = o.bytes / static_cast<std::size_t>(o.tensors);
  for (int i = 0; i < o.tensors; ++i) {
    const std::size_t offset = per_tensor * static_cast<std::size_t>(i);
    const std::size_t bytes = i + 1 == o.tensors ? o.bytes - offset : per_tensor;  // the last takes the rest
    char name[32];
    std::snprintf(name, sizeof name, "layer.%03d.weight", i);
    shard.tensors.push_back({.name = name, .data = data.data() + offset, .bytes = bytes});
  }

  COHORT_ASSIGN_OR_RETURN(
      std::unique_ptr<cohort::Checkpointer> sync,
      cohort::Checkpointer::open(ctx, *comm, {.dir = scratch.sync_dir(), .keep_last = 1, .async = false}));
  COHORT_ASSIGN_OR_RETURN(
      std::unique_ptr<cohort::Checkpointer> async,
      cohort::Checkpointer::open(
          ctx, *comm,
          {.dir = scratch.async_dir(), .keep_last = 1, .async = true, .staging_bytes = o.bytes + kStagingSlack}));
  Bench bench(o, scratch, data, shard, *sync, *async);
  COHORT_TRY(bench.round(0, nullptr).with_context("warm-up round"));
  for (int round = 1; round <= o.repeat; ++round) {
    COHORT_TRY(bench.round(round, &out));
  }
  return {};
}

// "1.00 GiB", "64.00 MiB", "1.00 KiB", "12 B".
std::string binary_size(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024;
  int unit = 0;
  for (; v >= 1024 && unit < 3; ++unit) {
    v /= 1024;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnits[unit]);
  return buf;
}

void print_json(const Options& o, const Samples& s) {
  const double rw = median(s.raw_write), ss = median(s.sync_save), as = median(s.async_stall),
               at = median(s.async_total), rr = median(s.raw_read), rs = median(s.restore);
  const auto gbps = [&](double sec) { return static_cast<double>(o.bytes) / 1e9 / sec; };
  std::printf(
      "{\"bench\":\"checkpoint\",\"bytes\":%llu,\"tensors\":%d,\"repeat\":%d,\"drop_caches\":%s,"
      "\"raw_write_s\":%.6f,\"sync_save_s\":%.6f,\"async_stall_s\":%.6f,\"async_total_s\":%.6f,"
      "\"raw_read_s\":%.6f,\"restore_s\":%.6f,"
      "\"raw_write_gbps\":%.3f,\"sync_save_gbps\":%.3f,\"async_total_gbps\":%.3f,\"raw_read_gbps\":%.3f,"
      "\"restore_gbps\":%.3f,"
      "\"sync_save_throughput_vs_raw\":%.3f,\"async_stall_vs_sync\":%.4f,\"restore_vs_raw_read\":%.3f}\n",
      static_cast<unsigned long long>(o.bytes), o.tensors, o.repeat, o.drop_caches ? "true" : "false", rw, ss, as, at,
      rr, rs, gbps(rw), gbps(ss), gbps(at), gbps(rr), gbps(rs), rw / ss, as / ss, rr / rs);
}

void print_table(const Options& o, const Samples& s) {
  std::printf("checkpoint of %s (%llu bytes) in %d tensors, 1 rank, %d timed rounds after a warm-up, in %s\n",
              binary_size(o.bytes).c_str(), static_cast<unsigned long long>(o.bytes), o.tensors, o.repeat,
              o.dir.c_str());
  std::printf("%-16s %10s %10s %10s %8s\n", "measurement", "median_s", "min_s", "max_s", "GB/s");
  const std::pair<const char*, const std::vector<double>*> rows[] = {
      {"raw_write_s", &s.raw_write},     {"sync_save_s", &s.sync_save}, {"async_stall_s", &s.async_stall},
      {"async_total_s", &s.async_total}, {"raw_read_s", &s.raw_read},   {"restore_s", &s.restore}};
  for (const auto& [name, v] : rows) {
    const double m = median(*v);
    std::printf("%-16s %10.4f %10.4f %10.4f %8.2f\n", name, m, *std::min_element(v->begin(), v->end()),
                *std::max_element(v->begin(), v->end()), static_cast<double>(o.bytes) / 1e9 / m);
  }
  const double ss = median(s.sync_save);
  struct Ratio {
    const char* name;
    double value;
    bool at_least;  // else at most
    double target;
  };
  const Ratio ratios[] = {{"sync_save_throughput_vs_raw", median(s.raw_write) / ss, true, 0.7},
                          {"async_stall_vs_sync", median(s.async_stall) / ss, false, 0.1},
                          {"restore_vs_raw_read", median(s.raw_read) / median(s.restore), true, 0.7}};
  std::printf("\n%-28s %8s %8s %4s\n", "ratio (of medians)", "value", "target", "met");
  for (const Ratio& r : ratios) {
    const double shown = std::round(r.value * 1000) / 1000;  // judged as printed: "0.700" is not a miss
    const bool met = r.at_least ? shown >= r.target : shown <= r.target;
    std::printf("%-28s %8.3f %s %5.2f %4s\n", r.name, r.value, r.at_least ? ">=" : "<=", r.target, met ? "yes" : "NO");
  }
  std::printf("\nGB = 1e9 bytes. Reads: %s\n",
              o.drop_caches ? "from the disk (page cache dropped before each read)"
                            : "from the page cache (the files were just written; --drop-caches, as root, reads "
                              "from the disk)");
}

}  // namespace

int bench_checkpoint(int argc, char** argv) {
  CLI::App app{"Checkpointer save and restore against a plain write(2)/read(2) of the same bytes"};
  Options o;
  app.add_option("--bytes", o.bytes, "total bytes of the tensors (K, M, G suffixes: powers of 1024)")
      ->required()
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  app.add_option("--dir", o.dir, "where to write; what the benchmark writes there is removed at the end")->required();
  app.add_option("--tensors", o.tensors, "tensors the bytes are split over")->check(CLI::Range(1, 100000));
  app.add_option("--repeat", o.repeat, "rounds of every measurement, interleaved; medians are reported")
      ->check(CLI::Range(1, 1000));
  app.add_flag("--json", o.json, "one JSON object instead of the table");
  app.add_flag("--drop-caches", o.drop_caches, "drop the page cache before each read (needs root)");
  CLI11_PARSE(app, argc, argv);

  if (o.drop_caches && ::geteuid() != 0) {
    std::fprintf(stderr,
                 "cohort-bench checkpoint: --drop-caches writes /proc/sys/vm/drop_caches, which needs root: run it "
                 "as root, or leave the flag out to read from the page cache\n");
    return 2;
  }
  if (o.bytes < static_cast<std::uint64_t>(o.tensors)) {
    std::fprintf(stderr, "cohort-bench checkpoint: --bytes %llu is less than one byte per tensor (--tensors %d)\n",
                 static_cast<unsigned long long>(o.bytes), o.tensors);
    return 2;
  }

  Samples samples;
  if (const Status s = measure(o, samples); !s.ok()) {
    std::fprintf(stderr, "cohort-bench checkpoint: %s\n", s.to_string().c_str());
    return 1;
  }
  if (o.json) {
    print_json(o, samples);
  } else {
    print_table(o, samples);
  }
  return 0;
}
