// IDX files (the MNIST format), raw or gzip-compressed (detected by content, not name).
// Everything in the header is checked, and the payload is known to be there, before the
// full buffer is allocated (docs/data.md lists the caps).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace chainrule::data {

inline constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned bytes, 1 dim
inline constexpr std::uint32_t kIdxImagesMagic = 0x00000803;  // unsigned bytes, 3 dims
inline constexpr std::int64_t kIdxMaxBytes = 100'000'000;     // payload of one file
inline constexpr std::int64_t kIdxMaxSide = 1024;             // image rows and columns
// deflate cannot expand data more than about 1032 times: a .gz file smaller than
// payload / kMaxDeflateRatio cannot hold the payload its header claims.
inline constexpr std::int64_t kMaxDeflateRatio = 1032;

struct IdxFile {
    std::string path;
    std::uint32_t magic = 0;
    Dims dims;                        // {count} or {count, rows, cols}
    std::vector<std::uint8_t> data;   // row-major, product(dims) bytes
    bool gzipped = false;
};

// What a file is there for. When the role is known, a file of the other kind is named as
// such ("magic 0x00000803 (images) where a labels file (0x00000801) was expected") before
// its header is read as if it were the expected kind.
enum class IdxRole { any, labels, images };
// The role a file's name gives it: "...idx1-ubyte" (or .gz) holds labels, "...idx3-ubyte"
// images, as in the lecture's four names; anything else: any.
IdxRole idx_role_from_name(const std::string& path);

// Reads one IDX file of unsigned bytes (magic 0x801 or 0x803, or only the one `role`
// asks for). Bad magic, zero or oversized dims, a truncated stream, trailing bytes,
// corrupt gzip data: InputError.
IdxFile read_idx(const std::string& path, IdxRole role = IdxRole::any);

// The lecture's four file names inside an idx folder.
inline constexpr const char* kTrainImages = "train-images-idx3-ubyte";
inline constexpr const char* kTrainLabels = "train-labels-idx1-ubyte";
inline constexpr const char* kTestImages = "t10k-images-idx3-ubyte";
inline constexpr const char* kTestLabels = "t10k-labels-idx1-ubyte";

// dir/name.gz if it exists (as anything, even a dangling link), else dir/name if it does, else "".
std::string find_idx_file(const std::string& dir, const std::string& name);

// Images with their labels from the four files of spec.dir (load_dataset first checks that
// spec.dir is a folder, and names the model's rule for relative paths when it is not).
Dataset idx_dataset(const DataSpec& spec);

// The spec of an idx folder named on the command line (`chainrule data DIR`, `--data DIR`):
// all classes "0" to "9", no limits; `where` prefixes its messages.
DataSpec idx_folder_spec(const std::string& dir, const std::string& where);

struct DataKind;
// The idx kind's entry of the kind table (data/kind.hpp).
const DataKind& idx_kind();

}  // namespace chainrule::data
