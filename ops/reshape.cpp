// reshape(x, shape): the same elements in row-major order with a new shape. One entry of
// `shape` may be −1: it takes whatever the element count leaves.
//
// Symbolic dims: a model's shape [N,28,28] is checked before N is known, and a dim is
// either a size or one symbol, never "784·N". So when x has a symbolic dim, `shape` must
// hold −1 exactly where that symbol goes and its other entries must account for all of
// x's fixed elements: [N,28,28] → [−1,784] gives [N,784]; [N,4] → [−1,2] (−1 = 2·N) and
// [N,M,3] → [−1,3] are rejected when the model is checked. With concrete dims (at run
// time) the same rule gives the same result, so check and run never disagree.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/json.hpp"
#include "ops/broadcast.hpp"
#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

Shape reshaped(const Shape& in, const Attrs& attrs) {
    const auto& spec = attrs.at("shape");
    auto fail = [&](const std::string& why) {
        return ShapeError(fmt::format("cannot reshape {} to {}: {}", format_shape(in), json_brief(spec), why));
    };
    std::int64_t fixed = 1;  // product of x's fixed dims
    std::vector<std::string> symbols;
    Dim symbol_dim;
    for (const Dim& d : in) {
        if (!d.symbolic()) fixed *= d.size;
        else symbols.push_back((symbol_dim = d).symbol);
    }
    if (symbols.size() > 1)
        throw fail(fmt::format("the input has the symbolic dims {}; a dim is one size or one symbol, so "
                               "their product cannot be written",
                               fmt::join(symbols, ", ")));
    const std::string symbolic =
        symbols.empty() ? "" : fmt::format("the input has the symbolic dim {}: write −1 where it goes and sizes "
                                           "that multiply to {} elsewhere", symbols[0], fixed);
    if (!spec.is_array() || spec.size() > kMaxRank)
        throw fail(fmt::format("shape must be a list of at most {} sizes", kMaxRank));
    Shape out;
    std::int64_t product = 1;  // of the given sizes; kept <= fixed, so it cannot overflow
    std::size_t wild = spec.size();
    for (std::size_t i = 0; i < spec.size(); ++i) {
        const auto& v = spec[i];
        // Above INT64_MAX, get<int64_t> would wrap (2^64 − 1 would read as −1).
        if (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(INT64_MAX))
            throw fail(fmt::format("entry {} is too large", v.get<std::uint64_t>()));
        if (!v.is_number_integer() || (v.get<std::int64_t>() < 1 && v.get<std::int64_t>() != -1))
            throw fail("each entry must be a size >= 1 or −1");
        std::int64_t n = v.get<std::int64_t>();
        if (n == -1) {
            if (wild != spec.size()) throw fail("only one entry may be −1");
            wild = i;
        } else if (n > fixed / product) {
            throw fail(symbols.empty() ? fmt::format("the input has only {} elements", fixed) : symbolic);
        } else {
            product *= n;
        }
        out.push_back(Dim{n, {}});
    }
    if (!symbols.empty()) {
        if (wild == spec.size() || product != fixed) throw fail(symbolic);
        out[wild] = symbol_dim;
        return out;
    }
    if (wild == spec.size() && product != fixed)
        throw fail(fmt::format("{} elements cannot become {}", fixed, product));
    if (wild != spec.size()) {
        if (fixed % product != 0)
            throw fail(fmt::format("{} elements do not split into parts of {}", fixed, product));
        out[wild].size = fixed / product;
    }
    return out;
}

const bool reshape_registered = register_op({
    .name = "reshape",
    .formula = "y = x with a new shape (same elements, row-major; one −1 takes the rest);  "
               "dL/dx = dL/dy with x's shape",
    .inputs = {"x"},
    .attrs = {{"shape", {-1}}},
    .shape = [](std::span<const Shape> in, const Attrs& attrs) { return reshaped(in[0], attrs); },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                auto x = c.in[0]->span<const T>();
                std::copy(x.begin(), x.end(), c.out.data<T>());
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                auto g = c.grad_out.span<const T>();
                std::copy(g.begin(), g.end(), c.grad_in[0]->data<T>());
            });
        },
    .samples = {{.shapes = {{3, 4}}, .attrs = {{"shape", {4, 3}}}},
                {.shapes = {{2, 3, 4}}, .attrs = {{"shape", {-1, 12}}}},
                {.shapes = {{2, 3, 4}}},
                {.shapes = {{6}}, .attrs = {{"shape", {2, -1, 1}}}},
                {.shapes = {{1}}, .attrs = {{"shape", Attrs::array()}}}},
    .summary = "same elements, new shape; one −1 takes the rest (and the batch symbol N)",
    .bad_samples = {{.shapes = {{3, 4}}, .attrs = {{"shape", {5, 2}}}, .error = "12 elements cannot become 10"},
                    {.shapes = {{3, 4}}, .attrs = {{"shape", {-1, 5}}},
                     .error = "12 elements do not split into parts of 5"},
                    {.shapes = {{3, 4}}, .attrs = {{"shape", {-1, -1}}}, .error = "only one entry may be −1"},
                    {.shapes = {{3, 4}}, .attrs = {{"shape", {0, 12}}},
                     .error = "cannot reshape [3,4] to [0,12]: each entry must be a size >= 1 or −1"},
                    {.shapes = {{3, 4}}, .attrs = {{"shape", {3, 4.0}}},
                     .error = "cannot reshape [3,4] to [3,4.0]: each entry must be a size >= 1 or −1"},
                    {.shapes = {{3, 4}}, .attrs = {{"shape", {3, 4, 1, 1, 1, 1, 1, 1, 1}}},
                     .error = "shape must be a list of at most 8 sizes"},
                    {.shapes = {{3, 4}}, .attrs = {{"shape", {4611686018427387904, 4}}},
                     .error = "the input has only 12 elements"},
                    // 2^64 − 1 must not wrap to −1 (which would make it a valid [12])
                    {.shapes = {{3, 4}}, .attrs = {{"shape", {18446744073709551615ULL}}},
                     .error = "entry 18446744073709551615 is too large"}},
    // the gradient takes x's shape back (a symbolic dim as −1)
    .vjp =
        [](VjpBuilder& b) {
            Attrs dims = Attrs::array();
            for (const Dim& d : b.shape(b.input(0))) dims.push_back(d.symbolic() ? -1 : d.size);
            return refs(b.add_op("reshape", {b.grad()}, {{"shape", dims}}));
        },
});

}  // namespace
}  // namespace chainrule
