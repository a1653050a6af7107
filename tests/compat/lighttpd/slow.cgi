#!/bin/sh
# GET /slow.cgi?ms=N: answers after N ms, and logs when it starts.
ms=${QUERY_STRING#ms=}
echo "slow request started (pid $$)" >&2
sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
printf 'Content-Type: text/plain\r\n\r\nslow done pid %s\n' $$
