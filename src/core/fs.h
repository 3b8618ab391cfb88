// File-system helpers with the guarantees runs and checkpoints rely on.
#pragma once
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace mmref::fs {

// Writes a file atomically: the content goes to "<path>.tmp.<pid>", is flushed and fsync'ed, then
// renamed over <path> and the directory is fsync'ed. A crash at any point leaves either the old file or
// the new one, never a torn file. `write` streams the content; if it throws, the temp file is removed
// and the exception propagates (the old file is untouched).
void atomic_write(const std::string& path, const std::function<void(std::ostream&)>& write);
void atomic_write(const std::string& path, const std::string& bytes);

// Reads a whole file; throws mmref::Error naming the file when it is missing or unreadable.
std::string read_file(const std::string& path);

// Creates a directory and its parents; throws mmref::Error naming it on failure.
void make_dirs(const std::string& path);

bool exists(const std::string& path);
uint64_t file_size(const std::string& path);

// The directory a test or CI run may write to: $TMPDIR or /tmp, plus a unique sub-folder.
std::string make_temp_dir(const std::string& prefix);

}  // namespace mmref::fs
