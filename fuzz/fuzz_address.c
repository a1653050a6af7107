/*
 * Listening addresses: parse_address() on any string. On success the
 * canonical text fits, names the socket type ("udp:", "unixgram:"), is
 * itself a valid address and parses to the same text, type and socket
 * address (listeners are matched by that text across a reload and an
 * upgrade); on failure the reason is filled.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct address a, b;
	char err[256], err2[256];
	char *s;

	if (size > 4096)
		return -1;
	s = fuzz_str(data, size);
	memset(err, 'X', sizeof(err));
	if (parse_address(s, &a, err, sizeof(err)) == -1) {
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0],
		    "no reason given for a bad address \"%s\"", s);
		free(s);
		return 0;
	}
	FUZZ_CHECK(memchr(a.text, '\0', sizeof(a.text)) != NULL,
	    "text not terminated for \"%s\"", s);
	FUZZ_CHECK(a.salen > 0 && a.salen <= sizeof(a.sa), "salen %u",
	    (unsigned)a.salen);
	FUZZ_CHECK(a.family == a.sa.ss_family, "family %d, sa family %d",
	    a.family, a.sa.ss_family);
	/* The type is in the text: "udp:" and "unixgram:" are datagrams. */
	FUZZ_CHECK(a.type == ((strncmp(a.text, "udp:", 4) == 0 ||
	    strncmp(a.text, "unixgram:", 9) == 0) ? SOCK_DGRAM : SOCK_STREAM),
	    "type %d for \"%s\"", a.type, a.text);
	switch (a.family) {
	case AF_INET:
		FUZZ_CHECK(a.salen == sizeof(struct sockaddr_in), "v4 salen");
		FUZZ_CHECK(((struct sockaddr_in *)&a.sa)->sin_port != 0,
		    "port 0 from \"%s\"", s);
		break;
	case AF_INET6:
		FUZZ_CHECK(a.salen == sizeof(struct sockaddr_in6), "v6 salen");
		FUZZ_CHECK(((struct sockaddr_in6 *)&a.sa)->sin6_port != 0,
		    "port 0 from \"%s\"", s);
		break;
	case AF_UNIX: {
		struct sockaddr_un *sun = (struct sockaddr_un *)&a.sa;
		size_t n = strnlen(sun->sun_path, sizeof(sun->sun_path));

		FUZZ_CHECK(n < sizeof(sun->sun_path), "sun_path not terminated");
		FUZZ_CHECK(sun->sun_path[0] == '/', "relative socket path %s",
		    sun->sun_path);
		FUZZ_CHECK(a.salen == offsetof(struct sockaddr_un, sun_path) +
		    n + 1, "unix salen %u for %zu bytes", (unsigned)a.salen, n);
		FUZZ_CHECK(strcmp(strchr(a.text, ':') + 1, sun->sun_path) == 0 &&
		    strncmp(a.text, a.type == SOCK_DGRAM ? "unixgram:" :
		    "unix:", a.type == SOCK_DGRAM ? 9 : 5) == 0,
		    "text %s, path %s", a.text, sun->sun_path);
		break;
	}
	default:
		FUZZ_CHECK(0, "family %d from \"%s\"", a.family, s);
	}
	/* The canonical form is a fixed point. */
	FUZZ_CHECK(parse_address(a.text, &b, err2, sizeof(err2)) == 0,
	    "canonical \"%s\" (from \"%s\") is refused: %s", a.text, s, err2);
	FUZZ_CHECK(strcmp(a.text, b.text) == 0, "\"%s\" -> \"%s\" -> \"%s\"",
	    s, a.text, b.text);
	FUZZ_CHECK(a.salen == b.salen && memcmp(&a.sa, &b.sa, a.salen) == 0 &&
	    a.type == b.type,
	    "\"%s\" and its canonical \"%s\" differ", s, a.text);
	free(s);
	return 0;
}
