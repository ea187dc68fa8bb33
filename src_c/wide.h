/* Hot element-wise loops also built for AVX2 and picked at load time (the build has no
 * -march: CI machines vary): the same IEEE operations per element (-ffp-contract=off: no
 * FMA; no reassociation), on twice the lanes. GCC on x86-64 Linux only (ifunc). */
#ifndef PDN_WIDE_H
#define PDN_WIDE_H
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define PDN_WIDE __attribute__((target_clones("avx2", "default")))
/* AVX-512 too, where it measured faster (mish's and Winograd's arithmetic) */
#define PDN_WIDE512 __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PDN_WIDE
#define PDN_WIDE512
#endif
/* Hand-written AVX-512 (intrinsics, chosen at run time with __builtin_cpu_supports) where
 * GCC's own vectorisation falls short. Not in sanitized builds: AddressSanitizer does not
 * check masked vector loads and stores. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__)
#define PDN_AVX512_INTRINSICS 1
#endif
#endif
