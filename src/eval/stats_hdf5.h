// FID statistics (mu, sigma) in HDF5 files: the layout h5py users write for precomputed dataset
// statistics -- root datasets "mu" (d) and "sigma" (d, d), float32 or float64, optionally "n" (a
// scalar integer dataset or attribute). A group holding them may be named after the file:
// "stats.h5:/cifar10/train". Written files carry float64 mu and sigma, scalar int64 n, and an
// attribute "format" = "mmref.fid_stats.v1".
#pragma once
#include <string>

#include "eval/frechet.h"

namespace mmref::eval {

// True for *.h5 / *.hdf5 paths (with or without a ":/group" suffix).
bool is_hdf5_stats_path(const std::string& path);

void save_feature_stats_hdf5(const std::string& path, const FeatureStats& stats);
// Missing file, not HDF5, no mu/sigma, non-float or mis-shaped arrays: mmref::Error naming the file.
FeatureStats load_feature_stats_hdf5(const std::string& path);

}  // namespace mmref::eval
