#!/usr/bin/env bash
# A real single-node SLURM cluster for tests/slurm, with accounting (slurmdbd
# on a MariaDB of its own), started by hand: this machine kind has no systemd.
#
#   tests/slurm/start.sh         install what is missing, write the config,
#                                start the daemons, wait until the node is idle
#                                (nothing to do when the cluster is up already)
#   tests/slurm/start.sh stop    cancel the jobs left, stop the daemons this
#                                script started, by pid
#   tests/slurm/start.sh status  exit 0 when the cluster answers
#
# Needs root. The config goes to /etc/slurm (where sinfo, sbatch and sacct look,
# also inside jobs); a config there that this script did not write is never
# replaced. Everything else (database, state, logs, pid files) is under $STATE,
# and every start begins from an empty state and database: job ids start at 1.
set -euo pipefail

STATE=${METICULOUS_SLURM_STATE:-/var/lib/meticulous-slurm}
CONF_DIR=/etc/slurm
MARK="# written by meticulous-hydra tests/slurm/start.sh"
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
DB_PORT=${METICULOUS_SLURM_DB_PORT:-3399}
NODE=$(hostname -s)
# Daemons in the order they start; stopped in reverse.
DAEMONS=(mariadbd munged slurmdbd slurmctld slurmd)

say() { echo "slurm: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# pid_of NAME: the pid this script started NAME as, if that process still is
# NAME (a pid file left by a machine restart may name another process now)
pid_of() {
    local pid
    [ -f "$STATE/$1.pid" ] || return 1
    pid=$(cat "$STATE/$1.pid")
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}

alive() { pid_of "$1" >/dev/null; }

# wait_for SECONDS DAEMON WHAT COMMAND...: poll COMMAND until it succeeds;
# fail at once when DAEMON (this script's) has died
wait_for() {
    local seconds=$1 daemon=$2 what=$3
    shift 3
    local deadline=$((SECONDS + seconds)) why
    until "$@" >/dev/null 2>&1; do
        why=
        if [ -n "$daemon" ] && ! alive "$daemon"; then
            why="$daemon exited"
        elif ((SECONDS >= deadline)); then
            why="not ready after ${seconds}s"
        fi
        if [ -n "$why" ]; then
            say "$what: $why; the last lines of the logs in $STATE:"
            tail -n 8 "$STATE"/*.log "$STATE"/mysql/error.log >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.2
    done
}

node_state() { sinfo -h -n "$NODE" -o %t 2>/dev/null; }

node_idle() { [ "$(node_state)" = idle ]; }

status() {
    case "$(node_state)" in idle | mix | alloc) ;; *) return 1 ;; esac
    sacct -n -X -S now >/dev/null 2>&1
}

stop() {
    local i name pid jobs
    if alive slurmctld; then
        jobs=$(squeue -h -o %i 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            local deadline=$((SECONDS + 30))
            while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && ((SECONDS < deadline)); do
                sleep 0.2
            done
        fi
    fi
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        name=${DAEMONS[i]}
        if pid=$(pid_of "$name"); then
            kill "$pid"
            local deadline=$((SECONDS + 20))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        fi
        rm -f "$STATE/$name.pid"
    done
    # a pid file left behind makes the next slurmctld refuse to start
    rm -f "$STATE"/*.daemon.pid /run/slurmctld.pid /run/slurmd.pid /run/slurmdbd.pid
}

install() {
    local missing=()
    for cmd in slurmctld slurmd sbatch sacct slurmdbd munged mariadbd mariadb-install-db; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    [ ${#missing[@]} -eq 0 ] && return
    say "installing ${PACKAGES[*]} (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"$STATE/apt.log" 2>&1 ||
        { tail -n 20 "$STATE/apt.log" >&2; die "apt-get install failed"; }
}

# run_daemon NAME USER COMMAND...: start COMMAND in the foreground of a session
# of its own, detached from our stdout (CI waits for its pipes to close)
run_daemon() {
    local name=$1 user=$2
    shift 2
    if [ "$user" = root ]; then
        setsid "$@" </dev/null >>"$STATE/$name.log" 2>&1 &
    else # setpriv execs: $! is the daemon
        setsid setpriv --reuid="$user" --regid="$user" --init-groups "$@" \
            </dev/null >>"$STATE/$name.log" 2>&1 &
    fi
    local pid=$! deadline=$((SECONDS + 10))
    echo "$pid" >"$STATE/$name.pid"
    # $! is a fork of this shell, then setsid, then setpriv, until the exec of
    # the daemon: wait for that exec (or the end), else pid_of, seeing another
    # name, takes a daemon that is starting for one that has exited
    while [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ] && kill -0 "$pid" 2>/dev/null &&
        ! grep -q '^State:.*zombie' "/proc/$pid/status" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.01
    done
}

write_config() {
    local file
    for file in slurm.conf slurmdbd.conf gres.conf; do
        if [ -f "$CONF_DIR/$file" ] && ! grep -qxF "$MARK" "$CONF_DIR/$file"; then
            die "$CONF_DIR/$file was not written by this script: this machine has a SLURM of its own"
        fi
    done
    mkdir -p "$CONF_DIR"
    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARK
ClusterName=meticulous
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.daemon.pid
SlurmdPidFile=$STATE/slurmd.daemon.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobCompType=jobcomp/none
# a short end for test jobs: SIGKILL 5 s after SIGTERM, nothing past the limit
KillWait=5
OverTimeLimit=0
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
GresTypes=token
# The test jobs mostly wait: more CPUs than the machine's 2 let the scenarios
# run side by side (config_overrides: slurmd takes the numbers given here).
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=32 RealMemory=8000 Gres=token:1 State=UNKNOWN
# debug: the default, never preempted; low: preempted (and requeued) by jobs of
# high; the one gres "token" lets a test aim a preemption at the job holding it
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=OFF
PartitionName=low Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE
PartitionName=high Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOF
    cat >"$CONF_DIR/gres.conf" <<EOF
$MARK
NodeName=$NODE Name=token Count=1
EOF
    cat >"$CONF_DIR/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/slurmdbd.daemon.pid
LogFile=$STATE/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$CONF_DIR/slurmdbd.conf"
}

start_database() {
    local db=$STATE/mysql
    mkdir -p "$db"
    chown mysql:mysql "$db"
    mariadb-install-db --no-defaults --datadir="$db" --user=mysql --skip-test-db \
        --auth-root-authentication-method=socket >"$STATE/mariadb-install.log" 2>&1 ||
        { tail -n 20 "$STATE/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    run_daemon mariadbd mysql mariadbd --no-defaults --datadir="$db" --socket="$db/mysqld.sock" \
        --pid-file="$db/mariadbd.pid" --bind-address=127.0.0.1 --port="$DB_PORT" \
        --innodb-buffer-pool-size=32M --log-error="$db/error.log"
    wait_for 60 mariadbd "mariadbd" mariadb --no-defaults --socket="$db/mysqld.sock" -e "select 1"
    mariadb --no-defaults --socket="$db/mysqld.sock" <<EOF
CREATE DATABASE slurm_acct_db;
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
}

start() {
    [ "$(id -u)" = 0 ] || die "needs root (it installs packages and starts daemons)"
    mkdir -p "$STATE"
    chmod 755 "$STATE"
    if command -v sinfo >/dev/null && status; then
        say "already up: $(sinfo -h -o '%P %t' | tr '\n' ' ')"
        return
    fi
    install
    stop # what is left of a cluster that is not whole
    rm -rf "$STATE/ctld" "$STATE/spool" "$STATE/mysql"
    mkdir -p "$STATE/ctld" "$STATE/spool"
    # a fresh password each start, for a database on 127.0.0.1 that only
    # slurmdbd uses
    DB_PASS=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    write_config
    start_database
    if ! (munge -n | unmunge) >/dev/null 2>&1; then # else: a munged runs already
        mkdir -p /run/munge
        chown munge:munge /run/munge
        run_daemon munged munge munged --foreground
        wait_for 20 munged "munged" sh -c 'munge -n | unmunge'
    fi
    run_daemon slurmdbd root slurmdbd -D
    wait_for 60 slurmdbd "slurmdbd" sacctmgr -n list cluster
    run_daemon slurmctld root slurmctld -D -c -i
    wait_for 60 slurmctld "slurmctld" scontrol ping
    run_daemon slurmd root slurmd -D
    wait_for 60 slurmd "the node $NODE idle" node_idle
    wait_for 60 "" "sacct" sacct -n -X -S now
    say "up in ${SECONDS}s: SLURM $(sinfo -V | cut -d' ' -f2), node $NODE idle, state in $STATE"
}

# sourced (tests/test_slurm_start.py): the functions only
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case "${1:-start}" in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 [start|stop|status]" ;;
esac
