#include "train/run_dir.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <iterator>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fmt/format.h>
#include <limits>

#include "core/error.hpp"
#include "data/dataset.hpp"
#include "train/optimizer.hpp"
#include "train/plot.hpp"

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

}  // namespace

std::string checkpoint_path(const std::string& p) {
    return fs::is_directory(p) ? (fs::path(p) / "checkpoint.ckpt").string() : p;
}

RunDir::RunDir(std::string dir, bool replace_run) : dir_(std::move(dir)) {
    if (dir_.empty()) return;
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw RunError(fmt::format("{}: cannot create the run directory: {}", dir_, ec.message()));
    lock();
    const std::string ckpt = checkpoint_file();
    if (!replace_run && fs::exists(ckpt, ec)) {
        std::string what = "a run";
        try {
            const Checkpoint c = load_checkpoint(ckpt);
            what = fmt::format("a run of model '{}' ({} epoch{})", c.model, c.epoch, c.epoch == 1 ? "" : "s");
        } catch (const InputError&) {
        }
        unlock();  // a constructor that throws has no destructor to do it
        throw InputError(fmt::format("{}: the folder holds {} already (checkpoint.ckpt); continue it with --resume {}, "
                                     "or replace it with --overwrite",
                                     dir_, what, dir_));
    }
    for (const auto& f : fs::directory_iterator(dir_, ec))
        if (is_atomic_temp_file(f.path().filename().string())) fs::remove(f.path(), ec);
}

// flock on DIR/.lock. The file is removed when the run ends, so a lock taken on a file that
// has meanwhile been removed (or replaced) by the run that held it is no lock: then again.
void RunDir::lock() {
    const std::string lock = (fs::path(dir_) / ".lock").string();
    for (;;) {
        lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (lock_fd_ < 0) throw RunError(fmt::format("{}: cannot open: {}", lock, std::strerror(errno)));
        if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
            char pid[32] = {};
            ssize_t n = ::pread(lock_fd_, pid, sizeof pid - 1, 0);
            ::close(lock_fd_);
            lock_fd_ = -1;
            throw InputError(fmt::format("{}: the run directory is in use by another training{}; wait for it to end "
                                         "or choose another --out",
                                         dir_,
                                         n > 0 ? fmt::format(" (process {})", std::string(pid, std::size_t(n))) : ""));
        }
        struct stat held {}, named {};
        if (::fstat(lock_fd_, &held) == 0 && ::stat(lock.c_str(), &named) == 0 && held.st_dev == named.st_dev &&
            held.st_ino == named.st_ino)
            break;
        ::close(lock_fd_);
    }
    std::string me = std::to_string(::getpid());
    if (::ftruncate(lock_fd_, 0) == 0 && ::pwrite(lock_fd_, me.data(), me.size(), 0) < 0) {
        // The pid is only a courtesy for the message above; the lock is what counts.
    }
}

RunDir::~RunDir() { unlock(); }

void RunDir::unlock() {
    if (lock_fd_ < 0) return;
    // Removed while still held: a run that opens it now finds it gone after its flock and
    // takes a new one (lock() above), so two runs never both hold the folder.
    ::unlink((fs::path(dir_) / ".lock").c_str());
    ::close(lock_fd_);
    lock_fd_ = -1;
}

Json model_json_for_run(const Model& m, const std::string& dir) {
    Json j = model_to_json(m, true);
    if (!m.training.is_object() || !m.training.contains("data")) return j;
    const data::DataSpec s = data::parse_data_spec(m.training["data"], m.path + ": training.data", m.dir);
    if (s.written_key.empty() || fs::path(s.written).is_absolute()) return j;
    std::error_code ec;
    const fs::path data = fs::weakly_canonical(fs::absolute(fs::path(m.dir) / s.written), ec);
    const fs::path run = fs::weakly_canonical(fs::absolute(dir), ec);
    if (ec) return j;
    // Relative when the two share a folder below the root (a repository's runs/ and data/:
    // the pair may move together), else absolute ("../../.." up to / and down again would
    // break as soon as the run directory moves).
    const auto under_root = [](const fs::path& p) {
        auto first = std::next(p.begin());  // p is absolute: its first element is "/"
        return first == p.end() ? fs::path() : *first;
    };
    const fs::path relative = data.lexically_relative(run);
    const bool shared = !under_root(data).empty() && under_root(data) == under_root(run);
    j["training"]["data"][s.written_key] = (shared && !relative.empty() ? relative : data).string();
    return j;
}

std::string RunDir::checkpoint_file() const {
    return dir_.empty() ? "" : (fs::path(dir_) / "checkpoint.ckpt").string();
}

void RunDir::write_epoch(const Model& m, Checkpoint c, const std::vector<EpochMetrics>& history) const {
    if (dir_.empty()) return;
    c.info["history"] = history_json(history);
    save_checkpoint(c, checkpoint_file());
    write_file_atomic((fs::path(dir_) / "metrics.csv").string(), metrics_csv(history));
    write_file_atomic((fs::path(dir_) / "curves.svg").string(), plot_svg(history, m.graph.name));
    Json model = model_json_for_run(m, dir_);
    write_file_atomic((fs::path(dir_) / "model.json").string(), model.dump(2) + "\n");
}

Resumed resume_run(const std::string& dir_or_file, Graph& g, const Json& settings) {
    Resumed r;
    r.file = checkpoint_path(dir_or_file);
    r.checkpoint = load_checkpoint(r.file);
    const Checkpoint& c = r.checkpoint;
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
    r.history = checkpoint_history(c, r.file);
    return r;
}

RunHistory load_run_history(const std::string& dir_or_file) {
    RunHistory r;
    r.file = checkpoint_path(dir_or_file);
    const Checkpoint c = load_checkpoint(r.file);
    r.model = c.model;
    r.history = checkpoint_history(c, r.file);
    return r;
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
