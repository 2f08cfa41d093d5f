// RL action-masking benchmarks: masked sampling from logits for a batch of 4096 rows x 512
// actions (EMASK_BENCH_SHORT=1: 512 rows), float32, about half the actions legal (random mask).
//
//   BM_rl_masked_sample/threads:<n>     emask::masked_sample (masked softmax + Philox draw)
//   BM_rl_unmasked_sample               the same batch without a mask: a plain per-row softmax
//                                       (Eigen) and the same inverse-CDF Philox draw, serial
//   BM_rl_sb3_fill_sample               sb3-contrib style: fill -1e8, unmasked softmax, draw
//   BM_rl_masked_epsilon_greedy         emask::masked_epsilon_greedy (epsilon 0.1) on Q-values
//   BM_rl_masked_log_prob               emask::masked_log_prob of given legal actions
// Counter items_per_second = samples (rows) per second. The summary prints the ratio of the
// masked sampler to the unmasked baseline measured in the same run.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <emask/rl/dqn.hpp>
#include <emask/rl/policy.hpp>

#include "unmasked_sample.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

namespace {

using emask::action_mask;
using emask::Index;
using emask::row_matrix;

constexpr Index actions = 512;

Index batch_rows() {
  const char* s = std::getenv("EMASK_BENCH_SHORT");
  return (s && std::string(s) == "1") ? 512 : 4096;
}

struct data {
  row_matrix<float> logits;
  action_mask mask = action_mask::all_legal(emask::action_space::discrete(actions), 0);
  emask::action_matrix legal_actions;
  data() {
    const Index rows = batch_rows();
    logits.resize(rows, actions);
    emask::bool_matrix legal(rows, actions);
    for (Index b = 0; b < rows; ++b) {
      for (Index a = 0; a < actions; ++a) {
        const std::uint32_t w =
            emask::packed_word(1, std::uint64_t(b), emask::purpose::user, std::uint64_t(a));
        logits(b, a) = 4.0f * emask::uniform_float(w) - 2.0f;
        legal(b, a) = (w & 1u) != 0;
      }
      legal(b, b % actions) = true;
    }
    mask = action_mask::discrete(legal);
    legal_actions = emask::masked_argmax(logits, mask);
  }
};

const data& get_data() {
  static const data d;
  return d;
}

void set_threads(int threads) {
#if EMASK_HAS_OPENMP
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
}

void bm_masked_sample(benchmark::State& state, int threads) {
  set_threads(threads);
  const data& d = get_data();
  std::uint64_t step = 0;
  for (auto _ : state) {
    emask::action_matrix a = emask::masked_sample(d.logits, d.mask, {7, step++});
    benchmark::DoNotOptimize(a.data());
  }
  state.SetItemsProcessed(state.iterations() * d.logits.rows());
  state.SetBytesProcessed(state.iterations() * d.logits.size() *
                          static_cast<std::int64_t>(sizeof(float) + sizeof(bool)));
}

void bm_unmasked_sample(benchmark::State& state) {
  const data& d = get_data();
  row_matrix<float> p(d.logits.rows(), d.logits.cols());
  std::uint64_t step = 0;
  for (auto _ : state) {
    emask::action_matrix a = emask_bench::unmasked_sample(d.logits, {7, step++}, p);
    benchmark::DoNotOptimize(a.data());
  }
  state.SetItemsProcessed(state.iterations() * d.logits.rows());
  state.SetBytesProcessed(state.iterations() * d.logits.size() *
                          static_cast<std::int64_t>(sizeof(float)));
}

void bm_sb3_fill_sample(benchmark::State& state) {
  const data& d = get_data();
  row_matrix<float> p(d.logits.rows(), d.logits.cols());
  std::uint64_t step = 0;
  for (auto _ : state) {
    const row_matrix<float> filled =
        emask::masked_logits(d.logits, d.mask, emask::mask_fill::sb3_compatible);
    emask::action_matrix a = emask_bench::unmasked_sample(filled, {7, step++}, p);
    benchmark::DoNotOptimize(a.data());
  }
  state.SetItemsProcessed(state.iterations() * d.logits.rows());
}

void bm_epsilon_greedy(benchmark::State& state) {
  set_threads(1);
  const data& d = get_data();
  std::uint64_t step = 0;
  for (auto _ : state) {
    emask::index_vector a = emask::masked_epsilon_greedy(d.logits, d.mask, 0.1, {7, step++});
    benchmark::DoNotOptimize(a.data());
  }
  state.SetItemsProcessed(state.iterations() * d.logits.rows());
}

void bm_log_prob(benchmark::State& state) {
  set_threads(1);
  const data& d = get_data();
  for (auto _ : state) {
    Eigen::VectorXf lp = emask::masked_log_prob(d.logits, d.mask, d.legal_actions);
    benchmark::DoNotOptimize(lp.data());
  }
  state.SetItemsProcessed(state.iterations() * d.logits.rows());
}

class summary_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      if (r.run_type == Run::RT_Aggregate) {
        if (r.aggregate_name == "median")
          median_[r.run_name.function_name] = r.GetAdjustedRealTime();
      } else {
        samples_[r.run_name.function_name].push_back(r.GetAdjustedRealTime());
      }
    }
  }
  void Finalize() override {
    benchmark::ConsoleReporter::Finalize();
    std::map<std::string, double> t;
    for (auto& kv : samples_) {
      std::sort(kv.second.begin(), kv.second.end());
      t[kv.first] = kv.second[kv.second.size() / 2];
    }
    for (const auto& kv : median_) t[kv.first] = kv.second;
    const auto base = t.find("BM_rl_unmasked_sample");
    if (base == t.end()) return;
    std::printf(
        "\nSummary (median real time relative to BM_rl_unmasked_sample, batch %ld x %ld):\n",
        static_cast<long>(batch_rows()), static_cast<long>(actions));
    for (const auto& kv : t)
      std::printf("  %-40s %6.2fx the time of the unmasked softmax+sample\n", kv.first.c_str(),
                  kv.second / base->second);
  }

 private:
  std::map<std::string, std::vector<double>> samples_;
  std::map<std::string, double> median_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("BM_rl_unmasked_sample", bm_unmasked_sample)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
#if EMASK_HAS_OPENMP
  const int max_threads = 2;
#else
  const int max_threads = 1;
#endif
  for (int thr = 1; thr <= max_threads; ++thr)
    benchmark::RegisterBenchmark(("BM_rl_masked_sample/threads:" + std::to_string(thr)).c_str(),
                                 bm_masked_sample, thr)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  benchmark::RegisterBenchmark("BM_rl_sb3_fill_sample", bm_sb3_fill_sample)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_rl_masked_epsilon_greedy", bm_epsilon_greedy)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_rl_masked_log_prob", bm_log_prob)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  set_threads(1);
  summary_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
