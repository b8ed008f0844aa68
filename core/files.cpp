#include "core/files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "core/error.hpp"

namespace chainrule {

namespace {

const char* file_kind(mode_t mode) {
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a file";
}

}  // namespace

FilePtr open_input_file(const std::string& path, std::uint64_t& size) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        // open() of a socket fails with "No such device or address": say what it is instead.
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
            throw InputError(fmt::format("{}: is not a regular file ({}); expected a file", path, file_kind(st.st_mode)));
        throw InputError(fmt::format("{}: cannot open: {}", path, std::strerror(err)));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        throw InputError(fmt::format("{}: cannot open: {}", path, std::strerror(err)));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        if (S_ISDIR(st.st_mode)) throw InputError(fmt::format("{}: is a directory; expected a file", path));
        throw InputError(fmt::format("{}: is not a regular file ({}); expected a file", path, file_kind(st.st_mode)));
    }
    // Reads from a regular file never block; clearing the flag keeps stdio's view simple.
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    FilePtr f(::fdopen(fd, "rb"));
    if (!f) {
        int err = errno;
        ::close(fd);
        throw InputError(fmt::format("{}: cannot open: {}", path, std::strerror(err)));
    }
    size = static_cast<std::uint64_t>(st.st_size);
    return f;
}

std::string read_file_capped(const std::string& path, std::uint64_t cap, const std::string& cap_name) {
    std::uint64_t size = 0;
    FilePtr f = open_input_file(path, size);
    if (size > cap)
        throw InputError(fmt::format("{}: file is {} bytes, more than the {}", path, size, cap_name));
    // The size is only a hint (a file in /proc says 0, a log may grow): the cap is kept on
    // the bytes actually read, one past the cap being enough to refuse.
    std::string text;
    text.reserve(static_cast<std::size_t>(size));
    constexpr std::size_t kChunk = std::size_t{1} << 16;
    for (;;) {
        std::size_t have = text.size();
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, cap + 1 - have));
        text.resize(have + want);
        std::size_t got = std::fread(text.data() + have, 1, want, f.get());
        text.resize(have + got);
        if (text.size() > cap)
            throw InputError(fmt::format("{}: more than {} bytes, more than the {}", path, cap, cap_name));
        if (got < want) {
            if (std::ferror(f.get())) throw InputError(fmt::format("{}: read error: {}", path, std::strerror(errno)));
            break;
        }
    }
    return text;
}

std::string read_text_file(const std::string& path) {
    return read_file_capped(path, std::uint64_t{1} << 30, "1 GiB cap for text files");
}

namespace {
constexpr std::string_view kTempMark = ".tmp-", kTempTemplate = "XXXXXX";  // mkstemp fills the X's
}  // namespace

bool is_atomic_temp_file(const std::string& filename) {
    const std::size_t tail = kTempMark.size() + kTempTemplate.size();
    return filename.size() > tail && filename.compare(filename.size() - tail, kTempMark.size(), kTempMark) == 0;
}

void write_file_atomic(const std::string& path, const std::string& text) {
    std::string tmp = path + std::string(kTempMark) + std::string(kTempTemplate);
    std::vector<char> name(tmp.begin(), tmp.end());
    name.push_back('\0');
    int fd = ::mkstemp(name.data());
    if (fd < 0) throw RunError(fmt::format("{}: cannot create a temporary file: {}", path, std::strerror(errno)));
    auto fail = [&](const char* what) {
        int err = errno;
        ::close(fd);
        ::unlink(name.data());
        throw RunError(fmt::format("{}: {}: {}", path, what, std::strerror(err)));
    };
    const char* p = text.data();
    std::size_t left = text.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("write failed");
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    if (::fchmod(fd, 0644) != 0) fail("chmod failed");
    if (::fsync(fd) != 0) fail("fsync failed");
    if (::close(fd) != 0) {
        ::unlink(name.data());
        throw RunError(fmt::format("{}: close failed: {}", path, std::strerror(errno)));
    }
    if (::rename(name.data(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(name.data());
        throw RunError(fmt::format("{}: rename failed: {}", path, std::strerror(err)));
    }
    // Make the rename itself durable.
    const std::size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : path.substr(0, slash);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace chainrule
