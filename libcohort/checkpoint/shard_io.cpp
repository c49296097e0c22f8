#include "checkpoint/shard_io.hpp"

#include <sys/mman.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// A snapshot at least this large is copied with non-temporal stores: it would not stay in the
// caches anyway, and stores that bypass them skip reading every destination line first.
constexpr std::size_t kStreamMinBytes = std::size_t{8} << 20;

#if defined(__x86_64__)
// memcpy with AVX2 stream stores, which need 32-byte aligned destinations: the head up to the
// first 64-byte boundary and the tail are copied plainly.
__attribute__((target("avx2"))) void stream_copy_avx2(std::byte* dst, const std::byte* src, std::size_t bytes) {
  std::size_t i = std::min(bytes, static_cast<std::size_t>(-reinterpret_cast<std::uintptr_t>(dst) & 63));
  std::memcpy(dst, src, i);
  for (; i + 128 <= bytes; i += 128) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 32));
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 64));
    const __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 96));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i), a);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 32), b);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 64), c);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 96), d);
  }
  // Stream stores are weakly ordered: fence them before the thread that reads them is told.
  _mm_sfence();
  std::memcpy(dst + i, src + i, bytes - i);
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");  // also checks the OS saves the registers
  return yes;
}
#endif

void copy_bytes(std::byte* dst, const std::byte* src, std::size_t bytes, bool stream) {
#if defined(__x86_64__)
  if (stream && has_avx2()) {
    stream_copy_avx2(dst, src, bytes);
    return;
  }
#endif
  std::memcpy(dst, src, bytes);
}

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

Result<StagingBuffer> StagingBuffer::map(std::size_t bytes) {
  if (bytes == 0) return StagingBuffer();
  // Populated here, once per growth, and not by the copy: on the development VM (free page
  // reporting hands freed pages back to the host) MAP_POPULATE took 0.4-1.2 s per GiB, faulting
  // the pages in during the first copy 0.8-3.9 s. MADV_HUGEPAGE was measured and left out: once
  // populated, copies into 4 KiB and 2 MiB pages ran at the same speed, and populating 1 GiB of
  // hugepages took 0.1-5.6 s (direct compaction under THP's madvise defrag).
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    const Status failed = errno_status("mmap", errno, std::to_string(bytes) + " bytes of checkpoint staging memory");
    return Status(failed.code(), failed.message() + "; free memory, or save this shard synchronously (async = false)");
  }
  return StagingBuffer(static_cast<std::byte*>(p), bytes);
}

StagingBuffer::StagingBuffer(StagingBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

StagingBuffer& StagingBuffer::operator=(StagingBuffer&& other) noexcept {
  if (this != &other) {
    unmap();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

StagingBuffer::~StagingBuffer() {
  unmap();
}

void StagingBuffer::unmap() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

void snapshot_copy(std::span<const HostCopy> pieces) {
  // Measured on the development VM (2 vCPUs of an AMD EPYC, KVM; 1 GiB in 16 tensors of 64 MiB,
  // medians of 25 interleaved rounds): memcpy 0.133 s on one thread, 0.098 s on two; AVX2 stream
  // stores 0.089 s on one, 0.065 s on two. glibc switches memcpy to non-temporal stores only
  // above x86_non_temporal_threshold (192 MiB here), so each 32 MiB half of a tensor went through
  // the cache and paid a read for ownership of every destination line. SSE2 stream stores were
  // ~5% slower than AVX2; prefetching the source changed nothing.
  constexpr std::size_t kMinPerThread = std::size_t{32} << 20;
  // Threads take the bytes in chunks of this size, in turn, so that one the scheduler pauses
  // holds up a chunk and not its share of the snapshot (on a busy 2-vCPU VM: slowest of 40
  // copies of 1 GiB 0.098 s against 0.136 s with the bytes split in halves up front).
  constexpr std::size_t kCopyChunkBytes = std::size_t{8} << 20;
  std::vector<std::size_t> starts;  // where each piece starts, the pieces laid end to end
  starts.reserve(pieces.size());
  std::size_t total = 0;
  for (const HostCopy& p : pieces) {
    starts.push_back(total);
    total += p.bytes;
  }
  const bool stream = total >= kStreamMinBytes;
  const std::size_t threads = std::clamp<std::size_t>(std::min<std::size_t>(std::thread::hardware_concurrency(), 8), 1,
                                                      total / kMinPerThread + 1);
  std::atomic<std::size_t> next{0};
  const auto work = [&] {
    for (std::size_t begin; (begin = next.fetch_add(kCopyChunkBytes)) < total;) {
      const std::size_t end = std::min(total, begin + kCopyChunkBytes);
      // The last piece starting at or before `begin`, then on while pieces start before `end`.
      std::size_t i =
          static_cast<std::size_t>(std::upper_bound(starts.begin(), starts.end(), begin) - starts.begin()) - 1;
      for (; i < pieces.size() && starts[i] < end; ++i) {
        const std::size_t lo = std::max(begin, starts[i]), hi = std::min(end, starts[i] + pieces[i].bytes);
        if (lo < hi) copy_bytes(pieces[i].dst + (lo - starts[i]), pieces[i].src + (lo - starts[i]), hi - lo, stream);
      }
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t i = 1; i < threads; ++i) {
    pool.emplace_back(work);
  }
  work();
  for (auto& t : pool)
    t.join();
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
