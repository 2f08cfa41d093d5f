/// \file
/// \brief Umbrella of one module: reproducible random masking on Philox: MLM, whole words, spans,
/// T5, patches, features, masked diffusion, MaskGIT, BEiT / SimMIM / data2vec blocks, speech
/// spans. Include it instead of <emask/emask.hpp> to parse only this module (and
/// what it needs).
#pragma once

#include "emask/random/audio_span.hpp"
#include "emask/random/block_masks.hpp"
#include "emask/random/diffusion.hpp"
#include "emask/random/distributions.hpp"
#include "emask/random/feature.hpp"
#include "emask/random/maskgit.hpp"
#include "emask/random/mlm.hpp"
#include "emask/random/patch.hpp"
#include "emask/random/philox.hpp"
#include "emask/random/span.hpp"
#include "emask/random/t5.hpp"
#include "emask/random/tokens.hpp"
#include "emask/random/whole_word.hpp"
