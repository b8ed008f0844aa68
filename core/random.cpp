#include "core/random.hpp"

#include <cmath>
#include <numbers>
#include <sstream>

#include "core/error.hpp"

namespace chainrule {

double Rng::uniform() { return double(engine_() >> 11) * 0x1.0p-53; }

double Rng::uniform(double low, double high) { return low + (high - low) * uniform(); }

double Rng::normal(double mean, double std) {
    double u1 = 1.0 - uniform();  // (0, 1]: log(u1) is finite
    double u2 = uniform();
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t Rng::below(std::uint64_t n) {
    // Rejection sampling: drop the top partial block so every value is equally likely.
    std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t x;
    do x = engine_();
    while (x >= limit);
    return x % n;
}

std::string Rng::state() const {
    std::ostringstream os;
    os << engine_;
    return os.str();
}

void Rng::set_state(const std::string& s) {
    std::istringstream is(s);
    std::mt19937_64 e;
    is >> e;
    if (is.fail() || !(is >> std::ws).eof())
        throw InputError("random generator state is malformed (expected the 313 numbers of an mt19937_64 state)");
    engine_ = e;
}

}  // namespace chainrule
