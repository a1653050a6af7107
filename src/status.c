/*
 * What the master reports: the control socket's "status" and "status
 * json" (the phase, the serving generation, every worker record and the
 * last reload), and the metrics endpoint's /readyz and /metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "master.h"

#ifndef FUGUE_VERSION
#define FUGUE_VERSION "0.0.0"
#endif

static void
json_string(struct outbuf *o, const char *s)
{
	char e[8];

	outbuf_add(o, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			e[0] = '\\';
			e[1] = (char)ch;
			outbuf_add(o, e, 2);
		} else if (ch < 0x20) {
			snprintf(e, sizeof(e), "\\u%04x", ch);
			outbuf_add(o, e, 6);
		} else
			outbuf_add(o, s, 1);
	}
	outbuf_add(o, "\"", 1);
}


static void
format_uptime(double sec, char *buf, size_t len)
{
	long s = (long)sec;

	if (s < 60)
		snprintf(buf, len, "%lds", s);
	else if (s < 3600)
		snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%ldh%02ldm", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%ldd%02ldh", s / 86400, s / 3600 % 24);
}

/* Seconds the lame duck goes on serving, -1 when it is not one. */
static double
lame_duck_left(const struct master *m)
{
	if (!m->lame_duck)
		return -1;
	return ev_timer_remaining(m->loop, (ev_timer *)&m->stop_timer);
}

/* "2026-11-24T21:05:00Z" */
static void
format_wall(double t, char *buf, size_t len)
{
	time_t s = (time_t)t;
	struct tm tm;

	if (gmtime_r(&s, &tm) == NULL || strftime(buf, len,
	    "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%.0f", t);
}

static void
last_reload_json(struct outbuf *o, const struct reload_record *r)
{
	if (!r->set) {
		outbuf_printf(o, ",\"last_reload\":null");
		return;
	}
	outbuf_printf(o, ",\"last_reload\":{\"kind\":\"%s\",\"result\":\"%s\","
	    "\"time\":%.3f,\"from_generation\":%u,\"to_generation\":",
	    reload_kind_name(r->kind), reload_result_name(r->result), r->time,
	    r->from_gen);
	if (r->to_gen)
		outbuf_printf(o, "%u", r->to_gen);
	else
		outbuf_printf(o, "null");
	outbuf_printf(o, ",\"reason\":");
	json_string(o, r->reason);
	outbuf_printf(o, "}");
}

/* "last upgrade: rolled back at 2026-...Z (5s ago), generation 3 -> 4:
 * worker 0 ... exited with status 1 before the generation was ready" */
static void
last_reload_text(struct outbuf *o, const struct reload_record *r)
{
	char when[32], ago[32];

	if (!r->set)
		return;
	format_wall(r->time, when, sizeof(when));
	format_uptime(ev_time() > r->time ? ev_time() - r->time : 0, ago,
	    sizeof(ago));
	outbuf_printf(o, "last %s: %s at %s (%s ago), generation %u",
	    reload_kind_name(r->kind), r->result == RR_ROLLED_BACK ?
	    "rolled back" : reload_result_name(r->result), when, ago,
	    r->from_gen);
	if (r->to_gen)
		outbuf_printf(o, " -> %u", r->to_gen);
	if (r->result != RR_OK && r->reason[0]) {
		outbuf_add(o, ": ", 2);
		outbuf_add(o, r->reason, strlen(r->reason));
	}
	outbuf_add(o, "\n", 1);
}

char *
status_format(const struct master *m, bool json)
{
	static const char *const phases[] = { "starting", "running",
	    "stopping" };
	ev_tstamp now = mono_now();
	struct outbuf o = { 0 };
	char up[32], last[96], mem[32], duck[64] = "";
	double left = lame_duck_left(m);
	const struct worker *w;
	bool first = true;

	if (json) {
		outbuf_printf(&o, "{\"pid\":%ld,\"phase\":\"%s\",\"generation\":%u,"
		    "\"workers_wanted\":%u,\"workers_ready\":%u,"
		    "\"reloading\":%s,", (long)m->pid,
		    phases[m->phase], m->serving->id, m->serving->target,
		    workers_count(&m->sv.wt, m->serving->id, WS(W_READY)),
		    m->starting || m->pending || m->check.pid ? "true" : "false");
		if (left >= 0)
			outbuf_printf(&o, "\"stop_delay_left\":%.3f,", left);
		else
			outbuf_printf(&o, "\"stop_delay_left\":null,");
		outbuf_printf(&o, "\"workers\":[");
		TAILQ_FOREACH(w, &m->sv.wt.list, link) {
			outbuf_printf(&o, "%s{\"slot\":%u,\"pid\":%ld,\"generation\":%u,"
			    "\"state\":\"%s\",\"uptime\":%.3f,\"restarts\":%u,"
			    "\"last_exit\":", first ? "" : ",", w->slot,
			    (long)w->pid, w->gen, worker_state_name(w->state),
			    w->pid > 0 ? now - w->started : 0.0, w->restarts);
			first = false;
			if (w->last_status == -1)
				outbuf_printf(&o, "null");
			else {
				describe_status(w->last_status, last,
				    sizeof(last));
				json_string(&o, last);
			}
			if (w->pss)
				outbuf_printf(&o, ",\"memory\":%llu",
				    (unsigned long long)w->pss);
			else
				outbuf_printf(&o, ",\"memory\":null");
			outbuf_printf(&o, ",\"replacing\":");
			if (w->retiring)
				json_string(&o, w->retire_why);
			else
				outbuf_printf(&o, "null");
			outbuf_printf(&o, "}");
		}
		outbuf_printf(&o, "],\"recycled\":%lu", m->recycles);
		last_reload_json(&o, &m->counts.last);
		outbuf_printf(&o, "}\n");
	} else {
		if (left >= 0)
			snprintf(duck, sizeof(duck), " (stop_delay: serving "
			    "%.1fs more)", left);
		outbuf_printf(&o, "fugue pid %ld, %s%s, generation %u, %u of %u workers "
		    "ready%s\n", (long)m->pid, phases[m->phase], duck, m->serving->id,
		    workers_count(&m->sv.wt, m->serving->id, WS(W_READY)), m->serving->target,
		    m->starting || m->pending || m->check.pid ? ", reloading" : "");
		outbuf_printf(&o, "%-5s %-8s %-4s %-9s %-8s %-8s %-8s %s\n", "SLOT",
		    "PID", "GEN", "STATE", "UPTIME", "RESTARTS", "MEMORY",
		    "LAST EXIT");
		TAILQ_FOREACH(w, &m->sv.wt.list, link) {
			if (w->pid > 0)
				format_uptime(now - w->started, up,
				    sizeof(up));
			else
				snprintf(up, sizeof(up), "-");
			if (w->last_status == -1)
				snprintf(last, sizeof(last), "-");
			else
				describe_status(w->last_status, last,
				    sizeof(last));
			if (w->pss)
				snprintf(mem, sizeof(mem), "%.1fM",
				    w->pss / 1048576.0);
			else
				snprintf(mem, sizeof(mem), "-");
			outbuf_printf(&o, "%-5u %-8ld %-4u %-9s %-8s %-8u %-8s %s%s%s"
			    "\n", w->slot, (long)w->pid, w->gen,
			    worker_state_name(w->state), up, w->restarts, mem,
			    last, w->retiring ? "; replacing: " : "",
			    w->retiring ? w->retire_why : "");
		}
		last_reload_text(&o, &m->counts.last);
	}
	outbuf_add(&o, "", 1);	/* NUL */
	return o.p;
}

/* /readyz: the first generation is ready and no stop has begun. NULL,
 * or why not. */
static const char *
not_ready(const struct master *m, char *buf, size_t len)
{
	if (m->phase == M_STOPPING)
		return "stopping";
	if (m->phase == M_STARTING) {
		snprintf(buf, len, "starting: %u of %u workers of generation "
		    "%u ready", workers_count(&m->sv.wt, m->serving->id,
		    WS(W_READY)), m->serving->target, m->serving->id);
		return buf;
	}
	return NULL;
}

static struct prom_snapshot *
snapshot(const struct master *m)
{
	struct prom_snapshot *s = xcalloc(1, sizeof(*s));
	ev_tstamp now = mono_now();
	const struct worker *w;
	char buf[128];

	s->version = FUGUE_VERSION;
	s->pid = m->pid;
	s->ready = not_ready(m, buf, sizeof(buf)) == NULL;
	s->serving_gen = m->serving->id;
	s->wanted = m->serving->target;
	s->counts = m->counts;
	s->log_dropped = m->sink.dropped_total;
	s->ws = xcalloc(m->sv.wt.n ? m->sv.wt.n : 1, sizeof(*s->ws));
	TAILQ_FOREACH(w, &m->sv.wt.list, link) {
		struct prom_worker *pw = &s->ws[s->nws++];

		if (w->state < W_GONE)
			s->by_state[w->state]++;
		pw->pid = w->pid;
		pw->slot = w->slot;
		pw->gen = w->gen;
		pw->uptime = w->pid > 0 ? now - w->started : 0;
		pw->restarts = w->restarts;
	}
	return s;
}

void
status_http(void *arg, struct metrics_client *c, enum metrics_page page)
{
	const struct master *m = arg;
	const char *why;
	char buf[128], line[160];

	if (page == MP_METRICS) {
		metrics_scrape(c, snapshot(m));
		return;
	}
	if ((why = not_ready(m, buf, sizeof(buf))) == NULL)
		metrics_reply(c, 200, "ok\n");
	else {
		snprintf(line, sizeof(line), "not ready: %s\n", why);
		metrics_reply(c, 503, line);
	}
}

void
status_record_reload(struct master *m, bool upgrade, enum reload_result r,
    unsigned from_gen, unsigned to_gen, const char *reason)
{
	struct reload_record *last = &m->counts.last;
	enum reload_kind k = upgrade ? RK_UPGRADE : RK_RELOAD;

	m->counts.reloads[k][r]++;
	last->set = true;
	last->kind = k;
	last->result = r;
	last->time = ev_time();
	last->from_gen = from_gen;
	last->to_gen = to_gen;
	snprintf(last->reason, sizeof(last->reason), "%s", reason);
}
