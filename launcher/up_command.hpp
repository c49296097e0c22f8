// `cohort up` and `cohort down`: the embedded default. `up` starts a manager with the local
// provider in the background on a state directory and writes DIR/env; `down` stops it and every
// runner it started.
#pragma once

#include <string>

#include "cli_common.hpp"

namespace cohort::cli {

struct UpOptions {
  std::string state_dir;
  std::string listen = "127.0.0.1:0";
  bool tls = false;  // init with a self-signed certificate (only when DIR is new)
};

int run_up(const UpOptions& options);
int run_down(const std::string& state_dir);

// Registers `cohort up` and `cohort down`.
void add_up_down_commands(CLI::App& app, Commands& commands);

}  // namespace cohort::cli
