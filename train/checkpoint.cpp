#include "train/checkpoint.hpp"

#include <cstring>
#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/random.hpp"
#include "data/kind.hpp"
#include "train/sampler.hpp"

namespace chainrule {
namespace {

constexpr std::int64_t kCheckpointVersion = 2;
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

namespace {

const void* bytes_of(const Tensor& t) {
    return t.dtype() == Dtype::f32 ? static_cast<const void*>(t.data<float>()) : static_cast<const void*>(t.data<double>());
}

Json tensor_list(const NamedTensors& ts, std::uint64_t& offset) {
    Json list = Json::array();
    for (const auto& [name, t] : ts) {
        std::uint64_t bytes = std::uint64_t(t.numel()) * dtype_size(t.dtype());
        list.push_back({{"name", name}, {"shape", t.dims()}, {"offset", offset}, {"bytes", bytes}});
        offset += bytes;
    }
    return list;
}

}  // namespace

std::string encode_checkpoint(const Checkpoint& c) {
    Json header;
    header["version"] = kCheckpointVersion;
    header["model"] = c.model;
    header["dtype"] = dtype_name(c.dtype);
    header["epoch"] = c.epoch;
    header["rng"] = c.rng;
    header["info"] = c.info;
    std::uint64_t offset = 0;
    header["tensors"] = tensor_list(c.tensors, offset);
    header["optimizer_state"] = tensor_list(c.optimizer_state, offset);
    std::string h = header.dump();
    std::string out(kMagic, sizeof kMagic);
    put<std::uint64_t>(out, h.size());
    out += h;
    for (const NamedTensors* section : {&c.tensors, &c.optimizer_state})
        for (const auto& [name, t] : *section)
            out.append(static_cast<const char*>(bytes_of(t)), std::size_t(t.numel()) * dtype_size(t.dtype()));
    put<std::uint32_t>(out, crc_of(out.data(), out.size()));
    return out;
}

namespace {

// Where a checkpoint's tensor data is, for reading its lists one after the other.
struct TensorData {
    const std::string& in;
    std::size_t start = 0, bytes = 0;
    std::uint64_t next_offset = 0;  // where the next tensor must start
};

// A list of the header ("tensors", "optimizer_state"): each entry's keys, its shape, its
// place in the data (right after the one before), its values (finite: no run saves a NaN
// or an Inf) and its name (not empty, not that of an earlier entry of the list).
NamedTensors read_tensor_list(const Json& list, const std::string& where, Dtype dtype, TensorData& data) {
    NamedTensors out;
    std::map<std::string, std::size_t, std::less<>> seen;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string at = json_path(where, i);
        check_keys(get_object(list[i], at), {"name", "shape", "offset", "bytes"}, at);
        std::string name = get_string(require(list[i], "name", at), at + ".name");
        if (name.empty()) throw InputError(fmt::format("{}.name: an empty name", at));
        if (auto [it, fresh] = seen.emplace(name, i); !fresh)
            throw InputError(fmt::format("{}.name: '{}' is the name of entry {} too: one of the two would be used "
                                         "and the other silently dropped",
                                         at, name, it->second));
        Dims dims;
        for (const auto& d : get_array(require(list[i], "shape", at), at + ".shape")) dims.push_back(get_int(d, at + ".shape"));
        std::int64_t numel = checked_numel(dims);
        const std::int64_t offset = get_int(require(list[i], "offset", at), at + ".offset");
        const std::int64_t bytes = get_int(require(list[i], "bytes", at), at + ".bytes");
        if (offset < 0 || std::uint64_t(offset) != data.next_offset ||
            std::uint64_t(bytes) != std::uint64_t(numel) * dtype_size(dtype) ||
            std::uint64_t(offset) + std::uint64_t(bytes) > data.bytes)
            throw InputError(fmt::format("not a valid checkpoint: tensor '{}' has an inconsistent size or offset ({})",
                                         name, at));
        Tensor t(dtype, dims);
        std::memcpy(const_cast<void*>(bytes_of(t)), data.in.data() + data.start + std::size_t(offset), std::size_t(bytes));
        for (std::int64_t k = 0; k < numel; ++k)
            if (!std::isfinite(t.at(k)))
                throw InputError(fmt::format("{}: tensor '{}' has {} at entry {}; a run saves finite values only", at,
                                             name, t.at(k), k));
        data.next_offset += std::uint64_t(bytes);
        out.emplace_back(std::move(name), std::move(t));
    }
    return out;
}

// A whole number of info, when it is there: within [lo, hi].
std::optional<std::int64_t> info_int(const Json& info, const char* key, std::int64_t lo, std::int64_t hi,
                                     const std::string& file) {
    if (!info.contains(key)) return std::nullopt;
    const std::string at = fmt::format("{}: info.{}", file, key);
    std::int64_t v = get_int(info[key], at);
    if (v < lo || v > hi) throw InputError(fmt::format("{}: {} is outside {} to {}", at, v, lo, hi));
    return v;
}

// The run facts a checkpoint carries, each as a run writes it: a field that train/ reads
// (settings compared on resume, the optimizer's step count, the shards, the history) is
// checked here, so that a lie is named where it is rather than met later as a wrong number.
// Keys it does not know are kept and not read.
void check_info(const Checkpoint& c, const std::string& file) {
    const Json& info = c.info;
    const std::string at = file + ": info";
    info_int(info, "seed", 0, std::numeric_limits<std::int64_t>::max(), file);
    info_int(info, "batch", 1, kMaxElements, file);
    const auto steps = info_int(info, "steps_per_epoch", 1, kMaxElements, file);
    info_int(info, "shards", 1, kMaxShards, file);
    // The optimizer counts one step per batch: never more than the epochs' batches.
    info_int(info, "optimizer_steps", 0, c.epoch * steps.value_or(kMaxElements), file);
    for (const char* key : {"lr", "clip_grad_norm"})
        if (info.contains(key)) {
            double v = get_number(info[key], json_path(at, key));
            if (!(v > 0)) throw InputError(fmt::format("{}: must be > 0, got {}", json_path(at, key), v));
        }
    for (const char* key : {"sampling", "optimizer", "lr_schedule"})
        if (info.contains(key)) get_string(info[key], json_path(at, key));
    if (info.contains("sampling") && !Sampling::is_name(info["sampling"].get<std::string>()) &&
        info["sampling"] != "full_batch")
        throw InputError(fmt::format("{}.sampling: expected \"shuffle\", \"with_replacement\" or \"full_batch\", got "
                                     "{}",
                                     at, info["sampling"].dump()));
    if (info.contains("resumed") && !info["resumed"].is_boolean())
        throw InputError(fmt::format("{}.resumed: expected true or false, got {}", at, json_brief(info["resumed"])));
    if (info.contains("vocabulary")) data::vocabulary_from_json(info["vocabulary"], json_path(at, "vocabulary"));
    checkpoint_history(c, file);
}

Checkpoint read_header(const Json& h, const std::string& file, TensorData& data) {
    Checkpoint c;
    const std::string where = file + ": header";
    check_keys(h, {"version", "model", "dtype", "epoch", "rng", "info", "tensors", "optimizer_state"}, where);
    const std::int64_t version = get_int(require(h, "version", where), where + ".version");
    if (version != 1 && version != kCheckpointVersion)
        throw InputError(fmt::format("{}.version: not a valid checkpoint: unsupported version {} (this chainrule reads "
                                     "versions 1 and {})",
                                     where, version, kCheckpointVersion));
    c.model = get_string(require(h, "model", where), where + ".model");
    std::string dt = get_string(require(h, "dtype", where), where + ".dtype");
    if (dt != "float32" && dt != "float64")
        throw InputError(fmt::format("{}.dtype: not a valid checkpoint: dtype must be float32 or float64", where));
    c.dtype = dt == "float32" ? Dtype::f32 : Dtype::f64;
    c.epoch = get_int(require(h, "epoch", where), where + ".epoch");
    if (c.epoch < 0) throw InputError(fmt::format("{}.epoch: not a valid checkpoint: negative epoch", where));
    if (c.epoch > kMaxEpochs)
        throw InputError(fmt::format("{}.epoch: {} is more than the {} epochs a run may have", where, c.epoch, kMaxEpochs));
    c.rng = get_string(require(h, "rng", where), where + ".rng");
    try {
        Rng().set_state(c.rng);  // refused here, with its place, rather than at resume
    } catch (const InputError& e) {
        throw InputError(fmt::format("{}.rng: {}", where, e.what()));
    }
    c.info = get_object(require(h, "info", where), where + ".info");
    c.tensors = read_tensor_list(get_array(require(h, "tensors", where), where + ".tensors"), where + ".tensors",
                                 c.dtype, data);
    if (version == 1) {
        // Version 1 kept the optimizer's buffers among the parameters, as "optimizer/NAME".
        if (h.contains("optimizer_state"))
            throw InputError(fmt::format("{}: unknown key 'optimizer_state' in a version 1 checkpoint", where));
        auto state = std::stable_partition(c.tensors.begin(), c.tensors.end(),
                                           [](const auto& t) { return !t.first.starts_with("optimizer/"); });
        for (auto it = state; it != c.tensors.end(); ++it)
            c.optimizer_state.emplace_back(it->first.substr(10), std::move(it->second));
        c.tensors.erase(state, c.tensors.end());
    } else {
        c.optimizer_state = read_tensor_list(get_array(require(h, "optimizer_state", where), where + ".optimizer_state"),
                                             where + ".optimizer_state", c.dtype, data);
    }
    if (data.next_offset != data.bytes) throw InputError("not a valid checkpoint: trailing bytes after the tensors");
    check_info(c, file);
    return c;
}

}  // namespace

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
    TensorData data{in, data_start, in.size() - 4 - data_start};
    try {
        return read_header(h, file, data);
    } catch (const InputError& e) {
        std::string what = e.what();
        if (what.rfind(file, 0) == 0) throw;
        throw InputError(fmt::format("{}: {}", file, what));
    }
}

void save_checkpoint(const Checkpoint& c, const std::string& path) { write_file_atomic(path, encode_checkpoint(c)); }

Checkpoint load_checkpoint(const std::string& path) { return decode_checkpoint(read_text_file(path), path); }

void restore_parameters(Graph& g, const Checkpoint& c, const std::string& file, ModelName name) {
    if (name == ModelName::must_match && c.model != g.name)
        throw InputError(fmt::format("{}: model: the checkpoint was written for model '{}', but this is model '{}': a "
                                     "checkpoint restores only the model it was trained from (if it is that model "
                                     "renamed, give it back its name)",
                                     file, c.model, g.name));
    if (c.dtype != g.dtype())
        throw InputError(fmt::format("{}: checkpoint is {} but model '{}' is {}", file, dtype_name(c.dtype), g.name,
                                     dtype_name(g.dtype())));
    std::map<std::string, const Tensor*, std::less<>> saved;
    for (const auto& [name, t] : c.tensors) saved.emplace(name, &t);
    for (int id : g.parameters()) {
        const Node& n = g.node(id);
        auto found = saved.find(n.name);
        if (found == saved.end())
            throw InputError(fmt::format("{}: checkpoint has no parameter '{}' (is it from another model? it was "
                                         "written for '{}')",
                                         file, n.name, c.model));
        if (found->second->dims() != to_dims(n.shape))
            throw InputError(fmt::format("{}: parameter '{}' has shape {} in the checkpoint but {} in the model", file,
                                         n.name, format_dims(found->second->dims()), format_shape(n.shape)));
        g.set_value(n.name, *found->second);
        saved.erase(found);
    }
    if (!saved.empty())
        throw InputError(fmt::format("{}: checkpoint has a parameter '{}' that model '{}' does not have (was the "
                                     "model changed since?)",
                                     file, saved.begin()->first, g.name));
}

namespace {

double at_least_0(const Json& j, const std::string& at) {
    double v = get_number(j, at);
    if (v < 0) throw InputError(fmt::format("{}: must be >= 0, got {}", at, v));
    return v;
}

}  // namespace

Json history_json(const std::vector<EpochMetrics>& h) {
    Json arr = Json::array();
    for (const auto& e : h)
        arr.push_back({{"epoch", e.epoch},
                       {"train_loss", e.train_loss},
                       {"test_loss", number_json(e.test_loss)},  // NaN or Inf when test rows leave log's domain
                       {"test_accuracy", e.test_accuracy},
                       {"seconds", e.seconds},
                       {"lr", e.lr}});
    return arr;
}

std::vector<EpochMetrics> checkpoint_history(const Checkpoint& c, const std::string& file) {
    std::vector<EpochMetrics> h;
    if (!c.info.contains("history")) return h;
    const Json& j = get_array(c.info["history"], file + ": info.history");
    for (std::size_t i = 0; i < j.size(); ++i) {
        const Json& e = j[i];
        const std::string at = json_path(file + ": info.history", i);
        get_object(e, at);
        auto field = [&](const char* key) { return json_path(at, key); };
        EpochMetrics m{get_int(require(e, "epoch", at), field("epoch")),
                       get_number(require(e, "train_loss", at), field("train_loss")),
                       number_from_json(require(e, "test_loss", at), field("test_loss")),
                       get_number(require(e, "test_accuracy", at), field("test_accuracy")),
                       at_least_0(require(e, "seconds", at), field("seconds")),
                       // Checkpoints from before the column have none: 0 (unknown).
                       e.contains("lr") ? at_least_0(e["lr"], field("lr")) : 0.0};
        const std::int64_t after = h.empty() ? 0 : h.back().epoch;
        if (m.epoch <= after || m.epoch > c.epoch)
            throw InputError(fmt::format("{}: epoch {} is not within {} to {} (the epochs of a history rise, up to the "
                                         "checkpoint's epoch)",
                                         field("epoch"), m.epoch, after + 1, c.epoch));
        if (m.test_accuracy != -1 && !(m.test_accuracy >= 0 && m.test_accuracy <= 1))
            throw InputError(fmt::format("{}: {} is not an accuracy (0 to 1, or -1 for none)", field("test_accuracy"),
                                         m.test_accuracy));
        h.push_back(m);
    }
    return h;
}

std::vector<std::string> run_vocabulary(const Checkpoint& c, const std::string& file) {
    if (!c.info.contains("vocabulary")) return {};
    return data::vocabulary_from_json(c.info["vocabulary"], file + ": info.vocabulary");
}

data::DataSpec data_for_run(const data::DataSpec& d, const Checkpoint& c, const std::string& file) {
    if (!data::data_kind(d.kind, d.where).vocabulary) return d;
    data::DataSpec with = d;
    with.vocabulary = run_vocabulary(c, file);
    if (with.vocabulary.empty())
        throw InputError(fmt::format("{}: the checkpoint holds no vocabulary (info.vocabulary), so it was not trained "
                                     "on {} data as {} is; give the weights of a run of this model",
                                     file, data::data_kind(d.kind, d.where).title, d.where));
    return with;
}

}  // namespace chainrule
