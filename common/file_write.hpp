// Writing whole buffers to descriptors and small files, the ways several binaries need, and
// reading a small file back whole.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "cohort/status.hpp"

namespace cohort {

// Every byte of `data` to `fd`, again after EINTR and short writes. The error names `what`.
Status write_all(int fd, std::string_view data, std::string_view what = {});

// How much of a crash of the machine a replaced file survives.
enum class Durability {
  kProcess,  // not fsynced: for files that describe live processes
  kMachine,  // the file, then its directory, fsynced: state that must outlive a power cut
};

// `data` to `path` through a temporary beside it (`path.tmp-<pid>`, created with `mode`) renamed
// into place, so a reader never sees half a file. On failure the temporary is removed and `path`
// is untouched.
Status write_file_replacing(const std::filesystem::path& path, std::string_view data, mode_t mode,
                            Durability durability = Durability::kProcess);

// The whole of a small file; "" when it cannot be opened or read (a caller that must tell an
// empty file from a missing one checks first).
std::string read_whole_file(const std::filesystem::path& path);

}  // namespace cohort
