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
	coproc BENCH { exec "$bench" "$ITER"; }
	pid=$BENCH_PID
	read -r line <&"${BENCH[0]}"          # "ready"
	if (($#)); then
		"$@" "$pid" >/dev/null 2>&1 &
		tracer_pid=$!
		sleep 1.5                           # attach time
	fi
	kill -USR1 "$pid"
	read -r line <&"${BENCH[0]}"
	wait "$pid" 2>/dev/null || true
	[[ -n ${tracer_pid:-} ]] && wait "$tracer_pid" 2>/dev/null || true
	rm -f "$out"
	echo "${line#ns_per_op }"
}

stray_p() { "$BUILD/stray" -p "$1"; }
# Probe placement off: every probe at its function's entry (user/placement.h).
floor_entry() { STRAY_PLACEMENT=entry "$BUILD/bench/trapfloor" "$1"; }
stray_entry() { STRAY_PLACEMENT=entry "$BUILD/stray" -p "$1"; }
# Attach modes (user/attach_mode.h): stray picks the best; these force one.
stray_multi() { STRAY_ATTACH=multi "$BUILD/stray" -p "$1"; }
floor_multi() { STRAY_ATTACH=multi "$BUILD/bench/trapfloor" "$1"; }
stray_classic() { STRAY_ATTACH=classic "$BUILD/stray" -p "$1"; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A result
modes=(untraced floor floor_entry floor_multi stray stray_entry stray_multi stray_classic)
for mode in "${modes[@]}"; do
	vals=()
	for ((i = 0; i < ROUNDS; i++)); do
		case $mode in
		untraced) vals+=("$(run_one)") ;;
		floor) vals+=("$(run_one "$BUILD/bench/trapfloor")") ;;
		stray) vals+=("$(run_one stray_p)") ;;
		floor_entry) vals+=("$(run_one floor_entry)") ;;
		stray_entry) vals+=("$(run_one stray_entry)") ;;
		stray_multi) vals+=("$(run_one stray_multi)") ;;
		floor_multi) vals+=("$(run_one floor_multi)") ;;
		stray_classic) vals+=("$(run_one stray_classic)") ;;
		esac
	done
	result[$mode]=$(printf '%s\n' "${vals[@]}" | median)
done

printf '%-14s %12s %14s %12s\n' mode ns/op x_untraced x_floor
for mode in "${modes[@]}"; do
	awk -v m="$mode" -v v="${result[$mode]}" -v u="${result[untraced]}" -v f="${result[floor]}" \
		'BEGIN { printf "%-14s %12.1f %14.2f %12.2f\n", m, v, v / u, v / f }'
done
# Placement gain: the same probes at function entries vs where placement
# put them (floor_entry / floor), for the trap floor and for stray.
awk -v fe="${result[floor_entry]}" -v f="${result[floor]}" -v se="${result[stray_entry]}" \
	-v s="${result[stray]}" 'BEGIN { printf "placement gain: floor %.2fx, stray %.2fx\n", fe / f, se / s }'
# stray against the floor with the same link type.
awk -v s="${result[stray]}" -v f="${result[floor]}" -v sm="${result[stray_multi]}" -v fm="${result[floor_multi]}" \
	'BEGIN { printf "stray / floor, same links: default %.2fx, multi %.2fx\n", s / f, sm / fm }'

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
