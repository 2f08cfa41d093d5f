// A rank whose shard shape disagrees makes ring_attention / allgather_attention /
// sharded_decode raise emask::error on EVERY rank, naming the argument and the rank, instead
// of leaving the other ranks waiting in a collective (a hang is caught by the ctest timeout).
// With np >= 2, rank 1 passes a different D, then a different sequence length (plan), a
// different Dv, a different number of KV heads (batched) and an overlapping cache shard
// (decode); after each failure a correct call must still work on the same communicator. With
// np 1, a local shape error and a plan for the wrong number of ranks are checked.
// Prints "test_shape_mismatch: N checks passed on R ranks"; exit 0 only if every rank passed.
#include <emask/dist/ring_attention.hpp>
#include <emask/masks/causal.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

using emask::Index;
using mat = emask::row_matrix<float>;

int g_rank = 0;
long long g_checks = 0, g_failures = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "rank %d: FAILED %s\n", g_rank, what.c_str());
  }
}

// Runs f, which must raise emask::error whose message contains every one of \p parts.
template <class F>
void expect_error(const char* name, const std::vector<std::string>& parts, F&& f) {
  std::string msg;
  try {
    f();
  } catch (const emask::error& e) {
    msg = e.what();
  }
  check(!msg.empty(), std::string(name) + ": no emask::error raised");
  for (const std::string& p : parts)
    check(msg.find(p) != std::string::npos,
          std::string(name) + ": message \"" + msg + "\" lacks \"" + p + "\"");
  if (g_rank == 0 && !msg.empty()) std::printf("  %s: %s\n", name, msg.c_str());
}

mat filled(Index rows, Index cols, float x) { return mat::Constant(rows, cols, x); }

// A correct ring call after a failed one: the communicator must still be usable.
void correct_call(MPI_Comm comm, int R) {
  const emask::shard_plan plan(64, R, emask::shard_layout::zigzag);
  const Index L = plan.local_length(g_rank);
  mat q = filled(L, 8, 0.5f), out(L, 8);
  const emask::dist_stats st = emask::ring_attention(comm, plan, q, q, q, emask::causal(), out);
  check(st.pairs > 0 && (out.array() - 0.5f).abs().maxCoeff() < 1e-6f, "correct call after error");
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int R = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &R);
  const MPI_Comm comm = MPI_COMM_WORLD;
  const Index S = 96;
  const emask::shard_plan plan(S, R, emask::shard_layout::zigzag);
  const Index L = plan.local_length(g_rank);
  const bool odd = R >= 2 && g_rank == 1;  // the rank that disagrees

  if (R >= 2) {
    // 1. Rank 1 has D = 12 instead of 16.
    expect_error(
        "different D", {"emask::ring_attention", "'q_local on rank 1'", "x12", "x16"}, [&] {
          const Index D = odd ? 12 : 16;
          mat q = filled(L, D, 0.1f), k = filled(L, D, 0.2f), v = filled(L, 8, 0.3f), out(L, 8);
          emask::ring_attention(comm, plan, q, k, v, emask::causal(), out);
        });
    correct_call(comm, R);
    // 2. Rank 1 has a plan (and shard) for another sequence length.
    expect_error("different S",
                 {"emask::ring_attention", "'plan on rank 1'", "seq_len 104", "seq_len 96"}, [&] {
                   const emask::shard_plan p2(odd ? S + 8 : S, R);
                   const Index n = p2.local_length(g_rank);
                   mat q = filled(n, 16, 0.1f), v = filled(n, 8, 0.3f), out(n, 8);
                   emask::ring_attention(comm, p2, q, q, v, emask::causal(), out);
                 });
    correct_call(comm, R);
    // 3. All-gather with a different Dv on rank 1.
    expect_error("different Dv", {"emask::allgather_attention", "'v_local on rank 1'", "Dv = 8"},
                 [&] {
                   const Index Dv = odd ? 5 : 8;
                   mat q = filled(L, 16, 0.1f), v = filled(L, Dv, 0.3f), out(L, Dv);
                   emask::allgather_attention(comm, plan, q, q, v, emask::causal(), out);
                 });
    correct_call(comm, R);
    // 4. Batched heads: rank 1 has 1 KV head instead of 2.
    expect_error(
        "different KV heads", {"emask::ring_attention", "'k_local on rank 1'", "2 heads"}, [&] {
          const Index Hkv = odd ? 1 : 2;
          std::vector<float> q(static_cast<std::size_t>(4 * L * 16), 0.1f),
              k(static_cast<std::size_t>(Hkv * L * 16), 0.2f),
              o(static_cast<std::size_t>(4 * L * 16));
          emask::row_matrix<float> lse(4, L);
          const emask::tensor_view<const float> qv = emask::view_bhld(q.data(), 1, 4, L, 16),
                                                kv = emask::view_bhld(k.data(), 1, Hkv, L, 16);
          emask::ring_attention(comm, plan, qv, kv, kv, emask::causal(),
                                emask::view_bhld(o.data(), 1, 4, L, 16), lse);
        });
    correct_call(comm, R);
    // 5. Decode: rank 1's cache shard overlaps rank 0's.
    expect_error("overlapping cache shards",
                 {"emask::sharded_decode", "'k_offset on rank 1'", "disjoint from rank 0"}, [&] {
                   const Index n = 20, k0 = odd ? 10 : g_rank * n;
                   mat q = filled(1, 16, 0.1f), k = filled(n, 16, 0.2f), out(1, 16);
                   emask::attention_options o;
                   o.q_offset = 200;
                   emask::sharded_decode(comm, q, k, k, k0, emask::causal(), out, o);
                 });
    correct_call(comm, R);
  } else {
    // np 1: a local shape error (q has one row too many) and a plan for 2 ranks.
    expect_error("local shape", {"emask::ring_attention", "'q_local on rank 0'", "L = 96"}, [&] {
      mat q = filled(L + 1, 16, 0.1f), k = filled(L, 16, 0.2f), out(L + 1, 16);
      emask::ring_attention(comm, plan, q, k, k, emask::causal(), out);
    });
    expect_error("plan ranks", {"emask::ring_attention", "'plan'", "2 ranks", "1 ranks"}, [&] {
      const emask::shard_plan p2(S, 2);
      mat q = filled(p2.local_length(0), 16, 0.1f), out(p2.local_length(0), 16);
      emask::ring_attention(comm, p2, q, q, q, emask::causal(), out);
    });
    correct_call(comm, R);
  }
  long long sums[2] = {g_checks, g_failures}, total[2] = {0, 0};
  MPI_Allreduce(sums, total, 2, MPI_LONG_LONG, MPI_SUM, comm);
  if (g_rank == 0) {
    if (total[1] == 0)
      std::printf("test_shape_mismatch: %lld checks passed on %d ranks\n", total[0], R);
    else
      std::printf("test_shape_mismatch: %lld of %lld checks FAILED on %d ranks\n", total[1],
                  total[0], R);
  }
  MPI_Finalize();
  return total[1] == 0 ? 0 : 1;
}
