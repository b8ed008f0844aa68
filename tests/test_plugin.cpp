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

BOOST_AUTO_TEST_CASE(a_plugin_whose_entry_point_throws) {
    expect_refused(plugin("throws"), "its entry point chainrule_register_ops failed: this plugin refuses to start");
}
