// A plugin whose entry point throws something that is not a std::exception.
extern "C" void chainrule_register_ops() { throw 42; }
