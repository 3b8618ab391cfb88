// FeatureCache: HDF5 file of (T, F) float32 features with source/option invalidation (see
// feature_cache.h).
#include "data/dataset/feature_cache.h"

#include <sys/stat.h>

#include <mutex>
#include <optional>
#include <vector>

#include <ATen/Functions.h>
#include <fmt/format.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/hdf5_handle.h"

namespace mmref::data {
namespace {

struct SourceStat {
  bool exists = false;
  int64_t size = 0, mtime_ns = 0;
};

SourceStat stat_source(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {true, static_cast<int64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
}

H5Id vlen_string_type() {
  H5Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return H5Id(H5Tcopy(t), H5Tclose);
}

bool write_string_attr(hid_t obj, const char* name, const std::string& value) {
  H5Id type = vlen_string_type();
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Id attr(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.ok()) return false;
  const char* p = value.c_str();
  return H5Awrite(attr, type, &p) >= 0;
}

bool write_int_attr(hid_t obj, const char* name, int64_t value) {
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Id attr(H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  return attr.ok() && H5Awrite(attr, H5T_NATIVE_INT64, &value) >= 0;
}

std::optional<std::string> read_string_attr(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return std::nullopt;
  H5Id attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  if (!attr.ok()) return std::nullopt;
  H5Id ftype(H5Aget_type(attr), H5Tclose);
  if (H5Tget_class(ftype) != H5T_STRING || H5Tis_variable_str(ftype) <= 0) return std::nullopt;
  H5Id type = vlen_string_type();
  char* p = nullptr;
  if (H5Aread(attr, type, &p) < 0 || p == nullptr) return std::nullopt;
  std::string s(p);
  H5free_memory(p);
  return s;
}

std::optional<int64_t> read_int_attr(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return std::nullopt;
  H5Id attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  int64_t v = 0;
  if (!attr.ok() || H5Aread(attr, H5T_NATIVE_INT64, &v) < 0) return std::nullopt;
  return v;
}

}  // namespace

std::string FeatureCache::link_name(const std::string& id) {
  if (id.empty()) MMREF_FAIL("feature cache: empty example id");
  std::string out;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (c == '%')
      out += "%25";
    else if (c == '/')
      out += "%2F";
    else if (c == '.' && i == 0)
      out += "%2E";
    else
      out += c;
  }
  return out;
}

FeatureCache::FeatureCache(const std::string& h5_path, const std::string& options_key)
    : path_(h5_path), options_key_(options_key) {
  const auto slash = path_.find_last_of('/');
  if (slash != std::string::npos && slash > 0) fs::make_dirs(path_.substr(0, slash));
  std::lock_guard<std::mutex> lk(h5_mutex());
  H5E_BEGIN_TRY {
    if (fs::exists(path_) && H5Fis_hdf5(path_.c_str()) > 0) {
      file_ = H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
      if (file_ >= 0) {
        const auto stored = read_string_attr(file_, "options_key");
        feats_ = H5Gopen2(file_, "feats", H5P_DEFAULT);
        if (!stored || *stored != options_key_ || feats_ < 0) {  // other options: rebuild
          if (feats_ >= 0) H5Gclose(feats_);
          H5Fclose(file_);
          file_ = feats_ = -1;
        }
      }
    }
    if (file_ < 0) {
      file_ = H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
      if (file_ >= 0) {
        feats_ = H5Gcreate2(file_, "feats", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (feats_ < 0 || !write_string_attr(file_, "options_key", options_key_) ||
            H5Fflush(file_, H5F_SCOPE_GLOBAL) < 0) {
          if (feats_ >= 0) H5Gclose(feats_);
          H5Fclose(file_);
          file_ = feats_ = -1;
        }
      }
    }
  }
  H5E_END_TRY;
  if (file_ < 0)
    MMREF_FAIL(
        "feature cache '{}': cannot create the HDF5 file (check that the folder is writable and "
        "no other process holds it open)",
        path_);
}

FeatureCache::~FeatureCache() {
  std::lock_guard<std::mutex> lk(h5_mutex());
  if (feats_ >= 0) H5Gclose(feats_);
  if (file_ >= 0) H5Fclose(file_);
}

bool FeatureCache::has(const std::string& id, const std::string& source_path) const {
  const std::string name = link_name(id);
  const SourceStat st = stat_source(source_path);
  if (!st.exists) return false;
  std::lock_guard<std::mutex> lk(h5_mutex());
  bool ok = false;
  H5E_BEGIN_TRY {
    if (H5Lexists(feats_, name.c_str(), H5P_DEFAULT) > 0) {
      H5Id ds(H5Dopen2(feats_, name.c_str(), H5P_DEFAULT), H5Dclose);
      if (ds.ok()) {
        ok = read_string_attr(ds, "source_path") == source_path &&
             read_int_attr(ds, "source_size") == st.size && read_int_attr(ds, "source_mtime") == st.mtime_ns;
      }
    }
  }
  H5E_END_TRY;
  return ok;
}

void FeatureCache::put(const std::string& id, const std::string& source_path, const at::Tensor& feats) {
  const std::string name = link_name(id);
  if (!feats.defined() || feats.dim() != 2 || !feats.is_floating_point())
    MMREF_FAIL("feature cache '{}': features for '{}' must be a floating (T, F) tensor, got {}", path_, id,
               feats.defined() ? fmt::format("{}-dim {}", feats.dim(), c10::toString(feats.scalar_type()))
                               : "undefined");
  const SourceStat st = stat_source(source_path);
  if (!st.exists)
    MMREF_FAIL("feature cache '{}': source '{}' of '{}' does not exist (its size and mtime key the entry)",
               path_, source_path, id);
  const at::Tensor f = feats.to(at::kCPU, at::kFloat).contiguous();
  std::lock_guard<std::mutex> lk(h5_mutex());
  bool ok = false;
  H5E_BEGIN_TRY {
    if (H5Lexists(feats_, name.c_str(), H5P_DEFAULT) > 0) H5Ldelete(feats_, name.c_str(), H5P_DEFAULT);
    const hsize_t dims[2] = {static_cast<hsize_t>(f.size(0)), static_cast<hsize_t>(f.size(1))};
    H5Id space(H5Screate_simple(2, dims, nullptr), H5Sclose);
    H5Id ds(H5Dcreate2(feats_, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
            H5Dclose);
    ok = ds.ok() &&
         (f.numel() == 0 ||
          H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f.data_ptr<float>()) >= 0) &&
         write_string_attr(ds, "id", id) && write_string_attr(ds, "source_path", source_path) &&
         write_int_attr(ds, "source_size", st.size) && write_int_attr(ds, "source_mtime", st.mtime_ns);
    if (!ok && ds.ok()) H5Ldelete(feats_, name.c_str(), H5P_DEFAULT);  // no half-written entry
    if (H5Fflush(file_, H5F_SCOPE_GLOBAL) < 0) ok = false;
  }
  H5E_END_TRY;
  if (!ok)
    MMREF_FAIL("feature cache '{}': cannot write features of '{}' (disk full or file not writable?)", path_,
               id);
}

at::Tensor FeatureCache::get(const std::string& id) const {
  const std::string name = link_name(id);
  std::lock_guard<std::mutex> lk(h5_mutex());
  at::Tensor out;
  std::string why;
  H5E_BEGIN_TRY {
    if (H5Lexists(feats_, name.c_str(), H5P_DEFAULT) <= 0) {
      why = "not cached (call has()/put() first)";
    } else {
      H5Id ds(H5Dopen2(feats_, name.c_str(), H5P_DEFAULT), H5Dclose);
      H5Id space(ds.ok() ? H5Dget_space(ds) : -1, H5Sclose);
      hsize_t dims[2] = {0, 0};
      if (!space.ok() || H5Sget_simple_extent_ndims(space) != 2 ||
          H5Sget_simple_extent_dims(space, dims, nullptr) != 2) {
        why = "the dataset is not 2-D (corrupt cache? delete the file)";
      } else {
        out = at::empty({static_cast<int64_t>(dims[0]), static_cast<int64_t>(dims[1])}, at::kFloat);
        if (out.numel() > 0 &&
            H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr<float>()) < 0) {
          why = "read failed (corrupt cache? delete the file)";
          out = at::Tensor();
        }
      }
    }
  }
  H5E_END_TRY;
  if (!why.empty()) MMREF_FAIL("feature cache '{}': features of '{}': {}", path_, id, why);
  return out;
}

int64_t FeatureCache::count() const {
  std::lock_guard<std::mutex> lk(h5_mutex());
  H5G_info_t info{};
  if (H5Gget_info(feats_, &info) < 0) MMREF_FAIL("feature cache '{}': cannot list /feats", path_);
  return static_cast<int64_t>(info.nlinks);
}

}  // namespace mmref::data
