/*
 * The configuration file: config_load() on any bytes, through a file
 * (inih reads it with our own line reader). It returns 0 with no error or
 * 78 with at least one, every error one line; a file it accepts and that
 * config_validate() accepts survives the trip across an upgrade unchanged.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errlist errs = { NULL, 0 };
	struct config c;
	size_t n;
	int r;

	if (size > 64 * 1024)
		return -1;	/* not worth it: lines past 199 bytes are cut */
	config_init(&c);
	r = config_load(&c, fuzz_file(data, size), &errs);
	FUZZ_CHECK(r == 0 || r == EX_CONFIG_, "config_load returned %d", r);
	FUZZ_CHECK((r == 0) == (errs.n == 0), "config_load returned %d with "
	    "%zu errors", r, errs.n);
	fuzz_check_errs(&errs);
	if (r == 0) {
		n = errs.n;
		r = config_validate(&c, false, &errs);
		FUZZ_CHECK((r == 0) == (errs.n == n), "config_validate returned "
		    "%d with %zu new errors", r, errs.n - n);
		fuzz_check_errs(&errs);
		if (r == 0)
			fuzz_config_roundtrip(&c);
	}
	errlist_free(&errs);
	config_free(&c);
	return 0;
}
