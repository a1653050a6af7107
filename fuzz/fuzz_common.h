/* Shared by fugue's libFuzzer targets: a reusable in-memory file, checks
 * that abort with a message, and the config round trip through the state
 * text that an upgrade carries. */
#ifndef FUGUE_FUZZ_COMMON_H
#define FUGUE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

/* A memfd holding data, as a path that fopen() can read
 * ("/proc/self/fd/N"); the same file is reused for every input. */
const char	*fuzz_file(const uint8_t *data, size_t size);

/* data as a NUL-terminated string (cut at the first NUL); malloc'd. */
char		*fuzz_str(const uint8_t *data, size_t size);

/* abort() with the message when cond is false: libFuzzer keeps the input. */
#define FUZZ_CHECK(cond, ...) \
	do { if (!(cond)) fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)
void		 fuzz_fail(const char *file, int line, const char *cond,
		    const char *fmt, ...)
		    __attribute__((noreturn, format(printf, 4, 5)));

/* Every message is one line: no newline, no control character. */
void		 fuzz_check_errs(const struct errlist *errs);

/* A valid configuration carried across an upgrade comes back the same:
 * state_config_dump, state_format, state_parse, state_config_load, dump
 * again, and compare. */
void		 fuzz_config_roundtrip(const struct config *c);

#endif
