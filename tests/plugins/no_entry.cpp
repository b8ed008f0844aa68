// A shared library without chainrule's entry point: loading it must fail cleanly.
extern "C" int some_other_function() { return 42; }
