#include "train/optimizer.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace chainrule {
namespace {

// p -= lr * dL/dp, in the parameter's dtype (lr rounded to it once, as PyTorch does).
class Sgd final : public Optimizer {
public:
    explicit Sgd(double lr) : lr_(lr) {}
    void step(Graph& g, std::span<const int> params) override {
        for (int id : params) {
            Node& n = g.node(id);
            dispatch(n.value.dtype(), [&]<class T>() {
                T* p = n.value.template data<T>();
                const T* d = n.grad.template data<T>();
                const T step = static_cast<T>(lr_);
                const std::int64_t count = n.value.numel();
                for (std::int64_t i = 0; i < count; ++i) p[i] -= step * d[i];
            });
        }
    }

private:
    double lr_;
};

}  // namespace

const char* optimizer_name(OptimizerKind kind) {
    switch (kind) {
        case OptimizerKind::sgd: return "sgd";
    }
    return "?";
}

OptimizerSpec parse_optimizer(const Json& j, const std::string& at) {
    const Json& o = get_object(j, at);
    if (o.size() != 1)
        throw InputError(fmt::format("{}: expected one optimizer, as in {{\"sgd\": {{\"lr\": 0.1}}}}, got {} keys", at,
                                     o.size()));
    const std::string& name = o.begin().key();
    if (name != "sgd")
        throw InputError(fmt::format("{}: unknown optimizer '{}'; available: sgd", at, name));
    OptimizerSpec s;
    const std::string sat = json_path(at, "sgd");
    const Json& sgd = get_object(o["sgd"], sat);
    check_keys(sgd, {"lr"}, sat);
    s.lr = get_number(require(sgd, "lr", sat), json_path(sat, "lr"));
    if (!(s.lr > 0)) throw InputError(fmt::format("{}: must be > 0, got {}", json_path(sat, "lr"), s.lr));
    return s;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec) {
    switch (spec.kind) {
        case OptimizerKind::sgd: return std::make_unique<Sgd>(spec.lr);
    }
    throw std::logic_error("make_optimizer: unknown optimizer kind");
}

}  // namespace chainrule
