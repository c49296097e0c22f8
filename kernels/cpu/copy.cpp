// CPU copy, pack and unpack: memcpy per tensor (glibc's memcpy is already vectorized and uses
// non-temporal stores for large copies).
#include <cstring>

#include "kernels/cpu/cpu_kernels.hpp"

namespace cohort::kernels::cpu {

void copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes != 0) std::memcpy(dst, src, bytes);
}

void pack(MutableBufferView dst, std::span<const ConstBufferView> srcs) {
  auto* out = static_cast<unsigned char*>(dst.data);
  for (const ConstBufferView& s : srcs) {
    copy(out, s.data, s.bytes);
    out += s.bytes;
  }
}

void unpack(std::span<const MutableBufferView> dsts, ConstBufferView src) {
  const auto* in = static_cast<const unsigned char*>(src.data);
  for (const MutableBufferView& d : dsts) {
    copy(d.data, in, d.bytes);
    in += d.bytes;
  }
}

}  // namespace cohort::kernels::cpu
