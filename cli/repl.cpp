#include "cli/repl.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <istream>
#include <ostream>

#include "cli/explain_view.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "render/explain.hpp"

namespace chainrule::cli {
namespace {

enum class Cmd { next, to_end, back, print, full, list, explain, until, quit, help };

struct Command {
    const char* word;
    Cmd cmd;
    bool on_node;  // takes a node (or an entry) after it
};

constexpr Command kCommands[] = {
    {"n", Cmd::next, false},      {"next", Cmd::next, false},   {"c", Cmd::to_end, false},
    {"continue", Cmd::to_end, false}, {"back", Cmd::back, false}, {"u", Cmd::back, false},
    {"l", Cmd::list, false},      {"list", Cmd::list, false},   {"q", Cmd::quit, false},
    {"quit", Cmd::quit, false},   {"help", Cmd::help, false},   {"h", Cmd::help, false},
    {"?", Cmd::help, false},      {"p", Cmd::print, true},      {"print", Cmd::print, true},
    {"full", Cmd::full, true},    {"explain", Cmd::explain, true}, {"e", Cmd::explain, true},
    {"until", Cmd::until, true},  {"b", Cmd::until, true},      {"break", Cmd::until, true},
};

const Command* command_named(const std::string& word) {
    for (const Command& c : kCommands)
        if (word == c.word) return &c;
    return nullptr;
}

constexpr const char* kHelp =
    "commands:\n"
    "  Enter, n            run the next step\n"
    "  c                   run to the end\n"
    "  until NODE, b NODE  run until NODE's step is done; for a parameter or an input, until its\n"
    "                      gradient is complete (b b: until dL/db is)\n"
    "  back, u             undo the last step (the walk is replayed up to the step before)\n"
    "  p NAME, or NAME     print a node's value and gradient so far (large ones summarised)\n"
    "  full NAME           print them in full, every number\n"
    "  p NAME[i,j]         the slice NAME[i,j,...] of a node of higher rank: p att[0,1] is head 1 of\n"
    "                      row 0 of an [N,H,T,T] attention (full NAME[i,j] prints it whole)\n"
    "  l, list             list the nodes, each op node with its formula in the model's names\n"
    "  explain NAME[i]     one entry of a gradient written out term by term, e.g. explain w[0]\n"
    "  q                   quit\n"
    "  help                this list\n"
    "A word alone that is a command (n, c, u, l, q) is that command even when a node has its name:\n"
    "print such a node with p NAME. A command that takes a node (p, full, e, b) given none prints the\n"
    "node of that name if there is one. On a terminal, the arrow keys edit the line and go through\n"
    "the lines typed before (Ctrl-R searches them).\n";

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// A typed word as it can be shown: control characters (an arrow key read without line
// editing is ESC [ A) as ^[ and the like, so a message never moves the terminal's cursor.
std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) out += '^', out += char(c == 0x7f ? '?' : c + 0x40);
        else out += char(c);
    }
    return out;
}

class Session {
public:
    Session(Stepper& s, std::ostream& out, const ShowOptions& o) : s_(s), g_(s.graph()), out_(out), o_(o) {}

    void start(const std::string& intro) {
        if (s_.position() != 0) return;
        say(fmt::format("forward done: loss {} = {:.{}g}; {} backward steps: Enter runs the next, help lists "
                        "commands\n",
                        g_.node(s_.loss()).name, g_.node(s_.loss()).value.at(0), o_.digits, s_.order().size()));
        say(intro);
    }
    std::string prompt() const {
        return s_.done() ? "(done) " : fmt::format("(step {}/{}) ", s_.position() + 1, s_.order().size());
    }
    // Runs one line; false: quit.
    bool run(const std::string& typed) {
        std::string word = trim(typed), arg;
        if (auto sp = word.find_first_of(" \t"); sp != std::string::npos) {
            arg = trim(word.substr(sp + 1));
            word = word.substr(0, sp);
        }
        if (word.empty()) return next(false), true;
        const Command* c = command_named(word);
        if (c && c->on_node && !arg.empty()) return on_node(c->cmd, arg), true;
        if (c && !c->on_node && arg.empty()) return alone(c->cmd);
        if (c && c->on_node) {  // given no node
            if (g_.find(word) >= 0) return print(word, false), true;
            out_ << fmt::format("{} needs a node name, e.g. {} {}\n", word, word, example(c->cmd));
            return true;
        }
        if (c) {
            out_ << fmt::format("{} takes nothing after it{}\n", word,
                                g_.find(word) >= 0 ? fmt::format("; to print the node {0}: p {0}", word) : "");
            return true;
        }
        if (arg.empty() && g_.find(word.substr(0, word.find('['))) >= 0) return print(word, false), true;
        unknown(word);
        return true;
    }

private:
    void say(const std::string& text) { out_ << wrap_lines(text, o_.width); }
    void step() {
        say(format_step(s_, s_.next(), o_) + "\n");
        if (s_.done())
            say(format_summary(s_, o_) + "the walk is done: p NAME to look, back to undo a step, q to quit\n");
    }
    void next(bool to_end) {
        if (s_.done()) {
            out_ << fmt::format("the walk is done: all {} steps ran (back undoes one, p NAME prints a node, q quits)\n",
                                s_.order().size());
            return;
        }
        do step();
        while (to_end && !s_.done());
    }
    bool alone(Cmd c) {
        switch (c) {
            case Cmd::next: next(false); break;
            case Cmd::to_end: next(true); break;
            case Cmd::back: back(); break;
            case Cmd::list: say(format_nodes(s_)); break;
            case Cmd::help: out_ << kHelp; break;
            case Cmd::quit: return false;
            default: break;
        }
        return true;
    }
    void on_node(Cmd c, const std::string& arg) {
        switch (c) {
            case Cmd::print: print(arg, false); break;
            case Cmd::full: print(arg, true); break;
            case Cmd::explain: explain(arg); break;
            case Cmd::until: until(arg); break;
            default: break;
        }
    }
    std::string example(Cmd c) const {
        if (c == Cmd::explain) {
            std::vector<int> ps = g_.parameters();
            return (ps.empty() ? g_.node(s_.loss()).name : g_.node(ps.front()).name) + "[0]";
        }
        return g_.node(c == Cmd::until ? s_.order().back() : s_.loss()).name;
    }
    void back() {
        if (s_.position() == 0) {
            out_ << "nothing to undo: no step has run yet\n";
            return;
        }
        const std::size_t undone = s_.position();
        s_.rewind(undone - 1);
        out_ << fmt::format("undid step {}/{} ({}); Enter runs it again\n", undone, s_.order().size(),
                            g_.node(s_.order()[undone - 1]).name);
    }
    std::optional<int> node_named(const std::string& name) {
        if (int id = g_.find(name); id >= 0) return id;
        std::vector<std::string> all;
        for (const Node& n : g_.nodes()) all.push_back(n.name);
        const std::string guess = closest_name(name, all);
        out_ << fmt::format("no node '{}'{}\n", printable(name),
                            guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess));
        return std::nullopt;
    }
    // "p att" or a slice "p att[0,1]" (its first axes fixed).
    void print(const std::string& text, bool full) {
        try {
            const auto [name, at] = parse_slice(text);
            std::optional<int> id = node_named(name);
            if (!id) return;
            ShowOptions all = o_;
            if (full) all.limit = std::max<std::int64_t>(1, g_.node(*id).value.numel());
            say(format_node(s_, *id, all, at));
        } catch (const InputError& e) {
            out_ << e.what() << "\n";
        }
    }
    void explain(const std::string& arg) {
        const std::string name = trim(arg.substr(0, arg.find('[')));
        const int id = g_.find(name);
        if (id >= 0 && !s_.done()) {
            // Explain writes the gradient out from the consumers' complete gradients.
            std::optional<std::size_t> at = complete_after(s_, id);
            if (at && s_.position() < *at) {
                const std::string& by = g_.node(s_.order()[*at - 1]).name;
                out_ << fmt::format("explain {}: dL/d{} is complete after step {} ({}); `until {}` or `c` first\n", arg,
                                    name, *at, by, by);
                return;
            }
        }
        try {
            say(format_explanation(explain_entry(g_, s_.plan(), arg), o_.digits));
        } catch (const InputError& e) {
            out_ << e.what() << "\n";
        }
    }
    void until(const std::string& name) {
        std::size_t target = 0;
        try {
            target = steps_until(s_, name);
        } catch (const InputError& e) {
            if (g_.find(name) < 0) node_named(name);  // "no node 'x' (did you mean 'y'?)"
            else out_ << e.what() << "\n";
            return;
        }
        if (target <= s_.position()) {
            const std::string& at = g_.node(s_.order()[target - 1]).name;
            out_ << (g_.node(g_.id(name)).kind == NodeKind::op
                         ? fmt::format("step {} ({}) is already done\n", target, at)
                         : fmt::format("dL/d{} is already complete (after step {}, {})\n", name, target, at));
            return;
        }
        while (s_.position() < target) step();
    }
    void unknown(const std::string& word) {
        if (printable(word) != word) {
            out_ << fmt::format("unknown command '{}': a key's code (an arrow key?); lines read from a pipe or a file "
                                "are not edited, a terminal's are\n",
                                printable(word));
            return;
        }
        std::vector<std::string> words;
        for (const Command& c : kCommands) words.push_back(c.word);
        for (const Node& n : g_.nodes()) words.push_back(n.name);
        const std::string guess = closest_name(word, words);
        out_ << fmt::format("unknown command '{}'{}; help lists the commands\n", printable(word),
                            guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess));
    }

    Stepper& s_;
    const Graph& g_;
    std::ostream& out_;
    ShowOptions o_;
};

}  // namespace

void interact(Stepper& s, const LineSource& lines, std::ostream& out, const ShowOptions& o, const std::string& intro) {
    Session session(s, out, o);
    session.start(intro);
    while (true) {
        const std::string ask = session.prompt();
        out << std::flush;
        std::optional<std::string> line = lines.read(ask);
        if (!line) break;
        if (lines.echo) out << ask << printable(trim(*line)) << "\n";
        if (!session.run(*line)) break;
    }
    out << std::flush;
}

void interact(Stepper& s, std::istream& in, std::ostream& out, bool prompt, const ShowOptions& o,
              const std::string& intro) {
    LineSource lines{[&](const std::string& ask) -> std::optional<std::string> {
                         if (prompt) out << ask << std::flush;
                         std::string line;
                         if (!std::getline(in, line)) return std::nullopt;
                         return line;
                     },
                     !prompt};
    interact(s, lines, out, o, intro);
}

}  // namespace chainrule::cli
