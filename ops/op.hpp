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
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "core/shape.hpp"
#include "core/tensor.hpp"

namespace chainrule {

using Attrs = nlohmann::ordered_json;

struct ForwardCall {
    std::span<const Tensor* const> in;
    Tensor& out;
    const Attrs& attrs;
};

struct BackwardCall {
    std::span<const Tensor* const> in;
    const Tensor& out;
    const Tensor& grad_out;
    std::span<Tensor* const> grad_in;  // nullptr where no gradient is wanted
    const Attrs& attrs;
};

// How the gradient check draws a sample input.
enum class Domain {
    real,         // normal(0, 1)
    positive,     // uniform(0.5, 2): for log, div, normalize
    away_from_0,  // |x| in [0.3, 2], random sign: for relu's kink
    one_hot,      // rows are one-hot (not differentiated)
    class_index,  // integers in [0, last dim of input 0) (not differentiated)
};

struct OpSample {
    std::vector<Dims> shapes;               // one per input
    Attrs attrs = Attrs::object();          // merged over the op's defaults
    std::vector<Domain> domains = {};       // per input; missing ones are Domain::real
    // Bad samples only: a fragment the shape rule's ShapeError message must contain, such
    // as "cannot broadcast [3,4] with [3]" (PyTorch's OpInfo error_inputs: error_regex).
    std::string error = {};
};

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
    // Output element i depends on element i of each input alone (after broadcasting), so
    // backward applied to an upstream of ones is the local derivative ∂y/∂x (`step` shows it).
    bool elementwise = false;
};

// Registers an op; throws std::invalid_argument when the name is taken or a field is missing.
// Returns true so that `static const bool registered = register_op(...)` works.
bool register_op(Op op);
const Op* find_op(const std::string& name);  // nullptr when unknown
std::vector<const Op*> all_ops();             // sorted by name
// The registered name closest to `name` (for "did you mean ...?"), or "".
std::string closest_op_name(const std::string& name);

}  // namespace chainrule
