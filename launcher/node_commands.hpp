// `cohort node list|drain`: NodeService from the command line.
#pragma once

#include "cli_common.hpp"

namespace cohort::cli {

void add_node_commands(CLI::App& app, Commands& commands);

}  // namespace cohort::cli
