// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * malloc/free-heavy micro-benchmark. Prints "ready", waits for SIGUSR1 (so
 * a tracer can attach first), then runs ITERATIONS rounds of
 * malloc+free (plus a calloc and a realloc every 8th round) and prints
 * "ns_per_op <value>" where one op is one allocation call with its free.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "../fixtures/wait_usr1.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *volatile sink;

static long run(long iterations)
{
	long ops = 0;

	for (long i = 0; i < iterations; i++) {
		void *p = malloc(64 + (i & 255));

		if ((i & 7) == 0) {
			p = realloc(p, 512);
			ops++;
		}
		sink = p;
		free(p);
		ops++;
	}
	return ops;
}

int main(int argc, char **argv)
{
	long iterations = argc > 1 ? atol(argv[1]) : 200000;
	double t0;
	long ops;

	ready_then_wait_usr1();
	t0 = now_s();
	ops = run(iterations);
	printf("ns_per_op %.1f\n", (now_s() - t0) * 1e9 / ops);
	return 0;
}
