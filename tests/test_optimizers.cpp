// Optimizers, schedules and clipping against torch.optim 1.13 (tests/golden/optimizers.json,
// made by tests/golden/make_optimizer_goldens.py; Lion, which torch 1.13 lacks, against the
// float64 reference written out there): the worked example in float64, every step's w and b
// to 1e-9 relative; the training block's checks, message by message; and the optimizer
// table against its goldens, models/schema.json and docs/optimizers.md.
#define BOOST_TEST_MODULE optimizers
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "format/model_json.hpp"
#include "testing.hpp"
#include "train/curvature.hpp"
#include "train/optimizer.hpp"

using namespace chainrule;
using namespace chainrule::testing;

namespace {

Tensor column(const Json& rows) {  // [[a], [b], ...] or [a, b, ...]
    return tensor_from_json(rows, "golden");
}

double relative_gap(double got, double want) { return std::abs(got - want) / std::max(1e-12, std::abs(want)); }

struct Worked {
    Model m = load_model(source_root() + "/models/worked_example.json");
    Worked(const Json& golden) {
        m.graph.init_parameters(0);
        m.graph.set_value("x", column(golden["x"]));
        m.graph.set_value("y", column(golden["y"]));
        m.graph.set_value("w", column(golden["w"]));
        m.graph.set_value("b", column(golden["b"]));
    }
};

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_golden_trajectory_is_followed_to_1e_9) {
    Json golden = read_json_file(source_root() + "/tests/golden/optimizers.json");
    BOOST_REQUIRE(golden["cases"].size() >= 26u);
    for (const Json& c : golden["cases"]) {
        std::string name = c["name"].get<std::string>();
        Worked w(golden);
        Graph& g = w.m.graph;
        OptimizerSpec spec = parse_optimizer(c["optimizer"], name);
        ScheduleSpec sched = c.contains("lr_schedule") ? parse_schedule(c["lr_schedule"], name) : ScheduleSpec{};
        std::vector<Tensor*> params{&g.node(g.id("w")).value, &g.node(g.id("b")).value};
        std::vector<const Tensor*> cparams(params.begin(), params.end());
        Optimizer opt(spec, cparams);
        // A second-order optimizer's loss at trial points and Hessian-vector products, as the trainer's.
        Plan plan = g.plan();
        BatchCurvature curvature(g, plan);
        double worst = 0;
        std::size_t k = 0;
        const auto& steps = c["steps"];
        for (std::int64_t epoch = 0; epoch < c["epochs"].get<std::int64_t>(); ++epoch) {
            double lr = scheduled_lr(sched, spec.lr, epoch);
            for (std::int64_t s = 0; s < c["steps_per_epoch"].get<std::int64_t>(); ++s, ++k) {
                const Json& want = steps[k];
                forward_backward_once(g);
                BOOST_TEST(relative_gap(g.value("L").at(0), want["loss"].get<double>()) < 1e-9, name << " step " << k);
                BOOST_TEST(relative_gap(lr, want["lr"].get<double>()) < 1e-12, name << " lr at step " << k);
                std::vector<Tensor*> grads{&g.node(g.id("w")).grad, &g.node(g.id("b")).grad};
                if (c.contains("clip_grad_norm")) {
                    double norm = clip_grad_norm(grads, c["clip_grad_norm"].get<double>());
                    BOOST_TEST(relative_gap(norm, want["grad_norm"].get<double>()) < 1e-9, name);
                }
                std::vector<const Tensor*> cgrads(grads.begin(), grads.end());
                curvature.new_batch();
                opt.step(params, cgrads, lr, opt.second_order() ? &curvature : nullptr);
                for (int i = 0; i < 4; ++i) worst = std::max(worst, relative_gap(params[0]->at(i), want["w"][i].get<double>()));
                worst = std::max(worst, relative_gap(params[1]->at(0), want["b"][0].get<double>()));
            }
        }
        BOOST_TEST(k == steps.size(), name);
        BOOST_TEST(worst < 1e-9, name << ": largest relative gap to torch.optim " << worst);
        BOOST_TEST_MESSAGE(name << ": largest relative gap " << worst);
    }
}

// The clipping cases differ from their unclipped twins only when the limit bites.
BOOST_AUTO_TEST_CASE(clipping_that_does_not_trigger_changes_nothing) {
    Json golden = read_json_file(source_root() + "/tests/golden/optimizers.json");
    const Json* plain = nullptr;
    const Json* loose = nullptr;
    for (const Json& c : golden["cases"]) {
        if (c["name"] == "sgd") plain = &c;
        if (c["name"] == "clip_does_not_trigger") loose = &c;
    }
    BOOST_REQUIRE(plain && loose);
    BOOST_TEST((*plain)["steps"].back()["w"] == (*loose)["steps"].back()["w"]);
}

BOOST_AUTO_TEST_CASE(defaults_are_pytorchs) {
    OptimizerSpec a = parse_optimizer(Json::parse(R"({"adam": {}})"), "t");
    BOOST_TEST(a.lr == 0.001);
    BOOST_TEST(a.pair("betas")[0] == 0.9);
    BOOST_TEST(a.pair("betas")[1] == 0.999);
    BOOST_TEST(a.number("eps") == 1e-8);
    BOOST_TEST(a.number("weight_decay") == 0.0);
    BOOST_TEST(!a.flag("amsgrad"));
    OptimizerSpec w = parse_optimizer(Json::parse(R"({"adamw": {}})"), "t");
    BOOST_TEST(w.number("weight_decay") == 0.01);
    OptimizerSpec r = parse_optimizer(Json::parse(R"({"rmsprop": {}})"), "t");
    BOOST_TEST(r.lr == 0.01);
    BOOST_TEST(r.number("alpha") == 0.99);
    ScheduleSpec s = parse_schedule(Json::parse(R"({"warmup": {"epochs": 3}})"), "t");
    BOOST_TEST(std::abs(s.start_factor - 1.0 / 3) < 1e-15);
    BOOST_TEST(describe(a) == "adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, amsgrad=false)");
    BOOST_TEST(describe(r) == "rmsprop(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0, momentum=0, centered=false)");
    BOOST_TEST(describe(OptimizerSpec{}) == "sgd(lr=0.1, momentum=0, dampening=0, nesterov=false, weight_decay=0)");
    // Lion's defaults are its paper's (lr 1e-4, betas (0.9, 0.99)), as lion-pytorch's.
    OptimizerSpec l = parse_optimizer(Json::parse(R"({"lion": {}})"), "t");
    BOOST_TEST(l.lr == 1e-4);
    BOOST_TEST(l.pair("betas")[0] == 0.9);
    BOOST_TEST(l.pair("betas")[1] == 0.99);
    BOOST_TEST(l.number("weight_decay") == 0.0);
    BOOST_TEST(describe(l) == "lion(lr=0.0001, betas=(0.9, 0.99), weight_decay=0)");
    BOOST_TEST(optimizer_json(l).dump() == R"({"lion":{"lr":0.0001,"betas":[0.9,0.99],"weight_decay":0.0}})");
    BOOST_TEST(describe(parse_schedule(Json::parse(R"({"cosine": {"t_max": 100}})"), "t")) ==
               "cosine(t_max=100, eta_min=0)");
}

// PyTorch's own checks, each with its JSON path (the error_inputs of the training block).
BOOST_AUTO_TEST_CASE(bad_optimizer_blocks_name_the_key) {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"sgd": {}})", "m.json: training.optimizer.sgd: missing required key 'lr'"},
        {R"({"sgd": {"lr": -0.1}})", "training.optimizer.sgd.lr: must be >= 0, got -0.1"},
        {R"({"sgd": {"lr": "fast"}})", "training.optimizer.sgd.lr: expected a number"},
        {R"({"sgd": {"lr": 0.1, "nesterov": true}})", "training.optimizer.sgd.nesterov: nesterov needs a momentum > 0 and zero dampening"},
        {R"({"sgd": {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": true}})", "zero dampening (got momentum 0.9, dampening 0.1)"},
        {R"({"sgd": {"lr": 0.1, "momentum": -1}})", "training.optimizer.sgd.momentum: must be >= 0"},
        {R"({"sgd": {"lr": 0.1, "nesterov": 1}})", "training.optimizer.sgd.nesterov: expected true or false, got 1"},
        {R"({"sgd": {"lr": 0.1, "momentun": 0.9}})", "training.optimizer.sgd: unknown key 'momentun'"},
        {R"({"adam": {"betas": [0.9, 1.0]}})", "training.optimizer.adam.betas[1]: must be in [0, 1), got 1"},
        {R"({"adam": {"betas": [-0.1, 0.9]}})", "training.optimizer.adam.betas[0]: must be in [0, 1)"},
        {R"({"adam": {"betas": [0.9]}})", "training.optimizer.adam.betas: expected two numbers [beta1, beta2]"},
        {R"({"adamw": {"eps": -1e-8}})", "training.optimizer.adamw.eps: must be >= 0"},
        {R"({"adam": {"weight_decay": -1}})", "training.optimizer.adam.weight_decay: must be >= 0"},
        {R"({"adam": {"amsgrad": "yes"}})", "training.optimizer.adam.amsgrad: expected true or false"},
        {R"({"rmsprop": {"alpha": -0.5}})", "training.optimizer.rmsprop.alpha: must be >= 0"},
        {R"({"rmsprop": {"centred": true}})", "training.optimizer.rmsprop: unknown key 'centred'"},
        {R"({"lbfgs": {"lr": 1}})", "training.optimizer: unknown optimizer 'lbfgs' (expected one of sgd, adam, adamw, rmsprop, lion, newton, newton_cg)"},
        {R"({"sgd": {"lr": 1}, "adam": {}})", "training.optimizer: expected one optimizer"},
        {R"({"sgd": 0.1})", "training.optimizer.sgd: expected an object"},
        {R"({"lion": {"lr": -1e-4}})", "training.optimizer.lion.lr: must be >= 0, got -0.0001"},
        {R"({"lion": {"lr": "slow"}})", "training.optimizer.lion.lr: expected a number"},
        {R"({"lion": {"betas": [0.9, 1]}})", "training.optimizer.lion.betas[1]: must be in [0, 1), got 1"},
        {R"({"lion": {"betas": [-0.5, 0.99]}})", "training.optimizer.lion.betas[0]: must be in [0, 1), got -0.5"},
        {R"({"lion": {"betas": [0.9, 0.99, 0.999]}})", "training.optimizer.lion.betas: expected two numbers [beta1, beta2], got [0.9,0.99,0.999]"},
        {R"({"lion": {"betas": 0.9}})", "training.optimizer.lion.betas: expected an array"},
        {R"({"lion": {"weight_decay": -0.1}})", "training.optimizer.lion.weight_decay: must be >= 0, got -0.1"},
        {R"({"lion": {"eps": 1e-8}})", "training.optimizer.lion: unknown key 'eps' (allowed: lr, betas, weight_decay)"},
    };
    for (auto [text, fragment] : cases) {
        std::string msg = error_of([&] { parse_optimizer(Json::parse(text), "m.json: training.optimizer"); });
        BOOST_TEST(msg.find(fragment) != std::string::npos, text << ": '" << fragment << "' not in: " << msg);
    }
}

BOOST_AUTO_TEST_CASE(bad_schedules_name_the_key) {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"step": {}})", "training.lr_schedule.step: missing required key 'step_size'"},
        {R"({"step": {"step_size": 0}})", "training.lr_schedule.step.step_size: must be >= 1, got 0"},
        {R"({"step": {"step_size": 2, "gamma": 0}})", "training.lr_schedule.step.gamma: must be > 0, got 0"},
        {R"({"exponential": {}})", "training.lr_schedule.exponential: missing required key 'gamma'"},
        {R"({"cosine": {"t_max": 10, "eta_min": -1}})", "training.lr_schedule.cosine.eta_min: must be >= 0"},
        {R"({"cosine": {"t_max": 2.5}})", "training.lr_schedule.cosine.t_max: expected an integer"},
        {R"({"warmup": {"epochs": 5, "start_factor": 0}})", "training.lr_schedule.warmup.start_factor: must be in (0, 1], got 0"},
        {R"({"warmup": {"epochs": 5, "start_factor": 1.5}})", "start_factor: must be in (0, 1], got 1.5"},
        {R"({"onecycle": {}})", "training.lr_schedule: unknown lr_schedule 'onecycle' (expected one of step, exponential, cosine, warmup)"},
    };
    for (auto [text, fragment] : cases) {
        std::string msg = error_of([&] { parse_schedule(Json::parse(text), "m.json: training.lr_schedule"); });
        BOOST_TEST(msg.find(fragment) != std::string::npos, text << ": '" << fragment << "' not in: " << msg);
    }
}

BOOST_AUTO_TEST_CASE(state_round_trips_and_a_wrong_state_is_named) {
    Tensor p(Dtype::f64, {3});
    p.fill(0.5);
    Tensor g(Dtype::f64, {3});
    g.fill(0.25);
    std::vector<Tensor*> ps{&p};
    std::vector<const Tensor*> cps{&p}, gs{&g};
    OptimizerSpec spec = parse_optimizer(Json::parse(R"({"adam": {"lr": 0.1, "amsgrad": true}})"), "t");
    Optimizer a(spec, cps);
    a.step(ps, gs, 0.1);
    a.step(ps, gs, 0.1);
    std::vector<std::pair<std::string, Tensor>> saved;
    for (auto& [name, t] : a.state()) saved.emplace_back(name, *t);
    BOOST_TEST(saved.size() == 3u);
    BOOST_TEST(saved[0].first == "exp_avg.0");
    BOOST_TEST(saved[2].first == "max_exp_avg_sq.0");
    Tensor q = p;
    std::vector<Tensor*> qs{&q};
    Optimizer b(spec, cps);
    b.restore(a.steps(), saved, "ckpt");
    a.step(ps, gs, 0.1);
    b.step(qs, gs, 0.1);
    for (int i = 0; i < 3; ++i) BOOST_TEST(p.at(i) == q.at(i));  // bit for bit
    Optimizer s(parse_optimizer(Json::parse(R"({"sgd": {"lr": 0.1, "momentum": 0.9}})"), "t"), cps);
    std::string msg = error_of([&] { s.restore(2, saved, "run/checkpoint.ckpt"); });
    BOOST_TEST(msg.find("run/checkpoint.ckpt: the optimizer state has 3 tensors, sgd expects 1") != std::string::npos, msg);
}

// Lion by hand: lr 0.1, betas (0.9, 0.99), weight_decay 0.5, from p = 1 and m = 0.
// Step 1, g = (0.5, −2, 0): c = 0.1·g = (0.05, −0.2, 0), sign(c) = (1, −1, 0) (sign(0) = 0),
//   p = 1 − 0.1·(sign(c) + 0.5) = (0.85, 1.05, 0.95);  m = 0.01·g = (0.005, −0.02, 0).
// Step 2, g = (−0.04, −2, 0): c₀ = 0.9·0.005 − 0.1·0.04 = 0.0005 > 0 although g₀ < 0 (the
//   momentum decides), so p₀ = 0.85 − 0.1·(1 + 0.425) = 0.7075; p₁ = 1.05 − 0.1·(−1 + 0.525)
//   = 1.0975; p₂ = 0.95 − 0.1·0.475 = 0.9025;  m₀ = 0.99·0.005 − 0.01·0.04 = 0.00455.
BOOST_AUTO_TEST_CASE(lion_steps_by_hand) {
    Tensor p(Dtype::f64, {3});
    p.fill(1.0);
    Tensor g = tensor_from_json(Json::parse("[0.5, -2, 0]"), "g");
    std::vector<Tensor*> ps{&p};
    std::vector<const Tensor*> cps{&p}, gs{&g};
    Optimizer lion(parse_optimizer(Json::parse(R"({"lion": {"lr": 0.1, "weight_decay": 0.5}})"), "t"), cps);
    lion.step(ps, gs, 0.1);
    const double after_one[] = {0.85, 1.05, 0.95};
    for (int i = 0; i < 3; ++i) BOOST_TEST(p.at(i) == after_one[i], boost::test_tools::tolerance(1e-15));
    g = tensor_from_json(Json::parse("[-0.04, -2, 0]"), "g");
    lion.step(ps, gs, 0.1);
    const double after_two[] = {0.7075, 1.0975, 0.9025};
    for (int i = 0; i < 3; ++i) BOOST_TEST(p.at(i) == after_two[i], boost::test_tools::tolerance(1e-15));
    auto state = lion.state();
    BOOST_REQUIRE(state.size() == 1u);
    BOOST_TEST(state[0].first == "exp_avg.0");
    BOOST_TEST(state[0].second->at(0) == 0.00455, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(state[0].second->at(2) == 0.0);
    // A NaN gradient gives a NaN parameter, for the trainer's anomaly check to see (torch.sign).
    g = tensor_from_json(Json::parse("[0, 0, 0]"), "g");
    g.fill(std::nan(""));
    lion.step(ps, gs, 0.1);
    BOOST_TEST(std::isnan(p.at(0)));
}

// Lion's state goes into a checkpoint's optimizer_state as "exp_avg.K" with info.optimizer_steps and
// comes back: the continued run and the uninterrupted one agree bit for bit, in float32 too.
BOOST_AUTO_TEST_CASE(lion_resumes_from_a_checkpoint_bit_for_bit) {
    // Two parameters with their gradients; the gradient reads the parameter and changes sign
    // now and then, so the continued run must have the same values and momentum to agree.
    struct Run {
        Tensor w, b, gw, gb;
        explicit Run(Dtype d) : w(d, {2, 3}), b(d, {3}), gw(d, {2, 3}), gb(d, {3}) {
            for (int i = 0; i < 6; ++i) w.set(i, 0.1 * i - 0.2);
            b.fill(0.3);
        }
        std::vector<const Tensor*> params() const { return {&w, &b}; }
        void step(Optimizer& o, int k) {
            for (int i = 0; i < 6; ++i) gw.set(i, std::sin(1.0 + i + 0.7 * k) + 0.3 * w.at(i));
            for (int i = 0; i < 3; ++i) gb.set(i, std::cos(2.0 * i + k) - b.at(i));
            std::vector<Tensor*> ps{&w, &b};
            std::vector<const Tensor*> gs{&gw, &gb};
            o.step(ps, gs, 0.01);
        }
    };
    for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
        OptimizerSpec spec = parse_optimizer(Json::parse(R"({"lion": {"lr": 0.01, "weight_decay": 0.1}})"), "t");
        Run whole(dtype);
        Optimizer uninterrupted(spec, whole.params());
        for (int k = 0; k < 5; ++k) whole.step(uninterrupted, k);
        Checkpoint c;
        uninterrupted.save_state(c);
        BOOST_TEST(c.info["optimizer_steps"].get<std::int64_t>() == 5);
        BOOST_REQUIRE(c.optimizer_state.size() == 2u);  // a section of its own, apart from the parameters
        BOOST_TEST(c.tensors.empty());
        BOOST_TEST(c.optimizer_state[0].first == "exp_avg.0");
        BOOST_TEST(c.optimizer_state[1].first == "exp_avg.1");
        Run continued = whole;  // the parameters as the checkpoint holds them
        Optimizer resumed(spec, continued.params());
        resumed.restore_state(c, "run/checkpoint.ckpt");
        BOOST_TEST(resumed.steps() == 5);
        for (int k = 5; k < 12; ++k) whole.step(uninterrupted, k), continued.step(resumed, k);
        for (int i = 0; i < 6; ++i) BOOST_TEST(whole.w.at(i) == continued.w.at(i));
        for (int i = 0; i < 3; ++i) BOOST_TEST(whole.b.at(i) == continued.b.at(i));
        BOOST_TEST(whole.w.at(0) != Run(dtype).w.at(0));  // they did move
        // Adam's state is not Lion's.
        Optimizer adam(parse_optimizer(Json::parse(R"({"adam": {}})"), "t"), whole.params());
        Checkpoint a;
        adam.save_state(a);
        std::string msg = error_of([&] { resumed.restore_state(a, "run/checkpoint.ckpt"); });
        BOOST_TEST(msg.find("run/checkpoint.ckpt: the optimizer state has 4 tensors, lion expects 2") != std::string::npos,
                   msg);
    }
}

// A new optimizer is one entry in the table plus its goldens: each entry has a golden case, a
// JSON line in docs/optimizers.md and an object in models/schema.json that checks what the
// entry checks (keys, types, minimum, exclusive maximum, required), and its JSON reads back
// as itself.
BOOST_AUTO_TEST_CASE(every_optimizer_has_goldens_docs_and_a_schema_that_agree) {
    const Json golden = read_json_file(source_root() + "/tests/golden/optimizers.json");
    const Json schema = read_json_file(source_root() + "/models/schema.json");
    const std::string docs = read_text_file(source_root() + "/docs/optimizers.md");
    const Json& in_schema = schema["properties"]["training"]["properties"]["optimizer"]["properties"];
    BOOST_TEST(in_schema.size() == optimizer_table().size());
    BOOST_TEST(optimizer_table().size() >= 5u);
    for (const OptimizerEntry& e : optimizer_table()) {
        BOOST_TEST_CONTEXT(e.name) {
            bool has_golden = false;
            for (const Json& c : golden["cases"]) has_golden = has_golden || c["optimizer"].contains(e.name);
            BOOST_TEST(has_golden);
            BOOST_TEST(docs.find("\"optimizer\": {\"" + e.name + "\":") != std::string::npos);
            BOOST_TEST(e.hyper.at(0).key == "lr");
            BOOST_REQUIRE(in_schema.contains(e.name));
            const Json& o = in_schema[e.name];
            BOOST_TEST(o["additionalProperties"] == false);
            BOOST_TEST(o["properties"].size() == e.hyper.size());
            Json required = Json::array();
            for (const HyperParam& h : e.hyper) {
                BOOST_TEST_CONTEXT(h.key) {
                    BOOST_REQUIRE(o["properties"].contains(h.key));
                    const Json& p = o["properties"][h.key];
                    const char* type = h.type == HyperParam::Type::number ? "number"
                                       : h.type == HyperParam::Type::flag ? "boolean"
                                                                          : "array";
                    BOOST_TEST(p["type"] == type);
                    if (h.type == HyperParam::Type::pair) BOOST_TEST((p["minItems"] == 2 && p["maxItems"] == 2));
                    const Json& number = h.type == HyperParam::Type::pair ? p["items"] : p;
                    BOOST_TEST(number.contains("minimum") == std::isfinite(h.low));
                    if (std::isfinite(h.low)) BOOST_TEST(number["minimum"].get<double>() == h.low);
                    BOOST_TEST(number.contains("exclusiveMaximum") == std::isfinite(h.below));
                    if (std::isfinite(h.below)) BOOST_TEST(number["exclusiveMaximum"].get<double>() == h.below);
                    if (h.required) required.push_back(h.key);
                }
            }
            BOOST_TEST(o.value("required", Json::array()) == required);
            Json block = {{e.name, Json::object()}};
            if (e.hyper[0].required) block[e.name]["lr"] = 0.5;
            OptimizerSpec spec = parse_optimizer(block, "t");
            BOOST_TEST(describe(parse_optimizer(optimizer_json(spec), "t")) == describe(spec));
        }
    }
}
