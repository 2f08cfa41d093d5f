// Sliding-window attention over a long context (S = 16384, a 256-key window as Mistral's
// sliding_window=256): the tiled kernel visits only the tiles along the band, and its workspace
// does not grow with S. Sampled rows are checked against a double-precision reference, and the
// last 512 rows are recomputed as a shard: only their queries and the keys their window reaches,
// at their absolute positions (options.q_offset, options.k_offset).
// ctest-pass: workspace [0-9]+ KiB \(a dense score matrix would need 1024 MiB\)
// ctest-pass: max \|tiled - double reference\| over 6 sampled rows = [0-9.e-]+ \(ok\)
#include <chrono>
#include <cmath>
#include <emask/emask.hpp>
#include <emask/kernels/attention.hpp>
#include <iostream>
#include <vector>

using emask::Index;
using mat = emask::row_matrix<float>;

int main() {
  const Index S = 16384, D = 64;
  mat q(S, D), k(S, D), v(S, D);
  for (Index i = 0; i < S; ++i)
    for (Index j = 0; j < D; ++j) {
      const float x = static_cast<float>(i * D + j);
      q(i, j) = std::sin(0.0013f * x);
      k(i, j) = std::cos(0.0031f * x);
      v(i, j) = std::sin(0.0007f * x + 1.f);
    }
  const auto mask = emask::sliding_window::from_hf(256) & emask::causal();
  emask::attention_options opt;
  opt.threads = 1;
  const Index ws = emask::attention_workspace_size<float>(1, S, S, D, D, opt);
  mat out(S, D);
  const auto t0 = std::chrono::steady_clock::now();
  emask::masked_attention(q, k, v, mask, out, opt);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  double worst = 0;
  const Index rows[] = {0, 1, 255, 256, 9000, S - 1};
  for (Index i : rows) {
    const Index lo = std::max<Index>(0, i - 255);
    std::vector<double> s;
    double m = -1e300;
    for (Index j = lo; j <= i; ++j) {
      double dot = 0;
      for (Index c = 0; c < D; ++c)
        dot += static_cast<double>(q(i, c)) * static_cast<double>(k(j, c));
      s.push_back(dot / 8.0);  // 1 / sqrt(64)
      m = std::max(m, s.back());
    }
    double z = 0;
    for (double& x : s) z += (x = std::exp(x - m));
    for (Index c = 0; c < D; ++c) {
      double o = 0;
      for (Index j = lo; j <= i; ++j)
        o += s[static_cast<std::size_t>(j - lo)] * static_cast<double>(v(j, c));
      worst = std::max(worst, std::abs(o / z - static_cast<double>(out(i, c))));
    }
  }
  std::cout << "S = " << S << ", D = " << D << ", window 256 (keys i-255..i), 1 thread: " << ms
            << " ms\n";
  std::cout << "workspace " << ws * static_cast<Index>(sizeof(float)) / 1024
            << " KiB (a dense score matrix would need "
            << S * S * static_cast<Index>(sizeof(float)) / 1024 / 1024 << " MiB)\n";
  // A shard: queries [S - 512, S) over keys [S - 512 - 255, S), asked at absolute positions.
  const Index q0 = S - 512, k0 = q0 - 255;
  emask::attention_options shard = opt;
  shard.q_offset = q0;
  shard.k_offset = k0;
  mat part(512, D);
  emask::masked_attention(q.bottomRows(512), k.bottomRows(S - k0), v.bottomRows(S - k0), mask, part,
                          shard);
  const double shard_diff = static_cast<double>((part - out.bottomRows(512)).cwiseAbs().maxCoeff());
  std::cout << "last 512 rows as a shard (q_offset " << q0 << ", k_offset " << k0
            << "): max |shard - full| = " << shard_diff << "\n";
  std::cout << "max |tiled - double reference| over 6 sampled rows = " << worst
            << (worst < 1e-4 ? " (ok)" : " (MISMATCH)") << "\n";
  return worst < 1e-4 && shard_diff < 1e-5 ? 0 : 1;
}
