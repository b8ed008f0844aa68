// Data sets for training: the `training.data` block of a model (docs/model-format.md),
// loaded into a compact form. Pixels stay uint8 in memory and become floats / 255 only
// when a batch is gathered.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "core/sparse_rows.hpp"
#include "core/tensor.hpp"

namespace chainrule::data {

struct DataSpec {
    std::string kind;                   // a name of the kind table (data/kind.hpp): "csv", "idx"
    std::string path;                   // csv: the file, resolved against the model's folder
    std::string dir;                    // idx: the folder with the four MNIST-named files
    std::vector<int> features;          // csv: feature columns (0-based)
    int label = -1;                     // csv: label column; -1: none (`chainrule data` only)
    std::vector<std::string> classes;   // class names, index = class id; csv: empty = in
                                        // order of first appearance; idx: empty = "0".."9"
    std::int64_t row_begin = 0;         // csv: half-open [row_begin, row_end) of data rows
    std::int64_t row_end = -1;          // -1: to the end
    double train_fraction = 0.8;        // csv: per class, in file order, first part trains
    std::int64_t train_limit = -1;      // "limit": keep only the first N of a split; -1: all
    std::int64_t test_limit = -1;
    std::int64_t block_size = 0;        // text: token ids per sample
    bool per_position_labels = false;   // text: "target": "sequence" (a label per position)
                                        // rather than "next" (the next character)
    std::string keep_only;              // text: lines of these characters only; "": every line
    std::uint64_t split_seed = 42;      // text: the shuffle of the words before the split
    std::vector<std::string> vocabulary;  // text: the run's vocabulary (id -> character),
                                        // which the data is read with; empty: built from the file
    std::string where;                  // "FILE: training.data", prefix for messages
    std::string base_dir;               // the folder relative paths were taken from: the model
                                        // file's ("" is the working directory)
    std::string written;                // the block's path (csv) or dir (idx) as written; ""
                                        // for a spec made without a block (a command-line path)
    std::string written_key;            // the block's key that holds `written` ("path", "dir")
};

// Validates the block (unknown keys, types, ranges) without touching the data files: the
// parser of its kind (data/kind.hpp). Every error is an InputError "{where}.KEY: what was
// expected". `base_dir` is the model file's folder. docs/data.md has the rules.
DataSpec parse_data_spec(const Json& j, const std::string& where, const std::string& base_dir);

// A split keeps its samples in one of three forms (the sample stream's StreamForm says which).
struct Split {
    std::int64_t count = 0;
    std::int64_t features = 0;                // values per sample: 784 for MNIST, 4 for Iris
    Dims sample_dims;                         // {28, 28} or {4}
    std::vector<std::uint8_t> pixels;         // images (idx): count * features bytes
    std::vector<double> values;               // numbers (csv): count * features
    std::vector<std::int32_t> tokens;         // token ids: count * features whole numbers
    std::vector<std::int32_t> labels;         // class ids: count * labels_per_sample
    std::vector<std::int64_t> source_lines;   // csv: 1-based line in the file, for reports
};

struct Dataset {
    std::string kind;                         // a name of the kind table: "csv", "idx"
    std::int64_t classes = 0;                 // class ids are 0 .. classes - 1
    std::vector<std::string> class_names;     // index = class id (a text kind: its vocabulary)
    std::int64_t labels_per_sample = 1;       // 1: a class per sample; T: one per position
    Split train, test;
};

// Validates what the spec names (its kind's validator), then reads and checks the files
// (its kind's loader: csv.hpp, idx.hpp); InputError on bad data.
Dataset load_dataset(const DataSpec& spec);

// The streams that a model's `training.feed` can name: the one list of their names.
// Every kind offers a sample stream first ("images" for idx, "features" for csv, "tokens"
// for text), then
// "labels" (the class index) and "labels_one_hot" (when the data has labels).
inline constexpr const char* kImages = "images";
inline constexpr const char* kFeatures = "features";
inline constexpr const char* kTokens = "tokens";
inline constexpr const char* kLabels = "labels";
inline constexpr const char* kLabelsOneHot = "labels_one_hot";

// Where a stream's values are in a Split and how they are fed.
enum class StreamForm {
    pixels,     // Split::pixels, fed as byte / 255 (and, on request, as the batch's nonzeros)
    numbers,    // Split::values, fed as they are
    tokens,     // Split::tokens, fed as whole numbers (ids for an embedding)
    class_ids,  // Split::labels, labels_per_sample ids fed as whole numbers
    one_hot,    // Split::labels, each id a row of `classes` values with a 1 at the id
};
struct StreamDef {
    const char* name;
    StreamForm form;
    // Values per sample when the spec alone says it (csv features, listed classes); null
    // or nullopt: the data files say.
    std::optional<std::int64_t> (*width_from_spec)(const DataSpec& spec);
};

// The streams of a data kind, the sample stream first; empty for a name that is no kind.
// Without `labelled`, the label streams are left out.
std::vector<std::string> stream_names(const std::string& kind, bool labelled = true);
// "images, labels or labels_one_hot", for messages.
std::string stream_list(const std::string& kind, bool labelled = true);
bool has_stream(const Dataset& ds, const std::string& stream);
std::int64_t stream_width(const Dataset& ds, const std::string& stream);  // columns per sample
// Columns per sample of a stream when the spec alone says it; nullopt: the files say.
std::optional<std::int64_t> stream_width_from_spec(const DataSpec& spec, const std::string& stream);
// The stream an input with `columns` values per sample (nullopt: not known) most likely
// wants, for "did you forget ...?": one whose width the spec gives as that many (not
// "labels"), else the kind's guess, else the sample stream.
std::string likely_stream(const DataSpec& spec, std::optional<std::int64_t> columns);
// The fraction of a split's pixels that are nonzero (1 for a split without pixels).
double pixel_density(const Split& split);
// Fills dst (already sized [rows.size(), width], or [rows.size()] when width == 1, in any
// dtype) with the given rows of a split, scaling pixels by 1/255. Allocates nothing.
// An unknown stream or a dst of the wrong size is an InputError (the model's input does
// not fit the data); a row index out of range is a RunError.
// `split_rows`, when given, runs the image conversion (the bulk of a batch's bytes) as
// parts [b, e) of the rows, for example on several threads; it must call `part` on pieces
// that cover [0, count) once each and return when all are done.
using RowSplitter =
    std::function<void(std::int64_t count, const std::function<void(std::int64_t b, std::int64_t e)>& part)>;
// `sparse`, when given for the image stream, also gets the batch's nonzeros by row (its
// row form and its block index, core/sparse_rows.hpp), filled in the same pass; the caller then calls its finish().
// Other streams leave it untouched.
void gather(const Dataset& ds, const Split& split, const std::string& stream,
            std::span<const std::int64_t> rows, Tensor& dst, const RowSplitter& split_rows = {},
            SparseRows* sparse = nullptr);
// The same for a stream given by its definition (the name's lookup done).
void gather(const Dataset& ds, const Split& split, const StreamDef& stream, std::span<const std::int64_t> rows,
            Tensor& dst, const RowSplitter& split_rows = {}, SparseRows* sparse = nullptr);

}  // namespace chainrule::data
