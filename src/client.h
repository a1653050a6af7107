/* The client side: what `fugue -s`, `status`, `reload` and `upgrade` do. */
#ifndef FUGUE_CLIENT_H
#define FUGUE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* -s quit|stop|reload|upgrade|reopen|incr|decr to the master holding the
 * pid file's lock, within timeout_ms. */
int	client_signal(const struct config *c, const char *name,
	    int64_t timeout_ms);
/* status [--json], reload, upgrade: through control_socket, waiting for
 * the answer at most timeout_ms; reload and upgrade without it signal
 * through pid_file. */
int	client_action(const struct config *c, const char *action, bool json,
	    int64_t timeout_ms);
/* How long a client waits without -w: 10s for status and -s; for the -d
 * launcher, reload and upgrade, what the master may take to answer (the
 * first generation's ready_timeout; a queued reload's and its own) and 30s.
 * action: status, reload, upgrade, or NULL (-s, -d). */
int64_t	client_default_timeout(const struct config *c, const char *action,
	    bool daemonize);
/* After ms, the line "fugue: <fmt...>" on stderr and exit 124, whatever
 * the process is waiting for. */
void	client_deadline(int64_t ms, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Send cmd to the control socket at path and copy the answer to stdout.
 * Returns 0 for "ok", 78 for "refused", 69 for "failed" or no answer. */
int	control_request(const char *path, const char *cmd);

#endif
