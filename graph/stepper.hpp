// Stepper: the backward pass one op node at a time, for watching the chain rule work.
//
//     Stepper s(model.graph);          // runs forward, seeds dL/dL = 1
//     while (!s.done()) {
//         const Step& st = s.next();   // one Graph::backward_node
//         ... st.inputs[i].contribution, st.inputs[i].grad, s.graph().node(st.id).grad ...
//     }
//
// The stepper is a cursor into the graph's own reverse topological order
// (Graph::backward_order) and calls the same Graph::backward_node as Graph::backward,
// so every number it shows is a number of the full backward pass, bit for bit.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "graph/graph.hpp"
#include "core/json_io.hpp"

namespace chainrule {

// One of the lecture's nine hand-derived local derivatives: the contribution op node
// `node` (running `op`) sends to its input `slot`, which must be the node named `input`.
struct LectureLabel {
    int number;              // (1) … (9)
    const char* node;
    const char* op;
    std::size_t slot;
    const char* input;
    const char* derivative;  // "∂L/∂S"
    const char* formula;     // the lecture's formula, e.g. "y2(1 − y2)"
    // The lecture's update treats this step as the identity (normalize's Jacobian):
    // the trace then shows the lecture's value beside the exact one.
    bool lecture_passes_through;
};

// The nine, in the lecture's order, then one more row labelling the fused op of
// models/mnist_lecture.json as (3). They label any model whose nodes have the lecture's
// names, ops and inputs (models/slides_mnist.json); each row applies where it matches.
std::span<const LectureLabel> lecture_labels();

// The lecture's value of a step it treats as the identity, the exact one, and the gap.
struct LectureGap {
    Tensor lecture, exact;
    double norm_lecture = 0, norm_exact = 0, norm_diff = 0;
    double relative_diff = 0;  // norm_diff / norm_exact
};

struct StepInput {
    int id = -1;               // the input node
    std::size_t slot = 0;
    Tensor contribution;       // what this step sent to the input; empty when it wants no gradient
    Tensor grad;               // the input's accumulated gradient right after this step
    bool first = false;        // this was the first contribution the input received
    const LectureLabel* label = nullptr;
    std::optional<LectureGap> gap;
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
    int loss() const { return pass_.loss; }
    const std::vector<int>& order() const { return order_; }  // the graph's, not a copy
    std::size_t position() const { return pos_; }             // steps taken
    bool done() const { return pos_ == order_.size(); }
    bool labelled() const { return labelled_; }               // some lecture label applies

    // Runs the next op node's backward. Precondition: !done(). After the last step the
    // gradients of nodes no path reached are zero, as after Graph::backward.
    const Step& next();
    const Step* last() const { return pos_ ? &step_ : nullptr; }

    // Whether `id` has received (part of) its gradient yet; its grad is stale otherwise.
    bool reached(int id) const { return reached_[id]; }
    // Its position in order(); throws InputError naming the closest node or listing the
    // op nodes of the walk when `name` is not one of them.
    std::size_t index_of(const std::string& name) const;

private:
    Graph& g_;
    Pass pass_;
    const std::vector<int>& order_;
    std::size_t pos_ = 0;
    Step step_;
    std::vector<bool> reached_;
    bool labelled_ = false;
};

// ---- showing steps (used by `chainrule step`) ----

struct ShowOptions {
    std::int64_t limit = 24;  // tensors with more elements are summarised
    int digits = 6;
};

// "step 3/8: y2 = sigmoid(a2)" and what it computed, as text.
std::string format_step(const Stepper& s, const Step& st, const ShowOptions& o = {});
// A node's kind, shape, value and, when reached, gradient (the `p NAME` command).
std::string format_node(const Stepper& s, int id, const ShowOptions& o = {});
// The loss and the gradient of every parameter (after the walk).
std::string format_summary(const Stepper& s, const ShowOptions& o = {});

// One entry of `step --json`'s "steps" (docs/backprop-walkthrough.md has the schema).
Json step_json(const Stepper& s, const Step& st);

// The interactive session: reads commands from `in` (Enter: next step; p NAME; c; b NODE;
// q; help), writing to `out`; a prompt is printed before each read when `prompt`.
// Ends on q, at the end of `in`, or on Enter/c once the walk is done.
void interact(Stepper& s, std::istream& in, std::ostream& out, bool prompt, const ShowOptions& o = {});


}  // namespace chainrule
