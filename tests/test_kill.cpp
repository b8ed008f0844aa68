// Kill safety: `chainrule train` killed with SIGKILL at random moments (during steps, and
// aimed inside the writes of its checkpoint and model.json) never leaves a corrupt or
// half-written file, and resuming after every kill ends with exactly the weights of a run
// that was never interrupted.
#define BOOST_TEST_MODULE kill
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/ranges.h>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

#include "core/files.hpp"
#include "core/json.hpp"
#include "testing.hpp"
#include "train/checkpoint.hpp"

using namespace chainrule;
namespace fs = std::filesystem;

extern char** environ;

namespace {

// Starts `chainrule train`; stdout and stderr go to `log`. It saves after every epoch
// unless `extra` says otherwise.
pid_t spawn_train(const fs::path& model, const fs::path& out, bool resume, const fs::path& log,
                  const std::vector<std::string>& extra = {"--save-every", "0"}) {
    std::vector<std::string> args = {testing::chainrule_binary(), "train", model.string(), "--out", out.string(),
                                     "--threads", "1", "--no-progress"};
    args.insert(args.end(), extra.begin(), extra.end());
    if (resume) args.insert(args.end(), {"--resume", out.string()});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    BOOST_REQUIRE_MESSAGE(rc == 0, "posix_spawn failed: " << std::strerror(rc));
    return pid;
}

// How often `text` occurs in the file at `p`.
std::size_t count_of(const fs::path& p, const std::string& text) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string s = ss.str();
    std::size_t n = 0;
    for (auto at = s.find(text); at != std::string::npos; at = s.find(text, at + 1)) ++n;
    return n;
}

Checkpoint final_checkpoint(const fs::path& dir) { return load_checkpoint((dir / "checkpoint.ckpt").string()); }

// Whether `dir` holds a temporary file (of `prefix`, when given): a write cut short.
bool has_temp_file(const fs::path& dir, const std::string& prefix = "") {
    if (!fs::exists(dir)) return false;
    for (auto& f : fs::directory_iterator(dir)) {
        std::string name = f.path().filename().string();
        if (name.starts_with(prefix) && name.find(".tmp-") != std::string::npos) return true;
    }
    return false;
}

struct KillReport {
    int kills = 0;
    int checkpoints_checked = 0;  // kills after which a checkpoint existed and loaded
    int during_writes = 0;        // kills that left a temporary file: they hit a write
    int during_checkpoint_writes = 0;
    std::set<std::int64_t> epochs;  // the checkpointed epoch after each kill
};

// When to kill: `lo`..`hi` of the uninterrupted run's duration after each (re)start, or,
// with `inside_writes`, 0 to 300 µs into the run's 1st to 8th write of its checkpoint or
// model.json.
// With `signal` SIGTERM or SIGINT instead of SIGKILL, each stopped run must exit with
// 128 + signal after saving its last whole epoch (it saves only then: --save-every 3600).
struct KillPlan {
    int kills = 12;
    double lo = 0.02, hi = 0.12;
    bool inside_writes = false;
    int signal = SIGKILL;
};

// Waits, while `pid` runs, for the `target`-th write of a checkpoint or model.json to begin
// in `dir` (their temporary file appears; the small files are written too fast to aim at);
// false when the process ended first.
bool wait_for_write(pid_t pid, const fs::path& dir, int target) {
    std::set<std::string> seen;
    for (;;) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) != 0) return false;
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            std::string f = it->path().filename().string();
            bool large = f.starts_with("checkpoint.ckpt.tmp-") || f.starts_with("model.json.tmp-");
            if (large && seen.insert(f).second && int(seen.size()) >= target)
                return true;
        }
    }
}

// Trains `m` once without interruption, then again killing it with SIGKILL as `plan` says,
// resuming each time from whatever checkpoint survived; a last resume runs to the end.
// Requires both runs to end with bit-identical parameters and metrics history and no
// temporary files left.
KillReport kill_and_resume(const std::string& name, Json m, const KillPlan& plan) {
    const fs::path dir = testing::fresh_scratch_dir("kill_" + name);
    fs::path model = dir / "model.json";
    std::ofstream(model) << m.dump(2);

    fs::path whole = dir / "whole", killed = dir / "killed", log = dir / "log.txt";
    const bool polite = plan.signal != SIGKILL;
    const std::vector<std::string> saving = polite ? std::vector<std::string>{"--save-every", "3600"}
                                                   : std::vector<std::string>{"--save-every", "0"};
    int status = 0;
    // Kill delays are fractions of the uninterrupted run's training, counted from the moment
    // a run says it started, so the test kills as often and at as varied moments on a fast
    // CPU (where starting the process is a good part of a short run) as in a slow sanitizer build.
    pid_t first = spawn_train(model, whole, false, log, saving);
    while (count_of(log, "test samples;") == 0 && waitpid(first, &status, WNOHANG) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    auto t_started = std::chrono::steady_clock::now();
    if (waitpid(first, &status, WNOHANG) == 0) waitpid(first, &status, 0);
    BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the uninterrupted run failed; see " << log);
    const auto whole_run = std::chrono::steady_clock::now() - t_started;

    Rng rng(2024);
    KillReport report;
    bool finished = false;
    for (int attempt = 0; attempt < plan.kills && !finished; ++attempt) {
        bool resume = fs::exists(killed / "checkpoint.ckpt");
        fs::create_directories(killed);
        const std::size_t started = count_of(log, "test samples;");
        pid_t pid = spawn_train(model, killed, resume, log, saving);
        // Every kill comes once the run has said it started (a polite signal before main() would
        // find no handler in place, and a shell's SIGTERM then kills, as it should); kills inside
        // writes wait for the write themselves.
        while (count_of(log, "test samples;") == started && waitpid(pid, &status, WNOHANG) == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (plan.inside_writes) {
            if (wait_for_write(pid, killed, 1 + int(rng.below(8))))
                std::this_thread::sleep_for(std::chrono::microseconds(rng.below(300)));
        } else {
            std::this_thread::sleep_for(
                std::chrono::duration_cast<std::chrono::microseconds>(whole_run * rng.uniform(plan.lo, plan.hi)));
        }
        if (waitpid(pid, &status, WNOHANG) == 0) {
            ::kill(pid, plan.signal);
            waitpid(pid, &status, 0);
            ++report.kills;
            if (polite) {  // it ends by itself, saying so, after saving (or had just finished)
                BOOST_TEST(WIFEXITED(status), "signal " << plan.signal << " killed the run instead of stopping it");
                BOOST_TEST((WEXITSTATUS(status) == 128 + plan.signal || WEXITSTATUS(status) == 0),
                           "exit " << WEXITSTATUS(status) << "; see " << log);
                BOOST_TEST(!has_temp_file(killed));
            }
            if (has_temp_file(killed)) ++report.during_writes;
            if (has_temp_file(killed, "checkpoint.ckpt")) ++report.during_checkpoint_writes;
            // Whatever moment it died at, the checkpoint is absent or whole.
            if (fs::exists(killed / "checkpoint.ckpt")) {
                BOOST_CHECK_NO_THROW(report.epochs.insert(final_checkpoint(killed).epoch));
                ++report.checkpoints_checked;
            }
            continue;
        }
        BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a resumed run failed; see " << log);
        finished = true;
    }
    if (!finished) {  // the last resume runs to the end, unkilled
        waitpid(spawn_train(model, killed, fs::exists(killed / "checkpoint.ckpt"), log, saving), &status, 0);
        BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                              "the final resumed run failed; see " << log);
    }
    BOOST_TEST_MESSAGE(name << ": " << report.kills << " kills, " << report.during_writes
                            << " of them during a write (" << report.during_checkpoint_writes
                            << " of a checkpoint); checkpoints verified after a kill: "
                            << report.checkpoints_checked << ", at epochs "
                            << fmt::format("{}", fmt::join(report.epochs, " ")));

    const std::int64_t epochs = m["training"]["epochs"].get<std::int64_t>();
    Checkpoint a = final_checkpoint(whole), b = final_checkpoint(killed);
    BOOST_TEST(a.epoch == epochs);
    BOOST_TEST(b.epoch == epochs);
    BOOST_REQUIRE(a.tensors.size() == b.tensors.size());
    for (std::size_t i = 0; i < a.tensors.size(); ++i) {
        const Tensor &x = a.tensors[i].second, &y = b.tensors[i].second;
        BOOST_REQUIRE(x.numel() == y.numel());
        BOOST_TEST(std::memcmp(x.data<double>(), y.data<double>(), std::size_t(x.numel()) * 8) == 0,
                   "parameter " << a.tensors[i].first << " differs after kills and resumes");
    }
    // Temporary files of writes cut short by a kill are cleaned up by the next run.
    BOOST_TEST(!has_temp_file(killed));
    // The files written besides the checkpoint are whole too.
    BOOST_CHECK_NO_THROW(read_json_file((killed / "model.json").string()));
    // The metrics history survives the kills too: the same losses epoch by epoch.
    const Json &ha = a.info["history"], &hb = b.info["history"];
    BOOST_REQUIRE(ha.size() == hb.size());
    for (std::size_t e = 0; e < ha.size(); ++e) BOOST_TEST(ha[e]["train_loss"] == hb[e]["train_loss"]);
    fs::remove_all(dir);
    return report;
}

// Steps per epoch of the runs killed during steps. Under the sanitizers (scripts/sanitize) a
// step is many times slower; a tenth of the steps keeps their kills as many and as varied
// (the kill moments are fractions of the uninterrupted run, each epoch still a 40th of it).
constexpr int steps_per_epoch = testing::sanitized ? 300 : 3000;

// Columns of the million-parameter model whose file writes are killed. Under the sanitizers
// writing its 30 MB model.json takes seconds per epoch; a fifth of it (a 1.6 MB checkpoint, a
// 6 MB model.json) still takes milliseconds to write, far longer than the kill's aim (0 to
// 300 µs into a write).
constexpr int write_columns = testing::sanitized ? 50000 : 250000;

Json iris_model(const char* name) {
    Json m = read_json_file(testing::source_root() + "/models/" + name + ".json");
    m["training"]["data"]["path"] = fs::absolute(fs::path(testing::source_root()) / "data/iris.data").string();
    return m;
}

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(sigkill_during_steps_then_resume_equals_the_uninterrupted_run) {
    // Many tiny steps and a small checkpoint per epoch: kills land in steps and evaluation.
    Json m = iris_model("iris_3class");
    m["training"]["batch_size"] = 1;
    m["training"]["batches_per_epoch"] = steps_per_epoch;
    m["training"]["sampling"] = "with_replacement";
    m["training"]["epochs"] = 40;
    KillReport r = kill_and_resume("steps", m, KillPlan{.kills = 12, .lo = 0.02, .hi = 0.12});
    BOOST_TEST(r.kills >= 5);
    BOOST_TEST(r.checkpoints_checked >= 3);  // kills after the first checkpoint tested its integrity
    BOOST_TEST(r.epochs.size() >= 3u);       // runs resumed and got further between kills
}

BOOST_AUTO_TEST_CASE(sigkill_while_files_are_written_then_resume_equals_the_uninterrupted_run) {
    // One tiny step per epoch and a million parameters (a fifth of them under the sanitizers),
    // so that the files are large (an 8 MB checkpoint, a 30 MB model.json) and each kill is
    // aimed inside one of their writes.
    Json m = iris_model("iris_neuron");
    m["inputs"].erase("y");
    m["parameters"] = Json::parse(R"({"w": {"init": {"constant": 0.001}}})");
    m["parameters"]["w"]["shape"] = {4, write_columns};
    m["nodes"] = Json::parse(R"([{"name": "z", "op": "matmul", "inputs": ["x", "w"]},
                                 {"name": "L", "op": "mean", "inputs": ["z"]}])");
    m["outputs"] = Json::parse(R"({"loss": "L"})");
    m["training"]["feed"] = Json::parse(R"({"x": "features"})");
    m["training"]["metrics"] = Json::parse(R"(["loss"])");
    m["training"]["batch_size"] = 1;
    m["training"]["batches_per_epoch"] = 1;
    m["training"]["epochs"] = 20;
    KillReport r = kill_and_resume("writes", m, KillPlan{.kills = 8, .inside_writes = true});
    BOOST_TEST(r.kills >= 6);
    BOOST_TEST(r.during_writes >= r.kills / 2);  // the point of this case: kills cut writes short
    BOOST_TEST(r.during_checkpoint_writes >= 1);
    BOOST_TEST(r.epochs.size() >= 2u);
}

BOOST_AUTO_TEST_CASE(sigkill_during_adam_steps_then_resume_equals_the_uninterrupted_run) {
    // The optimizer's moments, max-of-squares and step count, and the schedule's position,
    // travel in the checkpoint: a killed Adam run resumes bit-identical too.
    Json m = iris_model("iris_3class");
    m["training"]["optimizer"] = Json::parse(R"({"adam": {"lr": 0.01, "amsgrad": true, "weight_decay": 0.001}})");
    m["training"]["lr_schedule"] = Json::parse(R"({"cosine": {"t_max": 30, "eta_min": 0.001}})");
    m["training"]["clip_grad_norm"] = 1.0;
    m["training"]["batch_size"] = 1;
    m["training"]["batches_per_epoch"] = steps_per_epoch;
    m["training"]["sampling"] = "shuffle";
    m["training"]["epochs"] = 40;
    KillReport r = kill_and_resume("adam", m, KillPlan{.kills = 12, .lo = 0.02, .hi = 0.12});
    BOOST_TEST(r.kills >= 4);
    BOOST_TEST(r.epochs.size() >= 3u);
}

BOOST_AUTO_TEST_CASE(sigterm_and_sigint_save_the_last_epoch_and_resume_equals_the_uninterrupted_run) {
    // Saves are due only every hour here, so every checkpoint after a stop was written by
    // the stop itself.
    Json m = iris_model("iris_3class");
    m["training"]["batch_size"] = 1;
    m["training"]["batches_per_epoch"] = steps_per_epoch;
    m["training"]["sampling"] = "with_replacement";
    m["training"]["epochs"] = 30;
    for (int sig : {SIGTERM, SIGINT}) {
        KillReport r = kill_and_resume(sig == SIGTERM ? "sigterm" : "sigint", m,
                                       KillPlan{.kills = 6, .lo = 0.05, .hi = 0.2, .signal = sig});
        BOOST_TEST(r.kills >= 3);
        BOOST_TEST(r.checkpoints_checked >= 2);
        BOOST_TEST(r.epochs.size() >= 2u);
    }
}

namespace {

// A scratch folder with the Iris model `name` in it as model.json (its data path absolute).
fs::path run_case(const std::string& name, const Json& m) {
    const fs::path dir = testing::fresh_scratch_dir("runfiles_" + name);
    std::ofstream(dir / "model.json") << m.dump(1);
    return dir;
}

testing::CommandResult train_in(const fs::path& dir, const std::string& args) {
    return testing::run_command("cd '" + dir.string() + "' && " + fs::absolute(testing::chainrule_binary()).string() +
                                " train model.json --no-progress " + args);
}

// iris_neuron without its sigmoid: mse of a linear unit, whose weights a huge step sends
// to -inf while the loss it reports (computed before the step) is finite.
Json linear_model() {
    Json m = iris_model("iris_neuron");
    m["nodes"] = Json::parse(R"([{"name": "z", "op": "matmul", "inputs": ["x", "w"]},
                                 {"name": "a", "op": "add", "inputs": ["z", "b"]},
                                 {"name": "L", "op": "mse", "inputs": ["a", "y"]}])");
    m["outputs"] = Json::parse(R"({"prediction": "a", "loss": "L"})");
    return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(resume_with_a_bare_checkpoint_name_continues_in_its_folder) {
    fs::path dir = run_case("bare", iris_model("iris_neuron"));
    BOOST_REQUIRE(train_in(dir, "--epochs 3 --out .").code == 0);
    testing::CommandResult r = train_in(dir, "--epochs 5 --resume checkpoint.ckpt");
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(final_checkpoint(dir).epoch == 5);
    BOOST_TEST(r.out.find("run directory: .") != std::string::npos, r.out);
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_resume_with_nothing_left_to_train_repairs_the_other_files) {
    // As after a kill between the checkpoint and model.json: model.json one epoch behind.
    fs::path dir = run_case("repair", iris_model("iris_neuron"));
    BOOST_REQUIRE(train_in(dir, "--epochs 2 --out behind").code == 0);
    BOOST_REQUIRE(train_in(dir, "--epochs 3 --out run").code == 0);
    fs::copy_file(dir / "behind/model.json", dir / "run/model.json", fs::copy_options::overwrite_existing);
    fs::remove(dir / "run/metrics.csv");
    testing::CommandResult r = train_in(dir, "--epochs 3 --resume run");
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    Json saved = read_json_file((dir / "run/model.json").string());
    Checkpoint c = final_checkpoint(dir / "run");
    for (const auto& [name, t] : c.tensors) {
        std::vector<double> values;
        std::function<void(const Json&)> flat = [&](const Json& j) {
            if (j.is_array()) for (const auto& e : j) flat(e);
            else values.push_back(j.get<double>());
        };
        flat(saved["parameters"][name]["init"]["value"]);
        BOOST_REQUIRE(std::int64_t(values.size()) == t.numel());
        for (std::int64_t i = 0; i < t.numel(); ++i) BOOST_TEST(values[std::size_t(i)] == t.at(i), name << "[" << i << "]");
    }
    BOOST_TEST(read_text_file((dir / "run/metrics.csv").string()).find("\n3,") != std::string::npos);
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(weights_sent_to_inf_by_a_step_stop_the_run_before_they_are_saved) {
    fs::path dir = run_case("inf", linear_model());
    testing::CommandResult r = train_in(dir, "--epochs 3 --lr 1e308 --out run");
    BOOST_TEST(r.code == 1);
    BOOST_TEST(r.err.find("parameter 'w' became NaN or Inf in 3 of its 4 entries during epoch 1, though the loss was "
                          "finite; no checkpoint was written") != std::string::npos, r.err);
    BOOST_TEST(!fs::exists(dir / "run/checkpoint.ckpt"));
    BOOST_TEST(!fs::exists(dir / "run/model.json"));
    // Without --out it is refused too: no exit 0 with weights chainrule would then refuse.
    BOOST_TEST(train_in(dir, "--epochs 1 --lr 1e308").code == 1);
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_nan_after_resuming_into_a_new_folder_names_the_checkpoint_that_exists) {
    fs::path dir = run_case("nan_new_out", linear_model());
    BOOST_REQUIRE(train_in(dir, "--epochs 2 --lr 0.01 --batch 40 --out first").code == 0);
    testing::CommandResult r =
        train_in(dir, "--epochs 5 --batch 40 --resume first --out second --lr 1e308 --fresh-optimizer");
    BOOST_TEST(r.code == 1);
    // Epoch 3's first step overflows the weights, its second the loss: the good state is the
    // one resumed from, in the first folder.
    BOOST_TEST(r.err.find("the last good checkpoint is first/checkpoint.ckpt (epoch 2)") != std::string::npos, r.err);
    BOOST_TEST(!fs::exists(dir / "second/checkpoint.ckpt"));
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_second_training_into_the_same_folder_is_refused) {
    Json m = iris_model("iris_neuron");
    m["training"]["epochs"] = 1000000;
    fs::path dir = run_case("lock", m);
    pid_t first = spawn_train(dir / "model.json", dir / "run", false, dir / "first.log", {"--save-every", "3600"});
    for (int i = 0; i < 500 && !fs::exists(dir / "run/.lock"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    testing::CommandResult r = train_in(dir, "--epochs 3 --out run");
    ::kill(first, SIGTERM);
    int status = 0;
    waitpid(first, &status, 0);
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("run: the run directory is in use by another training (process " + std::to_string(first) +
                          "); wait for it to end or choose another --out") != std::string::npos, r.err);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM));
    BOOST_TEST(final_checkpoint(dir / "run").epoch >= 1);  // the first run's files are intact
    // Once it has ended, the folder is free again.
    BOOST_TEST(train_in(dir, "--epochs 3 --out other --resume run").code == 0);
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(epoch_lines_show_fast_epochs_in_a_unit_that_is_not_zero) {
    fs::path dir = run_case("time", iris_model("iris_neuron"));
    testing::CommandResult r = train_in(dir, "--epochs 3 --print-every 1");
    BOOST_REQUIRE(r.code == 0);
    BOOST_TEST(r.out.find("(0.000 s)") == std::string::npos, r.out);
    BOOST_TEST((r.out.find(" µs)") != std::string::npos || r.out.find(" ms)") != std::string::npos), r.out);
    fs::remove_all(dir);
}
