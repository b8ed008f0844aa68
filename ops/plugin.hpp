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
// point, or registers an op whose name is taken or that is malformed (no inputs, more optional
// inputs than inputs, ...: register_op says which) is an InputError naming the file and the op.
void load_plugin(const std::string& path);

namespace detail {
// For load_plugin: while held, register_op records its first error instead of throwing
// (a plugin's static initializers run inside dlopen, which an exception must not cross).
void hold_registration_errors(bool on);
std::string take_held_registration_error();  // and clears it; "" when none
// For load_plugin: the ops registered while on come from a plugin (some facts are chainrule's own).
void loading_plugin(bool on);
}  // namespace detail

}  // namespace chainrule
