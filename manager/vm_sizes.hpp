// The catalogue of node sizes a cluster can be made of.
#pragma once

#include <string>
#include <vector>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"

namespace cohort::manager {

std::vector<v1::VmSize> vm_sizes();
// NotFound lists the known names.
Result<v1::VmSize> find_vm_size(const std::string& name);

}  // namespace cohort::manager
