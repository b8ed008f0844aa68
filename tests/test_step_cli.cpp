// `chainrule step` and `chainrule dot`, run as the built binary.
#define BOOST_TEST_MODULE step_cli
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <filesystem>
#include <csignal>
#include <poll.h>
#include <fstream>
#include <set>
#include <spawn.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core/json.hpp"
#include "format/model_json.hpp"
#include "render/dot.hpp"
#include "testing.hpp"

extern char** environ;

using namespace chainrule;
namespace fs = std::filesystem;

namespace {

struct Result {
    int code = -1;
    std::string out, err;
};

std::string read_all(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

std::string model(const std::string& name) { return testing::source_root() + "/models/" + name; }

// Runs chainrule with `args`, `input` as stdin (a file, so never a terminal) and, when
// `path` is given, PATH set to it.
Result run(std::vector<std::string> args, const std::string& input = "", const char* path = nullptr) {
    const fs::path base = testing::scratch() / "run";
    fs::path in = base.string() + ".in", out = base.string() + ".out", err = base.string() + ".err";
    std::ofstream(in, std::ios::binary) << input;

    args.insert(args.begin(), testing::build_root() + "/cli/chainrule");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
        if (!path || std::string(*e).rfind("PATH=", 0) != 0) env_strings.emplace_back(*e);
    if (path) env_strings.push_back(std::string("PATH=") + path);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    BOOST_REQUIRE_MESSAGE(rc == 0, "cannot start " << args[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_all(out);
    r.err = read_all(err);
    for (const auto& p : {in, out, err}) fs::remove(p);
    return r;
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(interactive_mode_reads_a_stdin_script) {
    Result r = run({"step", model("worked_example.json"), "--interactive"}, "\np yhat\nb a\nc\np w\nq\n");
    BOOST_TEST(r.code == 0);
    BOOST_TEST(r.err == "");
    const std::string& o = r.out;
    auto at = [&](const std::string& s) { return o.find(s); };
    BOOST_TEST(has(o, "(step 1/4) \nstep 1/4: L = mse(yhat, y)"));
    BOOST_TEST(at("step 1/4: L") < at("(step 2/4) p yhat"));
    BOOST_TEST(at("(step 2/4) p yhat") < at("yhat (op sigmoid) [3,1]"));
    BOOST_TEST(has(o, "0.753989"));  // σ(1.12)
    BOOST_TEST(at("(step 2/4) b a") < at("step 2/4: yhat = sigmoid(a)"));
    BOOST_TEST(at("step 2/4: yhat") < at("step 3/4: a = add(z, b)"));
    BOOST_TEST(at("step 3/4: a") < at("(step 4/4) c"));
    BOOST_TEST(at("(step 4/4) c") < at("step 4/4: z = matmul(x, w)"));
    BOOST_TEST(at("step 4/4: z") < at("backward done after 4 steps"));
    BOOST_TEST(at("(done) p w") < at("w (parameter) [4,1]"));
    BOOST_TEST(has(o, "(done) q"));
}

// On a terminal the session prompts without being asked to: stdin and stdout are a pty here.
BOOST_AUTO_TEST_CASE(a_terminal_gets_the_interactive_session) {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY);
    BOOST_REQUIRE(master >= 0);
    BOOST_REQUIRE(::grantpt(master) == 0 && ::unlockpt(master) == 0);
    std::string slave = ::ptsname(master);
    std::string exe = testing::build_root() + "/cli/chainrule", m = model("worked_example.json");
    std::vector<char*> argv{exe.data(), const_cast<char*>("step"), m.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    for (int fd : {0, 1, 2}) posix_spawn_file_actions_addopen(&actions, fd, slave.c_str(), O_RDWR | O_NOCTTY, 0);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    BOOST_REQUIRE(rc == 0);
    // The terminal buffers the lines until the session reads them.
    std::string script = "\nb a\np w\nq\n";
    BOOST_REQUIRE(::write(master, script.data(), script.size()) == ssize_t(script.size()));
    std::string out;
    char buf[4096];
    for (int idle = 0; idle < 100;) {  // up to 10 s without output
        pollfd p{master, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) {
            ++idle;
            continue;
        }
        ssize_t n = ::read(master, buf, sizeof buf);
        if (n <= 0) break;  // EIO: the session ended and closed the terminal
        out.append(buf, std::size_t(n));
        idle = 0;
    }
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 500 && done == 0; ++i, ::usleep(10000)) done = ::waitpid(pid, &status, WNOHANG);
    if (done == 0) {  // still waiting for input: a failure, not a hang
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
    ::close(master);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
    BOOST_TEST(has(out, "(step 1/4) "));
    BOOST_TEST(has(out, "step 3/4: a = add(z, b)"));
    BOOST_TEST(!has(out, "step 4/4:"));
    BOOST_TEST(has(out, "w (parameter) [4,1]"));
    BOOST_TEST(has(out, "(not reached yet: complete after step 4, z)"));
}

// A session on a terminal, typed line by line: each line is written when the session has
// shown `wait_for` (its prompt), so what is typed is read by the line editor, key by key.
struct Typed {
    std::string line, wait_for;
};
std::string terminal_session(const std::vector<Typed>& typed) {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY);
    BOOST_REQUIRE(master >= 0);
    BOOST_REQUIRE(::grantpt(master) == 0 && ::unlockpt(master) == 0);
    std::string slave = ::ptsname(master);
    const int slave_fd = ::open(slave.c_str(), O_RDWR | O_NOCTTY);  // to read the terminal's mode
    BOOST_REQUIRE(slave_fd >= 0);
    std::string exe = testing::build_root() + "/cli/chainrule", m = model("worked_example.json");
    std::vector<char*> argv{exe.data(), const_cast<char*>("step"), m.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    for (int fd : {0, 1, 2}) posix_spawn_file_actions_addopen(&actions, fd, slave.c_str(), O_RDWR | O_NOCTTY, 0);
    pid_t pid = -1;
    BOOST_REQUIRE(::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    std::string out;
    char buf[4096];
    auto read_until = [&](const std::string& what, std::size_t from) {
        for (int idle = 0; idle < 100 && out.find(what, from) == std::string::npos;) {  // up to 10 s of silence
            pollfd p{master, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) {
                ++idle;
                continue;
            }
            ssize_t n = ::read(master, buf, sizeof buf);
            if (n <= 0) break;
            out.append(buf, std::size_t(n));
        }
    };
    for (const Typed& t : typed) {
        std::size_t from = out.size();
        read_until(t.wait_for, 0);
        BOOST_TEST(out.find(t.wait_for, 0) != std::string::npos, "waited for '" << t.wait_for << "' after " << from);
        // The prompt can be on the screen before the line editor has put the terminal in raw
        // mode: keys typed then go through the terminal's own line editing (a busy machine
        // makes that likely). Type once the terminal no longer edits lines itself.
        termios mode{};
        for (int i = 0; i < 500 && ::tcgetattr(slave_fd, &mode) == 0 && (mode.c_lflag & ICANON); ++i) ::usleep(10000);
        BOOST_TEST(!(mode.c_lflag & ICANON), "the terminal is still in line mode after 5 s");
        BOOST_REQUIRE(::write(master, t.line.data(), t.line.size()) == ssize_t(t.line.size()));
    }
    read_until("\x04never", out.size());  // to the end of the session
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 500 && done == 0; ++i, ::usleep(10000)) done = ::waitpid(pid, &status, WNOHANG);
    if (done == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
    ::close(slave_fd);
    ::close(master);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    return out;
}

// Up recalls the line typed before; Left, Right and Backspace edit the line (editline).
BOOST_AUTO_TEST_CASE(a_terminal_edits_lines_and_recalls_them) {
    std::string out = terminal_session({{"n\r", "(step 1/4) "},
                                        {"\x1b[A\r", "(step 2/4) "},           // Up: n again
                                        {"p yhx\x1b[Dat\x1b[C\x7f\r", "(step 3/4) "},  // p yh|x → p yhat|x → p yhat
                                        {"\x1b[A\x1b[A\r", "(so far)"},         // Up twice: n
                                        {"q\r", "(step 4/4) "}});
    BOOST_TEST(has(out, "step 2/4: yhat = sigmoid(a)"), out);
    BOOST_TEST(has(out, "yhat (op sigmoid) [3,1]"), out);
    BOOST_TEST(has(out, "step 3/4: a = add(z, b)"), out);
    BOOST_TEST(!has(out, "step 4/4:"), out);
    BOOST_TEST(!has(out, "unknown command"), out);
    BOOST_TEST(!has(out, "no node"), out);
}

// One grammar: a command word alone is the command, a node name alone prints the node, a
// command on a node acts on it (b b: until dL/db is complete).
BOOST_AUTO_TEST_CASE(repl_grammar_b_b_and_bare_names) {
    Result r = run({"step", model("worked_example.json"), "--interactive"},
                   "explain b[0]\nb b\nb\nyhat\nuntil b\np\nc x\nexplain b[0]\n\x1b[A\nhelp\nq\n");
    BOOST_TEST(r.code == 0);
    const std::string& o = r.out;
    BOOST_TEST(has(o, "(step 1/4) explain b[0]\nexplain b[0]: dL/db is complete after step 3 (a); `until a` or `c` "
                      "first\n"), o);
    // b b runs steps 1 to 3: a = add(z, b) sends dL/db.
    BOOST_TEST(has(o, "(step 1/4) b b\nstep 1/4: L"), o);
    BOOST_TEST(has(o, "step 3/4: a = add(z, b)"), o);
    BOOST_TEST(has(o, "(step 4/4) b\nb (parameter) [1]\n"), o);
    BOOST_TEST(has(o, "(step 4/4) yhat\nyhat (op sigmoid) [3,1]\n"), o);
    BOOST_TEST(has(o, "(step 4/4) until b\ndL/db is already complete (after step 3, a)\n"), o);
    BOOST_TEST(has(o, "(step 4/4) p\np needs a node name, e.g. p L\n"), o);
    BOOST_TEST(has(o, "(step 4/4) c x\nc takes nothing after it\n"), o);
    BOOST_TEST(has(o, "(step 4/4) explain b[0]\ndL/db[0] = Σ_j"), o);
    BOOST_TEST(!has(o, "step 4/4: z"), o);
    // An arrow key read from a pipe is shown as its code, never sent back to the terminal.
    BOOST_TEST(has(o, "(step 4/4) ^[[A\nunknown command '^[[A': a key's code (an arrow key?)"), o);
    BOOST_TEST(o.find('\x1b') == std::string::npos);
    BOOST_TEST(has(o, "  p NAME, or NAME     print a node's value"), o);
    BOOST_TEST(has(o, "A word alone that is a command (n, c, u, l, q) is that command even when a node has its name"), o);
}

BOOST_AUTO_TEST_CASE(repl_commands_win_alone_nodes_win_after_a_command) {
    // Nodes named like commands: c, n and p.
    fs::path m = testing::scratch() / "names.json";
    std::ofstream(m) << R"({"format": "chainrule-model", "version": 1, "name": "names", "dtype": "float64",
        "parameters": {"p": {"shape": [2], "init": {"constant": 0.5}}, "n": {"shape": [2], "init": {"constant": 2}}},
        "nodes": [{"name": "c", "op": "mul", "inputs": ["p", "n"]}, {"name": "L", "op": "sum", "inputs": ["c"]}],
        "outputs": {"loss": "L"}})";
    Result r = run({"step", m.string(), "--interactive"}, "p\np c\nb n\nn\nc\np p\nq\n");
    fs::remove(m);
    BOOST_TEST(r.code == 0, r.err);
    const std::string& o = r.out;
    BOOST_TEST(has(o, "(step 1/2) p\np (parameter) [2]\n"), o);        // p alone: the node p
    BOOST_TEST(has(o, "(step 1/2) p c\nc (op mul) [2]\n"), o);          // p on the node c
    BOOST_TEST(has(o, "(step 1/2) b n\nstep 1/2: L"), o);              // until dL/dn is complete
    BOOST_TEST(has(o, "(done) n\nthe walk is done"), o);               // n alone: next
    BOOST_TEST(has(o, "(done) c\nthe walk is done"), o);               // c alone: continue
    BOOST_TEST(has(o, "  dL/dp        [2, 2]"), o);
}

BOOST_AUTO_TEST_CASE(q_stops_the_walk) {
    Result r = run({"step", model("worked_example.json"), "--interactive"}, "\nq\n\n\n");
    BOOST_TEST(r.code == 0);
    BOOST_TEST(has(r.out, "step 1/4:"));
    BOOST_TEST(!has(r.out, "step 2/4:"));
    BOOST_TEST(!has(r.out, "backward done"));
}

BOOST_AUTO_TEST_CASE(without_a_terminal_every_step_is_printed) {
    // Commands on stdin are not read without --interactive.
    Result r = run({"step", model("worked_example.json")}, "q\n");
    BOOST_TEST(r.code == 0);
    for (const char* s : {"step 1/4: L", "step 2/4: yhat", "step 3/4: a", "step 4/4: z", "backward done after 4 steps"})
        BOOST_TEST(has(r.out, s), s);
    BOOST_TEST(!has(r.out, "(step "));
    Result all = run({"step", model("worked_example.json"), "--all"});
    BOOST_TEST(all.out == r.out);
}

BOOST_AUTO_TEST_CASE(large_tensors_are_summarised) {
    Result r = run({"step", model("slides_mnist.json"), "--until", "S"});
    BOOST_TEST(r.code == 0);
    BOOST_TEST(has(r.out, "shape [3,10]  min "));
    BOOST_TEST(has(r.out, "norm "));
    BOOST_TEST(has(r.out, "(1) ∂L/∂S = (S − t)/N"));
    BOOST_TEST(has(r.out, "(2) ∂L/∂y2 = normalize's Jacobian"));
    BOOST_TEST(has(r.out, "(local: ∂S/∂y2)"));
    BOOST_TEST(has(r.out, "relative difference"));
    BOOST_TEST(has(r.out, "stopped after step 2/8 (S)"));
    BOOST_TEST(!has(r.out, "step 3/8"));
}

BOOST_AUTO_TEST_CASE(json_trace_has_one_entry_per_op_node_in_reverse_topological_order) {
    Result r = run({"step", model("slides_mnist.json"), "--json"});
    BOOST_TEST(r.code == 0);
    Json j = parse_json_text(r.out, "step --json");
    for (const char* k : {"model", "loss", "loss_node", "nodes", "order", "complete", "steps"})
        BOOST_TEST(j.contains(k), k);
    BOOST_TEST(j["complete"] == true);

    Model m = load_model(model("slides_mnist.json"));
    std::set<std::string> op_nodes;
    for (const Node& n : m.graph.nodes())
        if (n.kind == NodeKind::op) op_nodes.insert(n.name);

    const Json& steps = j["steps"];
    BOOST_REQUIRE(steps.size() == op_nodes.size());
    std::map<std::string, std::size_t> index;
    std::vector<int> labels;
    for (std::size_t k = 0; k < steps.size(); ++k) {
        const Json& s = steps[k];
        for (const char* f : {"index", "node", "op", "formula", "inputs", "grad_out", "labels", "contributions"})
            BOOST_REQUIRE_MESSAGE(s.contains(f), "step " << k << " has " << f);
        BOOST_TEST(s["index"] == k);
        BOOST_TEST(j["order"][k] == s["node"]);
        index[s["node"]] = k;
        BOOST_TEST(s["contributions"].size() == s["inputs"].size());
        for (const Json& c : s["contributions"])
            for (const char* f : {"input", "slot", "label", "contribution", "grad", "first"})
                BOOST_TEST(c.contains(f), f);
        for (const Json& l : s["labels"]) labels.push_back(l["number"].get<int>());
    }
    BOOST_TEST(index.size() == op_nodes.size());
    // Reverse topological: a node's step comes after the steps of every op node it feeds.
    for (const Json& s : steps)
        for (const Json& in : s["inputs"])
            if (index.count(in.get<std::string>()))
                BOOST_TEST(index[in.get<std::string>()] > index[s["node"].get<std::string>()],
                           in << " after " << s["node"]);
    BOOST_TEST(labels == (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}), boost::test_tools::per_element());
    BOOST_TEST(steps[0]["node"] == "L");
    BOOST_TEST(steps[0]["grad_out"] == 1.0);

    // The step at S shows the lecture's value (dL/dS passed through) beside the exact one.
    const Json& gap = steps[1]["contributions"][0]["lecture_gap"];
    BOOST_TEST(gap["lecture"] == steps[1]["grad_out"]);
    BOOST_TEST(gap["exact"] == steps[1]["contributions"][0]["contribution"]);
    BOOST_TEST(gap["relative_diff"].get<double>() ==
                   gap["norm_diff"].get<double>() / gap["norm_exact"].get<double>(),
               boost::test_tools::tolerance(1e-12));

    // The value/grad part is `grad --json`'s, number for number (round-trip precision).
    Result g = run({"grad", model("slides_mnist.json"), "--json"});
    BOOST_REQUIRE(g.code == 0);
    Json gj = parse_json_text(g.out, "grad --json");
    BOOST_TEST(j["loss"] == gj["loss"]);
    BOOST_TEST(j["nodes"].size() == m.graph.size());
    for (const Node& n : m.graph.nodes()) {
        const Json& a = j["nodes"][n.name];
        for (const char* f : {"op", "shape", "value", "grad"}) BOOST_TEST(a.contains(f), n.name << "." << f);
        BOOST_TEST(a == gj["nodes"][n.name], n.name);
    }
    // The last contribution to W1 is its final gradient.
    BOOST_TEST(steps.back()["contributions"][1]["grad"] == j["nodes"]["W1"]["grad"]);
}

BOOST_AUTO_TEST_CASE(json_trace_until_a_node_is_partial) {
    Result r = run({"step", model("slides_mnist.json"), "--json", "--until", "y2"});
    BOOST_TEST(r.code == 0);
    Json j = parse_json_text(r.out, "step --json");
    BOOST_TEST(j["complete"] == false);
    BOOST_TEST(j["steps"].size() == 3u);
    BOOST_TEST(j["nodes"]["W1"]["grad"].is_null());  // not reached yet
    BOOST_TEST(j["nodes"]["a2"]["grad"].is_array());
}

BOOST_AUTO_TEST_CASE(until_an_unknown_node_exits_2_with_a_hint) {
    Result r = run({"step", model("slides_mnist.json"), "--until", "y1w2"});
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.out == "");
    BOOST_TEST(has(r.err, "--until: model 'slides_mnist' has no node 'y1w2' (did you mean 'y1W2'?)"));
    BOOST_TEST(has(r.err, "the steps are: L, S, y2, a2, y1W2, y1, a1, xW1"));

    // A parameter: until its gradient is complete (after xW1's step, the last); a constant
    // gets none.
    Result p = run({"step", model("slides_mnist.json"), "--until", "b2"});
    BOOST_TEST(p.code == 0, p.err);
    BOOST_TEST(has(p.out, "step 4/8: a2 = add(y1W2, b2)"), p.out);
    BOOST_TEST(!has(p.out, "step 5/8:"), p.out);
    BOOST_TEST(has(p.out, "stopped after step 4/8 (b2)"), p.out);

    Result both = run({"step", model("worked_example.json"), "--json", "--interactive"});
    BOOST_TEST(both.code == 2);
}

BOOST_AUTO_TEST_CASE(dot_shows_small_values_and_gradients) {
    Result r = run({"dot", model("worked_example.json"), "--grads"});
    BOOST_TEST(r.code == 0);
    BOOST_TEST(r.out.rfind("digraph chainrule {", 0) == 0);
    BOOST_TEST(has(r.out, "∂L/∂b = [0.07755]"));  // Σ δ over the three rows
    BOOST_TEST(has(r.out, "input  [N,4] = [3,4]"));
    BOOST_TEST(!has(r.out, "5.1"));  // x has 12 elements: too many to show
    Result plain = run({"dot", model("worked_example.json")});
    BOOST_TEST(!has(plain.out, "∂L/∂"));

    Result bad = run({"dot", model("no_such_model.json")});
    BOOST_TEST(bad.code == 2);
}

BOOST_AUTO_TEST_CASE(dot_renders_svg_with_graphviz) {
    fs::path svg = testing::scratch() / "step.svg";
    Result none = run({"dot", model("slides_mnist.json"), "--svg", svg.string()}, "", "");
    BOOST_TEST(none.code == 1);
    BOOST_TEST(has(none.err, "apt-get install graphviz"));
    BOOST_TEST(!fs::exists(svg));

    if (find_program("dot").empty()) {
        BOOST_TEST_MESSAGE("graphviz is not installed: rendering not checked");
        return;
    }
    Result r = run({"dot", model("slides_mnist.json"), "--grads", "--svg", svg.string()});
    BOOST_TEST(r.code == 0);
    std::string text = read_all(svg);
    fs::remove(svg);
    BOOST_TEST(has(text, "<svg"));
    BOOST_TEST(has(text, "normalize"));
}

// ---- stepping that teaches: local derivatives, named formulas, explain, back, l, full ----

namespace {

std::size_t columns(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(steps_show_the_local_derivative_and_the_product) {
    Result r = run({"step", model("worked_example.json"), "--all"});
    BOOST_TEST(r.code == 0);
    const std::string& o = r.out;
    // sigmoid: y′(1 − y′) = [0.1855, 0.1920, 0.1930], then upstream ⊙ local.
    BOOST_TEST(has(o, "formula      yhat = 1/(1+exp(-a));  dL/da = dL/dyhat · yhat(1−yhat)"), o);
    BOOST_TEST(has(o, "local      ∂yhat/∂a = yhat(1−yhat)\n               [[0.18549], [0.192027], [0.192951]]"), o);
    BOOST_TEST(has(o, "product    dL/da = dL/dyhat ⊙ ∂yhat/∂a   (upstream ⊙ local)"), o);
    // mse in the model's names, right above the model's own y (the target).
    BOOST_TEST(has(o, "dL/dyhat = (yhat−y)/N,  dL/dy = −(yhat−y)/N"), o);
    // matmul: which product gives dL/dw, with shapes.
    BOOST_TEST(has(o, "rule       dL/dw = xᵀ·dL/dz   shapes [4,1] = [4,3]·[3,1]"), o);
    BOOST_TEST(has(o, "rule       dL/dx = dL/dz·wᵀ   shapes [3,4] = [3,1]·[1,4]"), o);
}

BOOST_AUTO_TEST_CASE(repl_back_list_full_explain_and_done) {
    Result r = run({"step", model("worked_example.json"), "--interactive"},
                   "n\nn\nback\nexplain w[0]\nn\nl\nc\nexplain w[0]\nexplain w[7]\nexplain v[0]\nexplain w\nn\nfull x\nq\n");
    BOOST_TEST(r.code == 0);
    BOOST_TEST(r.err == "");
    const std::string& o = r.out;
    auto at = [&](const std::string& s) { return o.find(s); };
    // back undoes step 2, n runs it again.
    BOOST_TEST(has(o, "(step 3/4) back\nundid step 2/4 (yhat); Enter runs it again\n(step 2/4) "), o);
    BOOST_TEST(at("undid step 2/4") < o.find("step 2/4: yhat = sigmoid(a)", at("undid step 2/4")));
    BOOST_TEST(has(o, "explain w[0]: dL/dw is complete after step 4 (z); `until z` or `c` first"), o);
    // l lists every node, op nodes with their formula in the model's names.
    BOOST_TEST(has(o, "  z     matmul(x, w)   [3,1]\n        z = x·w;  dL/dx = dL/dz·wᵀ,  dL/dw = xᵀ·dL/dz\n"), o);
    BOOST_TEST(has(o, "  w     parameter      [4,1]\n"), o);
    // explain after the walk: the lecture's sum, its terms and the total.
    BOOST_TEST(has(o, "(done) explain w[0]\ndL/dw[0,0] = Σ_j dL/dyhat[j] · ∂yhat/∂a[j] · ∂a/∂z[j] · ∂z[j]/∂w[0,0]"), o);
    BOOST_TEST(has(o, "= Σ_j (yhat−y)/N · yhat(1−yhat) · ∂z[j]/∂w[0,0]\n"), o);
    BOOST_TEST(has(o, "  [1,0]  -0.0864084  0.192027  1      4.9            -0.0813046\n"), o);
    BOOST_TEST(has(o, "Σ terms = 0.379799; dL/dw[0,0] from the backward pass = 0.379799"), o);
    BOOST_TEST(has(o, "explain 'w[7]': index 7 is out of range: w has 4 entries (shape [4,1]), 0 to 3"), o);
    BOOST_TEST(has(o, "explain 'v[0]': model 'worked_example' has no node 'v'"), o);
    BOOST_TEST(has(o, "explain needs one entry of a tensor, e.g. explain w[0]; got 'w'"), o);
    // n at the end says the walk is done instead of ending silently.
    BOOST_TEST(has(o, "(done) n\nthe walk is done: all 4 steps ran"), o);
    BOOST_TEST(has(o, "(done) full x\nx (input) [3,4]\n"), o);
    BOOST_TEST(has(o, "(done) q"), o);
}

// A 784-wide row printed in full wraps between numbers, never inside one.
BOOST_AUTO_TEST_CASE(full_print_wraps_at_number_boundaries) {
    Result r = run({"step", model("slides_mnist.json"), "--interactive"}, "full x\nq\n");
    BOOST_TEST(r.code == 0);
    std::size_t from = r.out.find("x (input) [3,784]"), to = r.out.find("dL/dx", from);
    BOOST_REQUIRE(from != std::string::npos);
    std::string block = r.out.substr(from, to - from);
    std::istringstream lines(block);
    std::string line;
    std::size_t numbers = 0;
    while (std::getline(lines, line)) {
        BOOST_TEST(columns(line) <= 100u, line);
        // Every line ends after a whole number and its comma, or with the closing brackets.
        if (line.find_first_not_of(' ') == std::string::npos) continue;
        if (line.find('[') != 0 && line.find("value") == std::string::npos && line.find("(input)") == std::string::npos)
            BOOST_TEST((line.back() == ',' || line.back() == ']'), line);
        for (std::size_t p = line.find("0."); p != std::string::npos; p = line.find("0.", p + 2)) ++numbers;
    }
    BOOST_TEST(numbers >= 3u * 700u);  // 2352 entries in (0, 1), a few printed as 1e-05 and the like
}

BOOST_AUTO_TEST_CASE(explain_from_the_command_line) {
    Result r = run({"step", model("worked_example.json"), "--explain", "w[0]"});
    BOOST_TEST(r.code == 0);
    BOOST_TEST(has(r.out, "dL/dw[0,0] = Σ_j"), r.out);
    for (const char* term : {"0.237757", "-0.0813046", "0.223347", "= 0.379799"}) BOOST_TEST(has(r.out, term), term);
    BOOST_TEST(!has(r.out, "step 1/4"));

    Result j = run({"step", model("worked_example.json"), "--explain", "w[0]", "--json"});
    BOOST_TEST(j.code == 0);
    Json x = parse_json_text(j.out, "step --explain --json");
    BOOST_TEST(x["entry"] == "w[0,0]");
    BOOST_TEST(std::abs(x["sum"].get<double>() - 0.379799) < 5e-7);
    BOOST_TEST(x["sum"].get<double>() == x["grad"].get<double>());
    BOOST_TEST(x["terms"].size() == 3u);
    BOOST_TEST(x["factors"][0]["formula"] == "(yhat−y)/N");
    BOOST_TEST(x["terms"][2]["factors"][3] == 4.7);

    Result bad = run({"step", model("worked_example.json"), "--explain", "w[4]"});
    BOOST_TEST(bad.code == 2);
    BOOST_TEST(has(bad.err, "explain 'w[4]': index 4 is out of range: w has 4 entries"), bad.err);
    Result unknown = run({"step", model("worked_example.json"), "--explain", "W[0]"});
    BOOST_TEST(unknown.code == 2);
    BOOST_TEST(has(unknown.err, "has no node 'W' (did you mean 'w'?)"), unknown.err);
}

BOOST_AUTO_TEST_CASE(json_steps_carry_local_derivative_formula_and_product) {
    Result r = run({"step", model("worked_example.json"), "--json"});
    BOOST_TEST(r.code == 0);
    Json j = parse_json_text(r.out, "step --json");
    const Json& yhat = j["steps"][1];
    BOOST_TEST(yhat["node"] == "yhat");
    BOOST_TEST(yhat["named_formula"] == "yhat = 1/(1+exp(-a));  dL/da = dL/dyhat · yhat(1−yhat)");
    const Json& to_a = yhat["contributions"][0];
    BOOST_TEST(to_a["local_formula"] == "∂yhat/∂a = yhat(1−yhat)");
    BOOST_TEST(to_a["product"] == "dL/da = dL/dyhat ⊙ ∂yhat/∂a");
    BOOST_TEST(to_a["formula"] == "dL/da = dL/dyhat · yhat(1−yhat)");
    const double hand[3] = {0.1855, 0.1920, 0.1930};
    for (int k = 0; k < 3; ++k) {
        double local = to_a["local"][k][0].get<double>();
        BOOST_TEST(std::abs(local - hand[k]) < 5e-5, local);
        double up = yhat["grad_out"][k][0].get<double>(), sent = to_a["contribution"][k][0].get<double>();
        BOOST_TEST(std::abs(up * local - sent) < 1e-15);
    }
    const Json& to_w = j["steps"][3]["contributions"][1];
    BOOST_TEST(to_w["input"] == "w");
    BOOST_TEST(to_w["formula"] == "dL/dw = xᵀ·dL/dz");
    BOOST_TEST(to_w["shapes"] == "[4,1] = [4,3]·[3,1]");
    BOOST_TEST(to_w["local"].is_null());
    BOOST_TEST(to_w["product"] == "dL/dw = xᵀ·dL/dz");
}
