/*
 * The state an upgrade hands to the new image: state_parse() on any bytes
 * (it trusts nothing), then, for a state it accepts, the same checks the
 * new image relies on: state_format() of it parses again to the same text,
 * and its configuration lines load with state_config_load() or are refused
 * with one-line errors, never a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "upgrade.h"
#include "workers.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_state(const struct state *s)
{
	FUZZ_CHECK(s->version >= 1 && s->version <= STATE_VERSION,
	    "version %u", s->version);
	for (size_t i = 0; i < s->nws; i++) {
		const struct state_worker *w = &s->ws[i];

		FUZZ_CHECK(w->state >= W_STARTING && w->state <= W_BACKOFF,
		    "worker %zu state %d", i, w->state);
		FUZZ_CHECK(w->pid >= 0, "worker %zu pid %ld", i, (long)w->pid);
		FUZZ_CHECK((w->state == W_BACKOFF) == (w->pid == 0),
		    "worker %zu: state %d with pid %ld", i, w->state,
		    (long)w->pid);
	}
	for (size_t i = 0; i < s->nls; i++)
		FUZZ_CHECK(s->ls[i].fd >= 0 && memchr(s->ls[i].addr, '\0',
		    sizeof(s->ls[i].addr)) != NULL && s->ls[i].addr[0] != '\0',
		    "listener %zu", i);
	for (size_t i = 0; i < s->cfg.n; i++)
		FUZZ_CHECK(s->cfg.v[i] != NULL, "cfg line %zu", i);
	FUZZ_CHECK(s->metrics_fd >= -1, "metrics fd %d", s->metrics_fd);
	for (size_t i = 0; i < s->nmclients; i++)
		FUZZ_CHECK(s->mclients[i].fd >= 0 && s->mclients[i].in != NULL &&
		    strlen(s->mclients[i].in) <= STATE_MCLIENT_MAX,
		    "metrics client %zu", i);
	for (size_t i = 0; i < s->ncounts; i++)
		FUZZ_CHECK(s->counts[i].name[0] != '\0' &&
		    memchr(s->counts[i].name, '\0', sizeof(s->counts[i].name)) &&
		    strspn(s->counts[i].name, "abcdefghijklmnopqrstuvwxyz"
		    "0123456789_.") == strlen(s->counts[i].name),
		    "count %zu", i);
	FUZZ_CHECK(!s->last.set || (s->last.reason != NULL &&
	    s->last.kind[0] && s->last.result[0] && s->last.time_ms >= 0),
	    "last reload");
	FUZZ_CHECK(s->cfg.n == 0 || s->cfg.v[s->cfg.n] == NULL,
	    "cfg not NULL-terminated");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state s, s2;
	struct errlist errs = { NULL, 0 };
	struct config c;
	char err[256], *copy, *t1, *t2;
	size_t l1, l2;
	int r;

	if (size > 256 * 1024)
		return -1;
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	memset(err, 'X', sizeof(err));
	r = state_parse(copy, size, &s, err, sizeof(err));
	free(copy);
	if (r == -1) {
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0],
		    "refused without a reason");
		FUZZ_CHECK(s.ls == NULL && s.ws == NULL && s.ps == NULL &&
		    s.waiters == NULL && s.cfg.n == 0 && s.notify_path == NULL &&
		    s.counts == NULL && s.last.reason == NULL &&
		    s.mclients == NULL,
		    "a refused state keeps allocations");
		return 0;
	}
	FUZZ_CHECK(r == 0, "state_parse returned %d", r);
	check_state(&s);

	/* What the running image writes, the new one reads back the same. */
	t1 = state_format(&s, &l1);
	r = state_parse(t1, l1, &s2, err, sizeof(err));
	FUZZ_CHECK(r == 0, "formatted state refused: %s\n%.*s", err, (int)l1,
	    t1);
	t2 = state_format(&s2, &l2);
	FUZZ_CHECK(l1 == l2 && memcmp(t1, t2, l1) == 0,
	    "state changes across format and parse:\n%.*s---\n%.*s", (int)l1,
	    t1, (int)l2, t2);
	free(t1);
	free(t2);
	state_free(&s2);

	/* The running configuration it carries. */
	config_init(&c);
	r = state_config_load(&s.cfg, &c, &errs);
	FUZZ_CHECK(r == 0 || r == EX_CONFIG_, "state_config_load returned %d",
	    r);
	FUZZ_CHECK((r == 0) == (errs.n == 0), "returned %d with %zu errors",
	    r, errs.n);
	fuzz_check_errs(&errs);
	if (r == 0)
		fuzz_config_roundtrip(&c);
	errlist_free(&errs);
	config_free(&c);
	state_free(&s);
	return 0;
}
