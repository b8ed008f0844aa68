// The contract for what training reads (docs/reliability.md): a checkpoint whose CRC is
// right but whose fields lie, parameters named like the checkpoint's own entries, a training
// block that `check` passes but `train` would refuse, class labels out of range, and the run
// directory's traps. Each is exit 2 (an InputError) naming the file and the place, never a
// wrong answer, a lost run or a message about a flag that was never given.
#define BOOST_TEST_MODULE contract_train
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <limits>
#include <zlib.h>

#include "core/error.hpp"
#include "train/checkpoint.hpp"
#include "train/model_file.hpp"
#include "train/optimizer.hpp"
#include "train/run_dir.hpp"
#include "train/trainer.hpp"
#include "testing.hpp"

using namespace chainrule;
namespace fs = std::filesystem;

namespace {

// ---- the test's tool: a checkpoint taken apart and put together again with a valid CRC ----

struct Unsealed {
    Json header;
    std::string data;  // the tensor bytes, parameters then optimizer state
};

Unsealed unseal(const std::string& bytes) {
    std::uint64_t h = 0;
    std::memcpy(&h, bytes.data() + 16, 8);
    return {Json::parse(bytes.substr(24, h)), bytes.substr(24 + h, bytes.size() - 24 - h - 4)};
}

// The file a program that writes lies would write: magic, header, data and the right CRC.
std::string reseal(const Unsealed& u) {
    const std::string header = u.header.dump();
    std::string out("CHAINRULE-CKPT\n\0", 16);
    const std::uint64_t h = header.size();
    out.append(reinterpret_cast<const char*>(&h), 8);
    out += header + u.data;
    const std::uint32_t crc = std::uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(out.data()), uInt(out.size())));
    out.append(reinterpret_cast<const char*>(&crc), 4);
    return out;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary);
    f << bytes;
}

std::string read_bytes(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

// The byte offset in Unsealed::data of entry k of a float64 tensor named `name` in `list`.
std::size_t entry_offset(const Json& header, const char* list, const std::string& name, std::size_t k) {
    for (const Json& t : header[list])
        if (t["name"] == name) return t["offset"].get<std::size_t>() + 8 * k;
    BOOST_FAIL("no tensor " << name << " in " << list);
    return 0;
}

void set_double(std::string& data, std::size_t at, double v) { std::memcpy(data.data() + at, &v, 8); }

// ---- runs ----

Json model_json(const std::string& name) {
    return read_json_file(testing::source_root() + "/models/" + name + ".json");
}

// A model file in `dir`, its data path made absolute (so the file may live anywhere).
fs::path write_model(const fs::path& dir, const std::string& file, Json m) {
    m["training"]["data"]["path"] = testing::source_root() + "/data/iris.data";
    fs::path p = dir / file;
    std::ofstream(p) << m.dump(1);
    return p;
}

TrainOptions quiet(const fs::path& out = {}) {
    TrainOptions o;
    o.out_dir = out.string();
    o.print = [](const std::string&) {};
    return o;
}

// train() on a model file with options; the model and its history.
TrainedModel train_file(const fs::path& model, TrainOptions o) { return train_model_file(model.string(), o); }

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.dims() == b.dims() && a.dtype() == b.dtype() &&
           std::memcmp(a.data<double>(), b.data<double>(), std::size_t(a.numel()) * 8) == 0;
}

void require_same_parameters(const Graph& a, const Graph& b) {
    for (int id : a.parameters())
        BOOST_TEST(same_bits(a.node(id).value, b.node(b.id(a.node(id).name)).value),
                   "parameter " << a.node(id).name << " differs");
}

std::string cli(const std::string& args) {
    return testing::chainrule_binary() + " " + args;
}

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

// Every field of a checkpoint is checked when it is read: each lie below has a valid CRC
// (reseal) and is refused naming the file and the field.
BOOST_AUTO_TEST_CASE(a_resealed_checkpoint_that_lies_is_refused_naming_the_field) {
    fs::path dir = testing::fresh_scratch_dir("lies");
    fs::path model = write_model(dir, "m.json", model_json("iris_3class_momentum"));
    TrainOptions o = quiet(dir / "run");
    o.epochs = 2;
    train_file(model, o);
    const std::string good = read_bytes(dir / "run/checkpoint.ckpt");
    const Unsealed base = unseal(good);
    BOOST_TEST(base.header["version"] == 2);
    BOOST_TEST(base.header["optimizer_state"].size() == 4u);  // momentum_buffer.0 to .3, a section of their own
    BOOST_TEST(decode_checkpoint(reseal(base), "c.ckpt").epoch == 2);  // the tool itself changes nothing

    auto refused = [&](const std::function<void(Unsealed&)>& lie) {
        Unsealed u = base;
        lie(u);
        return testing::message_of<InputError>([&] { decode_checkpoint(reseal(u), "c.ckpt"); });
    };
    CHECK_HAS(refused([](Unsealed& u) { u.header["tensors"][1]["name"] = "W1"; }),
              "c.ckpt: header.tensors[1].name: 'W1' is the name of entry 0 too");
    CHECK_HAS(refused([](Unsealed& u) { u.header["optimizer_state"][3]["name"] = "momentum_buffer.0"; }),
              "c.ckpt: header.optimizer_state[3].name: 'momentum_buffer.0' is the name of entry 0 too");
    // 2 epochs of 12 steps: the optimizer cannot have taken more than 24.
    CHECK_HAS(refused([](Unsealed& u) { u.header["info"]["optimizer_steps"] = std::numeric_limits<std::int64_t>::max(); }),
              "c.ckpt: info.optimizer_steps: 9223372036854775807 is outside 0 to 24");
    CHECK_HAS(refused([](Unsealed& u) { u.header["info"]["history"][1]["epoch"] = std::numeric_limits<std::int64_t>::max(); }),
              "c.ckpt: info.history[1].epoch: epoch 9223372036854775807 is not within 2 to 2");
    CHECK_HAS(refused([](Unsealed& u) { u.header["info"]["history"][0]["epoch"] = 2; }),
              "c.ckpt: info.history[1].epoch: epoch 2 is not within 3 to 2");
    CHECK_HAS(refused([](Unsealed& u) { u.header["info"]["history"][0]["test_accuracy"] = 7; }),
              "c.ckpt: info.history[0].test_accuracy: 7 is not an accuracy");
    CHECK_HAS(refused([](Unsealed& u) { u.header["info"]["history"][0]["seconds"] = -1; }),
              "c.ckpt: info.history[0].seconds: must be >= 0, got -1");
    CHECK_HAS(refused([](Unsealed& u) { u.header["info"]["lr"] = -0.5; }), "c.ckpt: info.lr: must be > 0, got -0.5");
    CHECK_HAS(refused([](Unsealed& u) { u.header["info"]["batch"] = 0; }), "c.ckpt: info.batch: 0 is outside 1 to");
    CHECK_HAS(refused([](Unsealed& u) { u.header["info"]["sampling"] = "sorted"; }), "c.ckpt: info.sampling: expected");
    CHECK_HAS(refused([](Unsealed& u) { u.header["epoch"] = 1'000'001; }),
              "c.ckpt: header.epoch: 1000001 is more than the 1000000 epochs a run may have");
    CHECK_HAS(refused([](Unsealed& u) {
                  set_double(u.data, entry_offset(u.header, "tensors", "b2", 1), std::nan(""));
              }),
              "c.ckpt: header.tensors[3]: tensor 'b2' has nan at entry 1");
    CHECK_HAS(refused([](Unsealed& u) { u.header["version"] = 1; }),
              "unknown key 'optimizer_state' in a version 1 checkpoint");

    // A header naming another model: decoded, but refused where it would be used.
    Unsealed other = base;
    other.header["model"] = "mnist_mlp";
    write_bytes(dir / "other.ckpt", reseal(other));
    ModelFile f = load_model_file(model.string());
    CHECK_HAS(testing::message_of<InputError>([&] {
                  restore_parameters(f.model.graph, load_checkpoint((dir / "other.ckpt").string()), "other.ckpt");
              }),
              "other.ckpt: model: the checkpoint was written for model 'mnist_mlp', but this is model "
              "'iris_3class_momentum'");

    // Through the command line: exit 2 with the file and the field, for eval, plot and resume.
    Unsealed twice = base;
    twice.header["tensors"][1]["name"] = "W1";
    write_bytes(dir / "twice.ckpt", reseal(twice));
    auto r = testing::run_command(cli(fmt::format("eval {} --weights {}", model.string(), (dir / "twice.ckpt").string())));
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, (dir / "twice.ckpt").string() + ": header.tensors[1].name: 'W1' is the name of entry 0 too");
    Unsealed late = base;
    late.header["info"]["history"][1]["epoch"] = std::numeric_limits<std::int64_t>::max();
    write_bytes(dir / "run/checkpoint.ckpt", reseal(late));
    r = testing::run_command("timeout 30 " + cli("plot " + (dir / "run").string()));
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, "checkpoint.ckpt: info.history[1].epoch: epoch 9223372036854775807 is not within 2 to 2");
    r = testing::run_command("timeout 30 " + cli(fmt::format("train {} --resume {} --epochs 2 --no-progress",
                                                             model.string(), (dir / "run").string())));
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, "info.history[1].epoch");
    fs::remove_all(dir);
}

// A negative second moment (a mean of squares) is refused at resume, not met as a NaN loss
// blamed on the learning rate.
BOOST_AUTO_TEST_CASE(a_negative_second_moment_is_refused_naming_the_buffer) {
    fs::path dir = testing::fresh_scratch_dir("moment");
    Json m = model_json("iris_3class_softmax");
    m["training"]["optimizer"] = Json::parse(R"({"adam": {"lr": 0.01}})");
    fs::path model = write_model(dir, "m.json", m);
    TrainOptions o = quiet(dir / "run");
    o.epochs = 1;
    train_file(model, o);
    Unsealed u = unseal(read_bytes(dir / "run/checkpoint.ckpt"));
    set_double(u.data, entry_offset(u.header, "optimizer_state", "exp_avg_sq.2", 1), -1.0);
    write_bytes(dir / "run/checkpoint.ckpt", reseal(u));
    TrainOptions again = quiet(dir / "run");
    again.resume = (dir / "run").string();
    again.epochs = 3;
    CHECK_HAS(testing::message_of<InputError>([&] { train_file(model, again); }),
              "run/checkpoint.ckpt: optimizer state 'exp_avg_sq.2' has -1 at entry 1, but it is a mean of squares");
    fs::remove_all(dir);
}

// Checkpoints of the first layout (version 1: the optimizer's buffers among the parameters as
// "optimizer/NAME"), as chainrule wrote them before, resume bit for bit. The fixture is
// iris_3class_momentum after 3 epochs; if training's numbers ever change on purpose, make it
// again with an older chainrule (train --epochs 3 --out DIR).
BOOST_AUTO_TEST_CASE(checkpoints_of_the_first_layout_resume_bit_for_bit) {
    const fs::path fixture = testing::source_root() + "/tests/fixtures/v1_iris_3class_momentum_epoch3.ckpt";
    BOOST_TEST(unseal(read_bytes(fixture)).header["version"] == 1);
    Checkpoint c = load_checkpoint(fixture.string());
    BOOST_REQUIRE(c.tensors.size() == 4u);
    BOOST_REQUIRE(c.optimizer_state.size() == 4u);
    BOOST_TEST(c.optimizer_state[0].first == "momentum_buffer.0");
    fs::path dir = testing::fresh_scratch_dir("v1");
    fs::path model = write_model(dir, "m.json", model_json("iris_3class_momentum"));
    fs::create_directories(dir / "old");
    fs::copy_file(fixture, dir / "old/checkpoint.ckpt");
    TrainOptions resumed = quiet(dir / "old");
    resumed.resume = (dir / "old").string();
    resumed.epochs = 6;
    TrainedModel a = train_file(model, resumed);
    TrainOptions whole = quiet();
    whole.epochs = 6;
    TrainedModel b = train_file(model, whole);
    require_same_parameters(a.model.graph, b.model.graph);
    BOOST_TEST(a.history.size() == 6u);
    BOOST_TEST(unseal(read_bytes(dir / "old/checkpoint.ckpt")).header["version"] == 2);  // saved in the new layout
    fs::remove_all(dir);
}

// Parameters and optimizer state are apart: a parameter named like a buffer of the old
// layout trains, resumes, and is what eval loads.
BOOST_AUTO_TEST_CASE(parameter_names_cannot_reach_the_optimizer_state) {
    for (const std::string name : {"optimizer/W2", "optimizer/momentum_buffer.0"}) {
        BOOST_TEST_CONTEXT(name) {
            fs::path dir = testing::fresh_scratch_dir("names");
            Json m = model_json("iris_3class_momentum");
            m["parameters"][name] = m["parameters"]["W2"];
            m["parameters"].erase("W2");
            for (Json& n : m["nodes"])
                for (Json& in : n["inputs"])
                    if (in == "W2") in = name;
            fs::path model = write_model(dir, "m.json", m);
            TrainOptions o = quiet(dir / "run");
            o.epochs = 2;
            TrainedModel two = train_file(model, o);
            TrainOptions more = quiet(dir / "run");
            more.resume = (dir / "run").string();
            more.epochs = 3;
            TrainedModel three = train_file(model, more);
            TrainOptions whole = quiet();
            whole.epochs = 3;
            require_same_parameters(three.model.graph, train_file(model, whole).model.graph);
            // eval's load: the parameter, not a momentum buffer.
            ModelFile f = load_model_file(model.string());
            restore_parameters(f.model.graph, load_checkpoint((dir / "run/checkpoint.ckpt").string()), "c");
            require_same_parameters(three.model.graph, f.model.graph);
            fs::remove_all(dir);
        }
    }
}

// `check` refuses what `train` would: in the block's words and JSON path at load; a flag's
// refusal names the flag; what depends on the data is refused before the first step.
BOOST_AUTO_TEST_CASE(a_training_block_is_refused_at_check_in_its_own_words) {
    auto refused = [](const std::function<void(Json&)>& edit, const std::string& name = "iris_3class") {
        Json m = model_json(name);
        edit(m);
        return testing::message_of<InputError>([&] { parse_model_file(m.dump(), "m.json"); });
    };
    CHECK_HAS(refused([](Json& m) { m["training"]["optimizer"] = Json::parse(R"({"sgd": {"lr": 0}})"); }),
              "m.json: training.optimizer.sgd.lr: must be > 0, got 0");
    CHECK_HAS(refused([](Json& m) {
                  m["training"].erase("batch_size");
                  m["training"]["batches_per_epoch"] = 5;
              }),
              "m.json: training.batches_per_epoch: needs a batch_size");
    CHECK_HAS(refused([](Json& m) { m["outputs"]["prediction"] = "W2"; }),
              "m.json: outputs.prediction: 'W2' is [4,3], without the batch dim N");
    CHECK_HAS(refused([](Json& m) { m["training"]["shards"] = 11; }),
              "m.json: training.shards: 11 shards are more than the 10 rows of a batch");
    CHECK_HAS(refused([](Json& m) { m["training"]["data"]["classes"].push_back("Iris-unknown"); }, "iris_3class_softmax"),
              "m.json: training.data.classes: 4 classes, but input 't' (fed \"labels\") holds class indices for node "
              "'L' (cross_entropy), whose logits 'logits' have 3 columns");

    // Flags: named as flags, and only when given.
    ModelFile f = parse_model_file(model_json("iris_neuron").dump(), "m.json");
    TrainOptions steps;
    steps.batches_per_epoch = 5;
    CHECK_HAS(testing::message_of<InputError>([&] { with_overrides(f.training_spec(), steps); }),
              "--batches-per-epoch 5 needs a batch size (--batch, or training.batch_size)");
    TrainOptions lr;
    lr.lr = 0;
    CHECK_HAS(testing::message_of<InputError>([&] { with_overrides(f.training_spec(), lr); }),
              "--lr must be a positive number, got 0");
    // A batch as large as the split makes the steps per epoch meaningless: said before the first step.
    fs::path dir = testing::fresh_scratch_dir("full_batch");
    fs::path model = write_model(dir, "m.json", model_json("iris_3class"));
    TrainOptions big = quiet();
    big.batch_size = 500;
    big.batches_per_epoch = 5;
    CHECK_HAS(testing::message_of<InputError>([&] { train_file(model, big); }),
              "--batches-per-epoch: 5 steps per epoch, but the batch size 500 is at least the 120 training rows");
    // --out "" saves nothing: refused rather than taken for "no --out".
    auto r = testing::run_command(cli(fmt::format("train {} --out '' --epochs 1", model.string())));
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, "--out: an empty path");
    r = testing::run_command(cli(fmt::format("check {}", (testing::source_root() +
                                                          "/tests/regression/models/training_lr_zero.json"))));
    BOOST_TEST(r.code == 2);
    fs::remove_all(dir);
}

// A class index out of range is refused where it comes from: a default value (its JSON
// path), a feed file (the file and the entry), a data set with more classes than the logits.
BOOST_AUTO_TEST_CASE(class_labels_out_of_range_are_refused_where_they_come_from) {
    Json m = Json::parse(R"({"format": "chainrule-model", "version": 1, "name": "ce",
        "inputs": {"z": {"shape": ["N", 3]}, "t": {"shape": ["N"], "value": [0, 2, 3]}},
        "nodes": [{"name": "L", "op": "cross_entropy", "inputs": ["z", "t"]}],
        "outputs": {"loss": "L"}})");
    CHECK_HAS(testing::message_of<InputError>([&] { parse_model(m.dump(), "m.json"); }),
              "m.json: inputs.t.value[2]: entry 2 is 3, but input 't' holds class indices for node 'L' "
              "(cross_entropy), whose logits 'z' have 3 columns: each must be a whole number from 0 to 2");
    m["inputs"]["t"]["value"] = Json::parse("[0, 1.5, 2]");
    CHECK_HAS(testing::message_of<InputError>([&] { parse_model(m.dump(), "m.json"); }),
              "m.json: inputs.t.value[1]: entry 1 is 1.5");
    m["inputs"]["t"].erase("value");
    fs::path dir = testing::fresh_scratch_dir("labels");
    std::ofstream(dir / "m.json") << m.dump();
    std::ofstream(dir / "feed.json") << R"({"z": [[1, 2, 3], [0, 0, 0]], "t": [1, -1]})";
    auto r = testing::run_command(cli(fmt::format("grad {} --feed {}", (dir / "m.json").string(),
                                                  (dir / "feed.json").string())));
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, (dir / "feed.json").string() + ": t[1]: entry 1 is -1, but input 't' holds class indices");
    // A data set whose own classes (a CSV without a classes list) outnumber the logits.
    Json two = model_json("iris_3class_softmax");
    two["training"]["data"].erase("classes");
    two["parameters"]["W2"]["shape"] = Json::array({two["parameters"]["W2"]["shape"][0], 2});
    two["parameters"]["b2"]["shape"] = Json::array({2});
    fs::path model = write_model(dir, "two.json", two);
    CHECK_HAS(testing::message_of<InputError>([&] { train_file(model, quiet()); }),
              "training.data: the data has 3 classes, but input 't' holds class indices for node 'L' (cross_entropy), "
              "whose logits 'logits' have 2 columns");
    fs::remove_all(dir);
}

// The run directory: a finished run is not replaced unless asked, the lock file goes with
// the run, and model.json finds its data from any working directory.
BOOST_AUTO_TEST_CASE(a_run_directory_is_kept_freed_and_usable_from_anywhere) {
    fs::path dir = testing::fresh_scratch_dir("rundir");
    fs::path model = write_model(dir, "m.json", model_json("iris_neuron"));
    TrainOptions first = quiet(dir / "run");
    first.epochs = 4;
    train_file(model, first);
    BOOST_TEST(!fs::exists(dir / "run/.lock"));
    const std::string before = read_bytes(dir / "run/checkpoint.ckpt");
    TrainOptions second = quiet(dir / "run");
    second.epochs = 2;
    CHECK_HAS(testing::message_of<InputError>([&] { train_file(model, second); }),
              "run: the folder holds a run of model 'iris_neuron' (4 epochs) already (checkpoint.ckpt); continue it "
              "with --resume " + (dir / "run").string() + ", or replace it with --overwrite");
    BOOST_TEST(read_bytes(dir / "run/checkpoint.ckpt") == before);  // untouched
    TrainOptions more = quiet(dir / "run");
    more.resume = (dir / "run/checkpoint.ckpt").string();
    more.epochs = 5;
    BOOST_TEST(train_file(model, more).history.size() == 5u);  // resuming in its own folder continues it
    second.overwrite = true;
    BOOST_TEST(train_file(model, second).history.size() == 2u);
    BOOST_TEST(load_checkpoint((dir / "run/checkpoint.ckpt").string()).epoch == 2);
    BOOST_TEST(!fs::exists(dir / "run/.lock"));

    // The lecture's model with its relative data path, trained from the repository root;
    // then used from another working directory.
    const std::string root = testing::source_root();
    auto r = testing::run_command(fmt::format("cd {} && {} train models/iris_neuron.json --epochs 3 --out {} --no-progress",
                                              root, fs::absolute(testing::chainrule_binary()).string(),
                                              (dir / "lecture").string()));
    BOOST_REQUIRE(r.code == 0);
    const std::string binary = fs::absolute(testing::chainrule_binary()).string();
    r = testing::run_command(fmt::format("cd {} && {} eval lecture/model.json --weights lecture", dir.string(), binary));
    BOOST_TEST(r.code == 0, r.err);
    CHECK_HAS(r.out, "test accuracy");
    r = testing::run_command(fmt::format("cd / && {} train {}/model.json --resume {} --epochs 4 --no-progress", binary,
                                         (dir / "lecture").string(), (dir / "lecture").string()));
    BOOST_TEST(r.code == 0, r.err);
    BOOST_TEST(load_checkpoint((dir / "lecture/checkpoint.ckpt").string()).epoch == 4);
    // Without --out, the run says that nothing is kept.
    r = testing::run_command(cli(fmt::format("train {} --epochs 1 --no-progress", model.string())));
    BOOST_TEST(r.code == 0);
    CHECK_HAS(r.out, "  no --out: nothing of this run will be saved (add --out DIR to keep it)\n");
    CHECK_HAS(r.out, "\nnothing saved (no --out)\n");
    BOOST_TEST(r.err.empty(), r.err);
    fs::remove_all(dir);
}
