// Stepper: the backward pass one op node at a time, for watching the chain rule work.
//
//     Stepper s(model.graph);          // runs forward, seeds dL/dL = 1
//     while (!s.done()) {
//         const Step& st = s.next();   // one Graph::backward_node
//         ... st.inputs[i].contribution, st.inputs[i].grad, s.graph().node(st.id).grad ...
//     }
//
// The stepper owns a plan of the walk (Pass::stepping()), is a cursor into its reverse
// topological order, and calls the same Graph::backward_node as Graph::backward,
// so every number it shows is a number of the full backward pass, bit for bit. Showing a
// step (text, JSON, the lecture's labels) is the caller's business: cli/step_view.hpp.
#pragma once

#include <string>
#include <vector>

#include "graph/graph.hpp"

namespace chainrule {

struct StepInput {
    int id = -1;               // the input node
    std::size_t slot = 0;
    Tensor contribution;       // what this step sent to the input; empty when it wants no gradient
    Tensor grad;               // the input's accumulated gradient right after this step
    bool first = false;        // this was the first contribution the input received
};

struct Step {
    std::size_t index = 0;     // position in the backward order, from 0
    int id = -1;               // the op node
    std::vector<StepInput> inputs;
};

class Stepper {
public:
    // Runs forward at the graph's current point (inputs and parameters set) as
    // Pass::stepping() and seeds dL/dL = 1. It overwrites the graph's values and
    // gradients: step a graph that is not being trained at the same time.
    explicit Stepper(Graph& g, int loss = -1);

    const Graph& graph() const { return g_; }
    // The stepper's own plan (Pass::stepping()): which nodes get gradients, each contribution.
    const Plan& plan() const { return plan_; }
    int loss() const { return plan_.loss(); }
    const std::vector<int>& order() const { return plan_.backward_order(); }
    std::size_t position() const { return pos_; }             // steps taken
    bool done() const { return pos_ == order().size(); }

    // Runs the next op node's backward. Precondition: !done(). After the last step the
    // gradients of nodes no path reached are zero, as after Graph::backward.
    const Step& next();
    // Starts the walk again and replays it up to `steps` steps taken (`back` in the REPL):
    // the values stay those of the forward pass, so every gradient is again bit for bit
    // the full pass's. Precondition: steps <= order().size().
    void rewind(std::size_t steps);

    // Whether `id` has received (part of) its gradient yet; its grad is stale otherwise.
    bool reached(int id) const { return reached_[id]; }
    // Its position in order(); throws InputError naming the closest node or listing the
    // op nodes of the walk when `name` is not one of them.
    std::size_t index_of(const std::string& name) const;

private:
    Graph& g_;
    Plan plan_;
    std::size_t pos_ = 0;
    Step step_;
    std::vector<bool> reached_;
};

}  // namespace chainrule
