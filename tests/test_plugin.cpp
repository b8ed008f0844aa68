// Plugins that cannot be used are refused with a clear message and exit code 2.
#define BOOST_TEST_MODULE plugin
#include <boost/test/unit_test.hpp>

#include "testing.hpp"

using namespace chainrule::testing;

namespace {

std::string plugin(const char* name) { return build_root() + "/tests/lib" + name + ".so"; }

void expect_refused(const std::string& lib, const std::string& fragment) {
    CommandResult r = run_command(chainrule_binary() + " --plugin " + lib + " ops");
    BOOST_TEST(r.code == 2, lib << ": exit " << r.code);
    BOOST_TEST(r.err.find(fragment) != std::string::npos, "'" << fragment << "' not in: " << r.err);
    BOOST_TEST(r.out.empty());
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_missing_file) {
    expect_refused("/nonexistent/libnothing.so", "plugin /nonexistent/libnothing.so: cannot be loaded");
}

BOOST_AUTO_TEST_CASE(a_file_that_is_not_a_library) {
    expect_refused(source_root() + "/README.md", "cannot be loaded");
}

BOOST_AUTO_TEST_CASE(a_library_without_the_entry_point) {
    expect_refused(plugin("no_entry"), "has no entry point chainrule_register_ops; define extern \"C\" void");
}

BOOST_AUTO_TEST_CASE(a_plugin_registering_a_taken_name) {
    expect_refused(plugin("duplicate"), "an op named 'sigmoid' is already registered");
}

BOOST_AUTO_TEST_CASE(malformed_ops_are_refused_when_the_plugin_loads) {
    // Each of these crashed `ops --check` or `check` before (a node without inputs) or ran
    // chainrule's kernels in a plugin op's place; now the registry names the plugin and the op.
    const std::pair<const char*, const char*> cases[] = {
        {"no_inputs", "op 'malformed' takes no inputs; an op needs at least one"},
        {"all_optional", "op 'malformed' makes 1 of its 1 input optional; at least the first must be given"},
        {"more_optional", "op 'malformed' makes 3 of its 1 input optional"},
        {"same_input_names", "op 'malformed' names two inputs 'x' (inputs 0 and 1)"},
        {"bad_name", "the name 'mal formed<x>' is not an identifier"},
        {"labels_input", "op 'malformed' has labels_input 2, but its inputs are 0 to 0"},
        {"fusable", "op 'malformed' declares a role in chainrule's fused passes"},
    };
    for (const auto& [which, fragment] : cases)
        for (const char* command : {"ops", "ops --check"}) {
            CommandResult r = run_command(std::string("CHAINRULE_TEST_MALFORMED=") + which + " " + chainrule_binary() +
                                          " --plugin " + plugin("malformed") + " " + command);
            BOOST_TEST(r.code == 2, which << ": exit " << r.code << " " << r.err);
            BOOST_TEST(r.err.find("plugin " + plugin("malformed") + ": register_op: ") != std::string::npos, r.err);
            BOOST_TEST(r.err.find(fragment) != std::string::npos, "'" << fragment << "' not in: " << r.err);
        }
    // An attr its samples never set fails `ops --check`, naming it.
    CommandResult unvaried = run_command("CHAINRULE_TEST_MALFORMED=unvaried_attr " + chainrule_binary() + " --plugin " +
                                         plugin("malformed") + " ops --check malformed");
    BOOST_TEST(unvaried.code == 1, unvaried.out << unvaried.err);
    BOOST_TEST(unvaried.out.find("no sample gives attr 'alpha' a value other than its default 0.01") != std::string::npos,
               unvaried.out);
    // Well formed, the same library loads and its op passes its checks.
    CommandResult ok = run_command(chainrule_binary() + " --plugin " + plugin("malformed") + " ops");
    BOOST_TEST(ok.code == 0, ok.err);
}

BOOST_AUTO_TEST_CASE(a_plugin_whose_entry_point_throws) {
    expect_refused(plugin("throws"), "its entry point chainrule_register_ops failed: this plugin refuses to start");
}

BOOST_AUTO_TEST_CASE(a_plugin_whose_entry_point_throws_a_non_exception) {
    expect_refused(plugin("throws_int"),
                   "its entry point chainrule_register_ops threw something that is not a std::exception");
}

BOOST_AUTO_TEST_CASE(a_plugin_whose_static_initializer_throws_is_named) {
    expect_refused(plugin("static_throws"), "libstatic_throws.so: a static initializer threw while the library was "
                                            "loaded: static initializer failed on purpose");
}

BOOST_AUTO_TEST_CASE(ops_check_finds_a_plugin_backward_that_accumulates) {
    std::string cmd = chainrule_binary() + " --plugin " + plugin("accumulates") + " ops --check accumulating_square";
    CommandResult r = run_command(cmd);
    BOOST_TEST(r.code == 1, r.out << r.err);
    CHECK_HAS(r.out, "accumulating_square: 2 of 4 checks FAILED");
    CHECK_HAS(r.out, "FAIL  sample 0 ([3,4]): backward overwrites its gradient buffers");
    CHECK_HAS(r.out, "never add to it (the engine accumulates)");
    CHECK_HAS(r.out, "FAIL  sample 0 ([3,4]): gradient vs central differences (float64)");
    CHECK_HAS(r.err, "error: 2 of 4 checks failed on 1 op");
    // The built-in ops still pass alongside it; only the named op is checked.
    CommandResult builtin = run_command(chainrule_binary() + " --plugin " + plugin("accumulates") + " ops --check sigmoid");
    BOOST_TEST(builtin.code == 0);
    CHECK_HAS(builtin.out, "all 12 checks passed on 1 op");
    BOOST_TEST(builtin.out.find("accumulating_square") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(ops_check_of_an_unknown_op_suggests_one) {
    CommandResult r = run_command(chainrule_binary() + " ops --check accumulating_square");  // no --plugin
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, "unknown op 'accumulating_square'");
    CHECK_HAS(r.err, "a plugin's only with --plugin)");
    CommandResult typo = run_command(chainrule_binary() + " ops --check sigmod");
    CHECK_HAS(typo.err, "unknown op 'sigmod' (did you mean 'sigmoid'?)");
}

BOOST_AUTO_TEST_CASE(a_plugin_registering_a_taken_name_while_it_loads) {
    expect_refused(plugin("static_duplicate"),
                   "register_op: an op named 'sigmoid' is already registered (in a static initializer, while the "
                   "library was loaded; register a plugin's ops in chainrule_register_ops() instead)");
}

BOOST_AUTO_TEST_CASE(plugin_may_come_after_the_command) {
    CommandResult r = run_command(chainrule_binary() + " ops accumulating_square --plugin " + plugin("accumulates"));
    BOOST_TEST(r.code == 0, r.err);
    CHECK_HAS(r.out, "accumulating_square(x)");
}
