// The one dispatch of kernels/: checks the arguments once for every device, then routes by device
// to cpu/ or cuda/, where type_switch.hpp picks the kernel for the dtype and op.
#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/cpu/cpu_kernels.hpp"
#include "kernels/kernels.hpp"
#include "kernels/type_switch.hpp"
#if COHORT_KERNELS_CUDA
#include "kernels/cuda/cuda_kernels.hpp"
#endif

namespace cohort::kernels {

std::size_t element_size(DType dtype) noexcept {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
  }
  return 0;
}

std::string_view type_label(DType dtype) noexcept {
  switch (dtype) {
    case DType::kFloat32:
      return "fp32";
    case DType::kFloat64:
      return "fp64";
    case DType::kFloat16:
      return "fp16";
    case DType::kBFloat16:
      return "bf16";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
  }
  return "unknown dtype";
}

std::string_view op_label(ReduceOp op) noexcept {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMin:
      return "min";
    case ReduceOp::kMax:
      return "max";
  }
  return "unknown op";
}

namespace {

// Whether [a, a + a_bytes) and [b, b + b_bytes) share a byte.
bool overlap(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes) {
  const auto x = reinterpret_cast<std::uintptr_t>(a);
  const auto y = reinterpret_cast<std::uintptr_t>(b);
  return a_bytes != 0 && b_bytes != 0 && x < y + b_bytes && y < x + a_bytes;
}

Status check_dtype(DType dtype) {
  if (element_size(dtype) == 0) return invalid_argument("unknown dtype " + std::to_string(static_cast<int>(dtype)));
  return {};
}

Status check_device(Device device) {
  switch (device) {
    case Device::kHost:
      return {};
    case Device::kCuda:
#if COHORT_KERNELS_CUDA
      return {};
#else
      return {Code::kUnimplemented,
              "Device::kCuda, but this build has no CUDA kernels (COHORT_WITH_CUDA=OFF, or nvcc or NCCL was not "
              "found at configure time): rebuild with CUDA, or keep the buffers on the host"};
#endif
  }
  return invalid_argument("unknown device " + std::to_string(static_cast<int>(device)));
}

Status null_pointer(std::string_view which) {
  return invalid_argument(std::string(which) + " is null");
}

Status reduce_checked(void* inout, const void* in, std::size_t count, DType dtype, ReduceOp op, Device device,
                      void* stream) {
  COHORT_TRY(check_dtype(dtype));
  if (op != ReduceOp::kSum && op != ReduceOp::kMin && op != ReduceOp::kMax) {
    return invalid_argument("no pairwise " + std::string(op_label(op)) +
                            ": reduce with kSum, then call finish_average() with the number of contributions");
  }
  COHORT_TRY(check_device(device));
  if (count == 0) return {};
  if (inout == nullptr) return null_pointer("inout");
  if (in == nullptr) return null_pointer("in");
  const std::size_t bytes = count * element_size(dtype);
  if (inout != in && overlap(inout, bytes, in, bytes)) {
    return invalid_argument("inout and in overlap without being the same array");
  }
#if COHORT_KERNELS_CUDA
  if (device == Device::kCuda) return cuda::reduce(inout, in, count, dtype, op, stream);
#endif
  (void)stream;
  return cpu::reduce(inout, in, count, dtype, op, cpu::best_isa());
}

Status scale_checked(void* data, std::size_t count, DType dtype, double factor, Device device, void* stream) {
  COHORT_TRY(check_dtype(dtype));
  if (dtype == DType::kInt32 || dtype == DType::kInt64) {
    return invalid_argument("scale supports fp32, fp64, fp16 and bf16, not " + std::string(type_label(dtype)));
  }
  COHORT_TRY(check_device(device));
  if (count == 0) return {};
  if (data == nullptr) return null_pointer("data");
#if COHORT_KERNELS_CUDA
  if (device == Device::kCuda) return cuda::scale(data, count, dtype, factor, stream);
#endif
  (void)stream;
  return cpu::scale(data, count, dtype, factor, cpu::best_isa());
}

Status copy_checked(void* dst, const void* src, std::size_t bytes, Device device, void* stream) {
  COHORT_TRY(check_device(device));
  if (bytes == 0) return {};
  if (dst == nullptr) return null_pointer("dst");
  if (src == nullptr) return null_pointer("src");
  if (overlap(dst, bytes, src, bytes)) return invalid_argument("dst and src overlap");
#if COHORT_KERNELS_CUDA
  if (device == Device::kCuda) return cuda::copy(dst, src, bytes, stream);
#endif
  (void)stream;
  cpu::copy(dst, src, bytes);
  return {};
}

Status cast_checked(void* dst, DType dst_type, const void* src, DType src_type, std::size_t count, Device device,
                    void* stream) {
  COHORT_TRY(check_dtype(dst_type));
  COHORT_TRY(check_dtype(src_type));
  if (dst_type == src_type) {
    if (dst == src) return check_device(device);
    return copy_checked(dst, src, count * element_size(dst_type), device, stream);
  }
  COHORT_TRY(visit_cast(dst_type, src_type, [](auto) -> Status { return {}; }));
  COHORT_TRY(check_device(device));
  if (count == 0) return {};
  if (dst == nullptr) return null_pointer("dst");
  if (src == nullptr) return null_pointer("src");
  if (overlap(dst, count * element_size(dst_type), src, count * element_size(src_type))) {
    return invalid_argument("dst and src overlap");
  }
#if COHORT_KERNELS_CUDA
  if (device == Device::kCuda) return cuda::cast(dst, dst_type, src, src_type, count, stream);
#endif
  (void)stream;
  return cpu::cast(dst, dst_type, src, src_type, count, cpu::best_isa());
}

template <class View>
std::size_t total_bytes(std::span<const View> views) noexcept {
  std::size_t total = 0;
  for (const View& v : views)
    total += v.bytes;
  return total;
}

// The views of pack's sources or unpack's destinations against the packed buffer.
template <class View, class Packed>
Status check_views(std::span<const View> views, Packed packed, std::string_view views_name,
                   std::string_view packed_name) {
  const std::size_t total = total_bytes(views);
  if (packed.bytes < total) {
    return invalid_argument(std::string(packed_name) + " holds " + std::to_string(packed.bytes) + " bytes, the " +
                            std::to_string(views.size()) + " " + std::string(views_name) + " take " +
                            std::to_string(total));
  }
  if (total != 0 && packed.data == nullptr) return null_pointer(packed_name);
  for (std::size_t i = 0; i < views.size(); ++i) {
    const std::string which = std::string(views_name) + "[" + std::to_string(i) + "]";
    if (views[i].bytes != 0 && views[i].data == nullptr) return null_pointer(which);
    if (overlap(views[i].data, views[i].bytes, packed.data, total)) {
      return invalid_argument(which + " overlaps " + std::string(packed_name));
    }
  }
  return {};
}

Status pack_checked(MutableBufferView dst, std::span<const ConstBufferView> srcs, Device device, void* stream) {
  COHORT_TRY(check_views(srcs, dst, "srcs", "dst"));
  COHORT_TRY(check_device(device));
#if COHORT_KERNELS_CUDA
  if (device == Device::kCuda) return cuda::pack(dst, srcs, stream);
#endif
  (void)stream;
  cpu::pack(dst, srcs);
  return {};
}

Status unpack_checked(std::span<const MutableBufferView> dsts, ConstBufferView src, Device device, void* stream) {
  COHORT_TRY(check_views(dsts, src, "dsts", "src"));
  COHORT_TRY(check_device(device));
#if COHORT_KERNELS_CUDA
  if (device == Device::kCuda) return cuda::unpack(dsts, src, stream);
#endif
  (void)stream;
  cpu::unpack(dsts, src);
  return {};
}

}  // namespace

Status reduce(void* inout, const void* in, std::size_t count, DType dtype, ReduceOp op, Device device, void* stream) {
  Status s = reduce_checked(inout, in, count, dtype, op, device, stream);
  if (s.ok()) return s;  // the context string only when there is an error to put it on
  return s.with_context("kernels::reduce(" + std::string(type_label(dtype)) + ", " + std::string(op_label(op)) + ", " +
                        std::to_string(count) + " elements)");
}

Status scale(void* data, std::size_t count, DType dtype, double factor, Device device, void* stream) {
  Status s = scale_checked(data, count, dtype, factor, device, stream);
  if (s.ok()) return s;
  return s.with_context("kernels::scale(" + std::string(type_label(dtype)) + ", " + std::to_string(count) +
                        " elements)");
}

Status finish_average(void* data, std::size_t count, DType dtype, std::size_t n, Device device, void* stream) {
  if (n == 0) return invalid_argument("kernels::finish_average: n is 0; it counts the contributions summed");
  return scale(data, count, dtype, 1.0 / static_cast<double>(n), device, stream);
}

Status cast(void* dst, DType dst_type, const void* src, DType src_type, std::size_t count, Device device,
            void* stream) {
  Status s = cast_checked(dst, dst_type, src, src_type, count, device, stream);
  if (s.ok()) return s;
  return s.with_context("kernels::cast(" + std::string(type_label(src_type)) + " -> " +
                        std::string(type_label(dst_type)) + ", " + std::to_string(count) + " elements)");
}

Status copy(void* dst, const void* src, std::size_t bytes, Device device, void* stream) {
  Status s = copy_checked(dst, src, bytes, device, stream);
  if (s.ok()) return s;
  return s.with_context("kernels::copy(" + std::to_string(bytes) + " bytes)");
}

std::size_t packed_bytes(std::span<const ConstBufferView> views) noexcept {
  return total_bytes(views);
}
std::size_t packed_bytes(std::span<const MutableBufferView> views) noexcept {
  return total_bytes(views);
}

Status pack(MutableBufferView dst, std::span<const ConstBufferView> srcs, Device device, void* stream) {
  Status s = pack_checked(dst, srcs, device, stream);
  if (s.ok()) return s;
  return s.with_context("kernels::pack(" + std::to_string(srcs.size()) + " tensors)");
}

Status unpack(std::span<const MutableBufferView> dsts, ConstBufferView src, Device device, void* stream) {
  Status s = unpack_checked(dsts, src, device, stream);
  if (s.ok()) return s;
  return s.with_context("kernels::unpack(" + std::to_string(dsts.size()) + " tensors)");
}

}  // namespace cohort::kernels
