/* The control socket: line commands from root or fugue's own user, answered
 * with one reply each; reload and upgrade answer only once the outcome is
 * known. The master is told of each command through a callback and
 * answers with control_reply or control_wait. */
#ifndef FUGUE_CONTROL_H
#define FUGUE_CONTROL_H

#include <sys/queue.h>
#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

#include "logging.h"

#define CTL_LINE_MAX	256

enum ctl_verb {
	CTL_BAD, CTL_STATUS, CTL_STATUS_JSON, CTL_RELOAD, CTL_UPGRADE,
	CTL_STOP, CTL_QUIT, CTL_REOPEN, CTL_SCALE,
};

struct control;

/* One connected client. */
struct ctl_client {
	LIST_ENTRY(ctl_client) link;
	struct control	*ctl;
	ev_io		 io;
	ev_timer	 timer;
	char		 line[CTL_LINE_MAX];
	size_t		 len;
	bool		 waiting;	/* for an operation's outcome */
	unsigned	 after;		/* one that starts after op number */
	struct outbuf	 out;
	size_t		 sent;
};

/* A command came: answer it now (control_reply) or later (control_wait). */
typedef void (*ctl_command_fn)(void *arg, struct ctl_client *c,
    enum ctl_verb verb, unsigned count);

struct control {
	struct ev_loop	*loop;
	int		 fd;		/* -1 none */
	ev_io		 io;
	ev_timer	 pause;		/* accept paused: out of fds */
	LIST_HEAD(, ctl_client) clients;
	ctl_command_fn	 command;
	void		*arg;
};

/* One command line (without its newline, n bytes, NUL bytes are bad) into
 * a verb and, for scale, its count. Pure: fuzzed. */
enum ctl_verb control_parse(const char *line, size_t n, unsigned *count);

/* Bind the control socket at path (mode 0600, a stale socket replaced).
 * Returns 0 with *fd, or an exit code (75 in use, 73, 78) with err. */
int	control_open(const char *path, int *fd, char *err, size_t len);
/* Serve fd (-1: none) from loop. */
void	control_start(struct control *, struct ev_loop *, int fd,
	    ctl_command_fn, void *arg);
/* The whole answer; the client is gone after. */
void	control_reply(struct ctl_client *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	control_reply_owned(struct ctl_client *, char *text);
/* It waits for the first operation numbered above after. */
void	control_wait(struct ctl_client *, unsigned after);
/* Answer every client waiting for operation op, now ending: word is "ok",
 * "refused" or "failed". */
void	control_outcome(struct control *, unsigned op, const char *word,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Re-attach a client that waited across an upgrade's re-exec. */
void	control_adopt_waiter(struct control *, int fd, unsigned after);
/* Close the socket and every client; remove path when given. */
void	control_close(struct control *, const char *path);

#endif
