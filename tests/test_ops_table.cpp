// One table drives the verification of every registered op: the samples each op declares
// (ops/op.hpp), run through check_op (ops/opcheck.hpp, also `chainrule ops --check`). For
// every sample: the shape rule accepts it and forward runs, the analytic vector-Jacobian
// product matches central finite differences in float64 (and is not vacuously zero),
// backward overwrites its buffers, float32 agrees with float64; every bad sample is
// rejected by the shape rule with a message containing its `error` fragment; the formula
// names dL/d<input> for every input. Then broken ops show that each of those checks can fail.
#define BOOST_TEST_MODULE ops_table
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <fmt/format.h>

#include "core/error.hpp"
#include "ops/elementwise.hpp"
#include "ops/opcheck.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

// Checks whose name contains `part` and that failed; every listed check must exist.
std::vector<OpCheck> failed(const std::vector<OpCheck>& checks, const std::string& part) {
    std::vector<OpCheck> out;
    for (const auto& c : checks)
        if (!c.passed && c.what.find(part) != std::string::npos) out.push_back(c);
    return out;
}

std::size_t failures(const std::vector<OpCheck>& checks) {
    return std::size_t(std::count_if(checks.begin(), checks.end(), [](const OpCheck& c) { return !c.passed; }));
}

// exp with a forward and backward that a test can break.
Op square_op() {
    return Op{
        .name = "square_for_test",
        .formula = "y = x²;  dL/dx = dL/dy · 2x",
        .inputs = {"x"},
        .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
        .forward = unary_forward([](auto x) { return x * x; }),
        .backward = unary_backward([](auto x, auto, auto g) { return g * 2 * x; }),
        .samples = {{.shapes = {{3, 4}}}, {.shapes = {{5}}}},
        .bad_samples = {},
    };
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_registered_op_passes_every_check) {
    BOOST_TEST(all_ops().size() >= 20u);
    std::size_t total = 0;
    for (const Op* op : all_ops()) {
        auto checks = check_op(*op);
        total += checks.size();
        BOOST_TEST(!checks.empty(), op->name);
        for (const OpCheck& c : checks) BOOST_TEST(c.passed, op->name << ": " << c.what << ": " << c.detail);
        // Every sample's gradient is checked, unless the op says its gradient is not exact.
        std::size_t grads = std::size_t(std::count_if(checks.begin(), checks.end(), [](const OpCheck& c) {
            return c.what.find("central differences") != std::string::npos;
        }));
        BOOST_TEST(grads == (op->exact_gradient ? op->samples.size() : 0u), op->name);
    }
    BOOST_TEST_MESSAGE(total << " checks on " << all_ops().size() << " ops");
}

BOOST_AUTO_TEST_CASE(a_correct_op_passes_and_its_details_say_what_was_measured) {
    auto checks = check_op(square_op());
    BOOST_TEST(checks.size() == 8u);  // 2 samples × (runs, gradient, overwrites, float32)
    BOOST_TEST(failures(checks) == 0u);
    CHECK_HAS(checks[0].what, "sample 0 ([3,4]): shape rule and forward");
    CHECK_HAS(checks[0].detail, "output [3,4]");
    CHECK_HAS(checks[1].what, "sample 0 ([3,4]): gradient vs central differences (float64)");
    CHECK_HAS(checks[1].detail, "x: max relative error ");
}

BOOST_AUTO_TEST_CASE(a_wrong_gradient_fails_and_names_the_element) {
    Op op = square_op();
    op.backward = unary_backward([](auto x, auto, auto g) { return g * 3 * x; });  // 3x, not 2x
    auto checks = check_op(op);
    auto bad = failed(checks, "central differences");
    BOOST_REQUIRE(bad.size() == 2u);
    CHECK_HAS(bad[0].detail, "backward gives ");
    CHECK_HAS(bad[0].detail, "central differences ");
    BOOST_TEST(failures(checks) == 2u);  // float32 still agrees with float64: both are wrong alike
}

BOOST_AUTO_TEST_CASE(an_accumulating_backward_fails_the_overwrite_check) {
    Op op = square_op();
    op.backward = [](const BackwardCall& c) {
        dispatch(c.out.dtype(), [&]<class T>() {
            const T *x = c.in[0]->data<T>(), *g = c.grad_out.data<T>();
            T* gx = c.grad_in[0]->data<T>();
            for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] += g[i] * 2 * x[i];
        });
    };
    auto checks = check_op(op);
    auto bad = failed(checks, "backward overwrites");
    BOOST_REQUIRE(bad.size() == 2u);
    CHECK_HAS(bad[0].detail, "when the buffer held 0 before and");
    CHECK_HAS(bad[0].detail, "never add to it");
    BOOST_TEST(failed(checks, "central differences").size() == 2u);  // buffers held 12345 there
}

BOOST_AUTO_TEST_CASE(a_gradient_that_is_zero_everywhere_is_vacuous) {
    Op op = square_op();
    op.forward = unary_forward([](auto x) { return x * 0; });
    op.backward = unary_backward([](auto, auto, auto g) { return g * 0; });
    auto bad = failed(check_op(op), "central differences");
    BOOST_REQUIRE(bad.size() == 2u);
    CHECK_HAS(bad[0].detail, "the gradient is ~0 everywhere");
}

BOOST_AUTO_TEST_CASE(a_float32_path_that_differs_fails) {
    Op op = square_op();
    op.forward = [](const ForwardCall& c) {
        dispatch(c.out.dtype(), [&]<class T>() {
            const T* x = c.in[0]->data<T>();
            T* y = c.out.data<T>();
            for (std::int64_t i = 0; i < c.out.numel(); ++i) y[i] = x[i] * x[i] * (sizeof(T) == 4 ? T(1.01) : T(1));
        });
    };
    auto bad = failed(check_op(op), "float32 agrees");
    BOOST_REQUIRE(bad.size() == 2u);
    CHECK_HAS(bad[0].detail, "forward element ");
    CHECK_HAS(bad[0].detail, " in float32, ");
}

BOOST_AUTO_TEST_CASE(samples_that_do_not_fit_and_bad_samples_accepted_fail) {
    Op op = square_op();
    op.samples = {{.shapes = {{3, 4}, {2}}}};
    op.bad_samples = {{.shapes = {{3, 4}}}};
    auto checks = check_op(op);
    BOOST_REQUIRE(checks.size() == 2u);
    CHECK_HAS(checks[0].detail, "has 2 shapes for the op's 1 inputs (x)");
    CHECK_HAS(checks[1].what, "bad sample 0 ([3,4]): rejected by the shape rule");
    CHECK_HAS(checks[1].detail, "accepted, giving [3,4]");
    BOOST_TEST(failures(checks) == 2u);

    op.samples.clear();
    auto none = check_op(op);
    BOOST_REQUIRE(!none.empty());
    CHECK_HAS(none[0].detail, "the op has no samples to check; add .samples = ");
}

BOOST_AUTO_TEST_CASE(an_op_that_throws_is_a_failed_check_not_a_crash) {
    Op op = square_op();
    op.forward = [](const ForwardCall&) { throw std::runtime_error("forward is not written yet"); };
    auto checks = check_op(op);
    BOOST_REQUIRE(checks.size() == 2u);  // each sample stops at its first failure
    CHECK_HAS(checks[0].detail, "threw: forward is not written yet");
    BOOST_TEST(!checks[0].passed);
}

BOOST_AUTO_TEST_CASE(a_formula_that_does_not_name_each_input_gradient_fails) {
    Op op = square_op();
    op.formula = "y = x²;  dy/dx = 2x";  // the derivative, not what backward computes: dL/dx
    auto checks = check_op(op);
    auto bad = failed(checks, "formula");
    BOOST_REQUIRE(bad.size() == 1u);
    CHECK_HAS(bad[0].detail, "does not say dL/dx (the convention: y = f(x), then dL/d<input> for every input");
    BOOST_TEST(failures(checks) == 1u);  // everything else about the op is right

    // Each input by its own name, not a longer one that starts with it; subscripts count.
    op.inputs = {"x", "W", "b"};
    op.formula = "y = x·W + b;  dL/dx_i = …,  dL/dWeights = …";
    BOOST_TEST((inputs_missing_from_formula(op) == std::vector<std::string>{"W", "b"}));
    op.formula = "y = x·W + b;  dL/dx_i = …,  dL/dW = …,  dL/db";
    BOOST_TEST(inputs_missing_from_formula(op).empty());
    op.formula = "";
    BOOST_TEST(inputs_missing_from_formula(op).size() == 3u);
}

BOOST_AUTO_TEST_CASE(every_built_in_formula_names_each_input_gradient) {
    for (const Op* op : all_ops()) BOOST_TEST(inputs_missing_from_formula(*op).empty(), op->name << ": " << op->formula);
}

BOOST_AUTO_TEST_CASE(a_bad_sample_must_name_and_get_its_error_fragment) {
    Op op = square_op();
    op.shape = [](std::span<const Shape> in, const Attrs&) {
        if (in[0].size() != 2) throw ShapeError(fmt::format("needs a matrix, got {}", format_shape(in[0])));
        return in[0];
    };
    op.samples = {{.shapes = {{3, 4}}}};
    op.bad_samples = {{.shapes = {{5}}, .error = "needs a matrix, got [5]"},
                      {.shapes = {{5}}, .error = "cannot broadcast"},
                      {.shapes = {{5}}}};
    auto checks = check_op(op);
    auto bad = failed(checks, "bad sample");
    BOOST_REQUIRE(bad.size() == 2u);
    CHECK_HAS(bad[0].what, "bad sample 1 ([5]): rejected by the shape rule");
    CHECK_HAS(bad[0].detail, "ShapeError: needs a matrix, got [5] (lacks the expected \"cannot broadcast\")");
    CHECK_HAS(bad[1].what, "bad sample 2 ([5])");
    CHECK_HAS(bad[1].detail, "has no .error fragment that the message must contain");
    BOOST_TEST(failures(checks) == 2u);  // bad sample 0 gets its fragment and passes
}

BOOST_AUTO_TEST_CASE(a_built_in_op_whose_message_changes_fails_its_bad_samples) {
    // sub with its real shape rule, but bad samples expecting another message: as if the
    // broadcast error had been reworded without the samples that pin it.
    Op op = *find_op("sub");
    for (auto& s : op.bad_samples) s.error = "shapes differ";
    auto bad = failed(check_op(op), "bad sample");
    BOOST_REQUIRE(bad.size() == op.bad_samples.size());
    CHECK_HAS(bad[0].detail, "ShapeError: cannot broadcast [3,4] with [3]");
    CHECK_HAS(bad[0].detail, "lacks the expected \"shapes differ\"");
}

// A variadic op's samples may have any number of shapes from its inputs on, and none is too
// few; its inputs are named with their index in the checks' details.
BOOST_AUTO_TEST_CASE(a_variadic_op_is_checked_on_samples_of_any_length) {
    Op op = *find_op("concat");
    op.samples = {{.shapes = {{2, 3}, {2, 1}, {2, 2}, {2, 4}, {2, 1}}}, {.shapes = {}}};
    op.bad_samples.clear();
    auto checks = check_op(op);
    auto grads = failed(checks, "sample 0");
    BOOST_TEST(grads.empty());
    for (const OpCheck& c : checks)
        if (c.what.find("sample 0") != std::string::npos && c.what.find("central differences") != std::string::npos)
            CHECK_HAS(c.detail, "; x4: max relative error ");
    auto none = failed(checks, "sample 1");
    BOOST_REQUIRE(none.size() == 1u);
    CHECK_HAS(none[0].detail, "has 0 shapes for the op's 1 or more inputs (x0, x1, ...)");
}

// An op is variadic or has optional inputs, not both: register_op refuses it by name.
BOOST_AUTO_TEST_CASE(a_variadic_op_with_optional_inputs_is_refused) {
    Op op = square_op();
    op.name = "variadic_optional_for_test";
    op.inputs = {"x", "y"};
    op.variadic = true;
    op.optional_inputs = 1;
    try {
        register_op(op);
        BOOST_FAIL("registered");
    } catch (const std::invalid_argument& e) {
        CHECK_HAS(std::string(e.what()),
                  "op 'variadic_optional_for_test' is variadic and has optional inputs; it may be one or the other");
    }
}
