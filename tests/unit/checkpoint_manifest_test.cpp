#include "checkpoint/manifest.hpp"

#include <gtest/gtest.h>

namespace cohort::ckpt {
namespace {

RankIndex sample_index() {
  return {1, 200, 2, "00ff", {"rank-00001.data", 12, 99}, {{"w", 0, 8}, {"b", 8, 4}}, R"({"epoch":3})"};
}

TEST(ManifestTest, RankIndexRoundTrips) {
  auto back = parse_rank_index(encode(sample_index()));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->rank, 1);
  EXPECT_EQ(back->step, 200);
  EXPECT_EQ(back->attempt, 2);
  EXPECT_EQ(back->data.xxh3, 99u);
  ASSERT_EQ(back->tensors.size(), 2u);
  EXPECT_EQ(back->tensors[1].name, "b");
  EXPECT_EQ(back->metadata_json, R"({"epoch":3})");
}

TEST(ManifestTest, ManifestRoundTripsAndNeedsEveryRanksFiles) {
  Manifest m{kFormatVersion, 7, 2, 1, "abc", 1234, {}};
  for (int r = 0; r < 2; ++r) {
    m.files.push_back({data_file_name(r), 10, 1});
    m.files.push_back({index_file_name(r), 20, 2});
  }
  auto back = parse_manifest(encode(m));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->world_size, 2);
  ASSERT_NE(back->find("rank-00001.json"), nullptr);
  m.files.pop_back();
  auto missing = parse_manifest(encode(m));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("rank 1"), std::string::npos) << missing.status().message();
}

TEST(ManifestTest, ErrorsNameTheFieldPath) {
  std::string text = encode(sample_index());
  auto bad_offset = text;
  bad_offset.replace(bad_offset.find("\"offset\": 8"), 11, "\"offset\": 9");
  auto r = parse_rank_index(bad_offset);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tensors[1].offset"), std::string::npos) << r.status().message();

  auto bad_type = text;
  bad_type.replace(bad_type.find("\"step\": 200"), 11, "\"step\": \"x\"");
  r = parse_rank_index(bad_type);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("field step has the wrong type"), std::string::npos) << r.status().message();

  EXPECT_FALSE(parse_rank_index("{not json").ok());
  EXPECT_FALSE(parse_manifest("[]").ok());
  auto traversal = parse_manifest(
      R"({"format":1,"step":1,"world_size":1,"attempt":1,"nonce":"a","created_unix_ms":0,
          "files":[{"name":"../etc/passwd","bytes":1,"xxh3":1}]})");
  ASSERT_FALSE(traversal.ok());
  EXPECT_NE(traversal.status().message().find("files[0].name"), std::string::npos);
}

TEST(ManifestTest, StepDirectoryNames) {
  EXPECT_EQ(step_dir_name(200), "step-00000000000000000200");
  EXPECT_EQ(parse_step_dir_name("step-00000000000000000200"), 200);
  EXPECT_EQ(parse_step_dir_name("step-00000000000000000200.tmp-ab"), -1);
  EXPECT_EQ(parse_step_dir_name("step-200"), -1);
  EXPECT_EQ(parse_step_dir_name("latest"), -1);
}

}  // namespace
}  // namespace cohort::ckpt
