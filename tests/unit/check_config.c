/* Unit tests of src/config.c: value parsers, addresses, word splitting, the
 * INI reader (line numbers, continuations, inih's traps), overrides and the
 * checks across keys. */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <check.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "logsink.h"

static struct config c;
static struct errlist errs;
static char path[64];

static void
setup(void)
{
	config_init(&c);
	memset(&errs, 0, sizeof(errs));
	path[0] = '\0';
}

static void
teardown(void)
{
	config_free(&c);
	errlist_free(&errs);
}

/* Write text to a fresh temp file, load it into c, remove it. */
static int
load(const char *text)
{
	size_t len = strlen(text);
	int fd, r;

	strcpy(path, "/tmp/fugue-check-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	r = config_load(&c, path, &errs);
	unlink(path);
	return r;
}

static char *
all_errors(void)
{
	static char buf[8192];

	buf[0] = '\0';
	for (size_t i = 0; i < errs.n; i++) {
		strncat(buf, errs.v[i], sizeof(buf) - strlen(buf) - 1);
		strncat(buf, " | ", sizeof(buf) - strlen(buf) - 1);
	}
	return buf;
}

/* Is this exact line among the errors? "%P" cannot be used with printf
 * checking, so the caller passes the path explicitly when it needs it. */
static void __attribute__((format(printf, 1, 2)))
expect_error(const char *fmt, ...)
{
	char want[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < errs.n; i++)
		if (strcmp(errs.v[i], want) == 0)
			return;
	ck_abort_msg("missing error: %s\n  got: %s", want, all_errors());
}

static void
expect_no_errors(int r)
{
	ck_assert_msg(r == 0 && errs.n == 0, "r=%d errors: %s", r,
	    all_errors());
}

/* A one-key config in its section: load it and expect exactly one error,
 * on line 2, reading "[section] key: msg". */
static void
bad_value(const char *section, const char *key, const char *value,
    const char *msg)
{
	char text[512], want[1024];

	snprintf(text, sizeof(text), "[%s]\n%s = %s\n", section, key, value);
	ck_assert_int_eq(load(text), 78);
	snprintf(want, sizeof(want), "%s:2: [%s] %s: %s", path, section, key,
	    msg);
	ck_assert_msg(errs.n == 1 && strcmp(errs.v[0], want) == 0,
	    "want: %s\n  got: %s", want, all_errors());
	errlist_free(&errs);
}

static void
good_value(const char *section, const char *key, const char *value)
{
	char text[512];

	snprintf(text, sizeof(text), "[%s]\n%s = %s\n", section, key, value);
	expect_no_errors(load(text));
}

static char *
cwd_join(const char *rel)
{
	char *cwd = getcwd(NULL, 0), *p;

	ck_assert_ptr_nonnull(cwd);
	p = xprintf("%s/%s", cwd, rel);
	free(cwd);
	return p;
}

/* ---- value parsers ---- */

START_TEST(duration_good)
{
	static const struct { const char *s; int64_t ms; } t[] = {
		{ "250ms", 250 }, { "10s", 10000 }, { "5m", 300000 },
		{ "1h", 3600000 }, { "10", 10000 }, { "0", 0 }, { "0ms", 0 },
		{ "1.5s", 1500 }, { "0.5", 500 }, { "1.25h", 4500000 },
		{ "0.1m", 6000 }, { "1.0005s", 1000 }, { "007s", 7000 },
		{ "8760h", 365LL * 24 * 3600 * 1000 },
		{ "31536000", 365LL * 24 * 3600 * 1000 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int64_t ms = -1;

		ck_assert_msg(parse_duration(t[i].s, &ms) == 0, "%s", t[i].s);
		ck_assert_msg(ms == t[i].ms, "%s: %lld", t[i].s, (long long)ms);
	}
}
END_TEST

START_TEST(duration_bad)
{
	static const char *t[] = { "", "-1s", "-1", "+1s", "1x", "1.", ".5",
	    "s", "ms", "10 s", " 10s", "10s ", "1e3", "1S", "1d", "1sx",
	    "8761h", "31536001", "99999999999999999999s", "1.5.5s", "1,5s",
	    "10sec", "0x10" };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int64_t ms = 42;

		ck_assert_msg(parse_duration(t[i], &ms) == -1, "%s", t[i]);
		ck_assert_int_eq(ms, 42);
	}
}
END_TEST

START_TEST(duration_format)
{
	static const struct { int64_t ms; const char *s; } t[] = {
		{ 250, "250ms" }, { 1500, "1.5s" }, { 30000, "30s" },
		{ 300000, "5m" }, { 3600000, "1h" }, { 0, "0s" },
		{ 1250, "1.25s" }, { 1001, "1.001s" }, { 90000, "90s" },
		{ 5400000, "90m" }, { 100, "100ms" }, { 1, "1ms" },
	};
	char buf[32];
	int64_t back;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		format_duration(t[i].ms, buf, sizeof(buf));
		ck_assert_str_eq(buf, t[i].s);
		ck_assert_int_eq(parse_duration(buf, &back), 0);
		ck_assert_int_eq(back, t[i].ms);
	}
	format_duration(1500, buf, 3);		/* truncated, terminated */
	ck_assert_int_lt(strlen(buf), 3);
}
END_TEST

START_TEST(signal_parse)
{
	static const struct { const char *s; int sig; } t[] = {
		{ "TERM", SIGTERM }, { "term", SIGTERM }, { "SIGTERM", SIGTERM },
		{ "sigterm", SIGTERM }, { "SigTerm", SIGTERM }, { "15", SIGTERM },
		{ "9", SIGKILL }, { "KILL", SIGKILL }, { "HUP", SIGHUP },
		{ "QUIT", SIGQUIT }, { "INT", SIGINT }, { "USR1", SIGUSR1 },
		{ "SIGUSR2", SIGUSR2 }, { "WINCH", SIGWINCH }, { "1", 1 },
		{ "64", 64 }, { "40", 40 },
	};
	static const char *bad[] = { "", "0", "65", "SIG", "FOO", "SIG15",
	    "-15", "+15", "15x", "TERMx", " TERM", "SIGSIGTERM", "1.5" };
	int sig;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		sig = -1;
		ck_assert_msg(parse_signal(t[i].s, &sig) == 0, "%s", t[i].s);
		ck_assert_int_eq(sig, t[i].sig);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sig = -1;
		ck_assert_msg(parse_signal(bad[i], &sig) == -1, "%s", bad[i]);
		ck_assert_int_eq(sig, -1);
	}
	ck_assert_str_eq(signal_name(SIGTERM), "TERM");
	ck_assert_str_eq(signal_name(SIGKILL), "KILL");
	ck_assert_str_eq(signal_name(SIGUSR2), "USR2");
	ck_assert_str_eq(signal_name(SIGCHLD), "CHLD");
	ck_assert_str_eq(signal_name(0), "0");	/* unnamed: by number */
	ck_assert_str_eq(signal_name(SIGRTMIN + 2), "36");
	/* every name goes back to its number */
	for (int s = 1; s < 32; s++) {
		if (strcmp(signal_name(s), "?") == 0)
			continue;
		ck_assert_int_eq(parse_signal(signal_name(s), &sig), 0);
		ck_assert_int_eq(sig, s);
	}
}
END_TEST

START_TEST(mode_parse)
{
	static const struct { const char *s; int m; } t[] = {
		{ "0660", 0660 }, { "660", 0660 }, { "0", 0 }, { "7777", 07777 },
		{ "07777", 07777 }, { "0022", 022 }, { "000000644", 0644 },
	};
	static const char *bad[] = { "", "8", "0o660", "10000", "-1", "66a",
	    " 660", "660 ", "0x1ff", "+660", "99999999999999999999" };
	int m;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ck_assert_msg(parse_mode(t[i].s, &m) == 0, "%s", t[i].s);
		ck_assert_int_eq(m, t[i].m);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = -7;
		ck_assert_msg(parse_mode(bad[i], &m) == -1, "%s", bad[i]);
		ck_assert_int_eq(m, -7);
	}
}
END_TEST

START_TEST(bool_parse)
{
	static const char *yes[] = { "yes", "true", "on", "1", "YES", "True" };
	static const char *no[] = { "no", "false", "off", "0", "NO", "Off" };
	static const char *bad[] = { "", "y", "n", "2", "yess", " yes", "nope" };
	bool b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		ck_assert_int_eq(parse_bool(yes[i], &b), 0);
		ck_assert(b);
		ck_assert_int_eq(parse_bool(no[i], &b), 0);
		ck_assert(!b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse_bool(bad[i], &b) == -1, "%s", bad[i]);
}
END_TEST

START_TEST(uint_parse)
{
	static const char *bad[] = { "", "-1", "+1", " 1", "1 ", "0x10", "1.0",
	    "18446744073709551616", "99999999999999999999999", "a" };
	unsigned long v;

	ck_assert_int_eq(parse_uint("0", 0, 10, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(parse_uint("0042", 0, 100, &v), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(parse_uint("10000", 0, 10000, &v), 0);
	ck_assert_int_eq(parse_uint("10001", 0, 10000, &v), -1);
	ck_assert_int_eq(parse_uint("0", 1, 10, &v), -1);
	ck_assert_int_eq(parse_uint("1", 1, 10, &v), 0);
	ck_assert_int_eq(parse_uint("18446744073709551615", 0, ~0UL, &v), 0);
	ck_assert_uint_eq(v, ~0UL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		ck_assert_msg(parse_uint(bad[i], 0, ~0UL, &v) == -1, "%s",
		    bad[i]);
		ck_assert_uint_eq(v, 7);
	}
}
END_TEST

/* ---- addresses ---- */

START_TEST(address_inet)
{
	struct address a;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.sa;
	char err[200];

	ck_assert_int_eq(parse_address("127.0.0.1:8080", &a, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(a.family, AF_INET);
	ck_assert_str_eq(a.text, "127.0.0.1:8080");
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_int_eq(ntohs(sin->sin_port), 8080);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	ck_assert_uint_eq(a.salen, sizeof(*sin));

	ck_assert_int_eq(parse_address(":80", &a, err, sizeof(err)), 0);
	ck_assert_str_eq(a.text, "0.0.0.0:80");
	ck_assert_uint_eq(sin->sin_addr.s_addr, 0);
	ck_assert_int_eq(ntohs(sin->sin_port), 80);

	ck_assert_int_eq(parse_address("0.0.0.0:65535", &a, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(a.text, "0.0.0.0:65535");

	ck_assert_int_eq(parse_address("[::1]:8080", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_str_eq(a.text, "[::1]:8080");
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_int_eq(ntohs(sin6->sin6_port), 8080);
	ck_assert_uint_eq(a.salen, sizeof(*sin6));

	ck_assert_int_eq(parse_address("[::]:1", &a, err, sizeof(err)), 0);
	ck_assert_str_eq(a.text, "[::]:1");
	/* canonical form */
	ck_assert_int_eq(parse_address("[0:0::0:1]:443", &a, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(a.text, "[::1]:443");
	ck_assert_int_eq(parse_address("[::ffff:10.0.0.1]:80", &a, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(a.family, AF_INET6);

	/* a name, from /etc/hosts: IPv4 first */
	ck_assert_int_eq(parse_address("localhost:8080", &a, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(a.text, "127.0.0.1:8080");
}
END_TEST

START_TEST(address_bad)
{
	static const struct { const char *s, *why; } t[] = {
		{ "127.0.0.1", "missing port" },
		{ "127.0.0.1:", "missing port" },
		{ "8080", "missing port (\":PORT\" listens on every address)" },
		{ "", "missing port (\":PORT\" listens on every address)" },
		{ ":", "missing port" },
		{ "127.0.0.1:0", "port out of range (1 to 65535)" },
		{ "127.0.0.1:65536", "port out of range (1 to 65535)" },
		{ "127.0.0.1:99999999999999999999999",
		    "port out of range (1 to 65535)" },
		{ "127.0.0.1:http", "bad port \"http\"" },
		{ "127.0.0.1:-1", "bad port \"-1\"" },
		{ "127.0.0.1:80x", "bad port \"80x\"" },
		{ "127.0.0.1: 80", "bad port \" 80\"" },
		{ "[::1]", "missing port" },
		{ "[::1]:", "missing port" },
		{ "[::1]80", "expected ':' and a port after ']'" },
		{ "[::1:80", "missing ']' after an IPv6 address" },
		{ "[zz]:80", "bad IPv6 address \"zz\"" },
		{ "[]:80", "bad IPv6 address \"\"" },
		{ "[127.0.0.1]:80", "bad IPv6 address \"127.0.0.1\"" },
		{ "::1:80", "an IPv6 address needs brackets, as in [::1]:8080" },
		{ "1.2.3:80", "bad IPv4 address \"1.2.3\"" },
		{ "999.1.1.1:80", "bad IPv4 address \"999.1.1.1\"" },
		{ "1.2.3.4.5:80", "bad IPv4 address \"1.2.3.4.5\"" },
		{ "unix:", "missing socket path after unix:" },
	};
	struct address a;
	char err[200];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&a, 0x5a, sizeof(a));
		err[0] = '\0';
		ck_assert_msg(parse_address(t[i].s, &a, err, sizeof(err)) == -1,
		    "%s", t[i].s);
		ck_assert_msg(strcmp(err, t[i].why) == 0, "%s: %s", t[i].s, err);
		ck_assert_int_eq(a.family, 0x5a5a5a5a);	/* untouched */
	}
}
END_TEST

START_TEST(address_unix)
{
	struct address a;
	struct sockaddr_un *sun = (struct sockaddr_un *)&a.sa;
	char err[200], p[300], *want;

	ck_assert_int_eq(parse_address("unix:/run/app.sock", &a, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(a.family, AF_UNIX);
	ck_assert_str_eq(a.text, "unix:/run/app.sock");
	ck_assert_int_eq(sun->sun_family, AF_UNIX);
	ck_assert_str_eq(sun->sun_path, "/run/app.sock");
	ck_assert_uint_eq(a.salen, offsetof(struct sockaddr_un, sun_path) +
	    strlen("/run/app.sock") + 1);

	/* relative: absolute against the current directory, tidied */
	ck_assert_int_eq(parse_address("unix:app.sock", &a, err, sizeof(err)),
	    0);
	want = cwd_join("app.sock");
	ck_assert_str_eq(sun->sun_path, want);
	ck_assert_str_eq(a.text + 5, want);
	ck_assert_int_eq(parse_address("unix:./app.sock", &a, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(sun->sun_path, want);
	free(want);
	ck_assert_int_eq(parse_address("unix://run//./x/../app.sock", &a, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(sun->sun_path, "/run/x/../app.sock");

	/* 107 bytes fit sun_path with its NUL; 108 never get truncated */
	memset(p, 'a', sizeof(p));
	memcpy(p, "unix:/", 6);
	p[5 + 107] = '\0';
	ck_assert_int_eq(parse_address(p, &a, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(sun->sun_path), 107);
	ck_assert_uint_eq(strlen(a.text), 5 + 107);
	p[5 + 107] = 'a';
	p[5 + 108] = '\0';
	ck_assert_int_eq(parse_address(p, &a, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "socket path longer than 107 bytes");
	p[5 + 250] = '\0';
	ck_assert_int_eq(parse_address(p, &a, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "socket path longer than 107 bytes");
}
END_TEST

START_TEST(address_unix_relative_too_long)
{
	char rel[120], err[200], *cwd = getcwd(NULL, 0);
	struct address a;
	size_t n;

	/* short enough as written, too long once made absolute */
	ck_assert_ptr_nonnull(cwd);
	n = 107 - strlen(cwd);		/* cwd + "/" + n chars = 108 */
	ck_assert_int_gt((int)n, 0);
	memcpy(rel, "unix:", 5);
	memset(rel + 5, 'b', n);
	rel[5 + n] = '\0';
	ck_assert_int_eq(parse_address(rel, &a, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "socket path longer than 107 bytes");
	rel[5 + n - 1] = '\0';
	ck_assert_int_eq(parse_address(rel, &a, err, sizeof(err)), 0);
	free(cwd);
}
END_TEST

START_TEST(address_datagram)
{
	struct address a;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.sa;
	struct sockaddr_un *sun = (struct sockaddr_un *)&a.sa;
	char err[200];

	ck_assert_int_eq(parse_address("127.0.0.1:53", &a, err, sizeof(err)),
	    0);
	ck_assert_int_eq(a.type, SOCK_STREAM);
	ck_assert_int_eq(parse_address("udp:127.0.0.1:5353", &a, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(a.type, SOCK_DGRAM);
	ck_assert_int_eq(a.family, AF_INET);
	ck_assert_str_eq(a.text, "udp:127.0.0.1:5353");
	ck_assert_int_eq(ntohs(sin->sin_port), 5353);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	ck_assert_int_eq(parse_address("udp::5353", &a, err, sizeof(err)), 0);
	ck_assert_str_eq(a.text, "udp:0.0.0.0:5353");
	ck_assert_int_eq(a.type, SOCK_DGRAM);
	ck_assert_int_eq(parse_address("udp:[::1]:5353", &a, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_str_eq(a.text, "udp:[::1]:5353");
	ck_assert_int_eq(ntohs(sin6->sin6_port), 5353);
	ck_assert_int_eq(parse_address("udp:localhost:53", &a, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(a.text, "udp:127.0.0.1:53");

	ck_assert_int_eq(parse_address("unix:/run/app.sock", &a, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(a.type, SOCK_STREAM);
	ck_assert_int_eq(parse_address("unixgram:/run//app.sock", &a, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(a.type, SOCK_DGRAM);
	ck_assert_int_eq(a.family, AF_UNIX);
	ck_assert_str_eq(a.text, "unixgram:/run/app.sock");
	ck_assert_str_eq(sun->sun_path, "/run/app.sock");
	ck_assert_str_eq(address_path(&a), "/run/app.sock");

	ck_assert_int_eq(parse_address("udp:", &a, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "missing port (\":PORT\" listens on every "
	    "address)");
	ck_assert_int_eq(parse_address("udp:127.0.0.1:0", &a, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "port out of range (1 to 65535)");
	ck_assert_int_eq(parse_address("udp:unix:/a", &a, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(parse_address("unixgram:", &a, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "missing socket path after unixgram:");
}
END_TEST

/* ---- split_command ---- */

static void
split_ok(const char *s, int n, ...)
{
	struct strvec v = { NULL, 0 };
	char err[100];
	va_list ap;

	ck_assert_msg(split_command(s, &v, err, sizeof(err)) == 0, "%s: %s",
	    s, err);
	ck_assert_msg(v.n == (size_t)n, "%s: %zu words", s, v.n);
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		ck_assert_str_eq(v.v[i], va_arg(ap, const char *));
	va_end(ap);
	ck_assert_ptr_null(v.v[n]);
	strvec_clear(&v);
}

static void
split_bad(const char *s, const char *why)
{
	struct strvec v = { NULL, 0 };
	char err[100];

	strvec_push(&v, "keep");
	ck_assert_msg(split_command(s, &v, err, sizeof(err)) == -1, "%s", s);
	ck_assert_str_eq(err, why);
	ck_assert_uint_eq(v.n, 1);	/* nothing appended */
	strvec_clear(&v);
}

START_TEST(split_words)
{
	split_ok("/usr/bin/node server.js", 2, "/usr/bin/node", "server.js");
	split_ok("  a \t b   c  ", 3, "a", "b", "c");
	split_ok("a", 1, "a");
	split_ok("'a b' c", 2, "a b", "c");
	split_ok("'a \"b\" \\n'", 1, "a \"b\" \\n");
	split_ok("\"quoted arg\" --flag", 2, "quoted arg", "--flag");
	split_ok("\"a \\\" b\"", 1, "a \" b");
	split_ok("\"\\\\ \\$HOME \\`x\\`\"", 1, "\\ $HOME `x`");
	split_ok("\"\\n\\a\"", 1, "\\n\\a");
	split_ok("a\\ b c", 2, "a b", "c");
	split_ok("\\'a\\\"", 1, "'a\"");
	split_ok("''", 1, "");
	split_ok("a '' b", 3, "a", "", "b");
	split_ok("\"\"", 1, "");
	split_ok("a''b", 1, "ab");
	split_ok("'a'\"b\"c", 1, "abc");
	split_ok("--opt=\"x y\"", 1, "--opt=x y");
	split_ok("$HOME ~ * ;", 4, "$HOME", "~", "*", ";");
	split_ok("sh -c 'exec \"$0\" \"$@\"' a", 4, "sh", "-c",
	    "exec \"$0\" \"$@\"", "a");
}
END_TEST

START_TEST(split_errors)
{
	struct strvec v = { NULL, 0 };
	char err[100];

	split_bad("\"a", "unterminated quote");
	split_bad("'a", "unterminated quote");
	split_bad("a 'b c", "unterminated quote");
	split_bad("\"a\\\"", "unterminated quote");
	split_bad("\"a\\", "unterminated quote");
	split_bad("a\\", "trailing backslash");
	split_bad("", "empty command");
	split_bad("   \t ", "empty command");

	/* appends to what is there */
	strvec_push(&v, "first");
	ck_assert_int_eq(split_command("b c", &v, err, sizeof(err)), 0);
	ck_assert_uint_eq(v.n, 3);
	ck_assert_str_eq(v.v[0], "first");
	ck_assert_str_eq(v.v[2], "c");
	strvec_clear(&v);
}
END_TEST

/* ---- the file ---- */

START_TEST(defaults)
{
	ck_assert_ptr_null(c.path);
	ck_assert_ptr_null(c.pid_file);
	ck_assert_ptr_null(c.log_file);
	ck_assert_ptr_null(c.master_log_file);
	ck_assert_int_eq(c.log_level, LVL_INFO);
	ck_assert_ptr_null(c.control_socket);
	ck_assert_ptr_null(c.runtime_dir);
	ck_assert_int_eq(c.subreaper, SUBREAPER_AUTO);
	ck_assert_uint_eq(c.nlisten, 0);
	ck_assert_int_eq(c.backlog, 1024);
	ck_assert_int_eq(c.socket_mode, -1);
	ck_assert_ptr_null(c.socket_owner);
	ck_assert_uint_eq(c.socket_uid, (uid_t)-1);
	ck_assert_uint_eq(c.socket_gid, (gid_t)-1);
	ck_assert_ptr_null(c.command);
	ck_assert_uint_eq(c.argv.n, 0);
	ck_assert_uint_eq(c.count, 1);
	ck_assert_ptr_null(c.user);
	ck_assert_ptr_null(c.group);
	ck_assert_uint_eq(c.uid, (uid_t)-1);
	ck_assert_uint_eq(c.gid, (gid_t)-1);
	ck_assert_int_eq(c.ngroups, 0);
	ck_assert_ptr_null(c.working_dir);
	ck_assert_int_eq(c.umask, -1);
	ck_assert_uint_eq(c.env.n, 0);
	ck_assert(!c.clear_env);
	ck_assert_int_eq(c.stop_signal, SIGTERM);
	ck_assert_int_eq(c.kill_mode, KILL_MIXED);
	ck_assert_int_eq(c.kill_timeout_ms, 30000);
	ck_assert_int_eq(c.stop_delay_ms, 0);
	for (int i = 0; i < HOOK_N; i++) {
		ck_assert_ptr_null(c.hook[i].text);
		ck_assert_uint_eq(c.hook[i].argv.n, 0);
	}
	ck_assert_int_eq(c.hook_timeout_ms, 30000);
	ck_assert(!c.ready_notify);
	ck_assert_int_eq(c.ready_ms, 1000);
	ck_assert_int_eq(c.ready_timeout_ms, 60000);
	ck_assert_int_eq(c.ready_hold_ms, 1000);
	ck_assert(c.max_surge == 100 && c.max_surge_pct);
	ck_assert_int_eq(c.watchdog_ms, 0);
	ck_assert_int_eq(c.master_death_signal, SIGTERM);
	ck_assert_int_eq(c.restart_delay_max_ms, 30000);
	ck_assert(!c.log_raw);

	/* an empty file changes nothing */
	expect_no_errors(load(""));
	ck_assert_int_eq(c.backlog, 1024);
	ck_assert_str_eq(c.path, path);
}
END_TEST

START_TEST(every_key)
{
	struct passwd *pw = getpwnam("root");

	ck_assert_ptr_nonnull(pw);
	expect_no_errors(load(
	    "; a comment\n"
	    "# another\n"
	    "[master]\n"
	    "pid_file        = /run/app/fugue.pid   ; none by default\n"
	    "log_file        = /var/log/app/app.log\n"
	    "master_log_file = /var/log/app/fugue.log\n"
	    "log_level       = debug\n"
	    "control_socket  = /run/app/fugue.sock\n"
	    "runtime_dir     = /run/app/\n"
	    "subreaper       = yes\n"
	    "\n"
	    "[listen]\n"
	    "address   = 0.0.0.0:8080\n"
	    "address   = [::1]:8081\n"
	    "address   = unix:/run/app.sock\n"
	    "backlog   = 511\n"
	    "socket_mode  = 0660\n"
	    "socket_owner = root:root\n"
	    "\n"
	    "[worker]\n"
	    "command       = /usr/bin/node server.js --flag \"quoted arg\"\n"
	    "count         = 4\n"
	    "user          = root\n"
	    "group         = root\n"
	    "working_dir   = /srv/app\n"
	    "umask         = 0022\n"
	    "env           = NODE_ENV=production\n"
	    "env           = EMPTY=\n"
	    "clear_env     = yes\n"
	    "stop_signal   = QUIT\n"
	    "kill_mode     = group\n"
	    "kill_timeout  = 10s\n"
	    "ready         = notify\n"
	    "ready_timeout = 2m\n"
	    "watchdog      = 1.5s\n"
	    "master_death_signal = SIGKILL\n"
	    "restart_delay_max   = 1m\n"
	    "log_raw       = on\n"));
	ck_assert_str_eq(c.pid_file, "/run/app/fugue.pid");
	ck_assert_str_eq(c.log_file, "/var/log/app/app.log");
	ck_assert_str_eq(c.master_log_file, "/var/log/app/fugue.log");
	ck_assert_int_eq(c.log_level, LVL_DEBUG);
	ck_assert_str_eq(c.control_socket, "/run/app/fugue.sock");
	ck_assert_str_eq(c.runtime_dir, "/run/app");
	ck_assert_int_eq(c.subreaper, SUBREAPER_YES);
	ck_assert_uint_eq(c.nlisten, 3);
	ck_assert_str_eq(c.listen[0].text, "0.0.0.0:8080");
	ck_assert_str_eq(c.listen[1].text, "[::1]:8081");
	ck_assert_str_eq(c.listen[2].text, "unix:/run/app.sock");
	ck_assert_int_eq(c.listen[2].family, AF_UNIX);
	ck_assert_int_eq(c.backlog, 511);
	ck_assert_int_eq(c.socket_mode, 0660);
	ck_assert_str_eq(c.socket_owner, "root:root");
	ck_assert_uint_eq(c.socket_uid, 0);
	ck_assert_uint_eq(c.socket_gid, 0);
	ck_assert_str_eq(c.command,
	    "/usr/bin/node server.js --flag \"quoted arg\"");
	ck_assert_uint_eq(c.argv.n, 4);
	ck_assert_str_eq(c.argv.v[3], "quoted arg");
	ck_assert_uint_eq(c.count, 4);
	ck_assert_str_eq(c.user, "root");
	ck_assert_str_eq(c.group, "root");
	ck_assert_uint_eq(c.uid, 0);
	ck_assert_uint_eq(c.gid, 0);
	ck_assert_str_eq(c.user_home, pw->pw_dir);
	ck_assert_str_eq(c.working_dir, "/srv/app");
	ck_assert_int_eq(c.umask, 022);
	ck_assert_uint_eq(c.env.n, 2);
	ck_assert_str_eq(c.env.v[0], "NODE_ENV=production");
	ck_assert_str_eq(c.env.v[1], "EMPTY=");
	ck_assert(c.clear_env);
	ck_assert_int_eq(c.stop_signal, SIGQUIT);
	ck_assert_int_eq(c.kill_mode, KILL_GROUP);
	ck_assert_int_eq(c.kill_timeout_ms, 10000);
	ck_assert(c.ready_notify);
	ck_assert_int_eq(c.ready_timeout_ms, 120000);
	ck_assert_int_eq(c.watchdog_ms, 1500);
	ck_assert_int_eq(c.master_death_signal, SIGKILL);
	ck_assert_int_eq(c.restart_delay_max_ms, 60000);
	ck_assert(c.log_raw);
	ck_assert_str_eq(c.path, path);
	expect_no_errors(config_validate(&c, true, &errs));
}
END_TEST

START_TEST(good_values)
{
	good_value("master", "log_level", "error");
	ck_assert_int_eq(c.log_level, LVL_ERROR);
	good_value("master", "log_level", "warn");
	ck_assert_int_eq(c.log_level, LVL_WARN);
	good_value("master", "log_level", "info");
	ck_assert_int_eq(c.log_level, LVL_INFO);
	good_value("master", "subreaper", "no");
	ck_assert_int_eq(c.subreaper, SUBREAPER_NO);
	good_value("master", "subreaper", "auto");
	ck_assert_int_eq(c.subreaper, SUBREAPER_AUTO);
	good_value("listen", "backlog", "1");
	ck_assert_int_eq(c.backlog, 1);
	good_value("listen", "backlog", "65535");
	ck_assert_int_eq(c.backlog, 65535);
	good_value("listen", "socket_mode", "7777");
	ck_assert_int_eq(c.socket_mode, 07777);
	good_value("listen", "socket_owner", "0");
	ck_assert_uint_eq(c.socket_uid, 0);
	ck_assert_uint_eq(c.socket_gid, (gid_t)-1);
	good_value("listen", "socket_owner", ":root");
	ck_assert_uint_eq(c.socket_uid, (uid_t)-1);
	ck_assert_uint_eq(c.socket_gid, 0);
	good_value("listen", "socket_owner", "4000:4001");  /* no lookup */
	ck_assert_uint_eq(c.socket_uid, 4000);
	ck_assert_uint_eq(c.socket_gid, 4001);
	good_value("worker", "count", "0");
	ck_assert_uint_eq(c.count, 0);
	good_value("worker", "count", "10000");
	ck_assert_uint_eq(c.count, 10000);
	good_value("worker", "user", "0");
	ck_assert_uint_eq(c.uid, 0);
	good_value("worker", "umask", "777");
	ck_assert_int_eq(c.umask, 0777);
	good_value("worker", "umask", "0");
	ck_assert_int_eq(c.umask, 0);
	good_value("worker", "clear_env", "false");
	ck_assert(!c.clear_env);
	good_value("worker", "stop_signal", "sigint");
	ck_assert_int_eq(c.stop_signal, SIGINT);
	good_value("worker", "stop_signal", "10");
	ck_assert_int_eq(c.stop_signal, 10);
	good_value("worker", "kill_mode", "process");
	ck_assert_int_eq(c.kill_mode, KILL_PROCESS);
	good_value("worker", "kill_mode", "mixed");
	ck_assert_int_eq(c.kill_mode, KILL_MIXED);
	good_value("worker", "kill_timeout", "0");
	ck_assert_int_eq(c.kill_timeout_ms, 0);
	good_value("worker", "ready", "fd");
	ck_assert(c.ready_notify && c.ready_pipe);
	good_value("worker", "ready", "notify");
	ck_assert(c.ready_notify && !c.ready_pipe);
	good_value("worker", "ready", "250ms");
	ck_assert(!c.ready_notify && !c.ready_pipe);
	ck_assert_int_eq(c.ready_ms, 250);
	good_value("worker", "ready", "0");
	ck_assert_int_eq(c.ready_ms, 0);
	good_value("worker", "ready_timeout", "1ms");
	ck_assert_int_eq(c.ready_timeout_ms, 1);
	good_value("worker", "max_memory", "512M");
	ck_assert_uint_eq(c.max_memory, 512ULL << 20);
	good_value("worker", "max_memory", "2GiB");
	ck_assert_uint_eq(c.max_memory, 2ULL << 30);
	good_value("worker", "max_memory", "4096");
	ck_assert_uint_eq(c.max_memory, 4096);
	good_value("worker", "max_memory", "0");
	ck_assert_uint_eq(c.max_memory, 0);
	good_value("worker", "max_lifetime", "1h");
	ck_assert_int_eq(c.max_lifetime_ms, 3600000);
	good_value("worker", "max_lifetime_jitter", "5m");
	ck_assert_int_eq(c.max_lifetime_jitter_ms, 300000);
	good_value("worker", "memory_interval", "100ms");
	ck_assert_int_eq(c.memory_interval_ms, 100);
	good_value("worker", "max_surge", "1");
	ck_assert(c.max_surge == 1 && !c.max_surge_pct);
	ck_assert_uint_eq(config_surge(&c, 4), 1);
	good_value("worker", "max_surge", "25%");
	ck_assert(c.max_surge == 25 && c.max_surge_pct);
	ck_assert_uint_eq(config_surge(&c, 4), 1);
	ck_assert_uint_eq(config_surge(&c, 5), 2);	/* rounded up */
	ck_assert_uint_eq(config_surge(&c, 0), 1);	/* at least one */
	good_value("worker", "max_surge", "100%");
	ck_assert_uint_eq(config_surge(&c, 7), 7);
	good_value("worker", "ready_hold", "0");
	ck_assert_int_eq(c.ready_hold_ms, 0);
	good_value("worker", "ready_hold", "2500ms");
	ck_assert_int_eq(c.ready_hold_ms, 2500);
	good_value("worker", "restart_delay_max", "100ms");
	ck_assert_int_eq(c.restart_delay_max_ms, 100);
	good_value("worker", "stop_delay", "15s");
	ck_assert_int_eq(c.stop_delay_ms, 15000);
	good_value("worker", "stop_delay", "0");
	ck_assert_int_eq(c.stop_delay_ms, 0);
	good_value("master", "hook_timeout", "250ms");
	ck_assert_int_eq(c.hook_timeout_ms, 250);
	good_value("worker", "env", "A==b c");
	ck_assert_str_eq(c.env.v[c.env.n - 1], "A==b c");
	good_value("worker", "env", "_x1=1");
	good_value("worker", "command", "'/opt/my app/run'");
	ck_assert_uint_eq(c.argv.n, 1);
	ck_assert_str_eq(c.argv.v[0], "/opt/my app/run");
}
END_TEST

START_TEST(bad_values)
{
	bad_value("master", "log_level", "loud",
	    "expected error, warn, info or debug, got \"loud\"");
	bad_value("master", "log_level", "INFO",
	    "expected error, warn, info or debug, got \"INFO\"");
	bad_value("master", "subreaper", "maybe",
	    "expected yes, no or auto, got \"maybe\"");
	bad_value("listen", "address", "127.0.0.1",
	    "bad address \"127.0.0.1\": missing port");
	bad_value("listen", "address", "127.0.0.1:70000",
	    "bad address \"127.0.0.1:70000\": port out of range (1 to 65535)");
	bad_value("listen", "backlog", "0",
	    "expected an integer from 1 to 65535, got \"0\"");
	bad_value("listen", "backlog", "65536",
	    "expected an integer from 1 to 65535, got \"65536\"");
	bad_value("listen", "backlog", "-1",
	    "expected an integer from 1 to 65535, got \"-1\"");
	bad_value("listen", "socket_mode", "999",
	    "expected an octal mode from 0 to 07777, got \"999\"");
	bad_value("listen", "socket_mode", "10000",
	    "expected an octal mode from 0 to 07777, got \"10000\"");
	bad_value("listen", "socket_owner", "no-such-user-x",
	    "unknown user \"no-such-user-x\"");
	bad_value("listen", "socket_owner", "root:no-such-group-x",
	    "unknown group \"no-such-group-x\"");
	bad_value("listen", "socket_owner", "root:",
	    "missing group after ':' in \"root:\"");
	bad_value("listen", "socket_owner", ":",
	    "missing group after ':' in \":\"");
	bad_value("worker", "command", "/bin/echo \"a",
	    "unterminated quote");
	bad_value("worker", "command", "/bin/echo \\",
	    "trailing backslash");
	bad_value("worker", "count", "four",
	    "expected an integer from 0 to 10000, got \"four\"");
	bad_value("worker", "count", "10001",
	    "expected an integer from 0 to 10000, got \"10001\"");
	bad_value("worker", "count", "-1",
	    "expected an integer from 0 to 10000, got \"-1\"");
	bad_value("worker", "count", "4 workers",
	    "expected an integer from 0 to 10000, got \"4 workers\"");
	bad_value("worker", "user", "no-such-user-x",
	    "unknown user \"no-such-user-x\"");
	bad_value("worker", "user", "4000000000",
	    "unknown user \"4000000000\"");
	bad_value("worker", "group", "no-such-group-x",
	    "unknown group \"no-such-group-x\"");
	bad_value("worker", "umask", "1000",
	    "expected an octal mode from 0 to 0777, got \"1000\"");
	bad_value("worker", "umask", "0x12",
	    "expected an octal mode from 0 to 0777, got \"0x12\"");
	bad_value("worker", "env", "NOEQUALS",
	    "expected NAME=value (NAME of letters, digits and _, not starting "
	    "with a digit), got \"NOEQUALS\"");
	bad_value("worker", "env", "1A=x",
	    "expected NAME=value (NAME of letters, digits and _, not starting "
	    "with a digit), got \"1A=x\"");
	bad_value("worker", "env", "=x",
	    "expected NAME=value (NAME of letters, digits and _, not starting "
	    "with a digit), got \"=x\"");
	bad_value("worker", "env", "A-B=x",
	    "expected NAME=value (NAME of letters, digits and _, not starting "
	    "with a digit), got \"A-B=x\"");
	bad_value("worker", "env", "FUGUE_WORKER_ID=3",
	    "FUGUE_WORKER_ID is set by fugue itself");
	bad_value("worker", "env", "LISTEN_FDS=3",
	    "LISTEN_FDS is set by fugue itself");
	bad_value("worker", "env", "NOTIFY_SOCKET=/x",
	    "NOTIFY_SOCKET is set by fugue itself");
	bad_value("worker", "clear_env", "maybe",
	    "expected yes or no, got \"maybe\"");
	bad_value("worker", "log_raw", "2", "expected yes or no, got \"2\"");
	bad_value("worker", "stop_signal", "FOO",
	    "expected a signal name or number (TERM, SIGTERM, 15), got \"FOO\"");
	bad_value("worker", "stop_signal", "0",
	    "expected a signal name or number (TERM, SIGTERM, 15), got \"0\"");
	bad_value("worker", "master_death_signal", "99",
	    "expected a signal name or number (TERM, SIGTERM, 15), got \"99\"");
	bad_value("worker", "kill_mode", "control-group",
	    "expected mixed, group or process, got \"control-group\"");
	bad_value("worker", "kill_mode", "Mixed",
	    "expected mixed, group or process, got \"Mixed\"");
	bad_value("worker", "kill_timeout", "-1s",
	    "expected a duration (250ms, 10s, 5m, 1h), got \"-1s\"");
	bad_value("worker", "kill_timeout", "10 s",
	    "expected a duration (250ms, 10s, 5m, 1h), got \"10 s\"");
	bad_value("worker", "kill_timeout", "2y",
	    "expected a duration (250ms, 10s, 5m, 1h), got \"2y\"");
	bad_value("worker", "ready", "soon",
	    "expected notify, fd or a duration (250ms, 10s, 5m, 1h), got \"soon\"");
	bad_value("worker", "ready", "NOTIFY",
	    "expected notify, fd or a duration (250ms, 10s, 5m, 1h), got "
	    "\"NOTIFY\"");
	bad_value("worker", "ready_timeout", "0",
	    "expected a duration of more than 0, got \"0\"");
	bad_value("worker", "max_memory", "lots", "expected a size such as "
	    "512M, 2G or 0, got \"lots\"");
	bad_value("worker", "max_memory", "5X", "expected a size such as "
	    "512M, 2G or 0, got \"5X\"");
	bad_value("worker", "max_memory", "-1", "expected a size such as "
	    "512M, 2G or 0, got \"-1\"");
	bad_value("worker", "memory_interval", "10ms", "expected a duration "
	    "of at least 100ms, got \"10ms\"");
	bad_value("worker", "max_surge", "0", "expected a number of workers "
	    "from 1 to 10000 or a percentage of count from 1% to 100%, got "
	    "\"0\"");
	bad_value("worker", "max_surge", "101%", "expected a number of workers "
	    "from 1 to 10000 or a percentage of count from 1% to 100%, got "
	    "\"101%\"");
	bad_value("worker", "max_surge", "%", "expected a number of workers "
	    "from 1 to 10000 or a percentage of count from 1% to 100%, got "
	    "\"%\"");
	bad_value("worker", "ready_timeout", "0.0001s",
	    "expected a duration of more than 0, got \"0.0001s\"");
	bad_value("worker", "watchdog", "often",
	    "expected a duration (250ms, 10s, 5m, 1h), got \"often\"");
	bad_value("worker", "restart_delay_max", "50ms",
	    "expected a duration of at least 100ms, got \"50ms\"");
	bad_value("worker", "restart_delay_max", "0",
	    "expected a duration of at least 100ms, got \"0\"");
	bad_value("worker", "stop_delay", "-5s",
	    "expected a duration (250ms, 10s, 5m, 1h), got \"-5s\"");
	bad_value("worker", "stop_delay", "soon",
	    "expected a duration (250ms, 10s, 5m, 1h), got \"soon\"");
	bad_value("master", "hook_timeout", "0",
	    "expected a duration of more than 0, got \"0\"");
	bad_value("master", "exec_before_reload", "/bin/lb 'drain",
	    "unterminated quote");
	bad_value("master", "exec_after_reload", "\"",
	    "unterminated quote");
	/* an empty value is an error for every key */
	bad_value("master", "pid_file", "", "missing value");
	bad_value("worker", "command", "", "missing value");
	bad_value("listen", "address", "", "missing value");
	bad_value("worker", "env", "; only a comment", "missing value");
}
END_TEST

/* The reload hooks are split as command is, each on its own. */
START_TEST(hooks)
{
	expect_no_errors(load(
	    "[master]\n"
	    "exec_before_reload = /usr/local/bin/lb drain \"my host\"\n"
	    "exec_after_reload  = lb  join\n"
	    "    --weight 100\n"
	    "exec_reload_failed = '/opt/ops tools/alert'\n"
	    "hook_timeout = 5s\n"));
	ck_assert_str_eq(c.hook[HOOK_BEFORE].text,
	    "/usr/local/bin/lb drain \"my host\"");
	ck_assert_uint_eq(c.hook[HOOK_BEFORE].argv.n, 3);
	ck_assert_str_eq(c.hook[HOOK_BEFORE].argv.v[2], "my host");
	ck_assert_uint_eq(c.hook[HOOK_AFTER].argv.n, 4);
	ck_assert_str_eq(c.hook[HOOK_AFTER].argv.v[3], "100");
	ck_assert_uint_eq(c.hook[HOOK_FAILED].argv.n, 1);
	ck_assert_str_eq(c.hook[HOOK_FAILED].argv.v[0], "/opt/ops tools/alert");
	ck_assert_int_eq(c.hook_timeout_ms, 5000);
	ck_assert_str_eq(hook_name(HOOK_BEFORE), "exec_before_reload");
	ck_assert_str_eq(hook_name(HOOK_AFTER), "exec_after_reload");
	ck_assert_str_eq(hook_name(HOOK_FAILED), "exec_reload_failed");
	/* a later line replaces the command */
	good_value("master", "exec_before_reload", "true");
	ck_assert_uint_eq(c.hook[HOOK_BEFORE].argv.n, 1);
	ck_assert_str_eq(c.hook[HOOK_BEFORE].argv.v[0], "true");
	/* the wrong section is named, with the right one */
	ck_assert_int_eq(load("[worker]\nexec_before_reload = x\n"), 78);
	expect_error("%s:2: [worker] exec_before_reload: unknown key (did you "
	    "mean [master] exec_before_reload?)", path);
	errlist_free(&errs);
}
END_TEST

START_TEST(bad_value_keeps_default)
{
	ck_assert_int_eq(load("[worker]\ncount = four\nkill_timeout = x\n"
	    "restart_delay_max = 50ms\nready_timeout = 0\numask = 1777\n"
	    "stop_signal = 0\nready = x\nclear_env = x\ncommand = 'x\n"
	    "user = no-such-user-x\ngroup = no-such-group-x\n"
	    "[listen]\nbacklog = 0\nsocket_mode = 8\naddress = x\n"
	    "socket_owner = root:no-such-group-x\n[master]\nlog_level = x\n"
	    "subreaper = x\n"), 78);
	ck_assert_uint_eq(errs.n, 17);
	ck_assert_uint_eq(c.count, 1);
	ck_assert_int_eq(c.kill_timeout_ms, 30000);
	ck_assert_int_eq(c.restart_delay_max_ms, 30000);
	ck_assert_int_eq(c.ready_timeout_ms, 60000);
	ck_assert_int_eq(c.umask, -1);
	ck_assert_int_eq(c.stop_signal, SIGTERM);
	ck_assert(!c.ready_notify);
	ck_assert_int_eq(c.ready_ms, 1000);
	ck_assert(!c.clear_env);
	ck_assert_ptr_null(c.command);
	ck_assert_uint_eq(c.argv.n, 0);
	ck_assert_ptr_null(c.user);
	ck_assert_ptr_null(c.group);
	ck_assert_uint_eq(c.uid, (uid_t)-1);
	ck_assert_uint_eq(c.gid, (gid_t)-1);
	ck_assert_int_eq(c.backlog, 1024);
	ck_assert_int_eq(c.socket_mode, -1);
	ck_assert_uint_eq(c.nlisten, 0);
	ck_assert_ptr_null(c.socket_owner);
	ck_assert_uint_eq(c.socket_uid, (uid_t)-1);
	ck_assert_uint_eq(c.socket_gid, (gid_t)-1);
	ck_assert_int_eq(c.log_level, LVL_INFO);
	ck_assert_int_eq(c.subreaper, SUBREAPER_AUTO);
}
END_TEST

START_TEST(every_error_collected)
{
	ck_assert_int_eq(load(
	    "[master]\n"
	    "log_level = loud\n"
	    "[worker]\n"
	    "count = four\n"
	    "command = /bin/true\n"
	    "kill_timeout = forever\n"
	    "stop_signal = NOPE\n"), 78);
	ck_assert_uint_eq(errs.n, 4);
	expect_error("%s:2: [master] log_level: expected error, warn, info or "
	    "debug, got \"loud\"", path);
	expect_error("%s:4: [worker] count: expected an integer from 0 to "
	    "10000, got \"four\"", path);
	expect_error("%s:6: [worker] kill_timeout: expected a duration "
	    "(250ms, 10s, 5m, 1h), got \"forever\"", path);
	expect_error("%s:7: [worker] stop_signal: expected a signal name or "
	    "number (TERM, SIGTERM, 15), got \"NOPE\"", path);
	/* the good key in between still took */
	ck_assert_str_eq(c.command, "/bin/true");
}
END_TEST

START_TEST(cannot_open)
{
	char dir[] = "/tmp/fugue-check-dir-XXXXXX";

	ck_assert_int_eq(config_load(&c, "/nonexistent/app.conf", &errs), 66);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_str_eq(errs.v[0],
	    "/nonexistent/app.conf: cannot open: No such file or directory");
	errlist_free(&errs);

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(config_load(&c, dir, &errs), 66);
	expect_error("%s: cannot read: Is a directory", dir);
	rmdir(dir);
}
END_TEST

START_TEST(relative_config_path)
{
	char name[] = "fugue-check-rel-XXXXXX", *want;
	int fd;

	/* the messages say the path as given; c.path is absolute */
	ck_assert_int_eq(chdir("/tmp"), 0);
	fd = mkstemp(name);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "[worker]\ncount = x\n", 19), 19);
	close(fd);
	ck_assert_int_eq(config_load(&c, name, &errs), 78);
	unlink(name);
	expect_error("%s:2: [worker] count: expected an integer from 0 to "
	    "10000, got \"x\"", name);
	want = xprintf("/tmp/%s", name);
	ck_assert_str_eq(c.path, want);
	free(want);
}
END_TEST

START_TEST(relative_paths)
{
	ck_assert_int_eq(chdir("/tmp"), 0);
	expect_no_errors(load(
	    "[master]\n"
	    "pid_file = run/fugue.pid\n"
	    "log_file = ./log/app.log\n"
	    "master_log_file = fugue.log\n"
	    "control_socket = ctl.sock\n"
	    "runtime_dir = .\n"
	    "[listen]\n"
	    "address = unix:app.sock\n"
	    "[worker]\n"
	    "working_dir = ../srv\n"));
	ck_assert_str_eq(c.pid_file, "/tmp/run/fugue.pid");
	ck_assert_str_eq(c.log_file, "/tmp/log/app.log");
	ck_assert_str_eq(c.master_log_file, "/tmp/fugue.log");
	ck_assert_str_eq(c.control_socket, "/tmp/ctl.sock");
	ck_assert_str_eq(c.runtime_dir, "/tmp");
	ck_assert_str_eq(c.listen[0].text, "unix:/tmp/app.sock");
	ck_assert_str_eq(c.working_dir, "/tmp/../srv");
}
END_TEST

START_TEST(unix_path_too_long_in_file)
{
	char text[400];

	snprintf(text, sizeof(text), "[listen]\naddress = unix:/%0120d\n", 0);
	ck_assert_int_eq(load(text), 78);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_msg(strstr(errs.v[0], ":2: [listen] address: bad address "
	    "\"unix:/000") != NULL, "%s", errs.v[0]);
	ck_assert_msg(strstr(errs.v[0], "\": socket path longer than 107 "
	    "bytes") != NULL, "%s", errs.v[0]);
	ck_assert_uint_eq(c.nlisten, 0);
}
END_TEST

START_TEST(outside_section)
{
	ck_assert_int_eq(load("count = 4\nnonsense = 1\n[worker]\ncount = 2\n"),
	    78);
	ck_assert_uint_eq(errs.n, 2);
	expect_error("%s:1: count: key outside any section (did you mean "
	    "[worker] count?)", path);
	expect_error("%s:2: nonsense: key outside any section", path);
	ck_assert_uint_eq(c.count, 2);
}
END_TEST

START_TEST(unknown_section)
{
	ck_assert_int_eq(load(
	    "[wroker]\n"
	    "count = 4\n"
	    "[Master]\n"
	    "[workers]\n"
	    "bogus = 1\n"
	    "[something]\n"
	    "[]\n"
	    "[worker]\n"
	    "count = 3\n"), 78);
	/* one error per section, none for the keys inside */
	ck_assert_uint_eq(errs.n, 5);
	expect_error("%s:1: [wroker]: unknown section (did you mean [worker]?)",
	    path);
	expect_error("%s:3: [Master]: unknown section (did you mean [master]?)",
	    path);
	expect_error("%s:4: [workers]: unknown section (did you mean "
	    "[worker]?)", path);
	expect_error("%s:6: [something]: unknown section (sections: [master], "
	    "[listen], [worker])", path);
	expect_error("%s:7: []: unknown section (sections: [master], "
	    "[listen], [worker])", path);
	ck_assert_uint_eq(c.count, 3);
}
END_TEST

START_TEST(unknown_key)
{
	ck_assert_int_eq(load(
	    "[worker]\n"
	    "pid_file = /run/x.pid\n"
	    "cuont = 4\n"
	    "Count = 4\n"
	    "zzz = 1\n"
	    "[listen]\n"
	    "adress = :80\n"
	    "commnd = x\n"
	    "[master]\n"
	    "pidfile = x\n"), 78);
	ck_assert_uint_eq(errs.n, 7);
	expect_error("%s:2: [worker] pid_file: unknown key (did you mean "
	    "[master] pid_file?)", path);
	expect_error("%s:3: [worker] cuont: unknown key (did you mean count?)",
	    path);
	expect_error("%s:4: [worker] Count: unknown key (did you mean count?)",
	    path);
	expect_error("%s:5: [worker] zzz: unknown key", path);
	expect_error("%s:7: [listen] adress: unknown key (did you mean "
	    "address?)", path);
	expect_error("%s:8: [listen] commnd: unknown key (did you mean "
	    "[worker] command?)", path);
	expect_error("%s:10: [master] pidfile: unknown key (did you mean "
	    "pid_file?)", path);
	ck_assert_ptr_null(c.pid_file);
}
END_TEST

START_TEST(duplicate_key)
{
	ck_assert_int_eq(load(
	    "[worker]\n"
	    "count = 2\n"
	    "command = /bin/a\n"
	    "\n"
	    "count = 3\n"
	    "[master]\n"
	    "[worker]\n"
	    "count = 4\n"
	    "command = /bin/b\n"), 78);
	ck_assert_uint_eq(errs.n, 3);
	expect_error("%s:5: [worker] count: already set on line 2", path);
	expect_error("%s:8: [worker] count: already set on line 2", path);
	expect_error("%s:9: [worker] command: already set on line 3", path);
	ck_assert_uint_eq(c.count, 2);		/* the first one stays */
	ck_assert_str_eq(c.command, "/bin/a");
}
END_TEST

START_TEST(repeatable_keys)
{
	ck_assert_int_eq(load(
	    "[listen]\n"
	    "address = 127.0.0.1:8080\n"
	    "address = :9090\n"
	    "address = 0.0.0.0:9090\n"
	    "address = localhost:8080\n"
	    "address = unix:/run/a.sock\n"
	    "address = unix:/run//a.sock\n"
	    "[worker]\n"
	    "env = A=1\n"
	    "env = B=2\n"
	    "env = A=3\n"), 78);
	ck_assert_uint_eq(errs.n, 3);
	expect_error("%s:4: [listen] address: duplicate address 0.0.0.0:9090",
	    path);
	expect_error("%s:5: [listen] address: duplicate address "
	    "127.0.0.1:8080", path);
	expect_error("%s:7: [listen] address: duplicate address "
	    "unix:/run/a.sock", path);
	ck_assert_uint_eq(c.nlisten, 3);
	ck_assert_str_eq(c.listen[0].text, "127.0.0.1:8080");
	ck_assert_str_eq(c.listen[1].text, "0.0.0.0:9090");
	ck_assert_str_eq(c.listen[2].text, "unix:/run/a.sock");
	/* the last value of a name wins, in its first place */
	ck_assert_uint_eq(c.env.n, 2);
	ck_assert_str_eq(c.env.v[0], "A=3");
	ck_assert_str_eq(c.env.v[1], "B=2");
	ck_assert_ptr_null(c.env.v[2]);
}
END_TEST

START_TEST(load_on_top)
{
	expect_no_errors(load("[listen]\naddress = :1\n[worker]\nenv = A=1\n"
	    "count = 2\n"));
	/* a second file appends to repeatable keys and may set others again */
	expect_no_errors(load("[listen]\naddress = :2\n[worker]\nenv = B=1\n"
	    "count = 3\n"));
	ck_assert_uint_eq(c.nlisten, 2);
	ck_assert_uint_eq(c.env.n, 2);
	ck_assert_uint_eq(c.count, 3);
}
END_TEST

START_TEST(continuation_command)
{
	expect_no_errors(load(
	    "[worker]\n"
	    "command = /usr/bin/node\n"
	    "    server.js --flag\n"
	    "\t\"quoted arg\" ; a comment\n"
	    "\n"
	    "; a comment line does not end the value\n"
	    "    --last\n"
	    "count = 2\n"));
	ck_assert_str_eq(c.command,
	    "/usr/bin/node server.js --flag \"quoted arg\" --last");
	ck_assert_uint_eq(c.argv.n, 5);
	ck_assert_str_eq(c.argv.v[0], "/usr/bin/node");
	ck_assert_str_eq(c.argv.v[3], "quoted arg");
	ck_assert_str_eq(c.argv.v[4], "--last");
	ck_assert_uint_eq(c.count, 2);
}
END_TEST

START_TEST(continuation_empty_first_line)
{
	/* the value may start on the next line */
	expect_no_errors(load(
	    "[worker]\n"
	    "command =\n"
	    "    /bin/sh -c\n"
	    "    'exec my-server'\n"));
	ck_assert_str_eq(c.command, "/bin/sh -c 'exec my-server'");
	ck_assert_uint_eq(c.argv.n, 3);
	ck_assert_str_eq(c.argv.v[2], "exec my-server");
}
END_TEST

START_TEST(continuation_quotes_span_lines)
{
	/* a quote opened on one line may close on the next: the value is
	 * checked only once complete (the words join with one space) */
	expect_no_errors(load(
	    "[worker]\n"
	    "command = /bin/echo \"a\n"
	    "   b\"\n"));
	ck_assert_uint_eq(c.argv.n, 2);
	ck_assert_str_eq(c.argv.v[1], "a b");
}
END_TEST

START_TEST(continuation_line_numbers)
{
	ck_assert_int_eq(load(
	    "[worker]\n"
	    "command = /bin/echo\n"
	    "    one\n"
	    "    two\n"
	    "count = four\n"
	    "stop_signal =\n"
	    "   NOPE\n"
	    "kill_timeout = 1x\n"), 78);
	ck_assert_uint_eq(errs.n, 3);
	expect_error("%s:5: [worker] count: expected an integer from 0 to "
	    "10000, got \"four\"", path);
	/* a value's error names the line where its key is */
	expect_error("%s:6: [worker] stop_signal: expected a signal name or "
	    "number (TERM, SIGTERM, 15), got \"NOPE\"", path);
	expect_error("%s:8: [worker] kill_timeout: expected a duration "
	    "(250ms, 10s, 5m, 1h), got \"1x\"", path);
	ck_assert_uint_eq(c.argv.n, 3);
}
END_TEST

START_TEST(continuation_repeatable)
{
	/* a continuation replaces the element, never adds one */
	expect_no_errors(load(
	    "[worker]\n"
	    "env = A=hello\n"
	    "   world\n"
	    "env = B=x\n"
	    "[listen]\n"
	    "address =\n"
	    "  127.0.0.1:8080\n"));
	ck_assert_uint_eq(c.env.n, 2);
	ck_assert_str_eq(c.env.v[0], "A=hello world");
	ck_assert_str_eq(c.env.v[1], "B=x");
	ck_assert_uint_eq(c.nlisten, 1);
	ck_assert_str_eq(c.listen[0].text, "127.0.0.1:8080");
}
END_TEST

START_TEST(continuation_not_after_section)
{
	/* an indented key right after a section header is a key */
	expect_no_errors(load(
	    "[worker]\n"
	    "    count = 3\n"
	    "command = /bin/true\n"));
	ck_assert_uint_eq(c.count, 3);
	/* but the next indented line continues count's value: inih's rule */
	ck_assert_int_eq(load("[worker]\n  count = 3\n  kill_timeout = 1s\n"),
	    78);
}
END_TEST

START_TEST(long_line)
{
	char text[1024], *p = text;

	p += sprintf(p, "[worker]\n");
	p += sprintf(p, "command = /bin/echo %0250d\n", 0);	/* line 2 */
	p += sprintf(p, "count = 2\n");
	p += sprintf(p, "count = x\n");				/* line 4 */
	p += sprintf(p, "kill_timeout = nope\n");			/* line 5 */
	ck_assert_int_eq(load(text), 78);
	ck_assert_uint_eq(errs.n, 3);
	expect_error("%s:2: line too long (270 characters, at most 198)", path);
	expect_error("%s:4: [worker] count: already set on line 3", path);
	expect_error("%s:5: [worker] kill_timeout: expected a duration "
	    "(250ms, 10s, 5m, 1h), got \"nope\"", path);
	ck_assert_ptr_null(c.command);		/* not a cut one */
	ck_assert_uint_eq(c.count, 2);
}
END_TEST

START_TEST(long_line_boundary)
{
	char text[1024], line[300];
	size_t n;

	/* 198 characters fit inih's 200-byte buffer with \n and NUL */
	n = 198 - strlen("env = A=");
	memset(line, 'x', n);
	line[n] = '\0';
	snprintf(text, sizeof(text), "[worker]\nenv = A=%s\ncount = x\n", line);
	ck_assert_int_eq(load(text), 78);
	ck_assert_uint_eq(errs.n, 1);
	expect_error("%s:3: [worker] count: expected an integer from 0 to "
	    "10000, got \"x\"", path);
	ck_assert_uint_eq(strlen(c.env.v[0]), 198 - strlen("env = "));
	errlist_free(&errs);
	config_free(&c);
	config_init(&c);

	/* 199 do not */
	snprintf(text, sizeof(text), "[worker]\nenv = A=%sy\ncount = x\n", line);
	ck_assert_int_eq(load(text), 78);
	ck_assert_uint_eq(errs.n, 2);
	expect_error("%s:2: line too long (199 characters, at most 198)", path);
	expect_error("%s:3: [worker] count: expected an integer from 0 to "
	    "10000, got \"x\"", path);
	ck_assert_uint_eq(c.env.n, 0);
}
END_TEST

START_TEST(long_line_in_continuation)
{
	char text[1024], *p = text;

	p += sprintf(p, "[worker]\ncommand = /bin/echo\n");
	p += sprintf(p, "    %0230d\n", 0);			/* line 3 */
	p += sprintf(p, "    b\n");
	p += sprintf(p, "count = x\n");				/* line 5 */
	p += sprintf(p, "  %0230d\n", 1);			/* line 6 */
	p += sprintf(p, "umask = 9\n");				/* line 7 */
	ck_assert_int_eq(load(text), 78);
	ck_assert_uint_eq(errs.n, 4);
	expect_error("%s:3: line too long (234 characters, at most 198)", path);
	expect_error("%s:5: [worker] count: expected an integer from 0 to "
	    "10000, got \"x\"", path);
	expect_error("%s:6: line too long (232 characters, at most 198)", path);
	expect_error("%s:7: [worker] umask: expected an octal mode from 0 to "
	    "0777, got \"9\"", path);
	ck_assert_str_eq(c.command, "/bin/echo b");
}
END_TEST

START_TEST(quoted_semicolon)
{
	ck_assert_int_eq(load(
	    "[worker]\n"
	    "command = /bin/sh -c \"echo a ;echo b\"\n"
	    "env = MSG='x ; y'\n"
	    "count = 2\n"), 78);
	/* one error each, not also "unterminated quote" */
	ck_assert_uint_eq(errs.n, 2);
	expect_error("%s:2: [worker] command: a ';' after white space starts "
	    "a comment, even inside quotes; the value would be cut there",
	    path);
	expect_error("%s:3: [worker] env: a ';' after white space starts "
	    "a comment, even inside quotes; the value would be cut there",
	    path);
	ck_assert_ptr_null(c.command);
	ck_assert_uint_eq(c.env.n, 0);
	ck_assert_uint_eq(c.count, 2);
}
END_TEST

START_TEST(quoted_semicolon_continuation)
{
	ck_assert_int_eq(load(
	    "[worker]\n"
	    "command = /bin/sh -c\n"
	    "    'a ;b'\n"
	    "count = x\n"), 78);
	ck_assert_uint_eq(errs.n, 2);
	expect_error("%s:3: [worker] command: a ';' after white space starts "
	    "a comment, even inside quotes; the value would be cut there",
	    path);
	expect_error("%s:4: [worker] count: expected an integer from 0 to "
	    "10000, got \"x\"", path);
	ck_assert_ptr_null(c.command);
}
END_TEST

START_TEST(semicolon_fine)
{
	expect_no_errors(load(
	    "[worker]\n"
	    /* a comment outside quotes, a ';' that follows no blank */
	    "command = /bin/sh -c 'a;b' \"c;d\" x ;comment\n"
	    "env = A=\"1;2\" ; comment\n"
	    "env = B=x\\\" ;comment \"\n"
	    "env = C='a \\' ;comment\n"));
	ck_assert_uint_eq(c.argv.n, 5);
	ck_assert_str_eq(c.argv.v[2], "a;b");
	ck_assert_str_eq(c.argv.v[3], "c;d");
	ck_assert_str_eq(c.argv.v[4], "x");
	ck_assert_str_eq(c.env.v[0], "A=\"1;2\"");
	ck_assert_str_eq(c.env.v[1], "B=x\\\"");
	ck_assert_str_eq(c.env.v[2], "C='a \\'");
}
END_TEST

START_TEST(syntax_errors)
{
	ck_assert_int_eq(load(
	    "[worker\n"
	    "count = 2\n"
	    "just some words\n"
	    "[listen] trailing\n"
	    "backlog = 7\n"
	    "[master] ; a comment is fine\n"
	    "= novalue\n"), 78);
	ck_assert_uint_eq(errs.n, 5);
	expect_error("%s:1: missing ']' in \"[worker\"", path);
	expect_error("%s:2: count: key outside any section (did you mean "
	    "[worker] count?)", path);
	expect_error("%s:3: expected \"key = value\" or \"[section]\", got "
	    "\"just some words\"", path);
	expect_error("%s:4: unexpected text after [listen]", path);
	expect_error("%s:7: missing key name before '='", path);
	ck_assert_int_eq(c.backlog, 7);
	errlist_free(&errs);
	ck_assert_int_eq(load("[worker]\n[oops ; x]\n= 'a ;b'\n"), 78);
	ck_assert_uint_eq(errs.n, 2);
	expect_error("%s:2: missing ']' in \"[oops ; x]\"", path);
	expect_error("%s:3: missing key name before '='", path);
}
END_TEST

START_TEST(colon_separator_and_spacing)
{
	expect_no_errors(load(
	    "[worker]\n"
	    "count: 5\n"
	    "command=/bin/true\n"
	    "kill_timeout\t=\t5s\t\n"));
	ck_assert_uint_eq(c.count, 5);
	ck_assert_str_eq(c.command, "/bin/true");
	ck_assert_int_eq(c.kill_timeout_ms, 5000);
}
END_TEST

START_TEST(crlf_and_bom)
{
	expect_no_errors(load(
	    "\xEF\xBB\xBF[worker]\r\n"
	    "count = 5\r\n"
	    "command = /bin/echo\r\n"
	    "  hi\r\n"));
	ck_assert_uint_eq(c.count, 5);
	ck_assert_str_eq(c.command, "/bin/echo hi");
	errlist_free(&errs);
	ck_assert_int_eq(load("\xEF\xBB\xBF[worker]\r\ncount = x\r\n"), 78);
	expect_error("%s:2: [worker] count: expected an integer from 0 to "
	    "10000, got \"x\"", path);
}
END_TEST

START_TEST(no_final_newline)
{
	expect_no_errors(load("[worker]\ncount = 7"));
	ck_assert_uint_eq(c.count, 7);
}
END_TEST

START_TEST(nul_byte)
{
	static const char text[] = "[worker]\ncount = 3\0junk\ncount = x\n";
	int fd;

	strcpy(path, "/tmp/fugue-check-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1),
	    (ssize_t)sizeof(text) - 1);
	close(fd);
	ck_assert_int_eq(config_load(&c, path, &errs), 78);
	unlink(path);
	ck_assert_uint_eq(errs.n, 2);
	expect_error("%s:2: NUL byte in line", path);
	expect_error("%s:3: [worker] count: expected an integer from 0 to "
	    "10000, got \"x\"", path);
}
END_TEST

START_TEST(worker_user)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("root");

	if (pw == NULL || gr == NULL)
		return;		/* no such entries here */
	expect_no_errors(load("[worker]\nuser = nobody\n"));
	ck_assert_uint_eq(c.uid, pw->pw_uid);
	ck_assert_uint_eq(c.gid, pw->pw_gid);
	ck_assert_str_eq(c.user_home, pw->pw_dir);
	config_free(&c);
	config_init(&c);

	/* group wins over the user's primary group, in either order */
	expect_no_errors(load("[worker]\ngroup = root\nuser = nobody\n"));
	ck_assert_uint_eq(c.uid, pw->pw_uid);
	ck_assert_uint_eq(c.gid, 0);
	config_free(&c);
	config_init(&c);
	expect_no_errors(load("[worker]\nuser = nobody\ngroup = 0\n"));
	ck_assert_uint_eq(c.gid, 0);
	ck_assert_str_eq(c.group, "0");
}
END_TEST

/* ---- overrides ---- */

START_TEST(set_keys)
{
	ck_assert_int_eq(config_set(&c, "worker", "count", "3", "--workers",
	    &errs), 0);
	ck_assert_uint_eq(c.count, 3);
	ck_assert_int_eq(config_set(&c, NULL, "kill_timeout", "5s",
	    "--kill-timeout", &errs), 0);
	ck_assert_int_eq(c.kill_timeout_ms, 5000);
	ck_assert_uint_eq(errs.n, 0);

	ck_assert_int_eq(config_set(&c, NULL, "count", "x", "--workers",
	    &errs), 78);
	expect_error("--workers: [worker] count: expected an integer from 0 "
	    "to 10000, got \"x\"");
	ck_assert_uint_eq(c.count, 3);
	ck_assert_int_eq(config_set(&c, NULL, "cuont", "1", "--cuont", &errs),
	    78);
	expect_error("--cuont: cuont: unknown key (did you mean [worker] "
	    "count?)");
	ck_assert_int_eq(config_set(&c, "master", "count", "1", "x.conf:3",
	    &errs), 78);
	expect_error("x.conf:3: [master] count: unknown key (did you mean "
	    "[worker] count?)");
	ck_assert_int_eq(config_set(&c, "nope", "count", "1", "--x", &errs),
	    78);
	expect_error("--x: [nope] count: unknown key (did you mean [worker] "
	    "count?)");
	ck_assert_int_eq(config_set(&c, NULL, "pid_file", "", "--pid-file",
	    &errs), 78);
	expect_error("--pid-file: [master] pid_file: missing value");
	ck_assert_int_eq(config_set(&c, NULL, "pid_file", NULL, "--pid-file",
	    &errs), 78);
	/* one line, whatever the value holds */
	ck_assert_int_eq(config_set(&c, NULL, "count", "1\n2", "--workers",
	    &errs), 78);
	expect_error("--workers: [worker] count: expected an integer from 0 "
	    "to 10000, got \"1?2\"");
}
END_TEST

START_TEST(set_overrides_file)
{
	expect_no_errors(load(
	    "[listen]\n"
	    "address = :8080\n"
	    "address = :8081\n"
	    "[worker]\n"
	    "command = /bin/old\n"
	    "count = 2\n"
	    "env = A=1\n"
	    "env = B=1\n"));
	/* a command-line --listen replaces the file's addresses */
	config_reset_key(&c, "address");
	ck_assert_uint_eq(c.nlisten, 0);
	ck_assert_int_eq(config_set(&c, NULL, "address", "127.0.0.1:1",
	    "--listen", &errs), 0);
	ck_assert_int_eq(config_set(&c, NULL, "address", "[::1]:2",
	    "--listen", &errs), 0);
	ck_assert_int_eq(config_set(&c, NULL, "address", "127.0.0.1:1",
	    "--listen", &errs), 78);
	expect_error("--listen: [listen] address: duplicate address "
	    "127.0.0.1:1");
	ck_assert_uint_eq(c.nlisten, 2);
	ck_assert_str_eq(c.listen[0].text, "127.0.0.1:1");
	ck_assert_str_eq(c.listen[1].text, "[::1]:2");
	/* set twice on the command line: no "already set", the last wins */
	ck_assert_int_eq(config_set(&c, NULL, "count", "5", "--workers",
	    &errs), 0);
	ck_assert_int_eq(config_set(&c, NULL, "count", "6", "--workers",
	    &errs), 0);
	ck_assert_uint_eq(c.count, 6);
	ck_assert_int_eq(config_set(&c, NULL, "command", "/bin/new arg",
	    "command line", &errs), 0);
	ck_assert_str_eq(c.command, "/bin/new arg");
	ck_assert_uint_eq(c.argv.n, 2);
	/* env: one name set again overrides it; reset empties */
	ck_assert_int_eq(config_set(&c, NULL, "env", "A=2", "--env", &errs), 0);
	ck_assert_uint_eq(c.env.n, 2);
	ck_assert_str_eq(c.env.v[0], "A=2");
	config_reset_key(&c, "env");
	ck_assert_uint_eq(c.env.n, 0);
	ck_assert_int_eq(config_set(&c, NULL, "env", "C=3", "--env", &errs), 0);
	ck_assert_uint_eq(c.env.n, 1);
	/* reset of a non-repeatable key: nothing changes */
	config_reset_key(&c, "count");
	ck_assert_uint_eq(c.count, 6);
	ck_assert_uint_eq(errs.n, 1);
}
END_TEST

START_TEST(key_section)
{
	ck_assert_str_eq(config_key_section("count"), "worker");
	ck_assert_str_eq(config_key_section("pid_file"), "master");
	ck_assert_str_eq(config_key_section("address"), "listen");
	ck_assert_str_eq(config_key_section("socket_owner"), "listen");
	ck_assert_str_eq(config_key_section("restart_delay_max"), "worker");
	ck_assert_ptr_null(config_key_section("nope"));
	ck_assert_ptr_null(config_key_section("kill-timeout"));
	ck_assert_ptr_null(config_key_section(""));
}
END_TEST

/* ---- config_validate ---- */

START_TEST(validate_missing)
{
	ck_assert_int_eq(config_validate(&c, false, &errs), 78);
	ck_assert_uint_eq(errs.n, 2);
	expect_error("command line: [worker] command: missing");
	expect_error("command line: [listen] address: missing");
	errlist_free(&errs);

	ck_assert_int_eq(load("[worker]\ncount = 1\n"), 0);
	ck_assert_int_eq(config_validate(&c, true, &errs), 78);
	ck_assert_uint_eq(errs.n, 3);
	expect_error("%s: [worker] command: missing", path);
	expect_error("%s: [listen] address: missing", path);
	expect_error("%s: -d needs [master] log_file (a daemon has no stderr)",
	    path);
}
END_TEST

START_TEST(validate_good)
{
	expect_no_errors(load("[listen]\naddress = :8080\n[worker]\n"
	    "command = /bin/true\n"));
	expect_no_errors(config_validate(&c, false, &errs));
	ck_assert_uint_eq(c.uid, (uid_t)-1);
	ck_assert_uint_eq(c.gid, (gid_t)-1);
	ck_assert_int_eq(c.ngroups, 0);
	ck_assert_ptr_null(c.groups);
	/* count = 0 runs nothing and needs no address */
	config_reset_key(&c, "address");
	ck_assert_int_eq(config_validate(&c, false, &errs), 78);
	errlist_free(&errs);
	ck_assert_int_eq(config_set(&c, NULL, "count", "0", "--workers",
	    &errs), 0);
	expect_no_errors(config_validate(&c, false, &errs));
}
END_TEST

START_TEST(validate_watchdog)
{
	expect_no_errors(load("[listen]\naddress = :8080\n[worker]\n"
	    "command = /bin/true\nwatchdog = 10s\n"));
	ck_assert_int_eq(config_validate(&c, false, &errs), 78);
	ck_assert_uint_eq(errs.n, 1);
	expect_error("%s: [worker] watchdog: needs ready = notify or fd", path);
	errlist_free(&errs);
	ck_assert_int_eq(config_set(&c, NULL, "ready", "notify", "--ready",
	    &errs), 0);
	expect_no_errors(config_validate(&c, false, &errs));
	/* watchdog = 0 is off, with any ready */
	ck_assert_int_eq(config_set(&c, NULL, "watchdog", "0", "--watchdog",
	    &errs), 0);
	ck_assert_int_eq(config_set(&c, NULL, "ready", "1s", "--ready",
	    &errs), 0);
	expect_no_errors(config_validate(&c, false, &errs));
}
END_TEST

START_TEST(validate_daemon)
{
	expect_no_errors(load("[master]\nlog_file = /tmp/x.log\n[listen]\n"
	    "address = :8080\n[worker]\ncommand = /bin/true\n"));
	expect_no_errors(config_validate(&c, true, &errs));
}
END_TEST

START_TEST(validate_groups)
{
	struct passwd *pw = getpwnam("root");
	bool has_gid = false;

	ck_assert_ptr_nonnull(pw);
	expect_no_errors(load("[listen]\naddress = :8080\n[worker]\n"
	    "command = /bin/true\nuser = root\n"));
	expect_no_errors(config_validate(&c, false, &errs));
	ck_assert_uint_eq(c.uid, 0);
	ck_assert_uint_eq(c.gid, pw->pw_gid);
	ck_assert_int_ge(c.ngroups, 1);
	for (int i = 0; i < c.ngroups; i++)
		has_gid |= c.groups[i] == c.gid;
	ck_assert(has_gid);
	/* validating again recomputes, no leak */
	expect_no_errors(config_validate(&c, false, &errs));
	ck_assert_int_ge(c.ngroups, 1);
}
END_TEST

START_TEST(validate_group_only)
{
	struct group *gr = getgrnam("root");

	ck_assert_ptr_nonnull(gr);
	expect_no_errors(load("[listen]\naddress = :8080\n[worker]\n"
	    "command = /bin/true\ngroup = root\n"));
	expect_no_errors(config_validate(&c, false, &errs));
	/* fugue's uid stays; the group is the only one */
	ck_assert_uint_eq(c.uid, (uid_t)-1);
	ck_assert_uint_eq(c.gid, gr->gr_gid);
	ck_assert_int_eq(c.ngroups, 1);
	ck_assert_uint_eq(c.groups[0], gr->gr_gid);
}
END_TEST

/* ---- what parsing refuses that only a start found before ---- */

START_TEST(listen_limit)
{
	struct outbuf text = { 0 };

	outbuf_printf(&text, "[listen]\n");
	for (int i = 0; i < CONFIG_LISTEN_MAX + 3; i++)
		outbuf_printf(&text, "address = 127.0.0.1:%d\n", 10000 + i);
	outbuf_add(&text, "", 1);
	ck_assert_int_eq(load(text.p), 78);
	/* Once, at the first address too many. */
	ck_assert_uint_eq(errs.n, 1);
	expect_error("%s:%d: [listen] address: more than %d addresses (the "
	    "most a worker can be given)", path, CONFIG_LISTEN_MAX + 2,
	    CONFIG_LISTEN_MAX);
	ck_assert_uint_eq(c.nlisten, CONFIG_LISTEN_MAX);
	outbuf_free(&text);
	/* The limit itself is fine. */
	config_free(&c);
	config_init(&c);
	errlist_free(&errs);
	for (int i = 0; i < CONFIG_LISTEN_MAX; i++) {
		char a[32];

		snprintf(a, sizeof(a), "127.0.0.1:%d", 10000 + i);
		ck_assert_int_eq(config_set(&c, NULL, "address", a, "--listen",
		    &errs), 0);
	}
	ck_assert_int_eq(config_set(&c, NULL, "address", "127.0.0.1:9999",
	    "--listen", &errs), 78);
	config_reset_key(&c, "address");	/* a command line's --listen */
	ck_assert_int_eq(config_set(&c, NULL, "address", "127.0.0.1:9999",
	    "--listen", &errs), 0);
}
END_TEST

/* The config's addresses through config_validate: its errors. */
static int
validate_addresses(const char *a, const char *b)
{
	char text[256];

	snprintf(text, sizeof(text), "[listen]\naddress = %s\naddress = %s\n"
	    "[worker]\ncommand = /bin/true\n", a, b);
	config_free(&c);
	config_init(&c);
	errlist_free(&errs);
	ck_assert_int_eq(load(text), 0);
	return config_validate(&c, false, &errs);
}

START_TEST(listen_overlap)
{
	ck_assert_int_eq(validate_addresses("0.0.0.0:8080", "127.0.0.1:8080"),
	    78);
	expect_error("%s:3: [listen] address: 127.0.0.1:8080 and 0.0.0.0:8080 "
	    "(%s:2) overlap: one cannot be bound while the other listens", path,
	    path);
	ck_assert_int_eq(validate_addresses("127.0.0.1:8080", ":8080"), 78);
	ck_assert_int_eq(validate_addresses("[::1]:8080", "[::]:8080"), 78);
	expect_error("%s:3: [listen] address: [::]:8080 and [::1]:8080 (%s:2) "
	    "overlap: one cannot be bound while the other listens", path,
	    path);
	/* IPv6 listeners are IPv6-only: the two wildcards go together. */
	expect_no_errors(validate_addresses("0.0.0.0:8080", "[::]:8080"));
	expect_no_errors(validate_addresses("[::]:8080", "127.0.0.1:8080"));
	expect_no_errors(validate_addresses("0.0.0.0:8080",
	    "127.0.0.1:8081"));
	expect_no_errors(validate_addresses("127.0.0.1:8080",
	    "127.0.0.2:8080"));
	expect_no_errors(validate_addresses("unix:/tmp/a.sock",
	    "unix:/tmp/b.sock"));
	/* UDP and TCP ports are apart; UDP wildcards exclude like TCP's. */
	expect_no_errors(validate_addresses("0.0.0.0:53", "udp:127.0.0.1:53"));
	expect_no_errors(validate_addresses("udp:127.0.0.1:53",
	    "127.0.0.1:53"));
	ck_assert_int_eq(validate_addresses("udp::53", "udp:127.0.0.1:53"),
	    78);
	expect_error("%s:3: [listen] address: udp:127.0.0.1:53 and "
	    "udp:0.0.0.0:53 (%s:2) overlap: one cannot be bound while the "
	    "other listens", path, path);
	/* One file for a stream and a datagram socket: never both. */
	ck_assert_int_eq(validate_addresses("unix:/tmp/a.sock",
	    "unixgram:/tmp/a.sock"), 78);
	expect_error("%s:3: [listen] address: unixgram:/tmp/a.sock and "
	    "unix:/tmp/a.sock (%s:2) overlap: one cannot be bound while the "
	    "other listens", path, path);
}
END_TEST

START_TEST(listen_v4_mapped)
{
	bad_value("listen", "address", "[::ffff:127.0.0.1]:80",
	    "[::ffff:127.0.0.1]:80: an IPv4-mapped address cannot be bound "
	    "(IPv6 listeners are IPv6-only); write it as IPv4");
}
END_TEST

START_TEST(listen_is_the_control_socket)
{
	ck_assert_int_eq(load("[master]\ncontrol_socket = /tmp/x.sock\n"
	    "[listen]\naddress = unix:/tmp/x.sock\n[worker]\n"
	    "command = /bin/true\n"), 0);
	ck_assert_int_eq(config_validate(&c, false, &errs), 78);
	expect_error("%s:4: [listen] address: unix:/tmp/x.sock is the control "
	    "socket (%s:2)", path, path);
}
END_TEST

START_TEST(metrics_address)
{
	ck_assert_int_eq(load("[master]\nmetrics = localhost:9100\n"), 0);
	ck_assert_str_eq(c.metrics, "127.0.0.1:9100");
	ck_assert_int_eq(c.metrics_addr.family, AF_INET);
	config_free(&c);
	config_init(&c);
	ck_assert_int_eq(load("[master]\nmetrics = unix:/run/app/m.sock\n"),
	    0);
	ck_assert_str_eq(c.metrics, "unix:/run/app/m.sock");
	config_free(&c);
	config_init(&c);
	ck_assert_int_eq(load("[master]\nmetrics = 9100\n"), 78);
	expect_error("%s:2: [master] metrics: bad address \"9100\": missing "
	    "port (\":PORT\" listens on every address)", path);
}
END_TEST

START_TEST(metrics_is_fugues_own)
{
	ck_assert_int_eq(load("[master]\nmetrics = 127.0.0.1:8080\n"
	    "[listen]\naddress = 127.0.0.1:8080\n[worker]\n"
	    "command = /bin/true\n"), 0);
	ck_assert_int_eq(config_validate(&c, false, &errs), 78);
	expect_error("%s:2: [master] metrics: 127.0.0.1:8080 is also a "
	    "[listen] address (%s:4): the endpoint is fugue's own, never "
	    "passed to workers", path, path);
	config_free(&c);
	config_init(&c);
	errlist_free(&errs);
	ck_assert_int_eq(load("[master]\nmetrics = :8080\n"
	    "[listen]\naddress = 127.0.0.1:8080\n[worker]\n"
	    "command = /bin/true\n"), 0);
	ck_assert_int_eq(config_validate(&c, false, &errs), 78);
	expect_error("%s:2: [master] metrics: 0.0.0.0:8080 and [listen] "
	    "address 127.0.0.1:8080 (%s:4) overlap: one cannot be bound while "
	    "the other listens", path, path);
	config_free(&c);
	config_init(&c);
	errlist_free(&errs);
	ck_assert_int_eq(load("[master]\ncontrol_socket = /tmp/x.sock\n"
	    "metrics = unix:/tmp/x.sock\n[listen]\naddress = :1\n[worker]\n"
	    "command = /bin/true\n"), 0);
	ck_assert_int_eq(config_validate(&c, false, &errs), 78);
	expect_error("%s:3: [master] metrics: unix:/tmp/x.sock is the control "
	    "socket (%s:2)", path, path);
	config_free(&c);
	config_init(&c);
	errlist_free(&errs);
	/* another port, or a UNIX socket elsewhere: fine */
	ck_assert_int_eq(load("[master]\nmetrics = 127.0.0.1:9100\n"
	    "[listen]\naddress = :8080\n[worker]\ncommand = /bin/true\n"), 0);
	expect_no_errors(config_validate(&c, false, &errs));
}
END_TEST

START_TEST(origins)
{
	char *line3, *line5;

	ck_assert_int_eq(load("[master]\n\nlog_file = /tmp/a.log\n[listen]\n"
	    "address = :1\n"), 0);
	ck_assert_int_eq(config_set(&c, NULL, "address", ":2", "--listen",
	    &errs), 0);
	line3 = xprintf("%s:3", path);
	line5 = xprintf("%s:5", path);
	ck_assert_str_eq(config_origin(&c, "log_file"), line3);
	ck_assert_str_eq(config_listen_origin(&c, 0), line5);
	ck_assert_str_eq(config_listen_origin(&c, 1), "--listen");
	/* Not set: the file. */
	ck_assert_str_eq(config_origin(&c, "working_dir"), c.path);
	config_set_origin(&c, "command", "command line");
	ck_assert_str_eq(config_origin(&c, "command"), "command line");
	free(line3);
	free(line5);
}
END_TEST

/* ---- config_check_host: what the start would find ---- */

static char hdir[64];

static void
host_setup(void)
{
	setup();
	strcpy(hdir, "/tmp/fugue-check-host-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(hdir));
}

static void
host_teardown(void)
{
	char *cmd = xprintf("rm -rf '%s'", hdir);

	teardown();
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

/* A config of keys (in hdir: "%s"), valid on its own; the start's exit
 * code for it, with its errors in errs. */
static int
host(const char *fmt)
{
	char *text = xprintf(fmt, hdir, hdir, hdir, hdir);
	int r;

	config_free(&c);
	config_init(&c);
	errlist_free(&errs);
	ck_assert_int_eq(load(text), 0);
	free(text);
	ck_assert_int_eq(config_validate(&c, false, &errs), 0);
	r = config_check_host(&c, true, &errs);
	ck_assert_msg((r == 0) == (errs.n == 0), "r=%d: %s", r, all_errors());
	return r;
}

#define HOST_OK	"[listen]\naddress = 127.0.0.1:1\n[worker]\n" \
		"command = /bin/true\n"

START_TEST(host_good)
{
	expect_no_errors(host("[master]\nlog_file = %s/app.log\n"
	    "master_log_file = %s/m.log\npid_file = %s/fugue.pid\n"
	    "control_socket = %s/ctl.sock\n" HOST_OK "working_dir = /\n"));
}
END_TEST

START_TEST(host_working_dir)
{
	ck_assert_int_eq(host(HOST_OK "working_dir = %s/nope\n"), 69);
	expect_error("%s:5: [worker] working_dir: %s/nope: No such file or "
	    "directory", path, hdir);
	ck_assert_int_eq(host(HOST_OK "working_dir = /etc/passwd\n"), 69);
	expect_error("%s:5: [worker] working_dir: /etc/passwd: not a "
	    "directory", path);
}
END_TEST

START_TEST(host_working_dir_of_the_user)
{
	char *wd = xprintf("%s/private", hdir);

	if (geteuid() != 0 || getpwnam("nobody") == NULL) {
		fprintf(stderr, "skipped: needs root and user nobody\n");
		free(wd);
		return;
	}
	ck_assert_int_eq(mkdir(wd, 0700), 0);
	ck_assert_int_eq(chmod(hdir, 0755), 0);
	/* root may enter it; nobody may not */
	expect_no_errors(host(HOST_OK "working_dir = %s/private\n"));
	ck_assert_int_eq(host(HOST_OK "user = nobody\n"
	    "working_dir = %s/private\n"), 69);
	expect_error("%s:6: [worker] working_dir: %s: the workers (nobody) may "
	    "not enter it", path, wd);
	ck_assert_int_eq(chmod(wd, 0711), 0);
	expect_no_errors(host(HOST_OK "user = nobody\n"
	    "working_dir = %s/private\n"));
	free(wd);
}
END_TEST

START_TEST(host_command)
{
	ck_assert_int_eq(host("[listen]\naddress = 127.0.0.1:1\n[worker]\n"
	    "command = %s/nope serve\n"), 69);
	expect_error("%s:4: [worker] command: %s/nope: No such file or "
	    "directory", path, hdir);
}
END_TEST

START_TEST(host_log_files)
{
	char *fifo = xprintf("%s/fifo", hdir);

	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(host("[master]\nlog_file = %s/fifo\n" HOST_OK), 73);
	expect_error("%s:2: [master] log_file: %s: a FIFO (named pipe); a log "
	    "file must be a regular file or a character device", path, fifo);
	ck_assert_int_eq(host("[master]\nmaster_log_file = %s\n" HOST_OK), 73);
	expect_error("%s:2: [master] master_log_file: %s: a directory; a log "
	    "file must be a regular file or a character device", path, hdir);
	ck_assert_int_eq(host("[master]\nlog_file = %s/no/app.log\n" HOST_OK),
	    73);
	expect_error("%s:2: [master] log_file: %s/no/app.log: No such file or "
	    "directory", path, hdir);
	/* A reload opens them only if they changed, and keeps the old ones. */
	errlist_free(&errs);
	ck_assert_int_eq(config_check_host(&c, false, &errs), 0);
	/* What can be: a character device, a file to create. */
	expect_no_errors(host("[master]\nlog_file = /dev/null\n" HOST_OK));
	free(fifo);
}
END_TEST

START_TEST(host_pid_file_and_control_socket)
{
	char *sock = xprintf("%s/ctl.sock", hdir);
	FILE *f = fopen(sock, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(host("[master]\npid_file = %s\n" HOST_OK), 73);
	expect_error("%s:2: [master] pid_file: %s: not a regular file", path,
	    hdir);
	ck_assert_int_eq(host("[master]\ncontrol_socket = %s/ctl.sock\n"
	    HOST_OK), 73);
	expect_error("%s:2: [master] control_socket: listen unix:%s: %s exists "
	    "and is not a socket; not replacing it", path, sock, sock);
	/* A reload keeps both as started: not looked at. */
	ck_assert_int_eq(config_check_host(&c, false, &errs), 0);
	free(sock);
}
END_TEST

START_TEST(host_metrics)
{
	char *file = xprintf("%s/m.sock", hdir);
	FILE *f = fopen(file, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(host("[master]\nmetrics = unix:%s/m.sock\n" HOST_OK),
	    73);
	expect_error("%s:2: [master] metrics: listen unix:%s: %s exists and is "
	    "not a socket; not replacing it", path, file, file);
	ck_assert_int_eq(host("[master]\nmetrics = 192.0.2.1:9100\n" HOST_OK),
	    71);
	ck_assert_msg(errs.n == 1 && strncmp(errs.v[0], path, strlen(path)) ==
	    0 && strstr(errs.v[0], ":2: [master] metrics: listen "
	    "192.0.2.1:9100: ") != NULL, "%s", all_errors());
	expect_no_errors(host("[master]\nmetrics = 127.0.0.1:9100\n" HOST_OK));
	/* A reload keeps it as started: not looked at. */
	ck_assert_int_eq(host("[master]\nmetrics = unix:%s/m.sock\n" HOST_OK),
	    73);
	errlist_free(&errs);
	ck_assert_int_eq(config_check_host(&c, false, &errs), 0);
	free(file);
}
END_TEST

START_TEST(host_listeners)
{
	ck_assert_int_eq(host("[listen]\naddress = 192.0.2.1:8080\n[worker]\n"
	    "command = /bin/true\n"), 71);
	expect_error("%s:2: [listen] address: listen 192.0.2.1:8080: Cannot "
	    "assign requested address", path);
	ck_assert_int_eq(host("[listen]\naddress = unix:%s/no/app.sock\n"
	    "[worker]\ncommand = /bin/true\n"), 73);
	expect_error("%s:2: [listen] address: listen unix:%s/no/app.sock: No "
	    "such file or directory", path, hdir);
	/* An address in use is for the start to find (an upgrade's check
	 * runs beside the master that holds it). */
	expect_no_errors(host("[listen]\naddress = unix:%s/app.sock\n"
	    "[worker]\ncommand = /bin/true\n"));
}
END_TEST

START_TEST(host_runtime_dir)
{
	ck_assert_int_eq(host("[master]\nruntime_dir = %s/no\n" HOST_OK
	    "ready = notify\n"), 69);
	expect_error("%s:2: [master] runtime_dir: %s/no: No such file or "
	    "directory (ready = notify makes the workers' socket there)", path,
	    hdir);
	/* Without ready = notify it is not used. */
	expect_no_errors(host("[master]\nruntime_dir = %s/no\n" HOST_OK));
}
END_TEST

START_TEST(host_first_failure_of_the_start)
{
	/* The log file is opened before the command is looked for. */
	ck_assert_int_eq(host("[master]\nlog_file = %s/no/a.log\n[listen]\n"
	    "address = 127.0.0.1:1\n[worker]\ncommand = %s/nope\n"), 73);
	ck_assert_uint_eq(errs.n, 2);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *t;

	t = tcase_create("values");
	tcase_add_test(t, duration_good);
	tcase_add_test(t, duration_bad);
	tcase_add_test(t, duration_format);
	tcase_add_test(t, signal_parse);
	tcase_add_test(t, mode_parse);
	tcase_add_test(t, bool_parse);
	tcase_add_test(t, uint_parse);
	tcase_add_test(t, split_words);
	tcase_add_test(t, split_errors);
	suite_add_tcase(s, t);

	t = tcase_create("addresses");
	tcase_add_test(t, address_inet);
	tcase_add_test(t, address_bad);
	tcase_add_test(t, address_unix);
	tcase_add_test(t, address_unix_relative_too_long);
	tcase_add_test(t, address_datagram);
	suite_add_tcase(s, t);

	t = tcase_create("file");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, defaults);
	tcase_add_test(t, every_key);
	tcase_add_test(t, good_values);
	tcase_add_test(t, bad_values);
	tcase_add_test(t, hooks);
	tcase_add_test(t, bad_value_keeps_default);
	tcase_add_test(t, every_error_collected);
	tcase_add_test(t, cannot_open);
	tcase_add_test(t, relative_config_path);
	tcase_add_test(t, relative_paths);
	tcase_add_test(t, unix_path_too_long_in_file);
	tcase_add_test(t, outside_section);
	tcase_add_test(t, unknown_section);
	tcase_add_test(t, unknown_key);
	tcase_add_test(t, duplicate_key);
	tcase_add_test(t, repeatable_keys);
	tcase_add_test(t, load_on_top);
	tcase_add_test(t, worker_user);
	tcase_add_test(t, syntax_errors);
	tcase_add_test(t, colon_separator_and_spacing);
	tcase_add_test(t, crlf_and_bom);
	tcase_add_test(t, no_final_newline);
	tcase_add_test(t, nul_byte);
	suite_add_tcase(s, t);

	t = tcase_create("inih traps");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, continuation_command);
	tcase_add_test(t, continuation_empty_first_line);
	tcase_add_test(t, continuation_quotes_span_lines);
	tcase_add_test(t, continuation_line_numbers);
	tcase_add_test(t, continuation_repeatable);
	tcase_add_test(t, continuation_not_after_section);
	tcase_add_test(t, long_line);
	tcase_add_test(t, long_line_boundary);
	tcase_add_test(t, long_line_in_continuation);
	tcase_add_test(t, quoted_semicolon);
	tcase_add_test(t, quoted_semicolon_continuation);
	tcase_add_test(t, semicolon_fine);
	suite_add_tcase(s, t);

	t = tcase_create("overrides and checks");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, set_keys);
	tcase_add_test(t, set_overrides_file);
	tcase_add_test(t, key_section);
	tcase_add_test(t, validate_missing);
	tcase_add_test(t, validate_good);
	tcase_add_test(t, validate_watchdog);
	tcase_add_test(t, validate_daemon);
	tcase_add_test(t, validate_groups);
	tcase_add_test(t, validate_group_only);
	tcase_add_test(t, listen_limit);
	tcase_add_test(t, listen_overlap);
	tcase_add_test(t, listen_v4_mapped);
	tcase_add_test(t, listen_is_the_control_socket);
	tcase_add_test(t, metrics_address);
	tcase_add_test(t, metrics_is_fugues_own);
	tcase_add_test(t, origins);
	suite_add_tcase(s, t);

	t = tcase_create("against this machine");
	tcase_add_checked_fixture(t, host_setup, host_teardown);
	tcase_add_test(t, host_good);
	tcase_add_test(t, host_working_dir);
	tcase_add_test(t, host_working_dir_of_the_user);
	tcase_add_test(t, host_command);
	tcase_add_test(t, host_log_files);
	tcase_add_test(t, host_pid_file_and_control_socket);
	tcase_add_test(t, host_listeners);
	tcase_add_test(t, host_metrics);
	tcase_add_test(t, host_runtime_dir);
	tcase_add_test(t, host_first_failure_of_the_start);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
