#include "train/optimizer.hpp"

#include <cmath>
#include <fmt/format.h>
#include <numbers>

#include "core/error.hpp"

namespace chainrule {

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
                                                const std::vector<std::string>& kinds) {
    get_object(j, at);
    std::string names;
    for (const std::string& k : kinds) names += (names.empty() ? "" : ", ") + k;
    if (j.size() != 1)
        throw InputError(fmt::format("{}: expected one {} as {{\"NAME\": {{...}}}} with NAME one of {}, got {}", at,
                                     what, names, json_brief(j)));
    const std::string& name = j.begin().key();
    bool known = false;
    for (const std::string& k : kinds) known = known || name == k;
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
    // PyTorch's "Invalid ... value" checks, with the JSON path.
    void at_least(const char* key, double v, double low) const {
        if (!(v >= low)) throw InputError(fmt::format("{}: must be >= {}, got {}", place(key), low, v));
    }
};

// A hyper-parameter's value from the block, checked by its entry: type, presence, range.
std::vector<double> read_hyper(const Json& block, const HyperParam& h, const std::string& at) {
    const std::string place = json_path(at, h.key);
    if (!block.contains(h.key)) {
        if (h.required) throw InputError(fmt::format("{}: missing required key '{}'", at, h.key));
        return h.fallback;
    }
    const Json& j = block[h.key];
    std::vector<double> v;
    std::vector<std::string> places;
    switch (h.type) {
        case HyperParam::Type::flag:
            if (!j.is_boolean())
                throw InputError(fmt::format("{}: expected true or false, got {}", place, json_brief(j)));
            return {j.get<bool>() ? 1.0 : 0.0};
        case HyperParam::Type::number:
            v = {get_number(j, place)}, places = {place};
            break;
        case HyperParam::Type::pair:
            get_array(j, place);
            if (j.size() != 2)
                throw InputError(fmt::format("{}: expected two numbers {}, got {}", place, h.form, json_brief(j)));
            for (std::size_t i = 0; i < 2; ++i)
                places.push_back(json_path(place, i)), v.push_back(get_number(j[i], places.back()));
            break;
    }
    // PyTorch's "Invalid ... value" checks, with the JSON path.
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (std::isinf(h.below) && !(v[i] >= h.low))
            throw InputError(fmt::format("{}: must be >= {}, got {}", places[i], h.low, v[i]));
        if (!std::isinf(h.below) && !(v[i] >= h.low && v[i] < h.below))
            throw InputError(fmt::format("{}: must be in [{}, {}), got {}", places[i], h.low, h.below, v[i]));
    }
    return v;
}

std::vector<std::string> optimizer_names() {
    std::vector<std::string> names;
    for (const OptimizerEntry& e : optimizer_table()) names.push_back(e.name);
    return names;
}

}  // namespace

OptimizerSpec parse_optimizer(const Json& j, const std::string& at) {
    auto [name, body] = single_kind(j, at, "optimizer", optimizer_names());
    const OptimizerEntry& entry = *find_optimizer(name);
    const std::string place = json_path(at, name);
    for (auto& [key, v] : body->items()) {
        bool known = false;
        std::string allowed;
        for (const HyperParam& h : entry.hyper) {
            known = known || key == h.key;
            allowed += (allowed.empty() ? "" : ", ") + h.key;
        }
        if (!known) throw InputError(fmt::format("{}: unknown key '{}' (allowed: {})", place, key, allowed));
    }
    OptimizerSpec o{.name = name};
    for (const HyperParam& h : entry.hyper) {
        std::vector<double> v = read_hyper(*body, h, place);
        if (h.key == "lr")
            o.lr = v[0];
        else
            o.values.emplace(h.key, std::move(v));
    }
    if (entry.check) entry.check(o, place);
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

namespace {

const OptimizerEntry& entry_of(const OptimizerSpec& o) {
    const OptimizerEntry* e = find_optimizer(o.name);
    if (!e) throw std::logic_error(fmt::format("no optimizer named '{}' in the optimizer table", o.name));
    return *e;
}

const HyperParam& hyper_of(const OptimizerSpec& o, std::string_view key) {
    for (const HyperParam& h : entry_of(o).hyper)
        if (h.key == key) return h;
    throw std::logic_error(fmt::format("optimizer '{}' has no hyper-parameter '{}'", o.name, key));
}

}  // namespace

double OptimizerSpec::number(std::string_view key) const {
    if (key == "lr") return lr;
    auto it = values.find(key);
    return it != values.end() ? it->second.at(0) : hyper_of(*this, key).fallback.at(0);
}

std::span<const double> OptimizerSpec::pair(std::string_view key) const {
    auto it = values.find(key);
    std::span<const double> v = it != values.end() ? it->second : hyper_of(*this, key).fallback;
    if (v.size() != 2) throw std::logic_error(fmt::format("optimizer '{}': '{}' is not a pair", name, key));
    return v;
}

Json optimizer_json(const OptimizerSpec& o) {
    Json a = Json::object();
    for (const HyperParam& h : entry_of(o).hyper) {
        switch (h.type) {
            case HyperParam::Type::number: a[h.key] = o.number(h.key); break;
            case HyperParam::Type::flag: a[h.key] = o.flag(h.key); break;
            case HyperParam::Type::pair: {
                auto v = o.pair(h.key);
                a[h.key] = Json::array({v[0], v[1]});
                break;
            }
        }
    }
    Json j = Json::object();
    j[o.name] = a;
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

void Optimizer::step(Graph& g, std::span<const int> params, double lr, Curvature* curvature) {
    view(g, params);
    step(values_, const_grads_, lr, curvature);
}

double Optimizer::clip_gradients(Graph& g, std::span<const int> params, double max_norm) {
    view(g, params);
    return clip_grad_norm(grads_, max_norm);
}

void Optimizer::save_state(Checkpoint& c) const {
    c.info["optimizer_steps"] = steps_;
    for (const auto& [name, t] : state()) c.optimizer_state.emplace_back(name, *t);
}

void Optimizer::restore_state(const Checkpoint& c, const std::string& file) {
    std::int64_t steps = 0;
    if (c.info.contains("optimizer_steps")) steps = get_int(c.info["optimizer_steps"], file + ": info.optimizer_steps");
    restore(steps, c.optimizer_state, file);
}

Optimizer::Optimizer(const OptimizerSpec& spec, std::span<const Tensor* const> params)
    : entry_(&entry_of(spec)), spec_(spec) {
    std::int64_t entries = 0;
    for (const Tensor* p : params) entries += p->numel();
    if (entry_->max_parameters > 0 && entries > entry_->max_parameters)
        throw InputError(fmt::format("optimizer {}: the model has {} parameter entries, above the {} it takes ({})",
                                     spec.name, entries, entry_->max_parameters, entry_->why_max));
    for (const Tensor* p : params) {
        std::vector<Tensor> buffers;
        for (const StateBuffer& b : entry_->state) {
            const bool kept = (!b.kept || b.kept(spec_)) && (!b.scalar || state_.empty());
            buffers.push_back(!kept ? Tensor() : b.scalar ? Tensor(p->dtype(), {1}) : Tensor(p->dtype(), p->dims()));
        }
        state_.push_back(std::move(buffers));
    }
}

void Optimizer::step(std::span<Tensor* const> params, std::span<const Tensor* const> grads, double lr,
                     Curvature* curvature) {
    if (entry_->second_order && !curvature)
        throw std::logic_error("Optimizer::step: " + entry_->name + " needs the loss and Hessian-vector products");
    ++steps_;
    entry_->update({.params = params,
                    .grads = grads,
                    .state = state_,
                    .spec = spec_,
                    .lr = lr,
                    .step = steps_,
                    .curvature = curvature});
}

namespace {

// Every kept state tensor with its checkpoint name ("exp_avg.1": buffer, then parameter
// index, PyTorch's state_dict keys), for const and mutable callers alike.
template <class State, class F>
void each_state(State& state, const OptimizerEntry& entry, F&& f) {
    for (std::size_t k = 0; k < state.size(); ++k)
        for (std::size_t i = 0; i < entry.state.size(); ++i)
            if (!state[k][i].empty()) f(fmt::format("{}.{}", entry.state[i].name, k), state[k][i]);
}

}  // namespace

std::vector<std::pair<std::string, const Tensor*>> Optimizer::state() const {
    std::vector<std::pair<std::string, const Tensor*>> out;
    each_state(state_, *entry_, [&](std::string name, const Tensor& t) { out.emplace_back(std::move(name), &t); });
    return out;
}

std::vector<std::pair<std::string, Tensor*>> Optimizer::named_state() {
    std::vector<std::pair<std::string, Tensor*>> out;
    each_state(state_, *entry_, [&](std::string name, Tensor& t) { out.emplace_back(std::move(name), &t); });
    return out;
}

void Optimizer::restore(std::int64_t steps, const std::vector<std::pair<std::string, Tensor>>& state,
                        const std::string& where) {
    auto mine = named_state();
    if (steps < 0) throw InputError(fmt::format("{}: optimizer step count {} is negative", where, steps));
    if (mine.size() != state.size())
        throw InputError(fmt::format("{}: the optimizer state has {} tensors, {} expects {}", where, state.size(),
                                     spec_.name, mine.size()));
    for (std::size_t i = 0; i < mine.size(); ++i) {
        const auto& [name, t] = state[i];
        if (name != mine[i].first || t.dims() != mine[i].second->dims())
            throw InputError(fmt::format("{}: optimizer state '{}' {} where '{}' {} was expected", where, name,
                                         format_dims(t.dims()), mine[i].first, format_dims(mine[i].second->dims())));
    }
    // Checked before anything is changed: a refused state leaves the optimizer as it was.
    std::size_t i = 0;
    each_state(state_, *entry_, [&](const std::string& name, const Tensor&) {
        const Tensor& t = state[i++].second;
        const std::string_view buffer = std::string_view(name).substr(0, name.rfind('.'));
        for (const StateBuffer& b : entry_->state)
            if (b.squares && b.name == buffer)
                for (std::int64_t k = 0; k < t.numel(); ++k)
                    if (!(t.at(k) >= 0))
                        throw InputError(fmt::format("{}: optimizer state '{}' has {} at entry {}, but it is a mean "
                                                     "of squares, never below 0",
                                                     where, name, t.at(k), k));
    });
    for (std::size_t k = 0; k < mine.size(); ++k) mine[k].second->assign(state[k].second);
    steps_ = steps;
}

}  // namespace chainrule
