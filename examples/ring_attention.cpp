// emask-requires: mpi
// Ring attention over MPI ranks: a causal sequence of S tokens (default 32768) split over the
// ranks in the zigzag layout (rank r holds chunks r and 2R-1-r of 2R), K/V shards passed around
// the ring, empty (query chunk, key chunk) pairs skipped from the mask's tile answers, partial
// results merged by log-sum-exp. Prints each rank's chunks and work, the skipped pairs against
// the pairs causality makes empty, and the max difference against a single-process reference
// (double precision) on 64 sampled query rows.
//
//   mpirun -np 4 ./ring_attention [--seq S]
// ctest-pass: ring_attention: S = [0-9]+, D = 64, causal, zigzag over [0-9]+ ranks
// ctest-pass: skipped pairs: [0-9]+ of [0-9]+, causality makes [0-9]+ empty: OK
// ctest-pass: ring_attention: max \|diff\| = [0-9.e+-]+ over 64 sampled rows \(bound 3e-5\): OK
#include <emask/dist/ring_attention.hpp>
#include <emask/masks/causal.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

using emask::Index;
using mat = emask::row_matrix<float>;

namespace {
// Token t's q, k, v features: a smooth deterministic function of (t, column), so every rank
// builds exactly the rows it holds without any communication.
float feature(Index t, Index c, int which) {
  const double x = static_cast<double>(t) * 0.0131 + static_cast<double>(c) * 0.71 + which * 2.3;
  return static_cast<float>(std::sin(x) + 0.3 * std::cos(3.1 * x));
}
}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, R = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &R);
  Index S = 32768;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--seq")) S = std::atol(argv[i + 1]);
  const Index D = 64;
  if (S < 2 * static_cast<Index>(R)) {
    if (rank == 0) std::printf("ring_attention: --seq must be at least 2 x ranks\n");
    MPI_Finalize();
    return 1;
  }

  // The plan: who holds which positions. Every rank builds the same plan.
  const emask::shard_plan plan(S, R, emask::shard_layout::zigzag);
  const emask::causal mask;
  const Index L = plan.local_length(rank);
  mat q(L, D), k(L, D), v(L, D);
  for (Index i = 0; i < L; ++i) {
    const Index t = plan.global_position(rank, i);  // local row i is token t
    for (Index c = 0; c < D; ++c) {
      q(i, c) = feature(t, c, 0);
      k(i, c) = feature(t, c, 1);
      v(i, c) = feature(t, c, 2);
    }
  }

  // The distributed call: this rank's output rows over the whole sequence.
  mat out(L, D);
  emask::attention_options opt;
  opt.threads = 1;  // one thread per rank
  const emask::dist_stats st = emask::ring_attention(MPI_COMM_WORLD, plan, q, k, v, mask, out, opt);

  // Each rank's figures, printed by rank 0 in rank order.
  const emask::work_plan wp = emask::plan_work(plan, mask);
  double mine[4] = {static_cast<double>(st.pairs), static_cast<double>(st.pairs_skipped),
                    static_cast<double>(st.work), st.total_seconds};
  std::vector<double> all(static_cast<std::size_t>(4 * R));
  MPI_Gather(mine, 4, MPI_DOUBLE, all.data(), 4, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  bool ok = true;
  if (rank == 0) {
    std::printf("ring_attention: S = %ld, D = 64, causal, zigzag over %d ranks\n",
                static_cast<long>(S), R);
    double pairs = 0, skipped = 0, total_work = static_cast<double>(wp.total_work());
    for (int r = 0; r < R; ++r) {
      const double* x = &all[4 * static_cast<std::size_t>(r)];
      const emask::seq_chunk a = plan.chunk(r, 0), b = plan.chunk(r, 1);
      std::printf(
          "  rank %d holds [%ld, %ld) and [%ld, %ld): work %.0f kept pairs (%.1f%%), "
          "skipped %.0f of %.0f chunk pairs, %.3f s\n",
          r, static_cast<long>(a.begin), static_cast<long>(a.end), static_cast<long>(b.begin),
          static_cast<long>(b.end), x[2], 100.0 * x[2] / total_work, x[1], x[0], x[3]);
      pairs += x[0];
      skipped += x[1];
    }
    // The pairs causality makes empty, counted from the definition (every key of the key chunk
    // comes after every query of the query chunk), not from the mask's tile answers.
    Index empty = 0;
    for (Index i = 0; i < plan.chunk_count(); ++i)
      for (Index j = 0; j < plan.chunk_count(); ++j)
        if (plan.global_chunk(j).begin > plan.global_chunk(i).end - 1) ++empty;
    const bool same = static_cast<Index>(skipped) == empty;
    ok = ok && same;
    std::printf("skipped pairs: %.0f of %.0f, causality makes %ld empty: %s\n", skipped, pairs,
                static_cast<long>(empty), same ? "OK" : "MISMATCH");
    const emask::work_plan contiguous =
        emask::plan_work(emask::shard_plan(S, R, emask::shard_layout::contiguous), mask);
    std::printf("work balance (slowest rank / average): zigzag %.3f, contiguous would be %.3f\n",
                wp.imbalance(), contiguous.imbalance());
  }

  // Single-process reference on 64 sampled query rows, in double precision: token t attends to
  // keys 0..t. (A float reference over 32768 keys carries float rounding of its own, about
  // 1e-5 here; the ring's float result is within about 2e-6 of the double one.)
  const int samples = 64;
  std::vector<Index> mine_t;  // the sampled tokens this rank holds
  for (int s = 0; s < samples; ++s) {
    const Index t = (S - 1) * s / (samples - 1);
    if (plan.locate(t).rank == rank) mine_t.push_back(t);
  }
  const Index needed = mine_t.empty() ? 0 : mine_t.back() + 1;  // keys 0..max t
  emask::row_matrix<double> kd(needed, D), vd(needed, D);
  for (Index j = 0; j < needed; ++j)
    for (Index c = 0; c < D; ++c) {
      kd(j, c) = feature(j, c, 1);
      vd(j, c) = feature(j, c, 2);
    }
  double worst = 0;
  for (const Index t : mine_t) {
    emask::row_matrix<double> qt(1, D), ref(1, D);
    for (Index c = 0; c < D; ++c) qt(0, c) = feature(t, c, 0);
    emask::attention_options at;
    at.q_offset = t;  // the query is token t; causal keeps keys <= t
    at.threads = 1;
    emask::masked_attention(qt, kd.topRows(t + 1), vd.topRows(t + 1), mask, ref, at);
    const Index row = plan.locate(t).row;
    worst = std::max(worst, (out.row(row).cast<double>() - ref).cwiseAbs().maxCoeff());
  }
  double worst_all = 0;
  MPI_Reduce(&worst, &worst_all, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    const bool close = worst_all <= 3e-5;
    ok = ok && close;
    std::printf("ring_attention: max |diff| = %.3g over %d sampled rows (bound 3e-5): %s\n",
                worst_all, samples, close ? "OK" : "MISMATCH");
  }
  int rc = ok ? 0 : 1;
  MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return rc;
}
