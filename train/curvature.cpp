#include "train/curvature.hpp"

namespace chainrule {

double BatchCurvature::loss() {
    g_.forward(plan_);
    return g_.node(plan_.loss()).value.at(0);
}

void BatchCurvature::hvp(std::span<const Tensor* const> v, std::span<Tensor* const> out) {
    if (!hessian_) hessian_ = std::make_unique<HessianGraph>(g_);
    if (fresh_) {
        hessian_->set_point(g_);  // inputs and parameters
        fresh_ = false;
    } else {
        for (std::size_t k = 0; k < hessian_->wrt().size(); ++k)
            hessian_->set_parameter(k, g_.node(hessian_->wrt()[k]).value);
    }
    hessian_->hvp(v, out);
}

}  // namespace chainrule
