/// \file
/// \brief Context-parallel attention over MPI: ring attention, all-gather-KV attention and
/// sharded decoding, exact against single-process masked_attention up to the rounding of the
/// log-sum-exp merge. Needs MPI (include <mpi.h>, link MPI; CMake target emask::mpi); the rest
/// of emask does not.
///
/// Algorithm (ring attention, Liu et al. 2023, "Ring Attention with Blockwise Transformers for
/// Near-Infinite Context"; the zigzag layout of zhuzilin/ring-flash-attention
/// `zigzag_ring_flash_attn_func` and Megatron-LM context parallelism): each of R ranks holds the
/// Q, K, V rows of its shard (emask/dist/partition.hpp: contiguous or zigzag). At step
/// t = 0 .. R-1 rank r holds the K/V shard of rank (r - t) mod R; it first posts MPI_Irecv of
/// the next shard from rank r-1 and MPI_Isend of the current one to rank r+1 (double buffer),
/// then, for each (own query chunk, held key chunk) pair in a fixed order, asks the mask's tile
/// answer over the whole pair at the chunks' absolute positions and skips the pair when it is
/// empty, or else runs the tiled masked_attention with q_offset / k_offset = the chunks' first
/// positions into a partial (out, lse) and folds it into the accumulator with
/// merge_attention_into (the query rows in slabs of whole tiles, about 512 rows, with
/// MPI_Testall between slabs to drive the transfer); MPI_Waitall ends the step. The ring always
/// moves the whole buffer, skipped pairs included: skipping a send would need every rank to know
/// every other rank's skips, and for a causal mask the skipped pairs are never a whole step of
/// every rank at once. The merge order depends only on (rank, step, chunk), never on timing, so
/// results are reproducible bit for bit.
///
/// Where emask differs from the reference implementations: the mask is any emask mask
/// expression asked at absolute positions (not only causal), empty pairs are found from its
/// tile answers (not from the layout), and the ring moves K and V packed in one message per
/// step instead of two. Sink logits (options.sink_logit) are folded once into the merged rows.
///
/// Preconditions on every call: every rank of \p comm calls the same function with the same
/// plan, mask, options and shapes (the shapes are checked: see below). Shape agreement is
/// checked first: every rank contributes its shapes with one MPI_Allgather and every rank checks
/// all of them in the same order, so a disagreement raises the same emask::error, naming the
/// function, the argument and the rank, on every rank, and no rank is left waiting in a
/// collective. The mask and options are checked after that, identically on every rank. An MPI
/// call that returns an error code raises emask::error naming the call (MPI's default handler,
/// MPI_ERRORS_ARE_FATAL, aborts before that).
#pragma once

// The C API only: the deprecated C++ bindings (removed in MPI-3) do not compile warning-free.
/// \cond EMASK_INTERNAL
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
/// \endcond
#include <mpi.h>

#include <algorithm>
#include <array>
#include <climits>
#include <ctime>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "emask/config.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/dist/partition.hpp"
#include "emask/kernels/attention.hpp"
#include "emask/kernels/merge.hpp"
#include "emask/kernels/tensor_view.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief What one rank did in a distributed attention call.
struct dist_stats {
  int rank = 0;                    ///< this rank in the communicator
  int ranks = 1;                   ///< size of the communicator
  int steps = 0;                   ///< ring steps (ranks), or 1 for all-gather and decode
  Index pairs = 0;                 ///< (query chunk, key chunk) pairs met
  Index pairs_skipped = 0;         ///< of them, empty by the mask's tile answer: not computed
  Index pairs_computed = 0;        ///< pairs - pairs_skipped
  Index work = 0;                  ///< kept (q, k) pairs of the computed pairs at 64 x 64 tile
                                   ///< granularity, summed over heads (as plan_work with tile 64)
  long long bytes_sent = 0;        ///< bytes this rank sent
  long long bytes_received = 0;    ///< bytes this rank received
  double compute_seconds = 0;      ///< wall time in attention and merges (MPI_Wtime)
  double compute_cpu_seconds = 0;  ///< CPU time of the process (all its threads) in attention
                                   ///< and merges (std::clock): less sensitive than the wall
                                   ///< time to other load on the machine
  double wait_seconds = 0;         ///< wall time waiting for communication
  double total_seconds = 0;        ///< wall time of the whole call
};

namespace detail {

/// Raises emask::error when an MPI call returned an error code.
inline void mpi_check(int rc, const char* call, const char* where) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
  report_error(concat("emask::", where, ": ", call, " failed with MPI error ", rc, " (",
                      std::string(text, static_cast<std::size_t>((std::max)(len, 0))), ")"));
}

template <class S>
MPI_Datatype mpi_scalar() {
  static_assert(std::is_same<S, float>::value || std::is_same<S, double>::value,
                "emask dist: use float or double");
  return std::is_same<S, float>::value ? MPI_FLOAT : MPI_DOUBLE;
}

/// The local arguments of a distributed call, as batched views (a single head is B = H = 1).
template <class S>
struct dist_io {
  tensor_view<const S> q, k, v;
  tensor_view<S> out;
  S* lse = nullptr;  // (B*H) x Lq with row stride lse_stride; null: none passed
  Index lse_stride = 0, lse_rows = 0, lse_cols = 0;
  bool single = false;  // the single-head entry points: the mask is asked at options.slice
};

enum class dist_mode { ring, allgather, decode };

/// Process CPU seconds since \p c0 (0 when std::clock is unavailable).
inline double dist_cpu_since(std::clock_t c0) {
  const std::clock_t c1 = std::clock();
  if (c0 == static_cast<std::clock_t>(-1) || c1 == static_cast<std::clock_t>(-1)) return 0;
  return static_cast<double>(c1 - c0) / CLOCKS_PER_SEC;
}

// The shape record every rank contributes (one MPI_Allgather of long longs).
enum dist_field : int {
  df_scalar,
  df_q,  // 4 entries each: batch, heads, length, dim
  df_k = df_q + 4,
  df_v = df_k + 4,
  df_out = df_v + 4,
  df_lse = df_out + 4,  // has, rows, cols
  df_seq = df_lse + 3,
  df_ranks,
  df_layout,
  df_koff,
  df_count
};
using dist_record = std::array<long long, df_count>;

template <class T>
void put_shape(dist_record& r, int at, const tensor_view<T>& t) {
  const auto i = static_cast<std::size_t>(at);
  r[i] = t.batch();
  r[i + 1] = t.heads();
  r[i + 2] = t.length();
  r[i + 3] = t.dim();
}

struct dist_names {
  const char* q;
  const char* k;
  const char* v;
  const char* out;
  const char* lse;
};

inline dist_names dist_arg_names(dist_mode mode) {
  if (mode == dist_mode::decode) return {"q", "k_local", "v_local", "out", "lse"};
  return {"q_local", "k_local", "v_local", "out_local", "lse_local"};
}

/// Checks every rank's record in rank order; identical on every rank, so every rank raises
/// the same error.
inline void dist_check_records(const std::vector<dist_record>& rec, int comm_size, dist_mode mode,
                               bool single, const char* where) {
  const dist_names nm = dist_arg_names(mode);
  auto at = [](const dist_record& r, int f) { return r[static_cast<std::size_t>(f)]; };
  auto shape = [&](const dist_record& r, int f) {
    if (single) return concat(at(r, f + 2), "x", at(r, f + 3));
    return concat("[B=", at(r, f), ", H=", at(r, f + 1), ", L=", at(r, f + 2), ", D=", at(r, f + 3),
                  "]");
  };
  auto on = [](const char* arg, int s) { return concat(arg, " on rank ", s); };
  auto layout_name = [](long long l) {
    return l == static_cast<long long>(shard_layout::zigzag) ? "zigzag" : "contiguous";
  };
  const dist_record& z = rec[0];
  const bool planned = mode != dist_mode::decode;
  // Rank-independent agreement first: plan, scalar, batch, heads, dims, query length (decode).
  for (int s = 0; s < comm_size; ++s) {
    const dist_record& x = rec[static_cast<std::size_t>(s)];
    if (planned && (at(x, df_seq) != at(z, df_seq) || at(x, df_ranks) != at(z, df_ranks) ||
                    at(x, df_layout) != at(z, df_layout)))
      fail_argument(where, on("plan", s).c_str(),
                    concat("{seq_len ", at(x, df_seq), ", ranks ", at(x, df_ranks), ", ",
                           layout_name(at(x, df_layout)), "}"),
                    "the plan of rank 0: {seq_len ", at(z, df_seq), ", ranks ", at(z, df_ranks),
                    ", ", layout_name(at(z, df_layout)), "}");
    if (at(x, df_scalar) != at(z, df_scalar))
      fail_argument(where, on("scalar type", s).c_str(), concat(at(x, df_scalar), " bytes"),
                    at(z, df_scalar), " bytes (the scalar of rank 0)");
    if (at(x, df_q) != at(z, df_q) || at(x, df_q + 1) != at(z, df_q + 1) ||
        at(x, df_q + 3) != at(z, df_q + 3) || (!planned && at(x, df_q + 2) != at(z, df_q + 2)))
      fail_argument(where, on(nm.q, s).c_str(), shape(x, df_q), "the shape of rank 0's ", nm.q,
                    ": ", shape(z, df_q), planned ? " (batch, heads and D)" : "");
    if (at(x, df_k + 1) != at(z, df_k + 1))
      fail_argument(where, on(nm.k, s).c_str(), shape(x, df_k), at(z, df_k + 1),
                    " heads (the KV heads of rank 0)");
    if (at(x, df_v + 3) != at(z, df_v + 3))
      fail_argument(where, on(nm.v, s).c_str(), shape(x, df_v), "Dv = ", at(z, df_v + 3),
                    " (the value dim of rank 0)");
    if (at(x, df_lse) != at(z, df_lse))
      fail_argument(where, on(nm.lse, s).c_str(), at(x, df_lse) ? "given" : "not given",
                    at(z, df_lse) ? "given" : "not given", ", as on rank 0");
  }
  if (planned && at(z, df_ranks) != comm_size)
    fail_argument(where, "plan", concat(at(z, df_ranks), " ranks"), comm_size,
                  " ranks (the size of comm)");
  const long long B = at(z, df_q), H = at(z, df_q + 1), D = at(z, df_q + 3);
  const long long Hkv = at(z, df_k + 1), Dv = at(z, df_v + 3);
  long long max_lk = 0;
  for (int s = 0; s < comm_size; ++s) {
    const dist_record& x = rec[static_cast<std::size_t>(s)];
    const long long lq = at(x, df_q + 2), lk = at(x, df_k + 2);
    if (planned) {
      const shard_plan plan(at(z, df_seq), static_cast<int>(at(z, df_ranks)),
                            static_cast<shard_layout>(at(z, df_layout)));
      const Index want = plan.local_length(s);
      if (lq != want)
        fail_argument(where, on(nm.q, s).c_str(), shape(x, df_q), "L = ", want,
                      " (plan.local_length(", s, "))");
      if (lk != want)
        fail_argument(where, on(nm.k, s).c_str(), shape(x, df_k), "L = ", want,
                      " (plan.local_length(", s, "))");
    }
    if (at(x, df_k) != B || at(x, df_k + 3) != D)
      fail_argument(where, on(nm.k, s).c_str(), shape(x, df_k), "batch ", B, " and D = ", D,
                    " (those of ", nm.q, ")");
    if (Hkv < 1 || H % Hkv != 0)
      fail_argument(where, on(nm.k, s).c_str(), shape(x, df_k),
                    "a number of KV heads that divides the ", H, " query heads");
    if (at(x, df_v) != B || at(x, df_v + 1) != Hkv || at(x, df_v + 2) != lk)
      fail_argument(where, on(nm.v, s).c_str(), shape(x, df_v), "batch ", B, ", ", Hkv,
                    " heads and L = ", lk, " (those of ", nm.k, ")");
    if (at(x, df_out) != B || at(x, df_out + 1) != H || at(x, df_out + 2) != lq ||
        at(x, df_out + 3) != Dv)
      fail_argument(
          where, on(nm.out, s).c_str(), shape(x, df_out),
          single ? concat(lq, "x", Dv) : concat("[B=", B, ", H=", H, ", L=", lq, ", D=", Dv, "]"),
          " (rows of ", nm.q, ", columns of ", nm.v, ")");
    if (at(x, df_lse) && (at(x, df_lse + 1) != B * H || at(x, df_lse + 2) != lq))
      fail_argument(where, on(nm.lse, s).c_str(), concat(at(x, df_lse + 1), "x", at(x, df_lse + 2)),
                    B * H, "x", lq,
                    single ? " (one entry per row of q)" : " (B*H rows, Lq columns)");
    max_lk = (std::max)(max_lk, lk);
    if (!planned && at(x, df_koff) < 0)
      fail_argument(where, on("k_offset", s).c_str(), at(x, df_koff), ">= 0");
  }
  if (!planned) {
    // Cache shards must not overlap (a key counted twice would be weighted twice).
    for (int s = 0; s < comm_size; ++s)
      for (int t = 0; t < s; ++t) {
        const dist_record& x = rec[static_cast<std::size_t>(s)];
        const dist_record& y = rec[static_cast<std::size_t>(t)];
        const long long x0 = at(x, df_koff), x1 = x0 + at(x, df_k + 2);
        const long long y0 = at(y, df_koff), y1 = y0 + at(y, df_k + 2);
        if (x0 < x1 && y0 < y1 && x0 < y1 && y0 < x1)
          fail_argument(where, on("k_offset", s).c_str(),
                        concat(x0, " (keys [", x0, ", ", x1, "))"),
                        "a key shard disjoint from rank ", t, "'s keys [", y0, ", ", y1, ")");
      }
  }
  // MPI counts are int: one message holds a whole K/V shard (ring, all-gather) or a partial
  // result (decode).
  const long long per_row = planned ? Hkv * (D + Dv) : H * (Dv + 1);
  const long long rows = planned ? max_lk : at(z, df_q + 2);
  const long long count = B * per_row * rows;
  if (count > INT_MAX)
    fail_argument(where, nm.k, concat(count, " scalars per message"), "at most INT_MAX = ", INT_MAX,
                  " (MPI counts are int; use more ranks or fewer heads per call)");
}

template <class S>
dist_record dist_make_record(const dist_io<S>& io, const shard_plan* plan, Index k_offset) {
  dist_record r{};
  r[df_scalar] = static_cast<long long>(sizeof(S));
  put_shape(r, df_q, io.q);
  put_shape(r, df_k, io.k);
  put_shape(r, df_v, io.v);
  put_shape(r, df_out, io.out);
  r[df_lse] = io.lse != nullptr;
  r[df_lse + 1] = io.lse_rows;
  r[df_lse + 2] = io.lse_cols;
  r[df_seq] = plan ? plan->seq_len() : 0;
  r[df_ranks] = plan ? plan->ranks() : 0;
  r[df_layout] = plan ? static_cast<long long>(plan->layout()) : 0;
  r[df_koff] = k_offset;
  return r;
}

/// Shape agreement: one MPI_Allgather of the records, then the same checks on every rank.
template <class S>
std::vector<dist_record> dist_agree(MPI_Comm comm, const dist_io<S>& io, const shard_plan* plan,
                                    Index k_offset, dist_mode mode, const char* where, int& rank,
                                    int& size) {
  mpi_check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank", where);
  mpi_check(MPI_Comm_size(comm, &size), "MPI_Comm_size", where);
  dist_record mine = dist_make_record(io, plan, k_offset);
  std::vector<long long> all(static_cast<std::size_t>(size) * df_count);
  mpi_check(MPI_Allgather(mine.data(), df_count, MPI_LONG_LONG, all.data(), df_count, MPI_LONG_LONG,
                          comm),
            "MPI_Allgather", where);
  std::vector<dist_record> rec(static_cast<std::size_t>(size));
  for (std::size_t s = 0; s < rec.size(); ++s)
    std::copy(all.begin() + static_cast<std::ptrdiff_t>(s * df_count),
              all.begin() + static_cast<std::ptrdiff_t>((s + 1) * df_count), rec[s].begin());
  dist_check_records(rec, size, mode, io.single, where);
  return rec;
}

template <class S>
head_range dist_heads(const dist_io<S>& io, const attention_options& opt) {
  if (io.single) return {opt.slice.b, opt.slice.b + 1, opt.slice.h, opt.slice.h + 1};
  return {0, io.q.batch(), 0, io.q.heads()};
}

/// The kernel's option checks and the mask's check over the positions of the whole call, with
/// \p where in the messages; returns the sink logits of the call's heads.
template <class S, class Mask>
std::vector<S> dist_check_options(const dist_io<S>& io, const Mask& mask,
                                  const attention_options& opt, Index q_lo, Index q_hi, Index k_lo,
                                  Index k_hi, const char* where) {
  attn_problem<S> p{};
  p.lq = q_hi - q_lo;
  p.lk = k_hi - k_lo;
  p.d = io.q.dim();
  p.dv = io.v.dim();
  attention_options o = opt;
  o.q_offset = q_lo;
  o.k_offset = k_lo;
  const Index heads = io.single ? 1 : io.q.heads();
  const Index h0 = io.single ? opt.slice.h : 0;
  attn_set_options(p, o, where, opt.alibi.empty() ? 0 : heads, h0);
  const head_range hr = dist_heads(io, opt);
  region r;
  r.b_begin = hr.b_begin;
  r.b_end = hr.b_end;
  r.h_begin = hr.h_begin;
  r.h_end = hr.h_end;
  r.q_begin = q_lo;
  r.q_end = q_hi;
  r.k_begin = k_lo;
  r.k_end = k_hi;
  if (r.q_begin < r.q_end && r.k_begin < r.k_end) {
    mask.check(r, where);
    if (!opt.score_mod.empty()) opt.score_mod.check(r, where);
  }
  return sink_logits<S>(where, opt, h0, heads);
}

/// out rows = 0 and lse = -infinity: the empty accumulator of the merge.
template <class S>
void dist_clear(const tensor_view<S>& out, S* lse, Index lse_stride) {
  for (Index b = 0; b < out.batch(); ++b)
    for (Index h = 0; h < out.heads(); ++h) {
      S* o = out.slice_data(b, h);
      for (Index i = 0; i < out.length(); ++i)
        std::fill(o + i * out.stride_l(), o + i * out.stride_l() + out.dim(), S(0));
      S* l = lse + (b * out.heads() + h) * lse_stride;
      std::fill(l, l + out.length(), negative_infinity<S>());
    }
}

/// Folds the sink logits into the finished rows.
template <class S>
void dist_fold_sinks(const tensor_view<S>& out, S* lse, Index lse_stride,
                     const std::vector<S>& sinks) {
  if (sinks.empty()) return;
  for (Index b = 0; b < out.batch(); ++b)
    for (Index h = 0; h < out.heads(); ++h) {
      S* o = out.slice_data(b, h);
      S* l = lse + (b * out.heads() + h) * lse_stride;
      for (Index i = 0; i < out.length(); ++i)
        fold_sink_row(o + i * out.stride_l(), l[i], sinks[static_cast<std::size_t>(h)], out.dim());
    }
}

/// Copies K [B, Hkv, L, D] and V [B, Hkv, L, Dv] into one buffer of row capacity \p cap:
/// K as [B, Hkv, cap, D], then V as [B, Hkv, cap, Dv].
template <class S>
void dist_pack_kv(const tensor_view<const S>& k, const tensor_view<const S>& v, S* buf, Index cap) {
  const Index B = k.batch(), Hkv = k.heads(), D = k.dim(), Dv = v.dim();
  S* vbuf = buf + B * Hkv * cap * D;
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < Hkv; ++h) {
      const S* ks = k.slice_data(b, h);
      const S* vs = v.slice_data(b, h);
      S* kd = buf + (b * Hkv + h) * cap * D;
      S* vd = vbuf + (b * Hkv + h) * cap * Dv;
      for (Index l = 0; l < k.length(); ++l) {
        std::copy(ks + l * k.stride_l(), ks + l * k.stride_l() + D, kd + l * D);
        std::copy(vs + l * v.stride_l(), vs + l * v.stride_l() + Dv, vd + l * Dv);
      }
    }
}

/// The rows [row0, row0 + n) of a view.
template <class T>
tensor_view<T> dist_rows(const tensor_view<T>& t, Index row0, Index n) {
  return tensor_view<T>(t.data() + row0 * t.stride_l(), t.batch(), t.heads(), n, t.dim(),
                        t.stride_b(), t.stride_h(), t.stride_l());
}

/// Per-call buffers of the partial results and the kernel's workspace.
template <class S>
struct dist_scratch {
  std::vector<S> part_out, part_lse;
  attention_workspace<S> ws;
};

/// One (query rows, key rows) block: partial attention into the scratch, then merged into the
/// accumulator rows [q_row0, q_row0 + nq) of io.out and lse.
template <class S, class Mask, class Variant>
void dist_block(Variant variant, const dist_io<S>& io, S* lse, Index lse_stride,
                const tensor_view<const S>& k, const tensor_view<const S>& v, Index q_row0,
                Index nq, Index k_row0, Index nk, const Mask& mask, const attention_options& o,
                dist_scratch<S>& sc) {
  const Index B = io.q.batch(), H = io.q.heads(), Dv = io.v.dim();
  sc.part_out.resize(static_cast<std::size_t>(B * H * nq * Dv));
  sc.part_lse.resize(static_cast<std::size_t>(B * H * nq));
  const tensor_view<const S> qs = dist_rows(io.q, q_row0, nq);
  const tensor_view<const S> ks = dist_rows(k, k_row0, nk), vs = dist_rows(v, k_row0, nk);
  const tensor_view<S> pv = view_bhld(sc.part_out.data(), B, H, nq, Dv);
  Eigen::Map<row_matrix<S>> pl(sc.part_lse.data(), B * H, nq);
  if (io.single) {
    Eigen::Map<row_matrix<S>> po(sc.part_out.data(), nq, Dv);
    Eigen::Map<lse_vector<S>> pl1(sc.part_lse.data(), nq);
    masked_attention(variant, qs.slice(0, 0), ks.slice(0, 0), vs.slice(0, 0), mask, po, pl1, o,
                     &sc.ws);
  } else {
    masked_attention(variant, qs, ks, vs, mask, pv, pl, o, &sc.ws);
  }
  Eigen::Map<row_matrix<S>, 0, Eigen::OuterStride<>> acc_lse(lse + q_row0, B * H, nq,
                                                             Eigen::OuterStride<>(lse_stride));
  merge_attention_into(dist_rows(io.out, q_row0, nq), acc_lse, tensor_view<const S>(pv),
                       Eigen::Map<const row_matrix<S>>(sc.part_lse.data(), B * H, nq));
}

/// Frees a duplicated communicator on every exit.
struct dist_comm_guard {
  MPI_Comm comm = MPI_COMM_NULL;
  dist_comm_guard() = default;
  dist_comm_guard(const dist_comm_guard&) = delete;
  dist_comm_guard& operator=(const dist_comm_guard&) = delete;
  ~dist_comm_guard() {
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  }
};

/// Ring and all-gather attention over a shard plan.
template <class S, class Mask>
dist_stats dist_sequence_run(MPI_Comm comm, const shard_plan& plan, const dist_io<S>& io,
                             const Mask& mask, const attention_options& opt, dist_mode mode,
                             const char* where) {
  static_assert(is_mask_v<Mask>,
                "emask: distributed attention asks the mask at absolute positions: pass a mask "
                "expression (a builder such as emask::causal; a bool_matrix through "
                "emask::as_mask)");
  const double t_start = MPI_Wtime();
  dist_stats st;
  dist_agree(comm, io, &plan, 0, mode, where, st.rank, st.ranks);
  const Index qbase = opt.q_offset, kbase = opt.k_offset, S_len = plan.seq_len();
  const std::vector<S> sinks =
      dist_check_options(io, mask, opt, qbase, qbase + S_len, kbase, kbase + S_len, where);
  // Every check has passed on every rank: from here on only MPI failures raise.
  const head_range hr = dist_heads(io, opt);
  attention_options sub = opt;
  sub.sink_logit.clear();  // folded once at the end, not once per pair
  const int R = st.ranks, me = st.rank;
  const Index B = io.q.batch(), Hkv = io.k.heads(), D = io.q.dim(), Dv = io.v.dim();
  const Index cap = plan.max_local_length();
  const Index count = B * Hkv * cap * (D + Dv);
  const int icount = static_cast<int>(count);  // <= INT_MAX: checked with the shapes
  const MPI_Datatype type = mpi_scalar<S>();
  const long long bytes = static_cast<long long>(count) * static_cast<long long>(sizeof(S));

  std::vector<S> own_lse;
  S* lse = io.lse;
  Index lse_stride = io.lse_stride;
  if (!lse) {
    own_lse.resize(static_cast<std::size_t>(B * io.q.heads() * io.q.length()));
    lse = own_lse.data();
    lse_stride = io.q.length();
  }
  dist_clear(io.out, lse, lse_stride);
  std::vector<S> cur(static_cast<std::size_t>(count));
  dist_pack_kv(io.k, io.v, cur.data(), cap);
  dist_scratch<S> sc;
  // Query rows per kernel call: whole query tiles, about 512 rows.
  const Index slab = opt.tile_q * (std::max)(Index(1), Index(512) / opt.tile_q);

  // The pairs of this rank's query chunks with the key chunks of rank src held in buf.
  auto compute_from = [&](int src, const S* buf, MPI_Request* reqs, int n_reqs) {
    const Index lk = plan.local_length(src);
    const tensor_view<const S> k(buf, B, Hkv, lk, D, Hkv * cap * D, cap * D, D);
    const tensor_view<const S> v(buf + B * Hkv * cap * D, B, Hkv, lk, Dv, Hkv * cap * Dv, cap * Dv,
                                 Dv);
    for (int qc = 0; qc < plan.chunks_per_rank(); ++qc)
      for (int kc = 0; kc < plan.chunks_per_rank(); ++kc) {
        const seq_chunk qg = plan.chunk(me, qc), kg = plan.chunk(src, kc);
        const seq_chunk qa{qbase + qg.begin, qbase + qg.end}, ka{kbase + kg.begin, kbase + kg.end};
        ++st.pairs;
        if (pair_state_unchecked(mask, qa, ka, hr) == tile_state::empty) {
          ++st.pairs_skipped;
          continue;
        }
        ++st.pairs_computed;
        st.work += pair_work_unchecked(mask, qa, ka, hr, 64);
        sub.k_offset = ka.begin;
        // Slabs of whole query tiles: the same tiles as one call (bit-identical results), with
        // MPI_Testall between them, since most MPI transports move a large message only while
        // both ranks are inside MPI calls.
        for (Index r0 = 0; r0 < qg.size(); r0 += slab) {
          const Index n = (std::min)(slab, qg.size() - r0);
          const double t0 = MPI_Wtime();
          const std::clock_t c0 = std::clock();
          sub.q_offset = qa.begin + r0;
          dist_block(tiled, io, lse, lse_stride, k, v, plan.local_begin(me, qc) + r0, n,
                     plan.local_begin(src, kc), kg.size(), mask, sub, sc);
          st.compute_seconds += MPI_Wtime() - t0;
          st.compute_cpu_seconds += dist_cpu_since(c0);
          if (n_reqs > 0) {
            int done = 0;
            mpi_check(MPI_Testall(n_reqs, reqs, &done, MPI_STATUSES_IGNORE), "MPI_Testall", where);
          }
        }
      }
  };

  if (mode == dist_mode::ring) {
    st.steps = R;
    dist_comm_guard ring;
    std::vector<S> nxt;
    if (R > 1) {
      mpi_check(MPI_Comm_dup(comm, &ring.comm), "MPI_Comm_dup", where);
      nxt.resize(cur.size());
    }
    const int right = (me + 1) % R, left = (me + R - 1) % R;
    for (int t = 0; t < R; ++t) {
      const int src = (me - t + R) % R;
      MPI_Request reqs[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
      const bool more = t + 1 < R;
      if (more) {
        // Post the next shard's transfer before computing on the current one.
        mpi_check(MPI_Irecv(nxt.data(), icount, type, left, 0, ring.comm, &reqs[0]), "MPI_Irecv",
                  where);
        mpi_check(MPI_Isend(cur.data(), icount, type, right, 0, ring.comm, &reqs[1]), "MPI_Isend",
                  where);
        st.bytes_sent += bytes;
        st.bytes_received += bytes;
      }
      compute_from(src, cur.data(), reqs, more ? 2 : 0);
      if (more) {
        const double t0 = MPI_Wtime();
        mpi_check(MPI_Waitall(2, reqs, MPI_STATUSES_IGNORE), "MPI_Waitall", where);
        st.wait_seconds += MPI_Wtime() - t0;
        cur.swap(nxt);
      }
    }
  } else {
    st.steps = 1;
    std::vector<S> all(static_cast<std::size_t>(count) * static_cast<std::size_t>(R));
    const double t0 = MPI_Wtime();
    mpi_check(MPI_Allgather(cur.data(), icount, type, all.data(), icount, type, comm),
              "MPI_Allgather", where);
    st.wait_seconds += MPI_Wtime() - t0;
    st.bytes_sent += bytes * (R - 1);
    st.bytes_received += bytes * (R - 1);
    for (int src = 0; src < R; ++src)
      compute_from(src,
                   all.data() + static_cast<std::size_t>(src) * static_cast<std::size_t>(count),
                   nullptr, 0);
  }
  dist_fold_sinks(io.out, lse, lse_stride, sinks);
  st.total_seconds = MPI_Wtime() - t_start;
  return st;
}

/// Sharded decoding: local partial with the decode variant, all-gather of the partials, merge
/// in rank order.
template <class S, class Mask>
dist_stats dist_decode_run(MPI_Comm comm, const dist_io<S>& io, Index k_offset, const Mask& mask,
                           const attention_options& opt, const char* where) {
  static_assert(is_mask_v<Mask>,
                "emask::sharded_decode: pass a mask expression (a builder such as "
                "emask::causal; a bool_matrix through emask::as_mask)");
  const double t_start = MPI_Wtime();
  dist_stats st;
  st.steps = 1;
  const std::vector<dist_record> rec =
      dist_agree(comm, io, nullptr, k_offset, dist_mode::decode, where, st.rank, st.ranks);
  // The keys of every rank together: checked identically on every rank.
  Index k_lo = 0, k_hi = 0;
  bool any = false;
  for (const dist_record& x : rec) {
    const Index o = static_cast<Index>(x[df_koff]), n = static_cast<Index>(x[df_k + 2]);
    if (n == 0) continue;
    k_lo = any ? (std::min)(k_lo, o) : o;
    k_hi = any ? (std::max)(k_hi, o + n) : o + n;
    any = true;
  }
  const Index qbase = opt.q_offset, kbase = opt.k_offset, Lq = io.q.length();
  if (k_hi > unbounded - kbase)
    fail_argument(where, "k_offset", concat(k_hi, " (end of the last key shard)"),
                  "options.k_offset + key positions <= emask::unbounded = ", unbounded);
  const std::vector<S> sinks =
      dist_check_options(io, mask, opt, qbase, qbase + Lq, kbase + k_lo, kbase + k_hi, where);
  const head_range hr = dist_heads(io, opt);
  attention_options sub = opt;
  sub.sink_logit.clear();
  sub.k_offset = kbase + k_offset;
  const int R = st.ranks;
  const Index B = io.q.batch(), H = io.q.heads(), Dv = io.v.dim();
  const Index n_out = B * H * Lq * Dv, count = n_out + B * H * Lq;
  const int icount = static_cast<int>(count);  // <= INT_MAX: checked with the shapes

  // This rank's partial: out [B, H, Lq, Dv] then lse (B*H) x Lq, in one message.
  std::vector<S> mine(static_cast<std::size_t>(count));
  const tensor_view<S> part = view_bhld(mine.data(), B, H, Lq, Dv);
  S* part_lse = mine.data() + n_out;
  dist_clear(part, part_lse, Lq);
  ++st.pairs;
  const seq_chunk qa{qbase, qbase + Lq}, ka{sub.k_offset, sub.k_offset + io.k.length()};
  if (pair_state_unchecked(mask, qa, ka, hr) == tile_state::empty) {
    ++st.pairs_skipped;
  } else {
    ++st.pairs_computed;
    const double t0 = MPI_Wtime();
    const std::clock_t c0 = std::clock();
    st.work += pair_work_unchecked(mask, qa, ka, hr, 64);
    dist_io<S> local = io;
    local.out = part;
    dist_scratch<S> sc;
    sub.q_offset = qa.begin;
    dist_block(decode, local, part_lse, Lq, io.k, io.v, 0, Lq, 0, io.k.length(), mask, sub, sc);
    st.compute_seconds += MPI_Wtime() - t0;
    st.compute_cpu_seconds += dist_cpu_since(c0);
  }
  std::vector<S> all(static_cast<std::size_t>(count) * static_cast<std::size_t>(R));
  const double t0 = MPI_Wtime();
  mpi_check(MPI_Allgather(mine.data(), icount, mpi_scalar<S>(), all.data(), icount, mpi_scalar<S>(),
                          comm),
            "MPI_Allgather", where);
  st.wait_seconds += MPI_Wtime() - t0;
  const long long bytes = static_cast<long long>(count) * static_cast<long long>(sizeof(S));
  st.bytes_sent = bytes * (R - 1);
  st.bytes_received = bytes * (R - 1);
  // Merge in rank order: the same operations on the same data on every rank.
  S* lse = io.lse;
  Index lse_stride = io.lse_stride;
  std::vector<S> own_lse;
  if (!lse) {
    own_lse.resize(static_cast<std::size_t>(B * H * Lq));
    lse = own_lse.data();
    lse_stride = Lq;
  }
  dist_clear(io.out, lse, lse_stride);
  Eigen::Map<row_matrix<S>, 0, Eigen::OuterStride<>> acc_lse(lse, B * H, Lq,
                                                             Eigen::OuterStride<>(lse_stride));
  for (int s = 0; s < R; ++s) {
    const S* p = all.data() + static_cast<std::size_t>(s) * static_cast<std::size_t>(count);
    merge_attention_into(io.out, acc_lse, view_bhld(p, B, H, Lq, Dv),
                         Eigen::Map<const row_matrix<S>>(p + n_out, B * H, Lq));
  }
  dist_fold_sinks(io.out, lse, lse_stride, sinks);
  st.total_seconds = MPI_Wtime() - t_start;
  return st;
}

template <class S>
tensor_view<const S> dist_view(const Eigen::Ref<const row_matrix<S>>& m) {
  return tensor_view<const S>(m.data(), 1, 1, m.rows(), m.cols(), 0, 0,
                              (std::max)(m.outerStride(), m.cols()));
}
template <class S>
tensor_view<S> dist_view(Eigen::Ref<row_matrix<S>>& m) {
  return tensor_view<S>(m.data(), 1, 1, m.rows(), m.cols(), 0, 0,
                        (std::max)(m.outerStride(), m.cols()));
}

/// The single-head arguments as views (B = H = 1); \p lse may be null.
template <class S>
dist_io<S> dist_single(const Eigen::Ref<const row_matrix<S>>& q,
                       const Eigen::Ref<const row_matrix<S>>& k,
                       const Eigen::Ref<const row_matrix<S>>& v, Eigen::Ref<row_matrix<S>>& out,
                       Eigen::Ref<lse_vector<S>>* lse) {
  dist_io<S> io;
  io.q = dist_view<S>(q);
  io.k = dist_view<S>(k);
  io.v = dist_view<S>(v);
  io.out = dist_view<S>(out);
  io.single = true;
  if (lse) {
    io.lse = lse->data();
    io.lse_rows = 1;
    io.lse_cols = lse->size();
    io.lse_stride = lse->size();
  }
  return io;
}

template <class SQ, class SK, class SV, class S>
dist_io<S> dist_batched(const tensor_view<SQ>& q, const tensor_view<SK>& k,
                        const tensor_view<SV>& v, const tensor_view<S>& out, S* lse, Index lse_rows,
                        Index lse_cols, Index lse_stride) {
  static_assert(!std::is_const<S>::value, "emask dist: out must be a mutable view");
  static_assert(std::is_same<std::remove_const_t<SQ>, S>::value &&
                    std::is_same<std::remove_const_t<SK>, S>::value &&
                    std::is_same<std::remove_const_t<SV>, S>::value,
                "emask dist: q, k, v and out must have the same scalar type");
  dist_io<S> io;
  io.q = q;
  io.k = k;
  io.v = v;
  io.out = out;
  io.lse = lse;
  io.lse_rows = lse_rows;
  io.lse_cols = lse_cols;
  io.lse_stride = lse_stride;
  return io;
}

template <class DO, class... DIn>
struct dist_dense_args {
  using S = typename DO::Scalar;
  static constexpr bool ok = attn_dense_args<DO, DIn...>::ok;
  static_assert(std::is_floating_point<S>::value, "emask dist: use float or double");
};

/// The one-head forms of ring_attention and allgather_attention: binds the arguments without a
/// copy and runs the sequence-parallel driver (lse may be null).
template <class DQ, class DK, class DV, class Mask, class DO>
dist_stats dist_one_head(MPI_Comm comm, const shard_plan& plan,
                         const Eigen::MatrixBase<DQ>& q_local, const Eigen::MatrixBase<DK>& k_local,
                         const Eigen::MatrixBase<DV>& v_local, const Mask& mask,
                         const Eigen::MatrixBase<DO>& out_local,
                         Eigen::Ref<lse_vector<typename DO::Scalar>>* lse,
                         const attention_options& options, dist_mode mode, const char* where) {
  using S = typename DO::Scalar;
  if constexpr (dist_dense_args<DO, DQ, DK, DV>::ok) {
    const Eigen::Ref<const row_matrix<S>> q(q_local.derived()), k(k_local.derived()),
        v(v_local.derived());
    Eigen::Ref<row_matrix<S>> o(const_cast<Eigen::MatrixBase<DO>&>(out_local).derived());
    return dist_sequence_run(comm, plan, dist_single<S>(q, k, v, o, lse), mask, options, mode,
                             where);
  } else {
    return {};  // the static_asserts of dist_dense_args have fired
  }
}

}  // namespace detail

/// \brief Ring attention, one head: this rank's rows of softmax(mask(scale Q K^T)) V over the
/// whole sequence, with its Q, K, V shard laid out by \p plan (rank r holds
/// plan.local_length(r) rows: its chunks in order).
///
/// \param comm      the ranks of the ring; its size must equal plan.ranks().
/// \param plan      the same shard_plan on every rank.
/// \param q_local   local_length(rank) x D queries of this rank's shard.
/// \param k_local   local_length(rank) x D keys, \param v_local local_length(rank) x Dv values.
/// \param mask      a mask expression, asked at (options.slice.b, options.slice.h,
///                  options.q_offset + global query position, options.k_offset + global key
///                  position): the global sequence starts at the options' offsets.
/// \param out_local local_length(rank) x Dv, row-major: this rank's output rows.
/// \param lse_local local_length(rank) entries: natural log-sum-exp of each row (-infinity for
///                  a row that keeps no key).
/// \param options   attention_options (scale, softcap, ALiBi, score_mod, sinks, tiles,
///                  threads per rank), the same on every rank.
/// \return what this rank did (pairs skipped, bytes, times).
template <class DQ, class DK, class DV, class Mask, class DO, class DL>
dist_stats ring_attention(MPI_Comm comm, const shard_plan& plan,
                          const Eigen::MatrixBase<DQ>& q_local,
                          const Eigen::MatrixBase<DK>& k_local,
                          const Eigen::MatrixBase<DV>& v_local, const Mask& mask,
                          const Eigen::MatrixBase<DO>& out_local,
                          const Eigen::MatrixBase<DL>& lse_local,
                          const attention_options& options = {}) {
  Eigen::Ref<lse_vector<typename DO::Scalar>> l(
      const_cast<Eigen::MatrixBase<DL>&>(lse_local).derived());
  return detail::dist_one_head(comm, plan, q_local, k_local, v_local, mask, out_local, &l, options,
                               detail::dist_mode::ring, "ring_attention");
}

/// \brief Ring attention, one head, without the log-sum-exp output.
template <class DQ, class DK, class DV, class Mask, class DO>
dist_stats ring_attention(MPI_Comm comm, const shard_plan& plan,
                          const Eigen::MatrixBase<DQ>& q_local,
                          const Eigen::MatrixBase<DK>& k_local,
                          const Eigen::MatrixBase<DV>& v_local, const Mask& mask,
                          const Eigen::MatrixBase<DO>& out_local,
                          const attention_options& options = {}) {
  return detail::dist_one_head(comm, plan, q_local, k_local, v_local, mask, out_local, nullptr,
                               options, detail::dist_mode::ring, "ring_attention");
}

/// \brief Ring attention over batched heads: q_local [B, H, L, D], k_local [B, Hkv, L, D],
/// v_local [B, Hkv, L, Dv], out_local [B, H, L, Dv] views of this rank's shard
/// (L = plan.local_length(rank)), any strides; Hkv divides H (grouped-query attention: query
/// head h reads KV head h / (H / Hkv)). The mask is asked at (b, h, global positions);
/// \p lse_local is (B*H) x L, row b*H + h. A pair is skipped when it is empty for every (b, h).
template <class SQ, class SK, class SV, class S, class Mask>
dist_stats ring_attention(MPI_Comm comm, const shard_plan& plan, const tensor_view<SQ>& q_local,
                          const tensor_view<SK>& k_local, const tensor_view<SV>& v_local,
                          const Mask& mask, const tensor_view<S>& out_local,
                          Eigen::Ref<row_matrix<std::remove_const_t<S>>> lse_local,
                          const attention_options& options = {}) {
  return detail::dist_sequence_run(
      comm, plan,
      detail::dist_batched(q_local, k_local, v_local, out_local, lse_local.data(), lse_local.rows(),
                           lse_local.cols(), lse_local.outerStride()),
      mask, options, detail::dist_mode::ring, "ring_attention");
}

/// \brief Ring attention over batched heads, without the log-sum-exp output.
template <class SQ, class SK, class SV, class S, class Mask>
dist_stats ring_attention(MPI_Comm comm, const shard_plan& plan, const tensor_view<SQ>& q_local,
                          const tensor_view<SK>& k_local, const tensor_view<SV>& v_local,
                          const Mask& mask, const tensor_view<S>& out_local,
                          const attention_options& options = {}) {
  return detail::dist_sequence_run(
      comm, plan,
      detail::dist_batched(q_local, k_local, v_local, out_local, static_cast<S*>(nullptr), 0, 0, 0),
      mask, options, detail::dist_mode::ring, "ring_attention");
}

/// \brief All-gather-KV attention, one head: the same arguments and result as ring_attention,
/// but every rank first receives the K/V shards of all ranks with one MPI_Allgather and then
/// computes its rows against them in rank order. One collective instead of R - 1 steps; holds
/// the whole K and V on every rank, so it suits short sequences.
template <class DQ, class DK, class DV, class Mask, class DO, class DL>
dist_stats allgather_attention(MPI_Comm comm, const shard_plan& plan,
                               const Eigen::MatrixBase<DQ>& q_local,
                               const Eigen::MatrixBase<DK>& k_local,
                               const Eigen::MatrixBase<DV>& v_local, const Mask& mask,
                               const Eigen::MatrixBase<DO>& out_local,
                               const Eigen::MatrixBase<DL>& lse_local,
                               const attention_options& options = {}) {
  Eigen::Ref<lse_vector<typename DO::Scalar>> l(
      const_cast<Eigen::MatrixBase<DL>&>(lse_local).derived());
  return detail::dist_one_head(comm, plan, q_local, k_local, v_local, mask, out_local, &l, options,
                               detail::dist_mode::allgather, "allgather_attention");
}

/// \brief All-gather-KV attention, one head, without the log-sum-exp output.
template <class DQ, class DK, class DV, class Mask, class DO>
dist_stats allgather_attention(MPI_Comm comm, const shard_plan& plan,
                               const Eigen::MatrixBase<DQ>& q_local,
                               const Eigen::MatrixBase<DK>& k_local,
                               const Eigen::MatrixBase<DV>& v_local, const Mask& mask,
                               const Eigen::MatrixBase<DO>& out_local,
                               const attention_options& options = {}) {
  return detail::dist_one_head(comm, plan, q_local, k_local, v_local, mask, out_local, nullptr,
                               options, detail::dist_mode::allgather, "allgather_attention");
}

/// \brief All-gather-KV attention over batched heads (the views of the batched ring_attention).
template <class SQ, class SK, class SV, class S, class Mask>
dist_stats allgather_attention(MPI_Comm comm, const shard_plan& plan,
                               const tensor_view<SQ>& q_local, const tensor_view<SK>& k_local,
                               const tensor_view<SV>& v_local, const Mask& mask,
                               const tensor_view<S>& out_local,
                               Eigen::Ref<row_matrix<std::remove_const_t<S>>> lse_local,
                               const attention_options& options = {}) {
  return detail::dist_sequence_run(
      comm, plan,
      detail::dist_batched(q_local, k_local, v_local, out_local, lse_local.data(), lse_local.rows(),
                           lse_local.cols(), lse_local.outerStride()),
      mask, options, detail::dist_mode::allgather, "allgather_attention");
}

/// \brief All-gather-KV attention over batched heads, without the log-sum-exp output.
template <class SQ, class SK, class SV, class S, class Mask>
dist_stats allgather_attention(MPI_Comm comm, const shard_plan& plan,
                               const tensor_view<SQ>& q_local, const tensor_view<SK>& k_local,
                               const tensor_view<SV>& v_local, const Mask& mask,
                               const tensor_view<S>& out_local,
                               const attention_options& options = {}) {
  return detail::dist_sequence_run(
      comm, plan,
      detail::dist_batched(q_local, k_local, v_local, out_local, static_cast<S*>(nullptr), 0, 0, 0),
      mask, options, detail::dist_mode::allgather, "allgather_attention");
}

/// \brief Decoding over a KV cache sharded across ranks, one head: every rank passes the same
/// query rows \p q (Lq x D, at absolute positions options.q_offset + i) and its own cache shard
/// (k_local, v_local: Lk_r rows at absolute key positions options.k_offset + k_offset + j; the
/// shards of the ranks must not overlap, their lengths may differ, an empty shard is allowed).
/// Each rank computes its partial with the emask::decode variant, the partials are all-gathered
/// (MPI_Allgather) and merged in rank order, so every rank gets the same \p out (Lq x Dv) and
/// \p lse (Lq), bit for bit.
template <class DQ, class DK, class DV, class Mask, class DO, class DL>
dist_stats sharded_decode(MPI_Comm comm, const Eigen::MatrixBase<DQ>& q,
                          const Eigen::MatrixBase<DK>& k_local,
                          const Eigen::MatrixBase<DV>& v_local, Index k_offset, const Mask& mask,
                          const Eigen::MatrixBase<DO>& out, const Eigen::MatrixBase<DL>& lse,
                          const attention_options& options = {}) {
  using S = typename DO::Scalar;
  if constexpr (detail::dist_dense_args<DO, DQ, DK, DV>::ok) {
    const Eigen::Ref<const row_matrix<S>> rq(q.derived()), k(k_local.derived()),
        v(v_local.derived());
    Eigen::Ref<row_matrix<S>> o(const_cast<Eigen::MatrixBase<DO>&>(out).derived());
    Eigen::Ref<lse_vector<S>> l(const_cast<Eigen::MatrixBase<DL>&>(lse).derived());
    return detail::dist_decode_run(comm, detail::dist_single<S>(rq, k, v, o, &l), k_offset, mask,
                                   options, "sharded_decode");
  } else {
    return {};
  }
}

/// \brief Sharded decoding, one head, without the log-sum-exp output.
template <class DQ, class DK, class DV, class Mask, class DO>
dist_stats sharded_decode(MPI_Comm comm, const Eigen::MatrixBase<DQ>& q,
                          const Eigen::MatrixBase<DK>& k_local,
                          const Eigen::MatrixBase<DV>& v_local, Index k_offset, const Mask& mask,
                          const Eigen::MatrixBase<DO>& out, const attention_options& options = {}) {
  using S = typename DO::Scalar;
  if constexpr (detail::dist_dense_args<DO, DQ, DK, DV>::ok) {
    const Eigen::Ref<const row_matrix<S>> rq(q.derived()), k(k_local.derived()),
        v(v_local.derived());
    Eigen::Ref<row_matrix<S>> o(const_cast<Eigen::MatrixBase<DO>&>(out).derived());
    return detail::dist_decode_run(comm, detail::dist_single<S>(rq, k, v, o, nullptr), k_offset,
                                   mask, options, "sharded_decode");
  } else {
    return {};
  }
}

/// \brief Sharded decoding over batched heads: q [B, H, Lq, D] (the same on every rank),
/// k_local [B, Hkv, Lk_r, D], v_local [B, Hkv, Lk_r, Dv], out [B, H, Lq, Dv], lse (B*H) x Lq.
template <class SQ, class SK, class SV, class S, class Mask>
dist_stats sharded_decode(MPI_Comm comm, const tensor_view<SQ>& q, const tensor_view<SK>& k_local,
                          const tensor_view<SV>& v_local, Index k_offset, const Mask& mask,
                          const tensor_view<S>& out,
                          Eigen::Ref<row_matrix<std::remove_const_t<S>>> lse,
                          const attention_options& options = {}) {
  return detail::dist_decode_run(comm,
                                 detail::dist_batched(q, k_local, v_local, out, lse.data(),
                                                      lse.rows(), lse.cols(), lse.outerStride()),
                                 k_offset, mask, options, "sharded_decode");
}

/// \brief Sharded decoding over batched heads, without the log-sum-exp output.
template <class SQ, class SK, class SV, class S, class Mask>
dist_stats sharded_decode(MPI_Comm comm, const tensor_view<SQ>& q, const tensor_view<SK>& k_local,
                          const tensor_view<SV>& v_local, Index k_offset, const Mask& mask,
                          const tensor_view<S>& out, const attention_options& options = {}) {
  return detail::dist_decode_run(
      comm, detail::dist_batched(q, k_local, v_local, out, static_cast<S*>(nullptr), 0, 0, 0),
      k_offset, mask, options, "sharded_decode");
}

EMASK_NAMESPACE_END
