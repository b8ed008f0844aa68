// A seeded random source whose whole state can be saved in a checkpoint and restored,
// so a resumed run draws exactly the numbers an uninterrupted run would.
// Distributions are written here (not std::normal_distribution) so that draws are the
// same with every standard library.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace chainrule {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0) : engine_(seed) {}
    double uniform();                       // [0, 1), 53 random bits
    double uniform(double low, double high);
    double normal(double mean = 0, double std = 1);  // Box-Muller, no cached second draw
    std::uint64_t below(std::uint64_t n);   // uniform integer in [0, n), unbiased
    std::string state() const;
    void set_state(const std::string& s);   // throws InputError on a malformed state

private:
    std::mt19937_64 engine_;
};

}  // namespace chainrule
