// Throughput of the reproducible random maskers on one core, in tokens per second
// (items/s). EMASK_BENCH_SHORT=1 runs smaller batches (the README demo).
#include <benchmark/benchmark.h>

#include <emask/random/audio_span.hpp>
#include <emask/random/block_masks.hpp>
#include <emask/random/diffusion.hpp>
#include <emask/random/feature.hpp>
#include <emask/random/maskgit.hpp>
#include <emask/random/patch.hpp>
#include <emask/random/span.hpp>
#include <emask/random/t5.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

namespace {
using namespace emask;

bool short_run() {
  const char* s = std::getenv("EMASK_BENCH_SHORT");
  return s && std::strcmp(s, "0") != 0;
}
Index batch() { return short_run() ? 16 : 256; }

void one_core() {
#if EMASK_HAS_OPENMP
  omp_set_num_threads(1);
#endif
}

token_matrix bert_batch(Index B, Index L) {
  token_matrix ids(B, L);
  std::uint32_t x = 1;
  for (Index b = 0; b < B; ++b) {
    ids(b, 0) = 101;
    for (Index t = 1; t < L - 1; ++t) {
      x = x * 1664525u + 1013904223u;
      ids(b, t) = 1000 + static_cast<std::int32_t>((x >> 8) % 29000u);
    }
    ids(b, L - 1) = 102;
  }
  return ids;
}

constexpr std::uint64_t seed = 42;  // the Philox key of every benchmark

mlm_options bert_options() {
  mlm_options o;
  o.vocabulary = special_tokens(30522, {0, 100, 101, 102, 103});
  o.mask_id = 103;
  return o;
}

// BERT MLM, out of place (copies ids, allocates labels), B x 512.
void BM_mlm_mask(benchmark::State& state) {
  one_core();
  const Index B = batch(), L = 512;
  const token_matrix ids = bert_batch(B, L);
  mlm_options o = bert_options();
  o.selection = state.range(0) ? mlm_selection::exact_count : mlm_selection::bernoulli;
  std::uint64_t sample = 0;
  for (auto _ : state) {
    mlm_result r = mlm_mask(ids, o, {seed, sample});
    benchmark::DoNotOptimize(r.input_ids.data());
    benchmark::DoNotOptimize(r.labels.data());
    sample += static_cast<std::uint64_t>(B);
  }
  state.SetItemsProcessed(state.iterations() * B * L);
  state.SetBytesProcessed(state.iterations() * B * L * 4);
  state.SetLabel(state.range(0) ? "exact_count" : "bernoulli");
}
BENCHMARK(BM_mlm_mask)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// BERT MLM in place into caller buffers (the copy that restores the ids is included).
void BM_mlm_mask_inplace(benchmark::State& state) {
  one_core();
  const Index B = batch(), L = 512;
  const token_matrix ids = bert_batch(B, L);
  token_matrix work(B, L), labels(B, L);
  const mlm_options o = bert_options();
  std::uint64_t sample = 0;
  for (auto _ : state) {
    work = ids;
    mlm_mask_inplace(work, labels, o, {seed, sample});
    benchmark::DoNotOptimize(work.data());
    benchmark::DoNotOptimize(labels.data());
    sample += static_cast<std::uint64_t>(B);
  }
  state.SetItemsProcessed(state.iterations() * B * L);
}
BENCHMARK(BM_mlm_mask_inplace)->Unit(benchmark::kMicrosecond);

// Whole-word masking, words of 1-3 tokens.
void BM_whole_word_mask(benchmark::State& state) {
  one_core();
  const Index B = batch(), L = 512;
  const token_matrix ids = bert_batch(B, L);
  bool_matrix starts(B, L);
  for (Index i = 0; i < B * L; ++i) starts(i / L, i % L) = (i % 3) != 1;
  whole_word_options o;
  static_cast<mlm_options&>(o) = bert_options();
  for (auto _ : state) {
    mlm_result r = whole_word_mask(ids, starts, o, {seed});
    benchmark::DoNotOptimize(r.input_ids.data());
  }
  state.SetItemsProcessed(state.iterations() * B * L);
}
BENCHMARK(BM_whole_word_mask)->Unit(benchmark::kMicrosecond);

// SpanBERT span masking, every token a word.
void BM_span_mask(benchmark::State& state) {
  one_core();
  const Index B = batch(), L = 512;
  const token_matrix ids = bert_batch(B, L);
  span_options o;
  static_cast<mlm_options&>(o) = bert_options();
  for (auto _ : state) {
    mlm_result r = span_mask(ids, o, {seed});
    benchmark::DoNotOptimize(r.input_ids.data());
  }
  state.SetItemsProcessed(state.iterations() * B * L);
}
BENCHMARK(BM_span_mask)->Unit(benchmark::kMicrosecond);

// T5 span corruption of B x 568 raw tokens (512 input tokens after corruption).
void BM_t5_span_corruption(benchmark::State& state) {
  one_core();
  const Index B = batch(), L = 568;
  const token_matrix ids = bert_batch(B, L);
  t5_options o;
  o.first_sentinel_id = 32099;
  for (auto _ : state) {
    t5_result r = t5_span_corruption(ids, o, {seed});
    benchmark::DoNotOptimize(r.inputs.data());
  }
  state.SetItemsProcessed(state.iterations() * B * L);
}
BENCHMARK(BM_t5_span_corruption)->Unit(benchmark::kMicrosecond);

// MAE masking, 196 patches per image (items = patches).
void BM_mae_random_masking(benchmark::State& state) {
  one_core();
  const Index B = batch();
  for (auto _ : state) {
    mae_result r = mae_random_masking(B, 196, 0.75, {seed});
    benchmark::DoNotOptimize(r.ids_keep.data());
  }
  state.SetItemsProcessed(state.iterations() * B * 196);
}
BENCHMARK(BM_mae_random_masking)->Unit(benchmark::kMicrosecond);

// LLaDA masked-diffusion noising, B x 4096 (items = tokens); out of place, as it returns the
// noised ids, the mask and the weights.
void BM_diffusion_mask(benchmark::State& state) {
  one_core();
  const Index B = short_run() ? 4 : 64, L = 4096;
  const token_matrix ids = bert_batch(B, L);
  diffusion_options o;
  o.vocab_size = 126464;  // LLaDA's vocabulary and mask id
  o.mask_id = 126336;
  std::uint64_t sample = 0;
  for (auto _ : state) {
    diffusion_result r = diffusion_mask(ids, o, {seed, sample});
    sample += static_cast<std::uint64_t>(B);
    benchmark::DoNotOptimize(r.noisy_ids.data());
  }
  state.SetItemsProcessed(state.iterations() * B * L);
}
BENCHMARK(BM_diffusion_mask)->Unit(benchmark::kMicrosecond);

// MaskGIT training masks (cosine schedule), B x 256 tokens (a 16 x 16 VQ grid).
void BM_maskgit_mask(benchmark::State& state) {
  one_core();
  const Index B = batch(), L = 256;
  const token_matrix ids = bert_batch(B, L);
  maskgit_options o;
  o.vocab_size = 30522;
  o.mask_id = 103;
  for (auto _ : state) {
    maskgit_result r = maskgit_mask(ids, o, {seed});
    benchmark::DoNotOptimize(r.noisy_ids.data());
  }
  state.SetItemsProcessed(state.iterations() * B * L);
}
BENCHMARK(BM_maskgit_mask)->Unit(benchmark::kMicrosecond);

// BEiT blockwise masks of 14 x 14 patches, 75 masked (items = masks).
void BM_beit_block_mask(benchmark::State& state) {
  one_core();
  const Index B = batch();
  std::uint64_t sample = 0;
  for (auto _ : state) {
    patch_grid_mask r = beit_block_mask(B, {}, {seed, sample});
    sample += static_cast<std::uint64_t>(B);
    benchmark::DoNotOptimize(r.masked.data());
  }
  state.SetItemsProcessed(state.iterations() * B);
}
BENCHMARK(BM_beit_block_mask)->Unit(benchmark::kMicrosecond);

// SimMIM masks, 192 / 32 / 4: 48 x 48 model patches (items = masks).
void BM_simmim_mask(benchmark::State& state) {
  one_core();
  const Index B = batch();
  for (auto _ : state) {
    patch_grid_mask r = simmim_mask(B, {}, {seed});
    benchmark::DoNotOptimize(r.masked.data());
  }
  state.SetItemsProcessed(state.iterations() * B);
}
BENCHMARK(BM_simmim_mask)->Unit(benchmark::kMicrosecond);

// data2vec 2.0 inverse block masks of 14 x 14 patches (items = masks).
void BM_data2vec_block_mask(benchmark::State& state) {
  one_core();
  const Index B = batch();
  for (auto _ : state) {
    patch_grid_mask r = data2vec_block_mask(B, {}, {seed});
    benchmark::DoNotOptimize(r.masked.data());
  }
  state.SetItemsProcessed(state.iterations() * B);
}
BENCHMARK(BM_data2vec_block_mask)->Unit(benchmark::kMicrosecond);

// wav2vec 2.0 pre-training spans (p = 0.65, length 10) over B x 500 frames (items = frames).
void BM_audio_span_mask(benchmark::State& state) {
  one_core();
  const Index B = batch(), L = 500;
  audio_span_options o;
  o.mask_prob = 0.65;
  for (auto _ : state) {
    audio_span_result r = audio_span_mask(B, L, o, {seed});
    benchmark::DoNotOptimize(r.masked.data());
  }
  state.SetItemsProcessed(state.iterations() * B * L);
}
BENCHMARK(BM_audio_span_mask)->Unit(benchmark::kMicrosecond);

// Raw generator: packed Philox words per second.
void BM_philox_words(benchmark::State& state) {
  const std::size_t n = 1 << 16;
  std::vector<std::uint32_t> out(n);
  std::uint64_t sample = 0;
  for (auto _ : state) {
    detail::fill_packed_words(42, sample++, purpose::user, 0, n, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_philox_words)->Unit(benchmark::kMicrosecond);
}  // namespace

BENCHMARK_MAIN();
