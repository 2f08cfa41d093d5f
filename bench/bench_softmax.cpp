// Masked softmax benchmarks on the SHAPES.md shapes softmax-causal-S and softmax-pad-S:
// BH = 8 float32 score matrices S x S, row-major, contiguous; S in {512, 2048, 4096}
// (EMASK_BENCH_SHORT=1: S = 512 only). Every variant at 1 and 2 threads.
//
// Names: BM_softmax/<variant>/<shape>-<S>/threads:<n>. Counters: GB/s of the bytes the variant
// actually reads and writes (naive: write and read the materialized bias, read every score,
// write every output; fused and tiled: read the kept scores, write every output), rows.
// After the run a summary prints, per shape, the median times and the ratios tiled/naive,
// fused/naive and 2 threads / 1 thread, measured in the same run.
//
// Full suite: bench_softmax --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

// GCC 12 with -march=native (AVX-512) reports a false -Wmaybe-uninitialized inside its own
// avx512fintrin.h when Eigen's packet reductions are inlined (GCC PR 105593, fixed in GCC 13).
// The pragma must precede the first include to cover that header.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <benchmark/benchmark.h>

#include <emask/kernels/softmax.hpp>
#include <emask/masks/causal.hpp>
#include <emask/masks/padding.hpp>

#include "../tests/kernel_variants.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

namespace {

using emask::Index;
using emask_test::softmax_variant;
using map_t = Eigen::Map<emask::row_matrix<float>>;
using cmap_t = Eigen::Map<const emask::row_matrix<float>>;

constexpr Index bh = 8;

/// Scores and outputs of the current S, shared by every benchmark of that S.
struct buffers {
  Index s = 0;
  std::unique_ptr<float[]> scores, out;

  void ensure(Index size) {
    if (s == size) return;
    scores.reset();
    out.reset();
    const std::size_t n = static_cast<std::size_t>(bh * size * size);
    scores.reset(new float[n]);
    out.reset(new float[n]);
    std::uint64_t state = 0x853c49e6748fea9bull;
    for (std::size_t i = 0; i < n; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      scores[i] = static_cast<float>(static_cast<std::uint32_t>(state >> 40) & 0xFFFFFF) *
                      (8.0f / 16777216.0f) -
                  4.0f;
      out[i] = 0.0f;  // touch the pages once, outside the timed region
    }
    s = size;
  }
};
buffers& data() {
  static buffers b;
  return b;
}

const char* variant_name(softmax_variant v) {
  switch (v) {
    case softmax_variant::naive: return "naive";
    case softmax_variant::fused: return "fused";
    default: return "tiled";
  }
}

enum class shape_kind { causal, pad };

/// Bytes a variant reads and writes for one S x S slice.
double slice_bytes(softmax_variant v, shape_kind k, Index s) {
  const double all = static_cast<double>(s) * static_cast<double>(s);
  const double kept = k == shape_kind::causal
                          ? static_cast<double>(s) * static_cast<double>(s + 1) / 2
                          : all * 0.75;
  if (v == softmax_variant::naive) return 4.0 * (4.0 * all);  // bias w+r, scores r, out w
  return 4.0 * (kept + all);
}

template <class Mask>
void run_slices(const Mask& mask, Index s, const emask_test::softmax_options& o) {
  buffers& d = data();
  for (Index i = 0; i < bh; ++i) {
    const cmap_t x(d.scores.get() + i * s * s, s, s);
    map_t y(d.out.get() + i * s * s, s, s);
    emask_test::masked_softmax(x, mask, y, o);
  }
  benchmark::DoNotOptimize(d.out.get());
  benchmark::ClobberMemory();
}

void bm_softmax(benchmark::State& state, softmax_variant v, shape_kind kind, Index s, int threads) {
#if EMASK_HAS_OPENMP
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
  data().ensure(s);
  emask_test::softmax_options o;
  o.variant = v;
  o.scale = 0.125;
  const auto causal = emask::causal();
  const auto pad = emask::key_padding::from_lengths({(3 * s) / 4}, s);
  for (auto _ : state) {
    if (kind == shape_kind::causal) {
      run_slices(causal, s, o);
    } else {
      run_slices(pad, s, o);
    }
  }
  const double bytes = slice_bytes(v, kind, s) * bh;
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
  state.counters["GB/s"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["rows"] = static_cast<double>(bh * s);
}

/// Console output plus a ratio summary from the same run.
class summary_reporter : public benchmark::ConsoleReporter {
 public:
  explicit summary_reporter(bool color)
      : benchmark::ConsoleReporter(color ? OO_ColorTabular : OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      std::string name = r.run_name.function_name;
      const double ms = r.GetAdjustedRealTime() * to_ms(r.time_unit);
      const double cpu_ms = r.GetAdjustedCPUTime() * to_ms(r.time_unit);
      if (r.run_type == Run::RT_Aggregate) {
        if (r.aggregate_name == "median") {
          median_[name] = ms;
          cpu_median_[name] = cpu_ms;
        }
      } else {
        samples_[name].push_back(ms);
        cpu_samples_[name].push_back(cpu_ms);
      }
    }
  }
  void Finalize() override {
    benchmark::ConsoleReporter::Finalize();
    table("median real time", samples_, median_, true);
    table("median process CPU time (all threads; excludes time the machine gave to others)",
          cpu_samples_, cpu_median_, false);
    std::fflush(stdout);
  }

 private:
  static std::map<std::string, double> medians(
      const std::map<std::string, std::vector<double>>& samples,
      const std::map<std::string, double>& median) {
    std::map<std::string, double> t;
    for (const auto& kv : samples) {
      std::vector<double> v = kv.second;
      std::sort(v.begin(), v.end());
      t[kv.first] = v[v.size() / 2];
    }
    for (const auto& kv : median) t[kv.first] = kv.second;
    return t;
  }
  static void table(const char* what, const std::map<std::string, std::vector<double>>& samples,
                    const std::map<std::string, double>& median, bool thread_ratios) {
    const std::map<std::string, double> t = medians(samples, median);
    if (t.empty()) return;
    std::printf("\nSummary (%s, ms, one run; ratios < 1 mean faster):\n", what);
    std::printf("%-18s %3s %10s %10s %10s %12s %12s\n", "shape", "thr", "naive", "fused", "tiled",
                "tiled/naive", "fused/naive");
    for (const char* shape : shape_names()) {
      for (int thr = 1; thr <= 2; ++thr) {
        const auto get = [&](const char* var) {
          const auto it = t.find(std::string("BM_softmax/") + var + "/" + shape +
                                 "/threads:" + std::to_string(thr));
          return it == t.end() ? -1.0 : it->second;
        };
        const double n = get("naive"), f = get("fused"), ti = get("tiled");
        if (n < 0 && f < 0 && ti < 0) continue;
        std::printf("%-18s %3d %10.2f %10.2f %10.2f %12.3f %12.3f\n", shape, thr, n, f, ti,
                    n > 0 ? ti / n : -1.0, n > 0 ? f / n : -1.0);
      }
    }
    if (!thread_ratios) return;
    std::printf("\n2 threads / 1 thread (real time ratio; 0.5 is perfect scaling):\n");
    for (const char* shape : shape_names()) {
      for (const char* var : {"naive", "fused", "tiled"}) {
        const std::string base = std::string("BM_softmax/") + var + "/" + shape + "/threads:";
        const auto a = t.find(base + "1"), b = t.find(base + "2");
        if (a == t.end() || b == t.end()) continue;
        std::printf("  %-18s %-6s %.3f\n", shape, var, b->second / a->second);
      }
    }
  }
  static double to_ms(benchmark::TimeUnit u) {
    switch (u) {
      case benchmark::kNanosecond: return 1e-6;
      case benchmark::kMicrosecond: return 1e-3;
      case benchmark::kMillisecond: return 1.0;
      default: return 1e3;
    }
  }
  static const std::vector<const char*>& shape_names() {
    static const std::vector<const char*> names = {"causal-512", "pad-512",     "causal-2048",
                                                   "pad-2048",   "causal-4096", "pad-4096"};
    return names;
  }
  std::map<std::string, double> median_, cpu_median_;
  std::map<std::string, std::vector<double>> samples_, cpu_samples_;
};

}  // namespace

int main(int argc, char** argv) {
  const char* short_env = std::getenv("EMASK_BENCH_SHORT");
  const bool short_run = short_env && std::string(short_env) == "1";
  std::vector<Index> sizes = {512};
  if (!short_run) {
    sizes.push_back(2048);
    sizes.push_back(4096);
  }
#if EMASK_HAS_OPENMP
  const int max_threads = 2;
#else
  const int max_threads = 1;
#endif
  for (Index s : sizes) {
    for (shape_kind kind : {shape_kind::causal, shape_kind::pad}) {
      for (int thr = 1; thr <= max_threads; ++thr) {
        for (softmax_variant v :
             {softmax_variant::naive, softmax_variant::fused, softmax_variant::tiled}) {
          const std::string name = std::string("BM_softmax/") + variant_name(v) + "/" +
                                   (kind == shape_kind::causal ? "causal-" : "pad-") +
                                   std::to_string(s) + "/threads:" + std::to_string(thr);
          benchmark::RegisterBenchmark(name.c_str(), bm_softmax, v, kind, s, thr)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime()
              ->MeasureProcessCPUTime();
        }
      }
    }
  }
  // Colour only on a terminal and unless --benchmark_color=false was given.
  bool color = isatty(fileno(stdout)) != 0;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--benchmark_color=false") color = false;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  summary_reporter reporter(color);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
