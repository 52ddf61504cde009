#!/usr/bin/env bash
# A real one-node Slurm cluster on this host for the `slurm` tests (Debian's
# slurm-wlm and munge): localhost with two CPU slots, no cgroups, no accounting
# database. Installs what is missing, writes the configuration, starts munged,
# slurmctld and slurmd, and waits until the node is idle. Idempotent: a second run
# finds the daemons running and only checks the node.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq slurm-wlm munge >&2
fi

node=$(hostname -s)
conf=/etc/slurm/slurm.conf
# KillWait: seconds between the SIGTERM and the SIGKILL of a job that is cancelled or
# hits its time limit (the grace a worker's runs get to hand themselves back).
want=$(cat <<EOF
# Written by .ci/slurm.sh: one node, this host, two CPUs; test use only.
ClusterName=rlmrec-ci
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=10
MinJobAge=600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
)
as_root mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
    printf '%s\n' "$want" | as_root tee "$conf" >/dev/null
    changed=1
fi

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# munge: a key (the package usually makes one), then the daemon as its own user.
if [ ! -s /etc/munge/munge.key ]; then
    as_root mungekey --create >&2 2>/dev/null || as_root /usr/sbin/create-munge-key -f >&2
    as_root chown munge:munge /etc/munge/munge.key
    as_root chmod 400 /etc/munge/munge.key
fi
as_root mkdir -p /run/munge /var/log/munge /var/lib/munge
as_root chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! alive /run/munge/munged.pid; then
    as_root runuser -u munge -- /usr/sbin/munged >&2
fi
for _ in $(seq 20); do munge -n >/dev/null 2>&1 && break; sleep 0.5; done
munge -n | unmunge >/dev/null

# A changed configuration reaches running daemons only by a restart: stop the ones
# started from our pid files (never anything else), then start afresh.
if [ -n "${changed:-}" ]; then
    for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
        if alive "$pidfile"; then
            pid=$(cat "$pidfile")
            as_root kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
    done
fi
alive /run/slurmctld.pid || as_root slurmctld >&2
alive /run/slurmd.pid || as_root slurmd >&2

# Wait until the node takes jobs; a node left down or drained by an earlier run
# (a killed slurmd) is resumed once.
for i in $(seq 60); do
    state=$(sinfo -h -n "$node" -o %t 2>/dev/null | head -1 || true)
    case "$state" in
        idle|mix|alloc) break ;;
        down*|drain*|fail*) [ "$i" = 10 ] && as_root scontrol update NodeName="$node" State=RESUME >&2 ;;
    esac
    sleep 1
done
state=$(sinfo -h -n "$node" -o %t | head -1)
case "$state" in
    idle|mix|alloc) ;;
    *) echo "slurm: node $node is '$state', not idle; see /var/log/slurm/" >&2; exit 1 ;;
esac
echo "slurm: node $node $state" >&2
