// Splits a byte stream into lines and puts a prefix ("[rank 3] ") before each, so the output of
// many ranks stays readable once interleaved. Whole lines only: a line is never split between
// two outputs, which keeps ranks' lines from mixing when each output is one write(2).
#pragma once

#include <string>
#include <string_view>

namespace cohort {

class LinePrefixer {
 public:
  explicit LinePrefixer(std::string prefix) : prefix_(std::move(prefix)) {}

  // Appends the prefixed complete lines of `chunk` to `out`; keeps an unfinished line back.
  void feed(std::string_view chunk, std::string& out);
  // Appends what is held back, ended with a newline (the stream has ended).
  void finish(std::string& out);

 private:
  // A line longer than this is cut and emitted, so a stream without newlines cannot grow the
  // buffer without bound.
  static constexpr std::size_t kMaxLine = 64 * 1024;

  std::string prefix_;
  std::string partial_;
};

}  // namespace cohort
