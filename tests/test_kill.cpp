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
#include <set>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

#include "train/checkpoint.hpp"
#include "core/json_io.hpp"
#include "testing.hpp"

using namespace chainrule;
namespace fs = std::filesystem;

extern char** environ;

namespace {

// Starts `chainrule train`; stdout and stderr go to `log`.
pid_t spawn_train(const fs::path& model, const fs::path& out, bool resume, const fs::path& log) {
    std::vector<std::string> args = {testing::chainrule_binary(), "train", model.string(), "--out", out.string(),
                                     "--threads", "1", "--no-progress"};
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
struct KillPlan {
    int kills = 12;
    double lo = 0.02, hi = 0.12;
    bool inside_writes = false;
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
    fs::path dir = fs::temp_directory_path() / ("chainrule_kill_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::path model = dir / "model.json";
    std::ofstream(model) << m.dump(2);

    fs::path whole = dir / "whole", killed = dir / "killed", log = dir / "log.txt";
    int status = 0;
    auto t_start = std::chrono::steady_clock::now();
    waitpid(spawn_train(model, whole, false, log), &status, 0);
    BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the uninterrupted run failed; see " << log);
    // Kill delays are fractions of the uninterrupted run, so the test kills as often and
    // at as varied moments in an optimised build as in a slow sanitizer build.
    const auto whole_run = std::chrono::steady_clock::now() - t_start;

    Rng rng(2024);
    KillReport report;
    bool finished = false;
    for (int attempt = 0; attempt < plan.kills && !finished; ++attempt) {
        bool resume = fs::exists(killed / "checkpoint.ckpt");
        fs::create_directories(killed);
        pid_t pid = spawn_train(model, killed, resume, log);
        if (plan.inside_writes) {
            if (wait_for_write(pid, killed, 1 + int(rng.below(8))))
                std::this_thread::sleep_for(std::chrono::microseconds(rng.below(300)));
        } else {
            std::this_thread::sleep_for(
                std::chrono::duration_cast<std::chrono::microseconds>(whole_run * rng.uniform(plan.lo, plan.hi)));
        }
        if (waitpid(pid, &status, WNOHANG) == 0) {
            ::kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            ++report.kills;
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
        waitpid(spawn_train(model, killed, fs::exists(killed / "checkpoint.ckpt"), log), &status, 0);
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

Json iris_model(const char* name) {
    Json m = read_json_file(testing::source_root() + "/models/" + name + ".json");
    m["training"]["data"]["path"] = fs::absolute(fs::path(testing::source_root()) / "data/iris.data").string();
    return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sigkill_during_steps_then_resume_equals_the_uninterrupted_run) {
    // Many tiny steps and a small checkpoint per epoch: kills land in steps and evaluation.
    Json m = iris_model("iris_3class");
    m["training"]["batch_size"] = 1;
    m["training"]["batches_per_epoch"] = 3000;
    m["training"]["sampling"] = "with_replacement";
    m["training"]["epochs"] = 40;
    KillReport r = kill_and_resume("steps", m, KillPlan{.kills = 12, .lo = 0.02, .hi = 0.12});
    BOOST_TEST(r.kills >= 5);
    BOOST_TEST(r.checkpoints_checked >= 3);  // kills after the first checkpoint tested its integrity
    BOOST_TEST(r.epochs.size() >= 3u);       // runs resumed and got further between kills
}

BOOST_AUTO_TEST_CASE(sigkill_while_files_are_written_then_resume_equals_the_uninterrupted_run) {
    // One tiny step per epoch and a million parameters, so that the files are large (an 8 MB
    // checkpoint, a 30 MB model.json) and each kill is aimed inside one of their writes.
    Json m = iris_model("iris_neuron");
    m["inputs"].erase("y");
    m["parameters"] = Json::parse(R"({"w": {"shape": [4, 250000], "init": {"constant": 0.001}}})");
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
    m["training"]["batches_per_epoch"] = 3000;
    m["training"]["sampling"] = "shuffle";
    m["training"]["epochs"] = 40;
    KillReport r = kill_and_resume("adam", m, KillPlan{.kills = 12, .lo = 0.02, .hi = 0.12});
    BOOST_TEST(r.kills >= 4);
    BOOST_TEST(r.epochs.size() >= 3u);
}
