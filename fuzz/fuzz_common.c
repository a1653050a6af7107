/*
 * Helpers for the fuzz targets.
 *
 * Name lookups: parse_address() resolves host names with getaddrinfo(),
 * which would send random names to the DNS server. Every target is linked
 * with -Wl,--wrap=getaddrinfo: numeric hosts only, and "localhost" as
 * 127.0.0.1, so a fuzz run never leaves the machine and stays fast.
 */
#include <sys/mman.h>

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "upgrade.h"

int	__real_getaddrinfo(const char *, const char *,
	    const struct addrinfo *, struct addrinfo **);
int	__wrap_getaddrinfo(const char *, const char *,
	    const struct addrinfo *, struct addrinfo **);

int
__wrap_getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	struct addrinfo h;

	if (hints != NULL)
		h = *hints;
	else
		memset(&h, 0, sizeof(h));
	h.ai_flags |= AI_NUMERICHOST;
	if (node != NULL && strcasecmp(node, "localhost") == 0)
		node = h.ai_family == AF_INET6 ? "::1" : "127.0.0.1";
	return __real_getaddrinfo(node, service, &h, res);
}

void
fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: check failed: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

const char *
fuzz_file(const uint8_t *data, size_t size)
{
	static char path[64];
	static int fd = -1;

	if (fd == -1) {
		if ((fd = memfd_create("fuzz-input", MFD_CLOEXEC)) == -1) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) == -1 ||
	    (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size)) {
		perror("memfd write");
		abort();
	}
	return path;
}

char *
fuzz_str(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t n = nul ? (size_t)(nul - data) : size;
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

void
fuzz_check_errs(const struct errlist *errs)
{
	for (size_t i = 0; i < errs->n; i++) {
		FUZZ_CHECK(errs->v[i] != NULL && errs->v[i][0] != '\0',
		    "error %zu is empty", i);
		for (const char *p = errs->v[i]; *p; p++)
			FUZZ_CHECK((unsigned char)*p >= 0x20 &&
			    (unsigned char)*p != 0x7f,
			    "error message with a control character (0x%02x): "
			    "%s", (unsigned char)*p, errs->v[i]);
	}
}

static void
lines_equal(const struct strvec *a, const struct strvec *b)
{
	size_t i;

	for (i = 0; i < a->n && i < b->n; i++)
		FUZZ_CHECK(strcmp(a->v[i], b->v[i]) == 0,
		    "config line %zu changed across the upgrade: \"%s\" -> "
		    "\"%s\"", i, a->v[i], b->v[i]);
	FUZZ_CHECK(a->n == b->n, "config had %zu lines, %zu after the "
	    "upgrade (first extra: \"%s\")", a->n, b->n,
	    a->n > b->n ? a->v[b->n] : b->v[a->n]);
}

void
fuzz_config_roundtrip(const struct config *c)
{
	struct state s, back;
	struct strvec before = { NULL, 0 }, after = { NULL, 0 };
	struct errlist errs = { NULL, 0 };
	struct config c2;
	char err[256], *text;
	size_t len;
	int r;

	state_config_dump(c, &before);
	state_init(&s);
	s.version = STATE_VERSION;
	s.cfg = before;
	text = state_format(&s, &len);
	r = state_parse(text, len, &back, err, sizeof(err));
	FUZZ_CHECK(r == 0, "state of a valid config does not parse: %s\n%.*s",
	    err, (int)len, text);
	lines_equal(&before, &back.cfg);

	config_init(&c2);
	r = state_config_load(&back.cfg, &c2, &errs);
	FUZZ_CHECK(r == 0, "a valid config is refused after the upgrade: %s",
	    errs.n ? errs.v[0] : "(no message)");
	fuzz_check_errs(&errs);
	state_config_dump(&c2, &after);
	lines_equal(&before, &after);

	strvec_clear(&before);
	strvec_clear(&after);
	errlist_free(&errs);
	state_free(&back);
	config_free(&c2);
	free(text);
}
