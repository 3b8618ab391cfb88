// CUDA device layer: queries never throw on a machine without a GPU; the copy kernel is exact on a GPU
// (odd length, so the vectorised body and the scalar tail both run; destination poisoned first).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/common/cuda_device.h"

namespace {

TEST(CudaDevice, QueryNeverThrowsAndExplains) {
  mmref::kernels::CudaRuntimeInfo info;
  ASSERT_NO_THROW(info = mmref::kernels::query_cuda_runtime());
  EXPECT_FALSE(info.status.empty());
  if (info.devices.empty()) {
    EXPECT_NE(info.status, "ok");
  } else {
    EXPECT_EQ(info.status, "ok");
    EXPECT_GT(info.devices[0].total_memory_bytes, 0u);
  }
}

TEST(GpuCudaDevice, CopyKernelIsExact) {
  auto info = mmref::kernels::query_cuda_runtime();
  if (info.devices.empty()) GTEST_SKIP() << "no CUDA device: " << info.status;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  std::vector<float> host(1000003);
  for (auto& v : host) v = dist(rng);
  auto out = mmref::kernels::device_copy_roundtrip(host, 0);
  ASSERT_EQ(out.size(), host.size());
  for (size_t i = 0; i < host.size(); ++i) {
    ASSERT_EQ(out[i], host[i]) << "element " << i;
  }
}

}  // namespace
