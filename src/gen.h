/*
 * Generations as objects: each owns its configuration, its spawn plan, a
 * reference on each listener it passes to its workers, and (ready =
 * notify) a notify socket of its own that belongs to its workers' user.
 * Any number may be alive at once: one serving, perhaps one starting, and
 * old ones whose workers still drain. Listeners are shared by reference
 * count and closed when the last generation that uses one is freed.
 */
#ifndef FUGUE_GEN_H
#define FUGUE_GEN_H

#include <sys/queue.h>
#include <stdbool.h>
#include <ev.h>

#include "config.h"
#include "listen.h"
#include "spawn.h"

struct lsock {
	TAILQ_ENTRY(lsock) link;
	struct listener	 l;
	unsigned	 refs;
	bool		 announced;	/* "listening on" was logged */
	bool		 stored;	/* sent to systemd's fd store */
	bool		 exiting;	/* fugue exits: it stays stored */
};
TAILQ_HEAD(lsock_list, lsock);

enum gen_phase {
	G_STARTING,	/* its workers are starting; not serving yet */
	G_SERVING,	/* the one in service */
	G_OLD,		/* replaced or rolled back: its workers drain */
};

struct generation {
	TAILQ_ENTRY(generation) link;
	unsigned	 id;
	enum gen_phase	 phase;
	unsigned	 target;	/* workers wanted */
	struct config	 cfg;
	struct spawn_plan plan;
	struct lsock	**ls;		/* in the configuration's order */
	size_t		 nls;
	int		*fds;
	char		*fdnames;
	int		 notify_fd;	/* its workers' NOTIFY_SOCKET, -1 none */
	char		*notify_path;
	ev_io		 notify_io;
};
TAILQ_HEAD(gen_list, generation);

/* A new generation taking the configuration c (moved; c is left empty). */
struct generation *gen_new(unsigned id, struct config *c);
/* Free it: its listener references dropped (see lsock_release), its notify
 * socket closed and removed. */
void	gen_free(struct generation *g, struct lsock_list *all);

/*
 * Take a reference on the listener of each configured address: one in all
 * with the same address is shared (never re-bound, so no queued connection
 * is lost), the others are bound now and added. All or nothing: 0, or an
 * exit code with err and nothing held.
 */
int	gen_bind(struct generation *g, struct lsock_list *all, char *err,
	    size_t len);
/* Its notify socket in dir, for its workers' user (ready = notify). */
int	gen_notify_open(struct generation *g, const char *dir, char *err,
	    size_t len);
/* Its spawn plan (after gen_bind and gen_notify_open). */
int	gen_plan(struct generation *g, pid_t master, int devnull,
	    long long nofile, char *err, size_t len);

/*
 * With NOTIFY_SOCKET, every listener fugue holds is also in systemd's fd
 * store (FDSTORE=1, FDNAME= its LISTEN_FDNAMES entry), sent as it is bound
 * or adopted, so that a restart of fugue finds it there: connections wait
 * in its queue meanwhile. A listener the configuration drops leaves the
 * store (FDSTOREREMOVE=1) as it closes; at fugue's exit it stays, and so
 * does its UNIX socket file.
 */

/* A listener handed over (socket activation, the fd store, an upgrade),
 * not yet used. */
struct lsock *lsock_adopt(struct lsock_list *all, int fd,
	    const struct address *a, dev_t dev, ino_t ino);
/* Drop one reference; the last closes it (and removes a UNIX socket file
 * fugue made, and its copy in the fd store). */
void	lsock_release(struct lsock_list *all, struct lsock *s);
/* Close every listener nobody references (after an adoption). */
void	lsock_close_unused(struct lsock_list *all);
/* fugue exits: what is in the fd store stays there as it closes. */
void	lsock_exiting(struct lsock_list *all);

/* "workers run as root" when they would. */
void	gen_warn_root(const struct config *);

#endif
