// A one-layer causal attention model learns a delayed-copy task, trained through emask's tiled
// attention forward and backward passes.
//
// The task: each sequence holds random tokens x_0 .. x_{n-1} (n differs per sequence, so the
// batch is right-padded); at position t >= lag the model must output x_{t - lag}. One head can
// do it by attending from position t to position t - lag, which it must learn from positional
// embeddings. Positions t < lag and the padding are ignored by the loss (ignore index).
//
// The model: embeddings E[token] + P[position] -> Q, K, V projections (one head) -> causal,
// key-padded masked_attention (emask::tiled) -> output projection -> logits, cross-entropy.
// The backward pass chains masked_cross_entropy_grad, masked_attention_backward (FlashAttention-2
// style, recomputing the scores from the saved log-sum-exp) and the projections; Adam updates.
//
//   attention_learner              short run (the ctest case): asserts the loss drops
//   attention_learner --full       the run documented in docs/training.md
//   attention_learner --png FILE   also draws the loss and accuracy curves
//   attention_learner --seed N     another seed for the initialization and the data
//
// ctest-args: --short
// ctest-pass: RESULT: loss .* PASS
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <emask/kernels/attention.hpp>
#include <emask/kernels/attention_backward.hpp>
#include <emask/masks/causal.hpp>
#include <emask/masks/padding.hpp>
#include <emask/seq/loss.hpp>
#include <emask/seq/loss_grad.hpp>

#include "line_plot.hpp"

using emask::Index;
using mat = emask::row_matrix<float>;

namespace {

constexpr Index vocab = 8;  // content tokens 0 .. 7; the padding token is 8
constexpr Index pad_token = vocab;
constexpr Index lag = 3;  // target at t is the token at t - lag
constexpr Index max_len = 24;
constexpr Index min_len = 12;
constexpr Index dim = 32;

/// SplitMix64: a tiny portable generator for the data and the initialization (the library's own
/// random masks use Philox; an example only needs reproducible numbers).
struct splitmix {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  Index below(Index n) { return static_cast<Index>(next() % static_cast<std::uint64_t>(n)); }
  float normal() {  // Box-Muller
    const double u1 = uniform() + 1e-300, u2 = uniform();
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
};

/// A parameter with its Adam moments.
struct param {
  mat w, g, m, v;
  param(Index r, Index c, float stddev, splitmix& rng)
      : w(r, c), g(mat::Zero(r, c)), m(mat::Zero(r, c)), v(mat::Zero(r, c)) {
    for (Index i = 0; i < w.size(); ++i) w.data()[i] = stddev * rng.normal();
  }
  void adam(float lr, int step) {
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g.cwiseAbs2();
    const float c1 = 1 - std::pow(b1, static_cast<float>(step));
    const float c2 = 1 - std::pow(b2, static_cast<float>(step));
    w.array() -= lr * (m.array() / c1) / ((v.array() / c2).sqrt() + eps);
  }
};

struct batch {
  std::vector<Index> lengths;
  std::vector<Index> tokens;                // [b * max_len + t]
  emask::row_matrix<std::int64_t> targets;  // [b, t], -100 = ignored
};

batch make_batch(Index b, splitmix& rng) {
  batch x;
  x.lengths.resize(static_cast<std::size_t>(b));
  x.tokens.assign(static_cast<std::size_t>(b * max_len), pad_token);
  x.targets = emask::row_matrix<std::int64_t>::Constant(b, max_len, -100);
  for (Index i = 0; i < b; ++i) {
    const Index n = min_len + rng.below(max_len - min_len + 1);
    x.lengths[static_cast<std::size_t>(i)] = n;
    for (Index t = 0; t < n; ++t)
      x.tokens[static_cast<std::size_t>(i * max_len + t)] = rng.below(vocab);
    for (Index t = lag; t < n; ++t)
      x.targets(i, t) = x.tokens[static_cast<std::size_t>(i * max_len + t - lag)];
  }
  return x;
}

struct model {
  param emb, pos, wq, wk, wv, wo, bo;
  explicit model(splitmix& rng)
      : emb(vocab + 1, dim, 1.0f, rng),
        pos(max_len, dim, 1.0f, rng),
        wq(dim, dim, 1.0f / std::sqrt(float(dim)), rng),
        wk(dim, dim, 1.0f / std::sqrt(float(dim)), rng),
        wv(dim, dim, 1.0f / std::sqrt(float(dim)), rng),
        wo(dim, vocab, 1.0f / std::sqrt(float(dim)), rng),
        bo(1, vocab, 0.0f, rng) {}
  std::vector<param*> all() { return {&emb, &pos, &wq, &wk, &wv, &wo, &bo}; }
};

struct step_result {
  double loss = 0;
  double accuracy = 0;
};

/// One forward and backward pass over \p x; leaves the gradients in the parameters.
step_result train_step(model& net, const batch& x, Index b) {
  const Index rows = b * max_len;
  mat in(rows, dim);
  for (Index r = 0; r < rows; ++r)
    in.row(r) = net.emb.w.row(x.tokens[static_cast<std::size_t>(r)]) + net.pos.w.row(r % max_len);
  const mat q = in * net.wq.w, k = in * net.wk.w, v = in * net.wv.w;
  mat att(rows, dim);
  mat lse(b, max_len);
  const auto mask = emask::causal() & emask::key_padding::from_lengths(x.lengths, max_len);
  const auto view = [&](const mat& m) { return emask::view_bhld(m.data(), b, 1, max_len, dim); };
  // One thread: the problem is tiny (32 sequences of 24 tokens), threads would only wait.
  emask::attention_options opt;
  opt.threads = 1;
  emask::masked_attention(emask::tiled, view(q), view(k), view(v), mask,
                          emask::view_bhld(att.data(), b, 1, max_len, dim), lse, opt);
  const mat logits = (att * net.wo.w).rowwise() + net.bo.w.row(0);

  step_result res;
  const emask::loss_result<float> loss = emask::masked_cross_entropy(logits, x.targets);
  res.loss = loss.value;
  Index right = 0;
  for (Index r = 0; r < rows; ++r) {
    const std::int64_t y = x.targets(r / max_len, r % max_len);
    if (y < 0) continue;
    Index best = 0;
    logits.row(r).maxCoeff(&best);
    right += best == y;
  }
  res.accuracy = loss.counted ? double(right) / double(loss.counted) : 0.0;

  // Backward.
  const mat dlogits = emask::masked_cross_entropy_grad(logits, x.targets);
  net.wo.g = att.transpose() * dlogits;
  net.bo.g = dlogits.colwise().sum();
  const mat datt = dlogits * net.wo.w.transpose();
  mat dq(rows, dim), dk(rows, dim), dv(rows, dim);
  emask::masked_attention_backward(emask::tiled, view(q), view(k), view(v), mask, opt, view(att),
                                   lse, view(datt), emask::view_bhld(dq.data(), b, 1, max_len, dim),
                                   emask::view_bhld(dk.data(), b, 1, max_len, dim),
                                   emask::view_bhld(dv.data(), b, 1, max_len, dim));
  net.wq.g = in.transpose() * dq;
  net.wk.g = in.transpose() * dk;
  net.wv.g = in.transpose() * dv;
  const mat din = dq * net.wq.w.transpose() + dk * net.wk.w.transpose() + dv * net.wv.w.transpose();
  net.emb.g.setZero();
  net.pos.g.setZero();
  for (Index r = 0; r < rows; ++r) {
    net.emb.g.row(x.tokens[static_cast<std::size_t>(r)]) += din.row(r);
    net.pos.g.row(r % max_len) += din.row(r);
  }
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  bool full = false;
  std::uint64_t seed = 0;
  std::string png;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--full") {
      full = true;
    } else if (a == "--short") {
      full = false;
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--png" && i + 1 < argc) {
      png = argv[++i];
    } else {
      std::fprintf(stderr, "usage: attention_learner [--short | --full] [--seed N] [--png FILE]\n");
      return 2;
    }
  }
  Eigen::setNbThreads(1);  // the projections are small: Eigen's threads would only wait
  const int steps = full ? 600 : 150;
  const Index b = 32;
  splitmix rng{seed * 0x9E3779B97F4A7C15ull + 1};
  model net(rng);
  std::vector<double> xs, losses, accs;
  double first = 0, last = 0, last_acc = 0;
  const int report = full ? 20 : 25;
  double window_loss = 0, window_acc = 0;
  int window = 0;
  for (int step = 1; step <= steps; ++step) {
    const batch x = make_batch(b, rng);
    const step_result r = train_step(net, x, b);
    for (param* p : net.all()) p->adam(full ? 3e-3f : 1e-2f, step);
    if (step == 1) first = r.loss;
    window_loss += r.loss;
    window_acc += r.accuracy;
    ++window;
    if (step % report == 0) {
      last = window_loss / window;
      last_acc = window_acc / window;
      std::printf("step %5d  loss %.4f  accuracy %.3f\n", step, last, last_acc);
      xs.push_back(step);
      losses.push_back(last);
      accs.push_back(last_acc);
      window_loss = window_acc = 0;
      window = 0;
    }
  }
  if (!png.empty()) {
    const std::vector<plot::series> s = {{xs, losses, {31, 119, 180}}, {xs, accs, {214, 39, 40}}};
    if (!plot::write_line_plot(png, s, 0.0, std::ceil(first))) {
      std::fprintf(stderr, "could not write %s\n", png.c_str());
      return 1;
    }
    std::printf("wrote %s (blue: loss, red: accuracy)\n", png.c_str());
  }
  // Chance is log(8) = 2.08 nats; the short run must at least halve the loss.
  const bool pass = last < 0.5 * first;
  std::printf("RESULT: loss %.3f -> %.3f, accuracy %.3f: %s\n", first, last, last_acc,
              pass ? "PASS" : "FAIL");
  return pass ? 0 : 1;
}
