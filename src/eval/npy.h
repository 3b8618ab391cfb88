// NumPy .npy and .npz files as at::Tensors, without Python (Ref: numpy/lib/format.py, the NEP 1
// "A simple file format for NumPy arrays"; PKWARE APPNOTE.TXT 6.3 for the zip container).
//
// .npy: "\x93NUMPY", major, minor, header length (uint16 LE for 1.0; uint32 LE for 2.0 and 3.0), then a
// Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces and
// a newline to a multiple of 64 bytes, then the raw data.
//   read:  dtypes b1 u1 i1 i2 i4 i8 f2 f4 f8 c8 c16 in either byte order (big-endian is swapped on read);
//          u2 -> int32, u4 and u8 -> int64 (u8 values above INT64_MAX are an error), because libtorch 1.13
//          has no unsigned types wider than 8 bits. fortran_order True is read into a C-order tensor.
//          Structured dtypes, object arrays (pickles), strings and datetimes are rejected by name.
//   write: the bytes np.save writes (same header text, padding and version choice), C order.
// .npz: a zip archive with one "<key>.npy" member per array (np.savez stores, np.savez_compressed
//   deflates). Both are read (zlib raw inflate), CRC-32 checked; zip64 records are understood. We write
//   stored members with their CRC-32, switching to zip64 records where a size or offset needs them.
//
// Every error is an mmref::Error that names the file (and the member) and what is wrong with it.
// Tests: tests/eval/npy_test.cpp (round trips, byte equality with np.save, interop with real numpy via
// /usr/bin/python3, corrupt and truncated files).
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace mmref::eval {

// One .npy file. Throws mmref::Error naming the file on a bad magic, header, dtype or truncated data.
at::Tensor load_npy(const std::string& path);
// Writes `t` (any device or strides; stored as contiguous CPU data) atomically. bfloat16 and other types
// numpy cannot represent are an mmref::Error.
void save_npy(const std::string& path, const at::Tensor& t);

// The same formats in memory. `what` names the bytes in error messages (a path, "x.npz:member.npy").
at::Tensor npy_from_bytes(const void* data, size_t size, const std::string& what);
std::string npy_bytes(const at::Tensor& t);

// Every "<key>.npy" member of an .npz, keyed by <key> (as numpy's NpzFile names them). Members that are
// not .npy arrays, unknown compression methods and encrypted members are errors naming the member.
std::map<std::string, at::Tensor> load_npz(const std::string& path);

struct NpzWriteOptions {
  bool force_zip64 = false;  // zip64 records even when 32-bit fields suffice (as np.savez's members)
};
// Writes an uncompressed archive (np.savez layout) atomically. Keys must be non-empty.
void save_npz(const std::string& path, const std::map<std::string, at::Tensor>& arrays,
              const NpzWriteOptions& options = {});

}  // namespace mmref::eval
