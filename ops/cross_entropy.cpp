// cross_entropy(logits[N,C], labels) = mean over rows of −log softmax(logits)[label].
//
// labels are either class indices [N] (a float tensor holding integers) or targets [N,C]
// (one-hot rows; any non-negative rows work as soft targets: −Σ_j t_j·log p_j).
// log p comes from a max-shifted log-sum-exp, so logits of ±1000 give a finite loss and
// gradient. Gradient for labels: class indices are a step function, so their derivative
// is 0 and zeros are written; for [N,C] targets the loss is linear in t and the exact
// dL/dt = −log p / N is written, so gradcheck agrees whichever nodes it perturbs.
#include <cmath>
#include <fmt/format.h>

#include "core/error.hpp"
#include "ops/along_axis.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

// Class index of row r, checked: a label must select one of the C columns.
template <class T>
std::int64_t class_of(const T* labels, std::int64_t r, std::int64_t classes) {
    T v = labels[r];
    if (!(v >= T(0) && v < T(classes) && v == std::floor(v)))
        throw RunError(fmt::format("cross_entropy: row {} has label {}, but a class index must be an integer "
                                   "in [0, {}) (one per logits column)",
                                   r, double(v), classes));
    return static_cast<std::int64_t>(v);
}

const bool registered = register_op({
    .name = "cross_entropy",
    .formula = "L = −1/N · Σ_rows ln p[label],  p = softmax(logits) per row (log-sum-exp);  "
               "dL/dlogits = (p − onehot(label)) / N  (soft targets t: (p·Σt − t) / N);  "
               "dL/dlabels = 0 for class indices, −ln p / N for [N,C] targets",
    .inputs = {"logits", "labels"},
    .shape =
        [](std::span<const Shape> in, const Attrs&) {
            const Shape &z = in[0], &t = in[1];
            if (z.size() != 2)
                throw ShapeError(fmt::format("needs logits of shape [N,C], got {}", format_shape(z)));
            bool indices = t.size() == 1 && t[0] == z[0];
            if (!indices && t != z)
                throw ShapeError(fmt::format(
                    "needs labels as class indices {} or one-hot rows {} for logits {}, got {}",
                    format_shape({z[0]}), format_shape(z), format_shape(z), format_shape(t)));
            return Shape{};
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &z = *c.in[0], &t = *c.in[1];
                const std::int64_t rows = z.dim(0), classes = z.dim(1);
                const bool indices = t.rank() == 1;
                const T *pz = z.data<T>(), *pt = t.data<T>();
                double total = 0;  // in double: a batch of 10^4 float32 terms loses digits
                for (std::int64_t r = 0; r < rows; ++r) {
                    const T* zr = pz + r * classes;
                    const ExpSum<T> e = exp_sum(Line<const T>{zr, classes, 1});
                    const T log_sum = std::log(e.sum);
                    if (indices) {
                        total -= double(e.log_softmax(zr[class_of(pt, r, classes)], log_sum));
                        continue;
                    }
                    const T* tr = pt + r * classes;
                    for (std::int64_t j = 0; j < classes; ++j)  // skip 0·(−inf)
                        if (tr[j] != T(0)) total -= double(tr[j]) * double(e.log_softmax(zr[j], log_sum));
                }
                c.out.data<T>()[0] = static_cast<T>(total / double(rows));
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &z = *c.in[0], &t = *c.in[1];
                const std::int64_t rows = z.dim(0), classes = z.dim(1);
                const bool indices = t.rank() == 1;
                const T *pz = z.data<T>(), *pt = t.data<T>();
                const T scale = c.grad_out.data<T>()[0] / static_cast<T>(rows);
                T* gz = c.grad_in[0] ? c.grad_in[0]->data<T>() : nullptr;
                T* gt = c.grad_in[1] ? c.grad_in[1]->data<T>() : nullptr;
                if (gt && indices) c.grad_in[1]->zero();
                for (std::int64_t r = 0; r < rows; ++r) {
                    const T* zr = pz + r * classes;
                    const ExpSum<T> e = exp_sum(Line<const T>{zr, classes, 1});
                    const T log_sum = std::log(e.sum);
                    if (indices) {
                        if (!gz) continue;
                        std::int64_t k = class_of(pt, r, classes);
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
                // Soft targets make the labels' gradient −ln p / N checkable too.
                {.shapes = {{3, 4}, {3, 4}}, .domains = {Domain::real, Domain::positive}}},
    .summary = "softmax cross-entropy, mean over rows; labels as class indices [N] or one-hot [N,C]",
    .bad_samples = {{.shapes = {{4, 3}, {3}},
                     .error = "needs labels as class indices [4] or one-hot rows [4,3] for logits [4,3], got [3]"},
                    {.shapes = {{4, 3}, {4, 2}},
                     .error = "needs labels as class indices [4] or one-hot rows [4,3] for logits [4,3], got [4,2]"},
                    {.shapes = {{4}, {4}}, .error = "needs logits of shape [N,C], got [4]"},
                    {.shapes = {{4, 3}, {4, 1}},
                     .error = "needs labels as class indices [4] or one-hot rows [4,3] for logits [4,3], got [4,1]"},
                    {.shapes = {{2, 3, 4}, {2}}, .error = "needs logits of shape [N,C], got [2,3,4]"}},
    .mean_over_rows = true,
    .takes_logits = true,
    .labels_input = 1,
    // dL/dlogits = (p − onehot)·g/N (soft t: (p·Σt − t)·g/N), dL/dt = −ln p·g/N; g/N = C·(g/(N·C))
    .vjp =
        [](VjpBuilder& b) {
            const VjpRef z = b.input(0), t = b.input(1);
            const Dim classes = b.shape(z)[1];
            if (classes.symbolic()) throw ShapeError("vjp of cross_entropy: needs a fixed number of classes");
            const VjpRef share = b.scale(b.add_op("expand", {b.grad(), z}, {{"mean", true}}), double(classes.size));
            const VjpRef p = b.add_op("softmax", {z});
            if (b.rank(t) == 1) return refs(b.mul(share, b.sub(p, b.add_op("one_hot", {t, z}))), VjpRef{});
            const VjpRef mass = b.add_op("sum", {t}, {{"axis", -1}, {"keepdims", true}});
            return refs(b.mul(share, b.sub(b.mul(p, mass), t)), b.neg(b.mul(share, b.add_op("log_softmax", {z}))));
        },
});

}  // namespace
}  // namespace chainrule
