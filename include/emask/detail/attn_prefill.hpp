/// \file
/// \brief Prefill with a KV cache: the tiled (FlashAttention-2) kernel of attn_tiled.hpp with its
/// keys and values read from a cache of float, bfloat16 or half rows, contiguous or paged.
///
/// Only stages 2 (scores) and 5b (P V) differ from masked_attention's tiled kernel; the mask,
/// the online softmax and the epilogue are the same functions. Two ways to form the products:
/// - convert: the tile's K and V rows are converted to float into the workspace (exact), then
///   the float micro-kernels run. The copy is O(tile_k D) per tile pair, 1 / tile_q of the
///   products' work, so paged and reduced-precision caches cost about what float costs.
/// - bf16 dot (bfloat16 caches, builds with AVX512-BF16): vdpbf16ps does two multiply-adds per
///   float lane, with Q and P rounded to bfloat16 (round to nearest even) for the products, as
///   FlashAttention's bfloat16 mode does; accumulation stays float.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/attn_prefill.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "emask/detail/attn_kv.hpp"
#include "emask/detail/attn_rescue.hpp"
#include "emask/detail/attn_tiled.hpp"
#include "emask/detail/kv_convert.hpp"
#include "emask/kernels/attention.hpp"

#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    EMASK_SIMD_BYTES == 64 && EMASK_HAS_VECTOR_EXT
#include <immintrin.h>
#define EMASK_HAS_BF16_DOT 1
#else
#define EMASK_HAS_BF16_DOT 0
#endif

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Offset (elements of T from source.k / source.v) of key j of KV head g of sequence b.
template <class T>
inline Index kv_row_offset(const kv_source<T>& s, Index b, Index g, Index j) noexcept {
  Index off = 0;
  s.offsets(b, g, j, 1, &off);
  return off;
}

/// Workspace of the bf16 dot path, per thread, in 32-bit words: Q^T and P as bfloat16 pairs
/// along the product's depth, the tile's K rows as bfloat16, V as pairs of rows.
struct prefill_dot_sizes {
  Index dpe = 0;  // D rounded up to even
  Index qt2 = 0, k16 = 0, pw = 0, v2 = 0, per_thread = 0;
  static prefill_dot_sizes make(const attn_tiles& t) {
    prefill_dot_sizes z;
    z.dpe = round_up(t.dp, 2);
    z.qt2 = round_up(z.dpe / 2 * t.br, 16);
    z.k16 = round_up(t.bc * z.dpe / 2, 16);
    z.pw = round_up(t.bc / 2 * t.br, 16);
    z.v2 = round_up(t.bc / 2 * t.dvp, 16);
    z.per_thread = z.qt2 + z.k16 + z.pw + z.v2;
    return z;
  }
};

/// Stage 2 (convert): the tile's K rows as float, then S^T = K (scaled Q)^T and the transforms.
template <class T>
void prefill_scores(attn_tile_task<float>& a, const kv_source<T>& src, Index seq) {
  const auto& p = a.p;
  const auto& t = a.t;
  const attn_tile_ws<float> w = a.w;
  const Index nkp = round_up(a.nk, gemm_rows), g = p.kv_head(a.h);
  for (Index j = 0; j < a.nk; ++j) {
    float* dst = w.kp + j * t.dp;
    kv_widen_n(src.k + kv_row_offset(src, seq, g, a.k0 + j), p.d, dst);
    std::fill(dst + p.d, dst + t.dp, 0.0f);
  }
  std::fill(w.kp + a.nk * t.dp, w.kp + nkp * t.dp, 0.0f);
  gemm_abt(w.kp, t.dp, w.qt, t.br, t.dp, w.st, t.br, nkp, t.br);
  tile_transform_scores(a);
}

/// Stage 5b (convert): O = alpha O + P V with the V rows converted to float; rows of keys no
/// query keeps are zero (never read).
template <class T>
void prefill_pv(attn_tile_task<float>& a, const kv_source<T>& src, Index seq) {
  const auto& p = a.p;
  const auto& t = a.t;
  const attn_tile_ws<float> w = a.w;
  const Index g = p.kv_head(a.h);
  for (Index j = 0; j < a.nk; ++j) {
    float* dst = w.vp + j * t.dvp;
    if (a.full || w.col[j]) {
      kv_widen_n(src.v + kv_row_offset(src, seq, g, a.k0 + j), p.dv, dst);
      std::fill(dst + p.dv, dst + t.dvp, 0.0f);
    } else {
      std::fill(dst, dst + t.dvp, 0.0f);
    }
  }
  gemm_scale_add_ab(w.o, t.dvp, w.alpha, w.st, Index(1), t.br, w.vp, t.dvp, a.nk, t.br, t.dvp);
}

#if EMASK_HAS_BF16_DOT
/// 16 floats of \p lo and \p hi rounded to bfloat16 (nearest even) and interleaved: lane i holds
/// (lo[i], hi[i]) as one 32-bit word, the operand layout of vdpbf16ps.
inline __m512i bf16_pairs(__m512 lo, __m512 hi) noexcept {
  const __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
  const __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
  return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

/// Rows \p lo and \p hi (n floats each, n a multiple of 16) as bfloat16 pairs into \p dst.
inline void bf16_pack_rows(const float* lo, const float* hi, std::uint32_t* dst, Index n) noexcept {
  for (Index i = 0; i < n; i += 16) {
    const __m512 b = hi ? _mm512_loadu_ps(hi + i) : _mm512_setzero_ps();
    _mm512_storeu_si512(dst + i, bf16_pairs(_mm512_loadu_ps(lo + i), b));
  }
}

/// C[r, c] = sum_p2 A[r, 2p2 .. 2p2+1] . Bt2[p2, c]: A bfloat16 rows (lda in halves, even),
/// Bt2 bfloat16 pairs (ldb in words). rows a multiple of gemm_rows, cols of 32.
inline void gemm_abt_bf16(const std::uint16_t* a, Index lda, const std::uint32_t* bt2, Index ldb,
                          Index depth2, float* c, Index ldc, Index rows, Index cols) noexcept {
  constexpr Index R = gemm_rows;
  for (Index c0 = 0; c0 < cols; c0 += 32) {
    for (Index r0 = 0; r0 < rows; r0 += R) {
      __m512 acc[R][2];
      for (Index r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
      for (Index p2 = 0; p2 < depth2; ++p2) {
        const __m512i b0 = _mm512_loadu_si512(bt2 + p2 * ldb + c0);
        const __m512i b1 = _mm512_loadu_si512(bt2 + p2 * ldb + c0 + 16);
        for (Index r = 0; r < R; ++r) {
          std::uint32_t x;
          std::memcpy(&x, a + (r0 + r) * lda + 2 * p2, sizeof x);
          const __m512i xv = _mm512_set1_epi32(static_cast<int>(x));
          acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)b0, (__m512bh)xv);
          acc[r][1] = _mm512_dpbf16_ps(acc[r][1], (__m512bh)b1, (__m512bh)xv);
        }
      }
      for (Index r = 0; r < R; ++r) {
        _mm512_storeu_ps(c + (r0 + r) * ldc + c0, acc[r][0]);
        _mm512_storeu_ps(c + (r0 + r) * ldc + c0 + 16, acc[r][1]);
      }
    }
  }
}

/// O[r, c] = alpha[r] O[r, c] + sum_j2 P2[j2, r] . V2[j2, c]: P2 bfloat16 pairs of P (row stride
/// rows), V2 pairs of V rows (ldv in words). rows a multiple of gemm_rows, cols of 32.
inline void gemm_scale_add_ab_bf16(float* o, Index ldo, const float* alpha, const std::uint32_t* p2,
                                   const std::uint32_t* v2, Index ldv, Index depth2, Index rows,
                                   Index cols) noexcept {
  constexpr Index R = gemm_rows;
  for (Index c0 = 0; c0 < cols; c0 += 32) {
    for (Index r0 = 0; r0 < rows; r0 += R) {
      __m512 acc[R][2];
      for (Index r = 0; r < R; ++r) {
        const __m512 al = _mm512_set1_ps(alpha[r0 + r]);
        acc[r][0] = _mm512_mul_ps(_mm512_loadu_ps(o + (r0 + r) * ldo + c0), al);
        acc[r][1] = _mm512_mul_ps(_mm512_loadu_ps(o + (r0 + r) * ldo + c0 + 16), al);
      }
      for (Index j2 = 0; j2 < depth2; ++j2) {
        const __m512i b0 = _mm512_loadu_si512(v2 + j2 * ldv + c0);
        const __m512i b1 = _mm512_loadu_si512(v2 + j2 * ldv + c0 + 16);
        for (Index r = 0; r < R; ++r) {
          const __m512i xv = _mm512_set1_epi32(static_cast<int>(p2[j2 * rows + r0 + r]));
          acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)b0, (__m512bh)xv);
          acc[r][1] = _mm512_dpbf16_ps(acc[r][1], (__m512bh)b1, (__m512bh)xv);
        }
      }
      for (Index r = 0; r < R; ++r) {
        _mm512_storeu_ps(o + (r0 + r) * ldo + c0, acc[r][0]);
        _mm512_storeu_ps(o + (r0 + r) * ldo + c0 + 16, acc[r][1]);
      }
    }
  }
}

/// The bf16 dot path's buffers of one thread.
struct prefill_dot_ws {
  std::uint32_t *qt2, *pw, *v2;
  std::uint16_t* k16;
  prefill_dot_ws(std::uint32_t* base, const prefill_dot_sizes& z)
      : qt2(base),
        pw(base ? base + z.qt2 + z.k16 : nullptr),
        v2(base ? base + z.qt2 + z.k16 + z.pw : nullptr),
        k16(base ? reinterpret_cast<std::uint16_t*>(base + z.qt2) : nullptr) {}
};

/// Q^T (already scaled, float, dp x br) as bfloat16 pairs along D.
inline void prefill_pack_q_bf16(const attn_tile_task<float>& a, const prefill_dot_ws& d,
                                const prefill_dot_sizes& z) {
  const Index br = a.t.br;
  for (Index p2 = 0; p2 < z.dpe / 2; ++p2) {
    const float* lo = a.w.qt + 2 * p2 * br;
    const float* hi = 2 * p2 + 1 < a.t.dp ? lo + br : nullptr;
    bf16_pack_rows(lo, hi, d.qt2 + p2 * br, br);
  }
}

/// Stage 2 (bf16 dot): K rows copied as bfloat16 (zero padded), S^T by vdpbf16ps.
inline void prefill_scores_bf16(attn_tile_task<float>& a, const kv_source<Eigen::bfloat16>& src,
                                Index seq, const prefill_dot_ws& d, const prefill_dot_sizes& z) {
  const auto& p = a.p;
  const Index nkp = round_up(a.nk, gemm_rows), g = p.kv_head(a.h);
  for (Index j = 0; j < nkp; ++j) {
    std::uint16_t* dst = d.k16 + j * z.dpe;
    Index c = 0;
    if (j < a.nk) {
      std::memcpy(dst, src.k + kv_row_offset(src, seq, g, a.k0 + j),
                  static_cast<std::size_t>(p.d) * 2);
      c = p.d;
    }
    std::fill(dst + c, dst + z.dpe, std::uint16_t(0));
  }
  gemm_abt_bf16(d.k16, z.dpe, d.qt2, a.t.br, z.dpe / 2, a.w.st, a.t.br, nkp, a.t.br);
  tile_transform_scores(a);
}

/// Stage 5b (bf16 dot): P and V as bfloat16 pairs along the keys, then vdpbf16ps.
inline void prefill_pv_bf16(attn_tile_task<float>& a, const kv_source<Eigen::bfloat16>& src,
                            Index seq, const prefill_dot_ws& d) {
  const auto& p = a.p;
  const auto& t = a.t;
  const Index br = t.br, nk = a.nk, nk2 = (nk + 1) / 2, g = p.kv_head(a.h);
  for (Index j2 = 0; j2 < nk2; ++j2) {
    const float* lo = a.w.st + 2 * j2 * br;
    bf16_pack_rows(lo, 2 * j2 + 1 < nk ? lo + br : nullptr, d.pw + j2 * br, br);
  }
  const __mmask16 all = 0xFFFF;
  for (Index j2 = 0; j2 < nk2; ++j2) {
    const Index j = 2 * j2;
    const bool use_a = a.full || a.w.col[j];
    const bool use_b = j + 1 < nk && (a.full || a.w.col[j + 1]);
    const std::uint16_t* ra =
        use_a ? reinterpret_cast<const std::uint16_t*>(src.v + kv_row_offset(src, seq, g, a.k0 + j))
              : nullptr;
    const std::uint16_t* rb = use_b ? reinterpret_cast<const std::uint16_t*>(
                                          src.v + kv_row_offset(src, seq, g, a.k0 + j + 1))
                                    : nullptr;
    std::uint32_t* dst = d.v2 + j2 * t.dvp;
    for (Index c = 0; c < t.dvp; c += 16) {
      const Index left = p.dv - c;
      const __mmask16 m =
          left >= 16 ? all : (left <= 0 ? __mmask16(0) : static_cast<__mmask16>((1u << left) - 1));
      const __m256i va = ra ? _mm256_maskz_loadu_epi16(m, ra + c) : _mm256_setzero_si256();
      const __m256i vb = rb ? _mm256_maskz_loadu_epi16(m, rb + c) : _mm256_setzero_si256();
      const __m512i w2 = _mm512_or_si512(_mm512_cvtepu16_epi32(va),
                                         _mm512_slli_epi32(_mm512_cvtepu16_epi32(vb), 16));
      _mm512_storeu_si512(dst + c, w2);
    }
  }
  gemm_scale_add_ab_bf16(a.w.o, t.dvp, a.w.alpha, d.pw, d.v2, t.dvp, nk2, br, t.dvp);
}
#endif

/// Whether the bf16 dot path runs for storage T in this build.
template <class T>
inline constexpr bool prefill_uses_bf16_dot_v =
    EMASK_HAS_BF16_DOT&& std::is_same<T, Eigen::bfloat16>::value;

/// One query tile [q0, q0 + tile) of query head h of sequence \p seq (whose problem is \p p:
/// batch 1, b0 = seq, keys [0, length)). \p Dot: the bf16 dot path (bfloat16 caches only).
template <bool Dot, class T>
void prefill_query_tile(const attn_problem<float>& p, const kv_source<T>& src, Index seq,
                        const mask_tiles<float>& mask, const attn_tiles& t, float* ws,
                        std::uint32_t* ws_dot, Index h, Index q0) {
  attn_tile_task<float> a{p,        t,  attn_tile_ws<float>(ws, t),  0,           h, p.b0,
                          p.h0 + h, q0, (std::min)(t.br, p.lq - q0), p.q_off + q0};
  tile_pack_q(a);
#if EMASK_HAS_BF16_DOT
  const prefill_dot_sizes z = prefill_dot_sizes::make(t);
  const prefill_dot_ws d(ws_dot, z);
  if constexpr (Dot) prefill_pack_q_bf16(a, d, z);
#else
  (void)ws_dot;
#endif
  const tile_grid grid = t.grid(p.lq, p.lk);
  for (Index kt = 0; kt < grid.k_tiles(); ++kt) {
    a.k0 = grid.k_begin(kt);
    a.nk = grid.k_end(kt) - a.k0;
    a.ka = p.k_off + a.k0;
    const tile_state ts = mask.tile(a.mb, a.mh, a.qa, a.qa + a.nq, a.ka, a.ka + a.nk);
    if (ts == tile_state::empty) continue;
    a.full = ts == tile_state::full;
    a.intervals = true;
#if EMASK_HAS_BF16_DOT
    if constexpr (Dot) {
      prefill_scores_bf16(a, src, seq, d, z);
    } else {
      prefill_scores(a, src, seq);
    }
#else
    prefill_scores(a, src, seq);
#endif
    tile_mask(a, mask);
    if (!tile_online_update(a)) continue;
    tile_probabilities(a);
#if EMASK_HAS_BF16_DOT
    if constexpr (Dot) {
      prefill_pv_bf16(a, src, seq, d);
    } else {
      prefill_pv(a, src, seq);
    }
#else
    prefill_pv(a, src, seq);
#endif
  }
  tile_epilogue(a);
}

/// Runs every (sequence, head, query tile) of the prefill problems \p ps (one per sequence) in
/// parallel. \p ws: threads x t.per_thread floats; \p ws_dot: threads x the dot sizes (words).
template <bool Dot, class T>
void prefill_run(const std::vector<attn_problem<float>>& ps, const kv_source<T>& src,
                 const mask_tiles<float>& mask, const attn_tiles& t, Index lq, float* ws,
                 std::uint32_t* ws_dot, Index dot_per_thread, int threads) {
  if (ps.empty()) return;
  const Index heads = ps.front().heads;
  const Index nqt = t.grid(lq, 1).q_tiles();
  const Index items = static_cast<Index>(ps.size()) * heads * nqt;
  auto run_item = [&](Index w, int tid) {
    const Index qt = nqt - 1 - (w % nqt);  // later (heavier, causal) query tiles first
    const Index sh = w / nqt;
    const Index seq = sh / heads, h = sh % heads;
    const attn_problem<float>& p = ps[static_cast<std::size_t>(seq)];
    if (p.lq == 0) return;
    prefill_query_tile<Dot>(p, src, p.b0, mask, t, ws + static_cast<Index>(tid) * t.per_thread,
                            ws_dot + static_cast<Index>(tid) * dot_per_thread, h, qt * t.br);
  };
#if EMASK_HAS_OPENMP
  if (threads > 1 && items > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (Index w = 0; w < items; ++w) run_item(w, thread_id());
    return;
  }
#else
  (void)threads;
#endif
  for (Index w = 0; w < items; ++w) run_item(w, 0);
}

/// attn_rescue_overflow for the prefill: a row whose output is not finite is recomputed with
/// normalized weights (attn_exact_row) over float copies of its sequence's K and V rows, made
/// only when such a row exists.
template <class T>
void prefill_rescue_overflow(const std::vector<attn_problem<float>>& ps, const kv_source<T>& src,
                             const mask_tiles<float>& mask) {
  std::vector<float> kf, vf, scratch, keep;
  for (const attn_problem<float>& p : ps) {
    Index have = -1;  // KV head whose rows kf, vf hold
    for (Index h = 0; h < p.heads; ++h) {
      const float* out = p.out_ptr(0, h);
      for (Index i = 0; i < p.lq; ++i) {
        if (attn_row_finite(out + i * p.o_sl, p.dv)) continue;
        const Index g = p.kv_head(h);
        if (have != g) {
          kf.resize(static_cast<std::size_t>(p.lk * p.d));
          vf.resize(static_cast<std::size_t>(p.lk * p.dv));
          for (Index j = 0; j < p.lk; ++j) {
            kv_widen_n(src.k + kv_row_offset(src, p.b0, g, j), p.d, kf.data() + j * p.d);
            kv_widen_n(src.v + kv_row_offset(src, p.b0, g, j), p.dv, vf.data() + j * p.dv);
          }
          have = g;
        }
        attn_problem<float> pf = p;
        pf.k = kf.data();
        pf.v = vf.data();
        pf.k_sb = pf.k_sh = pf.v_sb = pf.v_sh = 0;
        pf.k_sl = p.d;
        pf.v_sl = p.dv;
        attn_exact_row(pf, mask, 0, h, i, scratch, keep);
      }
    }
  }
}

/// The checked entry of prefill with a cache (lengths already checked: 0 or >= Lq): queries
/// q [B, H, Lq, D] (float), sequence b's keys [0, lengths[b]) in \p src (KV heads \p kv_heads, dims
/// \p d and \p dv), out [B, H, Lq, Dv], lse (B*H rows of Lq, row stride \p lse_stride) or null. The
/// Lq queries of sequence b are its last Lq cache positions: query i sits at position lengths[b] -
/// Lq + i (bottom-right), and the mask is asked at (b, h, lengths[b] - Lq + i, j). \p dot: allow
/// the bf16 dot path.
template <class T, class Mask>
void prefill_attention(const char* where, const tensor_view<const float>& q,
                       const kv_source<T>& src, Index kv_heads, Index d, Index dv,
                       const std::vector<Index>& lengths, const Mask& mask,
                       const attention_options& opt, const tensor_view<float>& out, float* lse,
                       Index lse_stride, bool dot) {
  const auto shape = [](const auto& x) { return view_shape(x); };
  const Index nseq = static_cast<Index>(lengths.size());
  if (q.batch() != nseq)
    fail_argument(where, "q", shape(q), "batch ", nseq, " (one per sequence of the cache)");
  if (q.dim() != d) fail_argument(where, "q", shape(q), "D = ", d, " (the D of the cache's keys)");
  if (kv_heads < 1 || q.heads() % kv_heads != 0)
    fail_argument(where, "q", shape(q), "a number of heads that the cache's ", kv_heads,
                  " KV heads divide");
  if (out.batch() != q.batch() || out.heads() != q.heads() || out.length() != q.length() ||
      out.dim() != dv)
    fail_argument(where, "out", shape(out), "[B=", q.batch(), ", H=", q.heads(), ", L=", q.length(),
                  ", D=", dv, "]");
  if (opt.q_offset != 0 || opt.k_offset != 0)
    fail_argument(where, "options.q_offset, options.k_offset",
                  concat(opt.q_offset, ", ", opt.k_offset),
                  "0, 0 (positions come from the cache: query i of sequence b sits at "
                  "lengths[b] - Lq + i)");
  Index max_len = 0;
  for (Index b = 0; b < nseq; ++b) {
    const Index len = lengths[static_cast<std::size_t>(b)];
    max_len = (std::max)(max_len, len);
  }
  attn_problem<float> proto{};
  proto.lq = q.length();
  proto.lk = max_len;
  proto.d = d;
  proto.dv = dv;
  attn_set_options(proto, opt, where, opt.alibi.empty() ? 0 : q.heads(), 0);
  proto.sinks = sink_logits<float>(where, opt, 0, q.heads());
  std::vector<attn_problem<float>> ps(static_cast<std::size_t>(nseq), proto);
  for (Index b = 0; b < nseq; ++b) {
    attn_problem<float>& p = ps[static_cast<std::size_t>(b)];
    p.q = q.slice_data(b, 0);
    p.q_sh = q.stride_h();
    p.q_sl = q.stride_l();
    p.out = out.slice_data(b, 0);
    p.o_sh = out.stride_h();
    p.o_sl = out.stride_l();
    p.lse = lse ? lse + b * q.heads() * lse_stride : nullptr;
    p.lse_row = lse_stride;
    p.batch = 1;
    p.heads = q.heads();
    p.kv_heads = kv_heads;
    p.lk = lengths[static_cast<std::size_t>(b)];
    p.b0 = b;
    p.q_off = p.lk - p.lq;
    p.k_off = 0;
    if (p.lk > 0) attn_check_mask(p, mask, where);
  }
  if (q.length() == 0 || nseq == 0 || q.heads() == 0) return;
  const attn_tiles t = attn_tiles::make<float>(opt.tile_q, opt.tile_k, proto.lq,
                                               (std::max)(max_len, Index(1)), d, dv);
  const int threads = proto.threads;
  std::vector<float> ws(static_cast<std::size_t>(threads * t.per_thread));
  const mask_tiles<float> tiles(mask);
  std::vector<float> own_lse;
  if (!proto.sinks.empty() && !lse) {
    own_lse.resize(static_cast<std::size_t>(nseq * q.heads() * q.length()));
    for (Index b = 0; b < nseq; ++b) {
      ps[static_cast<std::size_t>(b)].lse = own_lse.data() + b * q.heads() * q.length();
      ps[static_cast<std::size_t>(b)].lse_row = q.length();
    }
  }
  // An empty sequence keeps no key: zero rows and lse = -infinity (its sink, if any, below).
  for (attn_problem<float>& p : ps) {
    if (p.lk > 0) continue;
    for (Index h = 0; h < p.heads; ++h)
      for (Index i = 0; i < p.lq; ++i) {
        std::fill(p.out_ptr(0, h) + i * p.o_sl, p.out_ptr(0, h) + i * p.o_sl + p.dv, 0.0f);
        if (p.lse) p.lse_ptr(0, h)[i] = negative_infinity<float>();
      }
    p.lq = 0;  // no work item
  }
  if constexpr (prefill_uses_bf16_dot_v<T>) {
    if (dot) {
      const Index per = prefill_dot_sizes::make(t).per_thread;
      std::vector<std::uint32_t> wd(static_cast<std::size_t>(threads * per));
      prefill_run<true>(ps, src, tiles, t, proto.lq, ws.data(), wd.data(), per, threads);
    } else {
      prefill_run<false>(ps, src, tiles, t, proto.lq, ws.data(), nullptr, 0, threads);
    }
  } else {
    (void)dot;
    prefill_run<false>(ps, src, tiles, t, proto.lq, ws.data(), nullptr, 0, threads);
  }
  prefill_rescue_overflow(ps, src, tiles);
  for (const attn_problem<float>& p : ps) {
    if (p.sinks.empty()) continue;
    for (Index h = 0; h < p.heads; ++h) {
      float* o = p.out_ptr(0, h);
      float* l = p.lse_ptr(0, h);
      for (Index i = 0; i < proto.lq; ++i)
        fold_sink_row(o + i * p.o_sl, l[i], p.sinks[static_cast<std::size_t>(h)], p.dv);
    }
  }
}

}  // namespace detail
EMASK_NAMESPACE_END
