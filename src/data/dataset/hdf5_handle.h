// Shared HDF5 plumbing: an RAII handle for hid_t and the one process-wide lock every HDF5 call takes
// (the serial HDF5 library is a global, non-thread-safe state machine). Used by the feature cache and
// by eval's HDF5 statistics files; include only from .cpp files that link mmref_hdf5.
#pragma once
#include <mutex>

#include <hdf5.h>

namespace mmref::data {

std::mutex& h5_mutex();

struct H5Id {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  H5Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~H5Id() {
    if (id >= 0 && close) close(id);
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  operator hid_t() const { return id; }
  bool ok() const { return id >= 0; }
};

// Silences HDF5's own error printing for its scope (we report errors ourselves), exception-safe where
// H5E_BEGIN_TRY / H5E_END_TRY are not.
class H5Quiet {
 public:
  H5Quiet() {
    H5Eget_auto2(H5E_DEFAULT, &fn_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~H5Quiet() { H5Eset_auto2(H5E_DEFAULT, fn_, data_); }
  H5Quiet(const H5Quiet&) = delete;
  H5Quiet& operator=(const H5Quiet&) = delete;

 private:
  H5E_auto2_t fn_ = nullptr;
  void* data_ = nullptr;
};

}  // namespace mmref::data
