#include "ops/opcheck.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "ops/finite_difference.hpp"

namespace chainrule {

Tensor sample_tensor(const Dims& dims, Domain domain, Rng& rng, std::int64_t classes) {
    Tensor t(Dtype::f64, dims);
    std::int64_t n = t.numel();
    switch (domain) {
        case Domain::real:
            for (std::int64_t i = 0; i < n; ++i) t.set(i, rng.normal());
            break;
        case Domain::positive:
            for (std::int64_t i = 0; i < n; ++i) t.set(i, rng.uniform(0.5, 2.0));
            break;
        case Domain::away_from_0:
        case Domain::no_gradient:
            for (std::int64_t i = 0; i < n; ++i) t.set(i, rng.uniform(0.3, 2.0) * (rng.uniform() < 0.5 ? -1 : 1));
            break;
        case Domain::one_hot: {
            std::int64_t last = dims.empty() ? 1 : dims.back();
            for (std::int64_t r = 0; r < n / last; ++r) t.set(r * last + std::int64_t(rng.below(last)), 1.0);
            break;
        }
        case Domain::class_index:
            for (std::int64_t i = 0; i < n; ++i) t.set(i, double(rng.below(std::uint64_t(classes))));
            break;
    }
    return t;
}

bool differentiable(Domain d) {
    return d != Domain::one_hot && d != Domain::class_index && d != Domain::no_gradient;
}

std::vector<std::string> inputs_missing_from_formula(const Op& op) {
    std::vector<std::string> missing;
    for (const auto& input : op.inputs) {
        const std::string want = "dL/d" + input;
        bool named = false;
        for (auto at = op.formula.find(want); at != std::string::npos && !named; at = op.formula.find(want, at + 1)) {
            const std::size_t end = at + want.size();
            named = end == op.formula.size() || !std::isalnum(static_cast<unsigned char>(op.formula[end]));
        }
        if (!named) missing.push_back(input);
    }
    return missing;
}

namespace {

struct Prepared {
    std::vector<Tensor> in;
    Attrs attrs;
    std::vector<Domain> domains;
};

Attrs merged_attrs(const Op& op, const OpSample& s) {
    Attrs attrs = op.attrs;
    for (auto& [k, v] : s.attrs.items()) attrs[k] = v;
    return attrs;
}

Prepared prepare(const Op& op, const OpSample& s, Rng& rng) {
    Prepared p;
    p.attrs = merged_attrs(op, s);
    std::int64_t classes = s.shapes.empty() || s.shapes[0].empty() ? 2 : s.shapes[0].back();
    for (std::size_t i = 0; i < s.shapes.size(); ++i) {
        Domain d = i < s.domains.size() ? s.domains[i] : Domain::real;
        p.domains.push_back(d);
        const bool ids = int(i) == op.ids_input && std::size_t(op.ids_rows_of) < s.shapes.size() &&
                         !s.shapes[std::size_t(op.ids_rows_of)].empty();
        p.in.push_back(sample_tensor(s.shapes[i], d, rng, ids ? s.shapes[std::size_t(op.ids_rows_of)][0] : classes));
    }
    return p;
}

Tensor run_forward(const Op& op, const std::vector<Tensor>& in, const Attrs& attrs) {
    std::vector<const Tensor*> ptrs;
    std::vector<Shape> shapes;
    for (auto& t : in) ptrs.push_back(&t), shapes.push_back(fixed_shape(t.dims()));
    Tensor out(in[0].dtype(), to_dims(op.shape(shapes, attrs)));
    op.forward(ForwardCall{ptrs, out, attrs});
    return out;
}

// L = Σ r ⊙ out, so dL/dout = r. Terms with r = 0 are left out: check_op sets r = 0 where
// the output is ±inf (causal_mask's −inf), a constant whose 0·inf would make L NaN.
double weighted(const Tensor& out, const Tensor& r) {
    double s = 0;
    for (std::int64_t i = 0; i < out.numel(); ++i)
        if (r.at(i) != 0) s += out.at(i) * r.at(i);
    return s;
}

// Gradient buffers start holding `prefill`: an op must overwrite them, never add to them.
std::vector<Tensor> run_backward(const Op& op, const Prepared& p, const std::vector<Tensor>& in, const Tensor& out,
                                 const Tensor& r, double prefill) {
    std::vector<const Tensor*> ptrs;
    for (auto& t : in) ptrs.push_back(&t);
    std::vector<Tensor> grads;
    for (auto& t : in) grads.emplace_back(t.dtype(), t.dims());
    std::vector<Tensor*> gptrs;
    for (std::size_t i = 0; i < in.size(); ++i) {
        grads[i].fill(prefill);
        gptrs.push_back(differentiable(p.domains[i]) ? &grads[i] : nullptr);
    }
    op.backward(BackwardCall{ptrs, out, r, gptrs, p.attrs});
    return grads;
}

std::string describe(const OpSample& s) {
    std::vector<std::string> shapes;
    for (const auto& d : s.shapes) shapes.push_back(format_dims(d));
    if (s.attrs.empty()) return fmt::format("{}", fmt::join(shapes, ", "));
    return fmt::format("{} {}", fmt::join(shapes, ", "), s.attrs.dump());
}

// Runs one check; an exception from the op is the check failing, with its message.
template <class F>
OpCheck run_check(std::string what, F&& body) {
    OpCheck c{std::move(what), false, {}};
    try {
        c.detail = body(c.passed);
    } catch (const std::exception& e) {
        c.passed = false;
        c.detail = fmt::format("threw: {}", e.what());
    }
    return c;
}


// The float64 gradient against central differences of L = Σ r ⊙ forward (ops/finite_difference),
// and some |dL/dx| large enough for the check to prove something.
std::string gradient_agrees(const Op& op, Prepared& p, const Tensor& out, const Tensor& r, bool& ok) {
    auto grads = run_backward(op, p, p.in, out, r, 12345.0);
    std::string detail;
    ok = true;
    for (std::size_t i = 0; i < p.in.size(); ++i) {
        if (!differentiable(p.domains[i])) continue;
        double max_fd = 0, max_err = 0, worst_fd = 0, worst_an = 0;
        std::int64_t worst = 0;
        bool good = true;
        const auto weighted_loss = [&] { return weighted(run_forward(op, p.in, p.attrs), r); };
        for (std::int64_t e = 0; e < p.in[i].numel(); ++e) {
            const double fd = central_difference(p.in[i], e, weighted_loss), an = grads[i].at(e);
            const FdComparison c = compare_to_numeric(an, fd);
            max_fd = std::max(max_fd, std::abs(fd));
            good = good && c.ok;
            if (!(c.relative <= max_err))  // NaN is worst
                max_err = c.relative, worst = e, worst_fd = fd, worst_an = an;
        }
        const bool present = max_fd > 1e-3;
        ok = ok && good && present;
        detail += fmt::format("{}{}: max relative error {:.2g}, max |dL/d{}| {:.3g}",
                              detail.empty() ? "" : "; ", input_name(op, i), max_err, input_name(op, i), max_fd);
        if (!good)
            detail += fmt::format(" (element {}: backward gives {:.6g}, central differences {:.6g})", worst,
                                  worst_an, worst_fd);
        if (!present) detail += " (the gradient is ~0 everywhere, so the check would prove nothing)";
    }
    return detail.empty() ? std::string("no differentiable inputs") : detail;
}

// Backward writes every element of its gradient buffers and never adds to them.
std::string backward_overwrites(const Op& op, const Prepared& p, const Tensor& out, const Tensor& r, bool& ok) {
    auto a = run_backward(op, p, p.in, out, r, 0.0), b = run_backward(op, p, p.in, out, r, 12345.0);
    ok = true;
    for (std::size_t i = 0; i < a.size() && ok; ++i) {
        if (!differentiable(p.domains[i])) continue;
        for (std::int64_t e = 0; e < a[i].numel(); ++e) {
            double x = a[i].at(e), y = b[i].at(e);
            if (x == y || (std::isnan(x) && std::isnan(y))) continue;
            ok = false;
            return fmt::format("dL/d{} element {} is {:.6g} when the buffer held 0 before and {:.6g} when "
                               "it held 12345: backward must write every element of grad_in[{}] and never "
                               "add to it (the engine accumulates)",
                               input_name(op, i), e, x, y, i);
        }
    }
    return std::string("the same gradients from buffers holding 0 and 12345");
}

// float32 forward and backward within a tolerance of float64.
std::string float32_agrees(const Op& op, const Prepared& p, const Tensor& out, const Tensor& r, bool& ok) {
    std::vector<Tensor> in32;
    for (auto& t : p.in) in32.push_back(t.to(Dtype::f32));
    Tensor out32 = run_forward(op, in32, p.attrs);
    if (out32.dtype() != Dtype::f32) return std::string("forward on float32 inputs gave a float64 output");
    for (std::int64_t e = 0; e < out.numel(); ++e)
        if (!(out32.at(e) == out.at(e) || std::abs(out32.at(e) - out.at(e)) <= 1e-4 * (1 + std::abs(out.at(e)))))
            return fmt::format("forward element {}: {:.8g} in float32, {:.8g} in float64", e, out32.at(e), out.at(e));
    auto g64 = run_backward(op, p, p.in, out, r, 0.0);
    auto g32 = run_backward(op, p, in32, out32, r.to(Dtype::f32), 0.0);
    for (std::size_t i = 0; i < p.in.size(); ++i) {
        if (!differentiable(p.domains[i])) continue;
        for (std::int64_t e = 0; e < g64[i].numel(); ++e)
            if (!(std::abs(g32[i].at(e) - g64[i].at(e)) <= 1e-3 * (1 + std::abs(g64[i].at(e)))))
                return fmt::format("dL/d{} element {}: {:.8g} in float32, {:.8g} in float64", input_name(op, i), e,
                                   g32[i].at(e), g64[i].at(e));
    }
    ok = true;
    return std::string("forward within 1e-4, gradients within 1e-3 (relative)");
}

// A bad sample is refused by the shape rule with a ShapeError containing its `error` fragment.
std::string bad_sample_refused(const Op& op, const OpSample& s, bool& ok) {
    std::vector<Shape> shapes;
    for (auto& d : s.shapes) shapes.push_back(fixed_shape(d));
    try {
        Shape got = op.shape(shapes, merged_attrs(op, s));
        return fmt::format("accepted, giving {}", format_shape(got));
    } catch (const ShapeError& e) {
        const std::string message = e.what();
        if (s.error.empty())
            return fmt::format("ShapeError: {} (but the bad sample has no .error fragment that the message must "
                               "contain)",
                               message);
        if (message.find(s.error) == std::string::npos)
            return fmt::format("ShapeError: {} (lacks the expected \"{}\")", message, s.error);
        ok = true;
        return fmt::format("ShapeError: {}", message);
    }
}

// What the registration itself must give: samples, a formula naming every input, attrs
// that some sample varies.
void check_declaration(const Op& op, std::vector<OpCheck>& checks) {
    if (op.samples.empty())
        checks.push_back({"samples", false,
                          "the op has no samples to check; add .samples = {{.shapes = {{3, 4}}}} (one shape per "
                          "input) to its Op"});
    if (auto missing = inputs_missing_from_formula(op); !missing.empty())
        checks.push_back({"formula", false,
                          fmt::format("\"{}\" does not say dL/d{} (the convention: y = f({}), then dL/d<input> for "
                                      "every input, e.g. \"y = exp(x);  dL/dx = dL/dy · y\")",
                                      op.formula, fmt::join(missing, ", dL/d"), fmt::join(op.inputs, ", "))});
    // An attr that every sample leaves at its default is never exercised: a forward or backward
    // that ignores it (a leaky_relu with its slope written in as a number) would pass every check.
    for (const auto& item : op.attrs.items()) {
        // Named, not bound: clang before 16 cannot capture a structured binding in a lambda.
        const std::string& key = item.key();
        const Attrs& def = item.value();
        const bool varied = std::any_of(op.samples.begin(), op.samples.end(), [&](const OpSample& s) {
            return s.attrs.contains(key) && s.attrs.at(key) != def;
        });
        if (!varied)
            checks.push_back({fmt::format("attr {}", key), false,
                              fmt::format("no sample gives attr '{}' a value other than its default {}: an op that "
                                          "ignored it would pass every check; add a sample with .attrs = {{{{\"{}\", "
                                          "...}}}}",
                                          key, def.dump(), key)});
    }
}

}  // namespace

std::vector<OpCheck> check_op(const Op& op, std::uint64_t seed) {
    std::vector<OpCheck> checks;
    Rng rng(seed);
    check_declaration(op, checks);
    for (std::size_t k = 0; k < op.samples.size(); ++k) {
        const OpSample& s = op.samples[k];
        const std::string name = fmt::format("sample {} ({})", k, describe(s));
        if (s.shapes.size() > most_inputs(op) || s.shapes.size() < fewest_inputs(op)) {
            checks.push_back({name, false,
                              fmt::format("has {} shapes for the op's {}{} inputs ({})", s.shapes.size(),
                                          op.inputs.size(), op.variadic ? " or more" : "", input_list(op))});
            continue;
        }
        Prepared p = prepare(op, s, rng);
        Tensor out;
        OpCheck runs = run_check(name + ": shape rule and forward", [&](bool& ok) {
            out = run_forward(op, p.in, p.attrs);
            ok = true;
            return fmt::format("output {}", format_dims(out.dims()));
        });
        checks.push_back(runs);
        if (!runs.passed) continue;
        Tensor r = sample_tensor(out.dims(), Domain::real, rng);
        // An infinite output entry is the same at x ± h (a mask), so it carries no gradient to
        // check; its upstream is 0, and L and the gradients are over the finite entries.
        for (std::int64_t e = 0; e < out.numel(); ++e)
            if (std::isinf(out.at(e))) r.set(e, 0.0);

        if (op.exact_gradient)
            checks.push_back(run_check(name + ": gradient vs central differences (float64)",
                                       [&](bool& ok) { return gradient_agrees(op, p, out, r, ok); }));
        checks.push_back(run_check(name + ": backward overwrites its gradient buffers",
                                   [&](bool& ok) { return backward_overwrites(op, p, out, r, ok); }));
        checks.push_back(run_check(name + ": float32 agrees with float64",
                                   [&](bool& ok) { return float32_agrees(op, p, out, r, ok); }));
    }
    for (std::size_t k = 0; k < op.bad_samples.size(); ++k) {
        const OpSample& s = op.bad_samples[k];
        checks.push_back(run_check(fmt::format("bad sample {} ({}): rejected by the shape rule", k, describe(s)),
                                   [&](bool& ok) { return bad_sample_refused(op, s, ok); }));
    }
    return checks;
}

}  // namespace chainrule
