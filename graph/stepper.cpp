#include "graph/stepper.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <stdexcept>

#include "core/error.hpp"
#include "core/text.hpp"

namespace chainrule {

namespace {

std::vector<std::string> names_of(const Graph& g, const std::vector<int>& ids) {
    std::vector<std::string> out;
    for (int id : ids) out.push_back(g.node(id).name);
    return out;
}

Pass stepping_pass(const Graph& g, int loss) {
    Pass p = Pass::stepping();
    p.loss = loss < 0 ? g.loss() : loss;
    if (p.loss < 0) throw InputError("the model has no \"loss\" output to differentiate");
    return p;
}

}  // namespace

Stepper::Stepper(Graph& g, int loss) : g_(g), plan_(g.plan(stepping_pass(g, loss))) {
    g_.forward(plan_);
    rewind(0);
}

void Stepper::rewind(std::size_t steps) {
    if (steps > order().size()) throw std::logic_error("Stepper::rewind past the last step");
    g_.backward_begin(plan_);
    reached_.assign(g_.size(), false);
    reached_[std::size_t(plan_.loss())] = true;
    pos_ = 0;
    if (order().empty()) g_.backward_end(plan_);  // a loss that is an input: nothing to step
    while (pos_ < steps) next();
}

const Step& Stepper::next() {
    if (done()) throw std::logic_error("Stepper::next() called after the last step");
    int id = order()[pos_];
    g_.backward_node(plan_, id);
    const Node& n = g_.node(id);
    step_.index = pos_;
    step_.id = id;
    step_.inputs.clear();
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
        int j = n.inputs[i];
        StepInput in{.id = j, .slot = i};
        if (plan_.wants_grad(j)) {
            in.contribution = plan_.contribution(id, i);
            in.grad = g_.node(j).grad;
            in.first = !reached_[j];
            reached_[j] = true;
        }
        step_.inputs.push_back(std::move(in));
    }
    if (++pos_ == order().size()) g_.backward_end(plan_);
    return step_;
}

std::size_t Stepper::index_of(const std::string& name) const {
    auto it = std::find_if(order().begin(), order().end(), [&](int id) { return g_.node(id).name == name; });
    if (it != order().end()) return std::size_t(it - order().begin());
    std::vector<std::string> steps = names_of(g_, order());
    int id = g_.find(name);
    if (id >= 0) {
        NodeKind k = g_.node(id).kind;
        throw InputError(fmt::format("'{}' is {}, not a step of the backward walk (the steps are: {})", name,
                                     k == NodeKind::op          ? "an op node the loss does not depend on"
                                     : k == NodeKind::input     ? "an input"
                                     : k == NodeKind::parameter ? "a parameter"
                                                                : "a constant",
                                     fmt::join(steps, ", ")));
    }
    std::vector<std::string> all;
    for (const Node& n : g_.nodes()) all.push_back(n.name);
    std::string guess = closest_name(name, all);
    throw InputError(fmt::format("model '{}' has no node '{}'{}; the steps are: {}", g_.name, name,
                                 guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess),
                                 fmt::join(steps, ", ")));
}

}  // namespace chainrule
