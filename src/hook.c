/*
 * A reload hook as a child process: started like a worker (spawn_worker,
 * with a plan of its own), its output into the log behind "hook NAME (pid
 * N): ", bounded by hook_timeout; its end is reported to the master.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook.h"
#include "spawn.h"
#include "supervise.h"

extern char **environ;

void
hook_init(struct hook *h, struct ev_loop *loop, struct logsink *sink,
    hook_report_fn report, void *arg)
{
	memset(h, 0, sizeof(*h));
	h->loop = loop;
	h->sink = sink;
	h->report = report;
	h->arg = arg;
	h->execfd = -1;
}

/* Too long: its whole process group goes; the exit comes through the
 * master's child watcher as usual. */
static void
hook_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct hook *h = t->data;

	(void)loop;
	(void)revents;
	if (h->pid > 0) {
		h->timed_out = true;
		kill(-h->pid, SIGKILL);
	}
}

int
hook_start(struct hook *h, const struct config *c, enum hook_kind k,
    const struct hook_vars *v, pid_t master, int devnull, long long nofile,
    char *err, size_t len)
{
	struct strvec vars = { NULL, 0 };
	struct spawn_plan p;
	const char *step;
	int wfd, r;

	if (h->pid > 0) {
		snprintf(err, len, "%s: %s is still running", hook_name(k),
		    hook_name(h->kind));
		return -1;
	}
	strvec_push_owned(&vars, xprintf("FUGUE_HOOK=%s", hook_name(k)));
	strvec_push_owned(&vars, xprintf("FUGUE_OLD_GENERATION=%u",
	    v->old_gen));
	strvec_push_owned(&vars, xprintf("FUGUE_NEW_GENERATION=%u",
	    v->new_gen));
	strvec_push_owned(&vars, xprintf("FUGUE_RESULT=%s", v->result ?
	    v->result : ""));
	strvec_push_owned(&vars, xprintf("FUGUE_REASON=%s", v->reason ?
	    v->reason : ""));
	r = spawn_plan_hook(&p, c, k, environ, &vars, master, err, len);
	strvec_clear(&vars);
	if (r != 0)
		return -1;
	p.devnull = devnull;
	p.nofile = nofile;
	h->last_line[0] = '\0';
	if ((h->out = logpipe_open(h->sink, 0, &wfd)) == NULL) {
		snprintf(err, len, "%s: pipe: %s", hook_name(k),
		    strerror(errno));
		spawn_plan_free(&p);
		return -1;
	}
	h->pid = spawn_worker(&p, 0, wfd, wfd, &h->execfd, &step);
	r = errno;
	close(wfd);
	spawn_plan_free(&p);
	if (h->pid == -1) {
		snprintf(err, len, "%s: %s: %s", hook_name(k), step,
		    strerror(r));
		h->pid = 0;
		logpipe_free(h->out);
		h->out = NULL;
		return -1;
	}
	h->out->name = xprintf("hook %s", hook_name(k));
	h->out->pid = h->pid;
	h->out->owner = (void **)&h->out;
	h->out->last = h->last_line;
	h->out->lastsz = sizeof(h->last_line);
	h->kind = k;
	h->timed_out = h->killed = false;
	h->timeout_ms = c->hook_timeout_ms;
	log_info("running %s (pid %ld): %s", hook_name(k), (long)h->pid,
	    c->hook[k].text);
	ev_timer_init(&h->timer, hook_timer_cb, h->timeout_ms / 1000.0, 0);
	h->timer.data = h;
	ev_timer_start(h->loop, &h->timer);
	return 0;
}

/* Why it did not succeed, or "" if it did. */
static void
hook_why(struct hook *h, int status, char *why, size_t len)
{
	struct spawn_report rep;
	char d[32];

	why[0] = '\0';
	if (h->execfd != -1 && read(h->execfd, &rep, sizeof(rep)) ==
	    (ssize_t)sizeof(rep))
		snprintf(why, len, "could not %s: %s",
		    spawn_stage_name(rep.stage), strerror(rep.err));
	else if (h->killed)
		snprintf(why, len, "was killed: fugue is stopping");
	else if (h->timed_out) {
		format_duration(h->timeout_ms, d, sizeof(d));
		snprintf(why, len, "did not end within hook_timeout %s", d);
	} else if (status != 0)
		describe_status(status, why, len);
}

bool
hook_reaped(struct hook *h, pid_t pid, int status)
{
	char why[400];
	size_t n;
	bool ok;

	if (h->pid <= 0 || pid != h->pid)
		return false;
	/* It is over: what it left running goes too. Just reaped, so its
	 * group's id is no one else's yet. */
	kill(-pid, SIGKILL);
	h->pid = 0;
	ev_timer_stop(h->loop, &h->timer);
	hook_why(h, status, why, sizeof(why));
	if (h->execfd != -1) {
		close(h->execfd);
		h->execfd = -1;
	}
	/* Its last lines, then the pipe goes: nothing of a hook is left
	 * for an upgrade's exec to carry. */
	if (h->out)
		logpipe_drain(h->out);
	if (h->out) {
		logpipe_free(h->out);
		h->out = NULL;
	}
	ok = why[0] == '\0';
	n = strlen(why);
	if (!ok && h->last_line[0] && n < sizeof(why) - 1)
		snprintf(why + n, sizeof(why) - n, "; its last line: \"%s\"",
		    h->last_line);
	if (ok)
		log_info("%s (pid %ld) succeeded", hook_name(h->kind),
		    (long)pid);
	else
		log_warnx("%s (pid %ld) %s", hook_name(h->kind), (long)pid,
		    why);
	h->report(h->arg, h->kind, ok, why);
	return true;
}

void
hook_kill(struct hook *h)
{
	if (h->pid <= 0)
		return;
	h->killed = true;
	ev_timer_stop(h->loop, &h->timer);
	kill(-h->pid, SIGKILL);
}
