/*
 * The log handover of an upgrade: logsink_import_buf() on any bytes (it
 * trusts nothing). What it takes is whole lines (the last ends with a
 * newline), the rest of a line only with bytes for it, and nothing of what
 * it refuses; exported again (logsink_export), it reads back the same.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "logsink.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static size_t
waiting(const struct logsink *s)
{
	return s->pend.len - s->pend_off;
}

static bool
same_bytes(const struct logsink *a, const struct logsink *b)
{
	return waiting(a) == waiting(b) && (waiting(a) == 0 ||
	    memcmp(a->pend.p + a->pend_off, b->pend.p + b->pend_off,
	    waiting(a)) == 0);
}

/* Exported and imported again into back: the same sink. */
static void
roundtrip(struct logsink *s)
{
	struct logsink back;
	int fd = -2;

	FUZZ_CHECK(logsink_export(s, &fd) == 0, "export failed");
	logsink_init(&back, NULL);
	if (fd == -1) {
		FUZZ_CHECK(waiting(s) == 0 && s->dropped == 0, "nothing "
		    "exported of %zu bytes, %lu dropped", waiting(s),
		    s->dropped);
		return;
	}
	FUZZ_CHECK(logsink_import(&back, fd) == 0, "its own export refused");
	FUZZ_CHECK(same_bytes(&back, s), "the bytes changed across export "
	    "and import");
	FUZZ_CHECK(back.dropped == s->dropped && back.drop_errno ==
	    s->drop_errno && back.frag == s->frag && back.dev == s->dev &&
	    back.ino == s->ino, "the counters changed across export and "
	    "import");
	outbuf_free(&back.pend);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logsink s;
	size_t n;
	int r;

	if (size > 1024 * 1024)
		return -1;
	logsink_init(&s, NULL);
	r = logsink_import_buf(&s, (const char *)data, size);
	if (r == -1) {
		FUZZ_CHECK(waiting(&s) == 0 && s.dropped == 0 && s.frag == 0,
		    "a refused handover was taken in part");
		return 0;
	}
	FUZZ_CHECK(r == 0, "logsink_import_buf returned %d", r);
	n = waiting(&s);
	FUZZ_CHECK(n == 0 || s.pend.p[s.pend.len - 1] == '\n',
	    "the last line has no end");
	FUZZ_CHECK(s.frag == 0 || n > 0, "the rest of a line, but no bytes");
	FUZZ_CHECK(s.dropped == 0 || s.drop_errno != 0, "dropped, no reason");
	roundtrip(&s);
	outbuf_free(&s.pend);
	return 0;
}
