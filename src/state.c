/*
 * The state handed across an upgrade's re-exec, as text: one record a line,
 * fields separated by single spaces, free text percent-encoded. The reader
 * trusts nothing: a version it does not know, a truncated or corrupt state
 * is an error, never a crash.
 *
 *   fugue-state 1
 *   master CUR_GEN LAST_GEN TARGET PID_FD NOTIFY_FD NOTIFY_PATH
 *   listener FD DEV INO GONE ADDRESS
 *   worker PID SLOT GEN STATE EXEC_OK FAILED EXECFD OUTFD RESTARTS
 *          BACKOFF_MS LAST_STATUS AGE_MS READY_AGE_MS TIMER_MS
 *   pipe FD SLOT PID
 *   nofile SOFT_LIMIT
 *   control FD OP_SEQ OP_CURRENT QUEUED
 *   waiter FD AFTER
 *   cfg SECTION KEY VALUE
 *   notifydir PATH                      (version 2)
 *   notify GEN FD PATH                  (version 2)
 *   sink FD                             (version 2)
 *   ready PID FD      after PID's worker record (version 2)
 *   metrics FD DEV INO                  (version 2)
 *   mclient FD REQUEST_SO_FAR           (version 2)
 *   count NAME VALUE                    (version 2)
 *   lastreload KIND RESULT TIME_MS FROM_GEN TO_GEN REASON   (version 2)
 *   end
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logging.h"
#include "upgrade.h"
#include "workers.h"

#define STATE_MAX_RECORDS	1000000
#define FD_LIMIT		(1 << 24)

static void
put_encoded(struct outbuf *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3] = { '%', 0, 0 };

	if (*s == '\0') {
		outbuf_add(o, "%", 1);	/* the empty string */
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c == 0x7f || c == '%') {
			e[1] = hex[c >> 4];
			e[2] = hex[c & 15];
			outbuf_add(o, e, 3);
		} else
			outbuf_add(o, (const char *)&c, 1);
	}
}


char *
state_format(const struct state *s, size_t *len)
{
	struct outbuf o = { 0 };
	size_t i;

	outbuf_printf(&o, "fugue-state %u\n", STATE_VERSION);
	outbuf_printf(&o, "master %u %u %u %d %d ", s->cur_gen, s->last_gen, s->target,
	    s->pid_fd, s->notify_fd);
	put_encoded(&o, s->notify_path ? s->notify_path : "");
	outbuf_add(&o, "\n", 1);
	for (i = 0; i < s->nls; i++) {
		const struct state_listener *l = &s->ls[i];

		outbuf_printf(&o, "listener %d %llu %llu %d ", l->fd,
		    (unsigned long long)l->dev, (unsigned long long)l->ino,
		    l->gone);
		put_encoded(&o, l->addr);
		outbuf_add(&o, "\n", 1);
	}
	for (i = 0; i < s->nws; i++) {
		const struct state_worker *w = &s->ws[i];

		outbuf_printf(&o, "worker %ld %u %u %d %d %d %d %d %u %u %d %lld %lld "
		    "%lld\n", (long)w->pid, w->slot, w->gen, w->state,
		    w->exec_ok, w->failed_start, w->execfd, w->outfd,
		    w->restarts, w->backoff_ms, w->last_status,
		    (long long)w->age_ms, (long long)w->ready_age_ms,
		    (long long)w->timer_ms);
	}
	for (i = 0; i < s->nws; i++)
		if (s->ws[i].readyfd >= 0)
			outbuf_printf(&o, "ready %ld %d\n", (long)s->ws[i].pid,
			    s->ws[i].readyfd);
	outbuf_printf(&o, "nofile %lld\n", s->nofile);
	outbuf_printf(&o, "control %d %u %u %d\n", s->ctl_fd, s->op_seq, s->op_current,
	    s->queued);
	for (i = 0; i < s->nwaiters; i++)
		outbuf_printf(&o, "waiter %d %u\n", s->waiters[i].fd, s->waiters[i].after);
	for (i = 0; i < s->nps; i++)
		outbuf_printf(&o, "pipe %d %u %ld\n", s->ps[i].fd, s->ps[i].slot,
		    (long)s->ps[i].pid);
	for (i = 0; i < s->cfg.n; i++) {
		const char *line = s->cfg.v[i];
		const char *t1 = strchr(line, '\t');
		const char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		char *sec, *key;

		if (t2 == NULL)
			continue;
		sec = xprintf("%.*s", (int)(t1 - line), line);
		key = xprintf("%.*s", (int)(t2 - t1 - 1), t1 + 1);
		outbuf_add(&o, "cfg ", 4);
		put_encoded(&o, sec);
		outbuf_add(&o, " ", 1);
		put_encoded(&o, key);
		outbuf_add(&o, " ", 1);
		put_encoded(&o, t2 + 1);
		outbuf_add(&o, "\n", 1);
		free(sec);
		free(key);
	}
	if (s->notify_dir) {
		outbuf_add(&o, "notifydir ", 10);
		put_encoded(&o, s->notify_dir);
		outbuf_add(&o, "\n", 1);
	}
	for (i = 0; i < s->nns; i++) {
		outbuf_printf(&o, "notify %u %d ", s->ns[i].gen, s->ns[i].fd);
		put_encoded(&o, s->ns[i].path);
		outbuf_add(&o, "\n", 1);
	}
	if (s->sink_fd >= 0)
		outbuf_printf(&o, "sink %d\n", s->sink_fd);
	if (s->metrics_fd >= 0)
		outbuf_printf(&o, "metrics %d %llu %llu\n", s->metrics_fd,
		    (unsigned long long)s->metrics_dev,
		    (unsigned long long)s->metrics_ino);
	for (i = 0; i < s->nmclients; i++) {
		outbuf_printf(&o, "mclient %d ", s->mclients[i].fd);
		put_encoded(&o, s->mclients[i].in);
		outbuf_add(&o, "\n", 1);
	}
	for (i = 0; i < s->ncounts; i++)
		outbuf_printf(&o, "count %s %llu\n", s->counts[i].name,
		    s->counts[i].value);
	if (s->last.set) {
		outbuf_printf(&o, "lastreload %s %s %lld %u %u ", s->last.kind,
		    s->last.result, (long long)s->last.time_ms,
		    s->last.from_gen, s->last.to_gen);
		put_encoded(&o, s->last.reason ? s->last.reason : "");
		outbuf_add(&o, "\n", 1);
	}
	outbuf_add(&o, "end\n", 4);
	*len = o.len;
	return o.p;
}

/* ---- reading ---- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode in place; -1 on a bad escape or an embedded NUL. */
static int
decode(char *s)
{
	char *d = s;

	if (strcmp(s, "%") == 0) {
		*s = '\0';
		return 0;
	}
	for (; *s; s++) {
		if (*s != '%') {
			*d++ = *s;
			continue;
		}
		int hi = hexval((unsigned char)s[1]);
		int lo = hi < 0 ? -1 : hexval((unsigned char)s[2]);

		if (lo < 0 || (hi == 0 && lo == 0))
			return -1;
		*d++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*d = '\0';
	return 0;
}

/* dev_t and ino_t: unsigned 64-bit. */
static int
unum(const char *s, unsigned long long *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

static int
num(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	if (*s == '\0' || (!isdigit((unsigned char)*s) && *s != '-'))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

#define MAXF	16

/* A name of the state's own: 1 to max - 1 bytes of [a-z], and of digits,
 * '_' and '.' when dots. */
static bool
word(const char *s, size_t max, bool dots)
{
	size_t n = strspn(s, dots ? "abcdefghijklmnopqrstuvwxyz0123456789_." :
	    "abcdefghijklmnopqrstuvwxyz_");

	return n > 0 && n < max && s[n] == '\0';
}

/* Split a line at single spaces; returns the field count, -1 if too many. */
static int
fields(char *line, char **f)
{
	int n = 0;

	for (char *p = line; ; ) {
		if (n == MAXF)
			return -1;
		f[n++] = p;
		if ((p = strchr(p, ' ')) == NULL)
			break;
		*p++ = '\0';
	}
	return n;
}

static void *
grow(void *v, size_t n, size_t size)
{
	return xrealloc(v, (n + 1) * size);
}

static int
parse_line(char **f, int nf, struct state *s, bool *seen_master,
    char *err, size_t errlen)
{
	long long v[14];
	int i;

	if (strcmp(f[0], "master") == 0 && nf == 7) {
		for (i = 0; i < 5; i++)
			if (num(f[i + 1], i < 3 ? 0 : -1, i < 3 ? UINT_MAX :
			    FD_LIMIT, &v[i]) == -1)
				goto bad;
		if (decode(f[6]) == -1)
			goto bad;
		s->cur_gen = v[0];
		s->last_gen = v[1];
		s->target = v[2];
		s->pid_fd = v[3];
		s->notify_fd = v[4];
		free(s->notify_path);
		s->notify_path = f[6][0] ? xstrdup(f[6]) : NULL;
		*seen_master = true;
		return 0;
	}
	if (strcmp(f[0], "listener") == 0 && nf == 6) {
		struct state_listener *l;
		unsigned long long dev, ino;

		if (num(f[1], 0, FD_LIMIT, &v[0]) == -1 ||
		    unum(f[2], &dev) == -1 || unum(f[3], &ino) == -1 ||
		    num(f[4], 0, 1, &v[3]) == -1 || decode(f[5]) == -1 ||
		    strlen(f[5]) >= ADDRESS_TEXT_MAX || f[5][0] == '\0')
			goto bad;
		s->ls = grow(s->ls, s->nls, sizeof(*s->ls));
		l = &s->ls[s->nls++];
		memset(l, 0, sizeof(*l));
		l->fd = v[0];
		l->dev = (dev_t)dev;
		l->ino = (ino_t)ino;
		l->gone = v[3];
		strcpy(l->addr, f[5]);
		return 0;
	}
	if (strcmp(f[0], "worker") == 0 && nf == 15) {
		static const long long lo[14] = { 0, 0, 0, 0, 0, 0, -1, -1, 0,
		    0, -1, 0, -1, -1 };
		static const long long hi[14] = { INT_MAX, UINT_MAX, UINT_MAX,
		    W_BACKOFF, 1, 1, FD_LIMIT, FD_LIMIT, UINT_MAX, UINT_MAX,
		    INT_MAX, LLONG_MAX / 2, LLONG_MAX / 2, LLONG_MAX / 2 };
		struct state_worker *w;

		for (i = 0; i < 14; i++)
			if (num(f[i + 1], lo[i], hi[i], &v[i]) == -1)
				goto bad;
		s->ws = grow(s->ws, s->nws, sizeof(*s->ws));
		w = &s->ws[s->nws++];
		w->pid = v[0];
		w->slot = v[1];
		w->gen = v[2];
		w->state = v[3];
		w->exec_ok = v[4];
		w->failed_start = v[5];
		w->execfd = v[6];
		w->outfd = v[7];
		w->restarts = v[8];
		w->backoff_ms = v[9];
		w->last_status = v[10];
		w->age_ms = v[11];
		w->ready_age_ms = v[12];
		w->timer_ms = v[13];
		w->readyfd = -1;
		/* A live worker has a pid; one in backoff has none. */
		if ((w->state == W_BACKOFF) != (w->pid == 0))
			goto bad;
		return 0;
	}
	if (strcmp(f[0], "pipe") == 0 && nf == 4) {
		if (num(f[1], 0, FD_LIMIT, &v[0]) == -1 ||
		    num(f[2], 0, UINT_MAX, &v[1]) == -1 ||
		    num(f[3], 0, INT_MAX, &v[2]) == -1)
			goto bad;
		s->ps = grow(s->ps, s->nps, sizeof(*s->ps));
		s->ps[s->nps].fd = v[0];
		s->ps[s->nps].slot = v[1];
		s->ps[s->nps].pid = v[2];
		s->nps++;
		return 0;
	}
	if (strcmp(f[0], "nofile") == 0 && nf == 2) {
		if (num(f[1], -1, LLONG_MAX / 2, &v[0]) == -1)
			goto bad;
		s->nofile = v[0];
		return 0;
	}
	if (strcmp(f[0], "control") == 0 && nf == 5) {
		if (num(f[1], -1, FD_LIMIT, &v[0]) == -1 ||
		    num(f[2], 0, UINT_MAX, &v[1]) == -1 ||
		    num(f[3], 0, UINT_MAX, &v[2]) == -1 ||
		    num(f[4], 0, 2, &v[3]) == -1)
			goto bad;
		s->ctl_fd = v[0];
		s->op_seq = v[1];
		s->op_current = v[2];
		s->queued = v[3];
		return 0;
	}
	if (strcmp(f[0], "waiter") == 0 && nf == 3) {
		if (num(f[1], 0, FD_LIMIT, &v[0]) == -1 ||
		    num(f[2], 0, UINT_MAX, &v[1]) == -1)
			goto bad;
		s->waiters = grow(s->waiters, s->nwaiters, sizeof(*s->waiters));
		s->waiters[s->nwaiters].fd = v[0];
		s->waiters[s->nwaiters].after = v[1];
		s->nwaiters++;
		return 0;
	}
	if (strcmp(f[0], "notifydir") == 0 && nf == 2 && s->version >= 2) {
		if (decode(f[1]) == -1 || f[1][0] != '/')
			goto bad;
		free(s->notify_dir);
		s->notify_dir = xstrdup(f[1]);
		return 0;
	}
	if (strcmp(f[0], "notify") == 0 && nf == 4 && s->version >= 2) {
		if (num(f[1], 1, UINT_MAX, &v[0]) == -1 ||
		    num(f[2], 0, FD_LIMIT, &v[1]) == -1 ||
		    decode(f[3]) == -1 || f[3][0] != '/')
			goto bad;
		s->ns = grow(s->ns, s->nns, sizeof(*s->ns));
		s->ns[s->nns].gen = v[0];
		s->ns[s->nns].fd = v[1];
		s->ns[s->nns].path = xstrdup(f[3]);
		s->nns++;
		return 0;
	}
	if (strcmp(f[0], "ready") == 0 && nf == 3 && s->version >= 2) {
		if (num(f[1], 1, INT_MAX, &v[0]) == -1 ||
		    num(f[2], 0, FD_LIMIT, &v[1]) == -1)
			goto bad;
		for (size_t j = 0; j < s->nws; j++)
			if (s->ws[j].pid == v[0]) {
				s->ws[j].readyfd = v[1];
				return 0;
			}
		goto bad;
	}
	if (strcmp(f[0], "sink") == 0 && nf == 2 && s->version >= 2) {
		if (num(f[1], 0, FD_LIMIT, &v[0]) == -1)
			goto bad;
		s->sink_fd = v[0];
		return 0;
	}
	if (strcmp(f[0], "metrics") == 0 && nf == 4 && s->version >= 2) {
		unsigned long long dev, ino;

		if (num(f[1], 0, FD_LIMIT, &v[0]) == -1 ||
		    unum(f[2], &dev) == -1 || unum(f[3], &ino) == -1)
			goto bad;
		s->metrics_fd = v[0];
		s->metrics_dev = (dev_t)dev;
		s->metrics_ino = (ino_t)ino;
		return 0;
	}
	if (strcmp(f[0], "mclient") == 0 && nf == 3 && s->version >= 2) {
		if (num(f[1], 0, FD_LIMIT, &v[0]) == -1 || decode(f[2]) == -1 ||
		    strlen(f[2]) > STATE_MCLIENT_MAX)
			goto bad;
		s->mclients = grow(s->mclients, s->nmclients,
		    sizeof(*s->mclients));
		s->mclients[s->nmclients].fd = v[0];
		s->mclients[s->nmclients++].in = xstrdup(f[2]);
		return 0;
	}
	if (strcmp(f[0], "count") == 0 && nf == 3 && s->version >= 2) {
		unsigned long long n;

		if (!word(f[1], STATE_COUNT_NAME_MAX, true) ||
		    unum(f[2], &n) == -1)
			goto bad;
		s->counts = grow(s->counts, s->ncounts, sizeof(*s->counts));
		strcpy(s->counts[s->ncounts].name, f[1]);
		s->counts[s->ncounts++].value = n;
		return 0;
	}
	if (strcmp(f[0], "lastreload") == 0 && nf == 7 && s->version >= 2) {
		if (!word(f[1], STATE_WORD_MAX, false) ||
		    !word(f[2], STATE_WORD_MAX, false) ||
		    num(f[3], 0, LLONG_MAX / 2, &v[0]) == -1 ||
		    num(f[4], 0, UINT_MAX, &v[1]) == -1 ||
		    num(f[5], 0, UINT_MAX, &v[2]) == -1 || decode(f[6]) == -1)
			goto bad;
		s->last.set = true;
		strcpy(s->last.kind, f[1]);
		strcpy(s->last.result, f[2]);
		s->last.time_ms = v[0];
		s->last.from_gen = v[1];
		s->last.to_gen = v[2];
		free(s->last.reason);
		s->last.reason = xstrdup(f[6]);
		return 0;
	}
	if (strcmp(f[0], "cfg") == 0 && nf == 4) {
		if (decode(f[1]) == -1 || decode(f[2]) == -1 ||
		    decode(f[3]) == -1 || strchr(f[1], '\t') ||
		    strchr(f[2], '\t'))
			goto bad;
		strvec_push_owned(&s->cfg, xprintf("%s\t%s\t%s", f[1], f[2],
		    f[3]));
		return 0;
	}
bad:
	snprintf(err, errlen, "bad \"%s\" record", f[0]);
	return -1;
}

int
state_parse(const char *buf, size_t len, struct state *s, char *err,
    size_t errlen)
{
	char *copy, *line, *next, *f[MAXF];
	bool seen_master = false, ended = false;
	size_t records = 0;
	int nf, lineno = 0;
	long long ver;

	state_init(s);
	if (memchr(buf, '\0', len)) {
		snprintf(err, errlen, "state has a NUL byte");
		return -1;
	}
	copy = xmalloc(len + 1);
	memcpy(copy, buf, len);
	copy[len] = '\0';
	for (line = copy; line && *line; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) == NULL) {
			snprintf(err, errlen, "state truncated at line %d",
			    lineno);
			goto fail;
		}
		*next++ = '\0';
		if (ended || ++records > STATE_MAX_RECORDS) {
			snprintf(err, errlen, "state: data after its end");
			goto fail;
		}
		if ((nf = fields(line, f)) == -1) {
			snprintf(err, errlen, "state line %d: too many fields",
			    lineno);
			goto fail;
		}
		if (lineno == 1) {
			if (nf != 2 || strcmp(f[0], "fugue-state") != 0 ||
			    num(f[1], 0, INT_MAX, &ver) == -1) {
				snprintf(err, errlen, "not a fugue state");
				goto fail;
			}
			if (ver < 1 || ver > STATE_VERSION) {
				snprintf(err, errlen, "state version %lld, this "
				    "fugue reads versions 1 to %d", ver,
				    STATE_VERSION);
				goto fail;
			}
			s->version = ver;
			continue;
		}
		if (nf == 1 && strcmp(f[0], "end") == 0) {
			ended = true;
			continue;
		}
		if (parse_line(f, nf, s, &seen_master, err, errlen) == -1) {
			size_t n = strlen(err);

			snprintf(err + n, errlen - n, " at line %d", lineno);
			goto fail;
		}
	}
	if (!ended || !seen_master) {
		snprintf(err, errlen, "state truncated (%s)", seen_master ?
		    "no end" : "no master record");
		goto fail;
	}
	free(copy);
	return 0;
fail:
	free(copy);
	state_free(s);
	return -1;
}

void
state_free(struct state *s)
{
	free(s->notify_path);
	free(s->notify_dir);
	for (size_t i = 0; i < s->nns; i++)
		free(s->ns[i].path);
	free(s->ns);
	free(s->ls);
	free(s->ws);
	free(s->ps);
	free(s->waiters);
	free(s->counts);
	free(s->last.reason);
	for (size_t i = 0; i < s->nmclients; i++)
		free(s->mclients[i].in);
	free(s->mclients);
	strvec_clear(&s->cfg);
	state_init(s);
}

void
state_init(struct state *s)
{
	memset(s, 0, sizeof(*s));
	s->pid_fd = s->notify_fd = s->ctl_fd = s->sink_fd = -1;
	s->metrics_fd = -1;
	s->nofile = -1;
}
