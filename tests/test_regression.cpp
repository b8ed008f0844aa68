// The regression corpus (tests/regression/KIND/NAME + NAME.expect): every malformed file
// goes through the real chainrule command line and must be refused cleanly: exit code 2,
// the expected fragment on stderr, no signal, in a few seconds.
#define BOOST_TEST_MODULE regression
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "tests/testing.hpp"

extern char** environ;

namespace fs = std::filesystem;
using chainrule::testing::build_root;
using chainrule::testing::source_root;

namespace {

struct Outcome {
    bool exited = false;
    int code = -1;    // exit code when exited
    int signal = 0;   // terminating signal otherwise
    std::string err;  // stderr
    double seconds = 0;
};

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs the CLI with stdout discarded and stderr captured in a file; a run that takes
// longer than `limit` seconds is killed and reported as SIGKILL.
Outcome run_cli(const std::vector<std::string>& args, int limit = 60) {
    std::vector<std::string> argv{build_root() + "/cli/chainrule"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);

    const fs::path err_file = chainrule::testing::scratch() / "stderr";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    auto start = std::chrono::steady_clock::now();
    pid_t pid = -1;
    int rc = posix_spawn(&pid, cargv[0], &actions, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    BOOST_REQUIRE_MESSAGE(rc == 0, "cannot start " << argv[0]);

    int status = 0;
    for (;;) {
        pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) break;
        if (std::chrono::steady_clock::now() - start > std::chrono::seconds(limit)) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            break;
        }
        ::usleep(2000);
    }
    Outcome o;
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    o.exited = WIFEXITED(status);
    o.code = o.exited ? WEXITSTATUS(status) : -1;
    o.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    o.err = read_all(err_file);
    fs::remove(err_file);
    return o;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

// The files of one kind, sorted, each with its expected fragment.
std::vector<std::pair<fs::path, std::string>> corpus(const std::string& kind) {
    fs::path dir = fs::path(source_root()) / "tests" / "regression" / kind;
    std::vector<std::pair<fs::path, std::string>> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (!e.is_regular_file() || e.path().extension() == ".expect") continue;
        fs::path expect = e.path();
        expect.replace_extension(".expect");
        BOOST_REQUIRE_MESSAGE(fs::exists(expect), e.path() << " has no .expect file");
        std::string fragment = trimmed(read_all(expect));
        BOOST_REQUIRE_MESSAGE(!fragment.empty(), expect << " is empty");
        out.emplace_back(e.path(), fragment);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Every file of `kind` through `command(file)`: refused with exit 2 and its fragment; then
// `also(file, outcome)`, when given.
template <class Command>
void check_kind(const std::string& kind, std::size_t at_least, Command command,
                const std::function<void(const fs::path&, const Outcome&)>& also = {}) {
    auto files = corpus(kind);
    BOOST_TEST_REQUIRE(files.size() >= at_least);
    for (const auto& [file, fragment] : files) {
        BOOST_TEST_CONTEXT(kind << "/" << file.filename().string()) {
            Outcome o = run_cli(command(file.string()));
            BOOST_TEST(o.signal == 0, "killed by signal " << o.signal);
            BOOST_TEST(o.exited);
            BOOST_TEST(o.code == 2, "exit code " << o.code << "; stderr: " << o.err.substr(0, 400));
            BOOST_TEST(o.err.find(fragment) != std::string::npos,
                       "stderr lacks '" << fragment << "': " << o.err.substr(0, 400));
            BOOST_TEST(o.err.find("internal error") == std::string::npos);
            // Under scripts/sanitize a report that did not stop the program still counts.
            BOOST_TEST(o.err.find("Sanitizer") == std::string::npos);
            BOOST_TEST(o.err.find("runtime error:") == std::string::npos);
            BOOST_TEST(o.seconds < 10.0, "took " << o.seconds << " s");
            if (also) also(file, o);
        }
    }
}

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

// check and train read a model's training block alike: each defect in it is refused by both
// with the same message, before any data is read (the corpus's data paths do not exist, so
// a train that read data would say something else). The check runs once for both tests.
BOOST_AUTO_TEST_CASE(models_are_refused_by_check_and_training_blocks_alike_by_train) {
    int compared = 0;
    auto train_alike = [&](const fs::path& file, const Outcome& check) {
        if (!file.filename().string().starts_with("training_")) return;
        Outcome train = run_cli({"train", file.string(), "--no-progress"});
        BOOST_TEST(train.code == 2, "exit code " << train.code << "; stderr: " << train.err.substr(0, 400));
        BOOST_TEST(train.err == check.err);
        ++compared;
    };
    check_kind("models", 60, [](const std::string& f) { return std::vector<std::string>{"check", f}; }, train_alike);
    BOOST_TEST(compared >= 15);
}

BOOST_AUTO_TEST_CASE(feeds_are_refused_by_grad) {
    std::string model = source_root() + "/models/worked_example.json";
    check_kind("feeds", 15,
               [&](const std::string& f) { return std::vector<std::string>{"grad", model, "--feed", f}; });
}

BOOST_AUTO_TEST_CASE(csv_files_are_refused_by_data) {
    check_kind("csv", 15, [](const std::string& f) { return std::vector<std::string>{"data", f}; });
}

BOOST_AUTO_TEST_CASE(idx_files_are_refused_by_data) {
    check_kind("idx", 20, [](const std::string& f) { return std::vector<std::string>{"data", f}; });
}

BOOST_AUTO_TEST_CASE(checkpoints_are_refused_by_eval) {
    std::string model = source_root() + "/models/iris_neuron.json";
    check_kind("checkpoints", 30,
               [&](const std::string& f) { return std::vector<std::string>{"eval", model, "--weights", f}; });
}

// The harness itself: a good model passes (exit 0), so exit 2 above is not an accident
// of how the command is run.
BOOST_AUTO_TEST_CASE(a_good_model_passes_check) {
    Outcome o = run_cli({"check", source_root() + "/models/worked_example.json"});
    BOOST_TEST(o.exited);
    BOOST_TEST(o.code == 0, "stderr: " << o.err);
    o = run_cli({"data", source_root() + "/data/iris.data"});
    BOOST_TEST(o.code == 0, "stderr: " << o.err);
}
