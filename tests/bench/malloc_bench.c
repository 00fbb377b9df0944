// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * malloc/free-heavy micro-benchmark. Prints "ready", waits for SIGUSR1 (so
 * a tracer can attach first), then runs ITERATIONS rounds of
 * malloc+free (plus a calloc and a realloc every 8th round) and prints
 * "ns_per_op <value>" where one op is one allocation call with its free.
 *
 * With a second argument DEPTH, the rounds run DEPTH frames below main
 * (make bench builds this file a second time, as unwind_bench, with frame
 * pointers, to compare stray's --unwind modes on stacks both walks see
 * whole), and the program lingers a second after its result, still traced,
 * for make bench to read the probe's run-time statistics.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
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

/* depth frames of descend, then run: not tail calls, each is a frame. */
__attribute__((noinline)) static long descend(int depth, long iterations)
{
	long ops = depth > 0 ? descend(depth - 1, iterations) : run(iterations);

	__asm__ volatile("" ::: "memory");
	return ops;
}

int main(int argc, char **argv)
{
	long iterations = argc > 1 ? atol(argv[1]) : 200000;
	int depth = argc > 2 ? atoi(argv[2]) : 0;
	double t0;
	long ops;

	ready_then_wait_usr1();
	t0 = now_s();
	ops = descend(depth, iterations);
	printf("ns_per_op %.1f\n", (now_s() - t0) * 1e9 / ops);
	fflush(stdout);
	if (argc > 2)
		sleep(1);
	return 0;
}
