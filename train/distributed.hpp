// Data-parallel training (docs/distributed.md): the processes of a run, and the gradient of
// a batch cut into S shards whose parts are summed in shard order, whatever the number of
// processes K, so that the weights come out the same bit for bit for every K that divides S.
//
// MPI is optional at build time (meson option `mpi`); without it a Communicator is always
// the one process, and a binary started by mpirun with more than one process refuses.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "graph/graph.hpp"
#include "train/gradient.hpp"

namespace chainrule {

// Thrown on the processes that did not fail when another did (which printed the message):
// they end with the same exit code and say nothing.
struct PeerFailed {
    int code = 2;
};

// 2 for an InputError, a PeerFailed's own code, else 1: the exit code of the CLI.
int exit_code(const std::exception_ptr& e);

class Communicator {
public:
    Communicator() = default;  // one process
    // Under an MPI launcher (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE in the environment):
    // MPI's world, initialised here and finalised by the destructor. Built without MPI and
    // launched as one of several processes: an InputError on the first, PeerFailed on the others.
    struct FromLauncher {};
    explicit Communicator(FromLauncher);
    ~Communicator();
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool root() const { return rank_ == 0; }

    // Every process calls this at the same point with its exit code (0: it did not fail).
    // Returns the lowest failing rank (-1: none) and that rank's code.
    std::pair<int, int> agree_failure(int code);
    // Rank 0's bytes, on every process.
    void broadcast(std::string& bytes);
    // `all` holds size() equal blocks; each process has filled its own (block rank()); after
    // the call every process has every block.
    void allgather(std::span<double> all);
    // Ends every process of the job with `code` (MPI_Abort): for a failure on one process
    // that the others cannot meet at a collective.
    [[noreturn]] void abort(int code);

private:
    int rank_ = 0, size_ = 1;
    bool mpi_ = false;
};

// Runs `f` on every process; if it throws on any, the lowest failing process prints its
// error (an InputError or RunError, as main() would; any other it rethrows), and every
// process throws PeerFailed with that exit code, so all end together with one message.
void run_together(Communicator& comm, const std::function<void()>& f);

// Whether `g` may be trained in shards: its loss must be a mean over the batch's rows (an op
// with the fact Op::mean_over_rows: mse, cross_entropy, mean; a mean over a number of terms
// that is data, Op::mean_terms, is weighted by it) and no op may mix rows (an op
// whose Op::mixes_rows says why, or one whose output loses the batch axis before the loss).
// An InputError naming the model file and the node if not.
void check_shardable(const Graph& g, const std::string& file);

// The gradient of a batch computed shard by shard. Shard s of a batch of n rows is rows
// [s·n/S, (s+1)·n/S) of the sampler's order; process r computes shards [r·S/K, (r+1)·S/K),
// each its own forward and backward with dropout's masks from noise_seed(step seed, s).
// Then every process gathers every shard's gradient and loss and sums them, weighted n_s/n
// (or t_s/t, by the loss's terms, when its op counts them: cross_entropy's ignore_index),
// as a left fold in shard order in float64, into the graph's parameter gradients. The same
// collective carries each process's failure or stop: a failure anywhere ends compute() on
// every process (the failing one rethrows its error, the others throw PeerFailed), and a stop
// asked on any process is agreed by all. Buffers are allocated once, here.
class ShardedGradient final : public Gradient {
public:
    // `stop_signal` gives the signal that set parts.stop (0: none yet).
    ShardedGradient(Communicator& comm, GradientParts parts, std::vector<int> params, std::int64_t shards,
                    std::function<int()> stop_signal);
    double compute(std::span<const std::int64_t> rows, std::span<const std::int64_t> next, std::uint64_t step_seed,
                   const StepPlace& at) override;
    bool stop_requested() const override { return stop_signal_ > 0; }
    // The signal every process agreed to stop on at the last compute() (0: none).
    int agreed_stop() const { return stop_signal_; }
    // Whether compute() ended in a failure every process has already agreed on.
    bool failure_agreed() const { return failure_agreed_; }

    std::int64_t first() const { return first_; }  // this process's shards: [first, last)
    std::int64_t last() const { return last_; }
    std::span<const std::int64_t> rows(std::span<const std::int64_t> batch, std::int64_t shard) const;
    // "combining 4 shards over 2 processes, per step: ...", or "" before any combine.
    std::string cost() const;

private:
    // After shard s's backward: its loss, its number of terms and the graph's parameter gradients.
    void keep(std::int64_t shard, double loss, std::int64_t terms);
    std::int64_t loss_terms() const;
    // The collective. `status` is this process's: 0 fine, 1 to 999 a stop asked for (the
    // signal), 1000 + exit code a failure.
    struct Combined {
        double loss = 0;
        int stop_signal = 0;   // the largest stop asked for on any process, 0: none
        int failed_rank = -1;  // the lowest process that failed, -1: none
        int failed_code = 0;
    };
    Combined combine(std::int64_t batch_rows, int status);
    void compute_shards(std::span<const std::int64_t> rows, std::uint64_t step_seed, const StepPlace& at);

    Communicator& comm_;
    GradientParts p_;
    std::vector<int> params_;
    std::int64_t shards_, first_, last_, width_ = 0;  // width_: doubles per shard slot
    std::function<int()> stop_signal_of_;
    std::vector<double> slots_;                       // [shards][width_]: gradient, loss, status
    std::vector<double> sum_;                         // the batch gradient, before rounding to the dtype
    double gather_seconds_ = 0, sum_seconds_ = 0;
    std::int64_t combines_ = 0;
    int stop_signal_ = 0;
    bool failure_agreed_ = false;
};

}  // namespace chainrule
