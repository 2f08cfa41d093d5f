/// \file
/// \brief Whole-word masking (Hugging Face DataCollatorForWholeWordMask semantics): the word is
/// the unit of selection, words come from word-start flags or word ids supplied by the caller.
///
/// Per row: n = number of non-padding positions (HF counts the unpadded sequence, specials
/// included); budget = min(max_predictions, max(1, round_half_even(n * mlm_probability))); the
/// words are visited in the order of an argsort of uniform noise (one packed word of
/// purpose::wwm_order per word, ties by word number); a word is taken when it fits in what is
/// left of the budget and skipped otherwise; the visit stops once the budget is reached. Every
/// token of a taken word then gets the per-token 80/10/10 replacement of mlm.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "emask/core/polarity.hpp"
#include "emask/random/mlm.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Options of whole-word masking: the MLM options plus HF's max_predictions.
struct whole_word_options : mlm_options {
  std::int32_t max_predictions = 512;  ///< cap on masked tokens per row
};

namespace detail {
/// A word: token positions [begin, end).
struct word_range {
  std::uint32_t begin, end;
};

/// Splits row positions [0, length) into words. Non-selectable tokens (special, padding) belong
/// to no word and end the current one; a selectable token starts a new word when starts(t) is
/// true or the previous token does not belong to a word.
template <class Starts>
void build_words(const token_id* ids, Index length, const selectable& ok, Starts&& starts,
                 std::vector<word_range>& words) {
  words.clear();
  bool open = false;
  for (Index t = 0; t < length; ++t) {
    const auto u = static_cast<std::uint32_t>(t);
    if (!ok(ids[t]) || !starts.member(t)) {
      open = false;
      continue;
    }
    if (!open || starts(t)) {
      words.push_back({u, u + 1});
      open = true;
    } else {
      words.back().end = u + 1;
    }
  }
}

/// Word boundaries from a flag row: true = first token of a word.
struct starts_from_flags {
  const bool* flags;
  bool member(Index) const noexcept { return true; }
  bool operator()(Index t) const noexcept { return flags[t]; }
};
/// Word boundaries from word ids: a new word where the id changes; ids < 0 belong to no word.
struct starts_from_ids {
  const token_id* word_ids;
  bool member(Index t) const noexcept { return word_ids[t] >= 0; }
  bool operator()(Index t) const noexcept { return t == 0 || word_ids[t] != word_ids[t - 1]; }
};
/// Every token its own word.
struct starts_every_token {
  bool member(Index) const noexcept { return true; }
  bool operator()(Index) const noexcept { return true; }
};

/// The batch loop of the word maskers: rows in parallel (each with its own Philox sample
/// at.sample + b), each row's labels reset and its words built, then
/// mask_row(scratch, row, labels, len, sample, words) with scratch buffers of type Scratch
/// per thread. An allocation failure in a thread reaches the caller.
template <class Scratch, class Options, class StartsOf, class MaskRow>
void word_rows(Eigen::Ref<token_matrix> ids, Eigen::Ref<token_matrix> labels,
               const index_list* lengths, const Options& o, const selectable& ok, random_address at,
               StartsOf&& starts_of, MaskRow&& mask_row) {
  const Index B = ids.rows(), L = ids.cols();
  region_errors failure;
#if EMASK_HAS_OPENMP
#pragma omp parallel if (B > 1 && B * L >= 16384)
#endif
  {
    std::vector<word_range> words;
    Scratch scratch;
#if EMASK_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (Index b = 0; b < B; ++b)
      failure.run([&] {
        token_id* row = ids.data() + b * ids.outerStride();
        token_id* lab = labels.data() + b * labels.outerStride();
        const Index len = row_length(lengths, b, L);
        std::fill(lab, lab + L, o.ignore_index);
        build_words(row, len, ok, starts_of(b), words);
        mask_row(scratch, row, lab, len, at.sample + static_cast<std::uint64_t>(b), words);
      });
  }
  failure.rethrow();
}

/// Per-thread buffers of whole-word masking.
struct whole_word_scratch {
  std::vector<std::uint64_t> keys;
  std::vector<std::uint32_t> noise;
};

template <class StartsOf>
void whole_word_batch(Eigen::Ref<token_matrix> ids, Eigen::Ref<token_matrix> labels,
                      const index_list* lengths, const whole_word_options& o, random_address at,
                      StartsOf&& starts_of) {
  const replacer rep(o, at.seed);
  const selectable ok = make_selectable(o);
  word_rows<whole_word_scratch>(
      ids, labels, lengths, o, ok, at, starts_of,
      [&](whole_word_scratch& sc, token_id* row, token_id* lab, Index len, std::uint64_t sample,
          const std::vector<word_range>& words) {
        Index n = 0;
        for (Index t = 0; t < len; ++t) n += (o.pad_id < 0 || row[t] != o.pad_id) ? 1 : 0;
        const std::int64_t budget = std::min<std::int64_t>(
            o.max_predictions,
            std::max<std::int64_t>(
                1, round_half_even_to<std::int64_t>(static_cast<double>(n) * o.mlm_probability)));
        // Visit order: argsort of one packed word per word. Only a prefix of the order is needed
        // (the budget is reached after about budget words), so sort a prefix first and the rest
        // only if the prefix runs out; the visit order is that of a full sort either way.
        const std::size_t nw = words.size();
        sc.noise.resize(nw);
        fill_packed_words(at.seed, sample, purpose::wwm_order, 0, nw, sc.noise.data());
        sc.keys.resize(nw);
        for (std::size_t w = 0; w < nw; ++w)
          sc.keys[w] = noise_key(sc.noise[w], static_cast<std::uint32_t>(w));
        const std::size_t prefix = std::min<std::size_t>(nw, static_cast<std::size_t>(budget) + 16);
        if (prefix < nw)
          std::nth_element(sc.keys.begin(), sc.keys.begin() + static_cast<std::ptrdiff_t>(prefix),
                           sc.keys.end());
        std::sort(sc.keys.begin(), sc.keys.begin() + static_cast<std::ptrdiff_t>(prefix));
        std::int64_t covered = 0;
        for (std::size_t j = 0; j < nw && covered < budget; ++j) {
          if (j == prefix)
            std::sort(sc.keys.begin() + static_cast<std::ptrdiff_t>(prefix), sc.keys.end());
          const word_range& w = words[static_cast<std::uint32_t>(sc.keys[j])];
          const std::int64_t size = w.end - w.begin;
          if (covered + size > budget) continue;
          covered += size;
          for (std::uint32_t t = w.begin; t < w.end; ++t) {
            lab[t] = row[t];
            row[t] = rep(sample, t, row[t]);
          }
        }
      });
}

/// The word boundaries an overload takes: the argument's name and shape, or none.
struct word_input {
  const char* arg = nullptr;  ///< "word_starts", "word_ids", or nullptr (every token is a word)
  Index rows = 0, cols = 0;
};

/// The one check of every whole_word_mask* and span_mask overload, in this order: the MLM
/// options, ids and lengths (check_mlm_call); the masker's own options (\p check_options); the
/// shape of the word boundaries.
template <class Options>
void check_word_call(const char* where, const Eigen::Ref<const token_matrix>& ids,
                     const word_input& words, const index_list* lengths, const Options& o,
                     void (*check_options)(const char*, const Options&)) {
  check_mlm_call(where, ids.rows(), ids.cols(), lengths, o);
  check_options(where, o);
  if (words.arg && (words.rows != ids.rows() || words.cols != ids.cols()))
    fail_argument(where, words.arg, concat(words.rows, "x", words.cols), "the shape of ids, ",
                  ids.rows(), "x", ids.cols());
}

inline void check_wwm(const char* where, const whole_word_options& o) {
  if (o.max_predictions < 0) fail_argument(where, "max_predictions", o.max_predictions, ">= 0");
}

/// Every whole_word_mask* overload: the checks, then the batch.
template <class StartsOf>
mlm_result whole_word_call(const char* where, const Eigen::Ref<const token_matrix>& ids,
                           const word_input& words, const index_list* lengths,
                           const whole_word_options& o, random_address at, StartsOf&& starts_of) {
  check_word_call(where, ids, words, lengths, o, &check_wwm);
  mlm_result r{ids, token_matrix(ids.rows(), ids.cols())};
  whole_word_batch(r.input_ids, r.labels, lengths, o, at, starts_of);
  return r;
}

/// Word starts of row b of a flag matrix, and of a word-id matrix.
inline auto starts_of_flags(const Eigen::Ref<const bool_matrix>& word_starts) {
  return [&word_starts](Index b) {
    return starts_from_flags{word_starts.data() + b * word_starts.outerStride()};
  };
}
inline auto starts_of_ids(const Eigen::Ref<const token_matrix>& word_ids) {
  return [&word_ids](Index b) {
    return starts_from_ids{word_ids.data() + b * word_ids.outerStride()};
  };
}
}  // namespace detail

/// \brief Whole-word masking with words given by \p word_starts (true on the first token of each
/// word; the caller marks WordPiece continuations "##..." false). Row b is sample
/// at.sample + b of seed at.seed.
inline mlm_result whole_word_mask(const Eigen::Ref<const token_matrix>& ids,
                                  const Eigen::Ref<const bool_matrix>& word_starts,
                                  const whole_word_options& options, random_address at = {}) {
  return detail::whole_word_call("whole_word_mask", ids,
                                 {"word_starts", word_starts.rows(), word_starts.cols()}, nullptr,
                                 options, at, detail::starts_of_flags(word_starts));
}

/// \brief Whole-word masking of rows with valid lengths \p lengths.
inline mlm_result whole_word_mask(const Eigen::Ref<const token_matrix>& ids,
                                  const Eigen::Ref<const bool_matrix>& word_starts,
                                  const index_list& lengths, const whole_word_options& options,
                                  random_address at = {}) {
  return detail::whole_word_call("whole_word_mask", ids,
                                 {"word_starts", word_starts.rows(), word_starts.cols()}, &lengths,
                                 options, at, detail::starts_of_flags(word_starts));
}

/// \brief Whole-word masking with words given by \p word_ids (a fast tokenizer's word_ids():
/// consecutive tokens with equal id form a word; ids < 0, i.e. None, belong to no word).
inline mlm_result whole_word_mask_by_ids(const Eigen::Ref<const token_matrix>& ids,
                                         const Eigen::Ref<const token_matrix>& word_ids,
                                         const whole_word_options& options,
                                         random_address at = {}) {
  return detail::whole_word_call("whole_word_mask_by_ids", ids,
                                 {"word_ids", word_ids.rows(), word_ids.cols()}, nullptr, options,
                                 at, detail::starts_of_ids(word_ids));
}

/// \brief Whole-word masking by word ids of rows with valid lengths \p lengths.
inline mlm_result whole_word_mask_by_ids(const Eigen::Ref<const token_matrix>& ids,
                                         const Eigen::Ref<const token_matrix>& word_ids,
                                         const index_list& lengths,
                                         const whole_word_options& options,
                                         random_address at = {}) {
  return detail::whole_word_call("whole_word_mask_by_ids", ids,
                                 {"word_ids", word_ids.rows(), word_ids.cols()}, &lengths, options,
                                 at, detail::starts_of_ids(word_ids));
}

EMASK_NAMESPACE_END
