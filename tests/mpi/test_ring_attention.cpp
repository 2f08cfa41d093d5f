// ring_attention, allgather_attention and sharded_decode against single-process
// masked_attention on the whole sequence, under any number of MPI ranks (1, 2, 4, ...).
//
// Every rank builds the same full Q, K, V from a fixed seed, computes its shard's rows with the
// distributed call, and compares them with its rows of the single-process result: float within
// 3e-5, double within 1e-12 (the merge bound of tests/test_merge.cpp; the log-sum-exp within 10x
// that). Masks: causal, sliding window, document (cu_seqlens) & causal, key padding; layouts
// contiguous and zigzag; float and double; one head and batched grouped-query heads (q in the
// interleaved [B, L, H, D] layout); sequence lengths divisible by the chunk count and not. The
// skipped pairs, pairs and work of each call equal plan_work's prediction for the rank. Sharded
// decoding is checked against the reference and for bit-identical results on every rank.
// Exit 0 only if every check on every rank passed.
#include <emask/dist/ring_attention.hpp>
#include <emask/masks/causal.hpp>
#include <emask/masks/document.hpp>
#include <emask/masks/padding.hpp>
#include <emask/masks/window.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using emask::Index;
using emask::row_matrix;

int g_rank = 0;
long long g_checks = 0, g_failures = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "rank %d: FAILED %s\n", g_rank, what.c_str());
  }
}

// A small deterministic generator (splitmix64), identical on every rank.
struct rng {
  std::uint64_t s;
  double next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53 * 4.0 - 2.0;  // [-2, 2)
  }
};

template <class S>
row_matrix<S> random_matrix(rng& g, Index rows, Index cols) {
  row_matrix<S> m(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) m(i, j) = static_cast<S>(g.next());
  return m;
}

template <class S>
double tol() {
  return std::is_same<S, float>::value ? 3e-5 : 1e-12;
}

// |a - b| with -infinity equal only to -infinity.
template <class S>
double lse_diff(S a, S b) {
  const bool ia = std::isinf(a), ib = std::isinf(b);
  if (ia || ib) return ia && ib && a == b ? 0.0 : 1e30;
  return std::abs(static_cast<double>(a) - static_cast<double>(b));
}

enum class call { ring, allgather };

std::string tag(const char* mask_name, emask::shard_layout layout, call c, Index S_len,
                const char* scalar, const char* heads) {
  return std::string(c == call::ring ? "ring" : "allgather") + " " + mask_name + " " +
         (layout == emask::shard_layout::zigzag ? "zigzag" : "contiguous") +
         " S=" + std::to_string(S_len) + " " + scalar + " " + heads;
}

template <class S>
const char* scalar_name() {
  return std::is_same<S, float>::value ? "float" : "double";
}

template <class S, class Mask>
void check_stats(const emask::dist_stats& st, const emask::shard_plan& plan, const Mask& mask,
                 const emask::head_range& hr, const std::string& what) {
  const emask::work_plan wp = emask::plan_work(plan, mask, hr);
  const emask::rank_work& w = wp.ranks[static_cast<std::size_t>(g_rank)];
  check(st.pairs == w.pairs,
        what + ": pairs " + std::to_string(st.pairs) + " vs plan " + std::to_string(w.pairs));
  check(st.pairs_skipped == w.empty_pairs, what + ": skipped " + std::to_string(st.pairs_skipped) +
                                               " vs plan " + std::to_string(w.empty_pairs));
  check(st.work == w.work,
        what + ": work " + std::to_string(st.work) + " vs plan " + std::to_string(w.work));
}

// One head: the distributed rows against the single-process rows.
template <class S, class Mask>
void single_head_case(MPI_Comm comm, Index S_len, emask::shard_layout layout, call c,
                      const Mask& mask, const char* name, const emask::attention_options& opt) {
  const int R = [&] {
    int n = 0;
    MPI_Comm_size(comm, &n);
    return n;
  }();
  const Index D = 16, Dv = 12;
  rng g{42};
  const row_matrix<S> q = random_matrix<S>(g, S_len, D), k = random_matrix<S>(g, S_len, D),
                      v = random_matrix<S>(g, S_len, Dv);
  row_matrix<S> ref(S_len, Dv);
  emask::lse_vector<S> ref_lse(S_len);
  emask::masked_attention(q, k, v, mask, ref, ref_lse, opt);

  const emask::shard_plan plan(S_len, R, layout);
  const Index L = plan.local_length(g_rank);
  row_matrix<S> ql(L, D), kl(L, D), vl(L, Dv);
  for (Index i = 0; i < L; ++i) {
    const Index p = plan.global_position(g_rank, i);
    ql.row(i) = q.row(p);
    kl.row(i) = k.row(p);
    vl.row(i) = v.row(p);
  }
  row_matrix<S> out(L, Dv);
  emask::lse_vector<S> lse(L);
  const emask::dist_stats st =
      c == call::ring ? emask::ring_attention(comm, plan, ql, kl, vl, mask, out, lse, opt)
                      : emask::allgather_attention(comm, plan, ql, kl, vl, mask, out, lse, opt);
  const std::string what = tag(name, layout, c, S_len, scalar_name<S>(), "1 head");
  double d_out = 0, d_lse = 0;
  for (Index i = 0; i < L; ++i) {
    const Index p = plan.global_position(g_rank, i);
    d_out = std::max(d_out, static_cast<double>((out.row(i) - ref.row(p)).cwiseAbs().maxCoeff()));
    d_lse = std::max(d_lse, lse_diff(lse(i), ref_lse(p)));
  }
  check(d_out <= tol<S>(), what + ": max |out diff| = " + std::to_string(d_out));
  check(d_lse <= 10 * tol<S>(), what + ": max |lse diff| = " + std::to_string(d_lse));
  check_stats<S>(st, plan, mask,
                 emask::head_range{opt.slice.b, opt.slice.b + 1, opt.slice.h, opt.slice.h + 1},
                 what);
  // Without the lse output: the same rows, bit for bit.
  row_matrix<S> out2(L, Dv);
  if (c == call::ring)
    emask::ring_attention(comm, plan, ql, kl, vl, mask, out2, opt);
  else
    emask::allgather_attention(comm, plan, ql, kl, vl, mask, out2, opt);
  check((out2.array() == out.array()).all(), what + ": without lse differs");
}

// Batched grouped-query heads: B = 2, H = 4, Hkv = 2; q and out interleaved [B, L, H, D].
template <class S, class Mask>
void batched_case(MPI_Comm comm, Index S_len, emask::shard_layout layout, call c, const Mask& mask,
                  const char* name) {
  int R = 0;
  MPI_Comm_size(comm, &R);
  const Index B = 2, H = 4, Hkv = 2, D = 8, Dv = 6;
  rng g{7};
  // Full tensors, contiguous [B, H, S, D].
  const row_matrix<S> q = random_matrix<S>(g, B * H * S_len, D),
                      k = random_matrix<S>(g, B * Hkv * S_len, D),
                      v = random_matrix<S>(g, B * Hkv * S_len, Dv);
  row_matrix<S> ref(B * H * S_len, Dv), ref_lse(B * H, S_len);
  emask::masked_attention(emask::view_bhld(q.data(), B, H, S_len, D),
                          emask::view_bhld(k.data(), B, Hkv, S_len, D),
                          emask::view_bhld(v.data(), B, Hkv, S_len, Dv), mask,
                          emask::view_bhld(ref.data(), B, H, S_len, Dv), ref_lse);

  const emask::shard_plan plan(S_len, R, layout);
  const Index L = plan.local_length(g_rank);
  // Local q and out as [B, L, H, D] (interleaved), k and v as [B, Hkv, L, D].
  std::vector<S> ql(static_cast<std::size_t>(B * L * H * D)),
      kl(static_cast<std::size_t>(B * Hkv * L * D)), vl(static_cast<std::size_t>(B * Hkv * L * Dv)),
      out(static_cast<std::size_t>(B * L * H * Dv));
  const auto qv = emask::view_blhd(ql.data(), B, L, H, D);
  const auto kv = emask::view_bhld(kl.data(), B, Hkv, L, D);
  const auto vv = emask::view_bhld(vl.data(), B, Hkv, L, Dv);
  const auto ov = emask::view_blhd(out.data(), B, L, H, Dv);
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < L; ++i) {
      const Index p = plan.global_position(g_rank, i);
      for (Index h = 0; h < H; ++h) qv.slice(b, h).row(i) = q.row((b * H + h) * S_len + p);
      for (Index h = 0; h < Hkv; ++h) {
        kv.slice(b, h).row(i) = k.row((b * Hkv + h) * S_len + p);
        vv.slice(b, h).row(i) = v.row((b * Hkv + h) * S_len + p);
      }
    }
  row_matrix<S> lse(B * H, L);
  const emask::tensor_view<const S> qc = qv, kc = kv, vc = vv;
  const emask::dist_stats st =
      c == call::ring ? emask::ring_attention(comm, plan, qc, kc, vc, mask, ov, lse)
                      : emask::allgather_attention(comm, plan, qc, kc, vc, mask, ov, lse);
  const std::string what = tag(name, layout, c, S_len, scalar_name<S>(), "B=2 H=4 Hkv=2");
  double d_out = 0, d_lse = 0;
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index i = 0; i < L; ++i) {
        const Index p = plan.global_position(g_rank, i);
        d_out = std::max(
            d_out,
            static_cast<double>(
                (ov.slice(b, h).row(i) - ref.row((b * H + h) * S_len + p)).cwiseAbs().maxCoeff()));
        d_lse = std::max(d_lse, lse_diff(lse(b * H + h, i), ref_lse(b * H + h, p)));
      }
  check(d_out <= tol<S>(), what + ": max |out diff| = " + std::to_string(d_out));
  check(d_lse <= 10 * tol<S>(), what + ": max |lse diff| = " + std::to_string(d_lse));
  check_stats<S>(st, plan, mask, emask::head_range{0, B, 0, H}, what);
}

template <class S, class Mask>
void sequence_cases(MPI_Comm comm, const Mask& mask, const char* name, Index S_len) {
  for (auto layout : {emask::shard_layout::contiguous, emask::shard_layout::zigzag})
    for (call c : {call::ring, call::allgather}) {
      single_head_case<S>(comm, S_len, layout, c, mask, name, emask::attention_options{});
      batched_case<S>(comm, S_len, layout, c, mask, name);
    }
}

// Sharded decode: 3 queries at the end of a cache of T keys split unevenly over the ranks.
template <class S, class Mask>
void decode_case(MPI_Comm comm, const Mask& mask, const char* name, bool batched) {
  int R = 0;
  MPI_Comm_size(comm, &R);
  const Index T = 301, Lq = 3, D = 16, Dv = 8;
  const Index B = batched ? 2 : 1, H = batched ? 4 : 1, Hkv = batched ? 2 : 1;
  rng g{99};
  const row_matrix<S> q = random_matrix<S>(g, B * H * Lq, D),
                      k = random_matrix<S>(g, B * Hkv * T, D),
                      v = random_matrix<S>(g, B * Hkv * T, Dv);
  emask::attention_options opt;
  opt.q_offset = T - Lq;  // the queries are the last Lq positions
  opt.decode_chunk = 32;
  row_matrix<S> ref(B * H * Lq, Dv), ref_lse(B * H, Lq);
  emask::masked_attention(emask::view_bhld(q.data(), B, H, Lq, D),
                          emask::view_bhld(k.data(), B, Hkv, T, D),
                          emask::view_bhld(v.data(), B, Hkv, T, Dv), mask,
                          emask::view_bhld(ref.data(), B, H, Lq, Dv), ref_lse, opt);
  // Uneven shards: rank r holds [cut(r), cut(r + 1)) with cut(r) = T r^2 / R^2 (rank 0 may be
  // tiny, the last one large).
  auto cut = [&](Index r) { return T * r * r / (Index(R) * R); };
  const Index k0 = cut(g_rank), n = cut(g_rank + 1) - k0;
  row_matrix<S> out(B * H * Lq, Dv), lse(B * H, Lq);
  const auto kv =
      emask::tensor_view<const S>(k.data() + k0 * D, B, Hkv, n, D, Hkv * T * D, T * D, D);
  const auto vv =
      emask::tensor_view<const S>(v.data() + k0 * Dv, B, Hkv, n, Dv, Hkv * T * Dv, T * Dv, Dv);
  emask::dist_stats st;
  if (batched) {
    st = emask::sharded_decode(comm, emask::view_bhld(q.data(), B, H, Lq, D), kv, vv, k0, mask,
                               emask::view_bhld(out.data(), B, H, Lq, Dv), lse, opt);
  } else {
    emask::lse_vector<S> l(Lq);
    st = emask::sharded_decode(comm, q, kv.slice(0, 0), vv.slice(0, 0), k0, mask, out, l, opt);
    lse = l.transpose();
  }
  const std::string what = std::string("decode ") + name + " " + scalar_name<S>() +
                           (batched ? " B=2 H=4 Hkv=2" : " 1 head");
  double d_out = (out - ref).cwiseAbs().maxCoeff(), d_lse = 0;
  for (Index i = 0; i < lse.rows(); ++i)
    for (Index j = 0; j < lse.cols(); ++j)
      d_lse = std::max(d_lse, lse_diff(lse(i, j), ref_lse(i, j)));
  check(d_out <= tol<S>(), what + ": max |out diff| = " + std::to_string(d_out));
  check(d_lse <= 10 * tol<S>(), what + ": max |lse diff| = " + std::to_string(d_lse));
  check(st.pairs == 1 && st.pairs_skipped + st.pairs_computed == 1, what + ": pair counts");
  // Every rank holds the same result, bit for bit: compare with rank 0's.
  row_matrix<S> root = out;
  MPI_Bcast(root.data(), static_cast<int>(root.size()), emask::detail::mpi_scalar<S>(), 0, comm);
  check((root.array() == out.array()).all(), what + ": differs from rank 0's result");
}

template <class S>
void all_cases(MPI_Comm comm) {
  for (Index S_len : {Index(128), Index(203)}) {
    sequence_cases<S>(comm, emask::causal(), "causal", S_len);
    sequence_cases<S>(comm, emask::sliding_window(24, 0), "window(24,0)", S_len);
    sequence_cases<S>(comm, emask::sliding_window(10, 10), "window(10,10)", S_len);
    sequence_cases<S>(
        comm, emask::document::from_cu_seqlens({0, 37, 37, 90, 101, S_len}) & emask::causal(),
        "document&causal", S_len);
    sequence_cases<S>(comm, emask::key_padding::from_lengths({S_len - 40, 51}, S_len),
                      "key_padding", S_len);
  }
  // Options pass through: scale, softcap, ALiBi of head 1 and a sink logit, mask at slice b = 1.
  {
    emask::attention_options opt;
    opt.scale = 0.3;
    opt.softcap = 5.0;
    opt.alibi = emask::alibi_slopes(2);
    opt.sink_logit = {0.5, -0.25};
    opt.slice.b = 1;
    opt.slice.h = 1;
    const auto mask = emask::key_padding::from_lengths({150, 90}, 203) & emask::causal();
    for (auto layout : {emask::shard_layout::contiguous, emask::shard_layout::zigzag})
      for (call c : {call::ring, call::allgather})
        single_head_case<S>(comm, 203, layout, c, mask, "padding&causal+options", opt);
  }
  // The global sequence starting at an offset (options.q_offset = k_offset = 50).
  {
    emask::attention_options opt;
    opt.q_offset = 50;
    opt.k_offset = 50;
    for (auto layout : {emask::shard_layout::contiguous, emask::shard_layout::zigzag})
      single_head_case<S>(comm, 150, layout, call::ring, emask::sliding_window(30, 0),
                          "window+offset", opt);
  }
  for (bool batched : {false, true}) {
    decode_case<S>(comm, emask::causal(), "causal", batched);
    decode_case<S>(comm, emask::sliding_window(100, 0), "window(100,0)", batched);
    decode_case<S>(comm, emask::key_padding::from_lengths({250, 120}, 301), "key_padding", batched);
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int R = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &R);
  all_cases<float>(MPI_COMM_WORLD);
  all_cases<double>(MPI_COMM_WORLD);
  long long sums[2] = {g_checks, g_failures}, total[2] = {0, 0};
  MPI_Allreduce(sums, total, 2, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (g_rank == 0) {
    if (total[1] == 0)
      std::printf("test_ring_attention: %lld checks passed on %d ranks\n", total[0], R);
    else
      std::printf("test_ring_attention: %lld of %lld checks FAILED on %d ranks\n", total[1],
                  total[0], R);
  }
  MPI_Finalize();
  return total[1] == 0 ? 0 : 1;
}
