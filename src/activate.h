/* Sockets handed to fugue as it starts: by a socket unit (socket
 * activation) or, after a restart, by systemd's fd store. */
#ifndef FUGUE_ACTIVATE_H
#define FUGUE_ACTIVATE_H

#include <stddef.h>

#include "config.h"
#include "gen.h"

/* At most this many (LISTEN_FDS): each address once from a socket unit
 * and once from the fd store. */
#define ACTIVATE_MAX	(2 * CONFIG_LISTEN_MAX)

/*
 * The sockets in LISTEN_FDS (with fugue's own LISTEN_PID) are used instead
 * of binding, each matched to the [listen] address it is bound to, and
 * added to all. One from the fd store (its LISTEN_FDNAMES entry is the
 * name fugue gives that address) that matches no address any more is
 * closed and removed from the store; the same address twice (a socket
 * unit's, and its copy in the store) is taken once. Returns 0, or 78 with
 * err when a socket is not one fugue can use or a socket unit's matches
 * no address.
 */
int	activate_listeners(const struct config *c, struct lsock_list *all,
	    char *err, size_t len);

#endif
