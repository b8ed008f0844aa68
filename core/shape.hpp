// Shapes as written in a model: each dim is a size or a symbol ("N") bound at feed time.
// Shape rules of ops work on these, so a model is shape-checked before any data is read.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace chainrule {

struct Dim {
    std::int64_t size = 1;  // meaningful when symbol is empty
    std::string symbol;     // e.g. "N"; empty for a fixed size

    Dim() = default;
    // Implicit from a size and from a symbol, so that a shape is written as in a model
    // file: Shape{"N", 4} is [N,4]. Hence Shape{3} is the shape [3]; Shape(3), with
    // parentheses, is still three dims of size 1. A template, so that a literal 0 is a
    // size rather than a null const char*; char and bool are refused because Shape{'N', 4}
    // would otherwise be [78,4].
    template <std::integral I>
        requires(!std::same_as<I, char> && !std::same_as<I, bool>)
    Dim(I n) : size(static_cast<std::int64_t>(n)) {}
    Dim(const char* name);  // throws InputError for an empty name (that would mean size 1)
    Dim(std::string name);
    Dim(std::int64_t n, std::string name) : size(n), symbol(std::move(name)) {}

    bool symbolic() const { return !symbol.empty(); }
    bool is_one() const { return !symbolic() && size == 1; }
    friend bool operator==(const Dim&, const Dim&) = default;
};

using Shape = std::vector<Dim>;

Shape fixed_shape(const Dims& dims);
bool is_fixed(const Shape& s);
Dims to_dims(const Shape& s);  // requires is_fixed
std::string format_shape(const Shape& s);  // "[N,4]"

// Thrown by shape rules; the graph prefixes the node's place and op name.
struct ShapeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// numpy broadcasting; a symbol broadcasts only against the same symbol or 1.
// Throws ShapeError("cannot broadcast [N,3] with [4,3]").
Shape broadcast_shapes(const Shape& a, const Shape& b);

// Normalises an axis attr (negative counts from the end); ShapeError when out of range.
std::size_t resolve_axis(std::int64_t axis, std::size_t rank);

}  // namespace chainrule
