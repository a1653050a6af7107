/* The control socket: line commands from root or fugue's own user, answered
 * with one reply each; reload and upgrade answer only once the outcome is
 * known. And its client, for `fugue -c FILE status|reload|upgrade`. */
#ifndef FUGUE_CONTROL_H
#define FUGUE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_LINE_MAX	256

#include <ev.h>

#include "logging.h"

struct master;

/* One connected client. */
struct ctl_client {
	struct ctl_client *next, *prev;
	struct master	*m;
	ev_io		 io;
	ev_timer	 timer;
	char		 line[CTL_LINE_MAX];
	size_t		 len;
	bool		 waiting;	/* for an operation's outcome */
	unsigned	 after;		/* one that starts after op number */
	struct outbuf	 out;
	size_t		 sent;
};


enum ctl_verb {
	CTL_BAD, CTL_STATUS, CTL_STATUS_JSON, CTL_RELOAD, CTL_UPGRADE,
	CTL_STOP, CTL_QUIT, CTL_REOPEN, CTL_SCALE,
};

/* One command line (without its newline, n bytes, NUL bytes are bad) into
 * a verb and, for scale, its count. Pure: fuzzed. */
enum ctl_verb control_parse(const char *line, size_t n, unsigned *count);

/* Bind the control socket at path (mode 0600, a stale socket replaced).
 * Returns 0 with *fd, or an exit code (75 in use, 73, 78) with err. */
int	control_open(const char *path, int *fd, char *err, size_t len);
/* Serve it from the master's loop. */
void	control_start(struct master *m, int fd);
/* Answer every client waiting for the operation now ending: word is "ok",
 * "refused" or "failed". */
void	control_outcome(struct master *m, const char *word, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));
/* Whether c awaits an outcome, with its fd and the op it waits after. */
bool	control_client_waiting(const struct ctl_client *c, int *fd,
	    unsigned *after);
/* Re-attach a client that waited across an upgrade's re-exec. */
void	control_adopt_waiter(struct master *m, int fd, unsigned after);
/* Close the socket and every client; remove the file when ours. */
void	control_close(struct master *m, bool unlink_file);

/* The status report, as a table or JSON; malloc'd. */
char	*control_status(struct master *m, bool json);


#endif
