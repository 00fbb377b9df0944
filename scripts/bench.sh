#!/usr/bin/env bash
# make bench: malloc/free micro-benchmark untraced, at the trap floor (empty
# programs at stray's own probe sites), under stray (exact, and sampled at
# 512 KiB) and under a memleak-like bpftrace script, side by side in one
# run; then a real workload (Debian's sqlite3) untraced and traced. Prints
# ns/op and ratios; never pass/fail on absolute times.
set -euo pipefail
BUILD=${BUILD:-build}
ITER=${ITER:-300000}
ROUNDS=${ROUNDS:-3}
SAMPLE=${SAMPLE:-512K}
SQLITE_ROUNDS=${SQLITE_ROUNDS:-1}
bench=$BUILD/bench/malloc_bench
memleak_bt=tests/bench/memleak.bt
sqlite_sql=tests/bench/sqlite_workload.sql

# wait_ready FILE: a tracer that prints $READY when attached is waited for
# (bpftrace compiles its script first); others get a fixed attach time.
wait_ready() {
	local t
	if [[ -z ${READY:-} ]]; then
		sleep 1.5
		return
	fi
	for ((t = 0; t < 240; t++)); do
		grep -q "$READY" "$1" && return
		sleep 0.5
	done
	echo "bench: tracer never printed '$READY':" >&2
	cat "$1" >&2
	return 1
}

# run_one TRACER...: start the benchmark, let TRACER attach (it gets the PID
# as its last argument), release the benchmark, print its ns/op.
run_one() {
	local out pid tracer_pid line
	out=$(mktemp)
	coproc BENCH { exec "$bench" "$ITER" ${BENCH_ARGS:-}; }
	pid=$BENCH_PID
	read -r line <&"${BENCH[0]}"          # "ready"
	if (($#)); then
		"$@" "$pid" >"$out" 2>&1 &
		tracer_pid=$!
		wait_ready "$out"
	fi
	kill -USR1 "$pid"
	read -r line <&"${BENCH[0]}"
	# The benchmark lingers after its result: the tracer is still attached.
	[[ -n ${PROG_STATS:-} && -n ${tracer_pid:-} ]] && line="$line $(prog_ns "$tracer_pid")"
	wait "$pid" 2>/dev/null || true
	[[ -n ${tracer_pid:-} ]] && wait "$tracer_pid" 2>/dev/null || true
	rm -f "$out"
	echo "${line#ns_per_op }"
}

stray_p() { "$BUILD/stray" -p "$1"; }
sampled_p() { "$BUILD/stray" --sample "$SAMPLE" -p "$1"; }
# (bpftrace warns that it cannot raise RLIMIT_MEMLOCK: this kernel
# accounts BPF memory to cgroups, the warning is harmless.)
bpftrace_p() { bpftrace -p "$1" "$memleak_bt"; }
# Probe placement off: every probe at its function's entry (user/placement.h).
floor_entry() { STRAY_PLACEMENT=entry "$BUILD/bench/trapfloor" "$1"; }
stray_entry() { STRAY_PLACEMENT=entry "$BUILD/stray" -p "$1"; }
# Attach modes (user/attach_mode.h): stray picks the best; these force one.
stray_multi() { STRAY_ATTACH=multi "$BUILD/stray" -p "$1"; }
floor_multi() { STRAY_ATTACH=multi "$BUILD/bench/trapfloor" "$1"; }
stray_classic() { STRAY_ATTACH=classic "$BUILD/stray" -p "$1"; }
# Frame pointers only (the default is --unwind=auto: call-frame information).
stray_fponly() { "$BUILD/stray" --unwind=fp -p "$1"; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A result
modes=(untraced floor floor_entry floor_multi stray stray_fponly stray_entry stray_multi stray_classic sampled bpftrace)
for mode in "${modes[@]}"; do
	vals=()
	for ((i = 0; i < ROUNDS; i++)); do
		case $mode in
		untraced) vals+=("$(run_one)") ;;
		floor) vals+=("$(run_one "$BUILD/bench/trapfloor")") ;;
		stray) vals+=("$(run_one stray_p)") ;;
		sampled) vals+=("$(run_one sampled_p)") ;;
		bpftrace) vals+=("$(READY=ready run_one bpftrace_p)") ;;
		floor_entry) vals+=("$(run_one floor_entry)") ;;
		stray_entry) vals+=("$(run_one stray_entry)") ;;
		stray_multi) vals+=("$(run_one stray_multi)") ;;
		floor_multi) vals+=("$(run_one floor_multi)") ;;
		stray_classic) vals+=("$(run_one stray_classic)") ;;
		stray_fponly) vals+=("$(run_one stray_fponly)") ;;
		esac
	done
	result[$mode]=$(printf '%s\n' "${vals[@]}" | median)
done

echo "malloc_bench, $ITER rounds, median of $ROUNDS (sampled: --sample $SAMPLE; bpftrace: $memleak_bt)"
printf '%-14s %12s %14s %12s %12s\n' mode ns/op x_untraced x_floor x_bpftrace
for mode in "${modes[@]}"; do
	awk -v m="$mode" -v v="${result[$mode]}" -v u="${result[untraced]}" -v f="${result[floor]}" \
		-v b="${result[bpftrace]}" \
		'BEGIN { printf "%-14s %12.1f %14.2f %12.2f %12.2f\n", m, v, v / u, v / f, v / b }'
done
awk -v s="${result[stray]}" -v p="${result[sampled]}" -v b="${result[bpftrace]}" \
	-v f="${result[floor]}" -v sf="${result[stray_fponly]}" 'BEGIN {
	printf "stray exact / trap floor = %.2f, with --unwind=fp %.2f (target <= 1.3)\n", s / f, sf / f
	printf "stray exact / bpftrace   = %.2f (target <= 0.45)\n", s / b
	printf "stray sampled / bpftrace = %.2f (target <= 0.30)\n", p / b
}'

# Placement gain: the same probes at function entries vs where placement
# put them (floor_entry / floor), for the trap floor and for stray.
awk -v fe="${result[floor_entry]}" -v f="${result[floor]}" -v se="${result[stray_entry]}" \
	-v s="${result[stray]}" 'BEGIN { printf "placement gain: floor %.2fx, stray %.2fx\n", fe / f, se / s }'
# stray against the floor with the same link type.
awk -v s="${result[stray]}" -v f="${result[floor]}" -v sm="${result[stray_multi]}" -v fm="${result[floor_multi]}" \
	'BEGIN { printf "stray / floor, same links: default %.2fx, multi %.2fx\n", s / f, sm / fm }'


# ---- real workload: sqlite3 (the sum of its statements' times) ----------
# sqlite3 reads the script with -init, then its stdin (empty) and exits.
sqlite=$(command -v sqlite3)
sqlite_cmd=("$sqlite" -init "$sqlite_sql" :memory:)
sum_run_time() { awk '/^Run Time:/ { s += $4 } END { printf "%.3f\n", s }'; }

sqlite_seconds() {
	case $1 in
	untraced) "${sqlite_cmd[@]}" ;;
	stray) "$BUILD/stray" -- "${sqlite_cmd[@]}" ;;
	sampled) "$BUILD/stray" --sample "$SAMPLE" -- "${sqlite_cmd[@]}" ;;
	# bpftrace -c wants one string and a binary path it can resolve uniquely
	bpftrace) bpftrace -c "${sqlite_cmd[*]}" "$memleak_bt" ;;
	esac </dev/null 2>/dev/null | sum_run_time
}

declare -A sq
for mode in untraced stray sampled bpftrace; do
	vals=()
	for ((i = 0; i < SQLITE_ROUNDS; i++)); do
		vals+=("$(sqlite_seconds "$mode")")
	done
	sq[$mode]=$(printf '%s\n' "${vals[@]}" | median)
done
echo
echo "sqlite3 workload ($sqlite_sql), seconds, median of $SQLITE_ROUNDS"
printf '%-10s %12s %14s %12s\n' mode seconds x_untraced x_bpftrace
for mode in untraced stray sampled bpftrace; do
	awk -v m="$mode" -v v="${sq[$mode]}" -v u="${sq[untraced]}" -v b="${sq[bpftrace]}" \
		'BEGIN { printf "%-10s %12.3f %14.2f %12.2f\n", m, v, v / u, v / b }'
done
# Attach cost: stray start to "attached" (BPF load included) on a process
# with 100 threads and 50 dlopened libraries; median of ROUNDS.
attach_ms() {
	local pid ms
	"$BUILD/fixtures/manylibs" >/dev/null &
	pid=$!
	sleep 1
	ms=$("$BUILD/stray" -v -p "$pid" -d 0.2 2>&1 >/dev/null | sed -n 's/.*attached to pid [0-9]*: \([0-9.]*\) ms.*/\1/p')
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	echo "$ms"
}
vals=()
for ((i = 0; i < ROUNDS; i++)); do vals+=("$(attach_ms)"); done
printf 'attach, 100 threads + 50 libraries: %s ms (median of %d)\n' "$(printf '%s\n' "${vals[@]}" | median)" "$ROUNDS"

# Unwinding: the same deep-stack binary (frame pointers kept, so both walks
# see every frame) under --unwind=fp and --unwind=dwarf, alternating within
# each round. Two figures: the benchmark's ns per malloc+free (trap costs
# included, noisy on a busy machine) and, from the kernel's BPF run-time
# statistics, the mean run time of the return probe that captures the stack
# (the per-allocation work the unwinder adds to).

# prog_ns PID: mean run time (ns) of stray PID's alloc_return program (the
# program ids of its file descriptors, from fdinfo: other strays may run).
prog_ns() {
	local ids
	ids=$(cat /proc/"$1"/fdinfo/* 2>/dev/null | awk '/^prog_id:/ { print $2 }' | sort -u | jq -s -c .)
	bpftool -j prog show 2>/dev/null | jq -r --argjson ids "${ids:-[]}" '
		[.[] | select(.name == "alloc_return" and (.id as $id | $ids | index($id)))][0]
		| if . != null and (.run_cnt // 0) > 0 then .run_time_ns / .run_cnt else "nan" end'
}

stats_was=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -q -w kernel.bpf_stats_enabled="$stats_was"' EXIT
sysctl -q -w kernel.bpf_stats_enabled=1

UNWIND_DEPTH=${UNWIND_DEPTH:-16}
bench=$BUILD/bench/unwind_bench
BENCH_ARGS=$UNWIND_DEPTH
# (multi links: the return probe is its own program, alloc_return)
stray_fp() { STRAY_ATTACH=multi exec "$BUILD/stray" --no-timers --unwind=fp -p "$1"; }
stray_dwarf() { STRAY_ATTACH=multi exec "$BUILD/stray" --no-timers --unwind=dwarf -p "$1"; }
declare -A op prog
for mode in untraced fp dwarf; do op[$mode]=""; prog[$mode]=""; done
for ((i = 0; i < ROUNDS; i++)); do
	op[untraced]+="$(run_one) "
	for mode in fp dwarf; do
		read -r o p < <(PROG_STATS=1 run_one "stray_$mode")
		op[$mode]+="$o "
		prog[$mode]+="$p "
	done
done
med() { printf '%s\n' $1 | median; }

echo
echo "unwinding: malloc_bench $UNWIND_DEPTH frames below main, built with frame pointers (unwind_bench)"
printf '%-10s %12s %14s %16s %12s\n' unwind ns/op x_untraced probe_ns/alloc x_fp
for mode in untraced fp dwarf; do
	awk -v m="$mode" -v v="$(med "${op[$mode]}")" -v u="$(med "${op[untraced]}")" \
		-v p="$(med "${prog[$mode]:-nan}")" -v f="$(med "${prog[fp]}")" \
		'BEGIN { if (m == "untraced") printf "%-10s %12.1f %14.2f %16s %12s\n", m, v, v / u, "-", "-";
			 else printf "%-10s %12.1f %14.2f %16.0f %12.2f\n", m, v, v / u, p, p / f }'
done
