#!/usr/bin/env bash
# make soak: stray --watch on a leaking fixture for SOAK_S seconds (default
# 1800); stray's own RSS at the end must stay within 10% of its RSS after the
# first minute (its tables are bounded however long it runs). Not a CI test:
# it prints the figures and the verdict.
set -euo pipefail
BUILD=${BUILD:-build}
SOAK_S=${SOAK_S:-1800}
out=$(mktemp -d)
trap 'kill "$fixture" "$stray" 2>/dev/null || true; rm -rf "$out"' EXIT

"$BUILD/fixtures/growth" mixed >/dev/null &
fixture=$!
sleep 0.5
"$BUILD/stray" -p "$fixture" --watch --json "$out/report.json" --report-every 10 \
	--alerts "$out/alerts.jsonl" >/dev/null &
stray=$!

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
sleep 60
first=$(rss_kib "$stray")
echo "stray RSS after 60 s: $first KiB"
for ((t = 60; t < SOAK_S; t += 60)); do
	sleep 60
	echo "stray RSS after $((t + 60)) s: $(rss_kib "$stray") KiB"
done
last=$(rss_kib "$stray")
kill -INT "$stray"
wait "$stray" || true
awk -v a="$first" -v b="$last" 'BEGIN {
	r = b / a
	printf "stray RSS end/first-minute: %.3f (%s KiB -> %s KiB): %s\n", r, a, b,
		(r <= 1.10 ? "within 10%" : "GREW MORE THAN 10%")
	exit (r <= 1.10 ? 0 : 1)
}'
