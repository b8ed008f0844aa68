// cross_entropy(logits[..., C], labels) = mean over every position of −log softmax(logits)[label]
// (= F.cross_entropy(logits.reshape(-1, C), labels.reshape(-1))): [N,C] logits are N positions,
// [N,T,C] logits N·T (a sequence model's next-token loss).
//
// labels are either class indices [...] (logits' shape without C; a float tensor holding
// integers) or targets [..., C] (one-hot rows; any non-negative rows work as soft targets:
// −Σ_j t_j·log p_j).
// log p comes from a max-shifted log-sum-exp, so logits of ±1000 give a finite loss and
// gradient. Gradient for labels: class indices are a step function, so their derivative
// is 0 and zeros are written; for [..., C] targets the loss is linear in t and the exact
// dL/dt = −log p / (positions) is written, so gradcheck agrees whichever nodes it perturbs.
//
// {"ignore_index": k} (PyTorch's ignore_index; default null: none) leaves out the positions
// whose class index is k (a sequence's padding after its end): the mean is over the others, and
// the left-out positions get gradient 0. Only with class indices.
//
// mean_over_rows holds: every row of the batch (axis 0) has the same number of positions, so
// the mean over all positions is the mean over rows of each row's mean, and shards' losses
// weighted by their rows give the batch's. With ignore_index rows keep different numbers of
// positions: mean_terms gives the kept count, and shards are weighted by it.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "ops/along_axis.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

// "row 3" for labels [N]; "row 1, column 2" for [N,T]; "position [1,2,0]" for more axes.
std::string position_of(const Tensor& labels, std::int64_t p) {
    std::vector<std::int64_t> index(labels.rank());
    for (std::size_t k = labels.rank(); k-- > 0;) index[k] = p % labels.dim(k), p /= labels.dim(k);
    if (index.size() == 1) return fmt::format("row {}", index[0]);
    if (index.size() == 2) return fmt::format("row {}, column {}", index[0], index[1]);
    return fmt::format("position [{}]", fmt::join(index, ","));
}

// The attr ignore_index as a number, or NaN (no position is left out; NaN equals no label).
double ignored_label(const Attrs& attrs) {
    const auto& k = attrs.at("ignore_index");
    return k.is_null() ? NAN : k.get<double>();
}

// Class index at position p, checked: a label must select one of the C columns; −1 for the
// ignore_index label.
template <class T>
std::int64_t class_of(const Tensor& labels, std::int64_t p, std::int64_t classes, double ignored) {
    T v = labels.data<T>()[p];
    if (double(v) == ignored) return -1;
    if (!(v >= T(0) && v < T(classes) && v == std::floor(v)))
        throw RunError(fmt::format("cross_entropy: {} has label {}, but a class index must be an integer "
                                   "in [0, {}) (one per logits column)",
                                   position_of(labels, p), double(v), classes));
    return static_cast<std::int64_t>(v);
}

// Positions that count: all, or those whose label is not the ignore_index one.
template <class T>
std::int64_t counted_positions(const Tensor& t, std::int64_t positions, double ignored) {
    if (std::isnan(ignored)) return positions;
    std::int64_t n = 0;
    for (std::int64_t r = 0; r < positions; ++r) n += double(t.data<T>()[r]) != ignored;
    return n;
}

Shape cross_entropy_shape(std::span<const Shape> in, const Attrs& attrs) {
    const Shape &z = in[0], &t = in[1];
    const auto& k = attrs.at("ignore_index");
    if (!k.is_null() && (!k.is_number_integer() || k.get<std::int64_t>() >= 0))
        throw ShapeError(fmt::format("ignore_index must be a negative whole number (a label no class has), got {}",
                                     k.dump()));
    if (z.size() < 2)
        throw ShapeError(fmt::format("needs logits of shape [N,C] or [N,...,C], got {}", format_shape(z)));
    const Shape positions(z.begin(), z.end() - 1);
    if (t != positions && t != z)
        throw ShapeError(fmt::format("needs labels as class indices {} or one-hot rows {} for logits {}, got {}",
                                     format_shape(positions), format_shape(z), format_shape(z), format_shape(t)));
    if (!k.is_null() && t == z)
        throw ShapeError(fmt::format("ignore_index needs labels as class indices {}, got one-hot rows {}",
                                     format_shape(positions), format_shape(t)));
    return Shape{};
}

const bool cross_entropy_registered = register_op({
    .name = "cross_entropy",
    .formula = "L = −1/N · Σ_rows ln p[label],  p = softmax(logits) per row (log-sum-exp; rows: every position "
               "of logits[..., C], N of them);  "
               "dL/dlogits = (p − onehot(label)) / N  (soft targets t: (p·Σt − t) / N);  "
               "dL/dlabels = 0 for class indices, −ln p / N for [..., C] targets",
    .inputs = {"logits", "labels"},
    .attrs = {{"ignore_index", nullptr}},
    .shape = cross_entropy_shape,
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &z = *c.in[0], &t = *c.in[1];
                const std::int64_t classes = z.dim(z.rank() - 1), positions = z.numel() / classes;
                const bool indices = t.rank() + 1 == z.rank();
                const T *pz = z.data<T>(), *pt = t.data<T>();
                const double ignored = ignored_label(c.attrs);
                double total = 0;  // in double: a batch of 10^4 float32 terms loses digits
                for (std::int64_t r = 0; r < positions; ++r) {
                    const T* zr = pz + r * classes;
                    if (indices) {
                        const std::int64_t k = class_of<T>(t, r, classes, ignored);
                        if (k < 0) continue;
                        const ExpSum<T> e = exp_sum(Line<const T>{zr, classes, 1});
                        total -= double(e.log_softmax(zr[k], std::log(e.sum)));
                        continue;
                    }
                    const ExpSum<T> e = exp_sum(Line<const T>{zr, classes, 1});
                    const T log_sum = std::log(e.sum);
                    const T* tr = pt + r * classes;
                    for (std::int64_t j = 0; j < classes; ++j)  // skip 0·(−inf)
                        if (tr[j] != T(0)) total -= double(tr[j]) * double(e.log_softmax(zr[j], log_sum));
                }
                // Every position left out: no loss (PyTorch's mean over none is NaN).
                const std::int64_t counted = counted_positions<T>(t, indices ? positions : 0, ignored);
                c.out.data<T>()[0] = indices && counted == 0 ? T(0)
                                                             : static_cast<T>(total / double(indices ? counted : positions));
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &z = *c.in[0], &t = *c.in[1];
                const std::int64_t classes = z.dim(z.rank() - 1), positions = z.numel() / classes;
                const bool indices = t.rank() + 1 == z.rank();
                const T *pz = z.data<T>(), *pt = t.data<T>();
                const double ignored = ignored_label(c.attrs);
                const std::int64_t counted = indices ? counted_positions<T>(t, positions, ignored) : positions;
                const T scale = counted == 0 ? T(0) : c.grad_out.data<T>()[0] / static_cast<T>(counted);
                T* gz = c.grad_in[0] ? c.grad_in[0]->data<T>() : nullptr;
                T* gt = c.grad_in[1] ? c.grad_in[1]->data<T>() : nullptr;
                if (gt && indices) c.grad_in[1]->zero();
                for (std::int64_t r = 0; r < positions; ++r) {
                    const T* zr = pz + r * classes;
                    const ExpSum<T> e = exp_sum(Line<const T>{zr, classes, 1});
                    const T log_sum = std::log(e.sum);
                    if (indices) {
                        if (!gz) continue;
                        const std::int64_t k = class_of<T>(t, r, classes, ignored);
                        if (k < 0) {
                            std::fill(gz + r * classes, gz + (r + 1) * classes, T(0));
                            continue;
                        }
                        for (std::int64_t j = 0; j < classes; ++j)
                            gz[r * classes + j] = scale * (std::exp(e.log_softmax(zr[j], log_sum)) - T(j == k));
                        continue;
                    }
                    const T* tr = pt + r * classes;
                    T tsum = 0;
                    for (std::int64_t j = 0; j < classes; ++j) tsum += tr[j];
                    for (std::int64_t j = 0; j < classes; ++j) {
                        const T log_p = e.log_softmax(zr[j], log_sum);
                        if (gz) gz[r * classes + j] = scale * (std::exp(log_p) * tsum - tr[j]);
                        if (gt) gt[r * classes + j] = -scale * log_p;
                    }
                }
            });
        },
    .samples = {{.shapes = {{4, 3}, {4}}, .domains = {Domain::real, Domain::class_index}},
                {.shapes = {{4, 3}, {4, 3}}, .domains = {Domain::real, Domain::one_hot}},
                {.shapes = {{1, 5}, {1}}, .domains = {Domain::real, Domain::class_index}},
                // A sequence model's [N,T,C]: the mean over all N·T positions.
                {.shapes = {{2, 3, 4}, {2, 3}}, .domains = {Domain::real, Domain::class_index}},
                {.shapes = {{2, 2, 3, 4}, {2, 2, 3}}, .domains = {Domain::real, Domain::class_index}},
                {.shapes = {{2, 3, 4}, {2, 3, 4}}, .domains = {Domain::real, Domain::positive}},
                // ignore_index set (the labels drawn never hold it: tests/test_token_ops checks
                // left-out positions against PyTorch).
                {.shapes = {{2, 3, 4}, {2, 3}}, .attrs = {{"ignore_index", -1}},
                 .domains = {Domain::real, Domain::class_index}},
                // Soft targets make the labels' gradient −ln p / N checkable too.
                {.shapes = {{3, 4}, {3, 4}}, .domains = {Domain::real, Domain::positive}}},
    .summary = "softmax cross-entropy over logits [..., C], mean over every position; labels as class indices "
               "[...] or one-hot [..., C]",
    .bad_samples = {{.shapes = {{4, 3}, {3}},
                     .error = "needs labels as class indices [4] or one-hot rows [4,3] for logits [4,3], got [3]"},
                    {.shapes = {{4, 3}, {4, 2}},
                     .error = "needs labels as class indices [4] or one-hot rows [4,3] for logits [4,3], got [4,2]"},
                    {.shapes = {{4}, {4}}, .error = "needs logits of shape [N,C] or [N,...,C], got [4]"},
                    {.shapes = {{4, 3}, {4, 1}},
                     .error = "needs labels as class indices [4] or one-hot rows [4,3] for logits [4,3], got [4,1]"},
                    {.shapes = {{2, 3, 4}, {2}},
                     .error = "needs labels as class indices [2,3] or one-hot rows [2,3,4] for logits [2,3,4], got [2]"},
                    {.shapes = {{2, 3, 4}, {2, 3}}, .attrs = {{"ignore_index", 0}},
                     .error = "ignore_index must be a negative whole number (a label no class has), got 0"},
                    {.shapes = {{2, 3, 4}, {2, 3, 4}}, .attrs = {{"ignore_index", -1}},
                     .error = "ignore_index needs labels as class indices [2,3], got one-hot rows [2,3,4]"},
                    {.shapes = {{2, 3, 4}, {3, 2}},
                     .error = "needs labels as class indices [2,3] or one-hot rows [2,3,4] for logits [2,3,4], got [3,2]"}},
    .mean_over_rows = true,
    .takes_logits = true,
    .labels_input = 1,
    .ignored_label = [](const Attrs& attrs) -> std::optional<double> {
        const double k = ignored_label(attrs);
        return std::isnan(k) ? std::nullopt : std::optional<double>(k);
    },
    // With ignore_index the mean is over the kept positions, whose number is data.
    .mean_terms = [](std::span<const Tensor* const> in, const Attrs& attrs) -> std::optional<std::int64_t> {
        const double ignored = ignored_label(attrs);
        const Tensor &z = *in[0], &t = *in[1];
        if (std::isnan(ignored) || t.rank() == z.rank()) return std::nullopt;
        std::int64_t n = 0;
        dispatch(t.dtype(), [&]<class T>() { n = counted_positions<T>(t, t.numel(), ignored); });
        return n;
    },
    // dL/dlogits = (p − onehot)·g/P (soft t: (p·Σt − t)·g/P), dL/dt = −ln p·g/P, P = positions;
    // g/P = C·(g/(P·C)), the mean spread over every logit times the classes C. With ignore_index
    // the count is data: kept = Σ_C onehot (one_hot gives a left-out position a zero row), K = Σ kept,
    // dL/dlogits = (p·kept − onehot)·g/K, and K = 0 (every position left out) divides by 1 instead,
    // so the gradient is 0 as the numeric backward's (relu_mask(K) is 0 only there)
    .vjp =
        [](VjpBuilder& b) {
            const VjpRef z = b.input(0), t = b.input(1);
            const Dim classes = b.shape(z).back();
            if (classes.symbolic()) throw ShapeError("vjp of cross_entropy: needs a fixed number of classes");
            if (!b.attrs().at("ignore_index").is_null()) {
                const VjpRef onehot = b.add_op("one_hot", {t, z});
                const VjpRef kept = b.add_op("sum", {onehot}, {{"axis", -1}, {"keepdims", true}});
                const VjpRef count = b.add_op("sum", {kept});
                const VjpRef share = b.div(b.grad(), b.add(count, b.scale(b.add_op("relu_mask", {count}), -1, 1)));
                return refs(b.mul(b.sub(b.mul(b.add_op("softmax", {z}), kept), onehot), share), VjpRef{});
            }
            const VjpRef share = b.scale(b.add_op("expand", {b.grad(), z}, {{"mean", true}}), double(classes.size));
            const VjpRef p = b.add_op("softmax", {z});
            if (b.rank(t) < b.rank(z)) return refs(b.mul(share, b.sub(p, b.add_op("one_hot", {t, z}))), VjpRef{});
            const VjpRef mass = b.add_op("sum", {t}, {{"axis", -1}, {"keepdims", true}});
            return refs(b.mul(share, b.sub(b.mul(p, mass), t)), b.neg(b.mul(share, b.add_op("log_softmax", {z}))));
        },
});

}  // namespace
}  // namespace chainrule
