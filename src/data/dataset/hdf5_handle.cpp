#include "data/dataset/hdf5_handle.h"

namespace mmref::data {

std::mutex& h5_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace mmref::data
