// The lecture's worked example (models/worked_example.json, docs/worked-example.md) built
// with the C++ API instead of JSON: one sigmoid neuron on three Iris instances, every
// weight and the bias 0.1, mse loss; forward, backward, one SGD step with η = 0.5.
//
//     meson setup build && ninja -C build && build/worked_example
#include <chainrule/chainrule.hpp>

#include <fmt/format.h>

using namespace chainrule;

int main() {
    Graph g(Dtype::f64);
    g.input("x", {"N", 4});  // the batch size N is bound when x is set
    g.input("y", {"N", 1});
    g.parameter("w", {4, 1}, Init::constant(0.1));
    g.parameter("b", {1}, Init::constant(0.1));
    g.op("z", "matmul", {"x", "w"});
    g.op("a", "add", {"z", "b"});  // b broadcasts over the rows
    g.op("yhat", "sigmoid", {"a"});
    g.op("L", "mse", {"yhat", "y"});
    g.set_output("prediction", "yhat");
    g.set_output("loss", "L");

    g.init_parameters(0);  // constant initializers: the seed draws nothing
    g.set_value("x", Tensor::of({{5.1, 3.5, 1.4, 0.2}, {4.9, 3.0, 1.4, 0.2}, {4.7, 3.2, 1.3, 0.2}}));
    g.set_value("y", Tensor::of({{0}, {1}, {0}}));

    Plan plan = g.plan();  // Pass::exact(): every node's value, every parameter's gradient
    g.forward(plan);
    g.backward(plan);
    fmt::print("L = {:.6f}\n", g.value("L").at(0));
    fmt::print("dL/dw0 = {:.6f}\n", g.grad("w").at(0));

    // One step of plain SGD, θ ← θ − η·dL/dθ, on every parameter. The trainer does this
    // (and more) for a model file; here the update is written out to show what it is.
    const double lr = 0.5;
    for (const char* name : {"w", "b"}) {
        Tensor theta = g.value(name);
        const Tensor& grad = g.grad(name);
        for (std::int64_t i = 0; i < theta.numel(); ++i) theta.set(i, theta.at(i) - lr * grad.at(i));
        g.set_value(name, theta);
    }
    fmt::print("w0 after one SGD step (lr {}) = {:.7f}\n", lr, g.value("w").at(0));

    g.forward(plan);
    fmt::print("L after the step = {:.6f}\n", g.value("L").at(0));
}
