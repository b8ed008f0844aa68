// A plugin whose entry point throws something other than a registration error.
#include <stdexcept>

extern "C" void chainrule_register_ops() { throw std::runtime_error("this plugin refuses to start"); }
