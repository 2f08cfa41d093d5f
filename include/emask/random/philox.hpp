/// \file
/// \brief Philox4x32-10, the counter-based generator behind every random mask, and the way a draw
/// is addressed: (seed, sample id, purpose, index, retry) -> counter and key.
///
/// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
/// SC 2011) maps a 128-bit counter and a 64-bit key to 128 random bits. It is checked against the
/// known-answer vectors published with Random123 (tests/kat_vectors). Because the output is a pure
/// function of (counter, key), any draw can be computed without the others: results never depend
/// on thread count, batch composition or which shard computes them. docs/random.md gives every
/// step so the stream can be reproduced bit for bit in another language.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "emask/config.hpp"

#include "emask/detail/avx2.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief A Philox4x32 counter: four 32-bit words.
using philox_counter = std::array<std::uint32_t, 4>;
/// \brief A Philox4x32 key: two 32-bit words.
using philox_key = std::array<std::uint32_t, 2>;
/// \brief One Philox4x32 output block: four 32-bit words.
using philox_block = std::array<std::uint32_t, 4>;

namespace detail {
constexpr std::uint32_t philox_m0 = 0xD2511F53u;
constexpr std::uint32_t philox_m1 = 0xCD9E8D57u;
constexpr std::uint32_t philox_w0 = 0x9E3779B9u;  // golden ratio
constexpr std::uint32_t philox_w1 = 0xBB67AE85u;  // sqrt(3) - 1
}  // namespace detail

/// \brief Philox4x32 with \p rounds rounds (10 is the standard, crush-resistant choice).
///
/// Round: (hi0, lo0) = M0 * c0, (hi1, lo1) = M1 * c2 as 64-bit products; the new counter is
/// {hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0}. Between rounds the key is bumped by the Weyl
/// constants (k0 += W0, k1 += W1), so round r uses key + r * W (mod 2^32).
constexpr philox_block philox4x32(philox_counter ctr, philox_key key, int rounds = 10) noexcept {
  for (int r = 0; r < rounds; ++r) {
    if (r > 0) {
      key[0] += detail::philox_w0;
      key[1] += detail::philox_w1;
    }
    const std::uint64_t p0 = static_cast<std::uint64_t>(detail::philox_m0) * ctr[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(detail::philox_m1) * ctr[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32);
    const auto lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32);
    const auto lo1 = static_cast<std::uint32_t>(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
  }
  return ctr;
}

/// \brief Philox4x32-10: the generator every emask random function uses.
constexpr philox_block philox4x32_10(const philox_counter& ctr, const philox_key& key) noexcept {
  return philox4x32(ctr, key, 10);
}

/// \brief What a draw is for. Each algorithm draws from its own purpose, so two algorithms with
/// the same seed and sample never share random bits. Values 0x0000-0x7FFF are free for users;
/// emask's own purposes are listed here and never change (changing one changes the stream).
namespace purpose {
constexpr std::uint16_t user = 0x0000;              ///< first value free for callers
constexpr std::uint16_t mlm_select = 0x8001;        ///< BERT token selection (packed words)
constexpr std::uint16_t mlm_replace = 0x8002;       ///< 80/10/10 decision and random id, per token
constexpr std::uint16_t wwm_order = 0x8003;         ///< whole-word masking: word order noise
constexpr std::uint16_t span_draw = 0x8004;         ///< SpanBERT: span length and anchor, per try
constexpr std::uint16_t span_replace = 0x8005;      ///< SpanBERT: 80/10/10 decision, per span
constexpr std::uint16_t t5_noise_cuts = 0x8006;     ///< T5: segmentation of the noise tokens
constexpr std::uint16_t t5_nonnoise_cuts = 0x8007;  ///< T5: segmentation of the kept tokens
constexpr std::uint16_t mae_noise = 0x8008;         ///< MAE: per-patch shuffle noise
constexpr std::uint16_t mgd_spatial = 0x8009;       ///< MGD: spatial drop flags
constexpr std::uint16_t mgd_channel = 0x800A;       ///< MGD: channel drop flags
constexpr std::uint16_t diffusion_time = 0x800B;  ///< LLaDA / MDLM: t and length cut, per sequence
constexpr std::uint16_t diffusion_select = 0x800C;  ///< LLaDA / MDLM: per-token mask draw
constexpr std::uint16_t maskgit_ratio = 0x800D;     ///< MaskGIT training: r, per sequence
constexpr std::uint16_t maskgit_noise = 0x800E;     ///< MaskGIT training: which tokens, per token
constexpr std::uint16_t beit_block = 0x8010;        ///< BEiT blockwise masking, per attempt
constexpr std::uint16_t simmim_noise = 0x8011;      ///< SimMIM: mask-patch shuffle noise
constexpr std::uint16_t data2vec_block = 0x8012;    ///< data2vec 2.0 inverse block masking
constexpr std::uint16_t audio_span = 0x8013;        ///< wav2vec2 / SpecAugment span starts
constexpr std::uint16_t rl_sample = 0x8101;         ///< RL: masked policy sampling, per row
constexpr std::uint16_t rl_explore = 0x8102;        ///< RL: masked epsilon-greedy, per row
constexpr std::uint16_t rl_conditional = 0x8103;    ///< RL: conditional heads, word stream per row
}  // namespace purpose

/// \brief The counter of a draw: word 0 = index, words 1-2 = sample id (low, high), word 3 =
/// purpose (low 16 bits) | retry (high 16 bits). The key is the seed (low word, high word).
constexpr philox_counter random_counter(std::uint64_t sample, std::uint16_t purpose_id,
                                        std::uint32_t index, std::uint16_t retry = 0) noexcept {
  return {index, static_cast<std::uint32_t>(sample), static_cast<std::uint32_t>(sample >> 32),
          static_cast<std::uint32_t>(purpose_id) | (static_cast<std::uint32_t>(retry) << 16)};
}

/// \brief The key of a draw: the 64-bit seed split into (low word, high word).
constexpr philox_key random_key(std::uint64_t seed) noexcept {
  return {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
}

/// \brief The Philox block addressed by (seed, sample, purpose, index, retry).
constexpr philox_block random_block(std::uint64_t seed, std::uint64_t sample,
                                    std::uint16_t purpose_id, std::uint32_t index,
                                    std::uint16_t retry = 0) noexcept {
  return philox4x32_10(random_counter(sample, purpose_id, index, retry), random_key(seed));
}

/// \brief Packed words: word \p i of the packed sequence of (seed, sample, purpose) is word
/// i mod 4 of the block with index floor(i / 4) and retry 0. Used when every element of a
/// sequence takes exactly one word (token selection, shuffle noise, drop flags).
/// \pre i < 2^34.
constexpr std::uint32_t packed_word(std::uint64_t seed, std::uint64_t sample,
                                    std::uint16_t purpose_id, std::uint64_t i) noexcept {
  return random_block(seed, sample, purpose_id, static_cast<std::uint32_t>(i >> 2))[i & 3u];
}

/// \brief The word stream of one addressed draw: words 0-3 of the block (index, retry 0), then
/// words 0-3 of (index, retry 1), and so on. Used by draws that consume a variable number of
/// words (bounded integers with rejection, geometric trials): a rejected word never shifts any
/// other element's stream. The stream holds 2^18 words; past that it wraps around.
class word_stream {
 public:
  /// \brief The stream of element \p index of (\p seed, \p sample, \p purpose_id).
  constexpr word_stream(std::uint64_t seed, std::uint64_t sample, std::uint16_t purpose_id,
                        std::uint32_t index) noexcept
      : key_(random_key(seed)), ctr_(random_counter(sample, purpose_id, index, 0)) {}

  /// The same stream when its first block (retry 0) is already known: \p head holds its four
  /// words and the stream resumes at word \p used of it.
  word_stream(std::uint64_t seed, std::uint64_t sample, std::uint16_t purpose_id,
              std::uint32_t index, const std::uint32_t* head, unsigned used) noexcept
      : key_(random_key(seed)),
        ctr_(random_counter(sample, purpose_id, index, 1)),
        block_{head[0], head[1], head[2], head[3]},
        used_(used) {}

  /// \brief The next word of the stream.
  std::uint32_t next() noexcept {
    if (used_ == 4) {
      block_ = philox4x32_10(ctr_, key_);
      ctr_[3] += 0x10000u;  // retry + 1
      used_ = 0;
    }
    return block_[used_++];
  }

 private:
  philox_key key_;
  philox_counter ctr_;
  philox_block block_{};
  unsigned used_ = 4;
};

namespace detail {
/// Fills out[0 .. end-begin) with packed words begin .. end-1 of (seed, sample, purpose): the
/// same values as packed_word(), one Philox block per four words. Portable scalar form.
inline void fill_packed_words_scalar(std::uint64_t seed, std::uint64_t sample,
                                     std::uint16_t purpose_id, std::uint64_t begin,
                                     std::uint64_t end, std::uint32_t* out) noexcept {
  if (end <= begin) return;
  const philox_key key = random_key(seed);
  philox_counter ctr = random_counter(sample, purpose_id, 0, 0);
  std::uint64_t i = begin;
  if (i & 3u) {  // leading partial block
    ctr[0] = static_cast<std::uint32_t>(i >> 2);
    const philox_block r = philox4x32_10(ctr, key);
    for (; (i & 3u) && i < end; ++i) *out++ = r[i & 3u];
  }
  for (; i + 4 <= end; i += 4) {  // whole blocks
    ctr[0] = static_cast<std::uint32_t>(i >> 2);
    const philox_block r = philox4x32_10(ctr, key);
    out[0] = r[0];
    out[1] = r[1];
    out[2] = r[2];
    out[3] = r[3];
    out += 4;
  }
  if (i < end) {  // trailing partial block
    ctr[0] = static_cast<std::uint32_t>(i >> 2);
    const philox_block r = philox4x32_10(ctr, key);
    for (; i < end; ++i) *out++ = r[i & 3u];
  }
}

// The AVX2 path (EMASK_HAS_AVX2_DISPATCH, config.hpp) is chosen at run time; same stream.
#if EMASK_HAS_AVX2_DISPATCH
/// Eight Philox4x32-10 blocks at once with AVX2 (32x32->64 multiplies by vpmuludq on the even
/// and odd lanes).
/// Lane l uses counter (index[l], base[1], base[2], base[3]); block l lands at out[4l .. 4l+3].
__attribute__((target("avx2"))) inline void philox8_avx2(avx2::u32x8 index,
                                                         const philox_counter& base,
                                                         const philox_key& key,
                                                         std::uint32_t* out) noexcept {
  using avx2::u32x8;
  using avx2::u64x4;
  const u32x8 m0 = u32x8{} + philox_m0, m1 = u32x8{} + philox_m1;
  u32x8 c0 = index, c1 = u32x8{} + base[1], c2 = u32x8{} + base[2], c3 = u32x8{} + base[3];
  std::uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += philox_w0;
      k1 += philox_w1;
    }
    // 64-bit products of the even lanes (e) and of the odd lanes (o); their low and high words
    // back in lane order by two blends each (vpblendd).
    const u64x4 e0 = avx2::mul_even(c0, m0), o0 = avx2::mul_even((u32x8)((u64x4)c0 >> 32), m0);
    const u64x4 e1 = avx2::mul_even(c2, m1), o1 = avx2::mul_even((u32x8)((u64x4)c2 >> 32), m1);
    const u32x8 lo0 = EMASK_AVX2_SHUFFLE((u32x8)e0, (u32x8)(o0 << 32), 0, 9, 2, 11, 4, 13, 6, 15);
    const u32x8 hi0 = EMASK_AVX2_SHUFFLE((u32x8)(e0 >> 32), (u32x8)o0, 0, 9, 2, 11, 4, 13, 6, 15);
    const u32x8 lo1 = EMASK_AVX2_SHUFFLE((u32x8)e1, (u32x8)(o1 << 32), 0, 9, 2, 11, 4, 13, 6, 15);
    const u32x8 hi1 = EMASK_AVX2_SHUFFLE((u32x8)(e1 >> 32), (u32x8)o1, 0, 9, 2, 11, 4, 13, 6, 15);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  // 4 x 8 transpose so that block l, word w lands at out[4 l + w]: 32-bit, then 64-bit unpacks
  // within each 128-bit half, then the halves (vpunpck*, vperm2i128).
  const u32x8 t0 = EMASK_AVX2_SHUFFLE(c0, c1, 0, 8, 1, 9, 4, 12, 5, 13);
  const u32x8 t1 = EMASK_AVX2_SHUFFLE(c0, c1, 2, 10, 3, 11, 6, 14, 7, 15);
  const u32x8 t2 = EMASK_AVX2_SHUFFLE(c2, c3, 0, 8, 1, 9, 4, 12, 5, 13);
  const u32x8 t3 = EMASK_AVX2_SHUFFLE(c2, c3, 2, 10, 3, 11, 6, 14, 7, 15);
  const u32x8 u0 = EMASK_AVX2_SHUFFLE(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13);
  const u32x8 u1 = EMASK_AVX2_SHUFFLE(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
  const u32x8 u2 = EMASK_AVX2_SHUFFLE(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13);
  const u32x8 u3 = EMASK_AVX2_SHUFFLE(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
  avx2::store(out, EMASK_AVX2_SHUFFLE(u0, u1, 0, 1, 2, 3, 8, 9, 10, 11));
  avx2::store(out + 8, EMASK_AVX2_SHUFFLE(u2, u3, 0, 1, 2, 3, 8, 9, 10, 11));
  avx2::store(out + 16, EMASK_AVX2_SHUFFLE(u0, u1, 4, 5, 6, 7, 12, 13, 14, 15));
  avx2::store(out + 24, EMASK_AVX2_SHUFFLE(u2, u3, 4, 5, 6, 7, 12, 13, 14, 15));
}

/// Eight consecutive blocks [first_block, first_block + 8) as packed words.
__attribute__((target("avx2"))) inline void philox8_consecutive_avx2(std::uint32_t first_block,
                                                                     const philox_counter& base,
                                                                     const philox_key& key,
                                                                     std::uint32_t* out) noexcept {
  philox8_avx2(avx2::u32x8{0, 1, 2, 3, 4, 5, 6, 7} + first_block, base, key, out);
}

/// Eight blocks with the counter indices index[0..8).
__attribute__((target("avx2"))) inline void philox8_indexed_avx2(const std::uint32_t* index,
                                                                 const philox_counter& base,
                                                                 const philox_key& key,
                                                                 std::uint32_t* out) noexcept {
  philox8_avx2(avx2::load<avx2::u32x8>(index), base, key, out);
}

inline bool cpu_has_avx2() noexcept {
#if defined(__AVX2__)
  return true;
#else
  static const bool has = __builtin_cpu_supports("avx2") != 0;
  return has;
#endif
}
#endif

/// Fills out[0 .. end-begin) with packed words begin .. end-1 of (seed, sample, purpose), the
/// values of packed_word(). Uses the AVX2 form for runs of whole 8-block groups when the CPU has
/// it (same values, tested against the scalar form), the scalar form otherwise.
inline void fill_packed_words(std::uint64_t seed, std::uint64_t sample, std::uint16_t purpose_id,
                              std::uint64_t begin, std::uint64_t end, std::uint32_t* out) noexcept {
#if EMASK_HAS_AVX2_DISPATCH
  if (end > begin && end - begin >= 64 && cpu_has_avx2()) {
    const std::uint64_t head_end = (begin + 31u) & ~std::uint64_t{31};  // align to 8 blocks
    fill_packed_words_scalar(seed, sample, purpose_id, begin, head_end, out);
    out += head_end - begin;
    const philox_key key = random_key(seed);
    const philox_counter base = random_counter(sample, purpose_id, 0, 0);
    std::uint64_t i = head_end;
    for (; i + 32 <= end; i += 32, out += 32)
      philox8_consecutive_avx2(static_cast<std::uint32_t>(i >> 2), base, key, out);
    fill_packed_words_scalar(seed, sample, purpose_id, i, end, out);
    return;
  }
#endif
  fill_packed_words_scalar(seed, sample, purpose_id, begin, end, out);
}

/// Blocks (seed, sample, purpose, index[j], retry 0) for j < n, block j at out[4j .. 4j+3]:
/// the first block of each element's word stream, computed 8 at a time when AVX2 is there.
inline void fill_stream_heads(std::uint64_t seed, std::uint64_t sample, std::uint16_t purpose_id,
                              const std::uint32_t* index, std::size_t n,
                              std::uint32_t* out) noexcept {
  const philox_key key = random_key(seed);
  philox_counter ctr = random_counter(sample, purpose_id, 0, 0);
  std::size_t j = 0;
#if EMASK_HAS_AVX2_DISPATCH
  if (n >= 8 && cpu_has_avx2())
    for (; j + 8 <= n; j += 8) philox8_indexed_avx2(index + j, ctr, key, out + 4 * j);
#endif
  for (; j < n; ++j) {
    ctr[0] = index[j];
    const philox_block r = philox4x32_10(ctr, key);
    for (unsigned w = 0; w < 4; ++w) out[4 * j + w] = r[w];
  }
}
}  // namespace detail

EMASK_NAMESPACE_END
