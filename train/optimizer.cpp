#include "train/optimizer.hpp"

#include <array>
#include <cmath>
#include <fmt/format.h>
#include <numbers>

#include "core/error.hpp"

namespace chainrule {

const char* optimizer_name(OptimizerSpec::Kind k) {
    switch (k) {
        case OptimizerSpec::Kind::sgd: return "sgd";
        case OptimizerSpec::Kind::adam: return "adam";
        case OptimizerSpec::Kind::adamw: return "adamw";
        case OptimizerSpec::Kind::rmsprop: return "rmsprop";
    }
    return "?";
}

const char* schedule_name(ScheduleSpec::Kind k) {
    switch (k) {
        case ScheduleSpec::Kind::constant: return "constant";
        case ScheduleSpec::Kind::step: return "step";
        case ScheduleSpec::Kind::exponential: return "exponential";
        case ScheduleSpec::Kind::cosine: return "cosine";
        case ScheduleSpec::Kind::warmup: return "warmup";
    }
    return "?";
}

namespace {

// The one key of {"name": {...}}, checked against the allowed names.
std::pair<std::string, const Json*> single_kind(const Json& j, const std::string& at, const char* what,
                                                std::initializer_list<const char*> kinds) {
    get_object(j, at);
    std::string names;
    for (const char* k : kinds) names += std::string(names.empty() ? "" : ", ") + k;
    if (j.size() != 1)
        throw InputError(fmt::format("{}: expected one {} as {{\"NAME\": {{...}}}} with NAME one of {}, got {}", at,
                                     what, names, json_brief(j)));
    const std::string& name = j.begin().key();
    bool known = false;
    for (const char* k : kinds) known = known || name == k;
    if (!known) throw InputError(fmt::format("{}: unknown {} '{}' (expected one of {})", at, what, name, names));
    return {name, &get_object(j.begin().value(), json_path(at, name))};
}

struct Fields {
    const Json& j;
    std::string at;
    std::string place(const char* key) const { return json_path(at, key); }
    double number(const char* key, double fallback, bool required = false) const {
        if (!j.contains(key)) {
            if (required) throw InputError(fmt::format("{}: missing required key '{}'", at, key));
            return fallback;
        }
        return get_number(j[key], place(key));
    }
    std::int64_t integer(const char* key, std::int64_t fallback, bool required = false) const {
        if (!j.contains(key)) {
            if (required) throw InputError(fmt::format("{}: missing required key '{}'", at, key));
            return fallback;
        }
        return get_int(j[key], place(key));
    }
    bool boolean(const char* key, bool fallback) const {
        if (!j.contains(key)) return fallback;
        if (!j[key].is_boolean())
            throw InputError(fmt::format("{}: expected true or false, got {}", place(key), json_brief(j[key])));
        return j[key].get<bool>();
    }
    // PyTorch's "Invalid ... value" checks, with the JSON path.
    void at_least(const char* key, double v, double low) const {
        if (!(v >= low)) throw InputError(fmt::format("{}: must be >= {}, got {}", place(key), low, v));
    }
};

void check_beta(const std::string& at, double v) {
    if (!(v >= 0 && v < 1)) throw InputError(fmt::format("{}: must be in [0, 1), got {}", at, v));
}

}  // namespace

OptimizerSpec parse_optimizer(const Json& j, const std::string& at) {
    auto [name, body] = single_kind(j, at, "optimizer", {"sgd", "adam", "adamw", "rmsprop"});
    Fields f{*body, json_path(at, name)};
    OptimizerSpec o;
    if (name == "sgd") {
        check_keys(*body, {"lr", "momentum", "dampening", "nesterov", "weight_decay"}, f.at);
        o.kind = OptimizerSpec::Kind::sgd;
        o.lr = f.number("lr", 0, true);  // torch.optim.SGD has no default lr
        o.momentum = f.number("momentum", 0);
        o.dampening = f.number("dampening", 0);
        o.nesterov = f.boolean("nesterov", false);
        o.weight_decay = f.number("weight_decay", 0);
        f.at_least("momentum", o.momentum, 0);
        if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
            throw InputError(fmt::format("{}: nesterov needs a momentum > 0 and zero dampening (got momentum {}, "
                                         "dampening {})",
                                         f.place("nesterov"), o.momentum, o.dampening));
    } else if (name == "adam" || name == "adamw") {
        check_keys(*body, {"lr", "betas", "eps", "weight_decay", "amsgrad"}, f.at);
        o.kind = name == "adam" ? OptimizerSpec::Kind::adam : OptimizerSpec::Kind::adamw;
        o.lr = f.number("lr", 0.001);
        if (body->contains("betas")) {
            const Json& b = get_array((*body)["betas"], f.place("betas"));
            if (b.size() != 2)
                throw InputError(fmt::format("{}: expected two numbers [beta1, beta2], got {}", f.place("betas"),
                                             json_brief(b)));
            o.beta1 = get_number(b[0], json_path(f.place("betas"), 0));
            o.beta2 = get_number(b[1], json_path(f.place("betas"), 1));
            check_beta(json_path(f.place("betas"), 0), o.beta1);
            check_beta(json_path(f.place("betas"), 1), o.beta2);
        }
        o.eps = f.number("eps", 1e-8);
        o.weight_decay = f.number("weight_decay", name == "adam" ? 0 : 0.01);
        o.amsgrad = f.boolean("amsgrad", false);
        f.at_least("eps", o.eps, 0);
    } else {
        check_keys(*body, {"lr", "alpha", "eps", "weight_decay", "momentum", "centered"}, f.at);
        o.kind = OptimizerSpec::Kind::rmsprop;
        o.lr = f.number("lr", 0.01);
        o.alpha = f.number("alpha", 0.99);
        o.eps = f.number("eps", 1e-8);
        o.weight_decay = f.number("weight_decay", 0);
        o.momentum = f.number("momentum", 0);
        o.centered = f.boolean("centered", false);
        f.at_least("alpha", o.alpha, 0);
        f.at_least("eps", o.eps, 0);
        f.at_least("momentum", o.momentum, 0);
    }
    f.at_least("lr", o.lr, 0);
    f.at_least("weight_decay", o.weight_decay, 0);
    return o;
}

ScheduleSpec parse_schedule(const Json& j, const std::string& at) {
    auto [name, body] = single_kind(j, at, "lr_schedule", {"step", "exponential", "cosine", "warmup"});
    Fields f{*body, json_path(at, name)};
    ScheduleSpec s;
    auto positive = [&](const char* key, double v) {
        if (!(v > 0)) throw InputError(fmt::format("{}: must be > 0, got {}", f.place(key), v));
    };
    if (name == "step") {
        check_keys(*body, {"step_size", "gamma"}, f.at);
        s.kind = ScheduleSpec::Kind::step;
        s.step_size = f.integer("step_size", 1, true);
        s.gamma = f.number("gamma", 0.1);
        f.at_least("step_size", double(s.step_size), 1);
        positive("gamma", s.gamma);
    } else if (name == "exponential") {
        check_keys(*body, {"gamma"}, f.at);
        s.kind = ScheduleSpec::Kind::exponential;
        s.gamma = f.number("gamma", 0, true);
        positive("gamma", s.gamma);
    } else if (name == "cosine") {
        check_keys(*body, {"t_max", "eta_min"}, f.at);
        s.kind = ScheduleSpec::Kind::cosine;
        s.t_max = f.integer("t_max", 1, true);
        s.eta_min = f.number("eta_min", 0);
        f.at_least("t_max", double(s.t_max), 1);
        f.at_least("eta_min", s.eta_min, 0);
    } else {
        check_keys(*body, {"epochs", "start_factor"}, f.at);
        s.kind = ScheduleSpec::Kind::warmup;
        s.epochs = f.integer("epochs", 1, true);
        s.start_factor = f.number("start_factor", 1.0 / 3);
        f.at_least("epochs", double(s.epochs), 1);
        if (!(s.start_factor > 0 && s.start_factor <= 1))
            throw InputError(fmt::format("{}: must be in (0, 1], got {}", f.place("start_factor"), s.start_factor));
    }
    return s;
}

Json optimizer_json(const OptimizerSpec& o) {
    Json a = Json::object();
    a["lr"] = o.lr;
    switch (o.kind) {
        case OptimizerSpec::Kind::sgd:
            a["momentum"] = o.momentum, a["dampening"] = o.dampening, a["nesterov"] = o.nesterov;
            a["weight_decay"] = o.weight_decay;
            break;
        case OptimizerSpec::Kind::adam:
        case OptimizerSpec::Kind::adamw:
            a["betas"] = Json::array({o.beta1, o.beta2}), a["eps"] = o.eps, a["weight_decay"] = o.weight_decay;
            a["amsgrad"] = o.amsgrad;
            break;
        case OptimizerSpec::Kind::rmsprop:
            a["alpha"] = o.alpha, a["eps"] = o.eps, a["weight_decay"] = o.weight_decay, a["momentum"] = o.momentum;
            a["centered"] = o.centered;
            break;
    }
    Json j = Json::object();
    j[optimizer_name(o.kind)] = a;
    return j;
}

Json schedule_json(const ScheduleSpec& s) {
    Json a = Json::object();
    switch (s.kind) {
        case ScheduleSpec::Kind::constant: break;
        case ScheduleSpec::Kind::step: a["step_size"] = s.step_size, a["gamma"] = s.gamma; break;
        case ScheduleSpec::Kind::exponential: a["gamma"] = s.gamma; break;
        case ScheduleSpec::Kind::cosine: a["t_max"] = s.t_max, a["eta_min"] = s.eta_min; break;
        case ScheduleSpec::Kind::warmup: a["epochs"] = s.epochs, a["start_factor"] = s.start_factor; break;
    }
    Json j = Json::object();
    j[schedule_name(s.kind)] = a;
    return j;
}

namespace {

std::string describe_fields(const Json& j) {
    auto it = j.begin();
    const Json& a = it.value();
    std::string out = it.key() + "(";
    bool first = true;
    for (const auto& [k, v] : a.items()) {
        std::string value = v.is_array() ? fmt::format("({:g}, {:g})", v[0].get<double>(), v[1].get<double>())
                            : v.is_boolean() ? (v.get<bool>() ? "true" : "false")
                            : v.is_number_integer() ? fmt::format("{}", v.get<std::int64_t>())
                                                  : fmt::format("{:g}", v.get<double>());
        out += fmt::format("{}{}={}", first ? "" : ", ", k, value);
        first = false;
    }
    return out + ")";
}

}  // namespace

std::string describe(const OptimizerSpec& o) { return describe_fields(optimizer_json(o)); }
std::string describe(const ScheduleSpec& s) {
    return s.kind == ScheduleSpec::Kind::constant ? "constant" : describe_fields(schedule_json(s));
}

double scheduled_lr(const ScheduleSpec& s, double base_lr, std::int64_t e) {
    switch (s.kind) {
        case ScheduleSpec::Kind::constant: return base_lr;
        case ScheduleSpec::Kind::step: return base_lr * std::pow(s.gamma, double(e / s.step_size));
        case ScheduleSpec::Kind::exponential: return base_lr * std::pow(s.gamma, double(e));
        case ScheduleSpec::Kind::cosine:
            return s.eta_min + (base_lr - s.eta_min) * (1 + std::cos(std::numbers::pi * double(e) / double(s.t_max))) / 2;
        case ScheduleSpec::Kind::warmup: {
            double done = double(std::min(e, s.epochs)) / double(s.epochs);
            return base_lr * (s.start_factor + (1 - s.start_factor) * done);
        }
    }
    return base_lr;
}

double clip_grad_norm(std::span<Tensor* const> grads, double max_norm) {
    // As PyTorch: the norm of the per-tensor norms, each summed in the tensor's dtype.
    double total = 0;
    for (Tensor* g : grads) {
        double n = dispatch(g->dtype(), [&]<class T>() {
            T s = 0;
            for (T v : g->span<T>()) s += v * v;
            return double(std::sqrt(s));
        });
        total += n * n;
    }
    total = std::sqrt(total);
    double coef = std::min(1.0, max_norm / (total + 1e-6));
    if (coef < 1.0)
        for (Tensor* g : grads)
            dispatch(g->dtype(), [&]<class T>() {
                for (T& v : g->span<T>()) v *= T(coef);
            });
    return total;
}

bool is_optimizer_setting(const std::string& key) {
    return key == "lr" || key == "optimizer" || key == "lr_schedule" || key == "clip_grad_norm";
}

namespace {

std::vector<const Tensor*> values_of(Graph& g, std::span<const int> params) {
    std::vector<const Tensor*> out;
    for (int id : params) out.push_back(&g.node(id).value);
    return out;
}

}  // namespace

Optimizer::Optimizer(const OptimizerSpec& spec, Graph& g, std::span<const int> params)
    : Optimizer(spec, values_of(g, params)) {
    values_.reserve(params.size()), grads_.reserve(params.size()), const_grads_.reserve(params.size());
}

void Optimizer::view(Graph& g, std::span<const int> params) {
    values_.clear(), grads_.clear(), const_grads_.clear();
    for (int id : params) {
        values_.push_back(&g.node(id).value);
        grads_.push_back(&g.node(id).grad);
        const_grads_.push_back(&g.node(id).grad);
    }
}

void Optimizer::step(Graph& g, std::span<const int> params, double lr) {
    view(g, params);
    step(values_, const_grads_, lr);
}

double Optimizer::clip_gradients(Graph& g, std::span<const int> params, double max_norm) {
    view(g, params);
    return clip_grad_norm(grads_, max_norm);
}

void Optimizer::save_state(Checkpoint& c) const {
    c.info["optimizer_steps"] = steps_;
    for (const auto& [name, t] : state()) c.tensors.emplace_back("optimizer/" + name, *t);
}

void Optimizer::restore_state(const Checkpoint& c, const std::string& file) {
    std::vector<std::pair<std::string, Tensor>> saved;
    for (const auto& [name, t] : c.tensors)
        if (name.rfind("optimizer/", 0) == 0) saved.emplace_back(name.substr(10), t);
    std::int64_t steps = 0;
    if (c.info.contains("optimizer_steps")) steps = get_int(c.info["optimizer_steps"], file + ": info.optimizer_steps");
    restore(steps, saved, file);
}

Optimizer::Optimizer(const OptimizerSpec& spec, std::span<const Tensor* const> params) : spec_(spec) {
    using K = OptimizerSpec::Kind;
    for (const Tensor* p : params) {
        Slot s;
        auto zeros = [&] { return Tensor(p->dtype(), p->dims()); };
        switch (spec.kind) {
            case K::sgd:
                if (spec.momentum != 0) s.a = zeros();
                break;
            case K::adam:
            case K::adamw:
                s.a = zeros(), s.b = zeros();
                if (spec.amsgrad) s.c = zeros();
                break;
            case K::rmsprop:
                s.a = zeros();
                if (spec.momentum > 0) s.b = zeros();
                if (spec.centered) s.c = zeros();
                break;
        }
        slots_.push_back(std::move(s));
    }
}

namespace {

// The single-tensor update rules of torch.optim 1.13, one element at a time.
template <class T>
void sgd(const OptimizerSpec& o, T* p, const T* g, T* buf, bool& started, std::int64_t n, T lr) {
    const T wd = T(o.weight_decay), mom = T(o.momentum), damp = T(1 - o.dampening);
    for (std::int64_t i = 0; i < n; ++i) {
        T d = g[i];
        if (o.weight_decay != 0) d = d + wd * p[i];
        if (o.momentum != 0) {
            buf[i] = started ? buf[i] * mom + damp * d : d;
            d = o.nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] = p[i] - lr * d;
    }
    started = true;
}

template <class T>
void adam(const OptimizerSpec& o, T* p, const T* g, T* m, T* v, T* vmax, std::int64_t n, T lr, std::int64_t step) {
    const T b1 = T(o.beta1), b2 = T(o.beta2), eps = T(o.eps), wd = T(o.weight_decay);
    const T bias1 = T(1 - std::pow(o.beta1, double(step)));
    const T bias2_sqrt = T(std::sqrt(1 - std::pow(o.beta2, double(step))));
    const T step_size = lr / bias1;
    const bool decoupled = o.kind == OptimizerSpec::Kind::adamw;
    for (std::int64_t i = 0; i < n; ++i) {
        T grad = g[i];
        if (decoupled)
            p[i] = p[i] * (T(1) - lr * wd);
        else if (o.weight_decay != 0)
            grad = grad + wd * p[i];
        m[i] = m[i] * b1 + (T(1) - b1) * grad;
        v[i] = v[i] * b2 + (T(1) - b2) * grad * grad;
        T second = v[i];
        if (o.amsgrad) second = vmax[i] = std::max(vmax[i], v[i]);
        const T denom = std::sqrt(second) / bias2_sqrt + eps;
        p[i] = p[i] - step_size * (m[i] / denom);
    }
}

template <class T>
void rmsprop(const OptimizerSpec& o, T* p, const T* g, T* sq, T* buf, T* avg, std::int64_t n, T lr) {
    const T alpha = T(o.alpha), eps = T(o.eps), wd = T(o.weight_decay), mom = T(o.momentum);
    for (std::int64_t i = 0; i < n; ++i) {
        T grad = g[i];
        if (o.weight_decay != 0) grad = grad + wd * p[i];
        sq[i] = sq[i] * alpha + (T(1) - alpha) * grad * grad;
        T root;
        if (o.centered) {
            avg[i] = avg[i] * alpha + (T(1) - alpha) * grad;
            root = std::sqrt(sq[i] - avg[i] * avg[i]);
        } else {
            root = std::sqrt(sq[i]);
        }
        root = root + eps;
        if (o.momentum > 0) {
            buf[i] = buf[i] * mom + grad / root;
            p[i] = p[i] - lr * buf[i];
        } else {
            p[i] = p[i] - lr * (grad / root);
        }
    }
}

}  // namespace

void Optimizer::step(std::span<Tensor* const> params, std::span<const Tensor* const> grads, double lr) {
    ++steps_;
    for (std::size_t k = 0; k < params.size(); ++k) {
        Tensor& p = *params[k];
        const Tensor& g = *grads[k];
        Slot& s = slots_[k];
        dispatch(p.dtype(), [&]<class T>() {
            T* pd = p.data<T>();
            const T* gd = g.data<T>();
            switch (spec_.kind) {
                case OptimizerSpec::Kind::sgd:
                    sgd<T>(spec_, pd, gd, s.a.data<T>(), s.started, p.numel(), T(lr));
                    break;
                case OptimizerSpec::Kind::adam:
                case OptimizerSpec::Kind::adamw:
                    adam<T>(spec_, pd, gd, s.a.data<T>(), s.b.data<T>(), s.c.data<T>(), p.numel(), T(lr), steps_);
                    break;
                case OptimizerSpec::Kind::rmsprop:
                    rmsprop<T>(spec_, pd, gd, s.a.data<T>(), s.b.data<T>(), s.c.data<T>(), p.numel(), T(lr));
                    break;
            }
        });
    }
}

namespace {

// The state tensors' names in a checkpoint, per slot: PyTorch's state_dict keys.
std::array<const char*, 3> state_names(OptimizerSpec::Kind k) {
    switch (k) {
        case OptimizerSpec::Kind::sgd: return {"momentum_buffer", "", ""};
        case OptimizerSpec::Kind::adam:
        case OptimizerSpec::Kind::adamw: return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
        case OptimizerSpec::Kind::rmsprop: return {"square_avg", "momentum_buffer", "grad_avg"};
    }
    return {"", "", ""};
}

// Every allocated state tensor with its name, for const and mutable callers alike.
template <class Slots, class F>
void each_state(Slots& slots, OptimizerSpec::Kind kind, F&& f) {
    auto names = state_names(kind);
    for (std::size_t k = 0; k < slots.size(); ++k) {
        auto t = std::array{&slots[k].a, &slots[k].b, &slots[k].c};
        for (int i = 0; i < 3; ++i)
            if (!t[i]->empty()) f(fmt::format("{}.{}", names[i], k), *t[i]);
    }
}

}  // namespace

std::vector<std::pair<std::string, const Tensor*>> Optimizer::state() const {
    std::vector<std::pair<std::string, const Tensor*>> out;
    each_state(slots_, spec_.kind, [&](std::string name, const Tensor& t) { out.emplace_back(std::move(name), &t); });
    return out;
}

std::vector<std::pair<std::string, Tensor*>> Optimizer::named_state() {
    std::vector<std::pair<std::string, Tensor*>> out;
    each_state(slots_, spec_.kind, [&](std::string name, Tensor& t) { out.emplace_back(std::move(name), &t); });
    return out;
}

void Optimizer::restore(std::int64_t steps, const std::vector<std::pair<std::string, Tensor>>& state,
                        const std::string& where) {
    auto mine = named_state();
    if (steps < 0) throw InputError(fmt::format("{}: optimizer step count {} is negative", where, steps));
    if (mine.size() != state.size())
        throw InputError(fmt::format("{}: the optimizer state has {} tensors, {} expects {}", where, state.size(),
                                     optimizer_name(spec_.kind), mine.size()));
    for (std::size_t i = 0; i < mine.size(); ++i) {
        const auto& [name, t] = state[i];
        if (name != mine[i].first || t.dims() != mine[i].second->dims())
            throw InputError(fmt::format("{}: optimizer state '{}' {} where '{}' {} was expected", where, name,
                                         format_dims(t.dims()), mine[i].first, format_dims(mine[i].second->dims())));
        mine[i].second->assign(t);
    }
    steps_ = steps;
    // sgd's buffer starts as a copy of the first d_p: a restored run has had its first step.
    for (auto& s : slots_) s.started = steps > 0;
}

}  // namespace chainrule
