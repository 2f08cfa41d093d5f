// The two kinds of attention sink, by their two names:
// - sink_window(n_sink, window), StreamingLLM's mask: the first tokens stay visible to every
//   query beside a sliding window, so a long generation keeps its "sink" tokens;
// - options.sink_logit, gpt-oss's learned sink: one logit per head that joins the softmax
//   denominator as a key with no value, so a head can put its attention "nowhere".
// One decode step over a 64-token cache with both, checked against a plain loop; then the
// share of each head's attention that went to its learned sink.
// ctest-pass: kept keys of the last query: 4 sinks \+ 8 in the window = 12
// ctest-pass: max \|decode - plain loop\| = [0-9.e-]+ \(ok\)
// ctest-pass: head 3: [0-9.]+ of the attention went to the learned sink
#include <cmath>
#include <emask/emask.hpp>
#include <iostream>
#include <vector>

using emask::Index;
using mat = emask::row_matrix<float>;

int main() {
  const Index H = 4, D = 16, T = 64, n_sink = 4, window = 8;
  const std::vector<double> sink_logit = {-4.0, 0.0, 2.0, 6.0};  // learned, one per head
  mat q(H, D), k(H * T, D), v(H * T, D);  // one query per head; the cache is [H, T, D]
  for (Index i = 0; i < q.size(); ++i) q.data()[i] = std::sin(0.37f * static_cast<float>(i));
  for (Index i = 0; i < k.size(); ++i) k.data()[i] = std::cos(0.11f * static_cast<float>(i));
  for (Index i = 0; i < v.size(); ++i) v.data()[i] = std::sin(0.05f * static_cast<float>(i) + 1.f);

  // The query is the newest token, position T - 1.
  const auto mask = emask::sink_window(n_sink, window).offset(T - 1, 0);
  Index kept = 0;
  for (Index j = 0; j < T; ++j) kept += mask.keep(0, 0, 0, j) ? 1 : 0;
  std::cout << "kept keys of the last query: " << n_sink << " sinks + " << window
            << " in the window = " << kept << "\n";

  emask::attention_options opt;
  opt.sink_logit = sink_logit;
  mat out(H, D);
  emask::row_matrix<float> lse(H, 1);
  emask::masked_attention(emask::decode, emask::view_bhld<const float>(q.data(), 1, H, 1, D),
                          emask::view_bhld<const float>(k.data(), 1, H, T, D),
                          emask::view_bhld<const float>(v.data(), 1, H, T, D), mask,
                          emask::view_bhld(out.data(), 1, H, 1, D), lse, opt);

  // The plain loop: softmax over the kept keys and the sink, the sink with a zero value row.
  float worst = 0;
  for (Index h = 0; h < H; ++h) {
    const double s = sink_logit[static_cast<std::size_t>(h)];
    std::vector<double> score(static_cast<std::size_t>(T));
    double mx = s;
    for (Index j = 0; j < T; ++j) {
      if (!mask.keep(0, h, 0, j)) continue;
      score[static_cast<std::size_t>(j)] =
          q.row(h).cast<double>().dot(k.row(h * T + j).cast<double>()) / std::sqrt(double(D));
      mx = std::max(mx, score[static_cast<std::size_t>(j)]);
    }
    double sum = std::exp(s - mx);
    for (Index j = 0; j < T; ++j)
      if (mask.keep(0, h, 0, j)) sum += std::exp(score[static_cast<std::size_t>(j)] - mx);
    Eigen::RowVectorXd want = Eigen::RowVectorXd::Zero(D);
    for (Index j = 0; j < T; ++j)
      if (mask.keep(0, h, 0, j))
        want += std::exp(score[static_cast<std::size_t>(j)] - mx) / sum *
                v.row(h * T + j).cast<double>();
    worst = std::max(worst, (out.row(h).cast<double>() - want).cwiseAbs().cast<float>().maxCoeff());
  }
  const bool ok = worst <= 1e-5f;
  std::cout << "max |decode - plain loop| = " << worst << (ok ? " (ok)" : " (MISMATCH)") << "\n";
  // The sink's share is exp(s - lse): the lse includes the sink.
  for (Index h = 0; h < H; ++h)
    std::cout << "head " << h << ": "
              << std::exp(static_cast<float>(sink_logit[static_cast<std::size_t>(h)]) - lse(h, 0))
              << " of the attention went to the learned sink\n";
  return ok ? 0 : 1;
}
