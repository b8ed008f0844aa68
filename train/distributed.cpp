#include "train/distributed.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>

#include "core/error.hpp"
#include "train/anomaly.hpp"
#include "train/progress.hpp"

#if CHAINRULE_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: OpenMPI's deprecated C++ bindings do not build with -Werror
#include <mpi.h>
#endif

namespace chainrule {
namespace {

// The launcher's word for this process's place, before (or without) MPI.
[[maybe_unused]] int env_int(std::initializer_list<const char*> names, int otherwise) {
    for (const char* name : names)
        if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
    return otherwise;
}

bool launched() { return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_SIZE"); }

}  // namespace

int exit_code(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const PeerFailed& p) {
        return p.code;
    } catch (const InputError&) {
        return 2;
    } catch (...) {
        return 1;
    }
}

Communicator::Communicator(FromLauncher) {
    if (!launched()) return;
#if CHAINRULE_HAVE_MPI
    MPI_Init(nullptr, nullptr);
    mpi_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
#else
    const int size = env_int({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}, 1);
    if (size <= 1) return;
    if (env_int({"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"}, 0) != 0) throw PeerFailed{2};
    throw InputError(fmt::format(
        "this chainrule was built without MPI, but it was started as one of {} processes (by mpirun): each would "
        "train its own copy. Install libopenmpi-dev and rebuild (meson setup build -Dmpi=enabled), or run it "
        "without mpirun (docs/distributed.md)",
        size));
#endif
}

Communicator::~Communicator() {
#if CHAINRULE_HAVE_MPI
    if (mpi_) MPI_Finalize();
#endif
}

std::pair<int, int> Communicator::agree_failure(int code) {
    std::vector<int> codes(std::size_t(size_), 0);
    codes[std::size_t(rank_)] = code;
#if CHAINRULE_HAVE_MPI
    if (mpi_) MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, codes.data(), 1, MPI_INT, MPI_COMM_WORLD);
#endif
    for (int r = 0; r < size_; ++r)
        if (codes[std::size_t(r)] != 0) return {r, codes[std::size_t(r)]};
    return {-1, 0};
}

void Communicator::broadcast([[maybe_unused]] std::string& bytes) {
#if CHAINRULE_HAVE_MPI
    if (!mpi_) return;
    std::uint64_t n = bytes.size();
    MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    bytes.resize(n);
    constexpr std::uint64_t kChunk = std::uint64_t{1} << 30;  // MPI counts are ints
    for (std::uint64_t at = 0; at < n; at += kChunk)
        MPI_Bcast(bytes.data() + at, int(std::min(kChunk, n - at)), MPI_BYTE, 0, MPI_COMM_WORLD);
#endif
}

void Communicator::allgather([[maybe_unused]] std::span<double> all) {
#if CHAINRULE_HAVE_MPI
    if (!mpi_) return;
    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all.data(), int(all.size() / std::size_t(size_)), MPI_DOUBLE,
                  MPI_COMM_WORLD);
#endif
}

void Communicator::abort(int code) {
    std::fflush(stdout);
    std::fflush(stderr);
#if CHAINRULE_HAVE_MPI
    if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    std::_Exit(code);
}

void run_together(Communicator& comm, const std::function<void()>& f) {
    std::exception_ptr error;
    try {
        f();
    } catch (...) {
        error = std::current_exception();
    }
    if (comm.size() == 1) {
        if (error) std::rethrow_exception(error);
        return;
    }
    auto [rank, code] = comm.agree_failure(error ? exit_code(error) : 0);
    if (rank < 0) return;
    if (rank == comm.rank()) {
        // Said here, before this process leaves MPI: once a peer has exited with its code,
        // mpirun may end this one before main() could print the message.
        try {
            std::rethrow_exception(error);
        } catch (const InputError& e) {
            fmt::print(stderr, "error: {}\n", e.what());
        } catch (const RunError& e) {
            fmt::print(stderr, "error: {}\n", e.what());
        } catch (...) {
            throw;
        }
        std::fflush(stderr);
    }
    throw PeerFailed{code};
}

void check_shardable(const Graph& g, const std::string& file) {
    auto batch_rows = [&](int id) {
        const Shape& s = g.node(id).shape;
        return !s.empty() && s[0].symbolic();
    };
    auto refuse = [&](const Node& n, const std::string& why) {
        // A node's place names its model file already ("m.json: nodes[3]") unless built in C++.
        throw InputError(fmt::format("{}: node '{}' (op {}) {}, so the batch cannot be cut into shards; train it "
                                     "with --shards 1 in one process (docs/distributed.md)",
                                     n.place.empty() ? file : n.place, n.name, n.op->name, why));
    };
    const int loss = g.loss();
    // A gradient inside the loss (a grad node) is the gradient of the batch's mean: a shard's
    // is n/n_s times as large, and no weighting of the shards undoes a function of it.
    std::vector<bool> feeds_loss(g.size(), false);
    feeds_loss[std::size_t(loss)] = true;
    for (std::size_t i = std::size_t(loss) + 1; i-- > 0;)
        if (feeds_loss[i])
            for (int in : g.node(int(i)).inputs) feeds_loss[std::size_t(in)] = true;
    for (std::size_t i = std::size_t(loss) + 1; i-- > 0;)
        if (feeds_loss[i] && g.node(int(i)).gradient && g.node(int(i)).op)
            refuse(g.node(int(i)), "is a gradient (a grad node) that the loss reads: the gradient of a shard's mean "
                                   "loss is not the batch's");
    for (std::size_t id = 0; id < g.nodes().size(); ++id) {
        const Node& n = g.node(int(id));
        if (n.kind != NodeKind::op) continue;
        bool fed_rows = false;
        for (int in : n.inputs) fed_rows = fed_rows || batch_rows(in);
        if (int(id) == loss) {
            if (!n.op->mean_over_rows || !fed_rows)
                refuse(n, "is the loss but not a mean over the batch's rows (mse, cross_entropy or mean of them)");
            continue;
        }
        if (!fed_rows) continue;
        if (n.op->mixes_rows) {
            std::vector<bool> batched;
            std::vector<std::size_t> ranks;
            for (int in : n.inputs) batched.push_back(batch_rows(in)), ranks.push_back(g.node(in).shape.size());
            const std::string why = n.op->mixes_rows(RowQuery{batched, ranks, n.attrs});
            if (!why.empty()) refuse(n, why);
        }
        if (!batch_rows(int(id))) refuse(n, "combines the batch's rows into a result without them");
    }
}

ShardedGradient::ShardedGradient(Communicator& comm, GradientParts parts, std::vector<int> params,
                                 std::int64_t shards, std::function<int()> stop_signal)
    : comm_(comm), p_(parts), params_(std::move(params)), shards_(shards), stop_signal_of_(std::move(stop_signal)) {
    const std::int64_t per_process = shards_ / comm_.size();
    first_ = comm_.rank() * per_process;
    last_ = first_ + per_process;
    for (int id : params_) width_ += p_.graph.node(id).value.numel();
    width_ += 3;  // the shard's loss, its number of terms (-1: by rows) and its process's status
    if (per_process * width_ > INT_MAX)
        throw RunError(fmt::format("{} shards per process of {} parameters are more than one MPI message can carry; "
                                   "use fewer shards",
                                   per_process, width_ - 3));
    slots_.assign(std::size_t(shards_ * width_), 0.0);
    sum_.assign(std::size_t(width_ - 3), 0.0);
}

std::span<const std::int64_t> ShardedGradient::rows(std::span<const std::int64_t> batch, std::int64_t s) const {
    const std::int64_t n = std::int64_t(batch.size());
    const std::int64_t begin = s * n / shards_, end = (s + 1) * n / shards_;
    return batch.subspan(std::size_t(begin), std::size_t(end - begin));
}

// This process's shards, each its own forward and backward; shard s's masks come from
// noise_seed(step seed, s), whichever process computes it.
void ShardedGradient::compute_shards(std::span<const std::int64_t> rows, std::uint64_t step_seed,
                                     const StepPlace& at) {
    Graph& g = p_.graph;
    for (std::int64_t s = first_; s < last_; ++s) {
        std::span<const std::int64_t> part = this->rows(rows, s);
        if (part.empty()) continue;
        p_.feeder.feed(p_.split, part);
        p_.plan.set_noise(noise_seed(step_seed, std::uint64_t(s)));
        g.forward(p_.plan);
        if (p_.detect_anomaly) check_values_finite(g, fmt::format("{}, shard {}", at.text(), s));
        g.backward(p_.plan);
        if (p_.detect_anomaly) check_gradients_finite(g, p_.plan, fmt::format("{}, shard {}", at.text(), s));
        keep(s, g.node(p_.plan.loss()).value.at(0), loss_terms());
    }
}

double ShardedGradient::compute(std::span<const std::int64_t> rows, std::span<const std::int64_t>,
                                std::uint64_t step_seed, const StepPlace& at) {
    std::exception_ptr failure;
    try {
        compute_shards(rows, step_seed, at);
    } catch (...) {
        failure = std::current_exception();
    }
    const int signal = stop_signal_of_ ? stop_signal_of_() : 0;
    const int status = failure                          ? 1000 + exit_code(failure)
                       : p_.stop && p_.stop->load() ? std::clamp(signal, 1, 999)
                                                        : 0;
    const Combined c = combine(std::int64_t(rows.size()), status);
    if (c.failed_rank >= 0) {
        failure_agreed_ = true;
        if (c.failed_rank == comm_.rank()) std::rethrow_exception(failure);
        throw PeerFailed{c.failed_code};
    }
    stop_signal_ = c.stop_signal;
    return c.loss;
}

// The number of terms the loss's mean was over in the last forward, when its op says it
// varies with the data (Op::mean_terms); -1: every row counts the same.
std::int64_t ShardedGradient::loss_terms() const {
    const Node& loss = p_.graph.node(p_.plan.loss());
    if (!loss.op->mean_terms) return -1;
    std::vector<const Tensor*> in;
    for (int i : loss.inputs) in.push_back(&p_.graph.node(i).value);
    return loss.op->mean_terms(in, loss.attrs).value_or(-1);
}

void ShardedGradient::keep(std::int64_t shard, double loss, std::int64_t terms) {
    double* slot = slots_.data() + shard * width_;
    for (int id : params_) {
        const Tensor& grad = p_.graph.node(id).grad;
        for (std::int64_t i = 0; i < grad.numel(); ++i) *slot++ = grad.at(i);
    }
    *slot++ = loss;
    *slot = double(terms);
}

ShardedGradient::Combined ShardedGradient::combine(std::int64_t batch_rows, int status) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t loss_at = width_ - 3, terms_at = width_ - 2, status_at = width_ - 1;
    for (std::int64_t s = first_; s < last_; ++s) slots_[std::size_t(s * width_ + status_at)] = status;
    comm_.allgather(slots_);
    Combined c;
    const std::int64_t per_process = shards_ / comm_.size();
    for (std::int64_t s = 0; s < shards_; ++s) {
        const int st = int(slots_[std::size_t(s * width_ + status_at)]);
        if (st >= 1000 && c.failed_rank < 0) c.failed_rank = int(s / per_process), c.failed_code = st - 1000;
        if (st > 0 && st < 1000) c.stop_signal = std::max(c.stop_signal, st);
    }
    const auto t1 = std::chrono::steady_clock::now();
    gather_seconds_ += std::chrono::duration<double>(t1 - t0).count();
    if (c.failed_rank >= 0) return c;
    // A loss over a number of terms that is data (ignore_index): shards weigh by their terms.
    // A batch with none at all has loss 0 and no gradient, as in one piece.
    std::int64_t total_terms = 0;
    bool by_terms = false;
    auto shard_rows = [&](std::int64_t s) { return (s + 1) * batch_rows / shards_ - s * batch_rows / shards_; };
    for (std::int64_t s = 0; s < shards_; ++s)
        if (const double t = slots_[std::size_t(s * width_ + terms_at)]; shard_rows(s) > 0 && t >= 0)
            by_terms = true, total_terms += std::int64_t(t);
    // The fold: the same numbers in the same order on every process and for every K.
    bool first = true;
    for (std::int64_t s = 0; s < shards_; ++s) {
        const std::int64_t n_s = shard_rows(s);
        if (n_s == 0) continue;
        const double terms = slots_[std::size_t(s * width_ + terms_at)];
        const double weight = !by_terms        ? double(n_s) / double(batch_rows)
                              : total_terms > 0 ? terms / double(total_terms)
                                                : 0.0;
        const double* slot = slots_.data() + s * width_;
        for (std::size_t i = 0; i < sum_.size(); ++i) sum_[i] = first ? weight * slot[i] : sum_[i] + weight * slot[i];
        c.loss = first ? weight * slot[loss_at] : c.loss + weight * slot[loss_at];
        first = false;
    }
    std::size_t at = 0;
    for (int id : params_) {
        Tensor& grad = p_.graph.node(id).grad;
        for (std::int64_t i = 0; i < grad.numel(); ++i) grad.set(i, sum_[at++]);
    }
    sum_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    ++combines_;
    return c;
}

std::string ShardedGradient::cost() const {
    if (combines_ == 0) return "";
    return fmt::format("combining {} shards over {} process{}, per step: {} gathering them (waiting for the slowest "
                       "included), {} summing them",
                       shards_, comm_.size(), comm_.size() == 1 ? "" : "es",
                       format_seconds(gather_seconds_ / double(combines_)), format_seconds(sum_seconds_ / double(combines_)));
}

}  // namespace chainrule
