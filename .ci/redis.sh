#!/usr/bin/env bash
# Make sure a Redis answers on 127.0.0.1:6379 for the real-Redis (integration) tests.
#
# Already running: says so. Not running and redis-server installed: starts it (no
# persistence, daemonized) and waits until it answers. No redis-server: says how to
# enable the tests, which then skip. Always exits 0: a missing Redis is not a CI failure
# of this script, the tests report it.
set -u

HOST=127.0.0.1
PORT=6379
LOGDIR=/var/log/redis
DATADIR=/var/lib/redis

ping_redis() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null)" = "PONG" ]
        return
    fi
    # no redis-cli: speak RESP over bash's /dev/tcp
    local reply=""
    { exec 3<>"/dev/tcp/$HOST/$PORT"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    read -r -t 2 reply <&3 || true
    exec 3<&- 3>&-
    [ "${reply%$'\r'}" = "+PONG" ]
}

if ping_redis; then
    echo "redis.sh: Redis already answers on $HOST:$PORT; nothing to do"
    exit 0
fi

if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis.sh: no Redis on $HOST:$PORT and redis-server is not installed;" \
         "the real-Redis tests will skip (start redis-server or set" \
         "ADSREPLAY_REDIS_URL=redis://host:6379/15)"
    exit 0
fi

if ! mkdir -p "$DATADIR" "$LOGDIR" 2>/dev/null || [ ! -w "$DATADIR" ] || [ ! -w "$LOGDIR" ]; then
    DATADIR="${TMPDIR:-/tmp}/adsreplay-redis"
    LOGDIR="$DATADIR"
    mkdir -p "$DATADIR"
fi

echo "redis.sh: starting redis-server on $HOST:$PORT (log $LOGDIR/ci.log)"
redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$PORT" --save "" --appendonly no \
    --dir "$DATADIR" --logfile "$LOGDIR/ci.log"

for _ in $(seq 50); do
    if ping_redis; then
        echo "redis.sh: Redis answers on $HOST:$PORT"
        exit 0
    fi
    sleep 0.1
done
echo "redis.sh: redis-server did not answer within 5 s; see $LOGDIR/ci.log" \
     "(the real-Redis tests will skip)"
exit 0
