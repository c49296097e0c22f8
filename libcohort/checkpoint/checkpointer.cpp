#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "checkpoint/file_system.hpp"
#include "checkpoint/manifest.hpp"
#include "checkpoint/shard_io.hpp"
#include "cohort/checkpoint.hpp"
#include "cohort/log.hpp"

namespace cohort {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kManifest[] = "MANIFEST.json";
constexpr char kLatest[] = "latest";
constexpr char kLock[] = ".commit.lock";
constexpr std::size_t kMaxMetadata = std::size_t{1} << 20;
constexpr std::size_t kMaxIndex = std::size_t{64} << 20;
// How long destroying a Checkpointer waits for an asynchronous save in flight before it stops
// waiting for other ranks: long enough for a large shard on a local disk, short enough that a
// job whose peer died exits promptly.
constexpr auto kDestructorGrace = std::chrono::seconds(60);

// A failing rank's Status as one number that an allreduce(max) can agree on: the highest code
// wins, and among equal codes the lowest rank, so every rank names the same culprit.
std::int64_t status_key(const Status& s, int rank) {
  if (s.ok()) return 0;
  return (static_cast<std::int64_t>(s.code()) << 32) | (0x7fffffff - rank);
}

Status from_key(std::int64_t key, const Status& local, int rank, const std::string& what) {
  if (key == 0) return {};
  const int culprit = 0x7fffffff - static_cast<int>(key & 0xffffffff);
  if (culprit == rank) return local;
  return Status(static_cast<Code>(key >> 32), what + " failed on rank " + std::to_string(culprit) + " (see its log)");
}

bool valid_tensor_name(const std::string& name) {
  if (name.empty() || name.size() > 256) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/';
  });
}

std::string fresh_nonce() {
  std::random_device rd;
  std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v & 0x7fffffffffffffffULL));
  return buf;
}

}  // namespace

class Checkpointer::Impl {
 public:
  Impl(const Context& ctx, Communicator& comm, CheckpointOptions o, FileSystem& f)
      : ctx_(ctx), comm_(comm), o_(std::move(o)), fs_(f) {}
  ~Impl() {
    // An asynchronous save in flight gets a grace to finish; after it, the commit stops waiting
    // for ranks that may be gone, so a destructor never blocks for the whole commit timeout.
    const auto deadline = Clock::now() + kDestructorGrace;
    while (bg_.joinable() && !bg_done_.load() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    cancel_.store(true);
    if (bg_.joinable()) bg_.join();
    if (deleter_.joinable()) deleter_.join();
  }

  Status save(std::int64_t step, const ShardView& shard);
  Status wait();
  Result<std::optional<Restored>> restore_latest();
  const fs::path& dir() const { return o_.dir; }
  const Status& last_async_status() const { return last_async_; }

 private:
  struct Job {
    std::int64_t step = 0;
    std::string nonce;
    std::vector<TensorView> views;
    std::string metadata;
  };

  Status validate(std::int64_t step, const ShardView& shard) const;
  // Copies the job's tensors into staging_ (grown to `total` bytes if smaller) and points the
  // job's views at the copies.
  Status stage(Job& job, std::size_t total);
  Status write_local(const Job& job);
  Status commit(const Job& job);
  Result<ckpt::FileEntry> await_index(const Job& job, int rank, Clock::time_point deadline);
  int newest_committed_attempt();
  void retain(std::int64_t committed_step);
  Result<Restored> load(std::int64_t step);
  std::vector<std::int64_t> committed_steps();
  void tell_runner(const char* name, std::int64_t step);
  fs::path tmp_dir(const Job& job) const { return o_.dir / (ckpt::step_dir_name(job.step) + ".tmp-" + job.nonce); }
  Status agree(const Status& local, const std::string& what);

  Context ctx_;
  Communicator& comm_;
  CheckpointOptions o_;
  FileSystem& fs_;
  bool in_flight_ = false;  // an asynchronous save whose outcome is not yet agreed
  std::thread bg_;          // its writer, if joinable
  Status bg_status_;        // written by bg_, read after join
  std::atomic<bool> bg_done_{false};
  std::atomic<bool> cancel_{false};  // set by the destructor: stop waiting for other ranks
  Status last_async_;                // the agreed outcome of the last asynchronous save
  ckpt::StagingBuffer staging_;      // reused between asynchronous saves, at most staging_bytes
  std::thread deleter_;              // rank 0: removes what retention retired
  std::vector<fs::path> retired_;    // handed to the next deleter
};

Status Checkpointer::Impl::agree(const Status& local, const std::string& what) {
  std::int64_t key = status_key(local, ctx_.rank);
  Status s = comm_.allreduce(std::span<std::int64_t>(&key, 1), ReduceOp::kMax);
  if (!s.ok()) return s.with_context(what);
  return from_key(key, local, ctx_.rank, what);
}

Status Checkpointer::Impl::validate(std::int64_t step, const ShardView& shard) const {
  if (step < 0) return invalid_argument("checkpoint step " + std::to_string(step) + " is negative");
  if (shard.metadata_json.size() > kMaxMetadata) {
    return invalid_argument("checkpoint metadata is " + std::to_string(shard.metadata_json.size()) +
                            " bytes; at most 1 MiB (save large state as a tensor)");
  }
  COHORT_TRY(ckpt::check_json(shard.metadata_json));
  std::vector<std::string> names;
  for (const auto& t : shard.tensors) {
    if (!valid_tensor_name(t.name)) {
      return invalid_argument("tensor name '" + t.name + "' must be 1-256 letters, digits or ._-/");
    }
    if (t.data == nullptr && t.bytes != 0) return invalid_argument("tensor " + t.name + " has no data");
    names.push_back(t.name);
  }
  std::sort(names.begin(), names.end());
  if (auto dup = std::adjacent_find(names.begin(), names.end()); dup != names.end()) {
    return invalid_argument("tensor name " + *dup + " appears twice in the shard");
  }
  return {};
}

Status Checkpointer::Impl::save(std::int64_t step, const ShardView& shard) {
  if (in_flight_) {
    // A failure of the previous save was that save's (last_async_status() keeps it); this one
    // may still succeed. Only a fence (a newer attempt owns the directory) ends all saves.
    Status previous = wait();
    if (previous.code() == Code::kFenced) return previous;
    if (!previous.ok()) logger()->warn("the previous asynchronous checkpoint failed: {}", previous.to_string());
  }
  const std::string what = "checkpoint step " + std::to_string(step);
  const Status valid = validate(step, shard);
  std::size_t total = 0;
  for (const auto& t : shard.tensors)
    total += t.bytes;
  // One allreduce agrees on four things: whether every shard is valid, the newest attempt that
  // committed (rank 0 reads it), the save's nonce (rank 0 draws it), and whether any rank's
  // shard is too large for staging, in which case every rank saves synchronously: ranks that
  // took different paths would no longer meet in the same collectives.
  std::int64_t agreed[4] = {status_key(valid, ctx_.rank), 0, 0, o_.async && total > o_.staging_bytes ? 1 : 0};
  if (ctx_.rank == 0) {
    agreed[1] = newest_committed_attempt();
    agreed[2] = static_cast<std::int64_t>(std::stoull(fresh_nonce(), nullptr, 16));
  }
  COHORT_TRY(comm_.allreduce(std::span<std::int64_t>(agreed, 4), ReduceOp::kMax).with_context(what));
  COHORT_TRY(from_key(agreed[0], valid, ctx_.rank, what + ": shard validation"));
  if (agreed[1] > ctx_.attempt) {
    return Status(Code::kFenced, what + " refused: this is attempt " + std::to_string(ctx_.attempt) + " of job " +
                                     ctx_.job_id + ", and attempt " + std::to_string(agreed[1]) +
                                     " has already committed checkpoints in " + o_.dir.string());
  }
  char nonce[24];
  std::snprintf(nonce, sizeof nonce, "%016llx", static_cast<unsigned long long>(agreed[2]));
  Job job{step, nonce, shard.tensors, shard.metadata_json};

  const bool oversize = agreed[3] != 0;
  if (oversize) {
    logger()->warn("{}: a shard is larger than the {} bytes of staging memory: saving synchronously", what,
                   o_.staging_bytes);
  }
  if (!o_.async || oversize) {
    Status written = agree(write_local(job), what + ": writing shards");
    if (!written.ok()) {
      if (ctx_.rank == 0) (void)fs_.remove_all(tmp_dir(job));
      return written;
    }
    return agree(ctx_.rank == 0 ? commit(job) : Status(), what + ": commit");
  }

  // Asynchronous: a snapshot into staging memory is all the training thread waits for. A rank
  // whose snapshot fails still starts the writer, to report the failure where rank 0 looks.
  in_flight_ = true;
  const Status staged = stage(job, total).with_context(what + ": staging");
  bg_done_.store(false);
  bg_ = std::thread([this, job = std::move(job), staged] {
    struct Done {
      std::atomic<bool>& flag;
      ~Done() { flag.store(true); }
    } done{bg_done_};
    Status s = staged.ok() ? write_local(job) : staged;
    if (!s.ok()) {
      // Rank 0 waits for every rank's files; a marker tells it not to wait out the timeout.
      if (ctx_.rank != 0) {
        (void)fs_.make_dir(tmp_dir(job));  // not made yet if staging failed
        (void)durable_write(fs_, tmp_dir(job) / ("rank-" + std::to_string(ctx_.rank) + ".failed"), s.to_string());
      } else {
        (void)fs_.remove_all(tmp_dir(job));
      }
      bg_status_ = s;
      return;
    }
    bg_status_ = ctx_.rank == 0 ? commit(job) : Status();
  });
  return {};
}

Status Checkpointer::Impl::stage(Job& job, std::size_t total) {
  if (staging_.size() < total) {
    staging_ = ckpt::StagingBuffer();  // the old one goes first: the two together may not fit
    COHORT_ASSIGN_OR_RETURN(staging_, ckpt::StagingBuffer::map(total));
  }
  // Device tensors are copied one by one as they come; host tensors all at once, after them.
  std::vector<ckpt::HostCopy> host;
  std::size_t offset = 0;
  for (auto& v : job.views) {
    std::byte* dst = staging_.data() + offset;
    if (v.device == Device::kHost) {
      host.push_back({dst, static_cast<const std::byte*>(v.data), v.bytes});
    } else {
      COHORT_TRY(ckpt::copy_to_host(dst, v.data, v.bytes, v.device).with_context("tensor " + v.name));
    }
    v = TensorView{v.name, dst, v.bytes, Device::kHost};
    offset += v.bytes;
  }
  ckpt::snapshot_copy(host);
  return {};
}

Status Checkpointer::Impl::wait() {
  if (!in_flight_) return {};
  if (bg_.joinable()) bg_.join();
  in_flight_ = false;
  last_async_ = agree(bg_status_, "asynchronous checkpoint");
  bg_status_ = Status();
  return last_async_;
}

Status Checkpointer::Impl::write_local(const Job& job) {
  const fs::path tmp = tmp_dir(job);
  COHORT_TRY(fs_.make_dir(tmp));
  ckpt::RankIndex index{ctx_.rank, job.step, ctx_.attempt, job.nonce, {}, {}, job.metadata};
  COHORT_ASSIGN_OR_RETURN(index.data,
                          ckpt::write_data_file(fs_, tmp / ckpt::data_file_name(ctx_.rank), job.views, index.tensors));
  // The index goes last and by rename: its presence tells rank 0 the data file is durable.
  return durable_write(fs_, tmp / ckpt::index_file_name(ctx_.rank), ckpt::encode(index));
}

Result<ckpt::FileEntry> Checkpointer::Impl::await_index(const Job& job, int rank, Clock::time_point deadline) {
  const fs::path tmp = tmp_dir(job);
  const fs::path index_path = tmp / ckpt::index_file_name(rank);
  const fs::path failed = tmp / ("rank-" + std::to_string(rank) + ".failed");
  auto pause = std::chrono::microseconds(500);
  while (!fs_.exists(index_path)) {
    if (fs_.exists(failed)) {
      auto why = read_small_file(fs_, failed, 4096);
      return Status(Code::kIoError, "rank " + std::to_string(rank) + " could not write its shard: " +
                                        (why.ok() ? *why : std::string("(no reason readable)")));
    }
    if (cancel_.load())
      return Status(Code::kCanceled,
                    "the Checkpointer was destroyed while rank 0 waited for rank " + std::to_string(rank));
    if (Clock::now() >= deadline) {
      return Status(Code::kTimedOut, "rank " + std::to_string(rank) + " did not deliver its shard within " +
                                         std::to_string(o_.commit_timeout.count() / 1000) + " s");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20000));
  }
  return ckpt::describe_file(fs_, index_path);
}

Status Checkpointer::Impl::commit(const Job& job) {
  const fs::path tmp = tmp_dir(job);
  auto attempt = [&]() -> Status {
    ckpt::Manifest m;
    m.step = job.step;
    m.world_size = ctx_.world_size;
    m.attempt = ctx_.attempt;
    m.nonce = job.nonce;
    m.created_unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    // Synchronous saves get here after every rank said it wrote; the wait then only covers a
    // shared filesystem that shows another node's rename late (NFS attribute caching).
    const auto deadline = Clock::now() + o_.commit_timeout;
    for (int r = 0; r < ctx_.world_size; ++r) {
      COHORT_ASSIGN_OR_RETURN(ckpt::FileEntry index_file, await_index(job, r, deadline));
      COHORT_ASSIGN_OR_RETURN(std::string text, read_small_file(fs_, tmp / index_file.name, kMaxIndex));
      auto index = ckpt::parse_rank_index(text);
      if (!index.ok()) return index.status().with_context(index_file.name);
      if (index->rank != r || index->step != job.step || index->nonce != job.nonce) {
        return Status(Code::kDataLoss, index_file.name + " belongs to another save (rank " +
                                           std::to_string(index->rank) + ", step " + std::to_string(index->step) +
                                           ", nonce " + index->nonce + ")");
      }
      m.files.push_back(index->data);
      m.files.push_back(index_file);
    }
    COHORT_TRY(durable_write(fs_, tmp / kManifest, ckpt::encode(m)));

    // Fence and publish under the lock, so an older attempt cannot slip in between.
    COHORT_ASSIGN_OR_RETURN(auto lock, fs_.lock(o_.dir / kLock));
    if (int newest = newest_committed_attempt(); newest > ctx_.attempt) {
      return Status(Code::kFenced, "checkpoint step " + std::to_string(job.step) + " refused: attempt " +
                                       std::to_string(newest) + " has committed checkpoints since this save began");
    }
    const fs::path final_dir = o_.dir / ckpt::step_dir_name(job.step);
    if (fs_.exists(final_dir)) {
      // Replace atomically: after the exchange the old checkpoint sits under the temporary name.
      COHORT_TRY(fs_.exchange(tmp, final_dir));
      COHORT_TRY(fs_.sync_dir(o_.dir));
      (void)fs_.remove_all(tmp);
    } else {
      COHORT_TRY(fs_.rename(tmp, final_dir));
      COHORT_TRY(fs_.sync_dir(o_.dir));
    }
    COHORT_TRY(durable_write(fs_, o_.dir / kLatest, ckpt::step_dir_name(job.step) + "\n"));
    retain(job.step);
    tell_runner("checkpoint", job.step);
    return {};
  };
  Status s = attempt();
  if (!s.ok() && fs_.exists(tmp)) (void)fs_.remove_all(tmp);
  return s;
}

// The runner reports these two files (the step restored, the newest step committed, each with
// its file's time), so an attempt shows where it resumed and what a preemption cost. Best effort:
// a checkpoint is not failed for a note about it.
void Checkpointer::Impl::tell_runner(const char* name, std::int64_t step) {
  if (ctx_.run_dir.empty()) return;
  const fs::path path = ctx_.run_dir / name;
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << step << "\n";
    if (!out.flush()) return;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) logger()->warn("cannot tell the runner of {} step {}: {}: {}", name, step, path.string(), ec.message());
}

std::vector<std::int64_t> Checkpointer::Impl::committed_steps() {
  std::vector<std::int64_t> steps;
  auto names = fs_.list(o_.dir);
  if (!names.ok()) return steps;
  for (const auto& n : *names) {
    std::int64_t step = ckpt::parse_step_dir_name(n);
    if (step >= 0 && fs_.exists(o_.dir / n / kManifest)) steps.push_back(step);
  }
  std::sort(steps.rbegin(), steps.rend());
  return steps;
}

int Checkpointer::Impl::newest_committed_attempt() {
  int newest = 0;
  for (std::int64_t step : committed_steps()) {
    auto text = read_small_file(fs_, o_.dir / ckpt::step_dir_name(step) / kManifest, kMaxIndex);
    if (!text.ok()) continue;
    auto m = ckpt::parse_manifest(*text);
    if (m.ok()) newest = std::max(newest, m->attempt);
  }
  return newest;
}

void Checkpointer::Impl::retain(std::int64_t committed_step) {
  int kept = 0;
  for (std::int64_t step : committed_steps()) {
    const fs::path path = o_.dir / ckpt::step_dir_name(step);
    bool keep = step == committed_step;
    if (step < committed_step) keep = ++kept < o_.keep_last;  // the one just committed counts as the first
    if (step > committed_step) {
      // A later step from an earlier attempt that this attempt did not resume from (it was
      // corrupt, or the job started over): superseded by what this attempt now writes.
      auto text = read_small_file(fs_, path / kManifest, kMaxIndex);
      auto m = text.ok() ? ckpt::parse_manifest(*text) : Result<ckpt::Manifest>(text.status());
      keep = m.ok() && m->attempt >= ctx_.attempt;
    }
    if (!keep) {
      // Retired by a rename (instant, and restore no longer sees it); the bytes are deleted off
      // the caller's path: unlinking a 1 GiB file costs about 0.3 s of page-cache teardown.
      const fs::path retired = o_.dir / (path.filename().string() + ".tmp-retired-" + fresh_nonce());
      logger()->debug("checkpoint retention: removing {}", path.string());
      if (fs_.rename(path, retired).ok()) {
        retired_.push_back(retired);
      } else {
        (void)fs_.remove_all(path);
      }
    }
  }
  // Temporary directories and files of saves that died; ours was just renamed away.
  auto names = fs_.list(o_.dir);
  if (names.ok()) {
    for (const auto& n : *names) {
      const fs::path p = o_.dir / n;
      if (n.find(".tmp-") != std::string::npos && std::find(retired_.begin(), retired_.end(), p) == retired_.end()) {
        retired_.push_back(p);
      }
    }
  }
  if (retired_.empty()) return;
  if (deleter_.joinable()) deleter_.join();
  deleter_ = std::thread([this, victims = std::exchange(retired_, {})] {
    for (const auto& v : victims)
      (void)fs_.remove_all(v);
  });
}

Result<Restored> Checkpointer::Impl::load(std::int64_t step) {
  const fs::path path = o_.dir / ckpt::step_dir_name(step);
  COHORT_ASSIGN_OR_RETURN(std::string text, read_small_file(fs_, path / kManifest, kMaxIndex));
  auto manifest = ckpt::parse_manifest(text);
  if (!manifest.ok()) return Status(Code::kDataLoss, (path / kManifest).string() + ": " + manifest.status().message());
  if (manifest->world_size != ctx_.world_size) {
    return failed_precondition("checkpoint " + path.string() + " was written by " +
                               std::to_string(manifest->world_size) + " ranks and this job has " +
                               std::to_string(ctx_.world_size) +
                               "; resharding is not supported: run with the same number of ranks, or move the "
                               "checkpoint directory aside to start over");
  }
  const std::string index_name = ckpt::index_file_name(ctx_.rank);
  const ckpt::FileEntry* want_index = manifest->find(index_name);
  COHORT_ASSIGN_OR_RETURN(ckpt::FileEntry index_file, ckpt::describe_file(fs_, path / index_name));
  if (index_file.bytes != want_index->bytes || index_file.xxh3 != want_index->xxh3) {
    return Status(Code::kDataLoss, (path / index_name).string() + " does not match the manifest (size " +
                                       std::to_string(index_file.bytes) + ", expected " +
                                       std::to_string(want_index->bytes) + ", or its checksum differs)");
  }
  COHORT_ASSIGN_OR_RETURN(std::string index_text, read_small_file(fs_, path / index_name, kMaxIndex));
  auto index = ckpt::parse_rank_index(index_text);
  if (!index.ok()) return Status(Code::kDataLoss, (path / index_name).string() + ": " + index.status().message());
  const ckpt::FileEntry* want_data = manifest->find(index->data.name);
  if (index->rank != ctx_.rank || index->nonce != manifest->nonce || want_data == nullptr) {
    return Status(Code::kDataLoss, (path / index_name).string() + " belongs to another save");
  }
  Restored r;
  r.step = manifest->step;
  r.attempt = manifest->attempt;
  r.path = path;
  r.metadata_json = index->metadata_json;
  COHORT_ASSIGN_OR_RETURN(r.tensors, ckpt::read_data_file(fs_, path / want_data->name, *want_data, index->tensors));
  return r;
}

Result<std::optional<Restored>> Checkpointer::Impl::restore_latest() {
  // Rank 0 walks the committed checkpoints newest first; every rank verifies its own shard of
  // each candidate, and all move on together, so no two ranks ever restore different steps.
  std::vector<std::int64_t> candidates = ctx_.rank == 0 ? committed_steps() : std::vector<std::int64_t>{};
  for (std::size_t i = 0;; ++i) {
    std::int64_t step = (ctx_.rank == 0 && i < candidates.size()) ? candidates[i] : -1;
    COHORT_TRY(comm_.broadcast(std::span<std::int64_t>(&step, 1), 0).with_context("restore"));
    if (step < 0) return std::optional<Restored>();
    auto loaded = load(step);
    const std::int64_t mine = loaded.ok() ? 0 : loaded.status().code() == Code::kFailedPrecondition ? 2 : 1;
    std::int64_t worst = mine;
    COHORT_TRY(comm_.allreduce(std::span<std::int64_t>(&worst, 1), ReduceOp::kMax).with_context("restore"));
    if (worst == 0) {
      if (ctx_.rank == 0) tell_runner("restored", step);
      return std::optional<Restored>(std::move(loaded).value());
    }
    if (worst == 2) {
      if (mine == 2) return loaded.status();
      return failed_precondition("checkpoint step " + std::to_string(step) +
                                 " was written by a different number of ranks");
    }
    if (mine != 0) {
      logger()->warn("skipping checkpoint step {}: {}; trying the previous one", step, loaded.status().message());
    } else if (ctx_.rank == 0) {
      logger()->warn("skipping checkpoint step {}: another rank's shard did not verify; trying the previous one", step);
    }
  }
}

const RestoredTensor* Restored::find(std::string_view name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<std::unique_ptr<Checkpointer>> Checkpointer::open(const Context& ctx, Communicator& comm,
                                                         CheckpointOptions options) {
  return open(ctx, comm, std::move(options), FileSystem::posix());
}

Result<std::unique_ptr<Checkpointer>> Checkpointer::open(const Context& ctx, Communicator& comm,
                                                         CheckpointOptions options, FileSystem& f) {
  if (options.dir.empty()) options.dir = ctx.checkpoint_dir;
  if (options.dir.empty()) {
    return invalid_argument(
        "no checkpoint directory: set CheckpointOptions.dir, or COHORT_CHECKPOINT_DIR (cohort run --checkpoint-dir)");
  }
  if (options.keep_last < 1) return invalid_argument("keep_last must be at least 1");
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec || !fs::is_directory(options.dir)) {
    return Status(Code::kFailedPrecondition, "checkpoint directory " + options.dir.string() + " cannot be created: " +
                                                 (ec ? ec.message() : std::string("it is not a directory")));
  }
  return std::unique_ptr<Checkpointer>(new Checkpointer(std::make_unique<Impl>(ctx, comm, std::move(options), f)));
}

Checkpointer::Checkpointer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Checkpointer::~Checkpointer() = default;
Status Checkpointer::save(std::int64_t step, const ShardView& shard) {
  return impl_->save(step, shard);
}
Status Checkpointer::wait() {
  return impl_->wait();
}
Result<std::optional<Restored>> Checkpointer::restore_latest() {
  return impl_->restore_latest();
}
const fs::path& Checkpointer::dir() const noexcept {
  return impl_->dir();
}
const Status& Checkpointer::last_async_status() const noexcept {
  return impl_->last_async_status();
}

}  // namespace cohort
