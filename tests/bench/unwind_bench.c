// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The cost of stack unwinding per allocation: malloc_bench's protocol
 * ("ready", SIGUSR1, "ns_per_op <value>"), with every malloc/free made
 * DEPTH frames below main. Built with frame pointers, so stray's frame
 * pointer walk and its DWARF walk both see the whole stack and the
 * difference between --unwind=fp and --unwind=dwarf on this one binary is
 * the price of the table lookups per frame. Lingers a second after
 * printing, still traced, for make bench to read the probe's statistics.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void *volatile sink;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static long churn(long iterations)
{
	for (long i = 0; i < iterations; i++) {
		void *p = malloc(64 + (i & 255));

		sink = p;
		free(p);
	}
	return iterations;
}

/* depth frames of descend, then churn: not a tail call, so each is a frame. */
__attribute__((noinline)) static long descend(int depth, long iterations)
{
	long ops = depth ? descend(depth - 1, iterations) : churn(iterations);

	__asm__ volatile("" ::: "memory");
	return ops;
}

int main(int argc, char **argv)
{
	long iterations = argc > 1 ? atol(argv[1]) : 200000;
	int depth = argc > 2 ? atoi(argv[2]) : 16;
	sigset_t set;
	double t0;
	long ops;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);
	t0 = now_s();
	ops = descend(depth, iterations);
	printf("ns_per_op %.1f\n", (now_s() - t0) * 1e9 / ops);
	fflush(stdout);
	/* Stay traced a moment: make bench reads the probe's run-time
	 * statistics before the tracer detaches. */
	sleep(1);
	return 0;
}
