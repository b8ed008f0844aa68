// A minimal PNG encoder for 8-bit grayscale images (zlib does the compression).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace chainrule::data {

// The bytes of a PNG file: `pixels` is height rows of width bytes, 0 black, 255 white.
std::string encode_png_gray(std::int64_t width, std::int64_t height, std::span<const std::uint8_t> pixels);

}  // namespace chainrule::data
