// An op's formula in a node's own names.
//
// Formulas are data, written once per op with the op's generic names (PyTorch's
// derivatives.yaml style): the output is the formula's first name ("C" in
// "C = A·B;  dL/dA = dL/dC·Bᵀ,  dL/dB = Aᵀ·dL/dC") and the inputs are Op::inputs. A node
// fills that template in with its own names, so matmul z = matmul(x, w) reads
// "z = x·w;  dL/dx = dL/dz·wᵀ,  dL/dw = xᵀ·dL/dz" — no per-op code.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>

#include "ops/op.hpp"

namespace chainrule {

// The formula's output name: its first name ("y", "C", "L").
std::string formula_output(const Op& op);

// Every name of the op's template (output, inputs, and dX in dL/dX) replaced by the
// node's: `output` for the output, `inputs[i]` for Op::inputs[i]. "dL" stays: L is the loss.
// A variadic op's repeated input keeps its generic name: it stands for several nodes.
std::string named_formula(const Op& op, const std::string& output, std::span<const std::string> inputs);

// The part of the formula for input `slot`, "dL/dB = Aᵀ·dL/dC", in the op's names; "" when
// the formula does not write dL/d<input> (checked by `ops --check`). A variadic op's inputs
// from the last name on share its part.
std::string input_formula(const Op& op, std::size_t slot);

// The right-hand side of input_formula with the upstream gradient taken out: the local
// derivative as text ("y(1−y)" from "dL/dy · y(1−y)", "1" from "sum_to_shape(dL/dy, a)"),
// or nothing when the op is not elementwise or the formula is not upstream times a factor.
std::optional<std::string> local_factor(const Op& op, std::size_t slot);

// `text` with each name of the op's template passed through `name_of(generic, transposed)`;
// transposed says a "ᵀ" follows (it is dropped when name_of's answer starts with '[', as
// for shapes). Used for the node's names and for shapes ("[4,1] = [4,3]·[3,1]").
std::string rename_formula(const Op& op, const std::string& text,
                           const std::function<std::string(const std::string& generic, bool transposed,
                                                           bool gradient)>& name_of);

}  // namespace chainrule
