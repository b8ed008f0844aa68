// The public API for op authors.
//
// An op is one .cpp file that fills in an Op and registers it:
//
//     static const bool registered = chainrule::register_op({
//         .name = "sigmoid",
//         .formula = "y = 1/(1+exp(-x));  dL/dx = dL/dy · y(1−y)",
//         .inputs = {"x"},
//         .shape = [](auto in, auto&) { return in[0]; },
//         .forward = ...,   // out = f(inputs)
//         .backward = ...,  // grad_in[i] = dL/dinput_i  (vector-Jacobian product)
//         .samples = {{.shapes = {{3, 4}}}},
//     });
//
// Contract:
//  - shape: output shape from the input shapes (which may hold symbols such as N) and
//    attrs. Throw ShapeError with what does not fit, e.g. "cannot multiply [N,4] by [3,1]";
//    the graph prefixes the node's place and op name.
//  - forward: write every element of `out` (already sized by the shape rule).
//  - backward: for each i with grad_in[i] != nullptr, OVERWRITE *grad_in[i] (already
//    sized like input i) with this op's contribution dL/dinput_i. Never accumulate: the
//    engine adds contributions when a node is used twice, so an op cannot get that wrong.
//    Use sum_to_shape (ops/broadcast.hpp) to reduce a broadcast gradient.
//  - samples: inputs on which tests/test_ops_table.cpp checks the shape rule, the
//    gradient against central finite differences in float64, and float32 against float64.
//    An op without samples fails that test.
//  - formula: y = f(inputs), then dL/d<input> for each input by name; checked like samples.
//  - bad_samples: inputs the shape rule must reject, each with the `error` fragment its
//    ShapeError message must contain.
//  - attrs: the allowed attributes with their defaults; a model naming any other attr, or
//    one of a different JSON type, is rejected when loaded.
//  - scratch: the node's own memory, owned by the engine and reused every step, so an op
//    asks it instead of allocating (conv2d's im2col columns). What forward leaves there,
//    the same node's backward finds (max_pool2d keeps each window's argmax). It is null
//    when an op is called outside a graph (the op table's checks): then allocate locally
//    and recompute in backward.
//  - workers: helper threads (cpu/workers.hpp) an op may split its work over, or null. An op
//    that uses them must give the same bits for any thread count (conv2d: fixed chunks of
//    the batch, summed in chunk order).
//  - noise: set only in a training step (dropout's mask); otherwise an op with noise is the
//    identity or its expectation. The engine gives every node its own seed.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "cpu/workers.hpp"

namespace chainrule {

using Attrs = nlohmann::ordered_json;

// Scratch memory of one node, owned by whoever runs the ops (the graph). get<T>(n) returns
// n elements; it allocates only when n is more than any earlier call asked for (so from the
// second training step on it allocates nothing), and otherwise returns the same memory with
// what was last written there: a forward's notes reach the node's backward.
class Workspace {
public:
    template <class T>
    std::span<T> get(std::size_t n) {
        static_assert(std::is_trivially_copyable_v<T> && alignof(T) <= alignof(double));
        const std::size_t words = (n * sizeof(T) + sizeof(double) - 1) / sizeof(double);
        if (words > buffer_.size()) buffer_.resize(words);
        return {reinterpret_cast<T*>(buffer_.data()), n};
    }
    std::size_t bytes() const { return buffer_.size() * sizeof(double); }

private:
    std::vector<double> buffer_;
};

// The seed of one training step's random draws, a pure function of where the step is, so a
// resumed run draws the same masks: noise_seed(noise_seed(seed, epoch), step), and the
// engine adds the node's index the same way. (splitmix64's finaliser over a sum.)
constexpr std::uint64_t noise_seed(std::uint64_t base, std::uint64_t k) {
    std::uint64_t z = base + 0x9e3779b97f4a7c15ull * (k + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct ForwardCall {
    std::span<const Tensor* const> in;
    Tensor& out;
    const Attrs& attrs;
    Workspace* scratch = nullptr;              // the node's; null outside a graph
    std::optional<std::uint64_t> noise = {};   // a training step's seed for this node
    Workers* workers = nullptr;                // helper threads the op may split its work over
};

struct BackwardCall {
    std::span<const Tensor* const> in;
    const Tensor& out;
    const Tensor& grad_out;
    std::span<Tensor* const> grad_in;  // nullptr where no gradient is wanted
    const Attrs& attrs;
    Workspace* scratch = nullptr;              // the one its forward had, or null
    std::optional<std::uint64_t> noise = {};   // the same seed its forward had
    Workers* workers = nullptr;                // as in ForwardCall
};

// How the gradient check draws a sample input.
enum class Domain {
    real,         // normal(0, 1)
    positive,     // uniform(0.5, 2): for log, div, normalize
    away_from_0,  // |x| in [0.3, 2], random sign: for relu's kink
    one_hot,      // rows are one-hot (not differentiated)
    class_index,  // integers in [0, last dim of input 0) (not differentiated); for an op's
                  // ids_input, in [0, rows of input ids_rows_of)
    no_gradient,  // |x| in [0.3, 2], random sign, read but given no gradient: a shape template
                  // (sum_to's `like`) or a mask's argument (relu_mask), whose derivative is 0
};

struct OpSample {
    std::vector<Dims> shapes;               // one per input
    Attrs attrs = Attrs::object();          // merged over the op's defaults
    std::vector<Domain> domains = {};       // per input; missing ones are Domain::real
    // Bad samples only: a fragment the shape rule's ShapeError message must contain, such
    // as "cannot broadcast [3,4] with [3]" (PyTorch's OpInfo error_inputs: error_regex).
    std::string error = {};
};

// What Op::mixes_rows is asked about one node.
struct RowQuery {
    const std::vector<bool>& batch_inputs;  // per input: does it carry the batch (its dim 0 is the batch symbol)?
    const std::vector<std::size_t>& ranks;  // per input
    const Attrs& attrs;
};

// The roles of ops in the engine's fused passes (graph/fusion.cpp). Each fused pass evaluates
// the ops' own expressions in the same order (ops/kernels.hpp), so it gives the numbers of the
// ops run one by one, bit for bit (tests/test_fused.cpp).
enum class Fusable {
    no,
    gemm,           // C = A·B, whose output a row pass may finish (matmul)
    bias_add,       // with one operand a row [m] or [1,m], adds it to every row (add)
    sigmoid,        // the logistic function: the activation of the dense pass (sigmoid)
    row_normalize,  // x / Σx along an axis (normalize): its backward joins mse's
    mse,            // the lecture's loss (mse)
};

// A vector-Jacobian product written with ops (ops/vjp.hpp): a reference to a node of the small
// graph a VjpBuilder builds, or none (a zero gradient).
struct VjpRef {
    int id = -1;
    explicit operator bool() const { return id >= 0; }
};
class VjpBuilder;

struct Op {
    std::string name;
    // Shown by `chainrule ops` and `chainrule step`: y = f(inputs), then dL/d<input> for every
    // input, each by its name ("dL/dx = dL/dy · y(1−y)"); `ops --check` holds ops to it.
    std::string formula;
    std::vector<std::string> inputs;       // input names, for docs and arity
    Attrs attrs = Attrs::object();         // allowed attrs with default values
    std::function<Shape(std::span<const Shape> in, const Attrs& attrs)> shape;
    std::function<void(const ForwardCall&)> forward;
    std::function<void(const BackwardCall&)> backward;
    std::vector<OpSample> samples;
    std::string summary = {};              // one line for `chainrule ops`
    std::vector<OpSample> bad_samples = {};  // inputs the shape rule must reject (tested)
    // false only for ops whose backward is deliberately not the derivative of forward
    // (lecture_sigmoid_normalize); the table test then skips the finite-difference check.
    bool exact_gradient = true;
    // The last `optional_inputs` inputs may be left out (conv2d's bias); samples may too.
    std::size_t optional_inputs = 0;
    // The last input repeats: a node takes inputs.size() or more inputs, the last and every
    // one after it named after it with their index (concat's "x": x0, x1, ...; input_name).
    // Not together with optional_inputs.
    bool variadic = false;
    // Output element i depends on element i of each input alone (after broadcasting), so
    // backward applied to an upstream of ones is the local derivative ∂y/∂x (`step` shows it).
    bool elementwise = false;

    // ---- Facts the other rooms read. They are set here, in the op's own file, and nowhere
    // else is an op known by its name (a test fails when a file outside ops/ compares one). ----

    // Why the op mixes the rows of a batch (axis 0 of the inputs that carry the batch
    // symbol), or "" when each output row depends on the same row of those inputs alone.
    // Training in shards (docs/distributed.md) refuses a model with such a node. Null: the
    // op keeps rows apart. (An op whose output loses the batch axis is caught without it.)
    std::function<std::string(const RowQuery&)> mixes_rows = {};
    // The op is a loss that is the mean over the batch's rows of a per-row loss (mse,
    // cross_entropy, mean): its value over a batch is the row-weighted mean of its values
    // over the batch's parts, so a batch may be cut into shards.
    bool mean_over_rows = false;
    // Input 0 takes logits (cross_entropy applies log-softmax itself): `check` warns when
    // an op that gives probabilities feeds it.
    bool takes_logits = false;
    bool gives_probabilities = false;  // softmax, sigmoid
    // The input that takes class labels (indices [N] or one-hot rows [N,C]) and gets no
    // gradient, or -1: `grad` and `step` draw valid labels for it when none are fed.
    int labels_input = -1;
    // The input that holds ids, whole numbers of any shape that pick rows (axis 0) of input
    // `ids_rows_of` (embedding's ids into its table), or -1. It gets no gradient; wherever it
    // gets values (a default, a feed file, data) they are checked like class labels
    // (graph/labels.hpp), and `grad` and `step` draw valid ones when none are fed.
    int ids_input = -1;
    int ids_rows_of = -1;
    // A value of labels_input that the op leaves out of its loss with these attrs
    // (cross_entropy's ignore_index), or nullopt: the labels checks let it through.
    std::function<std::optional<double>(const Attrs&)> ignored_label = {};
    // For a mean_over_rows loss whose rows may count different numbers of terms (cross_entropy
    // with ignore_index): how many terms its mean over these inputs is over; nullopt when every
    // row counts the same. Training in shards weights each shard by it instead of by its rows.
    std::function<std::optional<std::int64_t>(std::span<const Tensor* const>, const Attrs&)> mean_terms = {};
    // What the engine's fused passes may do with a node of this op (graph/fusion.cpp).
    Fusable fusable = Fusable::no;
    // Bytes of scratch memory (`scratch` below) a node needs for these input dims and attrs,
    // at most; null: none. `check` counts it with the tensors and caps it like them.
    std::function<std::int64_t(std::span<const Dims> in, const Attrs& attrs, Dtype dtype)> workspace = {};
    // The backward as a graph of ops (ops/vjp.hpp): one ref per input, none for no gradient.
    // Null: the op cannot be differentiated twice. The numeric `backward` stays the fast path;
    // the op table holds the two equal, and ops/vjp.hpp says whether the graph is itself
    // differentiable (twice_differentiable, computed from the ops it uses).
    std::function<std::vector<VjpRef>(VjpBuilder&)> vjp = {};
};

// How many inputs a node of `op` takes: fewest_inputs to most_inputs (SIZE_MAX when variadic).
std::size_t fewest_inputs(const Op& op);
std::size_t most_inputs(const Op& op);
// The name of input `slot` for messages and docs: inputs[slot], or for a variadic op's
// repeated input its name with the index counted from the first of them ("x0", "x1").
std::string input_name(const Op& op, std::size_t slot);
// The op's input names in a list: "logits, labels"; "x0, x1, ..." for a variadic op.
std::string input_list(const Op& op);

// Registers an op; throws std::invalid_argument when the name is taken or a field is missing.
// Returns true so that `static const bool registered = register_op(...)` works.
bool register_op(Op op);
const Op* find_op(const std::string& name);  // nullptr when unknown
std::vector<const Op*> all_ops();             // sorted by name
// The registered name closest to `name` (for "did you mean ...?"), or "".
std::string closest_op_name(const std::string& name);

}  // namespace chainrule
