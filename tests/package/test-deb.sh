#!/bin/sh
# The Debian package, end to end: build it (make deb), check it with lintian
# and hardening-check, install it with apt-get, try what it installed (the
# binary, the manual pages, the systemd template unit, a real server on
# 127.0.0.1), purge it, and check that nothing it installed is left.
#
#   sh tests/package/test-deb.sh      (make test-deb; as root, on Debian)
#
# It installs the tools it needs (tools/deps.sh deb-test). It refuses to run
# where a fugue package is installed already, since it ends with a purge.
set -eu
cd "$(dirname "$0")/../.."

say() { echo "test-deb: $*"; }
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
	say "skipped: needs root (installs and purges the package)"
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	say "skipped: needs apt-get (Debian or a derivative)"
	exit 0
fi
state=$(dpkg-query -W -f='${db:Status-Status}' fugue 2>/dev/null || true)
case "$state" in
""|not-installed) ;;
*)	fail "a fugue package is on this machine ($state); this test would purge it" ;;
esac

tmp=$(mktemp -d)
installed=""
fugue_pid=""
cleanup() {
	if [ -n "$fugue_pid" ] && kill -0 "$fugue_pid" 2>/dev/null; then
		kill -KILL "$fugue_pid" 2>/dev/null || true
	fi
	if [ -n "$installed" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq fugue >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

sh tools/deps.sh deb-test

# debian/changelog and the Makefile's VERSION cannot drift apart.
version=$(make -s --no-print-directory version)
changelog=$(dpkg-parsechangelog -S Version)
[ "${changelog%-*}" = "$version" ] ||
    fail "debian/changelog says $changelog, the Makefile's VERSION is $version: add a changelog entry"

say "make deb"
make --no-print-directory deb >"$tmp/build.log" 2>&1 || { tail -40 "$tmp/build.log" >&2; fail "make deb"; }
arch=$(dpkg --print-architecture)
deb="$PWD/build/deb/fugue_${version}_${arch}.deb"
changes="$PWD/build/deb/fugue_${version}_${arch}.changes"
[ -f "$deb" ] && [ -f "$changes" ] || fail "make deb made no $deb and $changes"

# The .changes, and with it every .deb it lists.
say "lintian"
lintian --allow-root --fail-on error,warning --info "$changes" ||
    fail "lintian: errors or warnings (above)"

say "hardening-check"
dpkg-deb -x "$deb" "$tmp/deb"
# Only what this dpkg-buildflags gives: control flow protection came with
# its "branch" feature (dpkg 1.22).
hc=""
DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --query-features hardening |
    grep -q '^Feature: branch' || hc="--nocfprotection"
hardening-check $hc "$tmp/deb/usr/bin/fugue" || fail "hardening-check (above)"

say "apt-get install $deb"
installed=yes
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log" >&2; fail "apt-get install"; }
dpkg -L fugue >"$tmp/files"

v=$(fugue -V)
[ "$v" = "fugue $version" ] || fail "fugue -V: \"$v\", expected \"fugue $version\""
for page in fugue fugue.conf; do
	man -w "$page" >/dev/null || fail "man -w $page: no manual page"
done
unit=/lib/systemd/system/fugue@.service
[ -f "$unit" ] || fail "no $unit"
grep -q '^ExecStart=/usr/bin/fugue -c /etc/fugue/%i.conf$' "$unit" ||
    fail "$unit: ExecStart is not /usr/bin/fugue -c /etc/fugue/%i.conf"
[ -d /etc/fugue ] || fail "no /etc/fugue"
[ -f /etc/logrotate.d/fugue ] || fail "no /etc/logrotate.d/fugue"
grep -q /usr/bin/fugue /etc/logrotate.d/fugue || fail "/etc/logrotate.d/fugue: not /usr/bin/fugue"
if systemd-analyze --version >/dev/null 2>&1; then
	systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
else
	say "systemd-analyze cannot run here: $unit not verified"
fi
if [ -n "$(ls -A /etc/fugue)" ] || [ -e /etc/systemd/system/multi-user.target.wants/fugue@.service ]; then
	fail "the package configured or enabled something"
fi

# The installed binary, with the installed example configuration, serving
# the installed Python example on a free port of 127.0.0.1. -d returns once
# the workers are ready.
say "fugue -d on 127.0.0.1"
example=/usr/share/doc/fugue/examples
fugue -c $example/fugue.conf.example -t -- python3 $example/hello.py >/dev/null ||
    fail "fugue -c $example/fugue.conf.example -t"
for try in 1 2 3; do
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	rc=0
	fugue -c $example/fugue.conf.example -w 30s -d --listen "127.0.0.1:$port" \
	    --pid-file "$tmp/fugue.pid" --log-file "$tmp/fugue.log" \
	    -- python3 $example/hello.py || rc=$?
	[ "$rc" = 75 ] || break		# 75: the port was taken meanwhile
done
[ "$rc" = 0 ] || { cat "$tmp/fugue.log" >&2 || true; fail "fugue -d: exit $rc"; }
fugue_pid=$(cat "$tmp/fugue.pid")
answer=$(curl -fsS --max-time 10 "http://127.0.0.1:$port/") || fail "no answer on 127.0.0.1:$port"
case "$answer" in
"Hello from worker"*) ;;
*)	fail "127.0.0.1:$port answered \"$answer\"" ;;
esac
fugue -c $example/fugue.conf.example --pid-file "$tmp/fugue.pid" -s quit
timeout 30 tail --pid="$fugue_pid" -f /dev/null || fail "fugue (pid $fugue_pid) still running 30 s after quit"
fugue_pid=""

say "apt-get purge fugue"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq fugue >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log" >&2; fail "apt-get purge"; }
installed=""
state=$(dpkg-query -W -f='${db:Status-Status}' fugue 2>/dev/null || true)
case "$state" in
""|not-installed) ;;
*)	fail "after the purge, dpkg says fugue is $state" ;;
esac
# Every file it installed is gone, and every directory no other package
# owns (/etc/fugue, /usr/share/doc/fugue, ...).
left=""
while read -r path; do
	[ "$path" = /. ] && continue
	if [ -d "$path" ]; then
		dpkg -S "$path" >/dev/null 2>&1 || left="$left $path"
	elif [ -e "$path" ] || [ -L "$path" ]; then
		left="$left $path"
	fi
done <"$tmp/files"
[ -z "$left" ] || fail "left after the purge:$left"
say "ok: fugue $version built, checked, installed, served on 127.0.0.1, purged"
