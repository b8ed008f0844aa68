// chainrule: the command line. Exit codes: 0 success, 1 failure while running,
// 2 bad input or usage (docs/cli.md).
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/stop_signal.hpp"
#include "core/error.hpp"
#include "cpu/blas_kernel.hpp"
#include "ops/plugin.hpp"
#include "train/distributed.hpp"

int main(int argc, char** argv) {
    // Before anything else: OpenBLAS chose its kernels when it loaded, and a better choice
    // takes a fresh start of this program (docs/performance.md, "The BLAS kernel").
    try {
        chainrule::ensure_blas_kernel(argv);
    } catch (const chainrule::InputError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    } catch (const chainrule::RunError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
    CLI::App app{"chainrule: reverse-mode autodiff over computational graphs defined in JSON.\n"
                 "Run `chainrule COMMAND --help` for the options of each command."};
    app.footer("Environment: CHAINRULE_BLAS_KERNEL=auto|keep|NAME steers the choice of OpenBLAS's kernels\n"
               "(unset: chainrule picks the CPU's own; docs/performance.md, \"The BLAS kernel\").");
    app.require_subcommand(1);
    app.fallthrough();  // --plugin may come after the command too
    app.set_version_flag("--version", "chainrule 0.1.0");
    std::vector<std::string> plugins;
    // Plugins load while the command line is read, before any command runs, so their ops
    // are known to the model loader.
    app.add_option("--plugin", plugins, "load ops from a shared library (repeatable; before or after the command; docs/writing-ops.md)")
        ->each([](const std::string& path) { chainrule::load_plugin(path); })
        ->type_name("LIB.so");
    using namespace chainrule::cli;
    add_check(app);
    add_grad(app);
    add_gradcheck(app);
    add_hvp(app);
    add_hessian(app);
    add_ops(app);
    add_step(app);
    add_dot(app);
    add_train(app);
    add_eval(app);
    add_predict(app);
    add_data(app);
    add_plot(app);
    add_sample(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    } catch (const chainrule::cli::SignalExit& e) {
        return 128 + e.signal;
    } catch (const chainrule::PeerFailed& e) {
        return e.code;  // another process of the run failed and said why (train under mpirun)
    } catch (const chainrule::InputError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    } catch (const chainrule::RunError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    } catch (const std::filesystem::filesystem_error& e) {
        // A path that cannot name a file as written (a symlink loop, a name too long, a
        // missing folder on the way) is the user's input; anything else is a run failure.
        const std::error_code& c = e.code();
        const bool input = c == std::errc::too_many_symbolic_link_levels || c == std::errc::filename_too_long ||
                           c == std::errc::no_such_file_or_directory || c == std::errc::not_a_directory;
        if (e.path1().empty())
            fmt::print(stderr, "error: {}\n", e.what());
        else
            fmt::print(stderr, "error: {}: {}\n", e.path1().string(), c.message());
        return input ? 2 : 1;
    } catch (const std::bad_alloc&) {
        fmt::print(stderr, "error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "internal error: {}\n", e.what());
        return 1;
    }
    return 0;
}
