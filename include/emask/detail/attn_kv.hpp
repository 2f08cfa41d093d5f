/// \file
/// \brief The KV-cache decode kernel behind masked_attention_decode: few query rows per sequence
/// over K and V caches stored as float, bfloat16 or half, contiguous or paged.
///
/// Work items are (sequence, KV head, key chunk of options.decode_chunk keys). An item reads each
/// K row once, converts it in registers (kv_load16) and takes its dot product with every query
/// row of the KV head's group (G = H / Hkv heads x Lq rows), then the rows' chunk softmax, then
/// reads each V row once for all those rows (register blocks of 4 rows x 64 floats). The
/// partials (normalized output, log-sum-exp) are merged per row in chunk order with
/// merge_lse_row, as the decode variant of masked_attention does (detail/attn_decode.hpp), so the
/// result does not depend on the thread count or on how the items are scheduled.
///
/// Row addresses of a chunk are collected first (one offset per key: base + b sb + g sh + j sl
/// for a contiguous cache, page + g sh + (j mod P) st for a paged one), and everything after that
/// reads the keys through them in ascending order: a paged cache gives the same bits as a
/// contiguous one holding the same keys.
///
/// Summation order: a score is a 16-lane fused multiply-add over D followed by a fixed pairwise
/// reduction (AVX-512), and the scalar tail of D % 16 elements; the portable build (float[16])
/// groups the same way but may or may not contract the multiply-adds. Both are within
/// gamma_D sum_d |q_d k_d| (gamma_D = D u / (1 - D u), u = 2^-24) of the exact dot product of the
/// stored (rounded) values; the values are accumulated over keys in ascending order.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/attn_kv.hpp is private to emask: include a public header (such as <emask/kernels/kv_cache.hpp>)"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "emask/detail/attn_common.hpp"
#include "emask/detail/attn_rescue.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/kv_convert.hpp"
#include "emask/detail/mask_tiles.hpp"
#include "emask/detail/simd.hpp"
#include "emask/detail/threads.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Where the K and V rows of a cache are: contiguous (page == 0) or paged.
template <class T>
struct kv_source {
  const T* k = nullptr;
  const T* v = nullptr;
  Index batch = 0, kv_heads = 0, dim = 0;
  Index sb = 0, sh = 0, sl = 0;  // contiguous: batch, head, token strides; paged: page, head, token
  Index page = 0;                // tokens per page, 0 = contiguous
  const std::int32_t* table = nullptr;
  Index table_stride = 0;
  const std::int32_t* lengths = nullptr;

  Index length(Index b) const { return lengths[b]; }
  /// Offsets (elements from k / v) of keys [j0, j0 + n) of KV head g of sequence b.
  void offsets(Index b, Index g, Index j0, Index n, Index* off) const {
    if (page == 0) {
      const Index base = b * sb + g * sh + j0 * sl;
      for (Index j = 0; j < n; ++j) off[j] = base + j * sl;
      return;
    }
    Index lp = j0 / page, t = j0 % page;
    const std::int32_t* row = table + b * table_stride;
    Index base = static_cast<Index>(row[lp]) * sb + g * sh;
    for (Index j = 0; j < n; ++j) {
      off[j] = base + t * sl;
      if (++t == page) {
        t = 0;
        ++lp;
        if (j + 1 < n) base = static_cast<Index>(row[lp]) * sb + g * sh;
      }
    }
  }
};

/// One decode call: query and output views, the scalar options (in an attn_problem: scale,
/// softcap, slopes, score_mod, sinks, threads) and the geometry of the work items.
struct kv_call {
  const float* q;
  Index q_sb, q_sh, q_sl;
  float* out;
  Index o_sb, o_sh, o_sl;
  float* lse;  // (B*H) x Lq with row stride lse_row, or null
  Index lse_row;
  Index batch, heads, kv_heads, group, lq, d;
  Index chunk;  // keys per item
  Index rows;   // group * lq: query rows per item
  const attn_problem<float>* opt;
};

struct kv_plan {
  Index chunk_pad;       // chunk rounded up to 16
  Index part_stride;     // floats per partial row: d + 3, rounded up to 16
  Index per_thread;      // floats of scratch per thread
  Index per_thread_idx;  // Index entries of scratch per thread
  Index items;           // total work items
  Index parts;           // floats of all partials
};

inline Index kv_chunks(Index len, Index chunk) { return len == 0 ? 0 : (len - 1) / chunk + 1; }

/// Scores of NR query rows for keys [0, n) with offsets off: s[r][j] = scale * dot(q_r, k_j).
template <int NR, class T>
void kv_scores(const float* const* q, const T* k, const Index* off, Index n, Index d, float scale,
               float* const* s) {
  const Index d16 = d / 16 * 16;
  const Index lines = (d * static_cast<Index>(sizeof(T)) + 63) / 64;
  // Rows prefetched ahead: the hardware prefetchers stop at every page of a paged cache
  // (measured: paged P = 16 1.3x faster with it, contiguous unchanged).
  constexpr Index ahead = 48;
  for (Index j = 0; j < n; ++j) {
#if defined(__GNUC__)
    if (j + ahead < n) {
      const char* pf = reinterpret_cast<const char*>(k + off[j + ahead]);
      for (Index l = 0; l < lines; ++l) __builtin_prefetch(pf + 64 * l);
    }
#endif
    const T* kr = k + off[j];
    // Two accumulators per row (even and odd packets): half the multiply-add chain.
    kv_f32x16 acc[4], acc1[NR];
    EMASK_KV_UNROLL
    for (int r = 0; r < 4; ++r) acc[r] = kv_zero();
    EMASK_KV_UNROLL
    for (int r = 0; r < NR; ++r) acc1[r] = kv_zero();
    Index x = 0;
    for (; x + 32 <= d16; x += 32) {
      const kv_f32x16 k0 = kv_load16(kr + x), k1 = kv_load16(kr + x + 16);
      EMASK_KV_UNROLL
      for (int r = 0; r < NR; ++r) {
        acc[r] = kv_fmadd(kv_load16(q[r] + x), k0, acc[r]);
        acc1[r] = kv_fmadd(kv_load16(q[r] + x + 16), k1, acc1[r]);
      }
    }
    if (x < d16) {
      const kv_f32x16 k0 = kv_load16(kr + x);
      EMASK_KV_UNROLL
      for (int r = 0; r < NR; ++r) acc[r] = kv_fmadd(kv_load16(q[r] + x), k0, acc[r]);
    }
    EMASK_KV_UNROLL
    for (int r = 0; r < NR; ++r) acc[r] = kv_add(acc[r], acc1[r]);
    float dots[4];
    kv_reduce4(acc, dots);
    EMASK_KV_UNROLL
    for (int r = 0; r < NR; ++r) {
      float dot = dots[r];
      for (Index t = d16; t < d; ++t) dot += q[r][t] * kv_elem_float(kr[t]);
      s[r][j] = dot * scale;
    }
  }
}

/// o[r][x0, x0 + 16 NP) = sum_j w[r][j] v_j[x0, ...] over the live keys, in ascending j.
template <int NR, int NP, class T>
void kv_values(const T* v, const Index* off, const float* live, Index n, Index x0,
               const float* const* w, float* const* o) {
  kv_f32x16 acc[NR][NP];
  EMASK_KV_UNROLL
  for (int r = 0; r < NR; ++r) {
    EMASK_KV_UNROLL
    for (int p = 0; p < NP; ++p) acc[r][p] = kv_zero();
  }
  const Index lines = (Index{16} * NP * static_cast<Index>(sizeof(T)) + 63) / 64;
  constexpr Index ahead = 48;
  for (Index j = 0; j < n; ++j) {
#if defined(__GNUC__)
    if (j + ahead < n) {
      const char* pf = reinterpret_cast<const char*>(v + off[j + ahead] + x0);
      for (Index l = 0; l < lines; ++l) __builtin_prefetch(pf + 64 * l);
    }
#endif
    if (live[j] == 0.f) continue;  // no row keeps key j: its V row is never read
    const T* vr = v + off[j] + x0;
    kv_f32x16 vx[NP];
    EMASK_KV_UNROLL
    for (int p = 0; p < NP; ++p) vx[p] = kv_load16(vr + Index{16} * p);
    EMASK_KV_UNROLL
    for (int r = 0; r < NR; ++r) {
      const kv_f32x16 wr = kv_set1(w[r][j]);
      EMASK_KV_UNROLL
      for (int p = 0; p < NP; ++p) acc[r][p] = kv_fmadd(wr, vx[p], acc[r][p]);
    }
  }
  EMASK_KV_UNROLL
  for (int r = 0; r < NR; ++r) {
    EMASK_KV_UNROLL
    for (int p = 0; p < NP; ++p) kv_store16(o[r] + x0 + Index{16} * p, acc[r][p]);
  }
}

template <int NR, class T>
void kv_values_rows(const T* v, const Index* off, const float* live, Index n, Index d,
                    const float* const* w, float* const* o) {
  const Index d64 = d / 64 * 64, d16 = d / 16 * 16;
  Index x = 0;
  for (; x < d64; x += 64) kv_values<NR, 4>(v, off, live, n, x, w, o);
  for (; x < d16; x += 16) kv_values<NR, 1>(v, off, live, n, x, w, o);
  for (; x < d; ++x) {
    float acc[NR] = {};
    for (Index j = 0; j < n; ++j) {
      if (live[j] == 0.f) continue;
      const float vx = kv_elem_float(v[off[j] + x]);
      for (int r = 0; r < NR; ++r) acc[r] += w[r][j] * vx;
    }
    for (int r = 0; r < NR; ++r) o[r][x] = acc[r];
  }
}

/// Calls f.template operator()<NR>() for NR = n in 1..4 (register blocks of query rows).
template <class F>
void kv_rows_dispatch(Index n, F&& f) {
  switch (n) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    default: f(std::integral_constant<int, 4>{}); break;
  }
}

/// Score transform of row segment s[0, n) of query head h at position qpos, first key at kpos0:
/// softcap, ALiBi, score_mod (as attn_transform, with the positions of the cache).
inline void kv_transform(const attn_problem<float>& p, Index b, Index h, Index qpos, Index kpos0,
                         float* s, Index n) {
  Eigen::Map<Eigen::Array<float, Eigen::Dynamic, 1>> a(s, n);
  if (p.has_softcap) a = p.softcap * a.tanh();
  const float slope = p.slope(h);
  if (slope != 0.f) {
    const Index rel0 = kpos0 - qpos;
    for (Index j = 0; j < n; ++j) s[j] += slope * static_cast<float>(rel0 + j);
  }
  if (p.mod) p.mod->apply(s, 1, n, 1, n, b, h, qpos, kpos0);
}

/// One work item: sequence b, KV head g, keys [c0, c0 + n). Writes c.rows partials at part.
template <class T>
void kv_item(const kv_call& c, const kv_source<T>& src, const mask_tiles<float>& mask, Index b,
             Index g, Index c0, Index n, float* scratch, Index* idx, float* part,
             Index part_stride) {
  const Index R = c.rows, cp = (c.chunk + 15) / 16 * 16, d = c.d;
  const Index len = src.length(b), qbase = len - c.lq;
  float* w = scratch;         // R x cp scores, then weights
  float* flags = w + R * cp;  // cp
  float* live = flags + cp;   // cp
  float* meta = live + cp;    // R x 4: lo, hi, exact, max
  Index* off = idx;
  Index ulo = n, uhi = 0;
  for (Index r = 0; r < R; ++r) {
    const Index h = g * c.group + r / c.lq, i = r % c.lq;
    float* pr = part + r * part_stride;
    pr[d + 2] = 0.f;  // has
    const key_span sp = mask.keys(b, h, qbase + i, c0, c0 + n);
    float* mr = meta + 4 * r;
    if (sp.empty()) {
      mr[0] = mr[1] = 0.f;
      continue;
    }
    const Index lo = sp.begin - c0, hi = sp.end - c0;
    mr[0] = static_cast<float>(lo);
    mr[1] = static_cast<float>(hi);
    mr[2] = sp.exact ? 1.f : 0.f;
    ulo = (std::min)(ulo, lo);
    uhi = (std::max)(uhi, hi);
  }
  if (ulo >= uhi) return;
  const Index un = uhi - ulo;
  src.offsets(b, g, c0 + ulo, un, off);
  const float* qrows[4];
  float* srows[4];
  for (Index r0 = 0; r0 < R; r0 += 4) {
    const Index nr = (std::min<Index>)(4, R - r0);
    for (Index r = 0; r < nr; ++r) {
      const Index h = g * c.group + (r0 + r) / c.lq, i = (r0 + r) % c.lq;
      qrows[r] = c.q + b * c.q_sb + h * c.q_sh + i * c.q_sl;
      srows[r] = w + (r0 + r) * cp;
    }
    kv_rows_dispatch(nr, [&](auto nrc) {
      kv_scores<decltype(nrc)::value>(qrows, src.k, off, un, d, c.opt->scale, srows);
    });
  }
  // Per row: transform over its span, chunk softmax; weights 0 outside the span.
  std::fill(live, live + un, 0.f);
  bool any_nan_row = false;
  for (Index r = 0; r < R; ++r) {
    const Index h = g * c.group + r / c.lq, i = r % c.lq;
    float* s = w + r * cp;
    float* mr = meta + 4 * r;
    const Index lo = static_cast<Index>(mr[0]) - ulo, hi = static_cast<Index>(mr[1]) - ulo;
    bool has = false;
    float mx = 0, l = 0;
    if (hi > lo) {
      const Index m = hi - lo;
      float* sr = s + lo;
      kv_transform(*c.opt, b, h, qbase + i, c0 + ulo + lo, sr, m);
      if (mr[2] != 0.f) {
        mx = simd::max_of(sr, m);
        // Every kept score -inf: no weight anywhere (not 0 / 0); a NaN still makes the row NaN.
        if (!(is_neg_inf(mx) && !any_nan(sr, m))) {
          l = simd::exp_sum(sr, m, 1.f, mx, sr);
          has = magnitude_bits(l) != 0;
        }
      } else {
        mask.flags(b, h, qbase + i, c0 + ulo + lo, c0 + ulo + hi, flags, 1);
        bool any = false;
        for (Index j = 0; j < m; ++j) any = any || flags[j] != 0.f;
        if (any) {
          mx = simd::max_kept(sr, flags, m);
          if (!is_neg_inf(mx) || any_nan(sr, m)) {
            l = simd::exp_sum_kept(sr, flags, m, mx, sr);
            has = magnitude_bits(l) != 0;
          }
        }
      }
    }
    if (!has) {
      std::fill(s, s + un, 0.f);
      continue;
    }
    std::fill(s, s + lo, 0.f);
    std::fill(s + hi, s + un, 0.f);
    for (Index j = lo; j < hi; ++j)  // branch-free: vectorized
      live[j] =
          static_cast<float>(static_cast<int>(s[j] != 0.f) | static_cast<int>(live[j] != 0.f));
    any_nan_row = any_nan_row || is_nan(l);
    mr[3] = mx;
    float* pr = part + r * part_stride;
    pr[d] = mx;
    pr[d + 1] = l;
    pr[d + 2] = 1.f;
  }
  // NaN weights (a kept NaN score, l NaN) must reach their row: mark them live (also under
  // -ffast-math, where the comparison above may not see them).
  for (Index j = 0; any_nan_row && j < un; ++j)
    if (live[j] == 0.f)
      for (Index r = 0; r < R; ++r)
        if (is_nan(w[r * cp + j])) live[j] = 1.f;
  float* orows[4];
  const float* wrows[4];
  for (Index r0 = 0; r0 < R; r0 += 4) {
    const Index nr = (std::min<Index>)(4, R - r0);
    for (Index r = 0; r < nr; ++r) {
      wrows[r] = w + (r0 + r) * cp;
      orows[r] = part + (r0 + r) * part_stride;
    }
    kv_rows_dispatch(nr, [&](auto nrc) {
      kv_values_rows<decltype(nrc)::value>(src.v, off, live, un, d, wrows, orows);
    });
  }
  for (Index r = 0; r < R; ++r) {
    float* pr = part + r * part_stride;
    if (pr[d + 2] == 0.f) continue;
    const float l = pr[d + 1];
    const float inv = 1.f / l;
    for (Index x = 0; x < d; ++x) pr[x] *= inv;
    if (!attn_row_finite(pr, d) && !is_nan(l)) {
      // The unnormalized sum overflowed (|v| near the largest float): recompute with normalized
      // weights, so the row stays within max |v_j| (as attn_rescue_overflow does).
      const float* s = w + r * cp;
      std::fill(pr, pr + d, 0.f);
      for (Index j = 0; j < un; ++j) {
        const float wj = s[j] / l;
        if (wj == 0.f) continue;  // masked or underflowed: nothing (and 0 * inf = NaN)
        for (Index x = 0; x < d; ++x) pr[x] += wj * kv_elem_float(src.v[off[j] + x]);
      }
    }
    pr[d] = pr[d] + std::log(l);
  }
}

/// Runs the decode: items over (sequence, KV head, chunk), then the in-order merge per row, the
/// sink logits and the empty sequences. \p first_item[b] is the first item of sequence b
/// (batch + 1 entries); \p ws holds plan.parts + threads * plan.per_thread floats and \p idx
/// threads * plan.per_thread_idx Index entries.
template <class T>
void kv_run(const kv_call& c, const kv_source<T>& src, const mask_tiles<float>& mask,
            const kv_plan& plan, const Index* first_item, float* ws, Index* idx) {
  float* parts = ws;
  float* scratch = ws + plan.parts;
  const Index R = c.rows;
  auto run_item = [&](Index it, int tid) {
    const Index b = static_cast<Index>(std::upper_bound(first_item, first_item + c.batch + 1, it) -
                                       first_item) -
                    1;
    const Index nch = kv_chunks(src.length(b), c.chunk);
    const Index local = it - first_item[b];
    const Index g = local / nch, ch = local % nch;
    const Index c0 = ch * c.chunk, n = (std::min)(c.chunk, src.length(b) - c0);
    kv_item(c, src, mask, b, g, c0, n, scratch + static_cast<Index>(tid) * plan.per_thread,
            idx + static_cast<Index>(tid) * plan.per_thread_idx, parts + it * R * plan.part_stride,
            plan.part_stride);
  };
  const Index rows = c.batch * c.heads * c.lq;
  const attn_problem<float>& p = *c.opt;
  auto merge_row = [&](Index row) {
    const Index b = row / (c.heads * c.lq), h = (row / c.lq) % c.heads, i = row % c.lq;
    float* o = c.out + b * c.o_sb + h * c.o_sh + i * c.o_sl;
    std::fill(o, o + c.d, 0.f);
    float acc = negative_infinity<float>();
    const Index nch = kv_chunks(src.length(b), c.chunk);
    const Index g = h / c.group, r = (h % c.group) * c.lq + i;
    for (Index ch = 0; ch < nch; ++ch) {
      const float* pr = parts + ((first_item[b] + g * nch + ch) * R + r) * plan.part_stride;
      if (pr[c.d + 2] != 0.f) merge_lse_row(o, acc, pr, pr[c.d], c.d);
    }
    if (!p.sinks.empty()) fold_sink_row(o, acc, p.sinks[static_cast<std::size_t>(h)], c.d);
    if (c.lse) c.lse[(b * c.heads + h) * c.lse_row + i] = acc;
  };
#if EMASK_HAS_OPENMP
  if (p.threads > 1) {
#pragma omp parallel num_threads(p.threads)
    {
#pragma omp for schedule(dynamic, 1)
      for (Index it = 0; it < plan.items; ++it) run_item(it, thread_id());
#pragma omp for schedule(static)
      for (Index row = 0; row < rows; ++row) merge_row(row);
    }
    return;
  }
#endif
  for (Index it = 0; it < plan.items; ++it) run_item(it, 0);
  for (Index row = 0; row < rows; ++row) merge_row(row);
}

}  // namespace detail
EMASK_NAMESPACE_END
