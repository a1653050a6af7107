#!/bin/sh
# Install what fugue needs to build (and, with "test", to run every test;
# with "deb", to build the Debian package; with "deb-test", to check it;
# with "compat", the compatibility matrix), if it is missing (Debian). As
# root: apt-get; otherwise with sudo when there is one; else print the line.
pkgs="libev-dev libinih-dev check pkg-config make gcc curl python3"
norec=""
case "${1:-}" in
# The Node.js example, a real logrotate run, the master under valgrind.
test)	pkgs="$pkgs nodejs logrotate valgrind" ;;
# debian/control's Build-Depends and dpkg-buildpackage.
deb)	pkgs="$pkgs build-essential debhelper dpkg-dev"; norec="--no-install-recommends" ;;
# The package's test: lintian, hardening-check (devscripts), man -w,
# systemd-analyze.
deb-test)
	pkgs="$pkgs build-essential debhelper dpkg-dev lintian devscripts man-db systemd"
	norec="--no-install-recommends" ;;
# The compatibility matrix (tests/compat): the servers it runs under fugue,
# Go to build its Go server, npm to install express; only the servers, none
# of the web stacks they recommend.
compat)
	pkgs="$pkgs gunicorn python3-uvicorn uwsgi-core uwsgi-plugin-python3"
	pkgs="$pkgs lighttpd php-fpm golang-go nodejs"
	command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
	norec="--no-install-recommends" ;;
esac
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
	echo "fugue needs:$missing (install them with your package manager)" >&2
	exit 1
fi
if [ "$(id -u)" = 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "fugue needs these packages; as root run:" >&2
	echo "  apt-get install -y${norec:+ $norec}$missing" >&2
	exit 1
fi
echo "installing:$missing" >&2
$sudo apt-get update -qq || exit 1
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq${norec:+ $norec}$missing >/dev/null || exit 1
