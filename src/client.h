/* The client side: what `fugue -s`, `status`, `reload` and `upgrade` do. */
#ifndef FUGUE_CLIENT_H
#define FUGUE_CLIENT_H

#include <stdbool.h>

#include "config.h"

/* -s quit|stop|reload|upgrade|reopen|incr|decr to the pid in pid_file. */
int	client_signal(const struct config *c, const char *name);
/* status [--json], reload, upgrade: through control_socket, waiting for
 * the answer; reload and upgrade without it signal through pid_file. */
int	client_action(const struct config *c, const char *action, bool json);
/* Send cmd to the control socket at path and copy the answer to stdout.
 * Returns 0 for "ok", 78 for "refused", 69 for "failed" or no answer. */
int	control_request(const char *path, const char *cmd);

#endif
