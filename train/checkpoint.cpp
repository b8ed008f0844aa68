#include "train/checkpoint.hpp"

#include <cstring>
#include <fmt/format.h>
#include <zlib.h>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/random.hpp"

namespace chainrule {
namespace {

constexpr char kMagic[16] = {'C', 'H', 'A', 'I', 'N', 'R', 'U', 'L', 'E', '-', 'C', 'K', 'P', 'T', '\n', '\0'};

std::uint32_t crc_of(const char* p, std::size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {  // crc32 takes a uInt length
        uInt chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
        crc = crc32(crc, reinterpret_cast<const Bytef*>(p), chunk);
        p += chunk;
        n -= chunk;
    }
    return static_cast<std::uint32_t>(crc);
}

template <class T>
void put(std::string& out, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
}

template <class T>
T get(const std::string& in, std::size_t at) {
    T v;
    std::memcpy(&v, in.data() + at, sizeof(T));
    return v;
}

}  // namespace

Checkpoint make_checkpoint(const Graph& g, std::int64_t epoch, const std::string& rng, Json info) {
    Checkpoint c;
    c.model = g.name;
    c.dtype = g.dtype();
    c.epoch = epoch;
    c.rng = rng;
    c.info = std::move(info);
    for (int id : g.parameters()) c.tensors.emplace_back(g.node(id).name, g.node(id).value);
    return c;
}

std::string encode_checkpoint(const Checkpoint& c) {
    Json header;
    header["version"] = 1;
    header["model"] = c.model;
    header["dtype"] = dtype_name(c.dtype);
    header["epoch"] = c.epoch;
    header["rng"] = c.rng;
    header["info"] = c.info;
    Json tensors = Json::array();
    std::uint64_t offset = 0;
    for (const auto& [name, t] : c.tensors) {
        std::uint64_t bytes = std::uint64_t(t.numel()) * dtype_size(t.dtype());
        tensors.push_back({{"name", name}, {"shape", t.dims()}, {"offset", offset}, {"bytes", bytes}});
        offset += bytes;
    }
    header["tensors"] = tensors;
    std::string h = header.dump();
    std::string out(kMagic, sizeof kMagic);
    put<std::uint64_t>(out, h.size());
    out += h;
    for (const auto& [name, t] : c.tensors)
        out.append(reinterpret_cast<const char*>(t.dtype() == Dtype::f32 ? static_cast<const void*>(t.data<float>())
                                                                         : static_cast<const void*>(t.data<double>())),
                   std::size_t(t.numel()) * dtype_size(t.dtype()));
    put<std::uint32_t>(out, crc_of(out.data(), out.size()));
    return out;
}

Checkpoint decode_checkpoint(const std::string& in, const std::string& file) {
    auto bad = [&](const std::string& what) { return InputError(fmt::format("{}: not a valid checkpoint: {}", file, what)); };
    if (in.size() < sizeof kMagic + 8 + 4 || std::memcmp(in.data(), kMagic, sizeof kMagic) != 0)
        throw bad("it does not start with the chainrule checkpoint magic (is it a checkpoint file?)");
    std::uint32_t stored = get<std::uint32_t>(in, in.size() - 4);
    if (stored != crc_of(in.data(), in.size() - 4))
        throw bad("CRC mismatch: the file is truncated or damaged");
    std::uint64_t hlen = get<std::uint64_t>(in, sizeof kMagic);
    std::size_t data_start = sizeof kMagic + 8;
    if (hlen > kMaxCheckpointHeader || hlen > in.size() - data_start - 4) throw bad("header length is out of range");
    Json h = parse_json_text(in.substr(data_start, hlen), file + " (header)");
    data_start += hlen;
    std::size_t data_bytes = in.size() - 4 - data_start;
    Checkpoint c;
    try {
        std::string where = file + ": header";
        check_keys(h, {"version", "model", "dtype", "epoch", "rng", "info", "tensors"}, where);
        if (get_int(require(h, "version", where), where + ".version") != 1) throw bad("unsupported version");
        c.model = get_string(require(h, "model", where), where + ".model");
        std::string dt = get_string(require(h, "dtype", where), where + ".dtype");
        if (dt != "float32" && dt != "float64") throw bad("dtype must be float32 or float64");
        c.dtype = dt == "float32" ? Dtype::f32 : Dtype::f64;
        c.epoch = get_int(require(h, "epoch", where), where + ".epoch");
        if (c.epoch < 0) throw bad("negative epoch");
        c.rng = get_string(require(h, "rng", where), where + ".rng");
        try {
            Rng().set_state(c.rng);  // refused here, with its place, rather than at resume
        } catch (const InputError& e) {
            throw InputError(fmt::format("{}.rng: {}", where, e.what()));
        }
        c.info = get_object(require(h, "info", where), where + ".info");
        const Json& ts = get_array(require(h, "tensors", where), where + ".tensors");
        std::uint64_t expected_offset = 0;
        for (std::size_t i = 0; i < ts.size(); ++i) {
            std::string at = json_path(where + ".tensors", i);
            check_keys(get_object(ts[i], at), {"name", "shape", "offset", "bytes"}, at);
            std::string name = get_string(require(ts[i], "name", at), at + ".name");
            Dims dims;
            for (const auto& d : get_array(require(ts[i], "shape", at), at + ".shape")) dims.push_back(get_int(d, at));
            std::int64_t numel = checked_numel(dims);
            std::uint64_t offset = std::uint64_t(get_int(require(ts[i], "offset", at), at + ".offset"));
            std::uint64_t bytes = std::uint64_t(get_int(require(ts[i], "bytes", at), at + ".bytes"));
            if (offset != expected_offset || bytes != std::uint64_t(numel) * dtype_size(c.dtype) ||
                offset + bytes > data_bytes)
                throw bad(fmt::format("tensor '{}' has an inconsistent size or offset", name));
            Tensor t(c.dtype, dims);
            std::memcpy(c.dtype == Dtype::f32 ? static_cast<void*>(t.data<float>()) : static_cast<void*>(t.data<double>()),
                        in.data() + data_start + offset, bytes);
            c.tensors.emplace_back(name, std::move(t));
            expected_offset += bytes;
        }
        if (expected_offset != data_bytes) throw bad("trailing bytes after the tensors");
    } catch (const InputError& e) {
        std::string what = e.what();
        if (what.rfind(file, 0) == 0) throw;
        throw InputError(fmt::format("{}: {}", file, what));
    }
    return c;
}

void save_checkpoint(const Checkpoint& c, const std::string& path) { write_file_atomic(path, encode_checkpoint(c)); }

Checkpoint load_checkpoint(const std::string& path) { return decode_checkpoint(read_text_file(path), path); }

void restore_parameters(Graph& g, const Checkpoint& c, const std::string& file) {
    if (c.dtype != g.dtype())
        throw InputError(fmt::format("{}: checkpoint is {} but model '{}' is {}", file, dtype_name(c.dtype), g.name,
                                     dtype_name(g.dtype())));
    for (int id : g.parameters()) {
        const Node& n = g.node(id);
        const Tensor* found = nullptr;
        for (const auto& [name, t] : c.tensors)
            if (name == n.name) found = &t;
        if (!found)
            throw InputError(fmt::format("{}: checkpoint has no parameter '{}' (is it from another model? it was "
                                         "written for '{}')",
                                         file, n.name, c.model));
        if (found->dims() != to_dims(n.shape))
            throw InputError(fmt::format("{}: parameter '{}' has shape {} in the checkpoint but {} in the model", file,
                                         n.name, format_dims(found->dims()), format_shape(n.shape)));
        g.set_value(n.name, *found);
    }
}

}  // namespace chainrule
