// Files on a POSIX system, shared by every room that reads or writes one: input files are
// opened as regular files only and read under a size cap; output files are written
// atomically (temp file, fsync, rename). Errors name the path and the system's reason.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace chainrule {

// Every input file (model, feed, checkpoint, CSV, IDX) is opened here. A folder, a FIFO, a
// device or a socket where a file belongs is refused at once: a FIFO would block open()
// and /dev/zero would be read until memory runs out. Errors are InputErrors naming the
// path: "cannot open: <reason>" (missing, unreadable, a symlink loop, a name too long),
// "is a directory", "is not a regular file (a FIFO)".
struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;
// `size` gets the file's size when it was opened (a hint: a file may still grow).
FilePtr open_input_file(const std::string& path, std::uint64_t& size);
// The whole file, refused when it has more than `cap` bytes, counted as they are read
// (not only from the size it claims). `cap_name` ends the message: "... more than the
// {cap_name}".
std::string read_file_capped(const std::string& path, std::uint64_t cap, const std::string& cap_name);
// read_file_capped with the 1 GiB cap for text files (models, feeds, checkpoints).
std::string read_text_file(const std::string& path);

// Writes `text` to `path` atomically: temp file in the same folder, fsync, rename.
// A crash leaves either the old file or the new one, never half of one.
void write_file_atomic(const std::string& path, const std::string& text);
// Whether `filename` (no folder) is one of write_file_atomic's temp files, which a write cut
// short by a kill leaves behind: the target's name followed by ".tmp-" and mkstemp's six characters.
bool is_atomic_temp_file(const std::string& filename);

}  // namespace chainrule
