#include "ops/plugin.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <stdexcept>

#include "core/error.hpp"

namespace chainrule {

void load_plugin(const std::string& path) {
    // dlopen searches the library path for names without a slash; a plugin is a file.
    std::string file = path.find('/') == std::string::npos ? "./" + path : path;
    detail::hold_registration_errors(true);
    detail::loading_plugin(true);
    struct Loaded {
        ~Loaded() { detail::loading_plugin(false); }
    } loaded;
    void* handle = nullptr;
    // A static initialiser that throws unwinds out of dlopen; name the plugin instead of
    // terminating. Anything thrown, std::exception or not, becomes a located message.
    // glibc declares dlopen non-throwing, so the compiler would drop this handler: call it
    // through a pointer it cannot see through.
    void* (*volatile open_library)(const char*, int) = ::dlopen;
    try {
        handle = open_library(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    } catch (const std::exception& e) {
        detail::hold_registration_errors(false);
        throw InputError(fmt::format("plugin {}: a static initializer threw while the library was loaded: {}", path,
                                     e.what()));
    } catch (...) {
        detail::hold_registration_errors(false);
        throw InputError(fmt::format("plugin {}: a static initializer threw something that is not a "
                                     "std::exception while the library was loaded",
                                     path));
    }
    detail::hold_registration_errors(false);
    std::string held = detail::take_held_registration_error();
    if (!handle) {
        const char* err = ::dlerror();
        throw InputError(fmt::format("plugin {}: cannot be loaded: {}", path, err ? err : "unknown error"));
    }
    if (!held.empty())
        throw InputError(fmt::format("plugin {}: {} (in a static initializer, while the library was loaded; "
                                     "register a plugin's ops in {}() instead)",
                                     path, held, kPluginEntryPoint));
    // The handle is kept open for the life of the process: the registered ops point into it.
    void* entry = ::dlsym(handle, kPluginEntryPoint);
    if (!entry)
        throw InputError(fmt::format("plugin {}: has no entry point {}; define extern \"C\" void {}() that calls "
                                     "chainrule::register_op (docs/writing-ops.md)",
                                     path, kPluginEntryPoint, kPluginEntryPoint));
    try {
        reinterpret_cast<void (*)()>(entry)();
    } catch (const std::invalid_argument& e) {
        throw InputError(fmt::format("plugin {}: {}", path, e.what()));
    } catch (const std::exception& e) {
        throw InputError(fmt::format("plugin {}: its entry point {} failed: {}", path, kPluginEntryPoint, e.what()));
    } catch (...) {
        throw InputError(fmt::format("plugin {}: its entry point {} threw something that is not a std::exception",
                                     path, kPluginEntryPoint));
    }
}

}  // namespace chainrule
