// Ops from outside the library: a shared library that defines
//
//     extern "C" void chainrule_register_ops() { chainrule::register_op({...}); }
//
// and is loaded with `chainrule --plugin path.so ...` (docs/writing-ops.md).
#pragma once

#include <string>

namespace chainrule {

inline constexpr const char* kPluginEntryPoint = "chainrule_register_ops";

// Loads the plugin and runs its entry point. A file that cannot be loaded, has no entry
// point, or registers an op whose name is taken is an InputError naming the file.
void load_plugin(const std::string& path);

}  // namespace chainrule
