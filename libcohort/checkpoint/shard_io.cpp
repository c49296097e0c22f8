#include "checkpoint/shard_io.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <thread>

#ifdef COHORT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cohort::ckpt {
namespace {

struct HashState {
  HashState() : s(XXH3_createState()) { XXH3_64bits_reset(s); }
  ~HashState() { XXH3_freeState(s); }
  HashState(const HashState&) = delete;
  HashState& operator=(const HashState&) = delete;
  void update(const void* p, std::size_t n) { XXH3_64bits_update(s, p, n); }
  std::uint64_t digest() const { return XXH3_64bits_digest(s); }
  XXH3_state_t* s;
};

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::uint64_t xxh3(const void* data, std::size_t bytes) {
  return XXH3_64bits(data, bytes);
}

Status copy_to_host(void* dst, const void* src, std::size_t bytes, Device device) {
  if (device == Device::kHost) {
    std::memcpy(dst, src, bytes);
    return {};
  }
#ifdef COHORT_HAVE_CUDA
  cudaError_t err = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
  if (err != cudaSuccess) return Status(Code::kIoError, std::string("cudaMemcpy to host: ") + cudaGetErrorString(err));
  return {};
#else
  return Status(Code::kUnimplemented, "a device tensor needs a libcohort built with CUDA");
#endif
}

Status parallel_copy(void* dst, const void* src, std::size_t bytes) {
  constexpr std::size_t kMinPerThread = std::size_t{32} << 20;
  const std::size_t threads = std::clamp<std::size_t>(std::min<std::size_t>(std::thread::hardware_concurrency(), 8), 1,
                                                      bytes / kMinPerThread + 1);
  if (threads <= 1) {
    std::memcpy(dst, src, bytes);
    return {};
  }
  const std::size_t per = (bytes / threads + 4095) & ~std::size_t{4095};
  std::vector<std::thread> pool;
  for (std::size_t i = 1; i < threads && i * per < bytes; ++i) {
    const std::size_t n = std::min(per, bytes - i * per);
    pool.emplace_back(
        [=] { std::memcpy(static_cast<char*>(dst) + i * per, static_cast<const char*>(src) + i * per, n); });
  }
  std::memcpy(dst, src, std::min(per, bytes));
  for (auto& t : pool)
    t.join();
  return {};
}

Result<FileEntry> write_data_file(FileSystem& fs, const std::filesystem::path& path,
                                  const std::vector<TensorView>& views, std::vector<TensorEntry>& tensors) {
  COHORT_ASSIGN_OR_RETURN(auto file, fs.create(path));
  HashState hash;
  std::unique_ptr<char[]> bounce;  // only for device tensors
  std::uint64_t offset = 0;
  tensors.clear();
  for (const auto& v : views) {
    const char* p = static_cast<const char*>(v.data);
    for (std::size_t done = 0; done < v.bytes;) {
      const std::size_t n = std::min(kChunkBytes, v.bytes - done);
      const char* chunk = p + done;
      if (v.device != Device::kHost) {
        if (!bounce) bounce = std::make_unique<char[]>(kChunkBytes);
        COHORT_TRY(copy_to_host(bounce.get(), chunk, n, v.device));
        chunk = bounce.get();
      }
      hash.update(chunk, n);
      COHORT_TRY(file->append(chunk, n));
      done += n;
    }
    tensors.push_back({v.name, offset, v.bytes});
    offset += v.bytes;
  }
  COHORT_TRY(file->sync());
  COHORT_TRY(file->close());
  return FileEntry{path.filename().string(), offset, hash.digest()};
}

Result<std::vector<RestoredTensor>> read_data_file(FileSystem& fs, const std::filesystem::path& path,
                                                   const FileEntry& expected, const std::vector<TensorEntry>& tensors) {
  COHORT_ASSIGN_OR_RETURN(auto file, fs.open(path));
  COHORT_ASSIGN_OR_RETURN(std::uint64_t size, file->size());
  if (size != expected.bytes) {
    return Status(Code::kDataLoss, path.string() + " is " + std::to_string(size) + " bytes, the manifest says " +
                                       std::to_string(expected.bytes) + (size < expected.bytes ? " (truncated)" : ""));
  }
  HashState hash;
  std::vector<RestoredTensor> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) {
    RestoredTensor r{t.name, ByteBuffer(t.bytes)};
    for (std::size_t done = 0; done < t.bytes;) {
      COHORT_ASSIGN_OR_RETURN(std::size_t n, file->read(r.bytes.data() + done, std::min(kChunkBytes, t.bytes - done)));
      if (n == 0) return Status(Code::kDataLoss, path.string() + " ended early, inside tensor " + t.name);
      hash.update(r.bytes.data() + done, n);
      done += n;
    }
    out.push_back(std::move(r));
  }
  if (hash.digest() != expected.xxh3) {
    return Status(Code::kDataLoss, path.string() + " checksum mismatch: xxh3 " + hex(hash.digest()) +
                                       ", the manifest says " + hex(expected.xxh3));
  }
  return out;
}

Result<FileEntry> describe_file(FileSystem& fs, const std::filesystem::path& path) {
  COHORT_ASSIGN_OR_RETURN(std::string text, read_small_file(fs, path, std::size_t{64} << 20));
  return FileEntry{path.filename().string(), text.size(), xxh3(text.data(), text.size())};
}

}  // namespace cohort::ckpt
