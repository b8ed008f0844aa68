// Shapes as written in a model: each dim is a size or a symbol ("N") bound at feed time.
// Shape rules of ops work on these, so a model is shape-checked before any data is read.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace chainrule {

struct Dim {
    std::int64_t size = 1;  // meaningful when symbol is empty
    std::string symbol;     // e.g. "N"; empty for a fixed size

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
