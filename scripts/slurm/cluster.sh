#!/bin/bash
# A single-node SLURM cluster (munged, slurmctld, slurmd from Debian's slurm-wlm and munge
# packages) whose config, key, sockets, logs and state all live in one directory.
#   scripts/slurm/cluster.sh start [STATE_DIR]   then: export SLURM_CONF=STATE_DIR/slurm.conf
#   scripts/slurm/cluster.sh stop [STATE_DIR]
# STATE_DIR defaults to $SEQLAB_SLURM_STATE, else /tmp/seqlab-slurm. Ports: $SEQLAB_SLURM_PORT
# (slurmctld) and the next one (slurmd), default 6817.
set -euo pipefail
COMMAND=${1:-}
STATE=${2:-${SEQLAB_SLURM_STATE:-/tmp/seqlab-slurm}}
PORT=${SEQLAB_SLURM_PORT:-6817}
HERE=$(cd "$(dirname "$0")" && pwd)
export SLURM_CONF=$STATE/slurm.conf

pid_of() { [[ -s $STATE/$1.pid ]] && cat "$STATE/$1.pid"; }

start() {
    for tool in munged slurmctld slurmd sbatch sinfo; do
        command -v "$tool" > /dev/null || {
            echo "error: $tool not found; install it: apt-get install -y slurm-wlm munge" >&2
            exit 1
        }
    done
    mkdir -p "$STATE"/{munge,ctld,slurmd}
    chmod 700 "$STATE/munge"
    if [[ ! -s $STATE/munge/munge.key ]]; then
        dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
        chmod 400 "$STATE/munge/munge.key"
    fi
    # --force: munged refuses to run as root, and the state directory may sit under /tmp
    munged --force --socket="$STATE/munge/munge.socket" --key-file="$STATE/munge/munge.key" \
        --pid-file="$STATE/munged.pid" --log-file="$STATE/munged.log" \
        --seed-file="$STATE/munge/munged.seed"
    local node
    node=$(hostname -s)
    sed -e "s|@STATE@|$STATE|g" -e "s|@HOST@|$node|g" -e "s|@NODE@|$node|g" \
        -e "s|@USER@|$(id -un)|g" -e "s|@CPUS@|$(nproc)|g" \
        -e "s|@CTLD_PORT@|$PORT|g" -e "s|@SLURMD_PORT@|$((PORT + 1))|g" \
        "$HERE/slurm.conf.in" > "$SLURM_CONF"
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF" -N "$node"
    for _ in $(seq 60); do  # the node registers and turns idle
        if [[ $(sinfo -h -N -o %T 2> /dev/null) == idle ]]; then
            echo "SLURM is up; run: export SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 1
    done
    echo "error: the node did not become idle; see $STATE/slurmctld.log and $STATE/slurmd.log" >&2
    sinfo -N -l >&2 || true
    exit 1
}

stop() {
    for daemon in slurmd slurmctld; do
        pid=$(pid_of $daemon || true)
        if [[ -n $pid ]] && kill "$pid" 2> /dev/null; then
            for _ in $(seq 30); do kill -0 "$pid" 2> /dev/null || break; sleep 1; done
        fi
    done
    [[ -S $STATE/munge/munge.socket ]] && munged --stop --socket="$STATE/munge/munge.socket" || true
    echo "SLURM stopped; logs and state remain in $STATE"
}

case $COMMAND in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop [STATE_DIR]" >&2; exit 2 ;;
esac
