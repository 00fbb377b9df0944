// SPDX-License-Identifier: GPL-2.0-or-later
#include <math.h>
#include "sampling.h"

void sampling__fill_draws(uint64_t mean, uint64_t *draws, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double q = -(double)mean * log1p(-(i + 0.5) / n);

		draws[i] = q < 1 ? 1 : (uint64_t)llround(q);
	}
}

double sampling__probability(uint64_t mean, uint64_t size)
{
	return mean ? -expm1(-(double)size / mean) : 1.0;
}

void sampling__add(struct sample_estimate *e, uint64_t mean, uint64_t size)
{
	double p = sampling__probability(mean, size);

	e->samples++;
	if (p <= 0) /* size 0: never sampled, stands for nothing */
		return;
	e->bytes += size / p;
	e->objects += 1 / p;
	e->var_bytes += (double)size * size * (1 - p) / (p * p);
}

double sampling__relative_error(const struct sample_estimate *e)
{
	return e->bytes > 0 ? sqrt(e->var_bytes) / e->bytes : 0;
}

void sampling__estimate_aggregate(uint64_t mean, uint64_t bytes, uint64_t count, double *est_bytes,
				  double *est_objects)
{
	double p = count ? sampling__probability(mean, bytes / count) : 0;

	*est_bytes = p > 0 ? bytes / p : 0;
	*est_objects = p > 0 ? count / p : 0;
}
