// Input files that are not what they seem: a FIFO, a device, a folder, a symlink loop or an
// over-long name where a model, feed, checkpoint or data file belongs. Each is refused
// with exit 2 and a message naming it, at once: never a blocked open(), a read until
// memory runs out, or an "internal error".
#define BOOST_TEST_MODULE files
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "data/idx.hpp"
#include "tests/testing.hpp"

extern char** environ;

using namespace chainrule;
namespace fs = std::filesystem;
using chainrule::testing::build_root;
using chainrule::testing::source_root;

namespace {

// A folder of odd files, made afresh by each test in the scratch folder: a FIFO, a folder, a
// symlink loop, a name longer than PATH_MAX.
struct OddFiles {
    fs::path dir = testing::scratch() / "odd";
    std::string fifo, folder, loop, long_name;
    OddFiles() {
        fs::remove_all(dir);
        fs::create_directories(dir / "folder");
        fifo = (dir / "fifo").string();
        BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
        folder = (dir / "folder").string();
        loop = (dir / "loop_a").string();
        fs::create_symlink(dir / "loop_b", dir / "loop_a");
        fs::create_symlink(dir / "loop_a", dir / "loop_b");
        long_name = (dir / std::string(5000, 'a')).string();
    }
    std::string write(const fs::path& name, const std::string& bytes) const {
        std::ofstream(dir / name, std::ios::binary) << bytes;
        return (dir / name).string();
    }
};

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no InputError)";
}

struct Outcome {
    int code = -1;    // exit code, -1 when killed
    int signal = 0;
    std::string err;
    double seconds = 0;
};

// The CLI with stdout discarded and stderr captured; killed after `limit` seconds, so a
// blocked open() fails the test instead of hanging it.
Outcome run_cli(const std::vector<std::string>& args, int limit = 10) {
    std::vector<std::string> argv{build_root() + "/cli/chainrule"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    fs::path err_file = testing::scratch() / "stderr";
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
        if (::waitpid(pid, &status, WNOHANG) == pid) break;
        if (std::chrono::steady_clock::now() - start > std::chrono::seconds(limit)) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            break;
        }
        ::usleep(2000);
    }
    Outcome o;
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    o.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    std::ifstream in(err_file);
    std::ostringstream ss;
    ss << in.rdbuf();
    o.err = ss.str();
    fs::remove(err_file);
    return o;
}

void refused(const std::vector<std::string>& args, const std::string& fragment) {
    BOOST_TEST_CONTEXT(args[0] << " ... " << args.back().substr(0, 80)) {
        Outcome o = run_cli(args);
        BOOST_TEST(o.signal == 0, "killed by signal " << o.signal << " after " << o.seconds << " s");
        BOOST_TEST(o.code == 2, "exit code " << o.code << "; stderr: " << o.err.substr(0, 300));
        BOOST_TEST(o.err.find(fragment) != std::string::npos, "stderr lacks '" << fragment << "': " << o.err.substr(0, 300));
        BOOST_TEST(o.err.find("internal error") == std::string::npos);
        BOOST_TEST(o.seconds < 5.0, "took " << o.seconds << " s");
    }
}

std::string model() { return source_root() + "/models/worked_example.json"; }
std::string iris_model() { return source_root() + "/models/iris_neuron.json"; }

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(the_reader_refuses_what_is_not_a_regular_file) {
    OddFiles f;
    CHECK_HAS(error_of([&] { read_text_file(f.fifo); }), f.fifo + ": is not a regular file (a FIFO); expected a file");
    CHECK_HAS(error_of([&] { read_text_file(f.folder); }), f.folder + ": is a directory; expected a file");
    CHECK_HAS(error_of([&] { read_text_file("/dev/zero"); }), "/dev/zero: is not a regular file (a character device)");
    CHECK_HAS(error_of([&] { read_text_file(f.loop); }), f.loop + ": cannot open: Too many levels of symbolic links");
    CHECK_HAS(error_of([&] { read_text_file(f.long_name); }), f.long_name + ": cannot open: File name too long");
    CHECK_HAS(error_of([&] { data::read_idx(f.fifo); }), f.fifo + ": is not a regular file (a FIFO)");
    CHECK_HAS(error_of([&] { data::read_idx(f.folder); }), f.folder + ": is a directory");
}

BOOST_AUTO_TEST_CASE(a_socket_is_named_as_one) {
    OddFiles f;
    const std::string path = (f.dir / "sock").string();
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    BOOST_TEST_REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    BOOST_TEST_REQUIRE(path.size() < sizeof addr.sun_path);
    std::copy(path.begin(), path.end(), addr.sun_path);
    BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    // open() of a socket fails (ENXIO); the message says what the path is, not that.
    const std::string msg = error_of([&] { read_text_file(path); });
    ::close(fd);
    CHECK_HAS(msg, path + ": is not a regular file (a socket); expected a file");
}

// The cap holds on the bytes read, not on the size a file claims: /proc files say 0.
BOOST_AUTO_TEST_CASE(the_cap_counts_bytes_read) {
    OddFiles f;
    std::string ten = f.write("ten", "0123456789");
    BOOST_TEST(read_file_capped(ten, 10, "test cap") == "0123456789");
    CHECK_HAS(error_of([&] { read_file_capped(ten, 9, "test cap"); }), ten + ": file is 10 bytes, more than the test cap");
    std::string status = read_file_capped("/proc/self/status", 1 << 20, "test cap");
    BOOST_TEST(status.find("Name:") != std::string::npos);
    CHECK_HAS(error_of([&] { read_file_capped("/proc/self/status", 16, "test cap"); }),
              "/proc/self/status: more than 16 bytes, more than the test cap");
}

BOOST_AUTO_TEST_CASE(a_fifo_anywhere_a_file_belongs) {
    OddFiles f;
    const std::string what = f.fifo + ": is not a regular file (a FIFO); expected a file";
    refused({"check", f.fifo}, what);
    refused({"grad", model(), "--feed", f.fifo}, what);
    refused({"eval", iris_model(), "--weights", f.fifo}, what);
    refused({"train", iris_model(), "--resume", f.fifo, "--epochs", "1"}, what);
    refused({"data", f.fifo}, what);
    // training.data.path of a model: the CSV reader opens it.
    std::string m = f.write("fifo_data.json", R"({"format":"chainrule-model","version":1,
      "inputs":{"x":{"shape":["N",1]}},"nodes":[{"name":"L","op":"mse","inputs":["x","x"]}],
      "outputs":{"loss":"L"},
      "training":{"data":{"kind":"csv","path":"fifo","features":[0],"label":1},"feed":{"x":"features"}}})");
    refused({"data", m}, what);
    refused({"train", m, "--epochs", "1"}, what);
}

BOOST_AUTO_TEST_CASE(a_device_is_not_read_until_memory_runs_out) {
    const std::string what = "/dev/zero: is not a regular file (a character device); expected a file";
    refused({"check", "/dev/zero"}, what);
    refused({"grad", model(), "--feed", "/dev/zero"}, what);
    refused({"eval", iris_model(), "--weights", "/dev/zero"}, what);
    refused({"data", "/dev/zero"}, what);
}

BOOST_AUTO_TEST_CASE(a_folder_says_it_is_one) {
    OddFiles f;
    const std::string what = f.folder + ": is a directory; expected a file";
    refused({"check", f.folder}, what);
    refused({"grad", model(), "--feed", f.folder}, what);
}

BOOST_AUTO_TEST_CASE(a_symlink_loop_or_a_long_name_is_bad_input) {
    OddFiles f;
    for (const std::string& p : {f.loop, f.long_name}) {
        const std::string why = p == f.loop ? "Too many levels of symbolic links" : "File name too long";
        refused({"check", p}, p + ": cannot open: " + why);
        refused({"grad", model(), "--feed", p}, p + ": cannot open: " + why);
        refused({"data", p}, p + ": cannot open: " + why);
        // The checkpoint path is looked at (is it a folder?) before it is read.
        refused({"eval", iris_model(), "--weights", p}, p + ": " + why);
        refused({"train", iris_model(), "--resume", p, "--epochs", "1"}, p + ": " + why);
    }
}

// nlohmann's lexer takes NUL for the end of the input: without the check, text after it
// was ignored and the part before it accepted.
BOOST_AUTO_TEST_CASE(a_nul_byte_is_refused_at_its_place) {
    using namespace std::string_literals;
    CHECK_HAS(error_of([] { parse_json_text("{\"a\": 1}\n\0{\"b\": 2}"s, "f.json"); }),
              "f.json:2:1: NUL byte (is this a binary or UTF-16 file?); JSON text has none");
    CHECK_HAS(error_of([] { parse_json_text("{\"a\": \"x\0y\"}"s, "f.json"); }), "f.json:1:9: NUL byte");
    // UTF-16 text is mostly NUL bytes: the first one is named.
    CHECK_HAS(error_of([] { parse_json_text("{\0\"\0a\0\"\0"s, "f.json"); }), "f.json:1:2: NUL byte");
    BOOST_TEST(parse_json_text("{\"a\": \"x\\u0000y\"}", "f.json")["a"].get<std::string>().size() == 3u);
}

// The parser names the literal of an out-of-range number, not its place; the place is the
// first time that text stands as a number, not inside a string before it.
BOOST_AUTO_TEST_CASE(an_out_of_range_number_is_reported_where_it_is) {
    CHECK_HAS(error_of([] { parse_json_text("{\"doc\": \"1e999 is too big\",\n \"v\": 1e999}", "f.json"); }),
              "f.json:2:7: number 1e999 is out of range for a double");
    CHECK_HAS(error_of([] { parse_json_text("{\"1e999\": [1, 21, \"\\\"1e999\",\n 1e999]}", "f.json"); }),
              "f.json:2:2: number 1e999 is out of range for a double");
    CHECK_HAS(error_of([] { parse_json_text("[-1e400]", "f.json"); }), "f.json:1:2: number -1e400 is out of range");
}

// Inside an idx folder the four names are looked up as they are: a FIFO or a folder by
// one of those names is named for what it is, not reported missing or waited on.
BOOST_AUTO_TEST_CASE(odd_files_inside_an_idx_folder) {
    OddFiles f;
    fs::path dir = f.dir / "mnist";
    fs::create_directories(dir);
    for (const char* name : {data::kTrainLabels, data::kTestImages, data::kTestLabels}) f.write(fs::path("mnist") / name, "");
    const std::string fifo = (dir / "train-images-idx3-ubyte.gz").string();
    BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    refused({"data", dir.string()}, fifo + ": is not a regular file (a FIFO)");
    fs::remove(fifo);
    fs::create_symlink(dir / "train-images-idx3-ubyte", dir / "train-images-idx3-ubyte");
    refused({"data", dir.string()}, (dir / "train-images-idx3-ubyte").string() + ": cannot open: Too many levels");
}

// "chainrule data data/mnist" before the data is fetched names the script that fetches it,
// as train's message does, both when the folder is missing and when it is empty.
BOOST_AUTO_TEST_CASE(missing_mnist_names_the_script_that_fetches_it) {
    OddFiles f;
    const std::string dir = (f.dir / "mnist").string();
    refused({"data", dir}, dir + ": no such file or folder; expected an IDX file (raw or .gz), a folder of the four "
                                 "MNIST files, a CSV file or a model JSON (scripts/get-mnist fetches MNIST into "
                                 "data/mnist)");
    fs::create_directories(dir);
    refused({"data", dir}, "missing train-images-idx3-ubyte (or train-images-idx3-ubyte.gz)");
    refused({"data", dir}, "scripts/get-mnist fetches MNIST");
    // A missing CSV file is not sent to get-mnist.
    Outcome o = run_cli({"data", (f.dir / "iris.csv").string()});
    BOOST_TEST(o.code == 2);
    BOOST_TEST(o.err.find("no such file or folder") != std::string::npos, o.err);
    BOOST_TEST(o.err.find("get-mnist") == std::string::npos, o.err);
}
