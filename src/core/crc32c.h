// CRC-32C (Castagnoli), the checksum TFRecord files (TensorBoard event files) carry on every record.
//
// Ref: RFC 3720 appendix B.4 (iSCSI) for the polynomial; tensorflow/core/lib/hash/crc32c.h for the mask.
// Tests: tests/core/tensorboard_test.cpp (suite Crc32c*).
#pragma once
#include <cstddef>
#include <cstdint>

namespace mmref {

// CRC-32C of data[0, n). Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF, so
// crc32c("123456789") == 0xE3069283. `init` continues a running checksum:
// crc32c(b, nb, crc32c(a, na)) == crc32c(a ++ b).
uint32_t crc32c(const void* data, size_t n, uint32_t init = 0);

// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8. The mask keeps a CRC stored inside
// data that is itself checksummed from weakening the outer CRC.
uint32_t mask_crc32c(uint32_t crc);
uint32_t masked_crc32c(const void* data, size_t n);

}  // namespace mmref
