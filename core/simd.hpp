// SIMD and inlining macros shared by every room's hot loops (ops/kernels.hpp, data/pixels.hpp).
#pragma once

// Hot loops get an AVX2 copy chosen when the library loads, while the build itself targets
// baseline x86-64 and runs anywhere. The clone has no FMA, so it rounds exactly like the
// baseline code: results do not depend on the machine. Only non-template functions can carry it.
// The kernels below are forced inline so that each clone compiles its own copy of them.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CHAINRULE_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CHAINRULE_SIMD_CLONES
#endif
#if defined(__GNUC__) || defined(__clang__)
#define CHAINRULE_INLINE inline __attribute__((always_inline))
#else
#define CHAINRULE_INLINE inline
#endif
