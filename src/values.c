/*
 * Values of configuration keys: durations, signals, modes, numbers, words
 * of a command, paths and listening addresses. Pure functions: each returns
 * -1 (with a reason where it takes an err buffer) and changes nothing on a
 * bad value.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#define YEAR_MS		(365LL * 24 * 3600 * 1000)
#define ID_MAX		4294967294UL	/* uid_t/gid_t; -1 means "keep" */
#define FILE_MAX	(1024 * 1024)
#define DURATION_HELP	"(250ms, 10s, 5m, 1h)"


/* ---- value parsers ---- */

int
parse_uint(const char *s, unsigned long lo, unsigned long hi,
    unsigned long *out)
{
	unsigned long v;
	char *end;

	/* strtoul alone would take a sign and leading blanks */
	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int
parse_duration(const char *s, int64_t *ms)
{
	uint64_t whole = 0, frac = 0, scale = 1, unit, total;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > 100000000000ULL)	/* far above a year in ms */
			return -1;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return -1;
		for (; isdigit((unsigned char)*p); p++) {
			if (scale < 1000000000) {	/* finer is noise */
				frac = frac * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			}
		}
	}
	if (strcmp(p, "ms") == 0)
		unit = 1;
	else if (strcmp(p, "s") == 0 || *p == '\0')
		unit = 1000;
	else if (strcmp(p, "m") == 0)
		unit = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		unit = 3600 * 1000;
	else
		return -1;
	total = whole * unit + frac * unit / scale;
	if (total > (uint64_t)YEAR_MS)
		return -1;
	*ms = (int64_t)total;
	return 0;
}

/* "512M": bytes, with K, M, G or T (powers of 1024), optionally followed
 * by "iB" or "B"; a bare number is bytes. */
int
parse_size(const char *s, uint64_t *bytes)
{
	uint64_t n = 0, unit = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (1ULL << 50))
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case 'K': unit = 1ULL << 10; p++; break;
	case 'M': unit = 1ULL << 20; p++; break;
	case 'G': unit = 1ULL << 30; p++; break;
	case 'T': unit = 1ULL << 40; p++; break;
	}
	if (unit > 1 && strcmp(p, "iB") == 0)
		p += 2;
	else if (*p == 'B')
		p++;
	if (*p != '\0' || n > (1ULL << 50) / unit)
		return -1;
	*bytes = n * unit;
	return 0;
}

void
format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (u < 3 && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)bytes,
		    units[u]);
}

void
format_duration(int64_t ms, char *buf, size_t len)
{
	long long v = ms;
	char *p;

	if (v == 0)
		snprintf(buf, len, "0s");
	else if (v < 1000)
		snprintf(buf, len, "%lldms", v);
	else if (v % 3600000 == 0)
		snprintf(buf, len, "%lldh", v / 3600000);
	else if (v % 60000 == 0)
		snprintf(buf, len, "%lldm", v / 60000);
	else if (v % 1000 == 0)
		snprintf(buf, len, "%llds", v / 1000);
	else {
		snprintf(buf, len, "%lld.%03lld", v / 1000, v % 1000);
		p = buf + strlen(buf);
		while (p > buf && p[-1] == '0')
			*--p = '\0';
		if ((size_t)(p - buf) + 1 < len)
			strcpy(p, "s");
	}
}

static const struct {
	int		 sig;
	const char	*name;
} signals[] = {
	{ SIGHUP, "HUP" }, { SIGINT, "INT" }, { SIGQUIT, "QUIT" },
	{ SIGILL, "ILL" }, { SIGTRAP, "TRAP" }, { SIGABRT, "ABRT" },
	{ SIGBUS, "BUS" }, { SIGFPE, "FPE" }, { SIGKILL, "KILL" },
	{ SIGUSR1, "USR1" }, { SIGSEGV, "SEGV" }, { SIGUSR2, "USR2" },
	{ SIGPIPE, "PIPE" }, { SIGALRM, "ALRM" }, { SIGTERM, "TERM" },
	{ SIGSTKFLT, "STKFLT" }, { SIGCHLD, "CHLD" }, { SIGCONT, "CONT" },
	{ SIGSTOP, "STOP" }, { SIGTSTP, "TSTP" }, { SIGTTIN, "TTIN" },
	{ SIGTTOU, "TTOU" }, { SIGURG, "URG" }, { SIGXCPU, "XCPU" },
	{ SIGXFSZ, "XFSZ" }, { SIGVTALRM, "VTALRM" }, { SIGPROF, "PROF" },
	{ SIGWINCH, "WINCH" }, { SIGIO, "IO" }, { SIGPWR, "PWR" },
	{ SIGSYS, "SYS" },
};

int
parse_signal(const char *s, int *sig)
{
	unsigned long n;

	if (isdigit((unsigned char)s[0])) {
		if (parse_uint(s, 1, 64, &n) == -1)
			return -1;
		*sig = (int)n;
		return 0;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < nitems(signals); i++) {
		if (strcasecmp(s, signals[i].name) == 0) {
			*sig = signals[i].sig;
			return 0;
		}
	}
	return -1;
}

const char *
signal_name(int sig)
{
	for (size_t i = 0; i < nitems(signals); i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	/* Real-time signals and the like: by number. */
	static char buf[4][16];
	static int next;
	char *b = buf[next++ & 3];

	snprintf(b, sizeof(buf[0]), "%d", sig);
	return b;
}

int
parse_mode(const char *s, int *mode)
{
	int v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		v = v * 8 + (*s - '0');
		if (v > 07777)
			return -1;
	}
	*mode = v;
	return 0;
}

int
parse_bool(const char *s, bool *b)
{
	static const char *yes[] = { "yes", "true", "on", "1" };
	static const char *no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < nitems(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*b = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*b = false;
			return 0;
		}
	}
	return -1;
}

int
split_command(const char *s, struct strvec *out, char *err, size_t len)
{
	struct strvec words = { NULL, 0 };
	char *buf = xmalloc(strlen(s) + 1), *w = buf;
	const char *p = s;
	bool inword = false;

	while (*p) {
		if (isspace((unsigned char)*p)) {
			if (inword) {
				*w = '\0';
				strvec_push(&words, buf);
				w = buf;
				inword = false;
			}
			p++;
			continue;
		}
		inword = true;	/* also for "": an empty word */
		if (*p == '\'') {
			for (p++; *p && *p != '\''; )
				*w++ = *p++;
			if (*p++ != '\'')
				goto unterminated;
		} else if (*p == '"') {
			for (p++; *p && *p != '"'; ) {
				if (*p == '\\' && p[1] != '\0' &&
				    strchr("\\\"$`", p[1]) != NULL)
					p++;
				*w++ = *p++;
			}
			if (*p++ != '"')
				goto unterminated;
		} else if (*p == '\\') {
			if (p[1] == '\0') {
				snprintf(err, len, "trailing backslash");
				goto fail;
			}
			*w++ = p[1];
			p += 2;
		} else
			*w++ = *p++;
	}
	if (inword) {
		*w = '\0';
		strvec_push(&words, buf);
	}
	free(buf);
	if (words.n == 0) {
		snprintf(err, len, "empty command");
		return -1;
	}
	strvec_copy(out, &words);
	strvec_clear(&words);
	return 0;

unterminated:
	snprintf(err, len, "unterminated quote");
fail:
	free(buf);
	strvec_clear(&words);
	return -1;
}

/* ---- paths and addresses ---- */

/* Drop "." components, doubled and trailing slashes; ".." stays, because
 * resolving it lexically would be wrong across symlinks. */
static void
path_clean(char *path)
{
	char *r = path, *w = path;

	while (*r) {
		if (r[0] == '/' && r[1] == '/')
			r++;
		else if (r[0] == '/' && r[1] == '.' &&
		    (r[2] == '/' || r[2] == '\0'))
			r += 2;
		else
			*w++ = *r++;
	}
	if (w > path + 1 && w[-1] == '/')
		w--;
	if (w == path)
		*w++ = '/';
	*w = '\0';
}

/* Absolute against the current directory, so a reload or an upgrade after
 * a chdir still finds the same file. NULL with err if there is no cwd. */
char *
path_absolute(const char *p, char *err, size_t len)
{
	char *cwd, *abs;

	if (p[0] == '/')
		abs = xstrdup(p);
	else {
		if ((cwd = getcwd(NULL, 0)) == NULL) {
			snprintf(err, len, "cannot find the current directory: %s",
			    strerror(errno));
			return NULL;
		}
		abs = xprintf("%s/%s", cwd, p);
		free(cwd);
	}
	path_clean(abs);
	return abs;
}

static int
address_unix(const char *path, const char *prefix, struct address *a,
    char *err, size_t len)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&a->sa;
	char *abs;
	size_t n;

	if (*path == '\0') {
		snprintf(err, len, "missing socket path after %s", prefix);
		return -1;
	}
	if ((abs = path_absolute(path, err, len)) == NULL)
		return -1;
	n = strlen(abs);
	if (n >= sizeof(sun->sun_path)) {	/* never truncated */
		snprintf(err, len, "socket path longer than %zu bytes",
		    sizeof(sun->sun_path) - 1);
		free(abs);
		return -1;
	}
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, abs, n + 1);
	a->family = AF_UNIX;
	a->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	snprintf(a->text, sizeof(a->text), "%s%s", prefix, abs);
	free(abs);
	return 0;
}

/* Resolve host (a literal, or a name: IPv4 preferred) into a->sa. */
static int
address_host(const char *host, int family, struct address *a, char *err,
    size_t len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;
	struct addrinfo hints, *res, *ai, *pick = NULL;
	int r;

	if (family != AF_INET6) {
		/* inet_pton, not getaddrinfo, which takes "1.2" for 1.0.0.2 */
		if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			a->family = AF_INET;
			a->salen = sizeof(*sin);
			return 0;
		}
		if (strspn(host, "0123456789.") == strlen(host)) {
			snprintf(err, len, "bad IPv4 address \"%s\"", host);
			return -1;
		}
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = family == AF_INET6 ? AI_NUMERICHOST : 0;
	if ((r = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		if (family == AF_INET6)
			snprintf(err, len, "bad IPv6 address \"%s\"", host);
		else
			snprintf(err, len, "cannot resolve \"%s\": %s", host,
			    gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET)
			pick = ai;
	for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET6)
			pick = ai;
	if (pick == NULL || pick->ai_addrlen > sizeof(a->sa)) {
		freeaddrinfo(res);
		snprintf(err, len, "no IPv4 or IPv6 address for \"%s\"", host);
		return -1;
	}
	memcpy(&a->sa, pick->ai_addr, pick->ai_addrlen);
	a->salen = pick->ai_addrlen;
	a->family = pick->ai_family;
	freeaddrinfo(res);
	return 0;
}

static int
address_inet(const char *s, const char *prefix, struct address *a, char *err,
    size_t len)
{
	char host[NI_MAXHOST], num[NI_MAXHOST];
	const char *port, *end;
	unsigned long p;
	size_t hlen;
	int family = AF_UNSPEC;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL) {
			snprintf(err, len, "missing ']' after an IPv6 address");
			return -1;
		}
		if (end[1] != ':') {
			snprintf(err, len, end[1] == '\0' ? "missing port" :
			    "expected ':' and a port after ']'");
			return -1;
		}
		s++;
		hlen = (size_t)(end - s);
		port = end + 2;
		family = AF_INET6;
	} else {
		if ((end = strrchr(s, ':')) == NULL) {
			snprintf(err, len, "missing port%s",
			    strspn(s, "0123456789") == strlen(s) ?
			    " (\":PORT\" listens on every address)" : "");
			return -1;
		}
		hlen = (size_t)(end - s);
		if (memchr(s, ':', hlen) != NULL) {
			snprintf(err, len, "an IPv6 address needs brackets, "
			    "as in [::1]:8080");
			return -1;
		}
		port = end + 1;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, len, "host name too long");
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (*port == '\0') {
		snprintf(err, len, "missing port");
		return -1;
	}
	if (strspn(port, "0123456789") != strlen(port)) {
		snprintf(err, len, "bad port \"%s\"", port);
		return -1;
	}
	if (parse_uint(port, 1, 65535, &p) == -1) {
		snprintf(err, len, "port out of range (1 to 65535)");
		return -1;
	}
	if (hlen == 0 && family == AF_UNSPEC) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		a->family = AF_INET;
		a->salen = sizeof(*sin);
	} else if (address_host(host, family, a, err, len) == -1)
		return -1;
	if (a->family == AF_INET)
		((struct sockaddr_in *)&a->sa)->sin_port = htons((uint16_t)p);
	else
		((struct sockaddr_in6 *)&a->sa)->sin6_port = htons((uint16_t)p);
	if (getnameinfo((struct sockaddr *)&a->sa, a->salen, num, sizeof(num),
	    NULL, 0, NI_NUMERICHOST) != 0) {
		snprintf(err, len, "cannot format the address");
		return -1;
	}
	snprintf(a->text, sizeof(a->text), a->family == AF_INET6 ?
	    "%s[%s]:%lu" : "%s%s:%lu", prefix, num, p);
	return 0;
}

int
parse_address(const char *s, struct address *a, char *err, size_t len)
{
	struct address n;
	int r;

	memset(&n, 0, sizeof(n));
	n.type = SOCK_STREAM;
	if (strncmp(s, "unix:", 5) == 0)
		r = address_unix(s + 5, "unix:", &n, err, len);
	else if (strncmp(s, "unixgram:", 9) == 0) {
		n.type = SOCK_DGRAM;
		r = address_unix(s + 9, "unixgram:", &n, err, len);
	} else if (strncmp(s, "udp:", 4) == 0) {
		n.type = SOCK_DGRAM;
		r = address_inet(s + 4, "udp:", &n, err, len);
	} else
		r = address_inet(s, "", &n, err, len);
	if (r == 0)
		*a = n;
	return r;
}

const char *
address_path(const struct address *a)
{
	return ((const struct sockaddr_un *)&a->sa)->sun_path;
}


/* ---- how addresses relate ---- */

static bool
address_inet_any(const struct address *a)
{
	if (a->family == AF_INET)
		return ((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(
	    &((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
}

static unsigned
address_port(const struct address *a)
{
	return ntohs(a->family == AF_INET ?
	    ((const struct sockaddr_in *)&a->sa)->sin_port :
	    ((const struct sockaddr_in6 *)&a->sa)->sin6_port);
}

bool
address_v4_mapped(const struct address *a)
{
	return a->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(
	    &((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
}

bool
address_overlap(const struct address *a, const struct address *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == AF_UNIX)	/* one file: unix: and unixgram: */
		return a->type != b->type &&
		    strcmp(address_path(a), address_path(b)) == 0;
	if (a->type != b->type || address_port(a) != address_port(b))
		return false;
	return address_inet_any(a) != address_inet_any(b);
}
