#include "data/png.hpp"

#include <fmt/format.h>
#include <vector>
#include <zlib.h>

#include "core/error.hpp"

namespace chainrule::data {
namespace {

void put32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(char((v >> shift) & 0xff));
}

// length, type, data, then the CRC of type and data (PNG spec, section 5.3).
void chunk(std::string& out, const char type[5], const std::string& data) {
    put32(out, std::uint32_t(data.size()));
    std::size_t start = out.size();
    out.append(type, 4);
    out += data;
    uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(out.data() + start), uInt(out.size() - start));
    put32(out, std::uint32_t(crc));
}

}  // namespace

std::string encode_png_gray(std::int64_t width, std::int64_t height, std::span<const std::uint8_t> pixels) {
    if (width <= 0 || height <= 0 || width > 1 << 16 || height > 1 << 16 ||
        std::int64_t(pixels.size()) != width * height)
        throw RunError(fmt::format("PNG: {}x{} image with {} pixels", width, height, pixels.size()));
    // Every scanline starts with its filter type; 0 = none.
    std::vector<Bytef> raw;
    raw.reserve(std::size_t(height * (width + 1)));
    for (std::int64_t y = 0; y < height; ++y) {
        raw.push_back(0);
        raw.insert(raw.end(), pixels.begin() + y * width, pixels.begin() + (y + 1) * width);
    }
    uLongf size = compressBound(uLong(raw.size()));
    std::string packed(size, '\0');
    if (compress2(reinterpret_cast<Bytef*>(packed.data()), &size, raw.data(), uLong(raw.size()), 9) != Z_OK)
        throw RunError("PNG: zlib compress2 failed");
    packed.resize(size);

    std::string ihdr;
    put32(ihdr, std::uint32_t(width));
    put32(ihdr, std::uint32_t(height));
    ihdr += std::string{char(8), char(0), char(0), char(0), char(0)};  // 8-bit gray, deflate, no interlace
    std::string out = "\x89PNG\r\n\x1a\n";
    chunk(out, "IHDR", ihdr);
    chunk(out, "IDAT", packed);
    chunk(out, "IEND", "");
    return out;
}

}  // namespace chainrule::data
