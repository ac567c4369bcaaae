/*
 * sample.h - armt_generate's choice of the next token (generate.c), shared with armt_generate_batch
 * (generate_batch.c) so that a document of a batch draws exactly the tokens it draws alone.
 */
#ifndef ARMT_SAMPLE_H
#define ARMT_SAMPLE_H

#include "armt.h"

#include <stddef.h>
#include <stdint.h>

/* The sampler's state at the start of a generation with this seed. */
uint64_t armt_sample_rng_init(uint64_t seed);
/* Bytes of the work space armt_sample_token needs for a vocabulary of V (none when greedy). */
size_t armt_sample_work_bytes(int V);
/* The next token from V logits under p's temperature, top_k and top_p (greedy when temperature <= 0:
 * argmax, ties to the lowest id); rng advances by one draw when sampling. */
int32_t armt_sample_token(const float *logits, int V, const armt_generate_params *p, uint64_t *rng,
                          void *work);

#endif
