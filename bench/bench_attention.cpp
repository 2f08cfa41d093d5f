// Masked attention on the shapes of SHAPES.md: every variant, 1 and 2 threads.
//   BM_attention/<shape>/<variant>/threads:<n>
// Counters: GFLOPs_dense (4 Lq Lk D BH per call, the dense-equivalent work, per second),
// GFLOPs_done (the multiply-adds actually issued: non-empty tiles for tiled, kept keys' spans
// for decode, everything for naive), workspace_MiB.
// EMASK_BENCH_SHORT=1 runs only the S = 512 shapes with few iterations (README demo);
// EMASK_BENCH_LONG=1 runs only tiled causal S = 32768, H = 8 once (the workspace target).
// bench/summary.py turns --benchmark_format=json output into the ratio table.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <emask/kernels/attention.hpp>
#include <emask/masks/causal.hpp>
#include <emask/masks/padding.hpp>
#include <emask/masks/window.hpp>

#include "../tests/kernel_variants.hpp"

namespace {

using emask::Index;

struct shape {
  std::string name;
  Index heads, lq, lk, d;
  int kind;  // 0 causal, 1 pad, 2 window, 3 decode (bottom-right causal)
};

std::vector<float> random_buffer(Index n, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& e : x) e = u(g);
  return x;
}

// Multiply-adds actually issued by a variant, counted outside the timed loop (x4 D = flops).
template <class Mask>
double done_flops(const shape& s, const Mask& m, const emask_test::attention_options& o) {
  using namespace emask;
  const double per = 4.0 * static_cast<double>(s.d);
  double pairs = 0;
  if (o.variant == emask_test::attention_variant::naive) {
    pairs = static_cast<double>(s.lq) * static_cast<double>(s.lk);
  } else if (o.variant == emask_test::attention_variant::tiled) {
    const Index bc = detail::round_up(o.tile_k, detail::gemm_cols<float>);
    const Index br = detail::round_up(o.tile_q, detail::gemm_rows);
    for (Index q0 = 0; q0 < s.lq; q0 += o.tile_q)
      for (Index k0 = 0; k0 < s.lk; k0 += bc) {
        const Index q1 = std::min(q0 + o.tile_q, s.lq), k1 = std::min(k0 + bc, s.lk);
        if (m.tile(0, 0, q0, q1, k0, k1) != tile_state::empty)
          pairs += static_cast<double>(br * bc);
      }
  } else {
    for (Index q = 0; q < s.lq; ++q) {
      for (Index c0 = 0; c0 < s.lk; c0 += o.decode_chunk) {
        pairs +=
            static_cast<double>(m.keys(0, 0, q, c0, std::min(c0 + o.decode_chunk, s.lk)).size());
      }
    }
  }
  return pairs * per * static_cast<double>(s.heads);
}

template <class Mask>
void run(benchmark::State& st, const shape& s, Mask mask, emask_test::attention_options o) {
  using namespace emask;
  const Index B = 1, H = s.heads;
  auto q = random_buffer(B * H * s.lq * s.d, 1), k = random_buffer(B * H * s.lk * s.d, 2),
       v = random_buffer(B * H * s.lk * s.d, 3);
  std::vector<float> out(static_cast<std::size_t>(B * H * s.lq * s.d));
  auto qv = view_bhld<const float>(q.data(), B, H, s.lq, s.d);
  auto kv = view_bhld<const float>(k.data(), B, H, s.lk, s.d);
  auto vv = view_bhld<const float>(v.data(), B, H, s.lk, s.d);
  auto ov = view_bhld(out.data(), B, H, s.lq, s.d);
  attention_workspace<float> ws;
  ws.reserve(attention_workspace_size<float>(B * H, s.lq, s.lk, s.d, s.d, o));
  for (auto _ : st) {
    emask_test::masked_attention(qv, kv, vv, mask, ov, o, &ws);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double dense = 4.0 * static_cast<double>(s.lq * s.lk * s.d * H);
  st.counters["GFLOPs_dense"] =
      benchmark::Counter(dense * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOPs_done"] = benchmark::Counter(done_flops(s, mask, o) * 1e-9,
                                                  benchmark::Counter::kIsIterationInvariantRate);
  st.counters["workspace_MiB"] = static_cast<double>(ws.bytes()) / (1024.0 * 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace emask;
  const bool short_run =
      std::getenv("EMASK_BENCH_SHORT") && std::string(std::getenv("EMASK_BENCH_SHORT")) == "1";
  std::vector<shape> shapes;
  if (std::getenv("EMASK_BENCH_LONG") && std::string(std::getenv("EMASK_BENCH_LONG")) == "1") {
    // The memory target: tiled causal attention at S = 32768, H = 8, D = 64, one run, 1 thread.
    const shape s{"attn-causal-32768", 8, 32768, 32768, 64, 0};
    emask_test::attention_options o;
    o.threads = 1;
    benchmark::RegisterBenchmark("BM_attention/attn-causal-32768/tiled/threads:1",
                                 [s, o](benchmark::State& st) { run(st, s, causal(), o); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }
  std::vector<Index> sizes =
      short_run ? std::vector<Index>{512} : std::vector<Index>{512, 1024, 2048, 4096};
  for (Index S : sizes) shapes.push_back({"attn-causal-" + std::to_string(S), 8, S, S, 64, 0});
  for (Index S : sizes) shapes.push_back({"attn-pad-" + std::to_string(S), 8, S, S, 64, 1});
  if (!short_run) {
    shapes.push_back({"attn-window-4096", 8, 4096, 4096, 64, 2});
    shapes.push_back({"attn-decode-4096", 8, 1, 4096, 64, 3});
  } else {
    shapes.push_back({"attn-window-512", 8, 512, 512, 64, 2});
    shapes.push_back({"attn-decode-512", 8, 1, 512, 64, 3});
  }
  for (const shape& s : shapes) {
    std::vector<emask_test::attention_variant> variants{emask_test::attention_variant::naive,
                                                        emask_test::attention_variant::tiled};
    if (s.kind == 3 || s.lq <= 512) variants.push_back(emask_test::attention_variant::decode);
    for (emask_test::attention_variant var : variants) {
      for (int threads : {1, 2}) {
        emask_test::attention_options o;
        o.variant = var;
        o.threads = threads;
        const char* vname = var == emask_test::attention_variant::naive   ? "naive"
                            : var == emask_test::attention_variant::tiled ? "tiled"
                                                                          : "decode";
        const std::string name =
            "BM_attention/" + s.name + "/" + vname + "/threads:" + std::to_string(threads);
        benchmark::internal::Benchmark* b = nullptr;
        switch (s.kind) {
          case 0:
            b = benchmark::RegisterBenchmark(
                name.c_str(), [s, o](benchmark::State& st) { run(st, s, causal(), o); });
            break;
          case 1:
            b = benchmark::RegisterBenchmark(name.c_str(), [s, o](benchmark::State& st) {
              run(st, s, key_padding::from_lengths({s.lk * 3 / 4}, s.lk), o);
            });
            break;
          case 2:
            b = benchmark::RegisterBenchmark(name.c_str(), [s, o](benchmark::State& st) {
              run(st, s, sliding_window(255, 0), o);
            });
            break;
          default:
            b = benchmark::RegisterBenchmark(name.c_str(), [s, o](benchmark::State& st) {
              run(st, s, causal::bottom_right(s.lq, s.lk), o);
            });
            break;
        }
        b->UseRealTime()->Unit(benchmark::kMillisecond);
        const double work = static_cast<double>(s.lq) * static_cast<double>(s.lk);
        if (short_run) {
          b->Iterations(s.kind == 3 ? 20 : 2);
        } else if (var == emask_test::attention_variant::naive && work >= 2048.0 * 2048.0) {
          b->Iterations(1);
        } else if (s.kind == 3) {
          b->MinTime(0.2);
        } else {
          b->MinTime(0.3);
        }
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
