// Writing whole buffers to descriptors and small files, the ways several binaries need.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>

#include "cohort/status.hpp"

namespace cohort {

// Every byte of `data` to `fd`, again after EINTR and short writes. The error names `what`.
Status write_all(int fd, std::string_view data, std::string_view what = {});

// `data` to `path` through a temporary beside it (created with `mode`) renamed into place, so a
// reader never sees half a file. Not fsynced: for files that describe live processes, not state
// that must outlive a crash of the machine.
Status write_file_replacing(const std::filesystem::path& path, std::string_view data, mode_t mode);

}  // namespace cohort
