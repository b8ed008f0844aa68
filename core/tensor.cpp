#include "core/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <fmt/format.h>

#include "core/error.hpp"

namespace chainrule {

const char* dtype_name(Dtype d) { return d == Dtype::f32 ? "float32" : "float64"; }
std::size_t dtype_size(Dtype d) { return d == Dtype::f32 ? 4 : 8; }

std::int64_t checked_numel(const Dims& dims) {
    std::int64_t n = 1;
    for (auto d : dims) {
        if (d <= 0)
            throw InputError(fmt::format("shape {} has a dim <= 0; every dim must be at least 1",
                                         format_dims(dims)));
        if (n > kMaxElements / d)
            throw InputError(fmt::format("shape {} has more than {} elements (the per-tensor cap)",
                                         format_dims(dims), kMaxElements));
        n *= d;
    }
    return n;
}

std::string format_dims(const Dims& dims) { return fmt::format("[{}]", fmt::join(dims, ",")); }

void Tensor::Free::operator()(std::byte* p) const noexcept { std::free(p); }

Tensor::Tensor(Dtype dtype, Dims dims) {
    resize(dtype, dims);
    zero();
}

Tensor::Tensor(const Tensor& other) {
    if (other.empty()) return;
    resize(other.dtype_, other.dims_);
    std::memcpy(buffer_.get(), other.buffer_.get(), numel_ * dtype_size(dtype_));
}

Tensor& Tensor::operator=(const Tensor& other) {
    if (this == &other) return *this;
    if (other.empty()) {
        *this = Tensor();
        return *this;
    }
    resize(other.dtype_, other.dims_);
    std::memcpy(buffer_.get(), other.buffer_.get(), numel_ * dtype_size(dtype_));
    return *this;
}

void Tensor::resize(Dtype dtype, const Dims& dims) {
    std::int64_t n = checked_numel(dims);
    std::size_t bytes = static_cast<std::size_t>(n) * dtype_size(dtype);
    if (bytes > capacity_ || !buffer_) {
        std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 63) / 64 * 64;
        void* p = std::aligned_alloc(64, rounded);
        if (!p) throw RunError(fmt::format("out of memory allocating {} bytes", rounded));
        buffer_.reset(static_cast<std::byte*>(p));
        capacity_ = rounded;
    }
    dtype_ = dtype;
    if (dims_ != dims) dims_ = dims;
    numel_ = n;
}

void Tensor::fill(double v) {
    dispatch(dtype_, [&]<class T>() {
        T* p = data<T>();
        for (std::int64_t i = 0; i < numel_; ++i) p[i] = static_cast<T>(v);
    });
}

double Tensor::at(std::int64_t i) const {
    return dtype_ == Dtype::f32 ? double(data<float>()[i]) : data<double>()[i];
}

void Tensor::set(std::int64_t i, double v) {
    if (dtype_ == Dtype::f32)
        data<float>()[i] = static_cast<float>(v);
    else
        data<double>()[i] = v;
}

namespace {

// The dims of `v`, read along its first items; fill_nested checks the rest.
void nested_dims(const Tensor::Nested& v, Dims& dims) {
    for (const Tensor::Nested* p = &v; p->is_list; p = &p->items.front()) {
        if (p->items.empty()) throw InputError("Tensor::of: an empty list has no values; every dim must be at least 1");
        dims.push_back(static_cast<std::int64_t>(p->items.size()));
    }
}

// Writes the values of `v` (depth `depth` of `dims`) from flat index `at`, checking
// that it has the shape its first items announced. `path` ("[1][0]") names `v` in
// messages; it is never empty below the top, and the top fits by construction.
void fill_nested(const Tensor::Nested& v, const Dims& dims, std::size_t depth, Tensor& t, std::int64_t& at,
                 std::string& path) {
    if (depth == dims.size()) {
        if (v.is_list)
            throw InputError(fmt::format("Tensor::of: element {} is a list, but the first element of its "
                                         "level is a number (shape {})", path, format_dims(dims)));
        t.set(at++, v.value);
        return;
    }
    if (!v.is_list)
        throw InputError(fmt::format("Tensor::of: element {} is a number, but a list of {} was expected (shape {})",
                                     path, dims[depth], format_dims(dims)));
    if (static_cast<std::int64_t>(v.items.size()) != dims[depth])
        throw InputError(fmt::format("Tensor::of: list {} has {} values, but the first list of its level has {} "
                                     "(shape {})", path, v.items.size(), dims[depth],
                                     format_dims(dims)));
    for (std::size_t i = 0; i < v.items.size(); ++i) {
        std::size_t keep = path.size();
        path += fmt::format("[{}]", i);
        fill_nested(v.items[i], dims, depth + 1, t, at, path);
        path.resize(keep);
    }
}

}  // namespace

Tensor Tensor::of(const Nested& values, Dtype dtype) {
    Dims dims;
    nested_dims(values, dims);
    Tensor t(dtype, dims);
    std::int64_t at = 0;
    std::string path;
    fill_nested(values, dims, 0, t, at, path);
    return t;
}

Tensor Tensor::to(Dtype dtype) const {
    Tensor t(dtype, dims_);
    t.assign(*this);
    return t;
}

void Tensor::assign(const Tensor& src) {
    if (src.numel() != numel_)
        throw std::logic_error("Tensor::assign: element counts differ");
    if (src.dtype_ == dtype_) {
        std::memcpy(buffer_.get(), src.buffer_.get(), numel_ * dtype_size(dtype_));
        return;
    }
    for (std::int64_t i = 0; i < numel_; ++i) set(i, src.at(i));
}

}  // namespace chainrule
