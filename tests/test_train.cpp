// Training end to end: the Iris neuron learns what the lecture shows, checkpoints round
// trip bit for bit, eval reproduces the training's figures, a resumed run equals an
// uninterrupted one, sampling is deterministic, NaN stops the run and keeps the last
// good checkpoint, and a small MNIST-shaped run learns.
#define BOOST_TEST_MODULE train
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <zlib.h>

#include "train/checkpoint.hpp"
#include "train/model_file.hpp"
#include "train/run_dir.hpp"
#include "train/sampler.hpp"
#include "cpu/workers.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "train/trainer.hpp"
#include "testing.hpp"

using namespace chainrule;
namespace fs = std::filesystem;

namespace {

struct Run {
    Model model;
    TrainingSpec spec;
    data::Dataset ds;
};

Run prepare(const std::string& name, const std::function<void(Json&)>& edit = {}) {
    std::string path = testing::source_root() + "/models/" + name + ".json";
    Json j = read_json_file(path);
    if (edit) edit(j);
    Run r{parse_model(j.dump(), path), {}, {}};
    r.spec = parse_training(r.model.training, r.model.graph, r.model.path, r.model.dir);
    r.ds = data::load_dataset(r.spec.data);
    return r;
}

TrainOptions quiet(const std::string& out = "") {
    TrainOptions o;
    o.out_dir = out;
    o.print = [](const std::string&) {};
    return o;
}

void require_same_parameters(const Graph& a, const Graph& b) {
    for (int id : a.parameters()) {
        const Tensor &x = a.node(id).value, &y = b.node(id).value;
        BOOST_REQUIRE(x.numel() == y.numel());
        bool same = std::memcmp(x.dtype() == Dtype::f32 ? (const void*)x.data<float>() : (const void*)x.data<double>(),
                                y.dtype() == Dtype::f32 ? (const void*)y.data<float>() : (const void*)y.data<double>(),
                                std::size_t(x.numel()) * dtype_size(x.dtype())) == 0;
        BOOST_TEST(same, "parameter " << a.node(id).name << " differs");
    }
}

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(iris_neuron_loss_falls_over_the_first_epochs) {
    Run r = prepare("iris_neuron");
    BOOST_TEST(r.ds.train.count == 80);
    BOOST_TEST(r.ds.test.count == 20);
    TrainOptions o = quiet();
    o.epochs = 15;
    auto h = train(r.model, with_overrides(r.spec, o), r.ds, o);
    BOOST_REQUIRE(h.size() == 15u);
    for (std::size_t i = 1; i < h.size(); ++i) BOOST_TEST(h[i].train_loss < h[i - 1].train_loss);
    BOOST_TEST(h.back().train_loss < 0.6 * h.front().train_loss);
}

BOOST_AUTO_TEST_CASE(iris_neuron_after_999_epochs_separates_the_classes_like_the_lecture) {
    Run r = prepare("iris_neuron");
    TrainOptions o = quiet();
    o.epochs = 999;
    train(r.model, with_overrides(r.spec, o), r.ds, o);
    EvalResult e = evaluate(r.model, r.spec, r.ds, r.ds.test, true);
    BOOST_TEST(e.accuracy == 1.0);
    for (std::int64_t i = 0; i < e.count; ++i) {
        double p = e.predictions.at(i);
        if (r.ds.test.labels[std::size_t(i)] == 0)
            BOOST_TEST(p < 0.2, "class-0 test row " << i << " predicted " << p);
        else
            BOOST_TEST(p > 0.75, "class-1 test row " << i << " predicted " << p);
    }
}

BOOST_AUTO_TEST_CASE(checkpoints_round_trip_bit_for_bit_and_damage_is_caught) {
    Run r = prepare("iris_3class");
    r.model.graph.init_parameters(5);
    const std::string rng = Rng(3).state();
    Checkpoint c = make_checkpoint(r.model.graph, 7, rng, Json{{"k", 1}});
    std::string bytes = encode_checkpoint(c);
    Checkpoint d = decode_checkpoint(bytes, "c.ckpt");
    BOOST_TEST(d.epoch == 7);
    BOOST_TEST(d.rng == rng);
    BOOST_TEST(encode_checkpoint(d) == bytes);
    Run fresh = prepare("iris_3class");
    restore_parameters(fresh.model.graph, d, "c.ckpt");
    require_same_parameters(r.model.graph, fresh.model.graph);

    auto error_of = [](const std::string& b) {
        try {
            decode_checkpoint(b, "c.ckpt");
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    std::string flipped = bytes;
    flipped[bytes.size() / 2] ^= 0x10;
    BOOST_TEST(error_of(flipped).find("c.ckpt: not a valid checkpoint: CRC mismatch") != std::string::npos);
    BOOST_TEST(error_of(bytes.substr(0, bytes.size() - 9)).find("CRC mismatch") != std::string::npos);
    BOOST_TEST(error_of("hello").find("does not start with the chainrule checkpoint magic") != std::string::npos);
    // A checkpoint of another model is refused with the reason.
    Run other = prepare("iris_neuron");
    BOOST_CHECK_EXCEPTION(restore_parameters(other.model.graph, d, "c.ckpt"), InputError, [](const InputError& e) {
        return std::string(e.what()).find("c.ckpt: model: the checkpoint was written for model 'iris_3class', but "
                                          "this is model 'iris_neuron'") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(eval_on_the_saved_checkpoint_reproduces_the_final_figures) {
    fs::path dir = testing::fresh_scratch_dir("eval");
    Run r = prepare("iris_3class");
    TrainOptions o = quiet(dir.string());
    o.epochs = 150;
    auto h = train(r.model, with_overrides(r.spec, o), r.ds, o);
    for (const char* f : {"checkpoint.ckpt", "metrics.csv", "curves.svg", "model.json"})
        BOOST_TEST(fs::exists(dir / f), f);
    Run fresh = prepare("iris_3class");
    std::string ckpt = checkpoint_path(dir.string());
    restore_parameters(fresh.model.graph, load_checkpoint(ckpt), ckpt);
    EvalResult e = evaluate(fresh.model, fresh.spec, fresh.ds, fresh.ds.test);
    BOOST_TEST(e.accuracy == h.back().test_accuracy);
    BOOST_TEST(e.loss == h.back().test_loss);
    BOOST_TEST(e.accuracy >= 0.9);
    // metrics.csv has a header and one row per epoch; model.json loads with the trained values.
    std::ifstream csv(dir / "metrics.csv");
    std::string line;
    int rows = -1;
    while (std::getline(csv, line)) ++rows;
    BOOST_TEST(rows == 150);
    Model trained = load_model((dir / "model.json").string());
    trained.graph.init_parameters(999);  // "value" inits ignore the seed
    require_same_parameters(trained.graph, r.model.graph);
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(resume_equals_the_uninterrupted_run_bit_for_bit) {
    for (const char* sampling : {"shuffle", "with_replacement"}) {
        auto edit = [&](Json& j) {
            j["training"]["sampling"] = sampling;
            j["training"]["batches_per_epoch"] = 7;
        };
        fs::path dir = testing::fresh_scratch_dir(std::string("resume_") + sampling);
        Run whole = prepare("iris_3class", edit);
        TrainOptions o = quiet();
        o.epochs = 6;
        train(whole.model, with_overrides(whole.spec, o), whole.ds, o);

        Run first = prepare("iris_3class", edit);
        TrainOptions a = quiet(dir.string());
        a.epochs = 3;
        train(first.model, with_overrides(first.spec, a), first.ds, a);
        Run second = prepare("iris_3class", edit);
        TrainOptions b = quiet(dir.string());
        b.epochs = 6;
        b.resume = dir.string();
        auto h = train(second.model, with_overrides(second.spec, b), second.ds, b);
        BOOST_TEST(h.size() == 6u);  // the restored history plus the new epochs
        require_same_parameters(whole.model.graph, second.model.graph);

        // Resuming with other settings would not be the same run: refused.
        Run third = prepare("iris_3class", edit);
        TrainOptions c = quiet(dir.string());
        c.epochs = 8;
        c.lr = 0.01;
        c.resume = dir.string();
        BOOST_CHECK_EXCEPTION(train(third.model, with_overrides(third.spec, c), third.ds, c), InputError,
                              [](const InputError& e) {
                                  return std::string(e.what()).find("trained with lr = ") != std::string::npos;
                              });
        fs::remove_all(dir);
    }
}

BOOST_AUTO_TEST_CASE(a_damaged_history_is_named_on_resume) {
    // The checksum is right (the file was rewritten whole), but the history inside lies.
    fs::path dir = testing::fresh_scratch_dir("history");
    Run first = prepare("iris_neuron");
    TrainOptions a = quiet(dir.string());
    a.epochs = 2;
    train(first.model, with_overrides(first.spec, a), first.ds, a);
    const std::string file = (dir / "checkpoint.ckpt").string();
    Checkpoint good = load_checkpoint(file);
    auto resume_with = [&](const Json& history) {
        Checkpoint c = good;
        c.info["history"] = history;
        save_checkpoint(c, file);
        Run r = prepare("iris_neuron");
        TrainOptions o = quiet(dir.string());
        o.epochs = 3;
        o.resume = dir.string();
        return testing::message_of<InputError>([&] { train(r.model, with_overrides(r.spec, o), r.ds, o); });
    };
    Json h = good.info["history"];
    h[1]["test_loss"] = "banana";
    CHECK_HAS(resume_with(h), file + ": info.history[1].test_loss: expected a number, got \"banana\" (a JSON "
                                     "number, or \"nan\", \"inf\" or \"-inf\")");
    h = good.info["history"];
    h[0]["train_loss"] = "nan";  // a NaN training loss stops a run, so it is never stored
    CHECK_HAS(resume_with(h), file + ": info.history[0].train_loss: expected a number, got \"nan\"");
    h = good.info["history"];
    h[0].erase("seconds");
    CHECK_HAS(resume_with(h), file + ": info.history[0]: missing required key 'seconds'");
    // Restored, the same checkpoint resumes.
    save_checkpoint(good, file);
    Run r = prepare("iris_neuron");
    TrainOptions o = quiet(dir.string());
    o.epochs = 3;
    o.resume = dir.string();
    BOOST_TEST(train(r.model, with_overrides(r.spec, o), r.ds, o).size() == 3u);
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(sampling_is_deterministic_for_a_seed) {
    auto run = [](std::uint64_t seed) {
        Run r = prepare("iris_3class", [](Json& j) { j["training"]["sampling"] = "with_replacement"; });
        TrainOptions o = quiet();
        o.epochs = 2;
        o.seed = seed;
        train(r.model, with_overrides(r.spec, o), r.ds, o);
        return r;
    };
    Run a = run(3), b = run(3), c = run(4);
    require_same_parameters(a.model.graph, b.model.graph);
    BOOST_TEST(a.model.graph.value("W1").at(0) != c.model.graph.value("W1").at(0));
}

BOOST_AUTO_TEST_CASE(drawing_the_next_batch_ahead_changes_no_batch) {
    // The trainer draws step s + 1's rows while step s runs (to fetch their pixels early):
    // every batch must be the one drawn without looking ahead, and step s's rows must stay.
    for (Sampling sampling : {Sampling::with_replacement, Sampling::shuffle})
        for (std::int64_t batch : {7, 150})
            BOOST_TEST_CONTEXT(sampling.name() << ", batch " << batch) {
                const BatchPlan plan = plan_batches(150, batch, 5);
                Sampler plain(sampling, plan, 9), looking(sampling, plan, 9);
                for (int epoch = 0; epoch < 2; ++epoch) {
                    plain.start_epoch();
                    looking.start_epoch();
                    for (std::int64_t step = 0; step < plan.steps; ++step) {
                        const auto want = plain.batch(step);
                        const auto got = looking.batch(step);
                        const std::vector<std::int64_t> kept(got.begin(), got.end());
                        BOOST_TEST_REQUIRE(kept == std::vector<std::int64_t>(want.begin(), want.end()));
                        if (step + 1 < plan.steps) looking.ahead(step + 1);
                        BOOST_TEST_REQUIRE(std::vector<std::int64_t>(got.begin(), got.end()) == kept);
                    }
                }
                BOOST_TEST(plain.state() == looking.state());  // what a checkpoint keeps
            }
}

BOOST_AUTO_TEST_CASE(a_background_job_runs_on_the_helpers_and_the_next_run_waits_for_it) {
    for (int threads : {1, 2, 3}) {
        Workers workers(threads);
        std::vector<int> marks(1000, 0);
        std::atomic<bool> caller_ran{false};
        const auto caller = std::this_thread::get_id();
        auto mark = [&](std::int64_t b, std::int64_t e) {
            if (std::this_thread::get_id() == caller) caller_ran = true;
            for (std::int64_t i = b; i < e; ++i) marks[std::size_t(i)] += 1;
        };
        workers.start(1000, mark);
        auto twice = [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t i = b; i < e; ++i) marks[std::size_t(i)] *= 2;
        };
        workers.run(1000, twice);  // waits for the background job first
        BOOST_TEST(!caller_ran);
        // with helpers every element was marked once, then doubled; without, nothing ran in the background
        const int want = threads > 1 ? 2 : 0;
        BOOST_TEST(std::count(marks.begin(), marks.end(), want) == 1000, threads << " threads");
        workers.start(1000, mark);
        workers.wait();
        BOOST_TEST(std::count(marks.begin(), marks.end(), want + (threads > 1 ? 1 : 0)) == 1000);
    }
}

namespace {

// log(x·w): a step with a huge learning rate makes x·w negative, so the loss becomes NaN.
void diverging(Json& j) {
    j["name"] = "diverging";
    j["parameters"]["w"]["init"] = {{"constant", 0.05}};
    j["nodes"] = Json::parse(R"([
        {"name": "z", "op": "matmul", "inputs": ["x", "w"]},
        {"name": "a", "op": "add", "inputs": ["z", "b"]},
        {"name": "yhat", "op": "log", "inputs": ["a"]},
        {"name": "L", "op": "mse", "inputs": ["yhat", "y"]}])");
}

}  // namespace

BOOST_AUTO_TEST_CASE(nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint) {
    fs::path dir = testing::fresh_scratch_dir("nan");
    // Find the first epoch at which the loss is NaN for this learning rate.
    Run r = prepare("iris_neuron", diverging);
    TrainOptions o = quiet(dir.string());
    o.epochs = 50;
    o.lr = 0.3;
    std::vector<std::string> lines;
    o.print = [&](const std::string& line) { lines.push_back(line); };
    std::string msg;
    try {
        train(r.model, with_overrides(r.spec, o), r.ds, o);
    } catch (const RunError& e) {
        msg = e.what();
    }
    BOOST_TEST_MESSAGE(msg);
    BOOST_REQUIRE(msg.find("the loss became NaN at epoch ") != std::string::npos);
    int epoch = std::stoi(msg.substr(msg.find("at epoch ") + 9));
    BOOST_REQUIRE(epoch >= 2);  // so that a good checkpoint exists
    BOOST_TEST(msg.find("step 1 of 1") != std::string::npos);
    BOOST_TEST(msg.find(fmt::format("the last good checkpoint is {} (epoch {})", (dir / "checkpoint.ckpt").string(),
                                    epoch - 1)) != std::string::npos);
    Checkpoint c = load_checkpoint((dir / "checkpoint.ckpt").string());
    BOOST_TEST(c.epoch == epoch - 1);
    for (const auto& [name, t] : c.tensors)
        for (std::int64_t i = 0; i < t.numel(); ++i) BOOST_TEST(std::isfinite(t.at(i)));
    // No temporary files are left behind.
    for (auto& f : fs::directory_iterator(dir)) BOOST_TEST(f.path().string().find(".tmp-") == std::string::npos);

    // Before the training loss, the test loss became NaN (some test rows went below 0):
    // training went on, with one warning, and the history keeps the NaN.
    BOOST_REQUIRE(c.info["history"].back()["test_loss"] == "nan");
    auto warned = std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
        return l.find("warning: the test loss is nan at epoch") != std::string::npos &&
               l.find("--detect-anomaly") != std::string::npos;
    });
    BOOST_TEST(warned == 1);
    // Such a checkpoint resumes (JSON has no NaN; the history stores "nan").
    Run resumed = prepare("iris_neuron", diverging);
    TrainOptions ro = quiet(dir.string());
    ro.resume = dir.string();
    ro.epochs = epoch - 1;
    ro.lr = 0.3;
    auto history = train(resumed.model, with_overrides(resumed.spec, ro), resumed.ds, ro);
    BOOST_REQUIRE(history.size() == std::size_t(epoch - 1));
    BOOST_TEST(std::isnan(history.back().test_loss));
    BOOST_TEST(std::isfinite(history.front().test_loss));

    // --detect-anomaly stops at the first non-finite value: here the test rows' evaluation
    // after epoch `epoch - 1`, before the training loss goes.
    Run again = prepare("iris_neuron", diverging);
    TrainOptions d = quiet();
    d.epochs = 50;
    d.lr = 0.3;
    d.detect_anomaly = true;
    std::string anomaly = testing::message_of<RunError>([&] { train(again.model, with_overrides(again.spec, d), again.ds, d); });
    CHECK_HAS(anomaly, fmt::format("anomaly at epoch {}, evaluating rows 0 to 19: the value of node 'yhat' (log) is "
                                   "NaN or Inf in ", epoch - 1));
    CHECK_HAS(anomaly, "of its 20 elements; its inputs:\n    input a [20,1]: min -");
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(anomaly_in_a_training_step_names_the_node_and_its_inputs) {
    // w = -1: x·w + b < 0 for every flower, so log is NaN in the first step.
    Run r = prepare("iris_neuron", [](Json& j) {
        diverging(j);
        j["parameters"]["w"]["init"] = {{"constant", -1}};
    });
    TrainOptions d = quiet();
    d.detect_anomaly = true;
    std::string msg = testing::message_of<RunError>([&] { train(r.model, with_overrides(r.spec, d), r.ds, d); });
    CHECK_HAS(msg, "anomaly at epoch 1, step 1 of 1: the value of node 'yhat' (log) is NaN or Inf in 80 of its 80 "
                   "elements; its inputs:\n    input a [80,1]: min -");
    // Without the flag the same run stops on the loss, with exit code 1's RunError.
    TrainOptions plain = quiet();
    CHECK_HAS(testing::message_of<RunError>([&] { train(r.model, with_overrides(r.spec, plain), r.ds, plain); }),
              "the loss became NaN at epoch 1, step 1 of 1");
}

BOOST_AUTO_TEST_CASE(anomaly_in_a_gradient_names_the_backward_that_made_it) {
    // L = mean(y / a) with a = x·w + b ≈ 1e-161: every value is finite (y/a ≤ 1.2e161), but
    // dL/da = −g·(y/a)/a ≈ −1e320 overflows where y = 1 (40 of the 80 training rows).
    Run r = prepare("iris_neuron", [](Json& j) {
        j["parameters"]["w"]["init"] = {{"constant", 1e-162}};
        j["parameters"]["b"]["init"] = {{"constant", 0}};
        j["nodes"] = Json::parse(R"([
            {"name": "z", "op": "matmul", "inputs": ["x", "w"]},
            {"name": "a", "op": "add", "inputs": ["z", "b"]},
            {"name": "yhat", "op": "div", "inputs": ["y", "a"]},
            {"name": "L", "op": "mean", "inputs": ["yhat"]}])");
    });
    TrainOptions d = quiet();
    d.detect_anomaly = true;
    std::string msg = testing::message_of<RunError>([&] { train(r.model, with_overrides(r.spec, d), r.ds, d); });
    CHECK_HAS(msg, "anomaly at epoch 1, step 1 of 1: the gradient of node 'a' (add) is NaN or Inf in 40 of its 80 "
                   "elements; it came from the backward of 'yhat' (div), whose own gradient is finite:");
    CHECK_HAS(msg, "\n    input y [80,1]: min 0 max 1 mean 0.5");
    CHECK_HAS(msg, "\n    gradient of yhat [80,1]: min 0.0125 max 0.0125 mean 0.0125");
}

namespace {

void write_gz(const fs::path& p, const std::vector<unsigned char>& bytes) {
    gzFile f = gzopen(p.string().c_str(), "wb");
    BOOST_REQUIRE(f);
    BOOST_REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
    gzclose(f);
}

void be32(std::vector<unsigned char>& v, std::uint32_t x) {
    for (int s = 24; s >= 0; s -= 8) v.push_back((unsigned char)(x >> s));
}

// MNIST-shaped data where class k is a bright bar at rows 2k..2k+3, with noise.
void make_synthetic_mnist(const fs::path& dir) {
    Rng rng(1);
    for (auto [name, count] : {std::pair{"train", 3000}, std::pair{"t10k", 600}}) {
        std::vector<unsigned char> img, lab;
        be32(img, 0x803), be32(img, count), be32(img, 28), be32(img, 28);
        be32(lab, 0x801), be32(lab, count);
        for (int i = 0; i < count; ++i) {
            int k = int(rng.below(10));
            lab.push_back((unsigned char)k);
            for (int y = 0; y < 28; ++y)
                for (int x = 0; x < 28; ++x) {
                    double v = rng.uniform(0, 60) + (y >= 2 * k + 4 && y < 2 * k + 8 && x > 4 && x < 24 ? 180 : 0);
                    img.push_back((unsigned char)std::min(255.0, v));
                }
        }
        write_gz(dir / (std::string(name) + "-images-idx3-ubyte.gz"), img);
        write_gz(dir / (std::string(name) + "-labels-idx1-ubyte.gz"), lab);
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_small_mnist_run_learns) {
    // Real MNIST when it has been fetched (scripts/get-mnist), else generated digits.
    fs::path real = fs::path(testing::source_root()) / "data/mnist";
    fs::path dir = real;
    if (!fs::exists(real / "train-labels-idx1-ubyte.gz")) {
        dir = testing::fresh_scratch_dir("mnist");
        make_synthetic_mnist(dir);
    }
    BOOST_TEST_MESSAGE("MNIST data: " << dir);
    Run r = prepare("mnist_relu_softmax", [&](Json& j) {
        j["training"]["data"] = {{"kind", "idx"}, {"dir", fs::absolute(dir).string()}, {"limit", {{"train", 3000}, {"test", 600}}}};
        j["training"]["batch_size"] = 100;
        j["training"]["batches_per_epoch"] = 30;
    });
    r.model.graph.init_parameters(r.spec.seed);
    double before = evaluate(r.model, r.spec, r.ds, r.ds.test).accuracy;
    TrainOptions o = quiet();
    o.epochs = 3;
    auto h = train(r.model, with_overrides(r.spec, o), r.ds, o);
    BOOST_TEST_MESSAGE("accuracy before: " << before << ", after epoch 1: " << h.front().test_accuracy
                                           << ", after 3: " << h.back().test_accuracy);
    BOOST_TEST(before < 0.3);
    BOOST_TEST(h.back().test_accuracy > before + 0.4);
    BOOST_TEST(h.back().test_accuracy >= h.front().test_accuracy - 0.02);
    if (dir != real) fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(the_lectures_update_points_uphill_at_the_initial_weights) {
    // Same weights (seed 21), same batch: the lecture's update direction against the exact
    // gradient. A negative inner product means a small step of the lecture's update raises
    // the loss. The batch is MNIST-like: sparse bright pixels and one-hot targets.
    Model lecture = load_model(testing::source_root() + "/models/mnist_lecture.json");
    Model exact = load_model(testing::source_root() + "/models/slides_mnist.json");
    Rng rng(5);
    Tensor x(Dtype::f64, {200, 784}), t(Dtype::f64, {200, 10});
    for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, rng.uniform() < 0.19 ? rng.uniform(0.5, 1.0) : 0.0);
    for (std::int64_t r = 0; r < 200; ++r) t.set(r * 10 + std::int64_t(rng.below(10)), 1.0);
    for (Model* m : {&lecture, &exact}) {
        m->graph.init_parameters(21);
        m->graph.set_value("x", x);
        m->graph.set_value("t", t);
        forward_backward_once(m->graph);
    }
    BOOST_REQUIRE(lecture.graph.value("L").at(0) == exact.graph.value("L").at(0));
    double dot = 0, norm_l = 0, norm_e = 0;
    for (const char* p : {"W1", "b1", "W2", "b2"}) {
        const Tensor &gl = lecture.graph.grad(p), &ge = exact.graph.grad(p);
        for (std::int64_t i = 0; i < gl.numel(); ++i) {
            dot += gl.at(i) * ge.at(i);
            norm_l += gl.at(i) * gl.at(i);
            norm_e += ge.at(i) * ge.at(i);
        }
    }
    BOOST_TEST_MESSAGE("cosine(lecture update, exact gradient) = " << dot / std::sqrt(norm_l * norm_e));
    BOOST_TEST(dot < 0);
    // A small step along the lecture's update raises the loss.
    double before = exact.graph.value("L").at(0);
    for (const char* p : {"W1", "b1", "W2", "b2"}) {
        Tensor v = exact.graph.value(p);
        const Tensor& gl = lecture.graph.grad(p);
        for (std::int64_t i = 0; i < v.numel(); ++i) v.set(i, v.at(i) - 1e-3 * gl.at(i));
        exact.graph.set_value(p, v);
    }
    forward_once(exact.graph);
    BOOST_TEST(exact.graph.value("L").at(0) > before);
}

namespace {

// Enough of XML for the plot: elements nest and close, attributes are quoted, every '&'
// starts one of the five predefined entities, and text holds no raw '<'. Returns "" when
// well formed, else what is wrong and where.
std::string xml_problem(const std::string& x) {
    std::vector<std::string> open;
    auto entity_ok = [&](std::size_t i) {
        for (const char* e : {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"})
            if (x.compare(i, std::strlen(e), e) == 0) return true;
        return false;
    };
    for (std::size_t i = 0; i < x.size(); ++i) {
        if (x[i] == '&' && !entity_ok(i)) return fmt::format("bad '&' at {}", i);
        if (x[i] == '>') return fmt::format("stray '>' at {}", i);
        if (x[i] != '<') continue;
        std::size_t end = i + 1;
        char quote = 0;
        for (; end < x.size() && (quote || x[end] != '>'); ++end) {
            if (quote && x[end] == '<') return fmt::format("'<' inside an attribute at {}", end);
            if (quote && x[end] == '&' && !entity_ok(end)) return fmt::format("bad '&' at {}", end);
            if (x[end] == '"' || x[end] == '\'') quote = quote == x[end] ? 0 : quote ? quote : x[end];
        }
        if (end == x.size()) return fmt::format("unclosed tag at {}", i);
        std::string tag = x.substr(i + 1, end - i - 1);
        bool closing = tag.starts_with("/"), empty = tag.ends_with("/");
        std::string name = tag.substr(closing, tag.find_first_of(" /\n", closing) - closing);
        if (name.empty() || name.find('<') != std::string::npos) return fmt::format("bad tag at {}", i);
        if (closing) {
            if (open.empty() || open.back() != name) return fmt::format("</{}> closes nothing open at {}", name, i);
            open.pop_back();
        } else if (!empty) {
            open.push_back(name);
        }
        i = end;
    }
    return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_plot_of_a_model_named_with_markup_is_well_formed_svg) {
    std::vector<EpochMetrics> h = {{1, 0.5, 0.6, 0.25, 0.01}, {2, 0.4, 0.5, 0.5, 0.01}};
    std::string svg = curves_svg(h, "a<b&c");
    BOOST_TEST(xml_problem(svg) == "");
    CHECK_HAS(svg, ">a&lt;b&amp;c</text>");
    // The checker itself refuses what the unescaped title made.
    BOOST_TEST(xml_problem("<svg><text>a<b&c</text></svg>") != "");
    BOOST_TEST(xml_problem("<svg><text>a &amp; b</text></svg>") == "");
}

BOOST_AUTO_TEST_CASE(train_model_file_trains_a_model_in_one_call) {
    TrainOptions o = quiet();
    o.epochs = 15;
    TrainedModel t = train_model_file(testing::source_root() + "/models/iris_neuron.json", o);
    BOOST_TEST(t.history.size() == 15u);
    BOOST_TEST(t.spec.epochs == 15);
    // The same as loading, parsing, reading the data and training step by step.
    Run r = prepare("iris_neuron");
    auto h = train(r.model, with_overrides(r.spec, o), r.ds, o);
    require_same_parameters(t.model.graph, r.model.graph);
    BOOST_TEST(t.history.back().train_loss == h.back().train_loss);
    BOOST_TEST(t.history.back().test_accuracy == h.back().test_accuracy);

    const std::string example = testing::source_root() + "/models/worked_example.json";
    CHECK_HAS(testing::message_of<InputError>([&] { train_model_file(example, o); }),
              example + ": the model has no \"training\" block");
}

BOOST_AUTO_TEST_CASE(a_model_file_is_refused_at_load_for_a_bad_training_block) {
    const std::string path = testing::source_root() + "/models/iris_neuron.json";
    auto refused = [&](const std::function<void(Json&)>& edit) {
        Json j = read_json_file(path);
        edit(j["training"]);
        return testing::message_of<InputError>([&] { parse_model_file(j.dump(), "m.json"); });
    };
    CHECK_HAS(refused([](Json& t) { t["epochs"] = -5; }), "m.json: training.epochs: must be at least 1, got -5");
    CHECK_HAS(refused([](Json& t) { t["optimizer"] = {{"adamax", {{"lr", 0.1}}}}; }),
              "m.json: training.optimizer: unknown optimizer 'adamax' (expected one of sgd, adam, adamw, rmsprop, lion, newton, newton_cg)");
    CHECK_HAS(refused([](Json& t) { t["optimizer"] = {{"adam", {{"betas", {0.9, 1.0}}}}}; }),
              "m.json: training.optimizer.adam.betas[1]: must be in [0, 1), got 1");
    CHECK_HAS(refused([](Json& t) { t["lr_schedule"] = {{"cosine", {{"eta_min", 0}}}}; }),
              "m.json: training.lr_schedule.cosine: missing required key 't_max'");
    CHECK_HAS(refused([](Json& t) { t["clip_grad_norm"] = -1; }),
              "m.json: training.clip_grad_norm: must be > 0 (the largest global L2 norm), got -1");
    CHECK_HAS(refused([](Json& t) { t["optimizer"]["sgd"]["lr"] = "fast"; }),
              "m.json: training.optimizer.sgd.lr: expected a number");
    CHECK_HAS(refused([](Json& t) { t["sampling"] = "random"; }), "m.json: training.sampling: expected");
    CHECK_HAS(refused([](Json& t) { t["data"].erase("path"); }), "m.json: training.data: missing required key 'path'");
    // A good block comes typed; no block is no spec.
    ModelFile f = load_model_file(path);
    BOOST_REQUIRE(f.training.has_value());
    BOOST_TEST(f.training->optimizer.lr == 0.1);
    BOOST_TEST((f.training->sampling == Sampling::shuffle));
    BOOST_TEST(!load_model_file(testing::source_root() + "/models/worked_example.json").training.has_value());
    // The sampling is chosen once, from its name; an unknown name cannot be set.
    TrainingSpec spec;
    spec.sampling = "with_replacement";
    BOOST_TEST((spec.sampling == Sampling::with_replacement));
    BOOST_CHECK_THROW(spec.sampling = "random", InputError);
}

// Adam's moments and step count, RMSprop's and Lion's buffers and the schedule's position come back
// from the checkpoint: stopping and resuming changes no bit; another optimizer is refused
// unless --fresh-optimizer says to start its state afresh.
BOOST_AUTO_TEST_CASE(optimizer_state_resumes_bit_for_bit_and_a_change_is_refused) {
    const char* optimizers[] = {R"({"adam": {"lr": 0.01, "amsgrad": true}})",
                                R"({"rmsprop": {"lr": 0.005, "momentum": 0.5, "centered": true}})",
                                R"({"sgd": {"lr": 0.1, "momentum": 0.9, "nesterov": true}})",
                                R"({"lion": {"lr": 0.003, "betas": [0.8, 0.98], "weight_decay": 0.05}})"};
    for (const char* optimizer : optimizers) {
        auto edit = [&](Json& j) {
            j["training"]["optimizer"] = Json::parse(optimizer);
            j["training"]["lr_schedule"] = Json::parse(R"({"step": {"step_size": 2, "gamma": 0.5}})");
            j["training"]["clip_grad_norm"] = 0.5;
            j["training"]["batches_per_epoch"] = 7;
        };
        fs::path dir = testing::fresh_scratch_dir("resume_optimizer");
        Run whole = prepare("iris_3class", edit);
        TrainOptions o = quiet();
        o.epochs = 6;
        auto full = train(whole.model, with_overrides(whole.spec, o), whole.ds, o);
        BOOST_TEST(full[0].lr == full[1].lr);
        BOOST_TEST(full[2].lr == full[0].lr * 0.5);  // the schedule advanced after epoch 2

        Run first = prepare("iris_3class", edit);
        TrainOptions a = quiet(dir.string());
        a.epochs = 3;
        train(first.model, with_overrides(first.spec, a), first.ds, a);
        Run second = prepare("iris_3class", edit);
        TrainOptions b = quiet(dir.string());
        b.epochs = 6;
        b.resume = dir.string();
        auto h = train(second.model, with_overrides(second.spec, b), second.ds, b);
        BOOST_TEST(h.size() == 6u);
        BOOST_TEST(h[5].lr == full[5].lr);
        require_same_parameters(whole.model.graph, second.model.graph);

        Run other = prepare("iris_3class", [&](Json& j) {
            edit(j);
            j["training"]["optimizer"] = Json::parse(R"({"adamw": {"lr": 0.01}})");
        });
        TrainOptions c = quiet(dir.string());
        c.epochs = 8;
        c.resume = dir.string();
        std::string msg = testing::message_of<InputError>([&] { train(other.model, with_overrides(other.spec, c), other.ds, c); });
        CHECK_HAS(msg, "the checkpoint was trained with ");
        CHECK_HAS(msg, "or pass --fresh-optimizer to keep the trained parameters");
        c.fresh_optimizer = true;
        auto fresh = train(other.model, with_overrides(other.spec, c), other.ds, c);
        BOOST_TEST(fresh.size() == 8u);
        BOOST_TEST(fresh[6].lr == 0.01);  // a fresh schedule starts at the base rate again
        fs::remove_all(dir);
    }
}

// The shipped Lion model (models/iris_3class_lion.json, the Iris 4-4-3 net) learns as its doc
// says: every test flower right by epoch 50 and at the end, at a test loss far below the
// start's; and Lion's weight decay keeps every weight within 1/λ = 10 (plus one step).
BOOST_AUTO_TEST_CASE(the_lion_model_separates_the_three_species) {
    Run r = prepare("iris_3class_lion");
    BOOST_TEST(describe(r.spec.optimizer) == "lion(lr=0.005, betas=(0.9, 0.99), weight_decay=0.1)");
    TrainOptions o = quiet();
    auto h = train(r.model, with_overrides(r.spec, o), r.ds, o);
    BOOST_REQUIRE(h.size() == 300u);
    BOOST_TEST(h[49].test_accuracy == 1.0);
    BOOST_TEST(h.back().test_accuracy == 1.0);
    BOOST_TEST(h.back().test_loss < 0.01);
    BOOST_TEST(h.back().test_loss < h.front().test_loss / 50);
    for (int id : r.model.graph.parameters())
        for (std::int64_t i = 0; i < r.model.graph.node(id).value.numel(); ++i)
            BOOST_TEST(std::abs(r.model.graph.node(id).value.at(i)) <= 10 + 0.005 * 2);
}

// A checkpoint whose epoch is 2^63 − 1 (a valid CRC) would overflow the epoch loop and train
// forever: it is refused, naming the file. A block asking for more epochs than a run may
// have is refused at load.
BOOST_AUTO_TEST_CASE(an_absurd_epoch_count_is_refused) {
    fs::path dir = testing::fresh_scratch_dir("absurd_epoch");
    Run run = prepare("iris_neuron", [](Json&) {});
    TrainOptions a = quiet(dir.string());
    a.epochs = 1;
    train(run.model, with_overrides(run.spec, a), run.ds, a);
    Checkpoint c = load_checkpoint((dir / "checkpoint.ckpt").string());
    c.epoch = INT64_MAX;
    save_checkpoint(c, (dir / "checkpoint.ckpt").string());
    Run again = prepare("iris_neuron", [](Json&) {});
    TrainOptions b = quiet(dir.string());
    b.resume = dir.string();
    std::string msg = testing::message_of<InputError>([&] { train(again.model, with_overrides(again.spec, b), again.ds, b); });
    CHECK_HAS(msg, "checkpoint.ckpt: header.epoch: 9223372036854775807 is more than the 1000000 epochs a run may have");
    fs::remove_all(dir);
    const std::string path = testing::source_root() + "/models/iris_neuron.json";
    Json j = read_json_file(path);
    j["training"]["epochs"] = 99999999;
    CHECK_HAS(testing::message_of<InputError>([&] { parse_model_file(j.dump(), "m.json"); }),
              "m.json: training.epochs: 99999999 is more than the 1000000 epochs a run may have");
}

// "Did you forget ...?" names the stream whose width fits the input, and check warns when
// cross_entropy is handed probabilities instead of logits.
BOOST_AUTO_TEST_CASE(hints_point_the_right_way) {
    Json mlp = read_json_file(testing::source_root() + "/models/mnist_mlp.json");
    Json no_t = mlp;
    no_t["training"]["feed"] = Json::parse(R"({"x": "images"})");
    CHECK_HAS(testing::message_of<InputError>([&] { parse_model_file(no_t.dump(), "m.json"); }),
              "m.json: training.feed: input 't' [N,10] is not fed and has no default value (did you forget \"t\": "
              "\"labels_one_hot\"?)");
    Json no_x = mlp;
    no_x["training"]["feed"] = Json::parse(R"({"t": "labels_one_hot"})");
    CHECK_HAS(testing::message_of<InputError>([&] { parse_model_file(no_x.dump(), "m.json"); }),
              "(did you forget \"x\": \"images\"?)");
    Json iris = read_json_file(testing::source_root() + "/models/iris_neuron.json");
    iris["training"]["feed"].erase("y");
    CHECK_HAS(testing::message_of<InputError>([&] { parse_model_file(iris.dump(), "m.json"); }),
              "input 'y' [N,1] is not fed and has no default value (did you forget \"y\": \"labels\"?)");
    // The loss's target is labels whatever its width: one-hot rows, also when the classes are
    // not listed (the width would then name the features) or are as many as the features.
    Json three = read_json_file(testing::source_root() + "/models/iris_3class.json");
    three["training"]["feed"].erase("t");
    Json unlisted = three;
    unlisted["training"]["data"].erase("classes");
    Json four = three;
    four["training"]["data"]["classes"].push_back("Iris-other");
    four["inputs"]["t"]["shape"][1] = 4;
    four["parameters"]["W2"]["shape"][1] = 4;
    four["parameters"]["b2"]["shape"][0] = 4;
    for (const Json* j : {&three, &unlisted, &four})
        CHECK_HAS(testing::message_of<InputError>([&] { parse_model_file(j->dump(), "m.json"); }),
                  "is not fed and has no default value (did you forget \"t\": \"labels_one_hot\"?)");
    Json no_x3 = unlisted;
    no_x3["training"]["feed"] = Json::parse(R"({"t": "labels_one_hot"})");
    CHECK_HAS(testing::message_of<InputError>([&] { parse_model_file(no_x3.dump(), "m.json"); }),
              "(did you forget \"x\": \"features\"?)");

    Json soft = read_json_file(testing::source_root() + "/models/iris_3class_softmax.json");
    for (auto& n : soft["nodes"])
        if (n["op"] == "cross_entropy") n["inputs"][0] = "p";
    ModelFile f = parse_model_file(soft.dump(), "m.json");
    BOOST_REQUIRE(!f.model.warnings.empty());
    CHECK_HAS(f.model.warnings.back(), "cross_entropy takes logits and applies log-softmax itself, but 'p' is a "
                                       "softmax output (probabilities); feed it 'p''s input instead");
    BOOST_TEST(parse_model_file(read_text_file(testing::source_root() + "/models/iris_3class_softmax.json"), "m.json")
                   .model.warnings.empty());
}
