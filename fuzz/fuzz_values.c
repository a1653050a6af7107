/*
 * The value parsers of config keys and long options, and config_set()
 * itself (the command line reaches it with any bytes). The first byte
 * picks the function, the rest is its argument:
 *   0 parse_duration   format_duration of the result parses back to it
 *   1 parse_signal     1..64; signal_name() of it parses back to it
 *   2 parse_mode       0..07777; its octal form parses back to it
 *   3 split_command    words; quoting them again splits to the same words
 *   4 path_absolute    absolute, no "//", no "/./", no trailing '/'
 *   5 parse_uint, parse_bool
 *   6+ config_set      lines "section<TAB>key<TAB>value" (or "key<TAB>value"
 *                      as a long option: section found from the key), then
 *                      config_validate and the upgrade round trip
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "fuzz_common.h"

#define YEAR_MS		(365LL * 24 * 3600 * 1000)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_duration(const char *s)
{
	char buf[64];
	int64_t ms = -7, back = -7;

	if (parse_duration(s, &ms) == -1) {
		FUZZ_CHECK(ms == -7, "changed on failure");
		return;
	}
	FUZZ_CHECK(ms >= 0 && ms <= YEAR_MS, "\"%s\" -> %lld ms", s,
	    (long long)ms);
	format_duration(ms, buf, sizeof(buf));
	FUZZ_CHECK(parse_duration(buf, &back) == 0 && back == ms,
	    "\"%s\" -> %lld ms -> \"%s\" -> %lld", s, (long long)ms, buf,
	    (long long)back);
}

static void
fuzz_signal(const char *s)
{
	int sig = -7, back = -7;
	const char *name;

	if (parse_signal(s, &sig) == -1) {
		FUZZ_CHECK(sig == -7, "changed on failure");
		return;
	}
	FUZZ_CHECK(sig >= 1 && sig <= 64, "\"%s\" -> %d", s, sig);
	name = signal_name(sig);
	FUZZ_CHECK(parse_signal(name, &back) == 0 && back == sig,
	    "\"%s\" -> %d -> \"%s\" -> %d", s, sig, name, back);
}

static void
fuzz_mode(const char *s)
{
	char buf[16];
	int mode = -7, back = -7;

	if (parse_mode(s, &mode) == -1) {
		FUZZ_CHECK(mode == -7, "changed on failure");
		return;
	}
	FUZZ_CHECK(mode >= 0 && mode <= 07777, "\"%s\" -> %o", s, mode);
	snprintf(buf, sizeof(buf), "%04o", mode);
	FUZZ_CHECK(parse_mode(buf, &back) == 0 && back == mode, "mode %o", mode);
}

static void
fuzz_split(const char *s)
{
	struct strvec a = { NULL, 0 }, b = { NULL, 0 };
	char err[128], *joined;

	memset(err, 'X', sizeof(err));
	if (split_command(s, &a, err, sizeof(err)) == -1) {
		FUZZ_CHECK(a.n == 0, "words appended on failure");
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0],
		    "no reason");
		return;
	}
	FUZZ_CHECK(a.n >= 1 && a.v[a.n] == NULL, "%zu words", a.n);
	/* What fugue logs as the command reads back as the same words. */
	joined = args_join_command(a.v, (int)a.n);
	FUZZ_CHECK(split_command(joined, &b, err, sizeof(err)) == 0,
	    "requoted \"%s\" refused: %s", joined, err);
	FUZZ_CHECK(a.n == b.n, "%zu words, %zu after requoting", a.n, b.n);
	for (size_t i = 0; i < a.n; i++)
		FUZZ_CHECK(strcmp(a.v[i], b.v[i]) == 0, "word %zu: \"%s\" vs "
		    "\"%s\"", i, a.v[i], b.v[i]);
	free(joined);
	strvec_clear(&a);
	strvec_clear(&b);
}

static void
fuzz_path(const char *s)
{
	char err[128], *p;
	size_t n;

	if ((p = path_absolute(s, err, sizeof(err))) == NULL)
		return;
	n = strlen(p);
	FUZZ_CHECK(p[0] == '/', "\"%s\" -> \"%s\"", s, p);
	FUZZ_CHECK(strstr(p, "//") == NULL, "\"%s\" -> \"%s\"", s, p);
	FUZZ_CHECK(strstr(p, "/./") == NULL && (n < 2 ||
	    strcmp(p + n - 2, "/.") != 0), "\"%s\" -> \"%s\"", s, p);
	FUZZ_CHECK(n == 1 || p[n - 1] != '/', "\"%s\" -> \"%s\"", s, p);
	free(p);
}

static void
fuzz_numbers(const char *s)
{
	unsigned long v = 7;
	bool b;

	if (parse_uint(s, 3, 10000, &v) == 0)
		FUZZ_CHECK(v >= 3 && v <= 10000, "%lu", v);
	else
		FUZZ_CHECK(v == 7, "changed on failure");
	(void)parse_bool(s, &b);
}

static void
fuzz_set(char *s)
{
	struct errlist errs = { NULL, 0 };
	struct config c;
	char *line, *next, *t1, *t2, where[32];
	int r, lineno = 0, bad = 0;
	size_t n;

	config_init(&c);
	for (line = s; line != NULL && lineno < 64; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		snprintf(where, sizeof(where), "--line-%d", ++lineno);
		n = errs.n;
		if ((t1 = strchr(line, '\t')) == NULL)
			continue;
		*t1++ = '\0';
		if ((t2 = strchr(t1, '\t')) != NULL) {
			*t2++ = '\0';
			r = config_set(&c, line, t1, t2, where, &errs);
		} else
			r = config_set(&c, NULL, line, t1, where, &errs);
		FUZZ_CHECK(r == 0 || r == EX_CONFIG_, "config_set returned %d",
		    r);
		FUZZ_CHECK((r == 0) == (errs.n == n), "returned %d with %zu "
		    "new errors", r, errs.n - n);
		bad |= r != 0;
	}
	fuzz_check_errs(&errs);
	n = errs.n;
	r = config_validate(&c, false, &errs);
	FUZZ_CHECK((r == 0) == (errs.n == n), "validate returned %d", r);
	fuzz_check_errs(&errs);
	if (r == 0 && !bad)
		fuzz_config_roundtrip(&c);
	errlist_free(&errs);
	config_free(&c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1 || size > 8192)
		return -1;
	s = fuzz_str(data + 1, size - 1);
	switch (data[0] % 8) {
	case 0:
		fuzz_duration(s);
		break;
	case 1:
		fuzz_signal(s);
		break;
	case 2:
		fuzz_mode(s);
		break;
	case 3:
		fuzz_split(s);
		break;
	case 4:
		fuzz_path(s);
		break;
	case 5:
		fuzz_numbers(s);
		break;
	default:
		fuzz_set(s);
		break;
	}
	free(s);
	return 0;
}
