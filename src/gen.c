/*
 * Generations: the listeners a configuration asks for, its notify socket
 * and its spawn plan. Nothing here decides anything: the master creates,
 * starts, commits and frees generations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen.h"
#include "logging.h"
#include "notify.h"

extern char **environ;

struct generation *
gen_new(unsigned id, struct config *c)
{
	struct generation *g = xcalloc(1, sizeof(*g));

	g->id = id;
	g->phase = G_STARTING;
	g->cfg = *c;
	memset(c, 0, sizeof(*c));
	config_init(c);
	g->target = g->cfg.count;
	g->notify_fd = -1;
	return g;
}

void
gen_free(struct generation *g, struct lsock_list *all)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->nls; i++)
		lsock_release(all, g->ls[i]);
	if (g->notify_fd != -1) {	/* its watcher stopped by the master */
		close(g->notify_fd);
		unlink(g->notify_path);
	}
	free(g->notify_path);
	spawn_plan_free(&g->plan);
	config_free(&g->cfg);
	free(g->ls);
	free(g->fds);
	free(g->fdnames);
	free(g);
}

void
gen_warn_root(const struct config *c)
{
	if ((c->user && c->uid == 0) || (!c->user && geteuid() == 0))
		log_warnx("workers run as root (set [worker] user)");
}

static struct lsock *
lsock_find(struct lsock_list *all, const char *text)
{
	struct lsock *s;

	TAILQ_FOREACH(s, all, link)
		if (strcmp(s->l.addr.text, text) == 0)
			return s;
	return NULL;
}

/* A copy in systemd's fd store, if fugue runs under systemd. Sent again
 * for one that is there already, systemd keeps one copy. */
static void
lsock_store(struct lsock *s)
{
	char name[ADDRESS_TEXT_MAX];

	if (!notify_systemd_enabled())
		return;
	listen_fdname(&s->l.addr, name, sizeof(name));
	if (notify_systemd_store(s->l.fd, name) == -1) {
		log_warn("%s: not kept in systemd's fd store", s->l.addr.text);
		return;
	}
	s->stored = true;
	log_debug("%s: kept in systemd's fd store as %s", s->l.addr.text,
	    name);
}

struct lsock *
lsock_adopt(struct lsock_list *all, int fd, const struct address *a,
    dev_t dev, ino_t ino)
{
	struct lsock *s = xcalloc(1, sizeof(*s));

	s->l.addr = *a;
	s->l.fd = fd;
	s->l.dev = dev;
	s->l.ino = ino;
	s->announced = true;
	TAILQ_INSERT_TAIL(all, s, link);
	lsock_store(s);
	return s;
}

void
lsock_release(struct lsock_list *all, struct lsock *s)
{
	char name[ADDRESS_TEXT_MAX];

	if (s->refs > 0 && --s->refs > 0)
		return;
	if (s->announced)
		log_info("closed %s", s->l.addr.text);
	if (s->stored && !s->exiting) {
		listen_fdname(&s->l.addr, name, sizeof(name));
		notify_systemd("FDSTOREREMOVE=1\nFDNAME=%s", name);
	}
	/* A socket systemd keeps for the next fugue keeps its file. */
	listen_close(&s->l, !(s->stored && s->exiting));
	TAILQ_REMOVE(all, s, link);
	free(s);
}

void
lsock_exiting(struct lsock_list *all)
{
	struct lsock *s;

	TAILQ_FOREACH(s, all, link)
		s->exiting = true;
}

void
lsock_close_unused(struct lsock_list *all)
{
	struct lsock *s, *next;

	for (s = TAILQ_FIRST(all); s; s = next) {
		next = TAILQ_NEXT(s, link);
		if (s->refs == 0)
			lsock_release(all, s);
	}
}

int
gen_bind(struct generation *g, struct lsock_list *all, char *err, size_t len)
{
	const struct config *c = &g->cfg;
	size_t i, off = 0, cap;
	struct lsock *s;
	int r;

	g->ls = xcalloc(c->nlisten ? c->nlisten : 1, sizeof(*g->ls));
	g->fds = xcalloc(c->nlisten ? c->nlisten : 1, sizeof(*g->fds));
	cap = c->nlisten * (ADDRESS_TEXT_MAX + 1) + 1;
	g->fdnames = xcalloc(1, cap);
	for (i = 0; i < c->nlisten; i++) {
		if ((s = lsock_find(all, c->listen[i].text)) == NULL) {
			s = xcalloc(1, sizeof(*s));
			r = listen_open(&s->l, &c->listen[i], c->backlog,
			    c->socket_mode, c->socket_uid, c->socket_gid, err,
			    len);
			if (r != 0) {
				free(s);
				for (; i > 0; i--)
					lsock_release(all, g->ls[i - 1]);
				g->nls = 0;
				return r;
			}
			TAILQ_INSERT_TAIL(all, s, link);
			lsock_store(s);
		}
		if (!s->announced) {
			log_info("listening on %s", c->listen[i].text);
			s->announced = true;
		}
		s->refs++;
		g->ls[i] = s;
		g->fds[i] = s->l.fd;
		g->nls = i + 1;
		if (i)
			g->fdnames[off++] = ':';
		listen_fdname(&c->listen[i], g->fdnames + off, cap - off);
		off += strlen(g->fdnames + off);
	}
	return 0;
}

int
gen_notify_open(struct generation *g, const char *dir, char *err, size_t len)
{
	const struct config *c = &g->cfg;
	uid_t uid = c->user ? c->uid : (uid_t)-1;
	gid_t gid = c->user || c->group ? c->gid : (gid_t)-1;

	g->notify_path = xprintf("%s/gen-%u.sock", dir, g->id);
	g->notify_fd = notify_open(g->notify_path, uid, gid, err, len);
	return g->notify_fd == -1 ? -1 : 0;
}

int
gen_plan(struct generation *g, pid_t master, int devnull, long long nofile,
    char *err, size_t len)
{
	if (spawn_plan_build(&g->plan, &g->cfg, environ, g->fds, (int)g->nls,
	    g->fdnames, g->id, master, g->notify_fd != -1 ? g->notify_path :
	    NULL, err, len) == -1)
		return -1;
	g->plan.devnull = devnull;
	g->plan.nofile = nofile;
	return 0;
}
