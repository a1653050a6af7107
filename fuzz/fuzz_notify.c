/*
 * sd_notify datagrams from workers: notify_parse() on any bytes (NULs
 * included, no terminator: a datagram is a length). STATUS= comes out
 * terminated, cut and printable; a datagram with no assignment is not a
 * notification and sets nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "notify.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Whether one whole line of buf is exactly what. */
static int
has_line(const char *buf, size_t len, const char *what)
{
	size_t w = strlen(what);

	for (size_t i = 0; i + w <= len; i++)
		if ((i == 0 || buf[i - 1] == '\n') &&
		    memcmp(buf + i, what, w) == 0 &&
		    (i + w == len || buf[i + w] == '\n'))
			return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct notify_msg msg;
	const char *buf;
	char *copy;
	int r;

	if (size > NOTIFY_DATAGRAM_MAX)
		return -1;
	/* an exact-size copy: ASan sees any read past the datagram */
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	buf = copy;
	memset(&msg, 0xA5, sizeof(msg));
	r = notify_parse(buf, size, &msg);
	FUZZ_CHECK(r == 0 || r == -1, "returned %d", r);
	FUZZ_CHECK(msg.pid == 0, "pid %ld set by the parser", (long)msg.pid);
	FUZZ_CHECK(memchr(msg.status, '\0', sizeof(msg.status)) != NULL,
	    "STATUS not terminated");
	for (const char *p = msg.status; *p; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20, "control byte 0x%02x in "
		    "STATUS", (unsigned char)*p);
	if (r == -1)
		FUZZ_CHECK(!msg.ready && !msg.watchdog && !msg.stopping &&
		    !msg.reloading && msg.status[0] == '\0',
		    "a non-message set fields");
	FUZZ_CHECK(msg.ready == has_line(buf, size, "READY=1"),
	    "READY=1 %s", msg.ready ? "seen where there is none" : "missed");
	FUZZ_CHECK(msg.watchdog == has_line(buf, size, "WATCHDOG=1"),
	    "WATCHDOG=1 %s", msg.watchdog ? "invented" : "missed");
	free(copy);
	return 0;
}
