#include "core/shape.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace chainrule {

Dim::Dim(std::string name) : symbol(std::move(name)) {
    // An empty symbol is how a fixed dim is stored, so Dim("") would quietly mean size 1.
    if (symbol.empty()) throw InputError("a symbolic dim needs a name, e.g. Dim(\"N\")");
}

Dim::Dim(const char* name) : Dim(std::string(name ? name : "")) {}

Shape fixed_shape(const Dims& dims) {
    Shape s;
    s.reserve(dims.size());
    for (auto d : dims) s.push_back(Dim{d, {}});
    return s;
}

bool is_fixed(const Shape& s) {
    for (const auto& d : s)
        if (d.symbolic()) return false;
    return true;
}

Dims to_dims(const Shape& s) {
    Dims d;
    d.reserve(s.size());
    for (const auto& x : s) d.push_back(x.size);
    return d;
}

std::string format_shape(const Shape& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i) out += ",";
        out += s[i].symbolic() ? s[i].symbol : std::to_string(s[i].size);
    }
    return out + "]";
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
    std::size_t rank = std::max(a.size(), b.size());
    Shape out(rank);
    for (std::size_t i = 0; i < rank; ++i) {
        const Dim* da = i < rank - a.size() ? nullptr : &a[i - (rank - a.size())];
        const Dim* db = i < rank - b.size() ? nullptr : &b[i - (rank - b.size())];
        if (!da) out[i] = *db;
        else if (!db) out[i] = *da;
        else if (*da == *db) out[i] = *da;
        else if (da->is_one()) out[i] = *db;
        else if (db->is_one()) out[i] = *da;
        else
            throw ShapeError(fmt::format("cannot broadcast {} with {} (dim {}: {} vs {})",
                                         format_shape(a), format_shape(b), i,
                                         format_shape({*da}), format_shape({*db})));
    }
    return out;
}

std::size_t resolve_axis(std::int64_t axis, std::size_t rank) {
    std::int64_t r = static_cast<std::int64_t>(rank);
    if (axis < -r || axis >= r)
        throw ShapeError(fmt::format("axis {} is out of range for a tensor of rank {}", axis, rank));
    return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

}  // namespace chainrule
