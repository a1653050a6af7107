/*
 * The status report of the control socket's "status" and "status json":
 * the master's phase, the serving generation and every worker record.
 */
#include <stdio.h>
#include <string.h>

#include "master.h"

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
		outbuf_printf(&o, "],\"recycled\":%lu}\n", m->recycles);
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
	}
	outbuf_add(&o, "", 1);	/* NUL */
	return o.p;
}
