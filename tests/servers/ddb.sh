#!/bin/bash
# ddb.sh — DynamoDB Local (AWS's own implementation, Java) for tests, state under one dir.
#
#   ddb.sh start DIR [PORT]   start (or find running) DynamoDB Local, in memory, shared DB;
#                             prints "endpoint=http://127.0.0.1:PORT"
#   ddb.sh stop DIR           stop it by its pid file (TERM, bounded wait, KILL)
#   ddb.sh status DIR         exit 0 and print the endpoint line if it runs
#
# The jar comes from the pinned npm package amplify-dynamodb-simulator in
# tests/servers/node_modules (packaging/setup.sh installs it). DIR holds ddb.pid, ddb.port,
# ddb.log. DynamoDB Local has no option to choose the listen address: it listens on all
# interfaces; clients use 127.0.0.1. -sharedDb: one database whatever the keys and region,
# so the mount, boto3 and the CLI see the same tables.
#
# Environment: DDB_START_TIMEOUT (seconds, default 60), DDB_JAR_DIR (default: the npm package).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JAR_DIR=${DDB_JAR_DIR:-$HERE/node_modules/amplify-dynamodb-simulator/emulator}
TIMEOUT=${DDB_START_TIMEOUT:-60}
PY=/usr/bin/python3

die() { echo "ddb.sh: $*" >&2; exit 1; }
usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

alive() { # PID — running and not a zombie
	[[ -d /proc/$1 ]] && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

# pid of our DynamoDB Local if it runs (its command line names our DIR).
ddb_pid() {
	local f="$DIR/ddb.pid" pid
	[[ -s $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-Dddb.sh.dir=$DIR " || return 1
	alive "$pid" || return 1
	echo "$pid"
}

free_port() {
	"$PY" - <<'EOF'
import random, socket, sys
for _ in range(2000):
    p = random.randrange(20000, 32700)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no obstacle
    try:
        s.bind(("0.0.0.0", p))  # DynamoDB Local listens on all interfaces
        print(p)
        sys.exit(0)
    except OSError:
        pass
    finally:
        s.close()
sys.exit("no free port found")
EOF
}

# any HTTP answer to ListTables (400 without a signature is fine: the server is up)
answers() {
	local code
	code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' -X POST \
		-H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
		-H 'Content-Type: application/x-amz-json-1.0' \
		-d '{}' "http://127.0.0.1:$1/" || true)
	[[ -n $code && $code != 000 ]]
}

cmd_start() { # [PORT]
	mkdir -p "$DIR"
	DIR=$(cd "$DIR" && pwd)
	exec 9>"$DIR/.ddb.lock"
	flock -w 120 9 || die "another ddb.sh holds $DIR/.ddb.lock"
	local port pid deadline
	if pid=$(ddb_pid); then
		port=$(<"$DIR/ddb.port")
		[[ -z ${1:-} || $1 == "$port" ]] ||
			echo "ddb.sh: note: already running on port $port; ignoring requested $1" >&2
		echo "endpoint=http://127.0.0.1:$port"
		return 0
	fi
	[[ -e $JAR_DIR/DynamoDBLocal.jar ]] ||
		die "missing $JAR_DIR/DynamoDBLocal.jar — run packaging/setup.sh (npm ci in tests/servers)"
	command -v java >/dev/null || die "java not found — run packaging/setup.sh (default-jre-headless)"
	port=${1:-$(free_port)} || die "no free TCP port"
	"$PY" -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(("0.0.0.0",int(sys.argv[1])))' "$port" 2>/dev/null ||
		die "port $port is in use"
	mkdir -p "$DIR/ddb-tmp"
	local off=0
	[[ -e $DIR/ddb.log ]] && off=$(stat -c %s "$DIR/ddb.log")
	# -Dddb.sh.dir marks the process as ours for stop. Small heap and C1 only: starts faster
	# and idles smaller; the test load is light.
	(
		cd "$JAR_DIR"
		exec 9>&- java -Dddb.sh.dir="$DIR" -Djava.io.tmpdir="$DIR/ddb-tmp" \
			-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k -Xms16m -Xmx512m \
			-Djava.library.path="$JAR_DIR/DynamoDBLocal_lib" -jar DynamoDBLocal.jar \
			-inMemory -sharedDb -disableTelemetry -port "$port" \
			</dev/null >>"$DIR/ddb.log" 2>&1
	) &
	pid=$!
	echo "$pid" >"$DIR/ddb.pid"
	echo "$port" >"$DIR/ddb.port"
	deadline=$((SECONDS + TIMEOUT))
	while :; do
		alive "$pid" || die "DynamoDB Local exited during start; see $DIR/ddb.log"
		# on a failed bind it logs the exception and hangs instead of exiting
		if tail -c +$((off + 1)) "$DIR/ddb.log" | grep -q 'BindException'; then
			cmd_stop
			die "DynamoDB Local could not listen on port $port; see $DIR/ddb.log"
		fi
		# ready when it answers and the listener is this java (not another server on the port)
		if ss -ltnpH "( sport = :$port )" 2>/dev/null | grep -q "pid=$pid," && answers "$port"; then
			break
		fi
		if ((SECONDS >= deadline)); then
			cmd_stop
			die "DynamoDB Local did not answer on port $port within ${TIMEOUT}s; see $DIR/ddb.log"
		fi
		sleep 0.1
	done
	echo "endpoint=http://127.0.0.1:$port"
}

cmd_stop() {
	[[ -d $DIR ]] || return 0
	DIR=$(cd "$DIR" && pwd)
	local pid i
	pid=$(ddb_pid) || { rm -f "$DIR/ddb.pid"; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		echo "ddb.sh: DynamoDB Local (pid $pid) ignored TERM for 10s; killing" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$DIR/ddb.pid"
}

cmd_status() {
	DIR=$(cd "$DIR" && pwd)
	local pid
	pid=$(ddb_pid) || { echo "ddb: stopped"; return 1; }
	echo "ddb: running (pid $pid)"
	echo "endpoint=http://127.0.0.1:$(<"$DIR/ddb.port")"
}

[[ $# -ge 2 ]] || usage
CMD=$1 DIR=$2
shift 2
case $CMD in
start) cmd_start "${1:-}" ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) usage ;;
esac
