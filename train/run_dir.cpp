#include "train/run_dir.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <unistd.h>
#include <fmt/format.h>
#include <limits>

#include "core/error.hpp"
#include "core/files.hpp"
#include "train/optimizer.hpp"

namespace chainrule {
namespace {

namespace fs = std::filesystem;

std::string metrics_csv(const std::vector<EpochMetrics>& h) {
    std::string out = "epoch,train_loss,test_loss,test_accuracy,seconds,lr\n";
    for (const auto& e : h)
        out += fmt::format("{},{:.17g},{:.17g},{},{:.6f},{:.17g}\n", e.epoch, e.train_loss, e.test_loss,
                           e.test_accuracy < 0 ? std::string() : fmt::format("{:.17g}", e.test_accuracy), e.seconds,
                           e.lr);
    return out;
}

// JSON has no NaN or Inf, and a test loss can be either while training goes on (a few test
// rows outside log's domain): those are kept as the strings "nan", "inf" and "-inf".
Json loss_json(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return v;
}

double loss_from_json(const Json& j, const std::string& at) {
    if (j.is_string()) {
        const std::string& w = j.get_ref<const std::string&>();
        if (w == "nan") return std::numeric_limits<double>::quiet_NaN();
        if (w == "inf") return std::numeric_limits<double>::infinity();
        if (w == "-inf") return -std::numeric_limits<double>::infinity();
        throw InputError(fmt::format("{}: expected a number, \"nan\", \"inf\" or \"-inf\", got {}", at, json_brief(j)));
    }
    return get_number(j, at);
}

Json history_json(const std::vector<EpochMetrics>& h) {
    Json arr = Json::array();
    for (const auto& e : h)
        arr.push_back({{"epoch", e.epoch},
                       {"train_loss", e.train_loss},
                       {"test_loss", loss_json(e.test_loss)},
                       {"test_accuracy", e.test_accuracy},
                       {"seconds", e.seconds},
                       {"lr", e.lr}});
    return arr;
}

std::vector<EpochMetrics> history_from_json(const Json& j, const std::string& file) {
    std::vector<EpochMetrics> h;
    if (!j.is_array()) throw InputError(fmt::format("{}: checkpoint has no metrics history", file));
    for (std::size_t i = 0; i < j.size(); ++i) {
        const Json& e = j[i];
        std::string at = json_path(file + ": info.history", i);
        auto field = [&](const char* key) { return json_path(at, key); };
        h.push_back({get_int(require(e, "epoch", at), field("epoch")),
                     get_number(require(e, "train_loss", at), field("train_loss")),
                     loss_from_json(require(e, "test_loss", at), field("test_loss")),
                     get_number(require(e, "test_accuracy", at), field("test_accuracy")),
                     get_number(require(e, "seconds", at), field("seconds")),
                     // Checkpoints from before the column have none: 0 (unknown).
                     e.contains("lr") ? get_number(e["lr"], field("lr")) : 0.0});
    }
    return h;
}

}  // namespace

std::string checkpoint_path(const std::string& p) {
    return fs::is_directory(p) ? (fs::path(p) / "checkpoint.ckpt").string() : p;
}

RunDir::RunDir(std::string dir) : dir_(std::move(dir)) {
    if (dir_.empty()) return;
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw RunError(fmt::format("{}: cannot create the run directory: {}", dir_, ec.message()));
    const std::string lock = (fs::path(dir_) / ".lock").string();
    lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) throw RunError(fmt::format("{}: cannot open: {}", lock, std::strerror(errno)));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = {};
        ssize_t n = ::pread(lock_fd_, pid, sizeof pid - 1, 0);
        ::close(lock_fd_);
        lock_fd_ = -1;
        throw InputError(fmt::format("{}: the run directory is in use by another training{}; wait for it to end or "
                                     "choose another --out",
                                     dir_, n > 0 ? fmt::format(" (process {})", std::string(pid, std::size_t(n))) : ""));
    }
    std::string me = std::to_string(::getpid());
    if (::ftruncate(lock_fd_, 0) == 0 && ::pwrite(lock_fd_, me.data(), me.size(), 0) < 0) {
        // The pid is only a courtesy for the message above; the lock is what counts.
    }
    for (const auto& f : fs::directory_iterator(dir_, ec))
        if (is_atomic_temp_file(f.path().filename().string())) fs::remove(f.path(), ec);
}

RunDir::~RunDir() {
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string RunDir::checkpoint_file() const {
    return dir_.empty() ? "" : (fs::path(dir_) / "checkpoint.ckpt").string();
}

void RunDir::write_epoch(const Model& m, Checkpoint c, const std::vector<EpochMetrics>& history) const {
    if (dir_.empty()) return;
    c.info["history"] = history_json(history);
    save_checkpoint(c, checkpoint_file());
    write_file_atomic((fs::path(dir_) / "metrics.csv").string(), metrics_csv(history));
    write_file_atomic((fs::path(dir_) / "curves.svg").string(), curves_svg(history, m.graph.name));
    save_model(m, (fs::path(dir_) / "model.json").string(), true);
}

Resumed resume_run(const std::string& dir_or_file, Graph& g, const Json& settings) {
    Resumed r;
    r.file = checkpoint_path(dir_or_file);
    r.checkpoint = load_checkpoint(r.file);
    const Checkpoint& c = r.checkpoint;
    if (c.epoch < 0 || c.epoch > kMaxEpochs)
        throw InputError(fmt::format("{}: the checkpoint's epoch {} is outside 0 to {}", r.file, c.epoch, kMaxEpochs));
    restore_parameters(g, c, r.file);
    for (const auto& [key, value] : settings.items()) {
        if (!c.info.contains(key) || c.info[key] != value)
            throw InputError(fmt::format("{}: the checkpoint was trained with {} = {} but this run has {}; resume "
                                         "with the same settings{}",
                                         r.file, key, c.info.contains(key) ? c.info[key].dump() : "(none)", value.dump(),
                                         is_optimizer_setting(key)
                                             ? ", or pass --fresh-optimizer to keep the trained parameters and start "
                                               "the optimizer and schedule afresh"
                                             : ""));
    }
    r.history = history_from_json(c.info.contains("history") ? c.info["history"] : Json(), r.file);
    return r;
}

RunHistory load_run_history(const std::string& dir_or_file) {
    RunHistory r;
    r.file = checkpoint_path(dir_or_file);
    const Checkpoint c = load_checkpoint(r.file);
    r.model = c.model;
    r.history = history_from_json(c.info.contains("history") ? c.info["history"] : Json(), r.file);
    return r;
}

std::string curves_svg(const std::vector<EpochMetrics>& history, const std::string& title, PlotOptions options) {
    std::vector<CurvePoint> points;
    points.reserve(history.size());
    for (const EpochMetrics& e : history) points.push_back({e.epoch, e.train_loss, e.test_loss, e.test_accuracy});
    return plot_svg(points, title, options);
}

void Saver::epoch_done(const Model& m, Checkpoint c, const std::vector<EpochMetrics>& history) {
    if (!dir_.enabled()) return;
    const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_save_).count();
    const bool due = every_ <= 0 || c.epoch == last_epoch_ || since >= every_;
    pending_.emplace(std::move(c));
    pending_history_ = history;
    if (due) write(m);
}

void Saver::flush(Model& m) {
    if (!pending_) return;
    restore_parameters(m.graph, *pending_, dir_.checkpoint_file());
    write(m);
}

std::string Saver::last_good() const {
    return good_ ? fmt::format("the last good checkpoint is {} (epoch {})", good_->first, good_->second)
                 : "no checkpoint was written";
}

void Saver::write(const Model& m) {
    const std::int64_t epoch = pending_->epoch;
    dir_.write_epoch(m, std::move(*pending_), pending_history_);
    pending_.reset();
    good_ = {dir_.checkpoint_file(), epoch};
    last_save_ = std::chrono::steady_clock::now();
}

}  // namespace chainrule
