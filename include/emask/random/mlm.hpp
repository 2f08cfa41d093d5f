/// \file
/// \brief BERT masked-language-model masking with the semantics of Hugging Face's
/// DataCollatorForLanguageModeling, reproducible bit for bit from (seed, sample id, position).
/// Every masker takes the address of its draws, random_address{seed, sample}, as its last
/// argument; row b of a batch is sample `at.sample + b`.
///
/// Selection: each selectable token (not special, not padding, inside its row's length) is
/// selected with probability mlm_probability (Bernoulli mode, as HF), or exactly
/// round(mlm_probability * n) of the n selectable tokens of a row are (exact-count mode).
/// Replacement of a selected token: with probability mask_replace_prob it becomes mask_id; else,
/// with probability random_replace_prob / (1 - mask_replace_prob) (HF's scaling: 0.1 / 0.2 = 0.5
/// by default) it becomes a uniform random id; else it stays. Labels hold the original id where
/// selected and ignore_index elsewhere. See docs/random.md for the exact draws.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "emask/config.hpp"
#include "emask/detail/avx2.hpp"
#include "emask/detail/threads.hpp"
#include "emask/random/distributions.hpp"
#include "emask/random/tokens.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief How tokens are selected for prediction.
enum class mlm_selection {
  bernoulli,    ///< each selectable token independently with mlm_probability (Hugging Face)
  exact_count,  ///< exactly round_half_even(mlm_probability * n) of the n selectable tokens
};

/// \brief Parameters of BERT masking. vocabulary and mask_id have no defaults and must be set.
/// The seed is not an option: it is part of the random_address every masker takes last.
struct mlm_options {
  special_tokens vocabulary;             ///< vocab size and special ids (never selected)
  token_id mask_id = -1;                 ///< the [MASK] id, in [0, vocab_size)
  double mlm_probability = 0.15;         ///< selection probability
  double mask_replace_prob = 0.8;        ///< of the selected: replaced by mask_id
  double random_replace_prob = 0.1;      ///< of the selected: replaced by a random id
  bool random_includes_special = false;  ///< true: random ids over all of [0, vocab) (HF parity)
  token_id ignore_index = -100;          ///< label of unselected positions
  token_id pad_id = -1;                  ///< tokens equal to pad_id are never selected (< 0: none)
  mlm_selection selection = mlm_selection::bernoulli;  ///< Bernoulli per token (HF) or exact count
};

/// \brief Masked inputs and labels, both [batch, length].
struct mlm_result {
  token_matrix input_ids;  ///< ids after replacement
  token_matrix labels;     ///< original id where selected, ignore_index elsewhere
};

namespace detail {
/// Validates the options common to every MLM-style masker.
inline void check_mlm_options(const char* where, const mlm_options& o) {
  const std::int32_t v = o.vocabulary.vocab_size();
  if (v < 1)
    fail_argument(where, "vocabulary", "an empty vocabulary",
                  "a special_tokens(vocab_size, special_ids) with vocab_size >= 1");
  if (o.mask_id < 0 || o.mask_id >= v)
    fail_argument(where, "mask_id", o.mask_id, "an id inside the vocabulary [0, ", v, ")");
  if (o.selection != mlm_selection::bernoulli && o.selection != mlm_selection::exact_count)
    fail_argument(where, "selection", static_cast<int>(o.selection), "bernoulli or exact_count");
  check_probability(where, "mlm_probability", o.mlm_probability);
  check_probability(where, "mask_replace_prob", o.mask_replace_prob);
  check_probability(where, "random_replace_prob", o.random_replace_prob);
  if (o.mask_replace_prob + o.random_replace_prob > 1.0)
    fail_argument(where, "random_replace_prob", o.random_replace_prob,
                  "mask_replace_prob + random_replace_prob <= 1 (mask_replace_prob = ",
                  o.mask_replace_prob, ")");
  if (o.random_replace_prob > 0.0 && o.mask_replace_prob < 1.0 && !o.random_includes_special &&
      o.vocabulary.regular_ids().empty())
    fail_argument(where, "vocabulary", "every id special",
                  "at least one non-special id to draw random replacements from (or "
                  "random_includes_special = true)");
}

/// The 80/10/10 replacement of one selected token of seed \p seed, drawn from the word stream
/// (seed, sample, purpose::mlm_replace, position): word 0 decides [MASK] (Bernoulli
/// mask_replace_prob), word 1 decides random (Bernoulli of the scaled probability), words 2...
/// give the random id (bounded() over the pool).
class replacer {
 public:
  replacer(const mlm_options& o, std::uint64_t seed)
      : to_mask_(o.mask_replace_prob),
        to_random_(o.mask_replace_prob >= 1.0 || o.random_replace_prob <= 0.0
                       ? 0.0
                       : (std::min)(1.0, o.random_replace_prob / (1.0 - o.mask_replace_prob))),
        mask_id_(o.mask_id),
        seed_(seed),
        pool_(o.random_includes_special ? nullptr : o.vocabulary.regular_ids().data()),
        pool_size_(o.random_includes_special
                       ? static_cast<std::uint32_t>(o.vocabulary.vocab_size())
                       : static_cast<std::uint32_t>(o.vocabulary.regular_ids().size())) {}

  enum class action { mask, random, keep };

  /// Decision for the token at \p position of \p sample (words 0 and 1 of its stream).
  action decide(word_stream& s) const noexcept {
    if (to_mask_(s.next())) return action::mask;
    return to_random_(s.next()) ? action::random : action::keep;
  }
  /// A random id from words 2... of the stream of (sample, position).
  token_id random_id(std::uint64_t sample, std::uint32_t position) const noexcept {
    word_stream s(seed_, sample, purpose::mlm_replace, position);
    s.next();
    s.next();
    return draw_id(s);
  }
  /// Replacement of one selected token, per-token 80/10/10, from its mlm_replace stream.
  token_id apply(word_stream& s, token_id original) const noexcept {
    switch (decide(s)) {
      case action::mask: return mask_id_;
      case action::random: return draw_id(s);
      default: return original;
    }
  }
  /// Replacement of the token at \p position of \p sample.
  token_id operator()(std::uint64_t sample, std::uint32_t position,
                      token_id original) const noexcept {
    word_stream s(seed_, sample, purpose::mlm_replace, position);
    return apply(s, original);
  }
  token_id mask_id() const noexcept { return mask_id_; }

 private:
  token_id draw_id(word_stream& s) const noexcept {
    const std::uint32_t r = bounded(s, pool_size_);
    return pool_ ? pool_[r] : static_cast<token_id>(r);
  }
  bernoulli to_mask_, to_random_;
  token_id mask_id_;
  std::uint64_t seed_;
  const token_id* pool_;
  std::uint32_t pool_size_;
};

/// Index of the lowest set bit of a non-zero word.
inline Index count_trailing_zeros(std::uint64_t x) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(x);
#else
  Index n = 0;
  while (!(x & 1u)) {
    x >>= 1;
    ++n;
  }
  return n;
#endif
}

/// True when the token id at a position may be selected.
struct selectable {
  const unsigned char* special;
  std::int32_t vocab;
  token_id pad;
  bool operator()(token_id id) const noexcept {
    // one unsigned compare covers id < 0 and id >= vocab
    return static_cast<std::uint32_t>(id) < static_cast<std::uint32_t>(vocab) && !special[id] &&
           id != pad;
  }
};

/// Bit j set when position j (< m <= 64) is selected: its word is below the Bernoulli threshold
/// and its id is selectable. Branch-free, all state in registers.
inline std::uint64_t selection_bits(const std::uint32_t* words, const token_id* ids, Index m,
                                    std::uint64_t threshold, selectable ok) noexcept {
  const unsigned char* special = ok.special;
  const auto vocab = static_cast<std::uint32_t>(ok.vocab);
  const token_id pad = ok.pad;
  std::uint64_t bits = 0;
  for (Index j = 0; j < m; ++j) {
    const token_id id = ids[j];
    const auto u = static_cast<std::uint32_t>(id);
    const bool in_vocab = u < vocab;
    const std::uint32_t safe = in_vocab ? u : 0u;  // a select, not a branch
    const unsigned take =
        static_cast<unsigned>(words[j] < threshold) & static_cast<unsigned>(in_vocab) &
        static_cast<unsigned>(special[safe] == 0) & static_cast<unsigned>(id != pad);
    bits |= static_cast<std::uint64_t>(take) << j;
  }
  return bits;
}

#if EMASK_HAS_AVX2_DISPATCH
/// selection_bits() eight positions at a time with AVX2; same bits. The flag table must be
/// readable 3 bytes past its last id (special_tokens pads it).
__attribute__((target("avx2"))) inline std::uint64_t selection_bits_avx2(const std::uint32_t* words,
                                                                         const token_id* ids,
                                                                         Index m,
                                                                         std::uint64_t threshold,
                                                                         selectable ok) noexcept {
  using avx2::i32x8;
  // Unsigned compares as signed ones on words with the sign bit flipped.
  const int sign = static_cast<int>(0x80000000u);
  const bool all_words = threshold >= (std::uint64_t{1} << 32);
  const i32x8 thr =
      i32x8{} +
      static_cast<int>(static_cast<std::uint32_t>(all_words ? 0u : threshold) ^ 0x80000000u);
  const i32x8 vocab =
      i32x8{} + static_cast<int>(static_cast<std::uint32_t>(ok.vocab) ^ 0x80000000u);
  const int* table = reinterpret_cast<const int*>(ok.special);
  std::uint64_t bits = 0;
  Index j = 0;
  for (; j + 8 <= m; j += 8) {
    const i32x8 w = avx2::load<i32x8>(words + j);
    const i32x8 id = avx2::load<i32x8>(ids + j);
    const i32x8 take_w = all_words ? ~i32x8{} : (i32x8)(thr > (w ^ sign));
    const i32x8 in_vocab = (i32x8)(vocab > (id ^ sign));
    const i32x8 safe = id & in_vocab;  // 0 where out of range
    const i32x8 flag = avx2::gather_bytes(table, safe) & 0xFF;
    const i32x8 take = take_w & in_vocab & (i32x8)(flag == 0) & ~(i32x8)(id == ok.pad);
    bits |= static_cast<std::uint64_t>(avx2::movemask(take)) << j;
  }
  if (j < m) bits |= selection_bits(words + j, ids + j, m - j, threshold, ok) << j;
  return bits;
}
#endif

inline selectable make_selectable(const mlm_options& o) {
  return {o.vocabulary.flags().data(), o.vocabulary.vocab_size(), o.pad_id};
}

/// Masks one row (sample \p sample of seed \p seed) in place. Words of the selection come in
/// chunks of 256 packed words.
inline void mlm_row(token_id* ids, token_id* labels, Index width, Index length, std::uint64_t seed,
                    std::uint64_t sample, const mlm_options& o, const replacer& rep,
                    const selectable& ok, const bernoulli& select, std::vector<std::uint64_t>& keys,
                    std::vector<std::uint32_t>& row_words) {
  std::fill(labels, labels + width, o.ignore_index);
  if (o.selection == mlm_selection::bernoulli) {
    // Selection flags of 64 positions are gathered into a bit mask without branches; only the
    // selected positions (about p of them) are then visited.
    constexpr Index chunk = 256;
    std::uint32_t words[chunk];
    std::uint32_t selected[chunk];
    std::uint32_t heads[4 * chunk];
#if EMASK_HAS_AVX2_DISPATCH
    const bool simd = cpu_has_avx2();
#endif
    for (Index c = 0; c < length; c += chunk) {
      const Index n = (std::min)(chunk, length - c);
      std::size_t count = 0;
      fill_packed_words(seed, sample, purpose::mlm_select, static_cast<std::uint64_t>(c),
                        static_cast<std::uint64_t>(c + n), words);
      for (Index g = 0; g < n; g += 64) {
        const Index m = std::min<Index>(64, n - g);
#if EMASK_HAS_AVX2_DISPATCH
        std::uint64_t bits =
            simd ? selection_bits_avx2(words + g, ids + c + g, m, select.threshold(), ok)
                 : selection_bits(words + g, ids + c + g, m, select.threshold(), ok);
#else
        std::uint64_t bits = selection_bits(words + g, ids + c + g, m, select.threshold(), ok);
#endif
        while (bits) {
          selected[count++] = static_cast<std::uint32_t>(c + g + count_trailing_zeros(bits));
          bits &= bits - 1;
        }
      }
      // replacement streams of the selected positions: first blocks computed together
      fill_stream_heads(seed, sample, purpose::mlm_replace, selected, count, heads);
      for (std::size_t j = 0; j < count; ++j) {
        const std::uint32_t t = selected[j];
        const token_id id = ids[t];
        labels[t] = id;
        word_stream st(seed, sample, purpose::mlm_replace, t, heads + 4 * j, 0);
        ids[t] = rep.apply(st, id);
      }
    }
    return;
  }
  // exact count: the k selectable tokens with the smallest selection words (ties by position)
  keys.clear();
  row_words.resize(static_cast<std::size_t>(length));
  fill_packed_words(seed, sample, purpose::mlm_select, 0, static_cast<std::uint64_t>(length),
                    row_words.data());
  for (Index t = 0; t < length; ++t)
    if (ok(ids[t]))
      keys.push_back(
          noise_key(row_words[static_cast<std::size_t>(t)], static_cast<std::uint32_t>(t)));
  const auto k =
      round_half_even_to<std::size_t>(o.mlm_probability * static_cast<double>(keys.size()));
  if (k == 0) return;
  if (k < keys.size())
    std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(k - 1), keys.end());
  for (std::size_t j = 0; j < (std::min)(k, keys.size()); ++j) {
    const auto t = static_cast<std::uint32_t>(keys[j]);
    labels[t] = ids[t];
    ids[t] = rep(sample, t, ids[t]);
  }
}

inline void mlm_batch(Eigen::Ref<token_matrix> ids, Eigen::Ref<token_matrix> labels,
                      const index_list* lengths, const mlm_options& o, random_address at) {
  const Index B = ids.rows(), L = ids.cols();
  const replacer rep(o, at.seed);
  const selectable ok = make_selectable(o);
  const bernoulli select(o.mlm_probability);
  token_id* id_data = ids.data();
  token_id* label_data = labels.data();
  const Index id_stride = ids.outerStride(), label_stride = labels.outerStride();
  region_errors failure;  // an allocation failure of a thread's buffers reaches the caller
#if EMASK_HAS_OPENMP
#pragma omp parallel if (B > 1 && B * L >= 16384)
#endif
  {
    std::vector<std::uint64_t> keys;
    std::vector<std::uint32_t> row_words;
#if EMASK_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (Index b = 0; b < B; ++b)
      failure.run([&] {
        mlm_row(id_data + b * id_stride, label_data + b * label_stride, L,
                row_length(lengths, b, L), at.seed, at.sample + static_cast<std::uint64_t>(b), o,
                rep, ok, select, keys, row_words);
      });
  }
  failure.rethrow();
}

inline void check_mlm_call(const char* where, Index rows, Index cols, const index_list* lengths,
                           const mlm_options& o) {
  check_mlm_options(where, o);
  if (cols > (Index{1} << 32) - 1)
    fail_argument(where, "ids", concat(cols, " columns"), "at most 2^32 - 1 positions per row");
  check_lengths(where, lengths, rows, cols);
}

/// The checks of both mlm_mask_inplace overloads: check_mlm_call, then labels of the ids' shape.
inline void check_mlm_inplace(const char* where, const Eigen::Ref<token_matrix>& ids,
                              const Eigen::Ref<token_matrix>& labels, const index_list* lengths,
                              const mlm_options& o) {
  check_mlm_call(where, ids.rows(), ids.cols(), lengths, o);
  if (labels.rows() != ids.rows() || labels.cols() != ids.cols())
    fail_argument(where, "labels", concat(labels.rows(), "x", labels.cols()), "the shape of ids, ",
                  ids.rows(), "x", ids.cols());
}
}  // namespace detail

/// \brief Masks \p ids in place and writes \p labels (same shape). Row b is sample
/// at.sample + b of seed at.seed: processing a batch in pieces with the matching at.sample gives
/// the same result as one call, for any thread count.
inline void mlm_mask_inplace(Eigen::Ref<token_matrix> ids, Eigen::Ref<token_matrix> labels,
                             const mlm_options& options, random_address at = {}) {
  detail::check_mlm_inplace("mlm_mask_inplace", ids, labels, nullptr, options);
  detail::mlm_batch(ids, labels, nullptr, options, at);
}

/// \brief In-place masking of rows with valid lengths \p lengths (positions >= lengths[b] are
/// padding and never selected).
inline void mlm_mask_inplace(Eigen::Ref<token_matrix> ids, Eigen::Ref<token_matrix> labels,
                             const index_list& lengths, const mlm_options& options,
                             random_address at = {}) {
  detail::check_mlm_inplace("mlm_mask_inplace", ids, labels, &lengths, options);
  detail::mlm_batch(ids, labels, &lengths, options, at);
}

/// \brief Out-of-place BERT masking: returns the masked ids and the labels. Row b is sample
/// at.sample + b of seed at.seed.
inline mlm_result mlm_mask(const Eigen::Ref<const token_matrix>& ids, const mlm_options& options,
                           random_address at = {}) {
  detail::check_mlm_call("mlm_mask", ids.rows(), ids.cols(), nullptr, options);
  mlm_result r{ids, token_matrix(ids.rows(), ids.cols())};
  detail::mlm_batch(r.input_ids, r.labels, nullptr, options, at);
  return r;
}

/// \brief Out-of-place BERT masking of rows with valid lengths \p lengths.
inline mlm_result mlm_mask(const Eigen::Ref<const token_matrix>& ids, const index_list& lengths,
                           const mlm_options& options, random_address at = {}) {
  detail::check_mlm_call("mlm_mask", ids.rows(), ids.cols(), &lengths, options);
  mlm_result r{ids, token_matrix(ids.rows(), ids.cols())};
  detail::mlm_batch(r.input_ids, r.labels, &lengths, options, at);
  return r;
}

EMASK_NAMESPACE_END
