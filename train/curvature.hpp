// The trainer's Curvature (train/optimizer_table.hpp) for second-order optimizers: the loss of
// the step's batch at the parameters' current values (a forward pass through the training
// plan, with the step's dropout masks), and Hessian-vector products from a copy of the graph
// with its backward pass written as nodes (graph/hessian.hpp), made at the first product.
//
//     BatchCurvature curvature(g, plan);   // once per run
//     ... feed the batch, forward, backward ...
//     curvature.new_batch();                // the copy takes the batch's inputs at its next product
//     optimizer.step(g, params, lr, &curvature);
#pragma once

#include <memory>

#include "graph/graph.hpp"
#include "graph/hessian.hpp"
#include "train/optimizer_table.hpp"

namespace chainrule {

class BatchCurvature final : public Curvature {
public:
    BatchCurvature(Graph& g, Plan& plan) : g_(g), plan_(plan) {}
    // The inputs changed: the next product copies them.
    void new_batch() { fresh_ = true; }
    double loss() override;
    void hvp(std::span<const Tensor* const> v, std::span<Tensor* const> out) override;

private:
    Graph& g_;
    Plan& plan_;
    std::unique_ptr<HessianGraph> hessian_;
    bool fresh_ = true;
};

}  // namespace chainrule
