/// \file
/// \brief Per-layer attention schedules: which mask each layer of a model uses (global causal,
/// sliding window, chunked), its logit softcap, and how many keys its KV cache must hold, with
/// ready schedules for Gemma 2, Gemma 3, gpt-oss and Llama 4.
#pragma once

#include <utility>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/compose.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/masks/causal.hpp"
#include "emask/masks/chunk.hpp"
#include "emask/masks/window.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief The attention pattern of one layer.
enum class layer_kind {
  global,   ///< causal over the whole context
  sliding,  ///< causal sliding window: query p keeps p - span + 1 .. p (Hugging Face's W)
  chunked   ///< causal within chunks of `span` positions (Llama 4's attention_chunk_size)
};

/// \brief One layer's attention: its pattern, the window or chunk length, and the softcap of
/// its attention logits (0: none).
struct layer_attention {
  layer_kind kind = layer_kind::global;  ///< the mask pattern
  Index span = 0;      ///< window (sliding) or chunk (chunked) length; unused for global
  double softcap = 0;  ///< attention logit softcap, as kernel_options::softcap (0: none)
  bool rope = true;    ///< whether the layer rotates q and k (false: a NoPE layer)
};

/// \brief A value type mapping layer index -> layer_attention: a pattern of layers repeated
/// over the model's depth (pattern[i % pattern.size()]).
///
/// `visit(layer, f)` calls `f` with the layer's mask expression (causal, a causal sliding_window,
/// or chunked & causal), so one call site serves every layer:
/// \code
///   schedule.visit(layer, [&](const auto& mask) {
///     masked_attention(q, k, v, mask, out, schedule.options(layer, base_options));
///   });
/// \endcode
class layer_schedule {
 public:
  /// \brief \p layers layers following \p pattern, repeated.
  /// \pre layers >= 0; a non-empty pattern; span >= 1 for sliding and chunked layers; softcap
  /// finite and >= 0.
  layer_schedule(Index layers, std::vector<layer_attention> pattern)
      : layers_(layers), pattern_(std::move(pattern)) {
    const char* where = "layer_schedule";
    if (layers < 0) detail::fail_argument(where, "layers", layers, ">= 0");
    if (pattern_.empty())
      detail::fail_argument(where, "pattern", "an empty list", "at least one layer_attention");
    for (std::size_t i = 0; i < pattern_.size(); ++i) {
      const layer_attention& a = pattern_[i];
      if (a.kind != layer_kind::global && a.kind != layer_kind::sliding &&
          a.kind != layer_kind::chunked)
        detail::fail_element(where, "pattern.kind", i, static_cast<int>(a.kind),
                             "layer_kind::global, sliding or chunked");
      if (a.kind != layer_kind::global && (a.span < 1 || a.span > unbounded))
        detail::fail_element(where, "pattern.span", i, a.span,
                             ">= 1 and <= emask::unbounded for a sliding or chunked layer");
      if (!detail::is_finite(a.softcap) || a.softcap < 0)
        detail::fail_element(where, "pattern.softcap", i, a.softcap, "finite and >= 0");
    }
  }

  /// \brief Gemma 2: sliding window \p window (4096) on even layers (0, 2, ...), global on odd
  /// layers, attention logit softcap 50 everywhere (Hugging Face: is_sliding = not layer % 2,
  /// attn_logit_softcapping = 50).
  static layer_schedule gemma2(Index layers, Index window = 4096) {
    return layer_schedule(
        layers, {{layer_kind::sliding, window, 50.0, true}, {layer_kind::global, 0, 50.0, true}});
  }
  /// \brief Gemma 3: five sliding-window layers (\p window, 1024 in the 4B-27B models, 512 in
  /// 1B) then one global layer (layers 5, 11, ...: sliding_window_pattern = 6); no softcap.
  static layer_schedule gemma3(Index layers, Index window = 1024) {
    const layer_attention local{layer_kind::sliding, window, 0.0, true};
    return layer_schedule(layers,
                          {local, local, local, local, local, {layer_kind::global, 0, 0.0, true}});
  }
  /// \brief gpt-oss: sliding window \p window (128) on even layers, global on odd layers
  /// (layer_types "sliding_attention" if (i + 1) % 2). Its learned sinks are weights, set per
  /// layer through kernel_options::sink_logit.
  static layer_schedule gpt_oss(Index layers, Index window = 128) {
    return layer_schedule(
        layers, {{layer_kind::sliding, window, 0.0, true}, {layer_kind::global, 0, 0.0, true}});
  }
  /// \brief Llama 4: chunked attention (\p chunk, 8192) with RoPE on three layers of four, and
  /// every fourth layer (3, 7, ...: no_rope_layer_interval = 4) a global NoPE layer.
  static layer_schedule llama4(Index layers, Index chunk = 8192) {
    const layer_attention local{layer_kind::chunked, chunk, 0.0, true};
    return layer_schedule(layers, {local, local, local, {layer_kind::global, 0, 0.0, false}});
  }

  /// \brief Number of layers.
  Index layers() const noexcept { return layers_; }
  /// \brief The repeated pattern.
  const std::vector<layer_attention>& pattern() const noexcept { return pattern_; }

  /// \brief The attention of layer \p layer. \pre 0 <= layer < layers().
  const layer_attention& at(Index layer) const {
    if (layer < 0 || layer >= layers_)
      detail::fail_argument("layer_schedule::at", "layer", layer,
                            ">= 0 and < layers() = ", layers_);
    return pattern_[static_cast<std::size_t>(layer) % pattern_.size()];
  }
  /// \brief Same as at().
  const layer_attention& operator[](Index layer) const { return at(layer); }

  /// \brief Calls \p f with the mask expression of layer \p layer and returns its result:
  /// causal(), sliding_window::from_hf(span), or chunked(span) & causal().
  template <class F>
  decltype(auto) visit(Index layer, F&& f) const {
    const layer_attention& a = at(layer);
    switch (a.kind) {
      case layer_kind::sliding: return f(sliding_window::from_hf(a.span));
      case layer_kind::chunked: return f(chunked(a.span) & causal());
      default: return f(causal());
    }
  }

  /// \brief \p base with layer \p layer's softcap set (any options type with a `softcap`
  /// member: softmax_options, attention_options).
  template <class Options>
  Options options(Index layer, Options base) const {
    base.softcap = at(layer).softcap;
    return base;
  }

  /// \brief Keys a KV cache of layer \p layer must hold while it computes a step of
  /// \p micro_batch new queries at positions [context, context + micro_batch): every key some
  /// of those queries keeps, the step's own keys included.
  /// \pre context >= 0, micro_batch >= 1.
  Index kv_cache_keys(Index layer, Index context, Index micro_batch) const {
    check_step("layer_schedule::kv_cache_keys", context, micro_batch);
    const layer_attention& a = at(layer);
    const Index end = context + micro_batch;  // one past the last key
    switch (a.kind) {
      case layer_kind::sliding: {
        const Index first = context - a.span + 1;  // the first query's oldest key
        return end - (first > 0 ? first : 0);
      }
      case layer_kind::chunked: return end - (context / a.span) * a.span;
      default: return end;
    }
  }

  /// \brief kv_cache_keys summed over the layers: the keys of the whole model's cache.
  Index total_kv_cache_keys(Index context, Index micro_batch) const {
    Index total = 0;
    for (Index l = 0; l < layers_; ++l) total += kv_cache_keys(l, context, micro_batch);
    return total;
  }

 private:
  static void check_step(const char* where, Index context, Index micro_batch) {
    if (context < 0 || context > unbounded)
      detail::fail_argument(where, "context", context, ">= 0 and <= emask::unbounded");
    if (micro_batch < 1 || micro_batch > unbounded - context)
      detail::fail_argument(where, "micro_batch", micro_batch,
                            ">= 1 and context + micro_batch <= emask::unbounded");
  }

  Index layers_;
  std::vector<layer_attention> pattern_;
};

EMASK_NAMESPACE_END
