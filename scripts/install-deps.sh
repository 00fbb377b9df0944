#!/usr/bin/env bash
# Install every Debian package stray needs to build, test and benchmark.
# libbpf >= 1.3 and bpftool come from bookworm-backports: stock bookworm ships libbpf 1.1,
# which lacks uprobe_multi and the bpf_program__attach_uprobe_opts features we rely on.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps: must run as root (apt-get)" >&2
	exit 1
fi

BACKPORTS=/etc/apt/sources.list.d/stray-backports.list
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [[ $codename == bookworm ]] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "deb http://deb.debian.org/debian bookworm-backports main" >"$BACKPORTS"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
bp=()
[[ $codename == bookworm ]] && bp=(-t bookworm-backports)
# libbpf-dev from backports depends on the backports libelf-dev, so elfutils comes from there too.
apt-get install -y -qq --no-install-recommends "${bp[@]}" libbpf-dev bpftool libelf-dev libdw-dev >/dev/null
apt-get install -y -qq --no-install-recommends \
	make gcc clang llvm pkg-config \
	zlib1g-dev libzstd-dev \
	libjson-c-dev libcriterion-dev libcap-dev \
	libuv1-dev libcapstone-dev \
	libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev \
	valgrind procps binutils gdb util-linux \
	bpftrace sqlite3 python3 zstd xz-utils gzip libc6-dbg nodejs jq groff-base >/dev/null
# redis-server is a test and bench workload, not a service: keep apt from starting it.
if ! command -v redis-server >/dev/null; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
	rm -f /usr/sbin/policy-rc.d
fi
echo "install-deps: ok (libbpf $(dpkg-query -W -f='${Version}' libbpf-dev), bpftool $(dpkg-query -W -f='${Version}' bpftool))"
