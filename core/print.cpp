#include "core/print.hpp"

#include <cmath>
#include <fmt/format.h>

namespace chainrule {

TensorStats tensor_stats(const Tensor& t) {
    TensorStats s;
    if (t.numel() == 0) return s;
    s.min = INFINITY;
    s.max = -INFINITY;
    double sum = 0, sq = 0;
    std::int64_t finite = 0;
    for (std::int64_t i = 0; i < t.numel(); ++i) {
        double v = t.at(i);
        if (!std::isfinite(v)) {
            ++s.nonfinite;
            continue;
        }
        ++finite;
        s.min = std::min(s.min, v);
        s.max = std::max(s.max, v);
        sum += v;
        sq += v * v;
    }
    s.mean = finite ? sum / double(finite) : NAN;
    s.norm = std::sqrt(sq);
    return s;
}

namespace {

std::string num(double v, int digits) { return fmt::format("{:.{}g}", v, digits); }

void nested(const Tensor& t, std::size_t depth, std::int64_t& next, int digits, std::string& out) {
    if (t.rank() == 0) {
        out += num(t.at(0), digits);
        return;
    }
    out += "[";
    for (std::int64_t i = 0; i < t.dim(depth); ++i) {
        // Rows of one element (a column such as [N,1]) stay on one line.
        bool one_line = depth + 1 == t.rank() || t.numel() / t.dim(0) == 1;
        if (i) out += one_line ? ", " : ",\n" + std::string(depth + 1, ' ');
        if (depth + 1 == t.rank())
            out += num(t.at(next++), digits);
        else
            nested(t, depth + 1, next, digits, out);
    }
    out += "]";
}

}  // namespace

std::string format_tensor(const Tensor& t, std::int64_t limit, int digits) {
    if (t.empty()) return "(no value)";
    if (t.numel() <= limit) {
        std::string out;
        std::int64_t next = 0;
        nested(t, 0, next, digits, out);
        return out;
    }
    TensorStats s = tensor_stats(t);
    std::string first;
    for (std::int64_t i = 0; i < std::min<std::int64_t>(6, t.numel()); ++i)
        first += (i ? ", " : "") + num(t.at(i), digits);
    std::string out = fmt::format("shape {}  min {}  max {}  mean {}  norm {}  first: {}, …", format_dims(t.dims()),
                                  num(s.min, digits), num(s.max, digits), num(s.mean, digits), num(s.norm, digits),
                                  first);
    if (s.nonfinite) out += fmt::format("  ({} NaN/Inf)", s.nonfinite);
    return out;
}

}  // namespace chainrule
