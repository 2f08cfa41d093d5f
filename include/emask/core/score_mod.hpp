/// \file
/// \brief Score modifiers (FlexAttention's score_mod): a user function of (score, b, h, q, k)
/// applied to every score inside the kernels, after scale and softcap and before the mask, and
/// the ready ones: ALiBi (causal and symmetric), a per-head bias, T5 relative-position buckets
/// and a dense additive bias.
///
/// A score_mod is a value (copies share the callable) set in kernel_options::score_mod, so
/// masked_softmax, masked_log_softmax and every masked_attention variant accept it. The kernels
/// apply it one block at a time (a key tile of the tiled kernel, a row elsewhere) through one
/// function pointer per block and stage; the callable itself is inlined into the loop over the
/// block (no std::function, no virtual call per score). The kernels stay compiled once per
/// scalar type, whatever the modifiers a program uses.
#pragma once

#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/mask.hpp"
#include "emask/core/types.hpp"
#include "emask/error.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {

/// s[i * qs + j * ks] = f(s[...], b, h, q0 + i, k0 + j) for i < nq, j < nk.
template <class S>
using score_block_fn = void (*)(const void*, S*, Index ks, Index qs, Index nq, Index nk, Index b,
                                Index h, Index q0, Index k0);
using score_check_fn = void (*)(const void*, const region&, const char*);

/// Whether F has its own block loop (`void block<S>(s, ks, qs, nq, nk, b, h, q0, k0) const`).
template <class F, class S, class = void>
struct has_score_block : std::false_type {};
template <class F, class S>
struct has_score_block<F, S,
                       std::void_t<decltype(std::declval<const F&>().template block<S>(
                           std::declval<S*>(), Index(0), Index(0), Index(0), Index(0), Index(0),
                           Index(0), Index(0), Index(0)))>> : std::true_type {};

/// Whether F checks the positions it is asked about (`void check(const region&, const char*)`).
template <class F, class = void>
struct has_score_check : std::false_type {};
template <class F>
struct has_score_check<F, std::void_t<decltype(std::declval<const F&>().check(
                              std::declval<const region&>(), static_cast<const char*>(nullptr)))>>
    : std::true_type {};

/// Calls f(s[i * qs + j * ks], i, j) for i < nq, j < nk, with the unit-stride axis innermost so
/// that simple modifiers vectorize.
template <class S, class F>
inline void score_block_loop(S* s, Index ks, Index qs, Index nq, Index nk, F&& f) {
  if (qs == 1) {  // the tiled kernel's transposed tile: queries contiguous
    for (Index j = 0; j < nk; ++j) {
      S* r = s + j * ks;
      for (Index i = 0; i < nq; ++i) f(r[i], i, j);
    }
  } else if (ks == 1) {  // rows of scores: keys contiguous
    for (Index i = 0; i < nq; ++i) {
      S* r = s + i * qs;
      for (Index j = 0; j < nk; ++j) f(r[j], i, j);
    }
  } else {
    for (Index i = 0; i < nq; ++i)
      for (Index j = 0; j < nk; ++j) f(s[i * qs + j * ks], i, j);
  }
}

template <class S, class F>
void score_block_of(const void* ctx, S* s, Index ks, Index qs, Index nq, Index nk, Index b, Index h,
                    Index q0, Index k0) {
  const F& f = *static_cast<const F*>(ctx);
  if constexpr (has_score_block<F, S>::value) {
    f.template block<S>(s, ks, qs, nq, nk, b, h, q0, k0);
  } else {
    score_block_loop(s, ks, qs, nq, nk, [&](S& x, Index i, Index j) {
      x = static_cast<S>(f(x, b, h, q0 + i, k0 + j));
    });
  }
}

template <class F>
void score_check_of(const void* ctx, const region& r, const char* where) {
  static_cast<const F*>(ctx)->check(r, where);
}

}  // namespace detail

/// \brief A score modifier: s -> f(s, b, h, q, k) for every score the kernels compute, with b the
/// batch entry, h the query head and q, k absolute positions (options.q_offset + i,
/// options.k_offset + j), the coordinates a mask is asked at.
///
/// Order of a score, in every kernel: scale, softcap, ALiBi (attention_options::alibi), then the
/// modifier, then the mask. The mask's tile answers are unaffected: a pair the mask drops is not
/// computed (a modifier is not called for every dropped pair), and a modifier that returns
/// -infinity drops its pair exactly as the mask would (weight exactly 0; a row whose kept scores
/// are all -infinity is an empty row). A NaN it returns for a kept pair makes that row NaN (the
/// NaN policy of docs/errors.md).
///
/// Built from any callable `f(S score, Index b, Index h, Index q, Index k)` that takes and
/// returns float and double (a generic lambda, or one taking double). Modifiers compose in
/// sequence with then(): `a.then(b)` applies a, then b. A default-constructed score_mod is the
/// identity and costs nothing.
class score_mod {
 public:
  /// \brief The identity (no modifier).
  score_mod() = default;

  /// \brief A modifier from a callable \p f (copied; copies of the score_mod share it).
  template <class F, std::enable_if_t<!std::is_same<std::decay_t<F>, score_mod>::value, int> = 0>
  score_mod(F f) {  // NOLINT(google-explicit-constructor): options.score_mod = alibi_bias(...)
    using Fn = std::decay_t<F>;
    static_assert((std::is_invocable<const Fn&, float, Index, Index, Index, Index>::value &&
                   std::is_invocable<const Fn&, double, Index, Index, Index, Index>::value) ||
                      (detail::has_score_block<Fn, float>::value &&
                       detail::has_score_block<Fn, double>::value),
                  "emask::score_mod: the callable must take (score, b, h, q, k) with a float or "
                  "double score, e.g. [](auto s, emask::Index b, emask::Index h, emask::Index q, "
                  "emask::Index k) { return s; }");
    stage st;
    st.ctx = std::make_shared<const Fn>(std::move(f));
    st.f32 = &detail::score_block_of<float, Fn>;
    st.f64 = &detail::score_block_of<double, Fn>;
    if constexpr (detail::has_score_check<Fn>::value) st.check = &detail::score_check_of<Fn>;
    stages_.push_back(std::move(st));
  }

  /// \brief This modifier followed by \p next: s -> next(this(s)).
  score_mod then(const score_mod& next) const {
    score_mod r = *this;
    r.stages_.insert(r.stages_.end(), next.stages_.begin(), next.stages_.end());
    return r;
  }

  /// \brief Whether this is the identity.
  bool empty() const noexcept { return stages_.empty(); }

  /// \brief Applies the modifier to a block of scores: s[i * query_stride + j * key_stride]
  /// for i < nq, j < nk holds the score of query q0 + i and key k0 + j of batch entry b, head h.
  template <class S>
  void apply(S* s, Index key_stride, Index query_stride, Index nq, Index nk, Index b, Index h,
             Index q0, Index k0) const {
    static_assert(std::is_same<S, float>::value || std::is_same<S, double>::value,
                  "emask::score_mod: float or double scores");
    for (const stage& st : stages_) {
      if constexpr (std::is_same<S, float>::value)
        st.f32(st.ctx.get(), s, key_stride, query_stride, nq, nk, b, h, q0, k0);
      else
        st.f64(st.ctx.get(), s, key_stride, query_stride, nq, nk, b, h, q0, k0);
    }
  }

  /// \brief Raises emask::error (naming \p where) when a stage cannot answer for the batch
  /// entries, heads and positions of \p r (a slope table too short, a bias of the wrong shape).
  void check(const region& r, const char* where) const {
    for (const stage& st : stages_)
      if (st.check) st.check(st.ctx.get(), r, where);
  }

 private:
  struct stage {
    std::shared_ptr<const void> ctx;
    detail::score_block_fn<float> f32 = nullptr;
    detail::score_block_fn<double> f64 = nullptr;
    detail::score_check_fn check = nullptr;
  };
  std::vector<stage> stages_;
};

namespace detail {

inline std::vector<double> checked_per_head(const char* where, const char* arg,
                                            std::vector<double> v) {
  for (std::size_t h = 0; h < v.size(); ++h)
    if (!(std::abs(v[h]) <= static_cast<double>((std::numeric_limits<float>::max)())))
      fail_argument(where, concat(arg, "[", h, "]").c_str(), v[h],
                    "a finite value (finite as float too)");
  return v;
}

inline void check_heads(const char* where, const char* what, std::size_t n, const region& r) {
  if (r.h_begin < 0 || r.h_end > static_cast<Index>(n))
    fail_argument(where, "options.score_mod", concat(what, " of ", n, " heads"),
                  "one per head: ", r.h_end, " (the heads of the call)");
}

struct alibi_fn {
  std::vector<double> slopes;
  bool symmetric;
  template <class S>
  void block(S* s, Index ks, Index qs, Index nq, Index nk, Index, Index h, Index q0,
             Index k0) const {
    const S m = static_cast<S>(slopes[static_cast<std::size_t>(h)]);
    // k - q = (k0 - q0) + j - i: the integer part once per block, the rest exact in S for
    // blocks below 2^24 keys.
    const S base = static_cast<S>(k0 - q0);
    if (symmetric)
      score_block_loop(s, ks, qs, nq, nk, [=](S& x, Index i, Index j) {
        x -= m * std::abs(base + (static_cast<S>(j) - static_cast<S>(i)));
      });
    else
      score_block_loop(s, ks, qs, nq, nk, [=](S& x, Index i, Index j) {
        x += m * (base + (static_cast<S>(j) - static_cast<S>(i)));
      });
  }
  void check(const region& r, const char* where) const {
    check_heads(where, "alibi_bias", slopes.size(), r);
  }
};

struct head_bias_fn {
  std::vector<double> bias;
  template <class S>
  void block(S* s, Index ks, Index qs, Index nq, Index nk, Index, Index h, Index, Index) const {
    const S c = static_cast<S>(bias[static_cast<std::size_t>(h)]);
    score_block_loop(s, ks, qs, nq, nk, [=](S& x, Index, Index) { x += c; });
  }
  void check(const region& r, const char* where) const {
    check_heads(where, "head_bias", bias.size(), r);
  }
};

}  // namespace detail

/// \brief The two forms of ALiBi.
enum class alibi_form {
  causal,    ///< decoders: s + slope_h (k - q) (0 on the diagonal, negative into the past)
  symmetric  ///< encoders: s - slope_h |q - k|
};

/// \brief ALiBi as a score modifier, one slope per query head (alibi_slopes() gives the usual
/// ones). The causal form equals attention_options::alibi.
/// \pre every slope finite (as float too); the heads of a call < slopes.size() (checked per
/// call).
inline score_mod alibi_bias(std::vector<double> slopes, alibi_form form = alibi_form::causal) {
  return score_mod(
      detail::alibi_fn{detail::checked_per_head("alibi_bias", "slopes", std::move(slopes)),
                       form == alibi_form::symmetric});
}

/// \brief A learned scalar per query head added to every score of that head: s + bias[h].
/// \pre every bias finite (as float too); the heads of a call < bias.size() (checked per call).
inline score_mod head_bias(std::vector<double> bias) {
  return score_mod(
      detail::head_bias_fn{detail::checked_per_head("head_bias", "bias", std::move(bias))});
}

/// \brief The T5 relative-position bucket of `relative_position = k - q`, exactly as the T5
/// paper's code and Hugging Face's `T5Attention._relative_position_bucket` compute it (the
/// logarithmic part in float, truncated toward zero):
/// - bidirectional: num_buckets is halved, keys after the query (k > q) use the upper half, and
///   n = |k - q|; causal: n = max(q - k, 0) (keys after the query share bucket 0);
/// - with max_exact = num_buckets / 2 (after the halving): n < max_exact is its own bucket;
///   otherwise max_exact + int(log(n / max_exact) / log(max_distance / max_exact) *
///   (num_buckets - max_exact)), at most num_buckets - 1.
/// \pre num_buckets >= 2 (>= 4 when bidirectional); max_distance > max_exact.
inline Index t5_relative_bucket(Index relative_position, bool bidirectional, Index num_buckets,
                                Index max_distance) {
  const char* where = "t5_relative_bucket";
  if (num_buckets < (bidirectional ? 4 : 2))
    detail::fail_argument(where, "num_buckets", num_buckets,
                          bidirectional ? ">= 4 (bidirectional)" : ">= 2");
  Index nb = num_buckets;
  Index bucket = 0;
  Index n = relative_position;
  if (bidirectional) {
    nb /= 2;
    if (n > 0) bucket += nb;
    n = n < 0
            ? (n == (std::numeric_limits<Index>::min)() ? (std::numeric_limits<Index>::max)() : -n)
            : n;
  } else {
    n = n < 0
            ? (n == (std::numeric_limits<Index>::min)() ? (std::numeric_limits<Index>::max)() : -n)
            : 0;
  }
  const Index max_exact = nb / 2;
  if (max_distance <= max_exact)
    detail::fail_argument(where, "max_distance", max_distance, "> ", max_exact,
                          " (num_buckets / 2, halved again when bidirectional)");
  if (n < max_exact) return bucket + n;
  const float scale = static_cast<float>(
      std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)));
  const float v = std::log(static_cast<float>(n) / static_cast<float>(max_exact)) / scale *
                  static_cast<float>(nb - max_exact);
  const Index large = v >= static_cast<float>(nb) ? nb - 1 : max_exact + static_cast<Index>(v);
  return bucket + (large < nb - 1 ? large : nb - 1);
}

namespace detail {

struct t5_bias_fn {
  std::vector<double> table;  // [bucket][head], row-major
  Index buckets, heads, max_distance;
  bool bidirectional;
  double value(Index rel, Index h) const {
    const Index bk = t5_relative_bucket(rel, bidirectional, buckets, max_distance);
    return table[static_cast<std::size_t>(bk * heads + h)];
  }
  template <class S>
  void block(S* s, Index ks, Index qs, Index nq, Index nk, Index, Index h, Index q0,
             Index k0) const {
    // The bias depends on k - q only: nq + nk - 1 values per block, looked up once each.
    constexpr Index cache = 512;
    S by_rel[cache];
    const Index rel_lo = k0 - (q0 + nq - 1), n_rel = nq + nk - 1;
    const bool cached = n_rel <= cache;
    if (cached)
      for (Index r = 0; r < n_rel; ++r) by_rel[r] = static_cast<S>(value(rel_lo + r, h));
    score_block_loop(s, ks, qs, nq, nk, [&](S& x, Index i, Index j) {
      const Index rel = (k0 + j) - (q0 + i);
      x += cached ? by_rel[rel - rel_lo] : static_cast<S>(value(rel, h));
    });
  }
  void check(const region& r, const char* where) const {
    check_heads(where, "t5_relative_bias table", static_cast<std::size_t>(heads), r);
  }
};

template <class T>
struct dense_bias_fn {
  const T* data;
  Index batch, heads, q_len, k_len;
  Index sb, sh, sq;  // strides in elements (0 on a broadcast axis)
  template <class S>
  void block(S* s, Index ks, Index qs, Index nq, Index nk, Index b, Index h, Index q0,
             Index k0) const {
    const T* base = data + (batch == 1 ? 0 : b) * sb + (heads == 1 ? 0 : h) * sh;
    const S neg_inf = -std::numeric_limits<S>::infinity();
    for (Index i = 0; i < nq; ++i) {
      const T* row = base + (q_len == 1 ? 0 : q0 + i) * sq;
      S* out = s + i * qs;
      if (k_len == 1) {
        const T t = row[0];
        const S add = t <= std::numeric_limits<T>::lowest() ? neg_inf : static_cast<S>(t);
        for (Index j = 0; j < nk; ++j) out[j * ks] += add;
      } else {
        for (Index j = 0; j < nk; ++j) {
          const T t = row[k0 + j];
          out[j * ks] += t <= std::numeric_limits<T>::lowest() ? neg_inf : static_cast<S>(t);
        }
      }
    }
  }
  void check(const region& r, const char* where) const {
    auto axis = [&](Index size, Index begin, Index end) {
      return size == 1 || (begin >= 0 && end <= size);
    };
    if (!(axis(batch, r.b_begin, r.b_end) && axis(heads, r.h_begin, r.h_end) &&
          axis(q_len, r.q_begin, r.q_end) && axis(k_len, r.k_begin, r.k_end)))
      fail_argument(
          where, "options.score_mod",
          concat("additive_bias [B=", batch, ", H=", heads, ", Lq=", q_len, ", Lk=", k_len, "]"),
          "each extent 1 (broadcast) or covering the call: B >= ", r.b_end, ", H >= ", r.h_end,
          ", Lq >= ", r.q_end, ", Lk >= ", r.k_end, " (positions include the offsets)");
  }
};

}  // namespace detail

/// \brief T5-style relative-position bias: s + table(bucket(k - q), h), with the buckets of
/// t5_relative_bucket(). \p table is num_buckets x H, the layout of the learned embedding
/// (Hugging Face's `relative_attention_bias.weight`); it is copied.
/// \pre table.rows() >= 2 (>= 4 bidirectional), at least one column, finite entries;
/// max_distance > the exact-bucket count (see t5_relative_bucket).
template <class Derived>
score_mod t5_relative_bias(const Eigen::MatrixBase<Derived>& table, bool bidirectional,
                           Index max_distance = 128) {
  const char* where = "t5_relative_bias";
  if (table.cols() < 1)
    detail::fail_argument(where, "table", detail::concat(table.rows(), "x", table.cols()),
                          "num_buckets x H with H >= 1");
  // Checks num_buckets and max_distance once, with this function's name in the message.
  if (table.rows() < (bidirectional ? 4 : 2))
    detail::fail_argument(where, "table", detail::concat(table.rows(), "x", table.cols()),
                          bidirectional ? "at least 4 buckets (rows) when bidirectional"
                                        : "at least 2 buckets (rows)");
  const Index max_exact = (bidirectional ? table.rows() / 2 : table.rows()) / 2;
  if (max_distance <= max_exact)
    detail::fail_argument(where, "max_distance", max_distance, "> ", max_exact,
                          " (the exact buckets of this table)");
  detail::t5_bias_fn f{{}, table.rows(), table.cols(), max_distance, bidirectional};
  f.table.resize(static_cast<std::size_t>(table.rows() * table.cols()));
  for (Index r = 0; r < table.rows(); ++r)
    for (Index c = 0; c < table.cols(); ++c) {
      const double x = static_cast<double>(table(r, c));
      if (!(std::abs(x) <= static_cast<double>((std::numeric_limits<float>::max)())))
        detail::fail_argument(where, detail::concat("table(", r, ", ", c, ")").c_str(), x,
                              "a finite value (finite as float too)");
      f.table[static_cast<std::size_t>(r * table.cols() + c)] = x;
    }
  return score_mod(std::move(f));
}

/// \brief A dense additive bias over [B, H, Lq, Lk] (row-major, contiguous), the Hugging Face
/// 4-D float mask: s + bias[b][h][q][k], an extent of 1 broadcasting along its axis ([B, 1, 1,
/// Lk] is a padding mask). Values <= lowest() (the `finfo.min` Hugging Face writes) and -inf
/// drop their pair (weight exactly 0). Indexed by absolute positions, like a mask. The bias is
/// not copied: keep it alive while the score_mod is used.
/// \tparam T float or double.
template <class T>
score_mod additive_bias(const T* data, Index batch, Index heads, Index q_len, Index k_len) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "emask::additive_bias: float or double bias");
  const char* where = "additive_bias";
  if (batch < 1) detail::fail_argument(where, "batch", batch, ">= 1");
  if (heads < 1) detail::fail_argument(where, "heads", heads, ">= 1");
  if (q_len < 1) detail::fail_argument(where, "q_len", q_len, ">= 1");
  if (k_len < 1) detail::fail_argument(where, "k_len", k_len, ">= 1");
  if (data == nullptr) detail::fail_argument(where, "data", "null", "a pointer to the bias");
  const Index sq = k_len, sh = q_len * k_len, sb = heads * q_len * k_len;
  return score_mod(detail::dense_bias_fn<T>{data, batch, heads, q_len, k_len, sb, sh, sq});
}

/// \brief A dense Lq x Lk bias shared by every batch entry and head (not copied).
template <class T>
score_mod additive_bias(const row_matrix<T>& bias) {
  return additive_bias(bias.data(), 1, 1, bias.rows(), bias.cols());
}
/// \brief Deleted: the bias would not outlive the call.
template <class T>
score_mod additive_bias(const row_matrix<T>&& bias) = delete;

EMASK_NAMESPACE_END
