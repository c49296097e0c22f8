// common/file_write: a replaced file is whole or untouched, with or without fsync.
#include "file_write.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace cohort {
namespace {

namespace fs = std::filesystem;

class FileWriteTest : public ::testing::TestWithParam<Durability> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cohort-file-write-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_P(FileWriteTest, ReplacesWithTheModeAndLeavesNoTemporary) {
  const fs::path f = dir_ / "state.json";
  ASSERT_TRUE(write_file_replacing(f, "one", 0600, GetParam()).ok());
  ASSERT_TRUE(write_file_replacing(f, "two", 0640, GetParam()).ok());
  EXPECT_EQ(read_whole_file(f), "two");
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "no temporary left";
}

TEST_P(FileWriteTest, AFailureNamesTheFileAndLeavesTheOldContents) {
  const fs::path f = dir_ / "kept";
  ASSERT_TRUE(write_file_replacing(f, "old", 0644, GetParam()).ok());
  // A directory in the way of the rename: the write succeeds, the rename fails.
  const fs::path blocked = dir_ / "blocked";
  fs::create_directories(blocked / "inside");
  const Status s = write_file_replacing(blocked, "new", 0644, GetParam());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(blocked.string()), std::string::npos) << s.to_string();
  EXPECT_EQ(read_whole_file(f), "old");
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  const Status missing = write_file_replacing(dir_ / "no" / "such" / "dir", "x", 0644, GetParam());
  EXPECT_NE(missing.message().find("no/such/dir.tmp-"), std::string::npos) << missing.to_string();
}

INSTANTIATE_TEST_SUITE_P(BothDurabilities, FileWriteTest,
                         ::testing::Values(Durability::kProcess, Durability::kMachine));

TEST(ReadWholeFileTest, ReadsEveryByteAndNothingFromAMissingFile) {
  const fs::path dir = fs::temp_directory_path() / ("read-whole-file-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string bytes = std::string("line one\n\0binary", 17) + std::string(70000, 'x');
  std::ofstream(dir / "f", std::ios::binary) << bytes;
  EXPECT_EQ(read_whole_file(dir / "f"), bytes);
  EXPECT_EQ(read_whole_file(dir / "missing"), "");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cohort
