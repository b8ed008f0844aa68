// Newton and Newton-CG with Levenberg–Marquardt damping.
//
// Each step starts at λ (the configured damping on the first step, else the last step's) and
// tries d(λ): when H + λI is not positive definite (Cholesky fails, or CG meets a direction of
// negative curvature first) or θ − η·d does not lower the batch's loss, the move is undone
// and λ raised tenfold; the first trial that lowers the loss is kept and λ lowered tenfold,
// never below the configured damping. After kMaxTrials refused trials θ stays where it was.
#include "train/second_order.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>

namespace chainrule {
namespace {

constexpr int kMaxTrials = 30;
constexpr double kRaiseFrom = 1e-6;  // the first raise of a damping of 0

using Vec = std::vector<double>;

double dot(const Vec& a, const Vec& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// The parameters (or gradients) as one vector of doubles, in order, row-major each.
Vec gather(std::span<const Tensor* const> ts) {
    Vec out;
    for (const Tensor* t : ts)
        for (std::int64_t i = 0; i < t->numel(); ++i) out.push_back(t->at(i));
    return out;
}

void scatter(const Vec& x, std::span<Tensor* const> ts) {
    std::size_t at = 0;
    for (Tensor* t : ts)
        for (std::int64_t i = 0; i < t->numel(); ++i) t->set(i, x[at++]);
}

// H·x on flat vectors through the curvature, its tensors made once per step.
class FlatHvp {
public:
    explicit FlatHvp(const UpdateCall& c) : c_(c) {
        for (Tensor* p : c.params) v_.emplace_back(p->dtype(), p->dims()), hv_.emplace_back(p->dtype(), p->dims());
        for (std::size_t k = 0; k < v_.size(); ++k)
            in_.push_back(&v_[k]), v_out_.push_back(&v_[k]), out_.push_back(&hv_[k]);
    }
    Vec operator()(const Vec& x) {
        scatter(x, v_out_);
        c_.curvature->hvp(in_, out_);
        std::vector<const Tensor*> result(out_.begin(), out_.end());
        return gather(result);
    }

private:
    const UpdateCall& c_;
    std::vector<Tensor> v_, hv_;
    std::vector<const Tensor*> in_;
    std::vector<Tensor*> v_out_, out_;
};

// Solves (H + λI)·d = g by Cholesky (H n×n, row-major); nothing when H + λI is not positive definite.
std::optional<Vec> solve_damped(const Vec& h, const Vec& g, double lambda) {
    const std::size_t n = g.size();
    Vec l(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j <= i; ++j) {
            // The symmetric part: H's columns are separate products, equal only to rounding.
            double s = 0.5 * (h[i * n + j] + h[j * n + i]) + (i == j ? lambda : 0.0);
            for (std::size_t k = 0; k < j; ++k) s -= l[i * n + k] * l[j * n + k];
            if (i == j) {
                if (!(s > 0)) return std::nullopt;
                l[i * n + i] = std::sqrt(s);
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    Vec d = g;
    for (std::size_t i = 0; i < n; ++i) {  // L·y = g
        for (std::size_t k = 0; k < i; ++k) d[i] -= l[i * n + k] * d[k];
        d[i] /= l[i * n + i];
    }
    for (std::size_t i = n; i-- > 0;) {  // Lᵀ·d = y
        for (std::size_t k = i + 1; k < n; ++k) d[i] -= l[k * n + i] * d[k];
        d[i] /= l[i * n + i];
    }
    return d;
}

// The Levenberg–Marquardt loop around a step d(λ) (nothing: H + λI not positive definite).
void levenberg_marquardt(const UpdateCall& c, const std::function<std::optional<Vec>(double)>& direction) {
    Tensor& stored = c.state[0][0];  // the damping, kept with the first parameter
    const double floor = c.spec.number("damping");
    double lambda = c.step == 1 ? floor : stored.at(0);
    std::vector<const Tensor*> values(c.params.begin(), c.params.end());
    const Vec start = gather(values);
    const double loss = c.curvature->loss();
    auto raise = [&] { lambda = lambda > 0 ? lambda * 10 : kRaiseFrom; };
    for (int trial = 0; trial < kMaxTrials; ++trial) {
        const std::optional<Vec> d = direction(lambda);
        if (!d) {
            raise();
            continue;
        }
        Vec moved = start;
        for (std::size_t i = 0; i < moved.size(); ++i) moved[i] -= c.lr * (*d)[i];
        scatter(moved, c.params);
        if (c.curvature->loss() < loss) {
            stored.set(0, std::max(lambda / 10, floor));
            return;
        }
        scatter(start, c.params);  // undone before the next direction: newton_cg's products are taken here
        raise();
    }
    stored.set(0, lambda);
}

}  // namespace

void newton(const UpdateCall& c) {
    const Vec g = gather(c.grads);
    const std::size_t n = g.size();
    // H column by column: H·e_j.
    FlatHvp hvp(c);
    Vec h(n * n), e(n, 0.0);
    for (std::size_t j = 0; j < n; ++j) {
        e[j] = 1;
        const Vec column = hvp(e);
        e[j] = 0;
        for (std::size_t i = 0; i < n; ++i) h[i * n + j] = column[i];
    }
    levenberg_marquardt(c, [&](double lambda) { return solve_damped(h, g, lambda); });
}

void newton_cg(const UpdateCall& c) {
    const Vec g = gather(c.grads);
    const auto iterations = std::int64_t(c.spec.number("iterations"));
    const double gnorm = std::sqrt(dot(g, g));
    FlatHvp hvp(c);
    levenberg_marquardt(c, [&](double lambda) -> std::optional<Vec> {
        Vec d(g.size(), 0.0), r = g, p = g;
        double rr = dot(r, r);
        for (std::int64_t it = 0; it < iterations && std::sqrt(rr) > 1e-12 * gnorm; ++it) {
            Vec ap = hvp(p);
            for (std::size_t i = 0; i < ap.size(); ++i) ap[i] += lambda * p[i];
            const double pap = dot(p, ap);
            // Negative curvature: at once, H + λI is not positive definite (raise λ); later,
            // the step so far is kept (Steihaug's truncation).
            if (!(pap > 0)) {
                if (it == 0) return std::nullopt;
                break;
            }
            const double alpha = rr / pap;
            for (std::size_t i = 0; i < d.size(); ++i) d[i] += alpha * p[i], r[i] -= alpha * ap[i];
            const double next = dot(r, r);
            for (std::size_t i = 0; i < p.size(); ++i) p[i] = r[i] + (next / rr) * p[i];
            rr = next;
        }
        return d;
    });
}

}  // namespace chainrule
