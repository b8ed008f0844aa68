#include "ops/finite_difference.hpp"

#include <algorithm>
#include <cmath>

namespace chainrule {

double central_difference(Tensor& x, std::int64_t i, const std::function<double()>& loss, double step) {
    const double x0 = x.at(i), h = step * std::max(1.0, std::abs(x0));
    x.set(i, x0 + h);
    const double up = loss();
    x.set(i, x0 - h);
    const double down = loss();
    x.set(i, x0);
    return (up - down) / (2 * h);
}

FdComparison compare_to_numeric(double analytic, double numeric, const FdTolerance& tol) {
    FdComparison c;
    const double scale = std::max(std::abs(analytic), std::abs(numeric));
    c.abs_error = std::abs(analytic - numeric);
    c.ok = std::isfinite(c.abs_error) && c.abs_error <= tol.atol + tol.rtol * scale;
    // The same rule as a relative error, for reports: atol + rtol·s = rtol · (atol/rtol + s).
    const double floor = tol.rtol > 0 ? tol.atol / tol.rtol : 0;
    c.relative = floor + scale > 0 ? c.abs_error / (floor + scale) : (c.abs_error == 0 ? 0 : INFINITY);
    if (!std::isfinite(c.abs_error)) c.relative = NAN;
    return c;
}

}  // namespace chainrule
