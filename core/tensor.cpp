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
