/*
 * GET /metrics: the Prometheus text exposition format, version 0.0.4. One
 * HELP and TYPE per family, then its samples; names start with fugue_,
 * counters end in _total, times are in seconds and sizes in bytes. Label
 * values are escaped and made valid UTF-8.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

static const char *const kinds[RK_COUNT] = { "reload", "upgrade" };
static const char *const results[RR_COUNT] = { "ok", "refused",
    "rolled_back" };

const char *
reload_kind_name(enum reload_kind k)
{
	return (unsigned)k < RK_COUNT ? kinds[k] : "?";
}

const char *
reload_result_name(enum reload_result r)
{
	return (unsigned)r < RR_COUNT ? results[r] : "?";
}

int
reload_kind_parse(const char *s)
{
	for (int i = 0; i < RK_COUNT; i++)
		if (strcmp(s, kinds[i]) == 0)
			return i;
	return -1;
}

int
reload_result_parse(const char *s)
{
	for (int i = 0; i < RR_COUNT; i++)
		if (strcmp(s, results[i]) == 0)
			return i;
	return -1;
}

void
prom_snapshot_free(struct prom_snapshot *s)
{
	if (s == NULL)
		return;
	free(s->ws);
	free(s);
}

/* The length of the UTF-8 sequence at p (at most n bytes), 0 if none. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned min, v;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		min = 0x80;
		v = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		min = 0x800;
		v = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		min = 0x10000;
		v = p[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return len;
}

void
prom_label_value(struct outbuf *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), len;

	while (n > 0) {
		if (*p == '\\' || *p == '"')
			outbuf_add(o, *p == '\\' ? "\\\\" : "\\\"", 2);
		else if (*p == '\n')
			outbuf_add(o, "\\n", 2);
		else if ((len = utf8_len(p, n)) == 0)
			outbuf_add(o, "?", 1);
		else {
			outbuf_add(o, (const char *)p, len);
			p += len;
			n -= len;
			continue;
		}
		p++;
		n--;
	}
}

static void
family(struct outbuf *o, const char *name, const char *type,
    const char *help)
{
	outbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* name{slot="0",pid="123",generation="4"} */
static void
worker_sample(struct outbuf *o, const char *name,
    const struct prom_worker *w)
{
	if (w->pid > 0)
		outbuf_printf(o, "%s{slot=\"%u\",pid=\"%ld\",generation=\"%u\"} ",
		    name, w->slot, (long)w->pid, w->gen);
	else
		outbuf_printf(o, "%s{slot=\"%u\",pid=\"\",generation=\"%u\"} ",
		    name, w->slot, w->gen);
}

static void
format_workers(const struct prom_snapshot *s, struct outbuf *o)
{
	const struct prom_worker *w;
	size_t i;

	family(o, "fugue_worker_uptime_seconds", "gauge",
	    "Seconds since the worker process was started.");
	for (i = 0, w = s->ws; i < s->nws; i++, w++)
		if (w->pid > 0) {
			worker_sample(o, "fugue_worker_uptime_seconds", w);
			outbuf_printf(o, "%.3f\n", w->uptime);
		}
	family(o, "fugue_worker_restarts_total", "counter",
	    "Times the worker's slot was started again after an exit.");
	for (i = 0, w = s->ws; i < s->nws; i++, w++) {
		worker_sample(o, "fugue_worker_restarts_total", w);
		outbuf_printf(o, "%u\n", w->restarts);
	}
	family(o, "fugue_worker_cpu_seconds_total", "counter",
	    "User and system CPU time of the worker process.");
	for (i = 0, w = s->ws; i < s->nws; i++, w++)
		if (w->pid > 0 && w->proc.cpu_ok) {
			worker_sample(o, "fugue_worker_cpu_seconds_total", w);
			outbuf_printf(o, "%.2f\n", w->proc.cpu_seconds);
		}
	family(o, "fugue_worker_memory_pss_bytes", "gauge",
	    "Proportional set size of the worker process.");
	for (i = 0, w = s->ws; i < s->nws; i++, w++)
		if (w->pid > 0 && w->proc.pss_ok) {
			worker_sample(o, "fugue_worker_memory_pss_bytes", w);
			outbuf_printf(o, "%llu\n", w->proc.pss_bytes);
		}
}

static void
format_reloads(const struct prom_snapshot *s, struct outbuf *o)
{
	const struct reload_record *r = &s->counts.last;

	family(o, "fugue_reloads_total", "counter",
	    "Reloads and upgrades that ended, by result.");
	for (int k = 0; k < RK_COUNT; k++)
		for (int x = 0; x < RR_COUNT; x++)
			outbuf_printf(o, "fugue_reloads_total{kind=\"%s\","
			    "result=\"%s\"} %llu\n", kinds[k], results[x],
			    s->counts.reloads[k][x]);
	if (!r->set)
		return;
	family(o, "fugue_last_reload_timestamp_seconds", "gauge",
	    "When the last reload or upgrade ended, since the epoch.");
	outbuf_printf(o, "fugue_last_reload_timestamp_seconds %.3f\n",
	    r->time);
	family(o, "fugue_last_reload_success", "gauge",
	    "1 if the last reload or upgrade put a new generation in "
	    "service, else 0.");
	outbuf_printf(o, "fugue_last_reload_success %d\n", r->result == RR_OK);
	family(o, "fugue_last_reload_info", "gauge",
	    "The last reload or upgrade: its kind, result, reason and "
	    "generations (to_generation 0: none was started).");
	outbuf_printf(o, "fugue_last_reload_info{kind=\"%s\",result=\"%s\","
	    "from_generation=\"%u\",to_generation=\"%u\",reason=\"",
	    kinds[r->kind % RK_COUNT], results[r->result % RR_COUNT],
	    r->from_gen, r->to_gen);
	prom_label_value(o, r->reason);
	outbuf_add(o, "\"} 1\n", 5);
}

void
prom_format(const struct prom_snapshot *s, struct outbuf *o)
{
	family(o, "fugue_build_info", "gauge", "The version of fugue.");
	outbuf_add(o, "fugue_build_info{version=\"", 26);
	prom_label_value(o, s->version);
	outbuf_add(o, "\"} 1\n", 5);
	family(o, "fugue_ready", "gauge", "1 while the service can take "
	    "traffic (as GET /readyz says), else 0.");
	outbuf_printf(o, "fugue_ready %d\n", s->ready);
	family(o, "fugue_serving_generation", "gauge",
	    "The generation in service.");
	outbuf_printf(o, "fugue_serving_generation %u\n", s->serving_gen);
	family(o, "fugue_workers_wanted", "gauge",
	    "Workers the serving generation should have.");
	outbuf_printf(o, "fugue_workers_wanted %u\n", s->wanted);
	family(o, "fugue_workers", "gauge",
	    "Workers of every generation, by state.");
	for (int st = W_STARTING; st < W_GONE; st++)
		outbuf_printf(o, "fugue_workers{state=\"%s\"} %u\n",
		    worker_state_name(st), s->by_state[st]);
	format_workers(s, o);
	family(o, "fugue_worker_exits_total", "counter",
	    "Worker processes that ended, by reason.");
	for (int x = 0; x < WX_COUNT; x++)
		outbuf_printf(o, "fugue_worker_exits_total{reason=\"%s\"} %llu\n",
		    worker_exit_name(x), s->counts.exits[x]);
	format_reloads(s, o);
	family(o, "fugue_log_lines_dropped_total", "counter",
	    "Lines of worker output dropped: the log's reader was too slow, "
	    "or writing failed.");
	outbuf_printf(o, "fugue_log_lines_dropped_total %llu\n",
	    s->log_dropped);
	if (s->self.cpu_ok) {
		family(o, "fugue_master_cpu_seconds_total", "counter",
		    "User and system CPU time of the master process.");
		outbuf_printf(o, "fugue_master_cpu_seconds_total %.2f\n",
		    s->self.cpu_seconds);
	}
	if (s->self.pss_ok) {
		family(o, "fugue_master_memory_pss_bytes", "gauge",
		    "Proportional set size of the master process.");
		outbuf_printf(o, "fugue_master_memory_pss_bytes %llu\n",
		    s->self.pss_bytes);
	}
}
