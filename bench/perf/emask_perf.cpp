// emask_perf: every kernel against this machine's own limits, measured beside it in one process.
//
//   emask_perf                 the CI check (`bash .ci/run perf`): targets of issue 11, each
//                              failing only when 2.5x worse than its target (softmax: 4x), retried
//                              3 times
//   emask_perf --full          also the variants and shapes the docs chart (naive, fused, log)
//   emask_perf --json FILE     writes every measurement (tools/bench_report.py turns it into the
//                              README table, docs/benchmarks.md and the charts)
//
// Limits, measured in the same run: a register-resident FMA loop (GFLOP/s, 1 and 2 threads),
// a memcpy of the scores (the softmax comparison), one read of K and V (decode), a pass that
// reads and writes the tokens (MLM). Times are the minimum of several repetitions (a loaded
// machine only adds time); each check re-measures its limit right beside its kernel.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
// GCC 12 with -march=native: false -Wmaybe-uninitialized inside avx512fintrin.h (PR 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <emask/core/materialize.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/kernels/attention_backward.hpp>
#include <emask/kernels/kv_cache.hpp>
#include <emask/kernels/kv_prefill.hpp>
#include <emask/kernels/softmax.hpp>
#include <emask/masks/block_topk.hpp>
#include <emask/masks/causal.hpp>
#include <emask/masks/padding.hpp>
#include <emask/masks/tree.hpp>
#include <emask/masks/window.hpp>
#include <emask/random/block_masks.hpp>
#include <emask/random/diffusion.hpp>
#include <emask/random/mlm.hpp>
#include <emask/reference/attention.hpp>
#include <emask/reference/attention_backward.hpp>
#include <emask/reference/softmax.hpp>
#include <emask/rl/conditional.hpp>
#include <emask/rl/policy.hpp>

#include "../unmasked_sample.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

namespace {

using emask::Index;
using clock_type = std::chrono::steady_clock;

void set_threads(int t) {
#if EMASK_HAS_OPENMP
  omp_set_num_threads(t);
#else
  (void)t;
#endif
}
int max_threads() {
#if EMASK_HAS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct timing {
  double wall_ms = 0;  // minimum over the repetitions
  double cpu_ms = 0;   // process CPU time of that repetition
};

/// One warm-up call, then the fastest of \p reps calls (at least \p min_ms of calls in all).
timing time_of(const std::function<void()>& fn, int reps, double min_ms = 200) {
  fn();
  timing best{1e300, 0};
  double spent = 0;
  for (int r = 0; r < reps || (spent < min_ms && r < 50); ++r) {
    const double c0 = cpu_seconds();
    const auto t0 = clock_type::now();
    fn();
    const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
    const double cms = (cpu_seconds() - c0) * 1e3;
    spent += ms;
    if (ms < best.wall_ms) best = {ms, cms};
  }
  return best;
}

/// Times a kernel and its limit alternately (limit, kernel, limit, kernel, ...) after one
/// warm-up call of each, so both see the same phases of a shared machine (other jobs, clock
/// changes); returns the fastest call of each, in ms: {kernel, limit}.
std::pair<double, double> paired_ms(const std::function<void()>& kernel,
                                    const std::function<void()>& limit, int reps,
                                    double min_ms = 200) {
  const auto ms_of = [](const std::function<void()>& fn) {
    const auto t0 = clock_type::now();
    fn();
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
  };
  limit();
  kernel();
  double best_k = 1e300, best_l = 1e300, spent = 0;
  for (int r = 0; r < reps || (spent < min_ms && r < 50); ++r) {
    const double l = ms_of(limit), k = ms_of(kernel);
    spent += l + k;
    best_l = std::min(best_l, l);
    best_k = std::min(best_k, k);
  }
  return {best_k, best_l};
}

volatile float g_sink = 0;

// ---------------------------------------------------------------- limits
/// A register-resident FMA loop: 12 independent packet accumulators (enough to cover the FMA
/// latency on two pipes), Eigen's widest packet, on \p threads threads.
struct fma_loop {
  int threads = 1;
  static constexpr int accumulators = 12;
  static constexpr long iters = 4000000;

  /// 2 flops per lane per FMA, on every thread.
  double flops() const {
    return 2.0 * accumulators * Eigen::internal::packet_traits<float>::size *
           static_cast<double>(iters) * threads;
  }
  void operator()() const {
#if EMASK_HAS_OPENMP
#pragma omp parallel num_threads(threads)
    body();
#else
    body();
#endif
  }

 private:
  static void body() {
    namespace ei = Eigen::internal;
    using P = typename ei::packet_traits<float>::type;
    P acc[accumulators];
    for (int i = 0; i < accumulators; ++i) acc[i] = ei::pset1<P>(0.001f * static_cast<float>(i));
    const P a = ei::pset1<P>(0.9999999f), b = ei::pset1<P>(1e-7f);
    for (long n = 0; n < iters; ++n) {
      // A recurrence the compiler cannot fold; the accumulators stay in registers.
      for (int i = 0; i < accumulators; ++i) acc[i] = ei::pmadd(acc[i], a, b);
    }
    P s = acc[0];
    for (int i = 1; i < accumulators; ++i) s = ei::padd(s, acc[i]);
    g_sink = g_sink + ei::predux(s);
  }
};

/// GFLOP/s of the FMA loop alone.
double fma_gflops(int threads) {
  const fma_loop loop{threads};
  return loop.flops() / (time_of(loop, 5, 100).wall_ms * 1e-3) * 1e-9;
}

/// Sum of n floats with several packet accumulators: one streaming read.
float read_all(const float* x, Index n) {
  Eigen::Map<const Eigen::ArrayXf> a(x, n);
  return a.sum();
}

// ---------------------------------------------------------------- results
struct result {
  std::string name;        // e.g. softmax-causal-4096/tiled/t1
  std::string group;       // chart group: softmax, attention, decode, rl, mlm
  std::string kind;        // "time_ratio" (kernel / limit time, lower is better) or
                           // "fraction" (share of the FMA loop, higher is better) or
                           // "speedup" (1 thread / 2 threads, higher is better)
  std::string limit;       // what the ratio is against
  double ms = 0;           // kernel time
  double limit_value = 0;  // limit time (ms) or GFLOP/s
  double ratio = 0;
  double target = 0;   // the target (0: none; reported only)
  double fail_at = 0;  // 2.5x worse than target (0: not checked)
  bool checked = false;
  bool pass = true;
  int attempts = 1;
  std::string note;
};

bool better_or_equal(const result& r, double bound) {
  return r.kind == "time_ratio" ? r.ratio <= bound : r.ratio >= bound;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  }
  return "unknown";
}

std::string simd_name() {
#if defined(__AVX512F__)
  return "AVX-512";
#elif defined(__AVX2__)
  return "AVX2";
#elif defined(__AVX__)
  return "AVX";
#elif defined(__SSE2__)
  return "SSE2";
#else
  return "scalar";
#endif
}

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo, float hi) {
  std::vector<float> x(n);
  std::uint64_t s = seed;
  for (auto& e : x) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    e = lo + (hi - lo) * static_cast<float>(static_cast<std::uint32_t>(s >> 40) & 0xFFFFFF) /
                 16777216.0f;
  }
  return x;
}

struct perf_run {
  bool full = false;
  std::vector<result> results;
  double fma1 = 0, fma2 = 0;  // GFLOP/s
  double copy_gbs = 0;        // bytes read + written per second, one thread (memcpy)
  double read_gbs = 0;        // bytes read per second, one thread
  int available = 1;          // threads available (before any set_threads)

  // A checked time ratio of the attention group: fails when 2.5x worse than \p target.
  static result attention_time_ratio(const std::string& name, const std::string& limit,
                                     double target) {
    result r;
    r.name = name;
    r.group = "attention";
    r.kind = "time_ratio";
    r.limit = limit;
    r.checked = true;
    r.target = target;
    r.fail_at = 2.5 * target;
    return r;
  }

  // Runs \p measure (which fills ms, limit_value, ratio) up to 3 times while the check fails.
  void check(result r, const std::function<void(result&)>& measure) {
    for (int a = 1; a <= 3; ++a) {
      measure(r);
      r.attempts = a;
      r.pass = !r.checked || better_or_equal(r, r.fail_at);
      if (r.pass) break;
      std::printf("  .. %s: ratio %.3f beyond %.3f, retrying\n", r.name.c_str(), r.ratio,
                  r.fail_at);
    }
    print(r);
    results.push_back(r);
  }

  // A time-ratio check of \p kernel against \p limit, timed alternately (paired_ms).
  void check_paired(result r, const std::function<void()>& kernel,
                    const std::function<void()>& limit, int reps) {
    check(r, [&](result& o) {
      double limit_ms = 0;
      std::tie(o.ms, limit_ms) = paired_ms(kernel, limit, reps);
      o.limit_value = limit_ms;
      o.ratio = o.ms / limit_ms;
    });
  }

  static void print(const result& r) {
    const char* status = !r.checked ? "info" : (r.pass ? "ok" : "FAIL");
    std::printf("%-34s %9.3f ms  %-30s ratio %7.3f", r.name.c_str(), r.ms, r.limit.c_str(),
                r.ratio);
    if (r.target > 0)
      std::printf("  target %s %.2f (fails %s %.2f)",
                  r.kind == "time_ratio" ? "<=" : ">=", r.target,
                  r.kind == "time_ratio" ? ">" : "<", r.fail_at);
    std::printf("  [%s]%s\n", status, r.attempts > 1 ? " (retried)" : "");
    std::fflush(stdout);
  }

  // ------------------------------------------------------------ softmax vs copy
  void softmax() {
    const Index bh = 8, s = 4096;
    const std::size_t n = static_cast<std::size_t>(bh * s * s);
    std::vector<float> x = random_floats(n, 1, -4.f, 4.f);
    std::vector<float> y(n, 0.f), c(n, 0.f);
    set_threads(1);
    const auto copy = [&] { std::memcpy(c.data(), x.data(), n * sizeof(float)); };
    const auto copy_ms = [&] { return time_of(copy, 5).wall_ms; };
    {
      const double ms = copy_ms();
      copy_gbs = 2.0 * static_cast<double>(n * sizeof(float)) / (ms * 1e-3) * 1e-9;
    }
    const auto causal = emask::causal();
    const auto pad = emask::key_padding::from_lengths({(3 * s) / 4}, s);
    enum class kind { tiled, fused, naive };
    struct variant {
      const char* name;
      kind v;
      bool log;
      bool in_check;
    };
    const variant variants[] = {{"tiled", kind::tiled, false, true},
                                {"fused", kind::fused, false, true},
                                {"log-tiled", kind::tiled, true, true},
                                {"naive", kind::naive, false, false}};
    // One call of the variant's entry point (the tag picks the kernel at compile time).
    const auto softmax = [](kind v, bool log, const auto& xs, const auto& mask, auto& ys,
                            const emask::softmax_options& so) {
      const auto call = [&](auto tag) {
        if (log)
          emask::masked_log_softmax(tag, xs, mask, ys, so);
        else
          emask::masked_softmax(tag, xs, mask, ys, so);
      };
      if (v == kind::tiled) call(emask::tiled);
      if (v == kind::fused) call(emask::fused);
      if (v == kind::naive) call(emask::reference::naive);
    };
    for (int shape = 0; shape < 2; ++shape) {
      for (const variant& var : variants) {
        if (!var.in_check && !full) continue;
        result r;
        r.name = std::string("softmax-") + (shape == 0 ? "causal" : "pad") + "-4096/" + var.name;
        r.group = "softmax";
        r.kind = "time_ratio";
        r.limit = "memcpy of the scores";
        r.checked = var.in_check;
        r.target = var.in_check ? 1.3 : 0;
        // 4x the target, not 2.5x as the other checks: on an Intel Xeon (AVX-512) the quiet
        // ratios are 1.7-2.9 (the copy is slower and the exp pass relatively dearer than on
        // AMD Zen 5, 1.4-1.9), so 3.25 left 12 % to a loaded machine (a CI run next to a build
        // failed pad log-tiled at 3.8). 5.2 still fails the 9.6-13.9x regression of 9c449c8.
        r.fail_at = 4.0 * r.target;
        check(r, [&](result& o) {
          emask::softmax_options so;
          so.scale = 0.125;
          const auto run = [&] {
            for (Index i = 0; i < bh; ++i) {
              const Eigen::Map<const emask::row_matrix<float>> xs(x.data() + i * s * s, s, s);
              Eigen::Map<emask::row_matrix<float>> ys(y.data() + i * s * s, s, s);
              if (shape == 0)
                softmax(var.v, var.log, xs, causal, ys, so);
              else
                softmax(var.v, var.log, xs, pad, ys, so);
            }
          };
          if (var.in_check) {
            std::tie(o.ms, o.limit_value) = paired_ms(run, copy, 5);
          } else {
            // The naive variant allocates and frees 64 MiB per slice; a copy timed right after
            // it ran up to 17x slower (page reclaim), so its copy is timed on its own.
            o.ms = time_of(run, 2).wall_ms;
            o.limit_value = copy_ms();
          }
          o.ratio = o.ms / o.limit_value;
        });
      }
    }
  }

  // ------------------------------------------------------------ attention vs the FMA loop
  struct attn_data {
    Index h, lq, lk, d;
    std::vector<float> q, k, v, o;
    attn_data(Index h_, Index lq_, Index lk_, Index d_)
        : h(h_),
          lq(lq_),
          lk(lk_),
          d(d_),
          q(random_floats(static_cast<std::size_t>(h * lq * d), 11, -1.f, 1.f)),
          k(random_floats(static_cast<std::size_t>(h * lk * d), 12, -1.f, 1.f)),
          v(random_floats(static_cast<std::size_t>(h * lk * d), 13, -1.f, 1.f)),
          o(static_cast<std::size_t>(h * lq * d), 0.f) {}
    template <class Mask, class Variant = emask::tiled_t>
    void run(const Mask& mask, emask::attention_options opt, emask::attention_workspace<float>& ws,
             Variant variant = emask::tiled) {
      using emask::view_bhld;
      emask::masked_attention(variant, view_bhld<const float>(q.data(), 1, h, lq, d),
                              view_bhld<const float>(k.data(), 1, h, lk, d),
                              view_bhld<const float>(v.data(), 1, h, lk, d), mask,
                              view_bhld(o.data(), 1, h, lq, d), opt, &ws);
    }
  };

  /// Useful multiply-add flops: 4 D per kept (query, key) pair and head (Q K^T and P V).
  template <class Mask>
  static double work_flops(const Mask& m, Index h, Index lq, Index lk, Index d) {
    double pairs = 0;
    for (Index q = 0; q < lq; ++q) pairs += static_cast<double>(m.keys(0, 0, q, 0, lk).size());
    return pairs * 4.0 * static_cast<double>(d) * static_cast<double>(h);
  }

  /// Score modifiers (issue 14): causal S = 4096, D = 64, 8 heads, one thread. ALiBi and a
  /// per-head bias as modifiers against the same call without; a dense [H, S, S] bias against
  /// a copy of the bias plus the call without.
  void score_mods(attn_data& a, emask::attention_workspace<float>& ws) {
    const auto causal = emask::causal();
    emask::attention_options plain;
    plain.threads = 1;
    set_threads(1);
    struct cheap {
      const char* name;
      emask::score_mod mod;
    };
    const cheap cheap_mods[] = {
        {"alibi-mod", emask::alibi_bias(emask::alibi_slopes(a.h))},
        {"head-bias", emask::head_bias(std::vector<double>(static_cast<std::size_t>(a.h), 0.5))}};
    for (const cheap& c : cheap_mods) {
      result r = attention_time_ratio(std::string("attn-causal-4096/d64/") + c.name + "/t1",
                                      "the same call without it", 1.15);
      emask::attention_options opt = plain;
      opt.score_mod = c.mod;
      check_paired(
          r, [&] { a.run(causal, opt, ws); }, [&] { a.run(causal, plain, ws); }, 3);
    }
    const std::size_t n = static_cast<std::size_t>(a.h * a.lq * a.lk);
    const std::vector<float> bias = random_floats(n, 17, -1.f, 1.f);
    std::vector<float> copy(n, 0.f);
    emask::attention_options opt = plain;
    opt.score_mod = emask::additive_bias(bias.data(), 1, a.h, a.lq, a.lk);
    result r = attention_time_ratio("attn-causal-4096/d64/dense-bias/t1",
                                    "copy of the bias + call without", 1.3);
    check_paired(
        r, [&] { a.run(causal, opt, ws); },
        [&] {
          std::memcpy(copy.data(), bias.data(), n * sizeof(float));
          a.run(causal, plain, ws);
        },
        3);
  }

  void attention() {
    const Index h = 8, s = 4096;
    for (Index d : {Index(64), Index(128)}) {
      attn_data a(h, s, s, d);
      emask::attention_workspace<float> ws;
      const auto causal = emask::causal();
      const double work = work_flops(causal, h, s, s, d);
      for (int threads : {1, 2}) {
        if (threads > 1 && d != 64) continue;
        result r;
        r.name = "attn-causal-4096/d" + std::to_string(d) + "/tiled/t" + std::to_string(threads);
        r.group = "attention";
        r.kind = "fraction";
        r.limit = threads == 1 ? "FMA loop, 1 thread" : "FMA loop, 2 threads";
        r.checked = true;
        r.target = 0.75;
        r.fail_at = r.target / 2.5;
        check(r, [&](result& o) {
          emask::attention_options opt;
          opt.threads = threads;
          set_threads(threads);
          const fma_loop loop{threads};
          double loop_ms = 0;
          std::tie(o.ms, loop_ms) = paired_ms([&] { a.run(causal, opt, ws); }, loop, 3);
          o.limit_value = loop.flops() / (loop_ms * 1e-3) * 1e-9;
          o.ratio = work / (o.ms * 1e-3) * 1e-9 / o.limit_value;
          o.note = std::to_string(static_cast<int>(work / (o.ms * 1e-3) * 1e-9)) + " GFLOP/s";
        });
      }
      if (d == 64)
        speedup(
            "attn-causal-4096/d64/tiled/speedup", 1.85,
            [&](int threads) {
              emask::attention_options opt;
              opt.threads = threads;
              a.run(causal, opt, ws);
            },
            2);
      if (d == 64) {
        // Window: time at most 1.5x (its work / causal work) x causal time.
        const auto window = emask::sliding_window(255, 0);
        const double wwork = work_flops(window, h, s, s, d);
        result r =
            attention_time_ratio("attn-window-4096/d64/tiled/t1", "causal time x work ratio", 1.5);
        check(r, [&](result& o) {
          emask::attention_options opt;
          opt.threads = 1;
          set_threads(1);
          double causal_ms = 0;
          std::tie(o.ms, causal_ms) =
              paired_ms([&] { a.run(window, opt, ws); }, [&] { a.run(causal, opt, ws); }, 3);
          o.limit_value = causal_ms * wwork / work;
          o.ratio = o.ms / o.limit_value;
        });
        score_mods(a, ws);
        if (full) {
          const auto pad = emask::key_padding::from_lengths({(3 * s) / 4}, s);
          const double pwork = work_flops(pad, h, s, s, d);
          result p;
          p.name = "attn-pad-4096/d64/tiled/t1";
          p.group = "attention";
          p.kind = "fraction";
          p.limit = "FMA loop, 1 thread";
          check(p, [&](result& o) {
            emask::attention_options opt;
            opt.threads = 1;
            set_threads(1);
            const fma_loop loop{1};
            double loop_ms = 0;
            std::tie(o.ms, loop_ms) = paired_ms([&] { a.run(pad, opt, ws); }, loop, 2);
            o.limit_value = loop.flops() / (loop_ms * 1e-3) * 1e-9;
            o.ratio = pwork / (o.ms * 1e-3) * 1e-9 / o.limit_value;
          });
        }
      }
    }
    if (full) {
      // The naive variant at S = 2048 (64 MiB of scores per head at 4096).
      const Index s2 = 2048;
      attn_data a(h, s2, s2, 64);
      emask::attention_workspace<float> ws;
      const auto causal = emask::causal();
      const double work = work_flops(causal, h, s2, s2, 64);
      for (const bool naive : {true, false}) {
        result r;
        r.name = std::string("attn-causal-2048/d64/") + (naive ? "naive" : "tiled") + "/t1";
        r.group = "attention";
        r.kind = "fraction";
        r.limit = "FMA loop, 1 thread";
        check(r, [&](result& o) {
          emask::attention_options opt;
          opt.threads = 1;
          set_threads(1);
          const fma_loop loop{1};
          double loop_ms = 0;
          std::tie(o.ms, loop_ms) = paired_ms(
              [&] {
                if (naive)
                  a.run(causal, opt, ws, emask::reference::naive);
                else
                  a.run(causal, opt, ws);
              },
              loop, 2);
          o.limit_value = loop.flops() / (loop_ms * 1e-3) * 1e-9;
          o.ratio = work / (o.ms * 1e-3) * 1e-9 / o.limit_value;
        });
      }
    }
  }

  /// The masks of issue 15 against their dense-masked equivalents, one thread: causal with a
  /// learned sink logit against the call without; a speculative-decoding tree (T = 64 draft
  /// tokens over P = 4096) against the same pattern as a bool keep-matrix; top-k block selection
  /// at S = 8192 (8 blocks of 64 per query block) against the same pattern as a bool
  /// keep-matrix (tiles answered by scanning it) and as an additive mask (every tile computed,
  /// as PyTorch SDPA does with attn_mask).
  void mask_wave() {
    const Index h = 8, d = 64;
    const auto masks_group = [](result r) {
      r.group = "sparse masks";
      return r;
    };
    emask::attention_options plain;
    plain.threads = 1;
    set_threads(1);
    emask::attention_workspace<float> ws;
    {
      attn_data a(h, 4096, 4096, d);
      const auto causal = emask::causal();
      emask::attention_options opt = plain;
      opt.sink_logit = std::vector<double>(static_cast<std::size_t>(h), 0.5);
      result r = masks_group(attention_time_ratio("attn-causal-4096/d64/sink-logit/t1",
                                                  "the same call without it", 1.1));
      check_paired(
          r, [&] { a.run(causal, opt, ws); }, [&] { a.run(causal, plain, ws); }, 3);
    }
    {
      const Index T = 64, P = 4096;
      std::vector<emask::Index> parents(static_cast<std::size_t>(T));
      for (Index i = 0; i < T; ++i)  // 4 chains of 16 hanging off one root
        parents[static_cast<std::size_t>(i)] = i == 0 ? -1 : (i <= 4 ? 0 : i - 4);
      const emask::tree_mask tree(parents, P);
      const emask::bool_matrix keep = emask::materialize(tree, T, P + T);
      attn_data a(h, T, P + T, d);
      result r = masks_group(attention_time_ratio("attn-tree-64x4160/d64/tiled/t1",
                                                  "same pattern as bool_matrix", 1.0));
      check_paired(
          r, [&] { a.run(tree, plain, ws); }, [&] { a.run(keep, plain, ws); }, 5);
    }
    {
      const Index S = 8192, bs = 64, nb = S / bs, k = 8;
      const std::vector<float> gate =
          random_floats(static_cast<std::size_t>(nb * nb), 23, -1.f, 1.f);
      const Eigen::Map<const emask::row_matrix<float>> scores(gate.data(), nb, nb);
      const emask::block_topk topk = emask::block_topk::from_scores(scores, S, S, k, bs);
      const emask::bool_matrix keep = emask::materialize(topk, S, S);
      attn_data a(h, S, S, d);
      emask::attention_options opt = plain;
      opt.tile_q = bs;
      opt.tile_k = bs;
      // The bool matrix's own tile scan already skips the unchosen blocks: the block lists save
      // that scan (S^2 bytes per head), so this ratio is bounded by compute / (compute + scan).
      result r = masks_group(attention_time_ratio("attn-topk-8192/d64/vs-bool/t1",
                                                  "same pattern as bool_matrix", 0.5));
      check_paired(
          r, [&] { a.run(topk, opt, ws); }, [&] { a.run(keep, opt, ws); }, 3);
      const emask::additive_mask<float> bias = emask::materialize_additive<float>(topk, S, S);
      // The target: at least 5x faster than the dense-masked equivalent.
      result ra = masks_group(attention_time_ratio("attn-topk-8192/d64/vs-additive/t1",
                                                   "same pattern as additive_mask", 0.2));
      check_paired(
          ra, [&] { a.run(topk, opt, ws); }, [&] { a.run(bias, opt, ws); }, 1);
    }
  }

  // ------------------------------------------------------------ decode vs one read of K and V
  void decode() {
    const Index h = 8, lk = 4096, d = 64;
    attn_data a(h, 1, lk, d);
    emask::attention_workspace<float> ws;
    const auto mask = emask::causal::bottom_right(1, lk);
    const auto read = [&] {
      g_sink = g_sink + read_all(a.k.data(), static_cast<Index>(a.k.size())) +
               read_all(a.v.data(), static_cast<Index>(a.v.size()));
    };
    const auto read_ms = [&] { return time_of(read, 20, 50).wall_ms; };
    {
      const double ms = read_ms();
      read_gbs =
          static_cast<double>((a.k.size() + a.v.size()) * sizeof(float)) / (ms * 1e-3) * 1e-9;
    }
    for (int threads : {1, 2}) {
      result r;
      r.name = "attn-decode-4096/d64/decode/t" + std::to_string(threads);
      r.group = "decode";
      r.kind = "time_ratio";
      r.limit = "one read of K and V";
      r.checked = threads == 1;
      r.target = threads == 1 ? 1.3 : 0;
      r.fail_at = 2.5 * r.target;
      check(r, [&](result& o) {
        emask::attention_options opt;
        opt.threads = threads;
        set_threads(threads);
        std::tie(o.ms, o.limit_value) =
            paired_ms([&] { a.run(mask, opt, ws, emask::decode); }, read, 20, 50);
        set_threads(1);
        o.ratio = o.ms / o.limit_value;
      });
    }
    speedup(
        "attn-decode-4096/d64/decode/speedup", 1.8,
        [&](int threads) {
          emask::attention_options opt;
          opt.threads = threads;
          a.run(mask, opt, ws, emask::decode);
        },
        20);
  }

  /// 1-thread time / 2-thread time of \p run(threads), measured alternately.
  void speedup(const std::string& name, double target, const std::function<void(int)>& run,
               int reps) {
    result sp;
    sp.name = name;
    sp.group = "threads";
    sp.kind = "speedup";
    sp.limit = "1 thread / 2 threads";
    sp.checked = true;
    sp.target = target;
    sp.fail_at = target / 2.5;
    check(sp, [&](result& o) {
      std::tie(o.ms, o.limit_value) = paired_ms([&] { run(2); }, [&] { run(1); }, reps, 50);
      o.ratio = o.limit_value / o.ms;
    });
  }

  // ------------------------------------------------------------ RL masked sampling
  void rl() {
    const Index rows = 4096, actions = 512;
    emask::row_matrix<float> logits(rows, actions);
    const std::vector<float> xs =
        random_floats(static_cast<std::size_t>(rows * actions), 21, -3.f, 3.f);
    std::memcpy(logits.data(), xs.data(), xs.size() * sizeof(float));
    emask::bool_matrix legal(rows, actions);
    std::uint64_t st = 99;
    for (Index b = 0; b < rows; ++b)
      for (Index a = 0; a < actions; ++a) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        legal(b, a) = ((st >> 33) & 1) != 0;
      }
    for (Index b = 0; b < rows; ++b) legal(b, b % actions) = true;
    const emask::action_mask mask = emask::action_mask::discrete(legal);
    emask::row_matrix<float> p(rows, actions);
    set_threads(1);
    result r;
    r.name = "rl-masked-sample-4096x512/t1";
    r.group = "rl";
    r.kind = "time_ratio";
    r.limit = "unmasked softmax + sample";
    r.checked = true;
    r.target = 1.5;
    r.fail_at = 2.5 * r.target;
    std::uint64_t step = 0;
    check(r, [&](result& o) {
      std::tie(o.ms, o.limit_value) = paired_ms(
          [&] {
            g_sink = g_sink + float(emask::masked_sample(logits, mask, {7, step++})(0, 0));
          },
          [&] {
            g_sink = g_sink + float(emask_bench::unmasked_sample(logits, {7, step++}, p)(0, 0));
          },
          5);
      o.ratio = o.ms / o.limit_value;
    });
  }

  // ------------------------------------------------------------ conditional action heads
  // Three heads of 16 values whose legal sets depend on the earlier choices (a shared lookup
  // table, about half the values legal per prefix) against the independent MultiDiscrete sampler
  // on the same logits with a mask of the same density. Issue 19: at most 2x.
  void rl_conditional() {
    const Index rows = 4096, n = 16;
    const emask::action_space space = emask::action_space::multi_discrete({n, n, n});
    emask::row_matrix<float> logits(rows, 3 * n);
    const std::vector<float> xs =
        random_floats(static_cast<std::size_t>(rows * 3 * n), 23, -3.f, 3.f);
    std::memcpy(logits.data(), xs.data(), xs.size() * sizeof(float));
    std::uint64_t st = 5;
    const auto coin = [&st] {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      return ((st >> 33) & 1) != 0;
    };
    emask::conditional_table table = emask::conditional_table::shared(space);
    for (Index i = 0; i < 3; ++i) {
      auto legal = table.legal(0, i);
      for (Index p = 0; p < legal.rows(); ++p) {
        for (Index a = 0; a < n; ++a) legal(p, a) = coin();
        legal(p, p % n) = true;
      }
    }
    emask::bool_matrix flat(rows, 3 * n);
    for (Index b = 0; b < rows; ++b) {
      for (Index j = 0; j < 3 * n; ++j) flat(b, j) = coin();
      for (Index i = 0; i < 3; ++i) flat(b, i * n + b % n) = true;
    }
    const emask::action_mask independent = emask::action_mask::from_array(space, flat);
    for (int t : {1, 2}) {
      if (t > available) continue;
      set_threads(t);
      result r;
      r.name = "rl-conditional-4096x3x16/t" + std::to_string(t);
      r.group = "rl";
      r.kind = "time_ratio";
      r.limit = "independent MultiDiscrete sample";
      r.checked = true;
      r.target = 2.0;
      r.fail_at = 2.5 * r.target;
      std::uint64_t step = 0;
      check_paired(
          r,
          [&] {
            g_sink = g_sink + float(emask::conditional_sample(logits, table, {7, step++})(0, 0));
          },
          [&] {
            g_sink = g_sink + float(emask::masked_sample(logits, independent, {7, step++})(0, 0));
          },
          10);
    }
    set_threads(1);
  }

  // ------------------------------------------------------------ BERT MLM masking
  void mlm() {
    const Index b = 256, l = 512;
    emask::token_matrix ids(b, l), work(b, l), labels(b, l);
    std::uint32_t x = 1;
    for (Index i = 0; i < b; ++i) {
      ids(i, 0) = 101;
      for (Index t = 1; t < l - 1; ++t) {
        x = x * 1664525u + 1013904223u;
        ids(i, t) = 1000 + static_cast<std::int32_t>((x >> 8) % 29000u);
      }
      ids(i, l - 1) = 102;
    }
    emask::mlm_options o;
    o.vocabulary = emask::special_tokens(30522, {0, 100, 101, 102, 103});
    o.mask_id = 103;
    set_threads(1);
    result r;
    r.name = "mlm-bert-256x512/t1";
    r.group = "mlm";
    r.kind = "time_ratio";
    r.limit = "read + write of the tokens";
    r.checked = true;
    // No target in the issue: a guard at about the ratio measured when the perf row landed
    // (14-18 on an AMD EPYC Zen 5: one Philox draw per token against a vectorized copy),
    // failing at 2.5x of it like the others.
    r.target = 20.0;
    r.fail_at = 2.5 * r.target;
    std::uint64_t sample = 0;
    check(r, [&](result& res) {
      std::tie(res.ms, res.limit_value) = paired_ms(
          [&] {
            work = ids;
            emask::mlm_mask_inplace(work, labels, o, {42, sample});
            sample += static_cast<std::uint64_t>(b);
          },
          [&] {
            work = ids;
            labels = work;
            g_sink = g_sink + float(labels(b - 1, l - 1));
          },
          10, 100);
      res.ratio = res.ms / res.limit_value;
      const double tokens = static_cast<double>(b * l);
      res.note = std::to_string(static_cast<int>(tokens / (res.ms * 1e-3) * 1e-6)) + " M tokens/s";
    });
  }

  // ------------------------------------------------------------ training-recipe masks (issue 19)
  void recipes() {
    set_threads(1);
    {
      // LLaDA noising against the BERT masker on the same 64 x 4096 tokens, one core. The issue
      // asks for 150 M tokens/s "where the BERT masker does 216 M": a time ratio of 216 / 150.
      const Index b = 64, l = 4096;
      emask::token_matrix ids(b, l), work(b, l), labels(b, l);
      std::uint32_t x = 7;
      for (Index i = 0; i < b; ++i)
        for (Index t = 0; t < l; ++t) {
          x = x * 1664525u + 1013904223u;
          ids(i, t) = 1000 + static_cast<std::int32_t>((x >> 8) % 29000u);
        }
      emask::diffusion_options o;
      o.vocab_size = 126464;  // LLaDA's vocabulary and mask id
      o.mask_id = 126336;
      emask::mlm_options m;
      m.vocabulary = emask::special_tokens(30522, {0, 100, 101, 102, 103});
      m.mask_id = 103;
      result r;
      r.name = "diffusion-mask-64x4096/t1";
      r.group = "recipes";
      r.kind = "time_ratio";
      r.limit = "BERT masker, same tokens";
      r.checked = true;
      r.target = 216.0 / 150.0;
      r.fail_at = 2.5 * r.target;
      std::uint64_t sample = 0;
      check(r, [&](result& res) {
        std::tie(res.ms, res.limit_value) = paired_ms(
            [&] {
              emask::diffusion_result d = emask::diffusion_mask(ids, o, {42, sample});
              sample += static_cast<std::uint64_t>(b);
              g_sink = g_sink + d.weight(b - 1, l - 1);
            },
            [&] {
              work = ids;
              emask::mlm_mask_inplace(work, labels, m, {42, sample});
              sample += static_cast<std::uint64_t>(b);
            },
            5, 200);
        res.ratio = res.ms / res.limit_value;
        const double tokens = static_cast<double>(b * l);
        res.note = std::to_string(static_cast<int>(tokens / (res.ms * 1e-3) * 1e-6)) +
                   " M tokens/s (BERT " +
                   std::to_string(static_cast<int>(tokens / (res.limit_value * 1e-3) * 1e-6)) +
                   " M)";
      });
    }
    {
      // BEiT blockwise masks, 14 x 14 patches, 75 masked: the target is an absolute
      // 1 M masks/s per core, so the limit here is 1 us per mask.
      const Index b = 1024;
      result r;
      r.name = "beit-mask-14x14/t1";
      r.group = "recipes";
      r.kind = "time_ratio";
      r.limit = "1 us per mask (1 M masks/s)";
      r.checked = true;
      r.target = 1.0;
      r.fail_at = 2.5 * r.target;
      std::uint64_t sample = 0;
      check(r, [&](result& res) {
        const timing t = time_of(
            [&] {
              emask::patch_grid_mask mk = emask::beit_block_mask(b, {}, {42, sample});
              sample += static_cast<std::uint64_t>(b);
              g_sink = g_sink + float(mk.masked(b - 1, 0));
            },
            10);
        res.ms = t.wall_ms;
        res.limit_value = static_cast<double>(b) * 1e-3;
        res.ratio = res.ms / res.limit_value;
        res.note = std::to_string(static_cast<int>(static_cast<double>(b) / res.ms)) +
                   " k masks/s";  // masks per ms
      });
    }
  }

  // ------------------------------------------------------------ KV caches (issue 16)
  /// One sequence's K and V in storage T: a contiguous cache and paged copies (P = 16 and 128,
  /// the default layout, pages in reverse order so that nothing is accidentally contiguous).
  template <class T>
  struct kv_store {
    Index hkv, len, d;
    std::vector<T> k, v;
    std::int32_t length;
    struct paged {
      Index page;
      std::vector<T> k, v;
      std::vector<std::int32_t> table;
    };
    std::vector<paged> pages;
    kv_store(Index hkv_, Index len_, Index d_, std::initializer_list<Index> page_sizes)
        : hkv(hkv_), len(len_), d(d_), length(static_cast<std::int32_t>(len_)) {
      const std::vector<float> kf =
          random_floats(static_cast<std::size_t>(hkv * len * d), 41, -1.f, 1.f);
      const std::vector<float> vf =
          random_floats(static_cast<std::size_t>(hkv * len * d), 42, -1.f, 1.f);
      k.resize(kf.size());
      v.resize(vf.size());
      to_storage(kf, k);
      to_storage(vf, v);
      for (const Index p : page_sizes) {
        paged pg{p, {}, {}, {}};
        const Index n = (len + p - 1) / p;
        pg.k.resize(static_cast<std::size_t>(n * p * hkv * d));
        pg.v.resize(pg.k.size());
        for (Index i = 0; i < n; ++i) pg.table.push_back(static_cast<std::int32_t>(n - 1 - i));
        const emask::paged_kv_view<T> view = paged_view(pg);
        for (Index g = 0; g < hkv; ++g)
          for (Index j = 0; j < len; ++j) {
            const Index dst = view.offset(pg.table[static_cast<std::size_t>(j / p)], g, j % p);
            const Index src = (g * len + j) * d;
            std::copy(k.begin() + src, k.begin() + src + d, pg.k.begin() + dst);
            std::copy(v.begin() + src, v.begin() + src + d, pg.v.begin() + dst);
          }
        pages.push_back(std::move(pg));
      }
    }
    static void to_storage(const std::vector<float>& f, std::vector<T>& out) {
      if constexpr (std::is_same<T, float>::value) {
        out = f;
      } else {
        emask::kv_convert(f.data(), static_cast<Index>(f.size()), out.data());
      }
    }
    emask::kv_cache_view<T> contiguous() const {
      return emask::kv_cache_view<T>(k.data(), v.data(), 1, hkv, len, d, &length);
    }
    emask::paged_kv_view<T> paged_view(const paged& pg) const {
      return emask::paged_kv_view<T>(pg.k.data(), pg.v.data(), static_cast<Index>(pg.table.size()),
                                     pg.page, hkv, d, emask::kv_page_layout::hnd, pg.table.data(),
                                     1, static_cast<Index>(pg.table.size()), &length);
    }
    double bytes() const { return 2.0 * static_cast<double>(k.size() * sizeof(T)); }
  };

  /// Reads \p bytes of memory once (32-bit integer sum: no float special cases).
  static void read_bytes(const void* p, std::size_t bytes) {
    Eigen::Map<const Eigen::Array<std::uint32_t, Eigen::Dynamic, 1>> a(
        static_cast<const std::uint32_t*>(p), static_cast<Index>(bytes / 4));
    g_sink = g_sink + static_cast<float>(a.sum() & 1u);
  }

  void kv_cache() {
    const Index h = 32, hkv = 8, d = 128;
    std::vector<float> q = random_floats(static_cast<std::size_t>(h * d), 43, -1.f, 1.f);
    std::vector<float> o(q.size());
    const auto qv = emask::view_bhld<const float>(q.data(), 1, h, 1, d);
    const auto ov = emask::view_bhld(o.data(), 1, h, 1, d);
    const auto mask = emask::causal();
    for (const Index lk : {Index(4096), Index(32768)}) {
      if (lk == 4096 && !full) continue;
      const std::string tag = "kv-decode-" + std::to_string(lk);
      kv_store<float> f32(hkv, lk, d, {16, 128});
      kv_store<Eigen::bfloat16> b16(hkv, lk, d, {16, 128});
      kv_store<Eigen::half> f16(hkv, lk, d, {16});
      emask::kv_decode_workspace ws;
      for (int threads : {1, 2}) {
        if (threads == 2 && !full) continue;
        emask::attention_options opt;
        opt.threads = threads;
        set_threads(threads);
        const std::string t = "/t" + std::to_string(threads);
        const auto dec = [&](const auto& cache) {
          return [&, cache] { emask::masked_attention_decode(qv, cache, mask, ov, opt, &ws); };
        };
        // Reduced precision against float32: half the bytes.
        for (const bool bf : {true, false}) {
          result r;
          r.name = tag + (bf ? "/bf16" : "/f16") + "-vs-f32" + t;
          r.group = "kv";
          r.kind = "time_ratio";
          r.limit = "float32 decode, same cache";
          r.checked = threads == 1 && lk == 32768;
          r.target = 0.6;
          r.fail_at = 2.5 * r.target;
          check(r, [&](result& res) {
            std::tie(res.ms, res.limit_value) =
                bf ? paired_ms(dec(b16.contiguous()), dec(f32.contiguous()), 10, 100)
                   : paired_ms(dec(f16.contiguous()), dec(f32.contiguous()), 10, 100);
            res.ratio = res.ms / res.limit_value;
          });
        }
        // Against one read of the cache's bytes.
        for (int which = 0; which < 3; ++which) {
          if (which != 1 && !full) continue;
          const char* name = which == 0 ? "/f32" : which == 1 ? "/bf16" : "/f16";
          result r;
          r.name = tag + name + "-vs-read" + t;
          r.group = "kv";
          r.kind = "time_ratio";
          r.limit = "one read of K and V";
          r.checked = threads == 1 && lk == 32768 && which == 1;
          r.target = 1.3;
          r.fail_at = 2.5 * r.target;
          check(r, [&](result& res) {
            if (which == 0)
              std::tie(res.ms, res.limit_value) = paired_ms(
                  dec(f32.contiguous()),
                  [&] {
                    read_bytes(f32.k.data(), f32.k.size() * 4);
                    read_bytes(f32.v.data(), f32.v.size() * 4);
                  },
                  10, 100);
            else if (which == 1)
              std::tie(res.ms, res.limit_value) = paired_ms(
                  dec(b16.contiguous()),
                  [&] {
                    read_bytes(b16.k.data(), b16.k.size() * 2);
                    read_bytes(b16.v.data(), b16.v.size() * 2);
                  },
                  10, 100);
            else
              std::tie(res.ms, res.limit_value) = paired_ms(
                  dec(f16.contiguous()),
                  [&] {
                    read_bytes(f16.k.data(), f16.k.size() * 2);
                    read_bytes(f16.v.data(), f16.v.size() * 2);
                  },
                  10, 100);
            res.ratio = res.ms / res.limit_value;
            res.note = std::to_string(static_cast<int>((which == 0   ? f32.bytes()
                                                        : which == 1 ? b16.bytes()
                                                                     : f16.bytes()) /
                                                       (res.ms * 1e-3) * 1e-9)) +
                       " GB/s";
          });
        }
        // Paged against contiguous.
        for (int which = 0; which < 3; ++which) {
          if (which != 0 && !full) continue;
          const Index page = which == 2 ? 128 : 16;
          const bool f = which == 1;
          result r;
          r.name =
              tag + (f ? "/f32" : "/bf16") + "-paged" + std::to_string(page) + "-vs-contiguous" + t;
          r.group = "kv";
          r.kind = "time_ratio";
          r.limit = "contiguous cache, same keys";
          r.checked = threads == 1 && lk == 32768 && which == 0;
          r.target = 1.15;
          r.fail_at = 2.5 * r.target;
          check(r, [&](result& res) {
            if (f)
              std::tie(res.ms, res.limit_value) =
                  paired_ms(dec(f32.paged_view(f32.pages[0])), dec(f32.contiguous()), 10, 100);
            else
              std::tie(res.ms, res.limit_value) =
                  paired_ms(dec(b16.paged_view(b16.pages[which == 2 ? 1 : 0])),
                            dec(b16.contiguous()), 10, 100);
            res.ratio = res.ms / res.limit_value;
          });
        }
      }
      set_threads(1);
    }
    kv_batched_decode();
    kv_prefill();
  }

  /// The serving step: 64 sequences of mixed lengths (most short, a few long) in one paged
  /// bfloat16 pool, one query row each; 2 threads against 1.
  void kv_batched_decode() {
    const Index h = 32, hkv = 8, d = 128, nseq = 64, page = 16;
    std::vector<std::int32_t> lengths;
    std::uint64_t st = 5;
    Index max_pages = 0, total_pages = 0;
    for (Index i = 0; i < nseq; ++i) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      const Index len = i % 8 == 7 ? 8192 + static_cast<Index>((st >> 33) % 8192)
                                   : 1 + static_cast<Index>((st >> 33) % 2048);
      lengths.push_back(static_cast<std::int32_t>(len));
      max_pages = std::max(max_pages, (len + page - 1) / page);
      total_pages += (len + page - 1) / page;
    }
    std::vector<std::int32_t> table(static_cast<std::size_t>(nseq * max_pages), 0);
    Index next = 0;
    for (Index i = 0; i < nseq; ++i)
      for (Index p = 0; p < (lengths[static_cast<std::size_t>(i)] + page - 1) / page; ++p)
        table[static_cast<std::size_t>(i * max_pages + p)] = static_cast<std::int32_t>(next++);
    const std::vector<float> kf =
        random_floats(static_cast<std::size_t>(total_pages * page * hkv * d), 44, -1.f, 1.f);
    std::vector<Eigen::bfloat16> kp(kf.size()), vp(kf.size());
    emask::kv_convert(kf.data(), static_cast<Index>(kf.size()), kp.data());
    emask::kv_convert(kf.data(), static_cast<Index>(kf.size()), vp.data());
    const emask::paged_kv_view<Eigen::bfloat16> cache(kp.data(), vp.data(), total_pages, page, hkv,
                                                      d, emask::kv_page_layout::hnd, table.data(),
                                                      nseq, max_pages, lengths.data());
    std::vector<float> q = random_floats(static_cast<std::size_t>(nseq * h * d), 45, -1.f, 1.f);
    std::vector<float> o(q.size());
    emask::kv_decode_workspace ws;
    speedup(
        "kv-decode-batch64-mixed/bf16-paged16/speedup", 1.8,
        [&](int threads) {
          emask::attention_options opt;
          opt.threads = threads;
          emask::masked_attention_decode(emask::view_bhld<const float>(q.data(), nseq, h, 1, d),
                                         cache, emask::causal(),
                                         emask::view_bhld(o.data(), nseq, h, 1, d), opt, &ws);
        },
        10);
  }

  /// Prefill S = 4096 causal, 8 heads, D = 64, one thread: a bfloat16 cache against
  /// masked_attention on float32 (target: 1.5x faster with AVX512-BF16).
  void kv_prefill() {
    const Index h = 8, s = 4096, d = 64;
    set_threads(1);
    attn_data a(h, s, s, d);
    emask::attention_workspace<float> ws;
    std::vector<Eigen::bfloat16> kb(a.k.size()), vb(a.v.size());
    emask::kv_convert(a.k.data(), static_cast<Index>(a.k.size()), kb.data());
    emask::kv_convert(a.v.data(), static_cast<Index>(a.v.size()), vb.data());
    const std::int32_t len = static_cast<std::int32_t>(s);
    const emask::kv_cache_view<Eigen::bfloat16> cache(kb.data(), vb.data(), 1, h, s, d, &len);
    const auto causal = emask::causal();
    emask::attention_options opt;
    opt.threads = 1;
    for (int which = 0; which < 2; ++which) {
      if (which == 1 && !full) continue;
      result r;
      r.name = which == 0 ? "kv-prefill-causal-4096/d64/bf16-vs-f32/t1"
                          : "kv-prefill-causal-4096/d64/bf16-paged16-vs-f32/t1";
      r.group = "kv";
      r.kind = "speedup";
      r.limit = "float32 tiled / bfloat16 prefill";
      r.checked = which == 0;
      r.target = 1.5;
      r.fail_at = r.target / 2.5;
      kv_store<Eigen::bfloat16>* paged = nullptr;
      std::unique_ptr<kv_store<Eigen::bfloat16>> holder;
      if (which == 1) {
        holder =
            std::make_unique<kv_store<Eigen::bfloat16>>(h, s, d, std::initializer_list<Index>{16});
        paged = holder.get();
      }
      check(r, [&](result& res) {
        const auto bf = [&] {
          if (paged)
            emask::masked_attention_prefill(emask::view_bhld<const float>(a.q.data(), 1, h, s, d),
                                            paged->paged_view(paged->pages[0]), causal,
                                            emask::view_bhld(a.o.data(), 1, h, s, d), opt);
          else
            emask::masked_attention_prefill(emask::view_bhld<const float>(a.q.data(), 1, h, s, d),
                                            cache, causal, emask::view_bhld(a.o.data(), 1, h, s, d),
                                            opt);
        };
        std::tie(res.ms, res.limit_value) = paired_ms(
            bf, [&] { a.run(causal, opt, ws); }, 3);
        res.ratio = res.limit_value / res.ms;
      });
    }
  }

  // ------------------------------------------------------------ training (issue 17)
  /// The tiled backward against the tiled forward of the same causal problem, D = 64, 8 heads,
  /// one thread (target: at most 2.5x, FlashAttention-2's ratio), and against the naive backward
  /// (target: at least 5x faster; 2 heads, the naive one materializes Lq x Lk per head).
  void training() {
    set_threads(1);
    const Index h = 8;
    const auto causal = emask::causal();
    for (const Index s : {Index(2048), Index(4096)}) {
      if (s == 2048 && !full) continue;
      backward_data a(h, s, 64);
      result r;
      r.name = "attn-backward-causal-" + std::to_string(s) + "/d64/tiled/t1";
      r.group = "training";
      r.kind = "time_ratio";
      r.limit = "tiled forward, same problem";
      r.checked = s == 4096;
      r.target = 2.5;
      r.fail_at = 2.5 * r.target;
      emask::attention_options opt;
      opt.threads = 1;
      check(r, [&](result& o) {
        std::tie(o.ms, o.limit_value) = paired_ms([&] { a.backward(causal, opt, emask::tiled); },
                                                  [&] { a.forward(causal, opt); }, 3);
        o.ratio = o.ms / o.limit_value;
      });
    }
    for (const Index s : {Index(2048), Index(4096)}) {
      if (s == 2048 && !full) continue;
      const Index hn = 2;
      backward_data a(hn, s, 64);
      result r;
      r.name = "attn-backward-causal-" + std::to_string(s) + "/d64/naive-vs-tiled/t1";
      r.group = "training";
      r.kind = "speedup";
      r.limit = "naive backward / tiled backward";
      r.checked = s == 4096;
      r.target = 5.0;
      r.fail_at = r.target / 2.5;
      emask::attention_options opt;
      opt.threads = 1;
      check(r, [&](result& o) {
        std::tie(o.ms, o.limit_value) =
            paired_ms([&] { a.backward(causal, opt, emask::tiled); },
                      [&] { a.backward(causal, opt, emask::reference::naive); }, 2);
        o.ratio = o.limit_value / o.ms;
      });
    }
    {
      const Index s = 4096;
      backward_data a(h, s, 64);
      speedup(
          "attn-backward-causal-4096/d64/tiled/speedup", 1.8,
          [&](int threads) {
            emask::attention_options opt;
            opt.threads = threads;
            a.backward(causal, opt, emask::tiled);
          },
          2);
    }
  }

  /// Q, K, V, the forward's out and lse, dOut and the gradients of one causal problem.
  struct backward_data {
    Index h, s, d;
    std::vector<float> q, k, v, o, lse, dout, dq, dk, dv;
    backward_data(Index h_, Index s_, Index d_)
        : h(h_),
          s(s_),
          d(d_),
          q(random_floats(static_cast<std::size_t>(h * s * d), 31, -1.f, 1.f)),
          k(random_floats(static_cast<std::size_t>(h * s * d), 32, -1.f, 1.f)),
          v(random_floats(static_cast<std::size_t>(h * s * d), 33, -1.f, 1.f)),
          o(static_cast<std::size_t>(h * s * d), 0.f),
          lse(static_cast<std::size_t>(h * s), 0.f),
          dout(random_floats(static_cast<std::size_t>(h * s * d), 34, -1.f, 1.f)),
          dq(o.size()),
          dk(o.size()),
          dv(o.size()) {
      forward(emask::causal(), {});
    }
    emask::tensor_view<const float> in(const std::vector<float>& x) const {
      return emask::view_bhld<const float>(x.data(), 1, h, s, d);
    }
    emask::tensor_view<float> out(std::vector<float>& x) const {
      return emask::view_bhld(x.data(), 1, h, s, d);
    }
    template <class Mask>
    void forward(const Mask& mask, const emask::attention_options& opt) {
      Eigen::Map<emask::row_matrix<float>> l(lse.data(), h, s);
      emask::masked_attention(emask::tiled, in(q), in(k), in(v), mask, out(o), l, opt);
    }
    template <class Mask, class Variant>
    void backward(const Mask& mask, const emask::attention_options& opt, Variant variant) {
      Eigen::Map<emask::row_matrix<float>> l(lse.data(), h, s);
      emask::masked_attention_backward(variant, in(q), in(k), in(v), mask, opt, in(o), l, in(dout),
                                       out(dq), out(dk), out(dv));
      g_sink = g_sink + dq[0] + dk[0] + dv[0];
    }
  };

  void write_json(const std::string& path) const {
    std::ofstream f(path);
    f << "{\n";
    f << "  \"cpu\": \"" << json_escape(cpu_model()) << "\",\n";
    f << "  \"simd\": \"" << simd_name() << "\",\n";
#if defined(__clang__)
    f << "  \"compiler\": \"clang++ " << __clang_major__ << "." << __clang_minor__ << "\",\n";
#elif defined(__GNUC__)
    f << "  \"compiler\": \"g++ " << __GNUC__ << "." << __GNUC_MINOR__ << "\",\n";
#else
    f << "  \"compiler\": \"unknown\",\n";
#endif
    f << "  \"threads_available\": " << available << ",\n";
    const std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
    f << "  \"date\": \"" << date << "\",\n";
    f << "  \"full\": " << (full ? "true" : "false") << ",\n";
    f << "  \"limits\": {\"fma_gflops_1t\": " << fma1 << ", \"fma_gflops_2t\": " << fma2
      << ", \"copy_gbs_1t\": " << copy_gbs << ", \"read_gbs_1t\": " << read_gbs << "},\n";
    f << "  \"results\": [\n";
    for (std::size_t i = 0; i < results.size(); ++i) {
      const result& r = results[i];
      f << "    {\"name\": \"" << json_escape(r.name) << "\", \"group\": \"" << r.group
        << "\", \"kind\": \"" << r.kind << "\", \"limit\": \"" << json_escape(r.limit)
        << "\", \"ms\": " << r.ms << ", \"limit_value\": " << r.limit_value
        << ", \"ratio\": " << r.ratio << ", \"target\": " << r.target
        << ", \"fail_at\": " << r.fail_at << ", \"checked\": " << (r.checked ? "true" : "false")
        << ", \"pass\": " << (r.pass ? "true" : "false") << ", \"attempts\": " << r.attempts
        << ", \"note\": \"" << json_escape(r.note) << "\"}" << (i + 1 < results.size() ? "," : "")
        << "\n";
    }
    f << "  ]\n}\n";
  }
};

}  // namespace

int main(int argc, char** argv) {
  perf_run run;
  run.available = max_threads();
  std::string json;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--full") {
      run.full = true;
    } else if (a == "--json" && i + 1 < argc) {
      json = argv[++i];
    } else {
      std::fprintf(stderr, "usage: emask_perf [--full] [--json FILE]\n");
      return 2;
    }
  }
  const auto t0 = clock_type::now();
  std::printf("emask_perf: %s, %s, %d threads available\n", cpu_model().c_str(),
              simd_name().c_str(), run.available);
  run.fma1 = fma_gflops(1);
  run.fma2 = run.available >= 2 ? fma_gflops(2) : run.fma1;
  std::printf("limits: FMA loop %.1f GFLOP/s (1 thread), %.1f (2 threads)\n", run.fma1, run.fma2);
  // Softmax last: it allocates and frees 1.6 GB, after which the kernel reclaiming pages
  // slowed the next measurements by up to 40 % on a 2-core VM.
  run.attention();
  run.mask_wave();
  run.decode();
  std::printf("limits: read of K and V %.1f GB/s (1 thread)\n", run.read_gbs);
  run.kv_cache();
  run.rl();
  run.rl_conditional();
  run.mlm();
  run.recipes();
  run.training();
  run.softmax();
  std::printf("limits: memcpy %.1f GB/s (read + write, 1 thread)\n", run.copy_gbs);
  if (!json.empty()) run.write_json(json);
  int failed = 0, checked = 0;
  for (const result& r : run.results) {
    if (!r.checked) continue;
    ++checked;
    if (!r.pass) ++failed;
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::printf("emask_perf: %d checks, %d passed, %d failed (%.0f s)\n", checked, checked - failed,
              failed, secs);
  return failed == 0 ? 0 : 1;
}
