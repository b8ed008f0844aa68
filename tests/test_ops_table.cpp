// One table drives the verification of every registered op: the samples each op
// declares (ops/op.hpp). For every sample: the shape rule agrees with what forward
// fills, the analytic vector-Jacobian product matches central finite differences in
// float64 (and is not vacuously zero), float32 agrees with float64, and the declared
// bad samples are rejected by the shape rule.
#define BOOST_TEST_MODULE ops_table
#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include "testing.hpp"

using namespace chainrule;
using chainrule::testing::differentiable;
using chainrule::testing::random_tensor;

namespace {

struct Prepared {
    std::vector<Tensor> in;
    Attrs attrs;
    std::vector<Domain> domains;
};

Prepared prepare(const Op& op, const OpSample& s, Rng& rng) {
    Prepared p;
    p.attrs = op.attrs;
    for (auto& [k, v] : s.attrs.items()) p.attrs[k] = v;
    std::int64_t classes = s.shapes.empty() || s.shapes[0].empty() ? 2 : s.shapes[0].back();
    for (std::size_t i = 0; i < s.shapes.size(); ++i) {
        Domain d = i < s.domains.size() ? s.domains[i] : Domain::real;
        p.domains.push_back(d);
        p.in.push_back(random_tensor(s.shapes[i], d, rng, classes));
    }
    return p;
}

Dims out_dims(const Op& op, const std::vector<Tensor>& in, const Attrs& attrs) {
    std::vector<Shape> shapes;
    for (auto& t : in) shapes.push_back(fixed_shape(t.dims()));
    return to_dims(op.shape(shapes, attrs));
}

Tensor run_forward(const Op& op, const std::vector<Tensor>& in, const Attrs& attrs) {
    std::vector<const Tensor*> ptrs;
    for (auto& t : in) ptrs.push_back(&t);
    Tensor out(in[0].dtype(), out_dims(op, in, attrs));
    op.forward(ForwardCall{ptrs, out, attrs});
    return out;
}

// L = Σ R ⊙ out, so dL/dout = R.
double weighted(const Tensor& out, const Tensor& r) {
    double s = 0;
    for (std::int64_t i = 0; i < out.numel(); ++i) s += out.at(i) * r.at(i);
    return s;
}

std::vector<Tensor> run_backward(const Op& op, const std::vector<Tensor>& in, const Tensor& out,
                                 const Tensor& r, const Attrs& attrs, const std::vector<Domain>& domains) {
    std::vector<const Tensor*> ptrs;
    for (auto& t : in) ptrs.push_back(&t);
    std::vector<Tensor> grads;
    for (auto& t : in) grads.emplace_back(t.dtype(), t.dims());
    std::vector<Tensor*> gptrs;
    for (std::size_t i = 0; i < in.size(); ++i) {
        // Prefill with garbage: an op must overwrite, never accumulate.
        grads[i].fill(12345.0);
        gptrs.push_back(differentiable(domains[i]) ? &grads[i] : nullptr);
    }
    op.backward(BackwardCall{ptrs, out, r, gptrs, attrs});
    return grads;
}

std::string label(const Op& op, std::size_t k) { return fmt::format("op '{}' sample {}", op.name, k); }

}  // namespace

BOOST_AUTO_TEST_CASE(every_op_has_samples) {
    BOOST_TEST(all_ops().size() >= 5u);
    for (const Op* op : all_ops()) BOOST_TEST(!op->samples.empty(), "op '" << op->name << "' has no samples");
}

BOOST_AUTO_TEST_CASE(shape_rule_matches_declared_inputs) {
    for (const Op* op : all_ops())
        for (std::size_t k = 0; k < op->samples.size(); ++k)
            BOOST_TEST(op->samples[k].shapes.size() == op->inputs.size(), label(*op, k) << ": wrong input count");
}

BOOST_AUTO_TEST_CASE(bad_samples_are_rejected) {
    for (const Op* op : all_ops())
        for (std::size_t k = 0; k < op->bad_samples.size(); ++k) {
            const OpSample& s = op->bad_samples[k];
            Attrs attrs = op->attrs;
            for (auto& [key, v] : s.attrs.items()) attrs[key] = v;
            std::vector<Shape> shapes;
            for (auto& d : s.shapes) shapes.push_back(fixed_shape(d));
            BOOST_TEST_CONTEXT(label(*op, k) << " (bad sample)") { BOOST_CHECK_THROW(op->shape(shapes, attrs), ShapeError); }
        }
}

BOOST_AUTO_TEST_CASE(gradients_match_central_differences_in_float64) {
    Rng rng(7);
    for (const Op* op : all_ops()) {
        if (!op->exact_gradient) continue;
        for (std::size_t k = 0; k < op->samples.size(); ++k) {
            Prepared p = prepare(*op, op->samples[k], rng);
            Tensor out = run_forward(*op, p.in, p.attrs);
            Tensor r = random_tensor(out.dims(), Domain::real, rng);
            auto grads = run_backward(*op, p.in, out, r, p.attrs, p.domains);
            for (std::size_t i = 0; i < p.in.size(); ++i) {
                if (!differentiable(p.domains[i])) continue;
                double max_fd = 0, max_err = 0;
                for (std::int64_t e = 0; e < p.in[i].numel(); ++e) {
                    double x0 = p.in[i].at(e), h = 1e-6 * std::max(1.0, std::abs(x0));
                    p.in[i].set(e, x0 + h);
                    double lp = weighted(run_forward(*op, p.in, p.attrs), r);
                    p.in[i].set(e, x0 - h);
                    double lm = weighted(run_forward(*op, p.in, p.attrs), r);
                    p.in[i].set(e, x0);
                    double fd = (lp - lm) / (2 * h), an = grads[i].at(e);
                    max_fd = std::max(max_fd, std::abs(fd));
                    max_err = std::max(max_err, std::abs(fd - an) / (1e-6 + std::abs(fd)));
                }
                BOOST_TEST(max_err < 1e-5, label(*op, k) << " input " << i << ": relative error " << max_err);
                // Not vacuous: the gradient must actually be there.
                BOOST_TEST(max_fd > 1e-3, label(*op, k) << " input " << i << ": gradient is ~0 (" << max_fd << ")");
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(float32_agrees_with_float64) {
    Rng rng(11);
    for (const Op* op : all_ops()) {
        for (std::size_t k = 0; k < op->samples.size(); ++k) {
            Prepared p = prepare(*op, op->samples[k], rng);
            std::vector<Tensor> in32;
            for (auto& t : p.in) in32.push_back(t.to(Dtype::f32));
            Tensor out64 = run_forward(*op, p.in, p.attrs);
            Tensor out32 = run_forward(*op, in32, p.attrs);
            BOOST_TEST((out32.dtype() == Dtype::f32));
            for (std::int64_t e = 0; e < out64.numel(); ++e)
                BOOST_TEST(std::abs(out32.at(e) - out64.at(e)) <= 1e-4 * (1 + std::abs(out64.at(e))),
                           label(*op, k) << " forward element " << e);
            Tensor r64 = random_tensor(out64.dims(), Domain::real, rng);
            auto g64 = run_backward(*op, p.in, out64, r64, p.attrs, p.domains);
            auto g32 = run_backward(*op, in32, out32, r64.to(Dtype::f32), p.attrs, p.domains);
            for (std::size_t i = 0; i < p.in.size(); ++i) {
                if (!differentiable(p.domains[i])) continue;
                for (std::int64_t e = 0; e < g64[i].numel(); ++e)
                    BOOST_TEST(std::abs(g32[i].at(e) - g64[i].at(e)) <= 1e-3 * (1 + std::abs(g64[i].at(e))),
                               label(*op, k) << " grad input " << i << " element " << e);
            }
        }
    }
}
