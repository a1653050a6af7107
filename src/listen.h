/* Listening sockets: bind (all or nothing), adopt, describe, close. */
#ifndef FUGUE_LISTEN_H
#define FUGUE_LISTEN_H

#include <sys/types.h>
#include <stdbool.h>

#include "config.h"

struct listener {
	struct address	 addr;
	int		 fd;
	dev_t		 dev;		/* UNIX: the socket file we created */
	ino_t		 ino;
};

/*
 * Bind and listen on a (a datagram socket is only bound), close-on-exec
 * and non-blocking (what every worker gets; spawn sets it again for each
 * one). UNIX sockets: a stale socket
 * file (nobody answers, ours or socket_owner's) is replaced, anything else
 * is refused; the socket is bound at its own path (getsockname() names it)
 * and given socket_mode and socket_owner before listen(). Returns 0, or an
 * exit code (75 in use, 73 cannot create the file, 71 other) with err
 * filled.
 */
int	listen_open(struct listener *l, const struct address *a, int backlog,
	    int mode, uid_t uid, gid_t gid, char *err, size_t len);

/* What listen_open would find short of binding (fugue -t): a TCP address
 * is this host's (a socket is bound to it on port 0, then closed); a UNIX
 * socket's directory is there and its path, if taken, by a socket. Returns
 * 0, or the exit code listen_open would, with err. */
int	listen_check(const struct address *a, char *err, size_t len);

/* Close; with unlink, remove a UNIX socket file if it is still ours. */
void	listen_close(struct listener *l, bool unlink_file);

/* What a listening stream socket or a bound datagram socket fd is bound
 * to, in the canonical text of parse_address (socket activation matches on
 * it). -1 if neither. */
int	listen_describe(int fd, struct address *a);

/* LISTEN_FDNAMES entry, and FDNAME= in systemd's fd store, for an address
 * (printable ASCII without ':', as systemd wants). */
void	listen_fdname(const struct address *a, char *buf, size_t len);

#endif
