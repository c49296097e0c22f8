#include "line_prefixer.hpp"

namespace cohort {

void LinePrefixer::feed(std::string_view chunk, std::string& out) {
  while (!chunk.empty()) {
    auto nl = chunk.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(chunk);
      if (partial_.size() >= kMaxLine) finish(out);
      return;
    }
    out += prefix_;
    out += partial_;
    out.append(chunk.substr(0, nl + 1));
    partial_.clear();
    chunk.remove_prefix(nl + 1);
  }
}

void LinePrefixer::finish(std::string& out) {
  if (partial_.empty()) return;
  out += prefix_;
  out += partial_;
  out += '\n';
  partial_.clear();
}

}  // namespace cohort
