// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * --sample: estimates of live bytes per site against tests/fixtures/sampled.c,
 * whose sites each hold SITE_MIB MiB at exit in blocks of 256 B, 4 KiB and
 * 1 MiB; and exact mode, which must not change.
 *
 * Why this cannot flake: at T = 512 KiB a site of small blocks (Z << T)
 * yields a Poisson number of samples of mean B/T = 1536 for B = 768 MiB,
 * and its estimate has a relative standard error of 1/sqrt(1536) = 2.6%:
 * +-10% is 3.9 standard errors, missed with probability < 1e-4 per site.
 * The 1 MiB site's error is sqrt((1-p)/(p n)) with p = 1 - e^-2, n = 768:
 * 1.4%, so +-10% is 7 standard errors. Under 2e-4 for the whole test.
 * (A site of 64 MiB in small blocks gives 128 samples, 8.8%: too few to
 * promise +-10%.) The draws come from bpf_get_prandom_u32, so no seed
 * makes this pass or fail; only the number of samples does.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "common_e2e.h"

#define SITE_MIB 768
#define SITE_BYTES ((int64_t)SITE_MIB << 20)
#define T_BYTES (512 * 1024)

static void expect_close(json_object *sus, const char *field, double truth, const char *site)
{
	double v = (double)e2e_int(sus, field);

	cr_expect(fabs(v / truth - 1) <= 0.10, "%s: %s %.0f, exact %.0f (%+.1f%%)", site, field, v, truth,
		  100 * (v / truth - 1));
}

static void check_site(json_object *report, const char *site, int64_t block)
{
	json_object *sus = e2e_suspect(report, 0, "hold", site);
	double rel;

	cr_assert(sus, "no suspect hold <- %s", site);
	expect_close(sus, "bytes", SITE_BYTES, site);
	expect_close(sus, "allocations", (double)(SITE_BYTES / block), site);
	cr_expect(json_object_get_boolean(e2e_member(sus, "sampled")), "%s not marked sampled", site);
	cr_expect_gt(e2e_int(sus, "samples"), 0);
	/* The error the report gives is the one the bound above relies on. */
	rel = e2e_number(sus, "relative_error");
	cr_expect(rel > 0.005 && rel < 0.04, "%s: relative error %.4f", site, rel);
}

Test(e2e_sample, estimates_within_ten_percent_at_512k, .timeout = 400)
{
	struct e2e_run r;
	char mib[16];
	const char *args[] = { "--sample", "512K", "--", e2e_fixture("sampled"), mib, NULL };

	snprintf(mib, sizeof(mib), "%d", SITE_MIB);
	e2e_stray_run(&r, 360, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	cr_expect(json_object_get_boolean(e2e_member(r.report, "sampled")));
	cr_expect_eq(e2e_int(r.report, "sample_bytes"), T_BYTES);
	check_site(r.report, "hold_small", 256);
	check_site(r.report, "hold_page", 4096);
	check_site(r.report, "hold_huge", 1 << 20);
	/* churn() freed all it allocated: nothing of it may remain. */
	cr_expect_eq(e2e_suspects_with(r.report, "churn"), 0);
	/* Frees of unsampled blocks and returns of unsampled calls are normal
	 * in sampled mode, not anomalies. */
	cr_expect_eq(e2e_int(r.report, "totals.unmatched_frees"), 0);
	cr_expect_eq(e2e_int(r.report, "totals.dropped.missing_entry"), 0);
	/* malloc's own mmap of a 1 MiB block belongs to the malloc, sampled
	 * or not: no mmap region may be recorded. */
	cr_expect_eq(e2e_int(r.report, "totals.mmap_regions"), 0);
	cr_expect(strstr(r.out, "estimated from"), "the text report does not say it estimates");
	e2e_run_free(&r);
}

/* Exact tracking stays the default, and its report says it is exact. */
Test(e2e_sample, exact_by_default)
{
	struct e2e_run r;
	const char *args[] = { "--", e2e_fixture("exact"), "--no-threads", NULL };
	json_object *sus;

	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	cr_expect(!json_object_get_boolean(e2e_member(r.report, "sampled")));
	cr_expect(json_object_is_type(e2e_member(r.report, "sample_bytes"), json_type_null));
	sus = e2e_suspect(r.report, 0, "leak_malloc", "main");
	cr_assert(sus);
	cr_expect_eq(e2e_int(sus, "bytes"), 300);
	cr_expect(!json_object_object_get_ex(sus, "relative_error", NULL));
	cr_expect(!strstr(r.out, "estimated from"));
	e2e_run_free(&r);
}

/*
 * At T = 1 byte every block of 10 bytes or more is sampled (p > 0.9999)
 * and stands for itself: the sampled path, with its handling of calls
 * nested in unsampled ones (operator new's malloc, realloc's, malloc's
 * mmap), must then report what exact mode reports, site by site.
 */
static void expect_same_as_exact(const char *fixture)
{
	static const char *const totals[] = {
		"totals.outstanding_bytes", "totals.outstanding_allocations", "totals.outstanding_mmap_bytes",
		"totals.outstanding_mmap_regions",
	};
	const char *exact_args[] = { "--", e2e_fixture(fixture), "--no-threads", NULL };
	const char *sampled_args[] = { "--sample", "1", "--", e2e_fixture(fixture), "--no-threads", NULL };
	struct e2e_run exact, sampled;

	e2e_stray_run(&exact, 60, exact_args);
	e2e_stray_run(&sampled, 60, sampled_args);
	cr_assert(exact.status == 0 && sampled.status == 0 && exact.report && sampled.report, "%s: %s %s",
		  fixture, exact.err, sampled.err);
	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++)
		cr_expect_eq(e2e_int(sampled.report, totals[i]), e2e_int(exact.report, totals[i]), "%s: %s", fixture,
			     totals[i]);
	cr_expect_eq(e2e_suspects_count(sampled.report, 0), e2e_suspects_count(exact.report, 0), "%s", fixture);
	cr_expect_eq(e2e_int(sampled.report, "totals.dropped.stale_inflight"), 0, "%s", fixture);
	e2e_run_free(&exact);
	e2e_run_free(&sampled);
}

Test(e2e_sample, one_byte_sampling_is_exact)
{
	expect_same_as_exact("exact");
	expect_same_as_exact("cxxleak");
	expect_same_as_exact("cxxleak-static");
}

/* "fn0 <- fn1" of a suspect's first two frames ("?" when unknown). */
static void site_name(json_object *sus, char *buf, size_t len)
{
	json_object *stack = e2e_member(sus, "stack"), *fn;
	const char *names[2] = { "?", "?" };

	for (size_t i = 0; i < 2 && i < json_object_array_length(stack); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(stack, i), "function", &fn) &&
		    json_object_get_string(fn))
			names[i] = json_object_get_string(fn);
	snprintf(buf, len, "%s <- %s", names[0], names[1]);
}

static bool has_site(json_object *report, const char *name)
{
	json_object *sus = e2e_member(report, "suspects");
	char buf[512];

	for (size_t i = 0; i < json_object_array_length(sus); i++) {
		site_name(json_object_array_get_idx(sus, i), buf, sizeof(buf));
		if (!strcmp(buf, name))
			return true;
	}
	return false;
}

/*
 * At T = 64 bytes most of cxxleak's small blocks are not sampled: each
 * unsampled operator new must hide the malloc it makes from sampling (or
 * that malloc, sampled on its own, would be a site inside libstdc++).
 * Whatever is sampled sits at a site exact mode reports.
 */
Test(e2e_sample, sampled_sites_are_exact_sites)
{
	const char *exact_args[] = { "--", e2e_fixture("cxxleak"), NULL };
	const char *sampled_args[] = { "--sample", "64", "--", e2e_fixture("cxxleak"), NULL };
	struct e2e_run exact, sampled;
	json_object *sus;
	char name[512];

	e2e_stray_run(&exact, 60, exact_args);
	e2e_stray_run(&sampled, 60, sampled_args);
	cr_assert(exact.status == 0 && sampled.status == 0 && exact.report && sampled.report, "%s %s",
		  exact.err, sampled.err);
	sus = e2e_member(sampled.report, "suspects");
	cr_expect_gt(json_object_array_length(sus), 0);
	for (size_t i = 0; i < json_object_array_length(sus); i++) {
		site_name(json_object_array_get_idx(sus, i), name, sizeof(name));
		cr_expect(has_site(exact.report, name), "sampled site %s is not an exact site", name);
	}
	cr_expect_eq(e2e_int(sampled.report, "totals.dropped.stale_inflight"), 0);
	cr_expect_eq(e2e_int(sampled.report, "totals.dropped.missing_entry"), 0);
	e2e_run_free(&exact);
	e2e_run_free(&sampled);
}

Test(e2e_sample, bad_sample_size_is_one_line)
{
	static const char *const bad[] = { "0", "-4K", "12Q", "", "2T" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct e2e_run r;
		const char *args[] = { "--sample", bad[i], "--", "/bin/true", NULL };

		e2e_stray_run_nojson(&r, 30, args);
		cr_expect_eq(r.status, 1, "--sample '%s': status %d", bad[i], r.status);
		cr_expect(strstr(r.err, "invalid --sample") && strchr(r.err, '\n') == r.err + strlen(r.err) - 1,
			  "--sample '%s': %s", bad[i], r.err);
		e2e_run_free(&r);
	}
}
