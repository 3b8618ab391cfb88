// Compiles src/core/pch.h once; every other target reuses it (REUSE_FROM).
