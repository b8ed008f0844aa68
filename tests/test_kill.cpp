// Kill safety: `chainrule train` killed with SIGKILL at random moments never leaves a
// corrupt checkpoint, and resuming after every kill ends with exactly the weights of a run
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

#include "graph/checkpoint.hpp"
#include "graph/json_io.hpp"
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

}  // namespace

BOOST_AUTO_TEST_CASE(sigkill_at_random_moments_then_resume_equals_the_uninterrupted_run) {
    fs::path dir = fs::temp_directory_path() / ("chainrule_kill_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    // Many tiny steps and a checkpoint per epoch: kills land in steps, in evaluation and in
    // the middle of writing files.
    Json m = read_json_file(testing::source_root() + "/models/iris_3class.json");
    m["training"]["data"]["path"] = fs::absolute(fs::path(testing::source_root()) / "data/iris.data").string();
    m["training"]["batch_size"] = 1;
    m["training"]["batches_per_epoch"] = 3000;
    m["training"]["sampling"] = "with_replacement";
    m["training"]["epochs"] = 40;
    fs::path model = dir / "model.json";
    std::ofstream(model) << m.dump(2);

    fs::path whole = dir / "whole", killed = dir / "killed", log = dir / "log.txt";
    int status = 0;
    auto t_start = std::chrono::steady_clock::now();
    waitpid(spawn_train(model, whole, false, log), &status, 0);
    BOOST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    // Kill delays are fractions of the uninterrupted run, so the test kills as often and
    // at as varied moments in an optimised build as in a slow sanitizer build.
    const auto whole_run = std::chrono::steady_clock::now() - t_start;

    Rng rng(2024);
    const int planned_kills = 12;
    int kills = 0, checked = 0;
    std::set<std::int64_t> epochs;  // checkpointed epoch after each kill
    bool finished = false;
    for (int attempt = 0; attempt < planned_kills && !finished; ++attempt) {
        bool resume = fs::exists(killed / "checkpoint.ckpt");
        pid_t pid = spawn_train(model, killed, resume, log);
        std::this_thread::sleep_for(std::chrono::duration_cast<std::chrono::microseconds>(
            whole_run * rng.uniform(0.02, 0.12)));
        if (waitpid(pid, &status, WNOHANG) == 0) {
            ::kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            ++kills;
            // Whatever moment it died at, the checkpoint is absent or whole.
            if (fs::exists(killed / "checkpoint.ckpt")) {
                BOOST_CHECK_NO_THROW(epochs.insert(final_checkpoint(killed).epoch));
                ++checked;
            }
            continue;
        }
        BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                              "a resumed run failed; see " << log.string());
        finished = true;
    }
    if (!finished) {  // the last resume runs to the end, unkilled
        waitpid(spawn_train(model, killed, fs::exists(killed / "checkpoint.ckpt"), log), &status, 0);
        BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                              "the final resumed run failed; see " << log.string());
    }
    BOOST_TEST_MESSAGE("kills: " << kills << ", checkpoints verified after a kill: " << checked
                                  << ", at epochs " << fmt::format("{}", fmt::join(epochs, " ")));
    BOOST_TEST(kills >= 5);
    BOOST_TEST(checked >= 3);  // kills after the first checkpoint really tested its integrity
    BOOST_TEST(epochs.size() >= 3u);  // runs resumed and got further between kills

    Checkpoint a = final_checkpoint(whole), b = final_checkpoint(killed);
    BOOST_TEST(a.epoch == 40);
    BOOST_TEST(b.epoch == 40);
    BOOST_REQUIRE(a.tensors.size() == b.tensors.size());
    for (std::size_t i = 0; i < a.tensors.size(); ++i) {
        const Tensor &x = a.tensors[i].second, &y = b.tensors[i].second;
        BOOST_REQUIRE(x.numel() == y.numel());
        BOOST_TEST(std::memcmp(x.data<double>(), y.data<double>(), std::size_t(x.numel()) * 8) == 0,
                   "parameter " << a.tensors[i].first << " differs after kills and resumes");
    }
    // Temporary files of writes cut short by a kill are cleaned up by the next run.
    for (auto& f : fs::directory_iterator(killed))
        BOOST_TEST(f.path().filename().string().find(".tmp-") == std::string::npos, f.path());
    // The metrics history survives the kills too: the same losses epoch by epoch.
    const Json &ha = a.info["history"], &hb = b.info["history"];
    BOOST_REQUIRE(ha.size() == hb.size());
    for (std::size_t e = 0; e < ha.size(); ++e) BOOST_TEST(ha[e]["train_loss"] == hb[e]["train_loss"]);
    fs::remove_all(dir);
}
