// The shard scheme of data-parallel training in one process (tests/test_mpi.py runs it
// under mpirun): the batch gradient summed from shards is the one-piece gradient up to
// rounding, and matches central finite differences (also for a loss over a number of
// positions that is data: sequences with ignore_index); models that mix a batch's rows are
// refused; with shards, train() gives the same weights as a run with other K would.
#define BOOST_TEST_MODULE distributed
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <atomic>
#include <numeric>

#include "core/json.hpp"
#include "graph/labels.hpp"
#include "ops/finite_difference.hpp"
#include "testing.hpp"
#include "train/distributed.hpp"
#include "train/feeder.hpp"
#include "train/trainer.hpp"
#include "train/training.hpp"

using namespace chainrule;

namespace {

struct Run {
    Model model;
    TrainingSpec spec;
    data::Dataset ds;
};

Run prepare(const std::function<void(Json&)>& edit = {}) {
    std::string path = testing::source_root() + "/models/iris_3class_softmax.json";
    Json j = read_json_file(path);
    if (edit) edit(j);
    Run r{parse_model(j.dump(), path), {}, {}};
    r.spec = parse_training(r.model.training, r.model.graph, r.model.path, r.model.dir);
    r.ds = data::load_dataset(r.spec.data);
    return r;
}

// Every parameter gradient entry, in parameter order.
std::vector<double> gradients(const Graph& g) {
    std::vector<double> out;
    for (int id : g.parameters())
        for (std::int64_t i = 0; i < g.node(id).grad.numel(); ++i) out.push_back(g.node(id).grad.at(i));
    return out;
}

std::string shard_error(const std::function<void(Json&)>& edit) {
    Json j = read_json_file(testing::source_root() + "/models/iris_3class_softmax.json");
    edit(j);
    Model m = parse_model(j.dump(), "m.json");
    return testing::message_of<InputError>([&] { check_shardable(m.graph, "m.json"); });
}

}  // namespace

BOOST_AUTO_TEST_CASE(shards_sum_to_the_batch_gradient) {
    Run r = prepare();
    Graph& g = r.model.graph;
    g.init_parameters(3);
    Feeder feeder(g, r.spec, r.ds);
    std::vector<std::int64_t> batch(25);
    std::iota(batch.begin(), batch.end(), 40);  // rows of all three classes
    feeder.feed(r.ds.train, batch);
    const double whole_loss = forward_backward_once(g, Pass::exact());
    const std::vector<double> whole = gradients(g);

    Communicator one;
    Plan plan = g.plan(Pass::exact());
    ShardedGradient sharded(one, {g, plan, feeder, r.ds.train}, g.parameters(), 4, {});  // shards of 6, 6, 6 and 7 rows
    BOOST_TEST(sharded.first() == 0);
    BOOST_TEST(sharded.last() == 4);
    std::size_t rows = 0;
    for (std::int64_t s = 0; s < 4; ++s) {
        auto part = sharded.rows(batch, s);
        BOOST_TEST(part.size() == (s == 3 ? 7u : 6u));
        BOOST_TEST(part.front() == batch[rows]);
        rows += part.size();
    }
    const double loss = sharded.compute(batch, {}, 1, StepPlace{1, 0, 1});
    BOOST_TEST(!sharded.stop_requested());
    BOOST_TEST(loss == whole_loss, boost::test_tools::tolerance(1e-13));
    const std::vector<double> combined = gradients(g);
    BOOST_REQUIRE(combined.size() == whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) BOOST_TEST(combined[i] == whole[i], boost::test_tools::tolerance(1e-12));

    // The combined gradient against central differences of the whole batch's loss.
    feeder.feed(r.ds.train, batch);
    std::size_t at = 0;
    for (int id : g.parameters()) {
        Tensor& v = g.node(id).value;
        const auto whole_loss_at = [&] {
            forward_once(g, Pass::exact());
            return g.node(g.loss()).value.at(0);
        };
        for (std::int64_t i = 0; i < v.numel(); ++i, ++at)
            BOOST_TEST(combined[at] == central_difference(v, i, whole_loss_at), boost::test_tools::tolerance(1e-6));
    }
}

BOOST_AUTO_TEST_CASE(a_status_reports_the_stop_and_the_failing_shard) {
    Run r = prepare();
    Graph& g = r.model.graph;
    g.init_parameters(3);
    Feeder feeder(g, r.spec, r.ds);
    Plan plan = g.plan(Pass::training());
    std::atomic<bool> stop{true};
    Communicator one;
    ShardedGradient sharded(one, {g, plan, feeder, r.ds.train, false, &stop}, g.parameters(), 2, [] { return 15; });
    std::vector<std::int64_t> batch(10);
    std::iota(batch.begin(), batch.end(), 0);
    sharded.compute(batch, {}, 1, StepPlace{1, 0, 1});
    BOOST_TEST(sharded.agreed_stop() == 15);
    BOOST_TEST(sharded.stop_requested());
    BOOST_TEST(!sharded.failure_agreed());
    // A row the split does not have fails shard 1's feed: the failure is agreed, and this
    // process (the failing one) gets its own error back.
    batch.back() = r.ds.train.count + 5;
    stop = false;
    const std::string error = testing::message_of<RunError>([&] { sharded.compute(batch, {}, 1, StepPlace{1, 0, 1}); });
    BOOST_TEST(error.find("is outside the split") != std::string::npos, error);
    BOOST_TEST(sharded.failure_agreed());
}

BOOST_AUTO_TEST_CASE(models_that_mix_rows_are_refused) {
    BOOST_TEST(shard_error([](Json&) {}).starts_with("(no "));  // nothing thrown
    BOOST_TEST(shard_error([](Json& j) { j["nodes"][3]["attrs"] = {{"axis", 0}}; }) ==
               "m.json: nodes[3]: node 'p' (op softmax) works along the batch axis (axis 0), mixing the rows, so the "
               "batch cannot be cut into shards; train it with --shards 1 in one process (docs/distributed.md)");
    BOOST_TEST(shard_error([](Json& j) { j["nodes"][4] = {{"name", "L"}, {"op", "sum"}, {"inputs", {"logits"}}}; })
                   .find("node 'L' (op sum) is the loss but not a mean over the batch's rows") != std::string::npos);
    // A sum over the batch axis before the loss: the loss would see the batch's total.
    BOOST_TEST(shard_error([](Json& j) {
                   j["nodes"][4] = {{"name", "col"}, {"op", "sum"}, {"inputs", {"logits"}}, {"attrs", {{"axis", 0}}}};
                   j["nodes"].push_back({{"name", "L"}, {"op", "mean"}, {"inputs", {"col"}}});
               }).find("node 'col' (op sum) combines the batch's rows") != std::string::npos);
    // cross_entropy leaving positions out is a mean over a counted number of terms: allowed.
    BOOST_TEST(shard_error([](Json& j) { j["nodes"][4]["attrs"] = {{"ignore_index", -1}}; }).starts_with("(no "));
}

// Words as "sequence" rows with cross_entropy's ignore_index: each row keeps as many positions
// as its word has characters, so shards are weighted by their kept positions, not their rows.
// The combined loss and gradient equal the one-piece ones for 2, 3 and 5 shards.
BOOST_AUTO_TEST_CASE(shards_of_sequences_weigh_by_their_kept_positions) {
    const std::string path = testing::source_root() + "/tests/fixtures/words_sequence.json";
    Run r{load_model(path), {}, {}};
    r.spec = parse_training(r.model.training, r.model.graph, r.model.path, r.model.dir);
    r.ds = data::load_dataset(r.spec.data);
    Graph& g = r.model.graph;
    g.init_parameters(3);
    Feeder feeder(g, r.spec, r.ds);
    for (const std::int64_t shards : {2, 3, 5}) {
        std::vector<std::int64_t> batch(10);
        std::iota(batch.begin(), batch.end(), 0);
        feeder.feed(r.ds.train, batch);
        const double whole_loss = forward_backward_once(g, Pass::exact());
        const std::vector<double> whole = gradients(g);
        Communicator one;
        Plan plan = g.plan(Pass::exact());
        ShardedGradient sharded(one, {g, plan, feeder, r.ds.train}, g.parameters(), shards, {});
        const double loss = sharded.compute(batch, {}, 1, StepPlace{1, 0, 1});
        BOOST_TEST(loss == whole_loss, boost::test_tools::tolerance(1e-13));
        const std::vector<double> combined = gradients(g);
        BOOST_REQUIRE(combined.size() == whole.size());
        for (std::size_t i = 0; i < whole.size(); ++i)
            BOOST_TEST(combined[i] == whole[i], boost::test_tools::tolerance(1e-12));
    }
    // Weighting by rows instead would be wrong here: the words' lengths differ.
    std::vector<std::int64_t> lengths;
    for (std::int64_t row : {0, 1, 2, 3}) {
        feeder.feed(r.ds.train, std::vector<std::int64_t>{row});
        std::int64_t kept = 0;
        const Tensor& t = g.node(g.id("targets")).value;
        for (std::int64_t i = 0; i < t.numel(); ++i) kept += t.at(i) != -1;
        lengths.push_back(kept);
    }
    BOOST_TEST((*std::min_element(lengths.begin(), lengths.end()) != *std::max_element(lengths.begin(), lengths.end())));
}

// A loss that reads a gradient (a grad node) cannot be cut: dL/dx of a shard's mean loss is
// n/n_s times the batch's, and a penalty on it is not linear in it. Refused naming the node,
// also where the loss is itself a mean over rows (the penalty alone).
BOOST_AUTO_TEST_CASE(a_loss_reading_a_grad_node_is_refused) {
    const std::string path = testing::source_root() + "/tests/fixtures/gradient_penalty.json";
    Json j = read_json_file(path);
    for (const char* loss : {"L", "penalty"}) {
        j["outputs"]["loss"] = loss;
        Model m = parse_model(j.dump(), "gp.json");
        const std::string error = testing::message_of<InputError>([&] { check_shardable(m.graph, "gp.json"); });
        BOOST_TEST(error.find("gp.json: nodes[5]: node 'gx' (op scale) is a gradient (a grad node) that the loss "
                              "reads: the gradient of a shard's mean loss is not the batch's, so the batch cannot be "
                              "cut into shards") != std::string::npos,
                   loss << ": " << error);
    }
    // The same model without the penalty shards as before.
    j["outputs"]["loss"] = "L0";
    j["nodes"].erase(j["nodes"].begin() + 5, j["nodes"].end());
    Model plain = parse_model(j.dump(), "gp.json");
    BOOST_TEST(testing::message_of<InputError>([&] { check_shardable(plain.graph, "gp.json"); }).starts_with("(no "));
}

// The labels checks let cross_entropy's ignore_index label through, and name it for a node
// without one.
BOOST_AUTO_TEST_CASE(labels_checks_know_the_ignored_label) {
    Json j = read_json_file(testing::source_root() + "/models/iris_3class_softmax.json");
    Tensor t = Tensor::of({0.0, -1.0, 2.0});
    Model plain = parse_model(j.dump(), "m.json");
    const std::string refused = testing::message_of<InputError>(
        [&] { check_class_indices(plain.graph, plain.graph.id("t"), t, "feed.t"); });
    BOOST_TEST(refused.find("feed.t[1]: entry 1 is -1") != std::string::npos, refused);
    BOOST_TEST(refused.find("needs cross_entropy's {\"ignore_index\": -1}") != std::string::npos, refused);
    j["nodes"][4]["attrs"] = {{"ignore_index", -1}};
    Model ignoring = parse_model(j.dump(), "m.json");
    BOOST_TEST(testing::message_of<InputError>([&] {
                   check_class_indices(ignoring.graph, ignoring.graph.id("t"), t, "feed.t");
               }).starts_with("(no "));
    BOOST_TEST(testing::message_of<InputError>([&] {
                   check_class_indices(ignoring.graph, ignoring.graph.id("t"), Tensor::of({0.0, -2.0, 2.0}), "feed.t");
               }).find("(or -1, which it leaves out)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(one_process_with_shards_trains_as_the_same_run_each_time) {
    auto train_with = [](std::optional<std::int64_t> shards) {
        Run r = prepare([](Json& j) {
            j["training"]["epochs"] = 3;
            j["training"]["batch_size"] = 25;
        });
        TrainOptions o;
        o.print = [](const std::string&) {};
        o.shards = shards;
        train(r.model, r.spec, r.ds, o);
        std::vector<double> w;
        for (int id : r.model.graph.parameters())
            for (std::int64_t i = 0; i < r.model.graph.node(id).value.numel(); ++i)
                w.push_back(r.model.graph.node(id).value.at(i));
        return w;
    };
    const auto s4 = train_with(4), s1 = train_with({}), s1_again = train_with(1);
    BOOST_TEST(train_with(4) == s4);  // bit for bit
    BOOST_TEST(s1 == s1_again);       // no shards is one shard
    BOOST_REQUIRE(s1.size() == s4.size());
    // Another order of summation: different rounding, the same training.
    bool differs = false;
    for (std::size_t i = 0; i < s1.size(); ++i) {
        BOOST_TEST(s4[i] == s1[i], boost::test_tools::tolerance(1e-9));
        differs = differs || s4[i] != s1[i];
    }
    BOOST_TEST(differs);
}

BOOST_AUTO_TEST_CASE(shards_must_fit_the_batch_and_the_processes) {
    Run r = prepare([](Json& j) { j["training"]["batch_size"] = 5; });
    TrainOptions o;
    o.print = [](const std::string&) {};
    o.shards = 6;
    BOOST_TEST(testing::message_of<InputError>([&] { train(r.model, r.spec, r.ds, o); }) ==
               "6 shards are more than the 5 rows of a batch: use fewer shards");
}
