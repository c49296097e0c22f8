// A build without CUDA: device buffers cannot be reduced, and every call on them says why.
#include "collectives/nccl_backend.hpp"

namespace cohort::detail {

Result<std::unique_ptr<NcclBackend>> NcclBackend::create(Communicator&, int, std::shared_ptr<CommHealth>) {
  return Status(Code::kUnimplemented,
                "device buffers need libcohort built with CUDA and NCCL (this one was built without: see the "
                "'Cohort: GPU paths' line of its configure step)");
}

}  // namespace cohort::detail
