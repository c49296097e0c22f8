// The one durable-write helper, with a failure injected at each of its operations in turn.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "faulty_file_system.hpp"

namespace cohort::testing {
namespace {

namespace fs = std::filesystem;

class DurableWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cohort-durable-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string read(const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  fs::path dir_;
};

TEST_F(DurableWriteTest, WritesAndReplaces) {
  FaultyFileSystem faulty;
  ASSERT_TRUE(durable_write(faulty, dir_ / "latest", "one").ok());
  ASSERT_TRUE(durable_write(faulty, dir_ / "latest", "two").ok());
  EXPECT_EQ(read(dir_ / "latest"), "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "a temporary file is left";
}

TEST_F(DurableWriteTest, AnyFailingStepLeavesTheOldContentsAndNoTemporary) {
  FaultyFileSystem faulty;
  faulty.fail_at(0, 0);
  ASSERT_TRUE(durable_write(faulty, dir_ / "latest", "old").ok());
  faulty.fail_at(0, 0);
  ASSERT_TRUE(durable_write(faulty, dir_ / "latest", "new").ok());
  const int steps = faulty.ops();
  ASSERT_GE(steps, 6) << "create, append, sync, close, rename, fsync dir";
  for (int n = 1; n <= steps; ++n) {
    ASSERT_TRUE(durable_write(faulty, dir_ / "latest", "old").ok());
    faulty.fail_at(n, n % 2 ? EIO : ENOSPC);
    Status s = durable_write(faulty, dir_ / "latest", "newer");
    faulty.fail_at(0, 0);
    ASSERT_FALSE(s.ok()) << "step " << n << " failed silently";
    EXPECT_NE(s.message().find("injected"), std::string::npos) << s.message();
    const std::string now = read(dir_ / "latest");
    // Failing the final fsync of the folder comes after the rename: the new contents may stand.
    if (n == steps) {
      EXPECT_TRUE(now == "old" || now == "newer") << now;
    } else {
      EXPECT_EQ(now, "old") << "step " << n;
    }
    EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "step " << n;
  }
}

TEST_F(DurableWriteTest, FullDiskIsResourceExhausted) {
  FaultyFileSystem faulty;
  faulty.fail_at(2, ENOSPC);  // the append
  Status s = durable_write(faulty, dir_ / "x", "data");
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.to_string();
}

}  // namespace
}  // namespace cohort::testing
