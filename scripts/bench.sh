#!/usr/bin/env bash
# make bench: malloc/free micro-benchmark untraced, at the trap floor (empty
# programs at stray's own probe sites) and under stray, side by side in one
# run. Prints ns/op and ratios; never pass/fail on absolute times.
set -euo pipefail
BUILD=${BUILD:-build}
ITER=${ITER:-300000}
ROUNDS=${ROUNDS:-3}
bench=$BUILD/bench/malloc_bench

# run_one TRACER...: start the benchmark, let TRACER attach (it gets the PID
# as its last argument), release the benchmark, print its ns/op.
run_one() {
	local out pid tracer_pid line
	out=$(mktemp)
	coproc BENCH { exec "$bench" "$ITER" ${BENCH_ARGS:-}; }
	pid=$BENCH_PID
	read -r line <&"${BENCH[0]}"          # "ready"
	if (($#)); then
		"$@" "$pid" >/dev/null 2>&1 &
		tracer_pid=$!
		sleep 1.5                           # attach time
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

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A result
for mode in untraced floor stray; do
	vals=()
	for ((i = 0; i < ROUNDS; i++)); do
		case $mode in
		untraced) vals+=("$(run_one)") ;;
		floor) vals+=("$(run_one "$BUILD/bench/trapfloor")") ;;
		stray) vals+=("$(run_one stray_p)") ;;
		esac
	done
	result[$mode]=$(printf '%s\n' "${vals[@]}" | median)
done

printf '%-10s %12s %14s %12s\n' mode ns/op x_untraced x_floor
for mode in untraced floor stray; do
	awk -v m="$mode" -v v="${result[$mode]}" -v u="${result[untraced]}" -v f="${result[floor]}" \
		'BEGIN { printf "%-10s %12.1f %14.2f %12.2f\n", m, v, v / u, v / f }'
done

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
stray_fp() { exec "$BUILD/stray" --no-timers --unwind=fp -p "$1"; }
stray_dwarf() { exec "$BUILD/stray" --no-timers --unwind=dwarf -p "$1"; }
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
