// Writes OCI image layouts for tests (oci-layout, index.json, blobs/sha256/...), as `skopeo copy
// ... oci:DIR:TAG` would: layers from a list of tar entries (written verbatim, so a test can write
// hostile ones: `../x`, absolute paths, links through symlinks), configs, manifests, nested image
// indexes. Header-only; its user links LibArchive::LibArchive, OpenSSL::Crypto and nlohmann_json.
//
//   cohort::testing::OciLayoutBuilder b(dir);
//   auto manifest = b.add_image({.layers = {{.entries = {file_entry("etc/motd", "hi\n"), symlink_entry("bin/sh",
//   "busybox")}}}}); b.write_index({{*manifest, "latest"}});
//
// or, for the common case, build_oci_layout(dir, layers, "latest"). busybox_layer() is a layer from
// the host's static busybox (bin/busybox, bin/sh -> busybox): enough to run a real container.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cohort/status.hpp"

namespace cohort::testing {

// One tar entry. `path` and `target` go into the tar as given.
struct LayerEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink };
  Type type = Type::kFile;
  std::string path;
  std::string data;    // kFile: the content
  std::string target;  // kSymlink: the link text; kHardlink: the path of the entry it links to
  int mode = 0644;
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::int64_t mtime = 1'700'000'000;  // 2023-11-14, so a test can tell it from "now"
};

inline LayerEntry file_entry(std::string path, std::string data, int mode = 0644) {
  return {.type = LayerEntry::Type::kFile, .path = std::move(path), .data = std::move(data), .mode = mode};
}
inline LayerEntry dir_entry(std::string path, int mode = 0755) {
  return {.type = LayerEntry::Type::kDir, .path = std::move(path), .mode = mode};
}
inline LayerEntry symlink_entry(std::string path, std::string target) {
  return {.type = LayerEntry::Type::kSymlink, .path = std::move(path), .target = std::move(target), .mode = 0777};
}
inline LayerEntry hardlink_entry(std::string path, std::string target) {
  return {.type = LayerEntry::Type::kHardlink, .path = std::move(path), .target = std::move(target)};
}
// `.wh.NAME` beside NAME: deletes NAME of lower layers.
inline LayerEntry whiteout_entry(const std::string& path) {
  const std::filesystem::path p(path);
  return file_entry((p.parent_path() / (".wh." + p.filename().string())).string(), "");
}
// `DIR/.wh..wh..opq`: empties DIR of what lower layers put there.
inline LayerEntry opaque_entry(const std::string& directory) {
  return file_entry((std::filesystem::path(directory) / ".wh..wh..opq").string(), "");
}

enum class Compression { kNone, kGzip, kZstd };

struct LayerSpec {
  std::vector<LayerEntry> entries;
  Compression compression = Compression::kGzip;
  // When set, this file is the layer blob as is (entries and compression are ignored): a tarball
  // made with `tar czf`, say. Its media type is media_type or OCI's tar+gzip.
  std::filesystem::path tar_file;
  std::string media_type;  // "" for OCI's type of the compression (Docker's with docker_media_types)
};

struct ImageSpec {
  std::vector<LayerSpec> layers;
  std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  std::string architecture = "amd64";
  bool docker_media_types = false;  // Docker's manifest v2 schema 2 types instead of OCI's
};

namespace oci_detail {

inline std::string sha256_hex(const void* data, std::size_t n, EVP_MD_CTX* ctx = nullptr) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (ctx) {
    EVP_DigestFinal_ex(ctx, md, &len);
  } else {
    EVP_Digest(data, n, md, &len, EVP_sha256(), nullptr);
  }
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    static constexpr char kHex[] = "0123456789abcdef";
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 15];
  }
  return hex;
}

struct WriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

inline la_ssize_t append(archive*, void* out, const void* data, std::size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), n);
  return static_cast<la_ssize_t>(n);
}

inline Status archive_error(archive* a, const std::string& what) {
  const char* s = archive_error_string(a);
  return {Code::kInternal, what + ": " + (s ? s : "libarchive error")};
}

// The entries as an uncompressed (pax) tar.
inline Result<std::string> tar(const std::vector<LayerEntry>& entries) {
  std::string out;
  std::unique_ptr<archive, WriteFree> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), &out, nullptr, &append, nullptr) != ARCHIVE_OK) return archive_error(a.get(), "tar");
  for (const auto& e : entries) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(), &archive_entry_free);
    archive_entry_set_pathname(entry.get(), e.path.c_str());
    archive_entry_set_perm(entry.get(), static_cast<mode_t>(e.mode));
    archive_entry_set_uid(entry.get(), e.uid);
    archive_entry_set_gid(entry.get(), e.gid);
    archive_entry_set_mtime(entry.get(), e.mtime, 0);
    switch (e.type) {
      case LayerEntry::Type::kFile:
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_size(entry.get(), static_cast<la_int64_t>(e.data.size()));
        break;
      case LayerEntry::Type::kDir:
        archive_entry_set_filetype(entry.get(), AE_IFDIR);
        break;
      case LayerEntry::Type::kSymlink:
        archive_entry_set_filetype(entry.get(), AE_IFLNK);
        archive_entry_set_symlink(entry.get(), e.target.c_str());
        break;
      case LayerEntry::Type::kHardlink:
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_hardlink(entry.get(), e.target.c_str());
        archive_entry_set_size(entry.get(), 0);
        break;
    }
    if (archive_write_header(a.get(), entry.get()) < ARCHIVE_WARN) return archive_error(a.get(), e.path);
    if (!e.data.empty() && archive_write_data(a.get(), e.data.data(), e.data.size()) < 0) {
      return archive_error(a.get(), e.path);
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return archive_error(a.get(), "tar");
  return out;
}

inline Result<std::string> compress(const std::string& raw, Compression c) {
  if (c == Compression::kNone) return raw;
  std::string out;
  std::unique_ptr<archive, WriteFree> a(archive_write_new());
  archive_write_set_format_raw(a.get());
  if ((c == Compression::kGzip ? archive_write_add_filter_gzip(a.get()) : archive_write_add_filter_zstd(a.get())) !=
      ARCHIVE_OK) {
    return archive_error(a.get(), "compression filter");
  }
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), &out, nullptr, &append, nullptr) != ARCHIVE_OK) return archive_error(a.get(), "raw");
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(), &archive_entry_free);
  archive_entry_set_pathname(entry.get(), "layer.tar");
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(raw.size()));
  if (archive_write_header(a.get(), entry.get()) != ARCHIVE_OK ||
      archive_write_data(a.get(), raw.data(), raw.size()) < 0 || archive_write_close(a.get()) != ARCHIVE_OK) {
    return archive_error(a.get(), "compressing");
  }
  return out;
}

// The sha256 of a (possibly compressed) file's uncompressed bytes: a layer's diff_id.
inline Result<std::string> uncompressed_sha256(const std::filesystem::path& path) {
  std::unique_ptr<archive, ReadFree> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 20) != ARCHIVE_OK) {
    return archive_error(a.get(), path.string());
  }
  archive_entry* e = nullptr;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) return archive_error(a.get(), path.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buffer(1 << 20);
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), buffer.data(), buffer.size());
    if (n < 0) return archive_error(a.get(), path.string());
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(n));
  }
  return sha256_hex(nullptr, 0, ctx.get());
}

inline Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kNotFound, "cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace oci_detail

// A host file as a layer entry (its content read now).
inline Result<LayerEntry> host_file(std::string path, const std::filesystem::path& host_path, int mode = 0755) {
  COHORT_ASSIGN_OR_RETURN(std::string data, oci_detail::read_file(host_path));
  return file_entry(std::move(path), std::move(data), mode);
}

// bin/busybox (the host's /bin/busybox, from busybox-static) and bin/sh -> busybox, plus the
// directories a container runtime mounts over (proc, dev, sys, tmp).
inline Result<LayerSpec> busybox_layer(const std::filesystem::path& busybox = "/bin/busybox") {
  COHORT_ASSIGN_OR_RETURN(LayerEntry bb, host_file("bin/busybox", busybox, 0755));
  return LayerSpec{.entries = {dir_entry("bin"), std::move(bb), symlink_entry("bin/sh", "busybox"), dir_entry("proc"),
                               dir_entry("dev"), dir_entry("sys"), dir_entry("tmp", 01777), dir_entry("etc"),
                               file_entry("etc/passwd", "root:x:0:0:root:/:/bin/sh\n")}};
}

// A descriptor: {"mediaType", "digest", "size"} (and whatever a caller adds, e.g. "platform").
using Descriptor = nlohmann::json;

class OciLayoutBuilder {
 public:
  explicit OciLayoutBuilder(std::filesystem::path layout) : layout_(std::move(layout)) {}

  // Stores `bytes` as a blob; the descriptor names it.
  Result<Descriptor> add_blob(const std::string& bytes, const std::string& media_type) {
    COHORT_TRY(init());
    const std::string hex = oci_detail::sha256_hex(bytes.data(), bytes.size());
    std::ofstream out(layout_ / "blobs" / "sha256" / hex, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) return Status(Code::kIoError, "writing blob " + hex);
    return Descriptor{{"mediaType", media_type}, {"digest", "sha256:" + hex}, {"size", bytes.size()}};
  }

  // A layer blob; the descriptor also carries "diff_id" (the uncompressed tar's digest), which
  // add_image moves into the config.
  Result<Descriptor> add_layer(const LayerSpec& layer, bool docker_media_types = false) {
    std::string type = layer.media_type;
    if (!layer.tar_file.empty()) {
      COHORT_ASSIGN_OR_RETURN(std::string bytes, oci_detail::read_file(layer.tar_file));
      COHORT_ASSIGN_OR_RETURN(std::string diff_id, oci_detail::uncompressed_sha256(layer.tar_file));
      if (type.empty()) type = docker_media_types ? kDockerLayer : "application/vnd.oci.image.layer.v1.tar+gzip";
      COHORT_ASSIGN_OR_RETURN(Descriptor d, add_blob(bytes, type));
      d["diff_id"] = "sha256:" + diff_id;
      return d;
    }
    COHORT_ASSIGN_OR_RETURN(std::string raw, oci_detail::tar(layer.entries));
    COHORT_ASSIGN_OR_RETURN(std::string blob, oci_detail::compress(raw, layer.compression));
    if (type.empty()) {
      static const char* const kOci[] = {"application/vnd.oci.image.layer.v1.tar",
                                         "application/vnd.oci.image.layer.v1.tar+gzip",
                                         "application/vnd.oci.image.layer.v1.tar+zstd"};
      static const char* const kDocker[] = {"application/vnd.docker.image.rootfs.diff.tar", kDockerLayer, ""};
      type = (docker_media_types ? kDocker : kOci)[static_cast<int>(layer.compression)];
    }
    COHORT_ASSIGN_OR_RETURN(Descriptor d, add_blob(blob, type));
    d["diff_id"] = "sha256:" + oci_detail::sha256_hex(raw.data(), raw.size());
    return d;
  }

  // Layers, config and manifest; returns the manifest's descriptor.
  Result<Descriptor> add_image(const ImageSpec& image) {
    nlohmann::json layers = nlohmann::json::array();
    nlohmann::json diff_ids = nlohmann::json::array();
    for (const auto& l : image.layers) {
      COHORT_ASSIGN_OR_RETURN(Descriptor d, add_layer(l, image.docker_media_types));
      diff_ids.push_back(d["diff_id"]);
      d.erase("diff_id");
      layers.push_back(std::move(d));
    }
    nlohmann::json config = {{"architecture", image.architecture},
                             {"os", "linux"},
                             {"config", {{"Env", image.env}}},
                             {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
    COHORT_ASSIGN_OR_RETURN(Descriptor c, add_blob(config.dump(), image.docker_media_types
                                                                      ? "application/vnd.docker.container.image.v1+json"
                                                                      : "application/vnd.oci.image.config.v1+json"));
    const std::string type = image.docker_media_types ? "application/vnd.docker.distribution.manifest.v2+json"
                                                      : "application/vnd.oci.image.manifest.v1+json";
    nlohmann::json manifest = {{"schemaVersion", 2}, {"mediaType", type}, {"config", c}, {"layers", layers}};
    return add_blob(manifest.dump(), type);
  }

  // An image index blob over (manifest, "os/architecture") pairs; returns its descriptor.
  Result<Descriptor> add_index(const std::vector<std::pair<Descriptor, std::string>>& manifests) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [d, platform] : manifests) {
      Descriptor e = d;
      const auto slash = platform.find('/');
      e["platform"] = {{"os", platform.substr(0, slash)}, {"architecture", platform.substr(slash + 1)}};
      list.push_back(std::move(e));
    }
    constexpr const char* kType = "application/vnd.oci.image.index.v1+json";
    return add_blob(nlohmann::json{{"schemaVersion", 2}, {"mediaType", kType}, {"manifests", list}}.dump(), kType);
  }

  // index.json over (descriptor, ref) pairs; a ref of "" gets no ref.name annotation.
  Status write_index(const std::vector<std::pair<Descriptor, std::string>>& manifests) {
    COHORT_TRY(init());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [d, ref] : manifests) {
      Descriptor e = d;
      if (!ref.empty()) e["annotations"] = {{"org.opencontainers.image.ref.name", ref}};
      list.push_back(std::move(e));
    }
    nlohmann::json index = {
        {"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", list}};
    std::ofstream out(layout_ / "index.json", std::ios::trunc);
    out << index.dump();
    if (!out.flush()) return Status(Code::kIoError, "writing " + (layout_ / "index.json").string());
    return {};
  }

  const std::filesystem::path& layout() const { return layout_; }

 private:
  static constexpr const char* kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip";

  Status init() {
    if (initialized_) return {};
    std::error_code ec;
    std::filesystem::create_directories(layout_ / "blobs" / "sha256", ec);
    if (ec) return Status(Code::kIoError, "creating " + layout_.string() + ": " + ec.message());
    std::ofstream out(layout_ / "oci-layout", std::ios::trunc);
    out << R"({"imageLayoutVersion":"1.0.0"})";
    if (!out.flush()) return Status(Code::kIoError, "writing " + (layout_ / "oci-layout").string());
    initialized_ = true;
    return {};
  }

  std::filesystem::path layout_;
  bool initialized_ = false;
};

// A layout at `layout` holding one image of `layers` (and the config's Env `env`), named `ref` in
// index.json ("" for no name). Returns the manifest's digest ("sha256:...").
inline Result<std::string> build_oci_layout(const std::filesystem::path& layout, const std::vector<LayerSpec>& layers,
                                            const std::string& ref, const std::vector<std::string>& env = {}) {
  OciLayoutBuilder b(layout);
  ImageSpec image{.layers = layers};
  if (!env.empty()) image.env = env;
  COHORT_ASSIGN_OR_RETURN(Descriptor m, b.add_image(image));
  COHORT_TRY(b.write_index({{m, ref}}));
  return m["digest"].get<std::string>();
}

}  // namespace cohort::testing
