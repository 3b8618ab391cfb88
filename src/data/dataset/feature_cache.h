// HDF5 cache of computed features (e.g. fbank) keyed by example id, invalidated when the source file or
// the feature options change.
//
// File layout (readable by h5py):
//   /                 attribute options_key (UTF-8 string, e.g. the JSON of the fbank options)
//   /feats/<name>     float32 dataset (T, F) with attributes id, source_path (strings), source_size,
//                     source_mtime (int64; mtime in nanoseconds since the epoch)
// <name> is the id with '%' and '/' percent-encoded ("%25", "%2F") and a leading '.' as "%2E", so any id
// is one HDF5 link name (h5py: f["feats"][name]).
//
// Opening a file whose options_key differs (or that is not a readable HDF5 file) recreates it empty: the
// cache is derived data. put() replaces an existing entry and flushes the file (H5Fflush), so a crash
// loses at most the entry being written. All HDF5 calls go through one process-wide mutex: the Debian
// HDF5 build is not thread-safe, and the library's state is global, so a per-object mutex is not enough.
//
// Ref: the HDF5 C API (H5F/H5G/H5D/H5S/H5A); Kaldi/lhotse feature caches keyed by recording id.
#pragma once
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace mmref::data {

class FeatureCache {
 public:
  // Opens or creates `h5_path` (and its folder). Throws mmref::Error naming the file on I/O failure.
  FeatureCache(const std::string& h5_path, const std::string& options_key);
  ~FeatureCache();
  FeatureCache(const FeatureCache&) = delete;
  FeatureCache& operator=(const FeatureCache&) = delete;

  // True when `id` is cached from `source_path` and the source's size and mtime are unchanged (false
  // when the source is missing).
  bool has(const std::string& id, const std::string& source_path) const;
  // Stores float32 (T, F) features (other float dtypes are converted) for `id` from `source_path`
  // (which must exist: its size and mtime are recorded).
  void put(const std::string& id, const std::string& source_path, const at::Tensor& feats);
  // The cached (T, F) float32 tensor; throws mmref::Error naming the id and file when absent.
  at::Tensor get(const std::string& id) const;
  int64_t count() const;  // entries in /feats

  const std::string& path() const { return path_; }
  // The link name used under /feats for `id`.
  static std::string link_name(const std::string& id);

 private:
  std::string path_;
  std::string options_key_;
  int64_t file_ = -1;   // hid_t
  int64_t feats_ = -1;  // hid_t of /feats
};

}  // namespace mmref::data
