// Tensor: a row-major, contiguous, N-d array of float32 or float64.
//
// Storage is 64-byte aligned and grows only: resizing to the same or a smaller
// element count keeps the buffer, so a training step that reuses its tensors
// allocates nothing after the first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace chainrule {

enum class Dtype { f32, f64 };

const char* dtype_name(Dtype d);
std::size_t dtype_size(Dtype d);

using Dims = std::vector<std::int64_t>;

// a == b, inline: the engine compares a node's dims several times per op call, and for the
// few dims of a tensor a loop is several times cheaper than the library's memcmp that
// vector's == calls (a Hessian-vector product of a tiny model spent a tenth of its time there).
inline bool same_dims(const Dims& a, const Dims& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i] != b[i]) return false;
    return true;
}

// Largest element count of one tensor (docs/limits.md). Checked before any
// allocation so that a hostile shape cannot ask for terabytes.
inline constexpr std::int64_t kMaxElements = std::int64_t{1} << 31;

// Product of dims; throws InputError when a dim is <= 0 or the product passes kMaxElements.
std::int64_t checked_numel(const Dims& dims);

std::string format_dims(const Dims& dims);  // "[3,4]"

// Calls f.template operator()<T>() with T = float or double.
template <class F>
decltype(auto) dispatch(Dtype d, F&& f) {
    if (d == Dtype::f32) return f.template operator()<float>();
    return f.template operator()<double>();
}

template <class T>
constexpr Dtype dtype_of();
template <>
constexpr Dtype dtype_of<float>() { return Dtype::f32; }
template <>
constexpr Dtype dtype_of<double>() { return Dtype::f64; }

class Tensor {
public:
    // Values as nested braces, one level per dim: a number, or a list of Nested.
    struct Nested {
        Nested(double v) : value(v) {}
        Nested(std::initializer_list<Nested> l) : items(l), is_list(true) {}
        double value = 0;
        std::vector<Nested> items;  // copied: the braces' arrays die with the full-expression
        bool is_list = false;
    };

    Tensor() = default;
    Tensor(Dtype dtype, Dims dims);  // zero-filled

    // A tensor from its values written out, so that tests and embedding programs need no
    // loop of set(): Tensor::of({1, 2}) is [2], Tensor::of({{1, 2}, {3, 4}}) is [2,2],
    // Tensor::of({{0.1}, {0.2}}) is [2,1], Tensor::of(3) is a scalar (dims []).
    // Throws InputError when rows differ in length or depth, or a list is empty.
    static Tensor of(const Nested& values, Dtype dtype = Dtype::f64);
    Tensor(const Tensor& other);
    Tensor& operator=(const Tensor& other);
    Tensor(Tensor&&) noexcept = default;
    Tensor& operator=(Tensor&&) noexcept = default;

    Dtype dtype() const { return dtype_; }
    const Dims& dims() const { return dims_; }
    std::size_t rank() const { return dims_.size(); }
    std::int64_t dim(std::size_t i) const { return dims_[i]; }
    std::int64_t numel() const { return numel_; }
    bool empty() const { return numel_ == 0 && dims_.empty() && !buffer_; }

    // Reshape in place to `dims` with `dtype`; reuses the buffer when it is big enough.
    // Contents are unspecified afterwards unless the size is unchanged.
    void resize(Dtype dtype, const Dims& dims);
    void fill(double v);
    void zero() { fill(0.0); }

    template <class T>
    T* data() { return reinterpret_cast<T*>(buffer_.get()); }
    template <class T>
    const T* data() const { return reinterpret_cast<const T*>(buffer_.get()); }
    template <class T>
    std::span<T> span() { return {data<T>(), static_cast<std::size_t>(numel_)}; }
    template <class T>
    std::span<const T> span() const { return {data<T>(), static_cast<std::size_t>(numel_)}; }

    // Element i (flat, row-major) as double, whatever the dtype.
    double at(std::int64_t i) const;
    void set(std::int64_t i, double v);

    // Copy of this tensor converted to `dtype`.
    Tensor to(Dtype dtype) const;
    // Copies values (converting dtype) from `src`, which must have the same element count.
    void assign(const Tensor& src);

private:
    struct Free {
        void operator()(std::byte* p) const noexcept;
    };
    Dtype dtype_ = Dtype::f64;
    Dims dims_;
    std::int64_t numel_ = 0;
    std::size_t capacity_ = 0;  // bytes
    std::unique_ptr<std::byte, Free> buffer_;
};

}  // namespace chainrule
