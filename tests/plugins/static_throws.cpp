// A plugin whose static initializer throws while the library is being loaded.
#include <stdexcept>

namespace {
struct Boom {
    Boom() { throw std::runtime_error("static initializer failed on purpose"); }
};
const Boom boom;
}  // namespace
