// Tests run every kernel variant through one loop: this header keeps a runtime variant value
// beside the options (the library picks variants by tag, at compile time) and forwards each
// call to the tagged entry point. Only tests use it; it compiles every variant on purpose.
#pragma once

#include <type_traits>
#include <utility>

#include <emask/emask.hpp>
#include <emask/reference.hpp>

namespace emask_test {

enum class softmax_variant { naive, fused, tiled };
enum class attention_variant { naive, tiled, decode };

struct softmax_options : emask::softmax_options {
  softmax_variant variant = softmax_variant::tiled;
};
struct attention_options : emask::attention_options {
  attention_variant variant = attention_variant::tiled;
};

namespace detail {
// The variant of the options among the arguments (the default when there are none).
inline void pick(softmax_variant& v, const softmax_options& o) { v = o.variant; }
inline void pick(attention_variant& v, const attention_options& o) { v = o.variant; }
template <class V, class T>
void pick(V&, const T&) {}
template <class V, class... A>
V variant_of(V v, const A&... a) {
  (pick(v, a), ...);
  return v;
}
}  // namespace detail

template <class... A>
decltype(auto) masked_softmax(A&&... a) {
  switch (detail::variant_of(softmax_variant::tiled, a...)) {
    case softmax_variant::naive:
      return emask::masked_softmax(emask::reference::naive, std::forward<A>(a)...);
    case softmax_variant::fused: return emask::masked_softmax(emask::fused, std::forward<A>(a)...);
    default: return emask::masked_softmax(emask::tiled, std::forward<A>(a)...);
  }
}

template <class... A>
decltype(auto) masked_log_softmax(A&&... a) {
  switch (detail::variant_of(softmax_variant::tiled, a...)) {
    case softmax_variant::naive:
      return emask::masked_log_softmax(emask::reference::naive, std::forward<A>(a)...);
    case softmax_variant::fused:
      return emask::masked_log_softmax(emask::fused, std::forward<A>(a)...);
    default: return emask::masked_log_softmax(emask::tiled, std::forward<A>(a)...);
  }
}

/// A softmax variant's three answers for one score matrix: probabilities, log-probabilities
/// (from masked_log_softmax, a separate call) and the log-sum-exp of each row.
template <class S>
struct softmax_answers {
  emask::row_matrix<S> p, log_p;
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse;
};

template <class S, class Mask>
softmax_answers<S> softmax_and_log_softmax(const emask::row_matrix<S>& x, const Mask& mask,
                                           const softmax_options& o) {
  softmax_answers<S> a{emask::row_matrix<S>(x.rows(), x.cols()),
                       emask::row_matrix<S>(x.rows(), x.cols()),
                       Eigen::Matrix<S, Eigen::Dynamic, 1>(x.rows())};
  masked_softmax(x, mask, a.p, a.lse, o);
  masked_log_softmax(x, mask, a.log_p, o);
  return a;
}

template <class... A>
void masked_attention(A&&... a) {
  switch (detail::variant_of(attention_variant::tiled, a...)) {
    case attention_variant::naive:
      emask::masked_attention(emask::reference::naive, std::forward<A>(a)...);
      return;
    case attention_variant::decode:
      emask::masked_attention(emask::decode, std::forward<A>(a)...);
      return;
    default: emask::masked_attention(emask::tiled, std::forward<A>(a)...); return;
  }
}

template <class S>
emask::Index attention_workspace_size(emask::Index bh, emask::Index lq, emask::Index lk,
                                      emask::Index d, emask::Index dv,
                                      const attention_options& o = {}) {
  switch (o.variant) {
    case attention_variant::naive:
      return emask::attention_workspace_size<S>(emask::reference::naive, bh, lq, lk, d, dv, o);
    case attention_variant::decode:
      return emask::attention_workspace_size<S>(emask::decode, bh, lq, lk, d, dv, o);
    default: return emask::attention_workspace_size<S>(emask::tiled, bh, lq, lk, d, dv, o);
  }
}

}  // namespace emask_test
