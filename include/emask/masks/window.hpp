/// \file
/// \brief Sliding-window (local, banded) attention with one inclusive spec and converters.
///
/// The spec: the query at position p keeps the keys in [p + diagonal - left,
/// p + diagonal + right], both ends inclusive; `unbounded` lifts a side. diagonal is 0 for
/// top-left alignment and Lk - Lq for bottom-right alignment (FlashAttention's convention).
#pragma once

#include "emask/config.hpp"
#include "emask/detail/interval_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Which llama.cpp sliding-window type a converter reproduces.
enum class llama_swa_type {
  standard,  ///< LLAMA_SWA_TYPE_STANDARD: masked when q - k >= n_swa (used with causal)
  symmetric  ///< LLAMA_SWA_TYPE_SYMMETRIC: masked when |q - k| > n_swa / 2
};

/// \brief Keeps keys k with p + diagonal - left <= k <= p + diagonal + right.
class sliding_window : public detail::interval_mask<sliding_window> {
 public:
  /// \pre left >= 0, right >= 0 (pass emask::unbounded for no limit on a side).
  sliding_window(Index left, Index right, Index diagonal = 0)
      : left_(left), right_(right), diagonal_(detail::clamp_diagonal(diagonal)) {
    if (left < 0)
      detail::fail_argument("sliding_window", "left", left, ">= 0 (or emask::unbounded)");
    if (right < 0)
      detail::fail_argument("sliding_window", "right", right, ">= 0 (or emask::unbounded)");
    left_ = (std::min)(left_, unbounded);
    right_ = (std::min)(right_, unbounded);
  }

  /// \brief FlashAttention `window_size=(window_left, window_right)` for q_len queries over
  /// k_len keys: query i keeps keys in [i + k_len - q_len - window_left,
  /// i + k_len - q_len + window_right]; -1 means unbounded on that side.
  static sliding_window from_flash_attn(Index window_left, Index window_right, Index q_len,
                                        Index k_len) {
    const char* where = "sliding_window::from_flash_attn";
    if (window_left < -1)
      detail::fail_argument(where, "window_left", window_left, ">= -1 (-1: unbounded)");
    if (window_right < -1)
      detail::fail_argument(where, "window_right", window_right, ">= -1 (-1: unbounded)");
    if (q_len < 0) detail::fail_argument(where, "q_len", q_len, ">= 0");
    if (k_len < 0) detail::fail_argument(where, "k_len", k_len, ">= 0");
    return sliding_window(window_left < 0 ? unbounded : window_left,
                          window_right < 0 ? unbounded : window_right, k_len - q_len);
  }

  /// \brief Hugging Face `sliding_window=W` (Mistral, Gemma, Qwen2): the causal mask and'ed
  /// with `kv_idx > q_idx - W`, i.e. query p keeps keys p - W + 1 .. p (W keys with itself).
  static sliding_window from_hf(Index sliding_window_size) {
    if (sliding_window_size < 1) {
      detail::fail_argument("sliding_window::from_hf", "sliding_window", sliding_window_size,
                            ">= 1");
    }
    return sliding_window(sliding_window_size - 1, 0);
  }

  /// \brief llama.cpp `n_swa`. standard: a key is masked when q - k >= n_swa and the layer is
  /// causal, so query p keeps p - n_swa + 1 .. p. symmetric: masked when |q - k| > n_swa / 2
  /// (integer division), so query p keeps p - n_swa/2 .. p + n_swa/2.
  static sliding_window from_llama_cpp(Index n_swa,
                                       llama_swa_type type = llama_swa_type::standard) {
    if (n_swa < 1) detail::fail_argument("sliding_window::from_llama_cpp", "n_swa", n_swa, ">= 1");
    if (type != llama_swa_type::standard && type != llama_swa_type::symmetric)
      detail::fail_argument("sliding_window::from_llama_cpp", "type", static_cast<int>(type),
                            "llama_swa_type::standard or symmetric");
    if (type == llama_swa_type::symmetric) return sliding_window(n_swa / 2, n_swa / 2);
    return sliding_window(n_swa - 1, 0);
  }

  /// \brief Keys kept before the (shifted) diagonal.
  Index left() const noexcept { return left_; }
  /// \brief Keys kept after the (shifted) diagonal.
  Index right() const noexcept { return right_; }
  /// \brief Shift of the window's center: 0 top-left, Lk - Lq bottom-right (clamped to
  /// +-2 emask::unbounded, which keeps the same keys).
  Index diagonal() const noexcept { return diagonal_; }

  /// \brief Kept keys [lo, hi) of row q of batch entry b (detail::interval_mask contract).
  detail::row_bounds bounds(Index, Index q) const {
    const Index center = q + diagonal_;
    return detail::make_bounds(center - left_, center + right_ + 1);
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const { detail::check_positions(where, r); }

 private:
  Index left_;
  Index right_;
  Index diagonal_;
};

EMASK_NAMESPACE_END
