// Runs the job spec fuzz target's checks over its seed corpus in the normal (GCC) build, so the
// corpus stays input the parser handles as each file's name says: files named invalid-* must be
// refused with an InvalidArgument, every other file must parse (and round-trip through JSON).
//
// Usage: job_spec_corpus_check CORPUS_DIR
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "spec/job_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1], ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  if (ec || files.empty()) {
    std::fprintf(stderr, "job_spec_corpus_check: no corpus files in %s\n", argv[1]);
    return 1;
  }
  std::sort(files.begin(), files.end());
  int failures = 0;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());  // aborts on a bug
    const auto spec = cohort::spec::parse_job_spec(text);
    const bool want_ok = !file.filename().string().starts_with("invalid");
    if (spec.ok() != want_ok) ++failures;
    std::printf("%s %s: %s\n", spec.ok() == want_ok ? "ok  " : "FAIL", file.filename().c_str(),
                spec.ok() ? "parsed" : spec.status().message().c_str());
  }
  std::printf("%zu files, %d failed\n", files.size(), failures);
  return failures == 0 ? 0 : 1;
}
