/* Unit tests of the line assembly in src/logging.c: worker output arrives
 * in reads of any size and leaves as whole lines, each behind a prefix,
 * long lines cut with a mark, nothing lost, the partial last line flushed
 * at the end; and what log_open_file takes as a log file. */
#include <sys/stat.h>

#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logging.h"
#include "util.h"

#define MAX	LOGLINE_HOLD_MAX
#define MARK	LOGLINE_CUT_MARK
#define MARKLEN	(sizeof(LOGLINE_CUT_MARK) - 1)
#define PFX	"2026-11-24T21:05:00.123Z worker 2 (pid 5678): "
#define PLEN	(sizeof(PFX) - 1)

static struct linebuf lb;
static struct outbuf out;
static uint32_t rng_state;

static void
setup(void)
{
	memset(&lb, 0, sizeof(lb));
	memset(&out, 0, sizeof(out));
	rng_state = 2463534242u;
}

static void
teardown(void)
{
	linebuf_free(&lb);
	outbuf_free(&out);
}

/* A small deterministic generator (xorshift), so failures repeat. */

static uint32_t
rng(void)
{
	uint32_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return rng_state = x;
}

/* n bytes of line content: anything but '\n' (NUL and CR included). */
static void
fill(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = (char)(rng() & 0xff);

		p[i] = ch == '\n' ? '\0' : ch;
	}
}

enum chunking { WHOLE, BYTES, RANDOM };

/* Feed data in pieces; returns the lines appended (flush included when
 * asked). */
static size_t
feed(struct linebuf *l, const char *data, size_t n, enum chunking how,
    const char *prefix, size_t plen, struct outbuf *o, int flush)
{
	size_t lines = 0, off = 0;

	while (off < n) {
		size_t k;

		switch (how) {
		case WHOLE:
			k = n;
			break;
		case BYTES:
			k = 1;
			break;
		default:
			/* mostly small reads, sometimes pipe-sized ones */
			k = rng() % 4 == 0 ? 1 + rng() % 70000 :
			    1 + rng() % 300;
			break;
		}
		if (k > n - off)
			k = n - off;
		/* an exact-size copy: a read past it is caught by ASan */
		{
			char *piece = xmalloc(k);

			memcpy(piece, data + off, k);
			lines += linebuf_feed(l, piece, k, prefix, plen, o);
			free(piece);
		}
		off += k;
	}
	if (flush)
		lines += linebuf_flush(l, prefix, plen, o);
	return lines;
}

static void
expect_out(const struct outbuf *o, const char *want, size_t wlen)
{
	ck_assert_msg(o->len == wlen, "output of %zu bytes, want %zu: \"%.*s\"",
	    o->len, wlen, (int)(o->len < 200 ? o->len : 200),
	    o->p ? o->p : "");
	if (wlen)
		ck_assert_msg(memcmp(o->p, want, wlen) == 0,
		    "output \"%.*s\", want \"%.*s\"", (int)o->len, o->p,
		    (int)wlen, want);
}
#define EXPECT(o, lit)	expect_out(o, lit, sizeof(lit) - 1)

/* What the output of one line of content should be: pieces of MAX bytes
 * each with the cut mark while more than MAX are left, then the rest. */
static size_t
model_line(struct outbuf *o, const char *p, size_t n, const char *prefix,
    size_t plen)
{
	size_t lines = 0;

	while (n > MAX) {
		outbuf_add(o, prefix, plen);
		outbuf_add(o, p, MAX);
		outbuf_add(o, MARK, MARKLEN);
		outbuf_add(o, "\n", 1);
		p += MAX;
		n -= MAX;
		lines++;
	}
	outbuf_add(o, prefix, plen);
	outbuf_add(o, p, n);
	outbuf_add(o, "\n", 1);
	return lines + 1;
}

/* ---- the basics ---- */

START_TEST(one_line)
{
	ck_assert_uint_eq(linebuf_feed(&lb, "hello\n", 6, "P: ", 3, &out), 1);
	EXPECT(&out, "P: hello\n");
	ck_assert_uint_eq(lb.len, 0);
	ck_assert_uint_eq(linebuf_flush(&lb, "P: ", 3, &out), 0);
	EXPECT(&out, "P: hello\n");
}
END_TEST

START_TEST(several_lines_one_read)
{
	static const char in[] = "one\ntwo\n\nfour\nfive";

	ck_assert_uint_eq(linebuf_feed(&lb, in, sizeof(in) - 1, "> ", 2, &out),
	    4);
	EXPECT(&out, "> one\n> two\n> \n> four\n");
	ck_assert_uint_eq(lb.len, 4);
	ck_assert_uint_eq(linebuf_flush(&lb, "> ", 2, &out), 1);
	EXPECT(&out, "> one\n> two\n> \n> four\n> five\n");
	ck_assert_uint_eq(lb.len, 0);
}
END_TEST

START_TEST(crlf_kept)
{
	ck_assert_uint_eq(linebuf_feed(&lb, "dos\r\n\r\nx\r", 9, "P ", 2, &out),
	    2);
	EXPECT(&out, "P dos\r\nP \r\n");
	ck_assert_uint_eq(linebuf_flush(&lb, "P ", 2, &out), 1);
	EXPECT(&out, "P dos\r\nP \r\nP x\r\n");
}
END_TEST

START_TEST(empty_lines)
{
	ck_assert_uint_eq(linebuf_feed(&lb, "\n", 1, "P ", 2, &out), 1);
	EXPECT(&out, "P \n");
	ck_assert_uint_eq(linebuf_feed(&lb, "\n\n\n", 3, "", 0, &out), 3);
	EXPECT(&out, "P \n\n\n\n");
	/* nothing held, nothing to flush; no input, nothing out */
	ck_assert_uint_eq(linebuf_flush(&lb, "P ", 2, &out), 0);
	ck_assert_uint_eq(linebuf_feed(&lb, "x", 0, "P ", 2, &out), 0);
	EXPECT(&out, "P \n\n\n\n");
}
END_TEST

START_TEST(partial_held_until_newline)
{
	ck_assert_uint_eq(linebuf_feed(&lb, "abc", 3, "P ", 2, &out), 0);
	ck_assert_uint_eq(out.len, 0);
	ck_assert_uint_eq(lb.len, 3);
	ck_assert_uint_eq(linebuf_feed(&lb, "def", 3, "P ", 2, &out), 0);
	ck_assert_uint_eq(out.len, 0);
	ck_assert_uint_eq(linebuf_feed(&lb, "g\nhi", 4, "P ", 2, &out), 1);
	EXPECT(&out, "P abcdefg\n");
	ck_assert_uint_eq(lb.len, 2);
	ck_assert_uint_eq(linebuf_feed(&lb, "\n", 1, "P ", 2, &out), 1);
	EXPECT(&out, "P abcdefg\nP hi\n");
}
END_TEST

START_TEST(partial_flushed)
{
	ck_assert_uint_eq(linebuf_feed(&lb, "no newline", 10, "P ", 2, &out),
	    0);
	ck_assert_uint_eq(out.len, 0);
	ck_assert_uint_eq(linebuf_flush(&lb, "P ", 2, &out), 1);
	EXPECT(&out, "P no newline\n");
	ck_assert_uint_eq(lb.len, 0);
	/* once only */
	ck_assert_uint_eq(linebuf_flush(&lb, "P ", 2, &out), 0);
	EXPECT(&out, "P no newline\n");
	/* and the buffer is reusable */
	ck_assert_uint_eq(linebuf_feed(&lb, "again\n", 6, "Q ", 2, &out), 1);
	EXPECT(&out, "P no newline\nQ again\n");
}
END_TEST

START_TEST(nul_bytes_kept)
{
	static const char in[] = "a\0b\0\n\0\n";
	static const char want[] = "P a\0b\0\nP \0\n";

	ck_assert_uint_eq(linebuf_feed(&lb, in, sizeof(in) - 1, "P ", 2, &out),
	    2);
	expect_out(&out, want, sizeof(want) - 1);
	/* a held part with NUL bytes, flushed */
	ck_assert_uint_eq(linebuf_feed(&lb, "\0x\0", 3, "P ", 2, &out), 0);
	ck_assert_uint_eq(linebuf_flush(&lb, "P ", 2, &out), 1);
	ck_assert_uint_eq(out.len, sizeof(want) - 1 + 6);
	ck_assert_int_eq(memcmp(out.p + sizeof(want) - 1, "P \0x\0\n", 6), 0);
}
END_TEST

START_TEST(raw_no_prefix)
{
	static const char in[] = "raw line\r\n\nsecond\n";

	/* plen 0: none of the prefix is used */
	ck_assert_uint_eq(linebuf_feed(&lb, in, sizeof(in) - 1, "IGNORED", 0,
	    &out), 3);
	expect_out(&out, in, sizeof(in) - 1);
	ck_assert_uint_eq(linebuf_feed(&lb, "tail", 4, "IGNORED", 0, &out), 0);
	ck_assert_uint_eq(linebuf_flush(&lb, "IGNORED", 0, &out), 1);
	EXPECT(&out, "raw line\r\n\nsecond\ntail\n");
}
END_TEST

/* Only plen bytes of the prefix are used; each line gets the prefix given
 * with the read that completes it. */
START_TEST(prefix_length)
{
	ck_assert_uint_eq(linebuf_feed(&lb, "a\nb", 3, "PREFIX: ", 3, &out),
	    1);
	ck_assert_uint_eq(linebuf_feed(&lb, "c\n", 2, "NEW: ", 5, &out), 1);
	EXPECT(&out, "PREa\nNEW: bc\n");
	ck_assert_uint_eq(linebuf_feed(&lb, "d\n", 2, PFX, PLEN, &out), 1);
	EXPECT(&out, "PREa\nNEW: bc\n" PFX "d\n");
}
END_TEST

/* ---- long lines ---- */

/* Check that out holds the pieces of one line of content: their sizes,
 * the mark on every piece but the last, and all the bytes in order. */
static void
expect_pieces(const struct outbuf *o, const char *prefix, size_t plen,
    const char *content, size_t n, const size_t *sizes, size_t npieces)
{
	const char *p = o->p, *end = o->p + o->len;
	size_t off = 0;

	for (size_t i = 0; i < npieces; i++) {
		bool last = i + 1 == npieces;

		ck_assert_msg((size_t)(end - p) >= plen + sizes[i] + 1,
		    "piece %zu missing", i);
		ck_assert_int_eq(memcmp(p, prefix, plen), 0);
		p += plen;
		ck_assert_int_eq(memcmp(p, content + off, sizes[i]), 0);
		p += sizes[i];
		off += sizes[i];
		if (!last) {
			ck_assert_msg((size_t)(end - p) >= MARKLEN + 1 &&
			    memcmp(p, MARK, MARKLEN) == 0,
			    "piece %zu not marked as cut", i);
			p += MARKLEN;
		}
		ck_assert_msg(*p == '\n', "piece %zu is longer than %zu bytes",
		    i, sizes[i]);
		p++;
	}
	ck_assert_msg(p == end, "%zu bytes after the last piece",
	    (size_t)(end - p));
	ck_assert_uint_eq(off, n);
}

START_TEST(long_line_cut)
{
	size_t n = 40000;
	char *line = xmalloc(n + 1);
	static const size_t sizes[] = { MAX, MAX, 40000 - 2 * MAX };

	fill(line, n);
	line[n] = '\n';
	ck_assert_uint_eq(linebuf_feed(&lb, line, n + 1, PFX, PLEN, &out), 3);
	ck_assert_uint_eq(out.len, 3 * (PLEN + 1) + 2 * MARKLEN + n);
	expect_pieces(&out, PFX, PLEN, line, n, sizes, 3);
	ck_assert_uint_eq(lb.len, 0);
	ck_assert_uint_eq(linebuf_flush(&lb, PFX, PLEN, &out), 0);
	free(line);
}
END_TEST

START_TEST(long_line_bytewise)
{
	size_t n = 40000, lines;
	char *line = xmalloc(n + 1);
	static const size_t sizes[] = { MAX, MAX, 40000 - 2 * MAX };

	fill(line, n);
	line[n] = '\n';
	lines = feed(&lb, line, n + 1, BYTES, "P ", 2, &out, 1);
	ck_assert_uint_eq(lines, 3);
	expect_pieces(&out, "P ", 2, line, n, sizes, 3);
	free(line);
}
END_TEST

/* Without a newline: cut while it comes, the rest flushed at the end. */
START_TEST(long_partial_line)
{
	size_t n = MAX + 3000;
	char *line = xmalloc(n);
	static const size_t sizes[] = { MAX, 3000 };

	fill(line, n);
	ck_assert_uint_eq(linebuf_feed(&lb, line, n, "P ", 2, &out), 1);
	ck_assert_uint_eq(lb.len, 3000);
	ck_assert_uint_eq(linebuf_flush(&lb, "P ", 2, &out), 1);
	expect_pieces(&out, "P ", 2, line, n, sizes, 2);
	free(line);
}
END_TEST

/* Lines just under and just over the limit. */
START_TEST(limit_boundaries)
{
	static const struct {
		size_t	n;
		size_t	npieces;
		size_t	sizes[3];
	} cases[] = {
		{ MAX - 1, 1, { MAX - 1 } },
		{ MAX + 1, 2, { MAX, 1 } },
		{ 2 * MAX - 1, 2, { MAX, MAX - 1 } },
		{ 2 * MAX + 1, 3, { MAX, MAX, 1 } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int how = WHOLE; how <= RANDOM; how++) {
			size_t n = cases[i].n, lines;
			char *line = xmalloc(n + 1);

			fill(line, n);
			line[n] = '\n';
			lines = feed(&lb, line, n + 1, how, "P ", 2, &out, 1);
			ck_assert_msg(lines == cases[i].npieces,
			    "a line of %zu bytes (feeding %d): %zu lines", n,
			    how, lines);
			expect_pieces(&out, "P ", 2, line, n, cases[i].sizes,
			    cases[i].npieces);
			out.len = 0;
			free(line);
		}
	}
}
END_TEST

/* A line of exactly LOGLINE_HOLD_MAX bytes is not longer than the limit:
 * it goes out whole, and one of twice the limit in two pieces, never with
 * an empty piece after the last cut. */
START_TEST(limit_exact)
{
	static const struct {
		size_t	n;
		size_t	npieces;
		size_t	sizes[2];
	} cases[] = {
		{ MAX, 1, { MAX } },
		{ 2 * MAX, 2, { MAX, MAX } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int how = WHOLE; how <= RANDOM; how++) {
			size_t n = cases[i].n, lines;
			char *line = xmalloc(n + 1);

			fill(line, n);
			line[n] = '\n';
			lines = feed(&lb, line, n + 1, how, "P ", 2, &out, 1);
			ck_assert_msg(lines == cases[i].npieces,
			    "a line of %zu bytes (feeding %d): %zu lines, "
			    "want %zu", n, how, lines, cases[i].npieces);
			expect_pieces(&out, "P ", 2, line, n, cases[i].sizes,
			    cases[i].npieces);
			out.len = 0;
			free(line);
		}
	}
}
END_TEST

/* ---- any chunking gives the same output ---- */

/* A corpus: short lines, empty ones, CRLF, NUL bytes, lines around and
 * far over the limit, and a last line without a newline. */
static char *
corpus(size_t *len, bool exact_multiples)
{
	struct outbuf o = { 0 };
	static const char head[] = "first\nsecond\r\n\n\na\0b\n";

	outbuf_add(&o, head, sizeof(head) - 1);
	for (int i = 0; i < 120; i++) {
		size_t n;
		char *p;

		switch (rng() % 8) {
		case 0:
			n = MAX - 3 + rng() % 7;	/* around the limit */
			break;
		case 1:
			n = MAX + rng() % (3 * MAX);	/* far over */
			break;
		case 2:
			n = 0;
			break;
		default:
			n = rng() % 200;
			break;
		}
		if (!exact_multiples && n > 0 && n % MAX == 0)
			n++;
		if (exact_multiples && i % 40 == 0)
			n = (size_t)(1 + i / 40) * MAX;
		p = xmalloc(n + 1);
		fill(p, n);
		p[n] = '\n';
		outbuf_add(&o, p, n + 1);
		free(p);
	}
	outbuf_add(&o, "the end, no newline", 19);
	*len = o.len;
	return o.p;
}

START_TEST(chunking_same_output)
{
	struct outbuf whole = { 0 }, bytes = { 0 }, rnd = { 0 };
	struct linebuf lb2 = { 0 }, lb3 = { 0 };
	size_t len, nw, nb, nr;
	char *in;

	rng_state = 0x9e3779b9u + (uint32_t)_i;
	in = corpus(&len, true);
	nw = feed(&lb, in, len, WHOLE, PFX, PLEN, &whole, 1);
	nb = feed(&lb2, in, len, BYTES, PFX, PLEN, &bytes, 1);
	nr = feed(&lb3, in, len, RANDOM, PFX, PLEN, &rnd, 1);
	ck_assert_uint_eq(nw, nb);
	ck_assert_uint_eq(nw, nr);
	ck_assert_uint_eq(whole.len, bytes.len);
	ck_assert_uint_eq(whole.len, rnd.len);
	ck_assert(memcmp(whole.p, bytes.p, whole.len) == 0);
	ck_assert(memcmp(whole.p, rnd.p, whole.len) == 0);
	/* every line ends with a newline and has the prefix */
	ck_assert_int_eq(whole.p[whole.len - 1], '\n');
	ck_assert_int_eq(memcmp(whole.p, PFX, PLEN), 0);
	free(in);
	outbuf_free(&whole);
	outbuf_free(&bytes);
	outbuf_free(&rnd);
	linebuf_free(&lb2);
	linebuf_free(&lb3);
}
END_TEST

/* Against a model of the rule: every byte is there, in order, every cut
 * marked, every line counted. */
START_TEST(model_same_output)
{
	struct outbuf want = { 0 };
	size_t len, lines, wlines = 0;
	const char *p, *end, *nl;
	char *in;

	rng_state = 0x2545f491u + (uint32_t)_i;
	in = corpus(&len, false);
	for (p = in, end = in + len; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		wlines += model_line(&want, p, (size_t)(nl - p), PFX, PLEN);
	}
	lines = feed(&lb, in, len, RANDOM, PFX, PLEN, &out, 1);
	ck_assert_uint_eq(lines, wlines);
	ck_assert_uint_eq(out.len, want.len);
	ck_assert(memcmp(out.p, want.p, want.len) == 0);
	free(in);
	outbuf_free(&want);
}
END_TEST

/* ---- outbuf ---- */

START_TEST(outbuf_grows)
{
	struct outbuf o = { 0 };
	char chunk[1000];
	size_t total = 0;

	outbuf_add(&o, "", 0);
	ck_assert_uint_eq(o.len, 0);
	for (int i = 0; i < 300; i++) {
		size_t n = (size_t)(i * 7) % sizeof(chunk) + 1;

		memset(chunk, 'a' + i % 26, n);
		outbuf_add(&o, chunk, n);
		total += n;
		ck_assert_uint_eq(o.len, total);
		ck_assert_uint_ge(o.cap, o.len);
		ck_assert_int_eq(o.p[total - 1], 'a' + i % 26);
		ck_assert_int_eq(o.p[total - n], 'a' + i % 26);
	}
	/* one big add past the doubling */
	{
		size_t big = o.cap * 3 + 5;
		char *b = xmalloc(big);

		memset(b, 'Z', big);
		outbuf_add(&o, b, big);
		ck_assert_uint_eq(o.len, total + big);
		ck_assert_int_eq(o.p[o.len - 1], 'Z');
		ck_assert_int_eq(o.p[total], 'Z');
		free(b);
	}
	outbuf_free(&o);
	ck_assert_ptr_null(o.p);
	ck_assert_uint_eq(o.len, 0);
	ck_assert_uint_eq(o.cap, 0);
	/* usable again */
	outbuf_add(&o, "x", 1);
	ck_assert_uint_eq(o.len, 1);
	outbuf_free(&o);
}
END_TEST

/* The caller empties it by len = 0 and reuses the memory. */
START_TEST(outbuf_reuse)
{
	ck_assert_uint_eq(linebuf_feed(&lb, "a\n", 2, "P ", 2, &out), 1);
	out.len = 0;
	ck_assert_uint_eq(linebuf_feed(&lb, "b\n", 2, "P ", 2, &out), 1);
	EXPECT(&out, "P b\n");
}
END_TEST

START_TEST(linebuf_free_twice)
{
	struct linebuf l = { 0 };

	linebuf_free(&l);
	ck_assert_uint_eq(linebuf_feed(&l, "held", 4, "", 0, &out), 0);
	linebuf_free(&l);
	ck_assert_ptr_null(l.p);
	ck_assert_uint_eq(l.len, 0);
	linebuf_free(&l);
	/* nothing is left after a free */
	ck_assert_uint_eq(linebuf_flush(&l, "", 0, &out), 0);
	ck_assert_uint_eq(out.len, 0);
}
END_TEST

/* ---- log files ---- */

static char ldir[64];

static void
files_setup(void)
{
	strcpy(ldir, "/tmp/fugue-check-log-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(ldir));
}

static void
files_teardown(void)
{
	char *cmd = xprintf("rm -rf '%s'", ldir);

	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

START_TEST(log_file_created_blocking)
{
	char *path = xprintf("%s/app.log", ldir), err[256];
	mode_t mask = umask(022);
	struct stat st;
	int fd = -1;

	ck_assert_int_eq(log_open_file(path, &fd, err, sizeof(err)), 0);
	umask(mask);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & (O_NONBLOCK | O_APPEND),
	    O_APPEND);
	ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	close(fd);
	free(path);
}
END_TEST

START_TEST(log_file_fifo_refused_at_once)
{
	char *fifo = xprintf("%s/fifo", ldir), err[256], want[512];
	int fd = -1, rd;

	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	snprintf(want, sizeof(want), "log file %s: a FIFO (named pipe); a log "
	    "file must be a regular file or a character device", fifo);
	/* Nobody reads it: open() would have waited. */
	ck_assert_int_eq(log_open_file(fifo, &fd, err, sizeof(err)), 73);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(fd, -1);
	/* Someone reads it: still no log file. */
	rd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(rd, 0);
	ck_assert_int_eq(log_open_file(fifo, &fd, err, sizeof(err)), 73);
	ck_assert_str_eq(err, want);
	close(rd);
	free(fifo);
}
END_TEST

START_TEST(log_file_reopen_keeps_the_old_on_error)
{
	char *path = xprintf("%s/app.log", ldir), err[256];
	struct stat before, after;
	int fd = -1, num;

	ck_assert_int_eq(log_open_file(path, &fd, err, sizeof(err)), 0);
	num = fd;
	ck_assert_int_eq(fstat(fd, &before), 0);
	/* Replaced by a directory: refused, the fd stays the old file. */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(log_open_file(path, &fd, err, sizeof(err)), 73);
	ck_assert_ptr_nonnull(strstr(err, ": a directory; "));
	ck_assert_int_eq(fd, num);
	ck_assert_int_eq(fstat(fd, &after), 0);
	ck_assert_uint_eq(after.st_ino, before.st_ino);
	/* A file again: reopened in place, same number. */
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(log_open_file(path, &fd, err, sizeof(err)), 0);
	ck_assert_int_eq(fd, num);
	ck_assert_int_eq(fstat(fd, &after), 0);
	ck_assert_uint_ne(after.st_ino, before.st_ino);
	close(fd);
	free(path);
}
END_TEST

START_TEST(log_file_character_device)
{
	char err[256];
	int fd = -1;

	ck_assert_int_eq(log_open_file("/dev/null", &fd, err, sizeof(err)), 0);
	/* Not a file: left non-blocking (a stopped terminal never blocks). */
	ck_assert_int_ne(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
	ck_assert_str_eq(log_file_unfit(S_IFSOCK), "a socket");
	ck_assert_ptr_null(log_file_unfit(S_IFREG));
}
END_TEST

static Suite *
logging_suite(void)
{
	Suite *s = suite_create("logging");
	TCase *tc;

	tc = tcase_create("lines");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, one_line);
	tcase_add_test(tc, several_lines_one_read);
	tcase_add_test(tc, crlf_kept);
	tcase_add_test(tc, empty_lines);
	tcase_add_test(tc, partial_held_until_newline);
	tcase_add_test(tc, partial_flushed);
	tcase_add_test(tc, nul_bytes_kept);
	tcase_add_test(tc, raw_no_prefix);
	tcase_add_test(tc, prefix_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("long");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, long_line_cut);
	tcase_add_test(tc, long_line_bytewise);
	tcase_add_test(tc, long_partial_line);
	tcase_add_test(tc, limit_boundaries);
	tcase_add_test(tc, limit_exact);
	suite_add_tcase(s, tc);

	tc = tcase_create("chunking");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, chunking_same_output, 0, 3);
	tcase_add_loop_test(tc, model_same_output, 0, 5);
	suite_add_tcase(s, tc);

	tc = tcase_create("outbuf");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, outbuf_grows);
	tcase_add_test(tc, outbuf_reuse);
	tcase_add_test(tc, linebuf_free_twice);
	suite_add_tcase(s, tc);

	tc = tcase_create("log files");
	tcase_add_checked_fixture(tc, files_setup, files_teardown);
	tcase_add_test(tc, log_file_created_blocking);
	tcase_add_test(tc, log_file_fifo_refused_at_once);
	tcase_add_test(tc, log_file_reopen_keeps_the_old_on_error);
	tcase_add_test(tc, log_file_character_device);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(logging_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
