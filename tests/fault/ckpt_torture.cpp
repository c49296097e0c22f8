// cohort-ckpt-torture: a checkpointing "job" for fault tests. Its tensors hold values computed
// from (step, rank, tensor, index), so a restore can prove it got one whole save and no mix.
//
//   save   --dir D --step S [--tensors T] [--elems E] [--async] [--keep K]
//          [--crash-at N [--crash-rank R]] [--count-ops] [--continue-on-error]
//   verify --dir D [--expect S1,S2,...]
//   loop   --dir D [--start S]     saves S, S+1, ... and prints "committed S" after each
//
// Exit codes: 0 fine; 1 an error; 3 restored data that is not one whole save; 4 a restored step
// that was not expected; 5 fenced; 6 written by another number of ranks.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

#include "cohort/checkpoint.hpp"
#include "cohort/log.hpp"
#include "faulty_file_system.hpp"

namespace {

std::uint32_t value(std::int64_t step, int rank, int tensor, std::size_t i) {
  std::uint64_t x = static_cast<std::uint64_t>(step) * 0x9E3779B97F4A7C15ULL ^
                    (static_cast<std::uint64_t>(rank) << 40) ^ (static_cast<std::uint64_t>(tensor) << 24) ^ i;
  x ^= x >> 31;
  return static_cast<std::uint32_t>(x * 0xBF58476D1CE4E5B9ULL >> 32);
}

struct Options {
  std::string dir;
  std::int64_t step = 1;
  int tensors = 40;
  std::size_t elems = 1024;
  bool async = false;
  int keep = 2;
  int crash_at = 0;
  int crash_rank = 0;
  bool count_ops = false;
  bool continue_on_error = false;
  std::string expect;
};

int save_one(cohort::Checkpointer& c, const cohort::Context& ctx, const Options& o, std::int64_t step) {
  std::vector<std::vector<std::uint32_t>> data(static_cast<std::size_t>(o.tensors));
  cohort::ShardView shard;
  for (int t = 0; t < o.tensors; ++t) {
    auto& v = data[static_cast<std::size_t>(t)];
    v.resize(o.elems);
    for (std::size_t i = 0; i < o.elems; ++i)
      v[i] = value(step, ctx.rank, t, i);
    shard.tensors.push_back({"t" + std::to_string(t), v.data(), v.size() * sizeof(std::uint32_t)});
  }
  shard.metadata_json = "{\"step\":" + std::to_string(step) + ",\"elems\":" + std::to_string(o.elems) + "}";
  cohort::Status s = c.save(step, shard);
  if (s.ok() && o.async) s = c.wait();
  if (s.code() == cohort::Code::kFenced) {
    std::fprintf(stderr, "save refused: %s\n", s.to_string().c_str());
    return 5;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "save failed: %s\n", s.to_string().c_str());
    if (o.continue_on_error) {
      std::printf("continuing after a failed save\n");
      return 0;
    }
    return 1;
  }
  return 0;
}

int verify(cohort::Checkpointer& c, const cohort::Context& ctx, const Options& o) {
  auto r = c.restore_latest();
  if (!r.ok()) {
    std::fprintf(stderr, "restore failed: %s\n", r.status().to_string().c_str());
    return r.status().code() == cohort::Code::kFailedPrecondition ? 6 : 1;
  }
  if (!r->has_value()) {
    std::printf("no checkpoint\n");
    return o.expect.empty() ? 0 : 4;
  }
  const cohort::Restored& x = **r;
  for (const auto& t : x.tensors) {
    const int index = std::stoi(t.name.substr(1));
    const std::size_t n = t.bytes.size() / sizeof(std::uint32_t);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint32_t v = 0;
      std::memcpy(&v, t.bytes.data() + i * sizeof v, sizeof v);
      if (v != value(x.step, ctx.rank, index, i)) {
        std::printf("MIXED: step %lld tensor %s element %zu\n", static_cast<long long>(x.step), t.name.c_str(), i);
        return 3;
      }
    }
  }
  std::printf("restored step %lld with %zu tensors\n", static_cast<long long>(x.step), x.tensors.size());
  if (!o.expect.empty()) {
    std::set<std::int64_t> allowed;
    std::stringstream in(o.expect);
    for (std::string s; std::getline(in, s, ',');)
      allowed.insert(std::stoll(s));
    if (!allowed.count(x.step)) return 4;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"checkpoint fault-test job"};
  app.require_subcommand(1);
  Options o;
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--dir", o.dir)->required();
    sub->add_option("--tensors", o.tensors);
    sub->add_option("--elems", o.elems);
    sub->add_flag("--async", o.async);
    sub->add_option("--keep", o.keep);
  };
  auto* save = app.add_subcommand("save");
  add_common(save);
  save->add_option("--step", o.step);
  save->add_option("--crash-at", o.crash_at);
  save->add_option("--crash-rank", o.crash_rank);
  save->add_flag("--count-ops", o.count_ops);
  save->add_flag("--continue-on-error", o.continue_on_error);
  auto* check = app.add_subcommand("verify");
  add_common(check);
  check->add_option("--expect", o.expect);
  auto* loop = app.add_subcommand("loop");
  add_common(loop);
  loop->add_option("--start", o.step);
  CLI11_PARSE(app, argc, argv);

  auto ctx = cohort::Context::from_environment();
  if (!ctx.ok()) return 1;
  cohort::init_logging(*ctx, spdlog::level::warn);
  auto comm = cohort::Communicator::create(*ctx);
  if (!comm.ok()) return 1;
  cohort::testing::FaultyFileSystem faulty;
  auto c = cohort::Checkpointer::open(*ctx, **comm, {.dir = o.dir, .keep_last = o.keep, .async = o.async}, faulty);
  if (!c.ok()) {
    std::fprintf(stderr, "open: %s\n", c.status().to_string().c_str());
    return 1;
  }
  if (check->parsed()) return verify(**c, *ctx, o);
  if (save->parsed()) {
    faulty.fail_at(0, 0);  // start counting at the save itself
    if (o.crash_at > 0 && ctx->rank == o.crash_rank) faulty.crash_at(o.crash_at);
    int rc = save_one(**c, *ctx, o, o.step);
    if (o.count_ops) std::printf("ops %d\n", faulty.ops());
    return rc;
  }
  for (std::int64_t step = o.step;; ++step) {
    if (int rc = save_one(**c, *ctx, o, step); rc != 0) return rc;
    if (ctx->rank == 0) {
      std::printf("committed %lld\n", static_cast<long long>(step));
      std::fflush(stdout);
    }
  }
}
