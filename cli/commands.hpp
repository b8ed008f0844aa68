// Each `chainrule` subcommand lives in its own cli/cmd_*.cpp and registers itself here.
#pragma once

#include <CLI/CLI.hpp>

namespace chainrule::cli {

void add_check(CLI::App& app);
void add_grad(CLI::App& app);
void add_gradcheck(CLI::App& app);
void add_ops(CLI::App& app);
void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_predict(CLI::App& app);
void add_step(CLI::App& app);
void add_dot(CLI::App& app);
void add_data(CLI::App& app);
void add_plot(CLI::App& app);
void add_sample(CLI::App& app);
void add_hvp(CLI::App& app);
void add_hessian(CLI::App& app);

}  // namespace chainrule::cli
