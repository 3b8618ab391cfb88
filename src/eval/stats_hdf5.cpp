#include "eval/stats_hdf5.h"

#include <cstdio>
#include <vector>

#include <ATen/Functions.h>
#include <fmt/format.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/hdf5_handle.h"

namespace mmref::eval {

namespace {

using data::H5Id;

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// "file.h5:/group" -> ("file.h5", "/group"); plain paths -> (path, "/").
std::pair<std::string, std::string> split_group(const std::string& path) {
  for (const char* ext : {".h5:", ".hdf5:"}) {
    const auto at = path.rfind(ext);
    if (at != std::string::npos) {
      const auto colon = at + std::string(ext).size() - 1;
      std::string group = path.substr(colon + 1);
      if (group.empty()) group = "/";
      return {path.substr(0, colon), group};
    }
  }
  return {path, "/"};
}

std::string shape_of(hid_t ds) {
  H5Id space(H5Dget_space(ds), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  std::string s = "(";
  for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (rank == 1 ? ",)" : ")");
}

at::Tensor read_f64(hid_t group, const char* name, const std::string& where, int want_rank) {
  if (H5Lexists(group, name, H5P_DEFAULT) <= 0)
    MMREF_FAIL("FID statistics '{}' have no '{}' dataset (expected root datasets mu and sigma, as "
               "h5py writes f['mu'], f['sigma'])",
               where, name);
  H5Id ds(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) MMREF_FAIL("FID statistics '{}': '{}' is not a dataset", where, name);
  H5Id type(H5Dget_type(ds), H5Tclose);
  if (H5Tget_class(type) != H5T_FLOAT)
    MMREF_FAIL("FID statistics '{}': '{}' is not floating point", where, name);
  H5Id space(H5Dget_space(ds), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank != want_rank)
    MMREF_FAIL("FID statistics '{}': '{}' has shape {}, expected {} dimension(s)", where, name, shape_of(ds),
               want_rank);
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  std::vector<int64_t> sizes(dims.begin(), dims.end());
  at::Tensor out = at::empty(sizes, at::TensorOptions().dtype(at::kDouble));
  if (out.numel() > 0 && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr<double>()) < 0)
    MMREF_FAIL("FID statistics '{}': reading '{}' failed (truncated or corrupt file?)", where, name);
  return out;
}

int64_t read_n(hid_t group) {
  int64_t n = -1;
  if (H5Lexists(group, "n", H5P_DEFAULT) > 0) {
    H5Id ds(H5Dopen2(group, "n", H5P_DEFAULT), H5Dclose);
    H5Id space(ds.ok() ? H5Dget_space(ds) : -1, H5Sclose);
    if (space.ok() && H5Sget_simple_extent_npoints(space) == 1 &&
        H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &n) >= 0)
      return n;
    return -1;
  }
  if (H5Aexists(group, "n") > 0) {
    H5Id attr(H5Aopen(group, "n", H5P_DEFAULT), H5Aclose);
    if (attr.ok() && H5Aread(attr, H5T_NATIVE_INT64, &n) >= 0) return n;
  }
  return -1;
}

void write_f64(hid_t file, const char* name, const at::Tensor& t, const std::string& path) {
  const at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  std::vector<hsize_t> dims(c.sizes().begin(), c.sizes().end());
  H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  H5Id ds(H5Dcreate2(file, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (!ds.ok() || H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data_ptr<double>()) < 0)
    MMREF_FAIL("save FID statistics '{}': writing '{}' failed (disk full or not writable?)", path, name);
}

}  // namespace

bool is_hdf5_stats_path(const std::string& path) {
  const std::string file = split_group(path).first;
  return ends_with(file, ".h5") || ends_with(file, ".hdf5");
}

void save_feature_stats_hdf5(const std::string& path, const FeatureStats& stats) {
  if (!stats.mu.defined() || !stats.sigma.defined())
    MMREF_FAIL("save_feature_stats '{}': mu or sigma is undefined", path);
  const auto [file, group] = split_group(path);
  if (group != "/") MMREF_FAIL("save FID statistics '{}': writing into a group is not supported; give a plain .h5 path", path);
  // Write next to the target, then rename: an existing statistics file is never left half-written.
  const std::string tmp = file + ".tmp";
  try {
    std::lock_guard<std::mutex> lk(data::h5_mutex());
    const data::H5Quiet quiet;
    {
      H5Id f(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      if (!f.ok()) MMREF_FAIL("save FID statistics '{}': cannot create the file (directory missing or not writable?)", file);
      write_f64(f, "mu", stats.mu, file);
      write_f64(f, "sigma", stats.sigma, file);
      if (stats.n >= 0) {
        H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
        H5Id ds(H5Dcreate2(f, "n", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
        const int64_t n = stats.n;
        if (!ds.ok() || H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &n) < 0)
          MMREF_FAIL("save FID statistics '{}': writing 'n' failed", file);
      }
      H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
      const std::string fmt_name = "mmref.fid_stats.v1";
      H5Tset_size(type, fmt_name.size());
      H5Id aspace(H5Screate(H5S_SCALAR), H5Sclose);
      H5Id attr(H5Acreate2(f, "format", type, aspace, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
      if (attr.ok()) H5Awrite(attr, type, fmt_name.c_str());
      if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) MMREF_FAIL("save FID statistics '{}': flush failed", file);
    }
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), file.c_str()) != 0)
    MMREF_FAIL("save FID statistics '{}': cannot rename '{}' over it", file, tmp);
}

FeatureStats load_feature_stats_hdf5(const std::string& path) {
  const auto [file, group_name] = split_group(path);
  if (!fs::exists(file)) MMREF_FAIL("FID statistics '{}' do not exist (check the path)", file);
  std::lock_guard<std::mutex> lk(data::h5_mutex());
  const data::H5Quiet quiet;
  FeatureStats st;
  {
    if (H5Fis_hdf5(file.c_str()) <= 0)
      MMREF_FAIL("FID statistics '{}' are not an HDF5 file (truncated, or another format: use .npz for "
                 "pytorch-fid's files)",
                 file);
    H5Id f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!f.ok()) MMREF_FAIL("FID statistics '{}': cannot open the HDF5 file", file);
    H5Id g(H5Gopen2(f, group_name.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.ok()) MMREF_FAIL("FID statistics '{}': no group '{}' in the file", file, group_name);
    st.mu = read_f64(g, "mu", path, 1);
    st.sigma = read_f64(g, "sigma", path, 2);
    st.n = read_n(g);
  }
  const int64_t d = st.mu.size(0);
  if (d < 1 || st.sigma.size(0) != d || st.sigma.size(1) != d)
    MMREF_FAIL("FID statistics '{}': expected mu (d) and sigma (d, d), got mu ({},) and sigma ({}, {})", path, d,
               st.sigma.size(0), st.sigma.size(1));
  return st;
}

}  // namespace mmref::eval
