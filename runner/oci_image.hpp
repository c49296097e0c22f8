// Job containers from OCI image layouts (`environment.image: oci:PATH[:REF]`): the runner unpacks
// the image's layers into a root filesystem for runc, once per manifest, into a cache it reuses.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cohort/status.hpp"

namespace cohort::runner {

struct UnpackedImage {
  std::filesystem::path rootfs;             // ready to use as the container's root
  std::string manifest_digest;              // "sha256:..."
  bool from_cache = false;                  // an earlier unpack of the same manifest was reused
  double unpack_seconds = 0;                // 0 when from_cache
  std::vector<std::string> entrypoint_env;  // the image config's Env ("NAME=value"), for the job's environment
};

// Reads `layout` (an OCI image layout: `oci-layout`, `index.json`, `blobs/sha256/...`, as `skopeo
// copy ... oci:DIR:TAG` or `umoci` write it) and unpacks the image it holds into
// cache_dir/<manifest hex>/rootfs.
//
// The manifest: the one whose org.opencontainers.image.ref.name annotation is `ref`, or the only
// one when `ref` is empty. An image index (or Docker manifest list) on the way is resolved to its
// linux manifest for this machine's architecture (amd64 on x86-64).
//
// Every blob read (indexes, manifest, config, layers) is checked against its descriptor's sha256
// and size. Layers (OCI tar, tar+gzip, tar+zstd and the Docker equivalents) are applied in order,
// whiteouts as in the OCI image spec (`.wh.NAME` deletes NAME of lower layers, `.wh..wh..opq`
// empties its directory of what lower layers put there). File modes, numeric uid/gid (as root),
// mtimes, xattrs, symlinks and hardlinks are kept. An entry that would land outside the rootfs (an
// absolute path, a `..` component, a write or hardlink through a symlink) fails the unpack with an
// error naming the layer digest and the entry.
//
// The rootfs is built in a temporary directory in cache_dir and renamed into place only when
// complete (after syncfs), so a crash never leaves a partial rootfs that looks complete; temporary
// directories of dead processes are removed by the next unpack of the same manifest. A second call
// for the same manifest reuses the rootfs (from_cache). Safe to call from several threads or
// processes at once: each builds its own temporary directory and the first rename wins.
//
// Errors name the layout ("oci:/x: index.json: no manifest named 'v2'; it has: latest"): NotFound
// for a missing layout, blob or ref; DataLoss for a blob whose digest or size is wrong;
// InvalidArgument for malformed JSON or tar; PermissionDenied for an entry escaping the rootfs;
// Unimplemented for media types it cannot unpack.
// REQUIRES: cache_dir is on a filesystem the runner owns; it is created when missing.
Result<UnpackedImage> unpack_oci_image(const std::filesystem::path& layout, const std::string& ref,
                                       const std::filesystem::path& cache_dir);

// Splits the PATH:REF of `oci:PATH:REF` at the last ':' when what follows it is non-empty, has no
// '/' and the ':' is not the first character; otherwise the whole text is the path and the ref is
// empty. "/images/app:v2" -> {"/images/app", "v2"}; "/images/app" -> {"/images/app", ""};
// "/mnt/a:b/app" -> {"/mnt/a:b/app", ""}.
std::pair<std::filesystem::path, std::string> split_oci_reference(const std::string& path_and_ref);

}  // namespace cohort::runner
