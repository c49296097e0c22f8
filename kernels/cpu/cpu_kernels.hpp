// The CPU backend of kernels/: called by dispatch.cpp once it has checked the arguments, and by
// the tests and the benchmark to reach one instruction-set path on purpose.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "cohort/collectives.hpp"
#include "cohort/status.hpp"
#include "kernels/kernels.hpp"

namespace cohort::kernels::cpu {

enum class Isa {
  kPortable,  // plain C++ loops over element_ops.hpp (what the compiler makes of them for x86-64)
  kAvx2,      // AVX2 + F16C intrinsics, 8 fp32 (4 fp64) lanes; tails through element_ops.hpp
};

// kAvx2 where the CPU and the OS support AVX2 and F16C, kPortable elsewhere. Probed once.
Isa best_isa() noexcept;
std::string_view isa_name(Isa isa) noexcept;

// REQUIRES for all: arguments checked as dispatch.cpp does (non-null where count > 0, no partial
// overlap, a supported dtype or pair), and isa is kPortable or what best_isa() returned.
Status reduce(void* inout, const void* in, std::size_t count, DType dtype, ReduceOp op, Isa isa);
Status scale(void* data, std::size_t count, DType dtype, double factor, Isa isa);
// The conversions only (fp32 <-> bf16, fp32 <-> fp16); equal types are a copy, done by the caller.
Status cast(void* dst, DType dst_type, const void* src, DType src_type, std::size_t count, Isa isa);

void copy(void* dst, const void* src, std::size_t bytes);
void pack(MutableBufferView dst, std::span<const ConstBufferView> srcs);
void unpack(std::span<const MutableBufferView> dsts, ConstBufferView src);

}  // namespace cohort::kernels::cpu
