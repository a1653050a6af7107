/*
 * Control socket lines: control_parse() on any bytes (NULs included, no
 * terminator). Only the documented commands are accepted; a scale count
 * is within 0..10000; the parser does not depend on what follows the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "fuzz_common.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const words[] = { "status", "status json",
	    "reload", "upgrade", "stop", "quit", "reopen" };
	unsigned count = 12345678;
	enum ctl_verb v;
	char *line;

	if (size > 4 * CTL_LINE_MAX)
		return -1;
	line = malloc(size ? size : 1);
	memcpy(line, data, size);
	v = control_parse(line, size, &count);
	FUZZ_CHECK(v >= CTL_BAD && v <= CTL_SCALE, "verb %d", (int)v);
	if (size >= CTL_LINE_MAX || memchr(line, '\0', size) != NULL)
		FUZZ_CHECK(v == CTL_BAD, "a %zu-byte line (or one with a NUL) "
		    "accepted as verb %d", size, (int)v);
	if (v == CTL_SCALE) {
		FUZZ_CHECK(count <= 10000, "scale %u", count);
		FUZZ_CHECK(size >= 7 && memcmp(line, "scale ", 6) == 0,
		    "scale from a line not starting with \"scale \"");
	} else {
		FUZZ_CHECK(count == 12345678, "count set for verb %d", (int)v);
	}
	if (v != CTL_BAD && v != CTL_SCALE) {
		/* exactly a word, with an optional '\r' */
		const char *w = words[v - CTL_STATUS];
		size_t wl = strlen(w);

		FUZZ_CHECK((size == wl || (size == wl + 1 &&
		    line[wl] == '\r')) && memcmp(line, w, wl) == 0,
		    "verb %d from a line that is not \"%s\"", (int)v, w);
	}
	free(line);
	return 0;
}
