#include "oci_image.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string_view>

#include "fd.hpp"

namespace cohort::runner {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// OCI's distribution spec lets registries refuse manifests over 4 MiB; image configs carry the
// build history and run larger. Far above both, small enough that a hostile layout cannot make the
// runner read gigabytes into memory.
constexpr std::uint64_t kMaxJsonBlobBytes = 16 << 20;
// Real images nest at most one index (a multi-platform index inside index.json).
constexpr int kMaxIndexDepth = 4;
// The size of the reads libarchive gets from a layer blob.
constexpr std::size_t kReadChunkBytes = 1 << 20;

#if defined(__aarch64__)
constexpr std::string_view kArchitecture = "arm64";
#else
constexpr std::string_view kArchitecture = "amd64";
#endif

constexpr const char* kRefAnnotation = "org.opencontainers.image.ref.name";
constexpr std::array kIndexTypes = {std::string_view("application/vnd.oci.image.index.v1+json"),
                                    std::string_view("application/vnd.docker.distribution.manifest.list.v2+json")};
constexpr std::array kManifestTypes = {std::string_view("application/vnd.oci.image.manifest.v1+json"),
                                       std::string_view("application/vnd.docker.distribution.manifest.v2+json")};
constexpr std::array kConfigTypes = {std::string_view("application/vnd.oci.image.config.v1+json"),
                                     std::string_view("application/vnd.docker.container.image.v1+json")};
constexpr std::array kLayerTypes = {std::string_view("application/vnd.oci.image.layer.v1.tar"),
                                    std::string_view("application/vnd.oci.image.layer.v1.tar+gzip"),
                                    std::string_view("application/vnd.oci.image.layer.v1.tar+zstd"),
                                    std::string_view("application/vnd.oci.image.layer.nondistributable.v1.tar"),
                                    std::string_view("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
                                    std::string_view("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"),
                                    std::string_view("application/vnd.docker.image.rootfs.diff.tar"),
                                    std::string_view("application/vnd.docker.image.rootfs.diff.tar.gzip"),
                                    std::string_view("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")};

template <std::size_t N>
bool one_of(std::string_view s, const std::array<std::string_view, N>& set) {
  for (std::string_view x : set)
    if (s == x) return true;
  return false;
}

Status error(Code code, std::string message) {
  return {code, std::move(message)};
}

Result<Fd> open_fd(const fs::path& path, int flags, mode_t mode = 0) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return errno_status("open", errno, path.string());
  return Fd(fd);
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) std::abort();  // out of memory
  }
  void update(const void* data, std::size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &n);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 15];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// ---- descriptors and JSON ----

struct Descriptor {
  std::string media_type;  // may be empty in index.json; the blob's own mediaType then decides
  std::string digest;      // "sha256:<64 hex>"
  std::string hex;
  std::uint64_t size = 0;
  std::string ref;       // the ref.name annotation, "" when none
  std::string platform;  // "os/architecture", "" when none
};

const json* member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string string_member(const json& object, const char* key) {
  const json* m = member(object, key);
  return m && m->is_string() ? m->get<std::string>() : std::string();
}

Result<Descriptor> parse_descriptor(const json& j, const std::string& where) {
  if (!j.is_object()) return invalid_argument(where + ": expected a descriptor (an object)");
  Descriptor d;
  d.media_type = string_member(j, "mediaType");
  d.digest = string_member(j, "digest");
  // The hex names a file under blobs/: anything but 64 lowercase hex digits could walk out of it.
  constexpr std::string_view kAlgorithm = "sha256:";
  d.hex = d.digest.starts_with(kAlgorithm) ? d.digest.substr(kAlgorithm.size()) : "";
  if (d.hex.size() != 64 || d.hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return invalid_argument(where + ": digest \"" + d.digest + "\" is not sha256:<64 lowercase hex digits>");
  }
  const json* size = member(j, "size");
  if (!size || !size->is_number_unsigned()) return invalid_argument(where + ": no size (a non-negative integer)");
  d.size = size->get<std::uint64_t>();
  if (const json* a = member(j, "annotations")) d.ref = string_member(*a, kRefAnnotation);
  if (const json* p = member(j, "platform"))
    d.platform = string_member(*p, "os") + "/" + string_member(*p, "architecture");
  return d;
}

Result<json> parse_json(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument(what + ": not a JSON object");
  return j;
}

// "config sha256:...: " for messages; "" where the caller's context names the blob already.
std::string prefix(const std::string& what, const Descriptor& d) {
  return what.empty() ? std::string() : what + " " + d.digest + ": ";
}

// A blob of the layout, its size checked against the descriptor.
Result<Fd> open_blob(const fs::path& layout, const Descriptor& d, const std::string& what) {
  fs::path path = layout / "blobs" / "sha256" / d.hex;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return error(Code::kNotFound, prefix(what, d) + "blob missing (" + path.string() + ")");
  if (fd < 0) return errno_status("open", errno, path.string());
  Fd f(fd);
  struct stat st {};
  if (::fstat(f.get(), &st) != 0) return errno_status("fstat", errno, path.string());
  if (static_cast<std::uint64_t>(st.st_size) != d.size) {
    return error(Code::kDataLoss, prefix(what, d) + "blob has " + std::to_string(st.st_size) +
                                      " bytes, its descriptor says " + std::to_string(d.size));
  }
  return f;
}

Status check_digest(Sha256& sha, const Descriptor& d, const std::string& what) {
  std::string got = sha.hex();
  if (got == d.hex) return {};
  return error(Code::kDataLoss, prefix(what, d) + "blob content has digest sha256:" + got + ", not " + d.digest +
                                    " (corrupt, or changed after the image was written)");
}

// A JSON blob (index, manifest, config), read whole and verified.
Result<json> read_json_blob(const fs::path& layout, const Descriptor& d, const std::string& what) {
  if (d.size > kMaxJsonBlobBytes) {
    return invalid_argument(prefix(what, d) + std::to_string(d.size) + " bytes, more than a JSON blob may have");
  }
  COHORT_ASSIGN_OR_RETURN(Fd f, open_blob(layout, d, what));
  std::string text(d.size, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(f.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("read", errno, d.digest);
    if (n == 0) return error(Code::kDataLoss, prefix(what, d) + "blob shrank while read");
    got += static_cast<std::size_t>(n);
  }
  Sha256 sha;
  sha.update(text.data(), text.size());
  COHORT_TRY(check_digest(sha, d, what));
  return parse_json(text, what + " " + d.digest);
}

Result<json> read_json_file(const fs::path& path, const std::string& what) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec == std::errc::no_such_file_or_directory) {
    return error(Code::kNotFound,
                 what + ": missing; is this an OCI image layout (as `skopeo copy ... oci:DIR:TAG` writes)?");
  }
  if (ec) return error(Code::kIoError, what + ": " + ec.message());
  if (size > kMaxJsonBlobBytes) return invalid_argument(what + ": too large for a layout file");
  COHORT_ASSIGN_OR_RETURN(Fd f, open_fd(path, O_RDONLY));
  std::string text(size, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(f.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_status("read", n < 0 ? errno : EIO, path.string());
    got += static_cast<std::size_t>(n);
  }
  return parse_json(text, what);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items)
    out += (out.empty() ? "" : ", ") + s;
  return out;
}

// One manifest of an index: by ref (only in index.json), then by platform when several remain.
Result<Descriptor> choose(const json& index, const std::string& where, const std::string& ref) {
  const json* manifests = member(index, "manifests");
  if (!manifests || !manifests->is_array()) return invalid_argument(where + ": no \"manifests\" array");
  std::vector<Descriptor> all;
  for (std::size_t i = 0; i < manifests->size(); ++i) {
    COHORT_ASSIGN_OR_RETURN(Descriptor d,
                            parse_descriptor((*manifests)[i], where + ": manifests[" + std::to_string(i) + "]"));
    all.push_back(std::move(d));
  }
  std::vector<std::string> names;
  for (const auto& d : all)
    if (!d.ref.empty() && std::find(names.begin(), names.end(), d.ref) == names.end()) names.push_back(d.ref);
  std::vector<Descriptor> candidates;
  for (const auto& d : all)
    if (ref.empty() || d.ref == ref) candidates.push_back(d);
  if (candidates.empty() && !ref.empty()) {
    return error(Code::kNotFound, where + ": no manifest named '" + ref +
                                      "'; it has: " + (names.empty() ? "no named manifests" : join(names)));
  }
  if (candidates.empty()) return error(Code::kNotFound, where + ": no manifests");
  if (candidates.size() == 1 && candidates[0].platform.empty()) return candidates[0];

  const std::string wanted = "linux/" + std::string(kArchitecture);
  std::vector<std::string> platforms;
  for (const auto& d : candidates) {
    if (d.platform == wanted) return d;
    if (!d.platform.empty()) platforms.push_back(d.platform);
  }
  if (platforms.empty()) {
    return invalid_argument(
        where + ": it holds " + std::to_string(candidates.size()) +
        " manifests; name one as oci:PATH:REF; it has: " + (names.empty() ? "no named manifests" : join(names)));
  }
  return error(Code::kNotFound, where + ": no manifest for " + wanted + "; it has: " + join(platforms));
}

struct Manifest {
  Descriptor self;
  Descriptor config;
  std::vector<Descriptor> layers;
};

Result<Manifest> pick_manifest(const fs::path& layout, const std::string& ref) {
  COHORT_ASSIGN_OR_RETURN(json oci_layout, read_json_file(layout / "oci-layout", "oci-layout"));
  if (string_member(oci_layout, "imageLayoutVersion").empty()) {
    return invalid_argument("oci-layout: no imageLayoutVersion; is this an OCI image layout?");
  }
  COHORT_ASSIGN_OR_RETURN(json index, read_json_file(layout / "index.json", "index.json"));
  std::string where = "index.json";
  for (int depth = 0; depth <= kMaxIndexDepth; ++depth) {
    COHORT_ASSIGN_OR_RETURN(Descriptor d, choose(index, where, depth == 0 ? ref : std::string()));
    const bool is_index = one_of(d.media_type, kIndexTypes);
    COHORT_ASSIGN_OR_RETURN(json doc, read_json_blob(layout, d, is_index ? "index" : "manifest"));
    std::string type = d.media_type.empty() ? string_member(doc, "mediaType") : d.media_type;
    if (one_of(type, kIndexTypes) || (type.empty() && member(doc, "manifests"))) {
      index = std::move(doc);
      where = "index " + d.digest;
      continue;
    }
    if (!one_of(type, kManifestTypes) && !(type.empty() && member(doc, "layers"))) {
      return error(Code::kUnimplemented,
                   where + ": " + d.digest + " has media type \"" + type + "\", not an image manifest or index");
    }
    Manifest m{.self = d};
    const json* config = member(doc, "config");
    COHORT_ASSIGN_OR_RETURN(m.config, parse_descriptor(config ? *config : json(), "manifest " + d.digest + ": config"));
    const json* layers = member(doc, "layers");
    if (!layers || !layers->is_array()) return invalid_argument("manifest " + d.digest + ": no \"layers\" array");
    for (std::size_t i = 0; i < layers->size(); ++i) {
      COHORT_ASSIGN_OR_RETURN(
          Descriptor l, parse_descriptor((*layers)[i], "manifest " + d.digest + ": layers[" + std::to_string(i) + "]"));
      m.layers.push_back(std::move(l));
    }
    return m;
  }
  return invalid_argument(where + ": image indexes nested more than " + std::to_string(kMaxIndexDepth) + " deep");
}

Result<std::vector<std::string>> read_env(const fs::path& layout, const Descriptor& config) {
  if (!one_of(config.media_type, kConfigTypes)) {
    return error(Code::kUnimplemented, "config " + config.digest + ": media type \"" + config.media_type +
                                           "\" is not an image config (is this an artifact, not a container image?)");
  }
  COHORT_ASSIGN_OR_RETURN(json doc, read_json_blob(layout, config, "config"));
  std::vector<std::string> env;
  const json* c = member(doc, "config");
  const json* e = c ? member(*c, "Env") : nullptr;
  if (!e || e->is_null()) return env;
  if (!e->is_array()) return invalid_argument("config " + config.digest + ": config.Env is not an array");
  for (const auto& v : *e) {
    if (!v.is_string()) return invalid_argument("config " + config.digest + ": config.Env holds a non-string");
    env.push_back(v.get<std::string>());
  }
  return env;
}

// ---- layers ----

struct ReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
using ReadArchive = std::unique_ptr<archive, ReadFree>;
using WriteArchive = std::unique_ptr<archive, WriteFree>;

std::string archive_message(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

bool zstd_supported() {
  ReadArchive a(archive_read_new());
  return archive_read_support_filter_zstd(a.get()) == ARCHIVE_OK;  // WARN: only via an external program
}

// A layer's tar, read from its blob. Every byte read also goes into a sha256, so each pass
// verifies the very bytes it parsed.
class LayerReader {
 public:
  // Heap-allocated: libarchive holds a pointer to it.
  static Result<std::unique_ptr<LayerReader>> open(const fs::path& layout, const Descriptor& d) {
    COHORT_ASSIGN_OR_RETURN(Fd fd, open_blob(layout, d, ""));
    return std::unique_ptr<LayerReader>(new LayerReader(std::move(fd)));
  }

  // Reads the start of the blob: compression and format.
  Status start() {
    archive* a = archive_.get();
    archive_read_support_format_tar(a);
    archive_read_support_format_empty(a);
    // Compression is detected from the bytes; the media type was checked against what is supported.
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    if (archive_read_open(a, this, nullptr, &LayerReader::read, nullptr) != ARCHIVE_OK) {
      return invalid_argument("not a tar archive: " + archive_message(a));
    }
    return {};
  }

  // The next entry; nullptr at the end of the tar.
  Result<archive_entry*> next() {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(archive_.get(), &e);
    // Go's tar reader (so runc, containerd and umoci) takes a tar that ends right after an entry's
    // data, without the padding of its last block or the end blocks, and umoci writes such layers
    // (opencontainers/umoci#436). libarchive takes missing end blocks, not missing padding.
    if (r == ARCHIVE_FATAL && data_complete_ && at_eof_) return nullptr;
    if (r == ARCHIVE_EOF) return nullptr;
    if (r < ARCHIVE_WARN) return invalid_argument("reading the tar: " + archive_message(archive_.get()));
    entry_size_ = archive_entry_size(e);
    data_complete_ = entry_size_ <= 0;
    return e;
  }

  // The current entry's data, block by block, to sink(block, size, offset).
  template <typename Sink>
  Status read_data(const std::string& name, Sink&& sink) {
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    la_int64_t end = 0;
    int r = ARCHIVE_OK;
    while ((r = archive_read_data_block(archive_.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      COHORT_TRY(sink(block, size, offset));
      end = std::max(end, offset + static_cast<la_int64_t>(size));
    }
    // The data is whole and only the padding after it is missing: see next().
    if (r == ARCHIVE_FATAL && at_eof_ && end == entry_size_) r = ARCHIVE_EOF;
    if (r != ARCHIVE_EOF) {
      return invalid_argument("entry '" + name + "': reading its data: " + archive_message(archive_.get()));
    }
    data_complete_ = true;
    return {};
  }
  Status skip_data(const std::string& name) {
    return read_data(name, [](const void*, std::size_t, la_int64_t) { return Status(); });
  }

  // Reads what libarchive left (padding, compression trailers) and checks the digest.
  Status verify(const Descriptor& d) {
    const void* unused = nullptr;
    for (la_ssize_t n = 1; n > 0;) {
      n = read(nullptr, this, &unused);
      if (n < 0) return errno_status("read", errno, d.digest);
    }
    return check_digest(sha_, d, "");
  }

 private:
  explicit LayerReader(Fd fd) : fd_(std::move(fd)), buffer_(kReadChunkBytes), archive_(archive_read_new()) {}

  static la_ssize_t read(archive* a, void* self, const void** out) {
    auto* s = static_cast<LayerReader*>(self);
    ssize_t n = 0;
    do {
      n = ::read(s->fd_.get(), s->buffer_.data(), s->buffer_.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (a) archive_set_error(a, errno, "reading the blob: %s", std::strerror(errno));
      return -1;
    }
    s->sha_.update(s->buffer_.data(), static_cast<std::size_t>(n));
    s->at_eof_ = n == 0;
    *out = s->buffer_.data();
    return n;
  }

  Fd fd_;
  Sha256 sha_;
  std::vector<char> buffer_;
  bool at_eof_ = false;         // the blob is read to its end
  la_int64_t entry_size_ = 0;   // of the current entry
  bool data_complete_ = false;  // the current entry's data was read whole
  ReadArchive archive_;         // last: freed first, while the rest is still there
};

// The entry's path relative to the rootfs ("" for the rootfs itself), or why it would escape.
Result<fs::path> safe_relative(const char* name, std::string_view what) {
  if (!name) return invalid_argument(std::string(what) + " has no path (or one libarchive cannot decode)");
  const std::string_view n(name);
  auto refuse = [&](std::string_view why) {
    return error(Code::kPermissionDenied, std::string(what) + " '" + std::string(n) + "': " + std::string(why) +
                                              "; refusing to write outside the rootfs");
  };
  if (n.starts_with('/')) return refuse("is an absolute path");
  fs::path rel;
  for (std::size_t b = 0; b <= n.size();) {
    std::size_t e = std::min(n.find('/', b), n.size());
    std::string_view part = n.substr(b, e - b);
    if (part == "..") return refuse("has a '..' component");
    if (!part.empty() && part != ".") rel /= part;
    b = e + 1;
  }
  return rel;
}

enum class Parents { kDirs, kMissing, kSymlink, kNotDir };

// What the components of `rel` before its last are under rootfs, without following symlinks.
Parents check_parents(const fs::path& rootfs, const fs::path& rel, fs::path* at) {
  fs::path cur = rootfs;
  *at = fs::path();
  for (auto it = rel.begin(); it != rel.end() && std::next(it) != rel.end(); ++it) {
    cur /= *it;
    *at /= *it;
    struct stat st {};
    if (::lstat(cur.c_str(), &st) != 0) return Parents::kMissing;
    if (S_ISLNK(st.st_mode)) return Parents::kSymlink;
    if (!S_ISDIR(st.st_mode)) return Parents::kNotDir;
  }
  return Parents::kDirs;
}

Status refuse_symlink_parent(const fs::path& rootfs, const fs::path& rel, std::string_view what, const char* name) {
  fs::path at;
  if (check_parents(rootfs, rel, &at) != Parents::kSymlink) return {};
  return error(Code::kPermissionDenied, std::string(what) + " '" + name + "': would go through the symlink '" +
                                            at.string() + "'; refusing to write outside the rootfs");
}

bool starts_with_whiteout(const fs::path& rel) {
  return rel.filename().string().starts_with(".wh.");
}

struct Whiteouts {
  std::vector<fs::path> removed;  // .wh.NAME: NAME
  std::vector<fs::path> opaque;   // .wh..wh..opq: its directory
};

// Pass 1: every entry's path is checked and the whiteouts collected; nothing is written.
Status scan_layer(LayerReader& layer, Whiteouts& out) {
  COHORT_TRY(layer.start());
  for (;;) {
    COHORT_ASSIGN_OR_RETURN(archive_entry * e, layer.next());
    if (!e) return {};
    const char* name = archive_entry_pathname(e);
    COHORT_ASSIGN_OR_RETURN(fs::path rel, safe_relative(name, "entry"));
    if (const char* link = archive_entry_hardlink(e)) {
      COHORT_TRY(safe_relative(link, "hardlink target of '" + std::string(name) + "'").status());
    }
    COHORT_TRY(layer.skip_data(name));
    if (!starts_with_whiteout(rel)) continue;
    std::string base = rel.filename().string();
    if (base == ".wh..wh..opq") {
      out.opaque.push_back(rel.parent_path());
    } else if (!base.starts_with(".wh..wh.")) {  // other .wh..wh. names are aufs bookkeeping
      std::string target = base.substr(4);
      if (target == "." || target == "..") return invalid_argument(std::string("entry '") + name + "': bad whiteout");
      out.removed.push_back(rel.parent_path() / target);
    }
  }
}

// Whiteouts apply to what lower layers left in rootfs. A path under a symlink is not in rootfs
// (the link points elsewhere), so there is nothing to delete there.
Status apply_whiteouts(const fs::path& rootfs, const Whiteouts& w) {
  std::error_code ec;
  fs::path at;
  for (const auto& dir : w.opaque) {
    fs::path full = rootfs / dir;
    struct stat st {};
    if (check_parents(rootfs, dir / "x", &at) != Parents::kDirs || ::lstat(full.c_str(), &st) != 0 ||
        !S_ISDIR(st.st_mode)) {
      continue;
    }
    for (const auto& child : fs::directory_iterator(full, ec)) {
      fs::remove_all(child.path(), ec);
      if (ec) return error(Code::kIoError, "opaque whiteout of '" + dir.string() + "': " + ec.message());
    }
  }
  for (const auto& rel : w.removed) {
    if (check_parents(rootfs, rel, &at) != Parents::kDirs) continue;
    fs::remove_all(rootfs / rel, ec);  // removes a symlink itself, never what it points to
    if (ec) return error(Code::kIoError, "whiteout of '" + rel.string() + "': " + ec.message());
  }
  return {};
}

// Pass 2: the layer's entries, whiteouts skipped, written under rootfs.
Status extract_layer(LayerReader& layer, const fs::path& rootfs) {
  COHORT_TRY(layer.start());
  WriteArchive disk(archive_write_disk_new());
  // No ARCHIVE_EXTRACT_UNLINK: with it libarchive would delete a symlink in the way instead of
  // refusing the entry. No SECURE_NOABSOLUTEPATHS: the paths given to it are rootfs-absolute (a
  // chdir into rootfs would be process-wide); safe_relative refuses absolute names instead. No
  // user/group lookup: uid and gid stay the tar's numbers.
  archive_write_disk_set_options(disk.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                                 ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                 ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  for (;;) {
    COHORT_ASSIGN_OR_RETURN(archive_entry * e, layer.next());
    if (!e) break;
    COHORT_ASSIGN_OR_RETURN(fs::path rel, safe_relative(archive_entry_pathname(e), "entry"));
    const std::string name = archive_entry_pathname(e);
    if (rel.empty() || starts_with_whiteout(rel)) {
      COHORT_TRY(layer.skip_data(name));
      continue;
    }
    COHORT_TRY(refuse_symlink_parent(rootfs, rel, "entry", name.c_str()));
    const fs::path full = rootfs / rel;
    if (const char* link = archive_entry_hardlink(e)) {
      const std::string what = "hardlink target of '" + name + "'";
      COHORT_ASSIGN_OR_RETURN(fs::path target, safe_relative(link, what));
      COHORT_TRY(refuse_symlink_parent(rootfs, target, what, link));
      struct stat st {};
      if (::lstat((rootfs / target).c_str(), &st) == 0 && S_ISLNK(st.st_mode) && archive_entry_size(e) > 0) {
        return error(Code::kPermissionDenied,
                     "entry '" + name + "': a hardlink with data to the symlink '" + link + "'");
      }
      archive_entry_copy_hardlink(e, (rootfs / target).c_str());
    }
    // A lower directory replaced by a non-directory goes whole (libarchive only rmdirs empty ones).
    struct stat st {};
    if (archive_entry_filetype(e) != AE_IFDIR && ::lstat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      std::error_code ec;
      fs::remove_all(full, ec);
    }
    archive_entry_copy_pathname(e, full.c_str());
    const int r = archive_write_header(disk.get(), e);
    if (r < ARCHIVE_WARN) {
      // runc mounts its own /dev; device nodes in images are placeholders, and mknod fails in
      // user namespaces.
      const auto type = archive_entry_filetype(e);
      if (r == ARCHIVE_FAILED && (type == AE_IFCHR || type == AE_IFBLK)) {
        COHORT_TRY(layer.skip_data(name));
        continue;
      }
      return error(r == ARCHIVE_FATAL ? Code::kIoError : Code::kPermissionDenied,
                   "entry '" + name + "': " + archive_message(disk.get()));
    }
    COHORT_TRY(layer.read_data(name, [&](const void* block, std::size_t size, la_int64_t offset) -> Status {
      if (archive_write_data_block(disk.get(), block, size, offset) >= ARCHIVE_WARN) return {};
      return error(Code::kIoError, "entry '" + name + "': " + archive_message(disk.get()));
    }));
    if (archive_write_finish_entry(disk.get()) < ARCHIVE_WARN) {
      return error(Code::kIoError, "entry '" + name + "': " + archive_message(disk.get()));
    }
  }
  // Directory modes and times are set here, after their contents.
  if (archive_write_close(disk.get()) < ARCHIVE_WARN) return error(Code::kIoError, archive_message(disk.get()));
  return {};
}

Status apply_layer(const fs::path& layout, const Descriptor& d, const fs::path& rootfs) {
  if (!one_of(d.media_type, kLayerTypes)) {
    return error(Code::kUnimplemented, "media type \"" + d.media_type + "\" is not a layer type Cohort unpacks");
  }
  if (d.media_type.ends_with("+zstd") && !zstd_supported()) {
    return error(Code::kUnimplemented, "zstd layer, and this libarchive was built without zstd");
  }
  // A wrong digest is reported before a tar error, since the first explains the second.
  Whiteouts whiteouts;
  {
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<LayerReader> layer, LayerReader::open(layout, d));
    Status scanned = scan_layer(*layer, whiteouts);
    COHORT_TRY(layer->verify(d));
    COHORT_TRY(scanned);
  }
  COHORT_TRY(apply_whiteouts(rootfs, whiteouts));
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<LayerReader> layer, LayerReader::open(layout, d));
  Status extracted = extract_layer(*layer, rootfs);
  COHORT_TRY(layer->verify(d));  // the blob changed since pass 1; the caller drops the rootfs
  return extracted;
}

// ---- the cache ----

// Every unpack holds cache_dir/.lock shared; one that gets it exclusively first knows no unpack
// is running, so every temporary directory left is a crashed one's and goes.
class CacheLock {
 public:
  static Result<CacheLock> acquire(const fs::path& cache) {
    COHORT_ASSIGN_OR_RETURN(Fd fd, open_fd(cache / ".lock", O_RDWR | O_CREAT, 0644));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(cache, ec)) {
        if (entry.path().filename().string().starts_with(".tmp-")) fs::remove_all(entry.path(), ec);
      }
    }
    // From exclusive this is a conversion; another cleaner may slip in between, which is harmless:
    // this call has no temporary directory yet.
    while (::flock(fd.get(), LOCK_SH) != 0) {
      if (errno != EINTR) return errno_status("flock", errno, (cache / ".lock").string());
    }
    return CacheLock(std::move(fd));
  }

 private:
  explicit CacheLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

// cache_dir/.tmp-<hex>-<pid>-<random>, removed unless released.
class TempDir {
 public:
  static Result<TempDir> create(const fs::path& cache, const std::string& hex) {
    static std::atomic<unsigned> counter{0};
    std::random_device random;
    fs::path path = cache / (".tmp-" + hex.substr(0, 16) + "-" + std::to_string(::getpid()) + "-" +
                             std::to_string(counter++) + "-" + std::to_string(random()));
    if (::mkdir(path.c_str(), 0700) != 0) return errno_status("mkdir", errno, path.string());
    TempDir t(path);
    if (::mkdir((path / "rootfs").c_str(), 0755) != 0 || ::chmod((path / "rootfs").c_str(), 0755) != 0) {
      return errno_status("mkdir", errno, (path / "rootfs").string());
    }
    return t;
  }
  TempDir(TempDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  explicit TempDir(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

Status sync_dir(const fs::path& dir, bool whole_filesystem) {
  COHORT_ASSIGN_OR_RETURN(Fd fd, open_fd(dir, O_RDONLY | O_DIRECTORY));
  if (whole_filesystem ? ::syncfs(fd.get()) : ::fsync(fd.get())) {
    return errno_status(whole_filesystem ? "syncfs" : "fsync", errno, dir.string());
  }
  return {};
}

Result<UnpackedImage> unpack(const fs::path& layout, const std::string& ref, const fs::path& cache_dir) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!fs::is_directory(layout, ec)) return error(Code::kNotFound, "no such directory");
  COHORT_ASSIGN_OR_RETURN(Manifest m, pick_manifest(layout, ref));
  UnpackedImage image{.manifest_digest = m.self.digest};
  COHORT_ASSIGN_OR_RETURN(image.entrypoint_env, read_env(layout, m.config));

  fs::create_directories(cache_dir, ec);
  // libarchive refuses any symlink on an entry's path, even above the rootfs.
  const fs::path cache = ec ? fs::path() : fs::canonical(cache_dir, ec);
  if (ec) return error(Code::kIoError, "cache directory " + cache_dir.string() + ": " + ec.message());
  const fs::path final_dir = cache / m.self.hex;
  image.rootfs = final_dir / "rootfs";
  if (fs::is_directory(image.rootfs, ec)) {  // only a complete rootfs is ever renamed there
    image.from_cache = true;
    return image;
  }
  COHORT_ASSIGN_OR_RETURN(CacheLock lock, CacheLock::acquire(cache));
  if (fs::is_directory(image.rootfs, ec)) {  // another unpack finished while this one waited
    image.from_cache = true;
    return image;
  }
  COHORT_ASSIGN_OR_RETURN(TempDir temp, TempDir::create(cache, m.self.hex));
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    const Descriptor& l = m.layers[i];
    COHORT_TRY(
        apply_layer(layout, l, temp.path() / "rootfs")
            .with_context("layer " + std::to_string(i + 1) + "/" + std::to_string(m.layers.size()) + " " + l.digest));
  }
  COHORT_TRY(sync_dir(temp.path(), /*whole_filesystem=*/true));
  if (::rename(temp.path().c_str(), final_dir.c_str()) == 0) {
    temp.release();
    COHORT_TRY(sync_dir(cache, /*whole_filesystem=*/false));
  } else if (errno != EEXIST && errno != ENOTEMPTY) {  // else: another process won the race; use its rootfs
    return errno_status("rename", errno, final_dir.string());
  }
  image.unpack_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return image;
}

}  // namespace

Result<UnpackedImage> unpack_oci_image(const fs::path& layout, const std::string& ref, const fs::path& cache_dir) {
  Result<UnpackedImage> r = unpack(layout, ref, cache_dir);
  if (!r.ok()) return r.status().with_context("oci:" + layout.string());
  return r;
}

std::pair<fs::path, std::string> split_oci_reference(const std::string& path_and_ref) {
  const auto colon = path_and_ref.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == path_and_ref.size() ||
      path_and_ref.find('/', colon) != std::string::npos) {
    return {fs::path(path_and_ref), ""};
  }
  return {fs::path(path_and_ref.substr(0, colon)), path_and_ref.substr(colon + 1)};
}

}  // namespace cohort::runner
