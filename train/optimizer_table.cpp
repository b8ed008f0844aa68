// The optimizer table: every optimizer chainrule knows, one entry each, its update rule beside
// it. sgd, adam, adamw and rmsprop are torch.optim 1.13's single-tensor (foreach=False) code
// paths, operation for operation, so their trajectories follow PyTorch's to 1e-9
// (tests/golden/optimizers.json); lion follows its paper's program and a float64 reference
// kept in tests/golden/make_optimizer_goldens.py. docs/optimizers.md writes every update out.
#include "train/optimizer_table.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/json.hpp"
#include "train/second_order.hpp"

namespace chainrule {
namespace {

// One parameter tensor of a step, in its dtype T.
template <class T>
struct TensorStep {
    T* p;                     // the parameter's values
    const T* g;               // its gradient
    std::span<Tensor> state;  // its buffers, in the entry's order
    std::int64_t n;           // elements
    T* buffer(std::size_t i) const { return state[i].data<T>(); }
};

// Calls rule(TensorStep<T>) for every parameter in its own dtype: the loop of a first-order
// rule, which updates each element from that element alone.
template <class Rule>
void each_tensor(const UpdateCall& c, Rule&& rule) {
    for (std::size_t k = 0; k < c.params.size(); ++k) {
        Tensor& p = *c.params[k];
        dispatch(p.dtype(), [&]<class T>() {
            rule(TensorStep<T>{p.data<T>(), c.grads[k]->data<T>(), c.state[k], p.numel()});
        });
    }
}

// SGD with momentum μ, dampening τ and weight decay λ:
//   d = g + λ·θ;  b = d on the first step, then b ← μ·b + (1−τ)·d;
//   d = d + μ·b if nesterov, else d = b  (only when μ ≠ 0);  θ ← θ − η·d
void sgd(const UpdateCall& c) {
    const double weight_decay = c.spec.number("weight_decay"), momentum = c.spec.number("momentum");
    const double dampening = c.spec.number("dampening");
    const bool nesterov = c.spec.flag("nesterov"), started = c.step > 1;
    each_tensor(c, [&]<class T>(const TensorStep<T>& t) {
        const T wd = T(weight_decay), mom = T(momentum), damp = T(1 - dampening), lr = T(c.lr);
        T* buf = t.buffer(0);
        for (std::int64_t i = 0; i < t.n; ++i) {
            T d = t.g[i];
            if (weight_decay != 0) d = d + wd * t.p[i];
            if (momentum != 0) {
                buf[i] = started ? buf[i] * mom + damp * d : d;
                d = nesterov ? d + mom * buf[i] : buf[i];
            }
            t.p[i] = t.p[i] - lr * d;
        }
    });
}

// Adam, with the L2 penalty folded into g (adam) or decoupled from it (adamw: θ ← θ·(1 − η·λ)
// first, Loshchilov & Hutter):
//   g = g + λ·θ (adam);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  v̂ = max(v̂, v) if amsgrad, else v
//   θ ← θ − η/(1−β1ᵗ) · m / (√v̂/√(1−β2ᵗ) + eps)
template <bool decoupled>
void adam(const UpdateCall& c) {
    const auto betas = c.spec.pair("betas");
    const double eps = c.spec.number("eps"), weight_decay = c.spec.number("weight_decay");
    const bool amsgrad = c.spec.flag("amsgrad");
    const double bias1 = 1 - std::pow(betas[0], double(c.step));
    const double bias2_sqrt = std::sqrt(1 - std::pow(betas[1], double(c.step)));
    each_tensor(c, [&]<class T>(const TensorStep<T>& t) {
        const T b1 = T(betas[0]), b2 = T(betas[1]), e = T(eps), wd = T(weight_decay), lr = T(c.lr);
        const T step_size = lr / T(bias1), b2_sqrt = T(bias2_sqrt);
        T *m = t.buffer(0), *v = t.buffer(1), *vmax = t.buffer(2);
        for (std::int64_t i = 0; i < t.n; ++i) {
            T grad = t.g[i];
            if (decoupled)
                t.p[i] = t.p[i] * (T(1) - lr * wd);
            else if (weight_decay != 0)
                grad = grad + wd * t.p[i];
            m[i] = m[i] * b1 + (T(1) - b1) * grad;
            v[i] = v[i] * b2 + (T(1) - b2) * grad * grad;
            T second = v[i];
            if (amsgrad) second = vmax[i] = std::max(vmax[i], v[i]);
            const T denom = std::sqrt(second) / b2_sqrt + e;
            t.p[i] = t.p[i] - step_size * (m[i] / denom);
        }
    });
}

// RMSprop with smoothing α, momentum μ and weight decay λ:
//   g = g + λ·θ;  s ← α·s + (1−α)·g²;  r = √s + eps, or (centered) a ← α·a + (1−α)·g, r = √(s − a²) + eps
//   b ← μ·b + g/r, θ ← θ − η·b  (μ > 0);  θ ← θ − η·g/r  (μ = 0)
void rmsprop(const UpdateCall& c) {
    const double alpha = c.spec.number("alpha"), eps = c.spec.number("eps");
    const double weight_decay = c.spec.number("weight_decay"), momentum = c.spec.number("momentum");
    const bool centered = c.spec.flag("centered");
    each_tensor(c, [&]<class T>(const TensorStep<T>& t) {
        const T a = T(alpha), e = T(eps), wd = T(weight_decay), mom = T(momentum), lr = T(c.lr);
        T *sq = t.buffer(0), *buf = t.buffer(1), *avg = t.buffer(2);
        for (std::int64_t i = 0; i < t.n; ++i) {
            T grad = t.g[i];
            if (weight_decay != 0) grad = grad + wd * t.p[i];
            sq[i] = sq[i] * a + (T(1) - a) * grad * grad;
            T root;
            if (centered) {
                avg[i] = avg[i] * a + (T(1) - a) * grad;
                root = std::sqrt(sq[i] - avg[i] * avg[i]);
            } else {
                root = std::sqrt(sq[i]);
            }
            root = root + e;
            if (momentum > 0) {
                buf[i] = buf[i] * mom + grad / root;
                t.p[i] = t.p[i] - lr * buf[i];
            } else {
                t.p[i] = t.p[i] - lr * (grad / root);
            }
        }
    });
}

// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Program 1):
//   c = β1·m + (1−β1)·g;  θ ← θ − η·(sign(c) + λ·θ);  m ← β2·m + (1−β2)·g
// sign is torch.sign's: 0 for ±0 (kept as it is), and a NaN stays NaN for the anomaly check.
void lion(const UpdateCall& c) {
    const auto betas = c.spec.pair("betas");
    const double weight_decay = c.spec.number("weight_decay");
    each_tensor(c, [&]<class T>(const TensorStep<T>& t) {
        const T b1 = T(betas[0]), b2 = T(betas[1]), wd = T(weight_decay), lr = T(c.lr);
        T* m = t.buffer(0);
        for (std::int64_t i = 0; i < t.n; ++i) {
            const T u = b1 * m[i] + (T(1) - b1) * t.g[i];
            const T sign = u > 0 ? T(1) : u < 0 ? T(-1) : u;
            t.p[i] = t.p[i] - lr * (sign + wd * t.p[i]);
            m[i] = b2 * m[i] + (T(1) - b2) * t.g[i];
        }
    });
}

using Type = HyperParam::Type;

HyperParam lr(double fallback) { return {.key = "lr", .fallback = {fallback}, .low = 0}; }
HyperParam at_least_0(const char* key, double fallback) { return {.key = key, .fallback = {fallback}, .low = 0}; }
HyperParam flag(const char* key) { return {.key = key, .type = Type::flag}; }
HyperParam betas(double beta1, double beta2) {
    return {.key = "betas", .type = Type::pair, .fallback = {beta1, beta2}, .low = 0, .below = 1,
            .form = "[beta1, beta2]"};
}

// torch.optim.SGD: nesterov needs a momentum and no dampening.
void check_nesterov(const OptimizerSpec& o, const std::string& at) {
    const double momentum = o.number("momentum"), dampening = o.number("dampening");
    if (o.flag("nesterov") && (momentum <= 0 || dampening != 0))
        throw InputError(fmt::format("{}: nesterov needs a momentum > 0 and zero dampening (got momentum {}, "
                                     "dampening {})",
                                     json_path(at, "nesterov"), momentum, dampening));
}

// newton_cg's iterations: a whole number of conjugate-gradient steps.
void check_iterations(const OptimizerSpec& o, const std::string& at) {
    const double k = o.number("iterations");
    if (k != std::floor(k) || k > 1e6)
        throw InputError(fmt::format("{}: must be a whole number from 1 to 1000000, got {}",
                                     json_path(at, "iterations"), k));
}

std::vector<OptimizerEntry> make_table() {
    auto with = [](const char* flag) { return [flag](const OptimizerSpec& o) { return o.flag(flag); }; };
    auto adam_like = [&](const char* name, double weight_decay, auto update) {
        return OptimizerEntry{
            .name = name,
            .hyper = {lr(0.001), betas(0.9, 0.999), at_least_0("eps", 1e-8), at_least_0("weight_decay", weight_decay),
                      flag("amsgrad")},
            .state = {{.name = "exp_avg"},
                      {.name = "exp_avg_sq", .squares = true},
                      {.name = "max_exp_avg_sq", .kept = with("amsgrad"), .squares = true}},
            .update = update};
    };
    std::vector<OptimizerEntry> table;
    table.push_back({.name = "sgd",
                     .hyper = {{.key = "lr", .required = true, .low = 0}, at_least_0("momentum", 0),
                               {.key = "dampening"}, flag("nesterov"), at_least_0("weight_decay", 0)},
                     .state = {{.name = "momentum_buffer",
                                .kept = [](const OptimizerSpec& o) { return o.number("momentum") != 0; }}},
                     .check = check_nesterov,
                     .update = sgd});
    table.push_back(adam_like("adam", 0, adam<false>));
    table.push_back(adam_like("adamw", 0.01, adam<true>));
    table.push_back({.name = "rmsprop",
                     .hyper = {lr(0.01), at_least_0("alpha", 0.99), at_least_0("eps", 1e-8),
                               at_least_0("weight_decay", 0), at_least_0("momentum", 0), flag("centered")},
                     .state = {{.name = "square_avg", .squares = true},
                               {.name = "momentum_buffer",
                                .kept = [](const OptimizerSpec& o) { return o.number("momentum") > 0; }},
                               {.name = "grad_avg", .kept = with("centered")}},
                     .update = rmsprop});
    table.push_back({.name = "lion",
                     .hyper = {lr(1e-4), betas(0.9, 0.99), at_least_0("weight_decay", 0)},
                     .state = {{.name = "exp_avg"}},
                     .update = lion});
    // Second order (train/second_order.cpp): the damping λ is one number for the model.
    const StateBuffer damping{.name = "damping", .scalar = true};
    table.push_back({.name = "newton",
                     .hyper = {lr(1), at_least_0("damping", 1e-4)},
                     .state = {damping},
                     .update = newton,
                     .second_order = true,
                     .max_parameters = kNewtonMaxParameters,
                     .why_max = "newton builds the full Hessian, one Hessian-vector product per column; newton_cg "
                                "takes any size"});
    table.push_back({.name = "newton_cg",
                     .hyper = {lr(1), {.key = "iterations", .fallback = {10}, .low = 1}, at_least_0("damping", 1e-4)},
                     .state = {damping},
                     .check = check_iterations,
                     .update = newton_cg,
                     .second_order = true});
    return table;
}

}  // namespace

std::span<const OptimizerEntry> optimizer_table() {
    static const std::vector<OptimizerEntry> table = make_table();
    return table;
}

const OptimizerEntry* find_optimizer(std::string_view name) {
    for (const OptimizerEntry& e : optimizer_table())
        if (e.name == name) return &e;
    return nullptr;
}

}  // namespace chainrule
