// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for --sample's draws and estimators (user/sampling.c). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "sampling.h"
#include "stray.h"

#define T_512K (512u * 1024)

Test(sampling, probability_is_one_minus_exp)
{
	cr_assert_float_eq(sampling__probability(T_512K, T_512K), 1 - exp(-1), 1e-12);
	cr_assert_float_eq(sampling__probability(T_512K, 64), -expm1(-64.0 / T_512K), 1e-15);
	cr_assert_float_eq(sampling__probability(T_512K, 0), 0, 0);
	cr_assert_float_eq(sampling__probability(T_512K, 1ull << 40), 1, 1e-12);
}

Test(sampling, one_sample_stands_for_z_over_p)
{
	struct sample_estimate e = { 0 };
	double p = 1 - exp(-4096.0 / T_512K);

	sampling__add(&e, T_512K, 4096);
	cr_assert_eq(e.samples, 1);
	cr_assert_float_eq(e.bytes, 4096 / p, 1e-6);
	cr_assert_float_eq(e.objects, 1 / p, 1e-9);
	cr_assert_float_eq(e.var_bytes, 4096.0 * 4096 * (1 - p) / (p * p), 1e-3);
}

/* A block far above T is always sampled: it stands for itself, exactly. */
Test(sampling, huge_block_is_exact)
{
	struct sample_estimate e = { 0 };

	sampling__add(&e, T_512K, 64ull << 20);
	cr_assert_float_eq(e.bytes, 64ull << 20, 1e-3);
	cr_assert_float_eq(e.objects, 1, 1e-12);
	cr_assert_float_eq(sampling__relative_error(&e), 0, 1e-9);
}

/* n samples of small blocks: relative error about 1/sqrt(n). */
Test(sampling, small_blocks_error_is_one_over_sqrt_n)
{
	struct sample_estimate e = { 0 };

	for (int i = 0; i < 1600; i++)
		sampling__add(&e, T_512K, 64);
	cr_assert_float_eq(sampling__relative_error(&e), 1 / 40.0, 1e-3);
	cr_assert_float_eq(sampling__relative_error(&(struct sample_estimate){ 0 }), 0, 0);
}

/* Blocks of one size: the aggregate estimate is the per-sample one. */
Test(sampling, aggregate_matches_per_sample_for_one_size)
{
	struct sample_estimate e = { 0 };
	double bytes, objects;

	for (int i = 0; i < 37; i++)
		sampling__add(&e, T_512K, 1000);
	sampling__estimate_aggregate(T_512K, 37 * 1000, 37, &bytes, &objects);
	cr_assert_float_eq(bytes, e.bytes, 1e-6 * e.bytes);
	cr_assert_float_eq(objects, e.objects, 1e-6 * e.objects);
	sampling__estimate_aggregate(T_512K, 0, 0, &bytes, &objects);
	cr_assert_float_eq(bytes, 0, 0);
	cr_assert_float_eq(objects, 0, 0);
}

static uint64_t draws[STRAY_SAMPLE_DRAWS];

/* The table is Exp(T): mean T, and P(draw <= z) = 1 - e^(-z/T) within the
 * table's resolution, at every scale that matters. */
Test(sampling, draws_are_exponential)
{
	double sum = 0;

	sampling__fill_draws(T_512K, draws, STRAY_SAMPLE_DRAWS);
	for (size_t i = 0; i < STRAY_SAMPLE_DRAWS; i++) {
		cr_assert_geq(draws[i], 1);
		sum += draws[i];
	}
	/* The midpoint quantiles lose only the far tail (above ln(2n) T). */
	cr_assert_float_eq(sum / STRAY_SAMPLE_DRAWS / T_512K, 1.0, 0.005);
	for (uint64_t z = 64; z <= 8ull * T_512K; z *= 4) {
		size_t below = 0;

		for (size_t i = 0; i < STRAY_SAMPLE_DRAWS; i++)
			below += draws[i] <= z;
		cr_assert_float_eq((double)below / STRAY_SAMPLE_DRAWS, sampling__probability(T_512K, z),
				   1.0 / STRAY_SAMPLE_DRAWS + 1e-9, "P(draw <= %lu)", (unsigned long)z);
	}
}

/* xorshift64*: a fixed seed keeps this test deterministic. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng32(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (rng_state * 0x2545f4914f6cdd1dull) >> 32;
}

/* The BPF side (bpf/sample.bpf.h, sample_crossed), step for step. */
static bool crossed(uint64_t *countdown, uint64_t size)
{
	if (!*countdown)
		*countdown = draws[rng32() & (STRAY_SAMPLE_DRAWS - 1)];
	if (size < *countdown) {
		*countdown -= size;
		return false;
	}
	*countdown = draws[rng32() & (STRAY_SAMPLE_DRAWS - 1)];
	return true;
}

/*
 * Unbiased, end to end: a population mixing 64 B, 4 KiB, 300 KiB and
 * 2 MiB blocks in one thread, sampled by the BPF algorithm and estimated;
 * the mean estimate over many rounds is the truth, per size, and the
 * spread of the estimates is what the variance estimate says.
 */
Test(sampling, countdown_and_estimator_are_unbiased)
{
	static const uint64_t sizes[] = { 64, 4096, 300 * 1024, 2 << 20 };
	static const uint64_t counts[] = { 40000, 4000, 60, 8 };
	enum { NSIZES = 4, ROUNDS = 400 };
	double truth[NSIZES], mean[NSIZES] = { 0 }, mean_objects[NSIZES] = { 0 }, sq[NSIZES] = { 0 };
	double mean_var[NSIZES] = { 0 };
	uint64_t countdown = 0;

	sampling__fill_draws(T_512K, draws, STRAY_SAMPLE_DRAWS);
	for (int k = 0; k < NSIZES; k++)
		truth[k] = (double)sizes[k] * counts[k];
	for (int r = 0; r < ROUNDS; r++) {
		struct sample_estimate e[NSIZES] = { 0 };
		uint64_t left[NSIZES];

		for (int k = 0; k < NSIZES; k++)
			left[k] = counts[k];
		/* Interleave the sizes, as a program would. */
		for (uint64_t i = 0; left[0] + left[1] + left[2] + left[3]; i++) {
			int k = i % NSIZES;

			if (left[k] && left[k]--)
				if (crossed(&countdown, sizes[k]))
					sampling__add(&e[k], T_512K, sizes[k]);
		}
		for (int k = 0; k < NSIZES; k++) {
			mean[k] += e[k].bytes / ROUNDS;
			mean_objects[k] += e[k].objects / ROUNDS;
			mean_var[k] += e[k].var_bytes / ROUNDS;
			sq[k] += (e[k].bytes - truth[k]) * (e[k].bytes - truth[k]) / ROUNDS;
		}
	}
	for (int k = 0; k < NSIZES; k++) {
		/* The mean of 400 rounds has a standard error of sd/20:
		 * 1.5% covers it for every size here. */
		cr_expect_float_eq(mean[k] / truth[k], 1.0, 0.015, "size %lu: mean estimate %.4f of the truth",
				   (unsigned long)sizes[k], mean[k] / truth[k]);
		cr_expect_float_eq(mean_objects[k] / counts[k], 1.0, 0.015, "size %lu: mean object estimate %.4f",
				   (unsigned long)sizes[k], mean_objects[k] / counts[k]);
		/* The variance estimate agrees with the observed spread,
		 * where misses are frequent enough to measure one (2 MiB
		 * blocks are missed once in 55: about 60 misses in all). */
		if (sizes[k] < T_512K)
			cr_expect_float_eq(mean_var[k] / sq[k], 1.0, 0.25,
					   "size %lu: variance estimate %.3f of observed",
					   (unsigned long)sizes[k], mean_var[k] / sq[k]);
		cr_log_info("size %lu: mean %.4f, objects %.4f, var ratio %.3f\n", (unsigned long)sizes[k],
			    mean[k] / truth[k], mean_objects[k] / counts[k], mean_var[k] / sq[k]);
	}
}
