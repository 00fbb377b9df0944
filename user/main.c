// SPDX-License-Identifier: GPL-2.0-or-later
/* stray: command line, environment checks, then one tracing session. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <unistd.h>
#include "session.h"
#include "stray.h"

#define STRAY_VERSION "0.1.0"

static const char usage[] =
	"usage: stray [OPTIONS] -p PID            trace a running process\n"
	"       stray [OPTIONS] -- COMMAND [ARG...] run COMMAND and report its leaks at exit\n"
	"\n"
	"  -p, --pid PID          attach to process PID (all its threads)\n"
	"  -d, --duration SECS    end the window after SECS seconds\n"
	"  -i, --interval SECS    drain the kernel maps every SECS seconds (default 1)\n"
	"      --min-age SECS     report only blocks at least SECS seconds old (default 0)\n"
	"      --json FILE        also write the report as JSON to FILE (atomically)\n"
	"      --top N            list at most N suspects in the text report (default 25, 0: all)\n"
	"      --max-allocs N     outstanding allocations tracked at once: at least N\n"
	"                         (default 1048576)\n"
	"      --max-sites N      call sites tracked at once (default 16384)\n"
	"      --max-procs N      processes followed at once in run mode (default 1024)\n"
	"      --watch            run until stopped (signal or target exit), analysing every interval\n"
	"      --report-every SECS  rewrite the --json report every SECS seconds\n"
	"      --alerts FILE      append alerts to FILE as JSON lines (\"-\": stdout)\n"
	"      --growth-alert BYTES  heap_growth threshold per hour (default 5M; K/M/G suffixes)\n"
	"      --heap-warn BYTES  heap_warn alert when RSS reaches BYTES (default off)\n"
	"      --heap-critical BYTES  heap_critical alert when RSS reaches BYTES (default off)\n"
	"      --oom-horizon SECS oom_projection when the cgroup limit is nearer (default 3600)\n"
	"      --fail-on-leak     exit with status 3 when a suspect's verdict is \"leak\"\n"
	"      --no-timers        do not trace timerfd, POSIX, interval and libuv timers\n"
	"      --follow           with -p: also trace the processes it forks (run mode always does)\n"
	"      --sample BYTES     sample heap allocations every BYTES on average (e.g. 512K):\n"
	"                         lower overhead, heap figures become estimates (default: exact)\n"
	"      --unwind MODE      stack unwinding: fp (frame pointers), dwarf (call-frame\n"
	"                         information only) or auto (CFI where modules have it, frame\n"
	"                         pointers elsewhere; the default)\n"
	"      --max-depth N      frames per stack, 1 to 64 (default 64)\n"
	"  -v, --verbose          log attachments and drains on stderr\n"
	"  -h, --help             show this help\n"
	"  -V, --version          show the version\n";

static int fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "stray: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return -1;
}

static int parse_seconds(const char *opt, const char *text, double *out, bool allow_zero)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < 0 || (!allow_zero && v == 0) ||
	    v > 365.0 * 86400) {
		fprintf(stderr, "stray: invalid %s '%s': expected a positive number of seconds\n", opt, text);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_count(const char *opt, const char *text, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max) {
		fprintf(stderr, "stray: invalid %s '%s': expected an integer from %ld to %ld\n", opt,
			text, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

enum {
	OPT_MIN_AGE = 256, OPT_JSON, OPT_TOP, OPT_MAX_ALLOCS, OPT_MAX_SITES, OPT_MAX_PROCS,
	OPT_WATCH, OPT_REPORT_EVERY, OPT_ALERTS, OPT_GROWTH_ALERT, OPT_HEAP_WARN, OPT_HEAP_CRITICAL,
	OPT_OOM_HORIZON, OPT_FAIL_ON_LEAK, OPT_NO_TIMERS,
	OPT_FOLLOW,
	OPT_SAMPLE,
	OPT_UNWIND, OPT_MAX_DEPTH,
};

/* A byte count with an optional binary suffix: 512, 64K, 5M, 2G, 1T. */
static int parse_bytes(const char *opt, const char *text, uint64_t *out)
{
	static const char units[] = "KMGT";
	const char *unit;
	double v, scale = 1;
	char *end;

	errno = 0;
	v = strtod(text, &end);
	if (*end && (unit = strchr(units, *end)) && *unit) {
		scale = (double)(1ull << (10 * (unit - units + 1)));
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
	}
	if (*end == 'B')
		end++;
	if (errno || end == text || *end || !isfinite(v) || v <= 0 || v * scale > 9.0e18) {
		fprintf(stderr, "stray: invalid %s '%s': expected a byte count such as 512, 64K, 5M or 2G\n",
			opt, text);
		return -1;
	}
	*out = (uint64_t)(v * scale);
	return 0;
}

static const struct option long_options[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "duration", required_argument, NULL, 'd' },
	{ "interval", required_argument, NULL, 'i' },
	{ "min-age", required_argument, NULL, OPT_MIN_AGE },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "top", required_argument, NULL, OPT_TOP },
	{ "max-allocs", required_argument, NULL, OPT_MAX_ALLOCS },
	{ "max-sites", required_argument, NULL, OPT_MAX_SITES },
	{ "max-procs", required_argument, NULL, OPT_MAX_PROCS },
	{ "watch", no_argument, NULL, OPT_WATCH },
	{ "report-every", required_argument, NULL, OPT_REPORT_EVERY },
	{ "sample", required_argument, NULL, OPT_SAMPLE },
	{ "alerts", required_argument, NULL, OPT_ALERTS },
	{ "growth-alert", required_argument, NULL, OPT_GROWTH_ALERT },
	{ "heap-warn", required_argument, NULL, OPT_HEAP_WARN },
	{ "heap-critical", required_argument, NULL, OPT_HEAP_CRITICAL },
	{ "oom-horizon", required_argument, NULL, OPT_OOM_HORIZON },
	{ "fail-on-leak", no_argument, NULL, OPT_FAIL_ON_LEAK },
	{ "no-timers", no_argument, NULL, OPT_NO_TIMERS },
	{ "follow", no_argument, NULL, OPT_FOLLOW },
	{ "unwind", required_argument, NULL, OPT_UNWIND },
	{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static char **parsed_argv;

/* The option getopt just rejected, as the user typed it. */
static const char *argv_option(int short_opt)
{
	static char text[3];

	if (short_opt) {
		snprintf(text, sizeof(text), "-%c", short_opt);
		return text;
	}
	return parsed_argv[optind - 1];
}

static int parse_growth_option(int c, struct session_opts *o);

static int parse_unwind(const char *text, uint32_t *mode)
{
	if (!strcmp(text, "fp"))
		*mode = STRAY_UNWIND_FP;
	else if (!strcmp(text, "dwarf"))
		*mode = STRAY_UNWIND_DWARF;
	else if (!strcmp(text, "auto"))
		*mode = STRAY_UNWIND_AUTO;
	else
		return fail("invalid --unwind '%s': expected fp, dwarf or auto", text);
	return 0;
}

/* Returns 0 to run, 1 when help/version was printed, -1 on a bad option. */
static int parse_option(int c, struct session_opts *o)
{
	long v;

	switch (c) {
	case 'p':
		if (parse_count("PID", optarg, 1, INT_MAX, &v))
			return -1;
		o->pid = v;
		return 0;
	case 'd':
		return parse_seconds("duration", optarg, &o->duration_s, false);
	case 'i':
		return parse_seconds("interval", optarg, &o->interval_s, false);
	case OPT_MIN_AGE:
		return parse_seconds("--min-age", optarg, &o->min_age_s, true);
	case OPT_JSON:
		if (!*optarg)
			return fail("invalid --json '': expected a file name", "");
		o->json_path = optarg;
		return 0;
	case OPT_TOP:
		if (parse_count("--top", optarg, 0, INT_MAX, &v))
			return -1;
		o->top = v;
		return 0;
	case OPT_MAX_ALLOCS:
		if (parse_count("--max-allocs", optarg, 16, 1L << 26, &v))
			return -1;
		o->max_allocs = v;
		return 0;
	case OPT_MAX_SITES:
		if (parse_count("--max-sites", optarg, 16, 1L << 20, &v))
			return -1;
		o->max_sites = v;
		return 0;
	case OPT_MAX_PROCS:
		if (parse_count("--max-procs", optarg, 1, 65536, &v))
			return -1;
		o->max_procs = v;
		return 0;
	case OPT_SAMPLE:
		if (parse_bytes("--sample", optarg, &o->sample_bytes))
			return -1;
		/* The draws reach ~9 T: keep them far inside 64 bits. */
		if (o->sample_bytes > (1ull << 40))
			return fail("invalid --sample '%s': at most 1T", optarg);
		return 0;
	case 'v':
		o->verbose = true;
		return 0;
	case OPT_UNWIND:
		return parse_unwind(optarg, &o->unwind_mode);
	case OPT_MAX_DEPTH:
		if (parse_count("--max-depth", optarg, 1, STRAY_MAX_STACK_DEPTH, &v))
			return -1;
		o->max_depth = v;
		return 0;
	default:
		return parse_growth_option(c, o);
	}
}

/* The options of the growth analysis and alerts. */
static int parse_growth_option(int c, struct session_opts *o)
{
	uint64_t bytes;

	switch (c) {
	case OPT_WATCH:
		o->watch = true;
		return 0;
	case OPT_REPORT_EVERY:
		return parse_seconds("--report-every", optarg, &o->report_every_s, false);
	case OPT_ALERTS:
		if (!*optarg)
			return fail("invalid --alerts '': expected a file name or -", "");
		o->alerts_path = optarg;
		return 0;
	case OPT_GROWTH_ALERT:
		if (parse_bytes("--growth-alert", optarg, &bytes))
			return -1;
		o->growth_alert_bph = bytes;
		return 0;
	case OPT_HEAP_WARN:
		return parse_bytes("--heap-warn", optarg, &o->heap_warn_bytes);
	case OPT_HEAP_CRITICAL:
		return parse_bytes("--heap-critical", optarg, &o->heap_critical_bytes);
	case OPT_OOM_HORIZON:
		return parse_seconds("--oom-horizon", optarg, &o->oom_horizon_s, false);
	case OPT_FAIL_ON_LEAK:
		o->fail_on_leak = true;
		return 0;
	case OPT_NO_TIMERS:
		o->no_timers = true;
		return 0;
	case OPT_FOLLOW:
		o->follow = true;
		return 0;
	case 'h':
		fputs(usage, stdout);
		return 1;
	case 'V':
		puts("stray " STRAY_VERSION);
		return 1;
	case ':':
		fprintf(stderr, "stray: option '%s' needs a value (see 'stray --help')\n", argv_option(optopt));
		return -1;
	default:
		fprintf(stderr, "stray: unknown option '%s' (see 'stray --help')\n", argv_option(optopt));
		return -1;
	}
}

static int parse_args(int argc, char **argv, struct session_opts *o)
{
	int c, ret;

	*o = (struct session_opts){
		.interval_s = 1.0,
		.top = 25,
		.max_allocs = STRAY_DEFAULT_MAX_ALLOCS,
		.max_sites = STRAY_DEFAULT_MAX_SITES,
		.max_procs = 1024,
		.growth_alert_bph = 5.0 * 1024 * 1024,
		.oom_horizon_s = 3600,
		.unwind_mode = STRAY_UNWIND_AUTO,
		.max_depth = STRAY_MAX_STACK_DEPTH,
	};
	/* '+': stop at the first non-option so COMMAND's own options stay its
	 * own; ':' and opterr = 0: report bad options in our one-line format. */
	parsed_argv = argv;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:p:d:i:vhV", long_options, NULL)) != -1) {
		ret = parse_option(c, o);
		if (ret)
			return ret;
	}
	if (optind < argc)
		o->command = &argv[optind];
	if (o->watch && o->duration_s > 0)
		return fail("%s", "--watch runs until stopped: drop -d");
	if (o->report_every_s > 0 && !o->json_path)
		return fail("%s", "--report-every needs --json FILE to rewrite");
	if (!o->pid == !o->command)
		return fail("%s", o->pid ? "give either -p PID or -- COMMAND, not both"
					 : "nothing to trace: give -p PID or -- COMMAND (see 'stray --help')");
	return 0;
}

/* CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) load and attach; run mode
 * also ptraces. Checking up front gives one clear line instead of a
 * libbpf error. */
static bool privileged(void)
{
	cap_t caps = cap_get_proc();
	cap_flag_value_t admin = CAP_CLEAR, bpf = CAP_CLEAR, perfmon = CAP_CLEAR;

	if (!caps)
		return geteuid() == 0;
	cap_get_flag(caps, CAP_SYS_ADMIN, CAP_EFFECTIVE, &admin);
	cap_get_flag(caps, CAP_BPF, CAP_EFFECTIVE, &bpf);
	cap_get_flag(caps, CAP_PERFMON, CAP_EFFECTIVE, &perfmon);
	cap_free(caps);
	return admin == CAP_SET || (bpf == CAP_SET && perfmon == CAP_SET);
}

static int check_environment(const struct session_opts *o)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct rlimit files = { 65536, 65536 };

	if (!privileged())
		return fail("%s", "permission denied: stray needs root (or CAP_BPF, CAP_PERFMON, "
				  "CAP_SYS_PTRACE and CAP_SYS_RESOURCE)");
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		return fail("%s", "kernel BTF not found at /sys/kernel/btf/vmlinux: stray needs a "
				  "kernel built with CONFIG_DEBUG_INFO_BTF");
	if (o->pid && kill(o->pid, 0) && errno == ESRCH) {
		fprintf(stderr, "stray: no process with PID %d\n", o->pid);
		return -1;
	}
	if (o->pid == getpid())
		return fail("%s", "stray cannot trace itself");
	/* Older kernels charge BPF maps to RLIMIT_MEMLOCK; each probe link
	 * is a file descriptor. */
	setrlimit(RLIMIT_MEMLOCK, &unlimited);
	setrlimit(RLIMIT_NOFILE, &files);
	return 0;
}

int main(int argc, char **argv)
{
	struct session_opts opts;
	int ret = parse_args(argc, argv, &opts);

	if (ret)
		return ret > 0 ? 0 : 1;
	if (check_environment(&opts))
		return 1;
	return session__run(&opts);
}
