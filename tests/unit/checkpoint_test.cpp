// Checkpointer in a world of one: the commit protocol, restore's verification, retention,
// fencing and asynchronous saves. Multi-rank saves and real crashes are in tests/fault.
#include "cohort/checkpoint.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "checkpoint/manifest.hpp"
#include "cohort/log.hpp"
#include "faulty_file_system.hpp"

namespace cohort {
namespace {

namespace fs = std::filesystem;

// Tensor contents that are a function of the step, so a restore can tell which save it came from.
std::vector<float> weights_for(std::int64_t step, std::size_t n) {
  std::vector<float> w(n);
  for (std::size_t i = 0; i < n; ++i)
    w[i] = static_cast<float>(step) * 1000.0f + static_cast<float>(i);
  return w;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cohort-ckpt-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ctx_.job_id = "unit";
    comm_ = std::move(Communicator::create(ctx_)).value();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    set_logger(std::make_shared<spdlog::logger>("test", sink));
  }
  void TearDown() override {
    set_logger(nullptr);
    fs::remove_all(dir_);
  }

  std::unique_ptr<Checkpointer> open(CheckpointOptions o = {}, FileSystem* f = nullptr) {
    if (o.dir.empty()) o.dir = dir_;
    auto c = f ? Checkpointer::open(ctx_, *comm_, o, *f) : Checkpointer::open(ctx_, *comm_, o);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  Status save(Checkpointer& c, std::int64_t step, std::size_t n = 1000) {
    auto w = weights_for(step, n);
    std::int64_t counter = step * 7;
    ShardView shard{{{"model/w", w.data(), w.size() * sizeof(float)}, {"counter", &counter, sizeof counter}},
                    R"({"step":)" + std::to_string(step) + "}"};
    return c.save(step, shard);
  }
  // The restored step, checking that every tensor matches that step.
  std::int64_t restored_step(Checkpointer& c) {
    auto r = c.restore_latest();
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (!r.ok() || !r->has_value()) return -1;
    const Restored& x = **r;
    const RestoredTensor* w = x.find("model/w");
    const RestoredTensor* counter = x.find("counter");
    EXPECT_TRUE(w && counter);
    if (!w || !counter) return -2;
    auto want = weights_for(x.step, w->bytes.size() / sizeof(float));
    EXPECT_EQ(std::memcmp(w->bytes.data(), want.data(), w->bytes.size()), 0) << "weights of a different step";
    std::int64_t k = 0;
    std::memcpy(&k, counter->bytes.data(), sizeof k);
    EXPECT_EQ(k, x.step * 7);
    EXPECT_EQ(x.metadata_json, R"({"step":)" + std::to_string(x.step) + "}");
    return x.step;
  }
  fs::path step_dir(std::int64_t step) const { return dir_ / ckpt::step_dir_name(step); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(dir_))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
  Context ctx_;
  std::unique_ptr<Communicator> comm_;
  std::ostringstream log_;
};

TEST_F(CheckpointTest, NothingToRestoreInAnEmptyDirectory) {
  auto c = open();
  auto r = c->restore_latest();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(CheckpointTest, SaveThenRestoreTheNewest) {
  auto c = open();
  ASSERT_TRUE(save(*c, 10).ok());
  ASSERT_TRUE(save(*c, 20).ok());
  EXPECT_EQ(restored_step(*c), 20);
  std::ifstream latest(dir_ / "latest");
  std::string line;
  std::getline(latest, line);
  EXPECT_EQ(line, ckpt::step_dir_name(20));
  EXPECT_TRUE(fs::exists(step_dir(20) / "MANIFEST.json"));
}

// The runner reports what an attempt restored and saved from two files in its run directory.
TEST_F(CheckpointTest, TheRunnerIsToldWhatWasCommittedAndRestored) {
  const fs::path run = dir_.string() + "-run";
  fs::create_directories(run);
  ctx_.run_dir = run;
  auto word = [&](const char* name) {
    std::ifstream in(run / name);
    std::string w;
    in >> w;
    return w;
  };
  auto c = open();
  ASSERT_TRUE(c->restore_latest().ok());
  EXPECT_FALSE(fs::exists(run / "restored")) << "nothing restored, nothing said";
  ASSERT_TRUE(save(*c, 10).ok());
  EXPECT_EQ(word("checkpoint"), "10");
  ASSERT_TRUE(save(*c, 20).ok());
  EXPECT_EQ(word("checkpoint"), "20");
  EXPECT_EQ(restored_step(*c), 20);
  EXPECT_EQ(word("restored"), "20");
  fs::remove_all(run);
}

TEST_F(CheckpointTest, RetentionKeepsTheLastN) {
  auto c = open({.keep_last = 2});
  for (int step : {1, 2, 3, 4}) {
    ASSERT_TRUE(save(*c, step).ok());
  }
  EXPECT_EQ(restored_step(*c), 4);
  c.reset();  // old checkpoints are deleted in the background; the destructor waits for that
  EXPECT_EQ(names(),
            (std::vector<std::string>{".commit.lock", "latest", ckpt::step_dir_name(3), ckpt::step_dir_name(4)}));
}

TEST_F(CheckpointTest, ADirectoryWithoutManifestDoesNotExist) {
  auto c = open();
  ASSERT_TRUE(save(*c, 1).ok());
  ASSERT_TRUE(save(*c, 2).ok());
  fs::remove(step_dir(2) / "MANIFEST.json");
  fs::create_directories(dir_ / (ckpt::step_dir_name(3) + ".tmp-0123"));  // a save that died
  EXPECT_EQ(restored_step(*c), 1);
}

TEST_F(CheckpointTest, FlippedByteIsDetectedAndThePreviousUsed) {
  auto c = open();
  ASSERT_TRUE(save(*c, 1).ok());
  ASSERT_TRUE(save(*c, 2).ok());
  {
    std::fstream f(step_dir(2) / "rank-00000.data", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1234);
    char b = 0;
    f.read(&b, 1);
    f.seekp(1234);
    b = static_cast<char>(b ^ 0x10);
    f.write(&b, 1);
  }
  EXPECT_EQ(restored_step(*c), 1);
  EXPECT_NE(log_.str().find("rank-00000.data checksum mismatch"), std::string::npos) << log_.str();
  EXPECT_NE(log_.str().find("skipping checkpoint step 2"), std::string::npos) << log_.str();
}

TEST_F(CheckpointTest, TruncatedShardIsDetectedAndThePreviousUsed) {
  auto c = open();
  ASSERT_TRUE(save(*c, 1).ok());
  ASSERT_TRUE(save(*c, 2).ok());
  fs::resize_file(step_dir(2) / "rank-00000.data", 100);
  EXPECT_EQ(restored_step(*c), 1);
  EXPECT_NE(log_.str().find("rank-00000.data is 100 bytes, the manifest says 4008 (truncated)"), std::string::npos)
      << log_.str();
}

TEST_F(CheckpointTest, EditedIndexIsDetected) {
  auto c = open();
  ASSERT_TRUE(save(*c, 1).ok());
  ASSERT_TRUE(save(*c, 2).ok());
  std::ofstream(step_dir(2) / "rank-00000.json", std::ios::app) << " ";
  EXPECT_EQ(restored_step(*c), 1);
  EXPECT_NE(log_.str().find("rank-00000.json does not match the manifest"), std::string::npos) << log_.str();
}

TEST_F(CheckpointTest, SavingTheSameStepAgainReplacesIt) {
  auto c = open();
  ASSERT_TRUE(save(*c, 5, 10).ok());
  ASSERT_TRUE(save(*c, 5, 2000).ok());
  auto r = c->restore_latest();
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->find("model/w")->bytes.size(), 2000 * sizeof(float));
  c.reset();
  EXPECT_EQ(names().size(), 3u) << "the replaced checkpoint was not removed";
}

TEST_F(CheckpointTest, StaleAttemptIsFenced) {
  ctx_.attempt = 2;
  auto newer = open();
  ASSERT_TRUE(save(*newer, 100).ok());
  ctx_.attempt = 1;
  auto stale = open();
  Status s = save(*stale, 150);
  EXPECT_EQ(s.code(), Code::kFenced) << s.to_string();
  EXPECT_NE(s.message().find("attempt 2 has already committed"), std::string::npos) << s.message();
  EXPECT_EQ(restored_step(*stale), 100);
  EXPECT_FALSE(fs::exists(step_dir(150)));
}

TEST_F(CheckpointTest, ALaterAttemptSupersedesAnEarlierAttemptsLaterSteps) {
  ctx_.attempt = 1;
  auto first = open({.keep_last = 1});
  ASSERT_TRUE(save(*first, 200).ok());
  ctx_.attempt = 2;  // say step 200 did not verify for attempt 2, which resumed from scratch
  auto second = open({.keep_last = 1});
  ASSERT_TRUE(save(*second, 50).ok());
  EXPECT_EQ(restored_step(*second), 50);
  EXPECT_FALSE(fs::exists(step_dir(200)));
}

TEST_F(CheckpointTest, InvalidShardsAreRefusedWithTheReason) {
  auto c = open();
  float x = 1;
  EXPECT_NE(c->save(1, {{{"a b", &x, 4}}}).message().find("tensor name 'a b'"), std::string::npos);
  EXPECT_NE(c->save(1, {{{"a", &x, 4}, {"a", &x, 4}}}).message().find("appears twice"), std::string::npos);
  EXPECT_NE(c->save(1, {{{"a", &x, 4}}, "{oops"}).message().find("metadata is not valid JSON"), std::string::npos);
  EXPECT_EQ(c->save(-1, {}).code(), Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(step_dir(1)));
}

TEST_F(CheckpointTest, NoDirectoryIsAClearError) {
  auto c = Checkpointer::open(ctx_, *comm_, {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("COHORT_CHECKPOINT_DIR"), std::string::npos);
}

TEST_F(CheckpointTest, AsyncSaveReturnsBeforeWritingAndWaitCommits) {
  auto c = open({.async = true});
  ASSERT_TRUE(save(*c, 1).ok());
  ASSERT_TRUE(save(*c, 2).ok());  // waits for step 1 first
  ASSERT_TRUE(c->wait().ok());
  EXPECT_EQ(restored_step(*c), 2);
}

TEST_F(CheckpointTest, AsyncSnapshotIsTakenAtSave) {
  auto c = open({.async = true});
  std::vector<float> w = weights_for(3, 1 << 20);
  std::int64_t counter = 21;
  ASSERT_TRUE(c->save(3, {{{"model/w", w.data(), w.size() * 4}, {"counter", &counter, 8}}, R"({"step":3})"}).ok());
  std::fill(w.begin(), w.end(), -1.0f);  // the training loop moves on at once
  ASSERT_TRUE(c->wait().ok());
  EXPECT_EQ(restored_step(*c), 3);
}

TEST_F(CheckpointTest, AsyncShardLargerThanStagingIsSavedSynchronously) {
  auto c = open({.async = true, .staging_bytes = 100});
  ASSERT_TRUE(save(*c, 1).ok());
  EXPECT_TRUE(fs::exists(step_dir(1) / "MANIFEST.json")) << "not committed before save returned";
  EXPECT_NE(log_.str().find("saving synchronously"), std::string::npos);
}

TEST_F(CheckpointTest, FailedAsyncSaveIsReportedAndTheNextOneStillRuns) {
  testing::FaultyFileSystem faulty;
  auto c = open({.async = true}, &faulty);
  faulty.fail_at(3, ENOSPC);  // inside the background writer
  ASSERT_TRUE(save(*c, 1).ok()) << "staging succeeds; the write fails later";
  Status failed = c->wait();
  EXPECT_EQ(failed.code(), Code::kResourceExhausted) << failed.to_string();
  EXPECT_EQ(c->last_async_status().code(), Code::kResourceExhausted);
  faulty.fail_at(0, 0);
  ASSERT_TRUE(save(*c, 2).ok());
  ASSERT_TRUE(c->wait().ok());
  EXPECT_TRUE(c->last_async_status().ok());
  EXPECT_EQ(restored_step(*c), 2);
}

TEST_F(CheckpointTest, EveryInjectedFailureLeavesThePreviousCheckpoint) {
  testing::FaultyFileSystem faulty;
  auto c = open({}, &faulty);
  ASSERT_TRUE(save(*c, 1).ok());
  faulty.fail_at(0, 0);
  ASSERT_TRUE(save(*c, 2).ok());
  const int ops = faulty.ops();
  ASSERT_GT(ops, 10);
  std::int64_t last = 2;
  for (int n = 1; n <= ops; ++n) {
    faulty.fail_at(n, ENOSPC);
    Status s = save(*c, 100 + n);
    faulty.fail_at(0, 0);
    const std::int64_t got = restored_step(*c);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.to_string();
    }
    // A failure before the rename leaves the previous checkpoint; one after it (the folder's
    // fsync, `latest`, retention) may leave the new one, complete. Never anything else.
    EXPECT_TRUE(got == last || got == 100 + n) << "operation " << n << " restored " << got << ", last " << last;
    if (s.ok()) {
      EXPECT_EQ(got, 100 + n) << "operation " << n;
    }
    last = got;
    // Retired checkpoints are deleted in the background; anything else temporary must be gone.
    for (const auto& name : names()) {
      if (name.find(".tmp-retired-") == std::string::npos) {
        EXPECT_EQ(name.find(".tmp-"), std::string::npos) << "operation " << n << ": " << name;
      }
    }
  }
}

}  // namespace
}  // namespace cohort
