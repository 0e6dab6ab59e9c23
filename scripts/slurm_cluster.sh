#!/bin/bash
# A single-node SLURM cluster on this machine, for trying scripts/slurm_search.sh (and for CI).
#
#   sudo scripts/slurm_cluster.sh start        # writes .slurm/ and starts munged, slurmctld, slurmd
#   export SLURM_CONF=$PWD/.slurm/slurm.conf    # what start prints: sbatch, squeue, sinfo find it
#   sudo scripts/slurm_cluster.sh stop          # stops the three daemons (the folder stays)
#   scripts/slurm_cluster.sh status             # sinfo, or why the cluster does not answer
#
# Needs Debian's packages (apt install slurm-wlm munge) and root: slurmd starts each job as its
# user. Everything it writes (configuration, munge key and socket, state, logs) goes into one
# folder, QG_SLURM_DIR (default .slurm in the working directory); nothing goes into /etc, and
# no systemd is needed. The daemons use ports 16817 and 16818, not SLURM's usual 6817 and 6818,
# so they do not collide with a real installation. The node is this machine as `slurmd -C` sees
# it (its cores and memory); the plugins need no cgroups (proctrack/linuxproc, task/none) and
# there is no accounting daemon, so wait for jobs with `sbatch --wait`, not with sacct.
set -euo pipefail

DIR=$(realpath -m "${QG_SLURM_DIR:-.slurm}")
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

write_configuration() {
  mkdir -p "$DIR"/{munge,state,spool,log,run}
  chmod 0755 "$DIR/munge"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  fi
  chmod 0600 "$DIR/munge/munge.key"
  local node user
  node=$(slurmd -C | head -1)  # NodeName=<host> CPUs=... RealMemory=...
  user=$(id -un)
  cat >"$CONF" <<EOF
# Written by scripts/slurm_cluster.sh: one node, this machine.
ClusterName=qg-local
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=$user
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

running() {  # is the daemon of pid file $1 alive?
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

start() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null \
    || { echo "SLURM or munge is not installed: apt install slurm-wlm munge" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "Run as root (sudo): slurmd starts jobs as their user." >&2; exit 1; }
  write_configuration
  if ! running "$DIR/run/munged.pid"; then
    munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
      --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
      --seed-file="$DIR/munge/munged.seed"
  fi
  running "$DIR/run/slurmctld.pid" || slurmctld -i
  running "$DIR/run/slurmd.pid" || slurmd
  for _ in $(seq 60); do  # the node registers within seconds
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "SLURM is up: export SLURM_CONF=$CONF"
      return 0
    fi
    sleep 1
  done
  echo "SLURM did not come up in 60 s; its logs are in $DIR/log:" >&2
  tail -n 5 "$DIR"/log/*.log >&2 || true
  exit 1
}

stop() {
  for daemon in slurmd slurmctld munged; do
    if running "$DIR/run/$daemon.pid"; then
      kill "$(cat "$DIR/run/$daemon.pid")"
    fi
  done
  echo "Stopped the SLURM daemons of $DIR."
}

status() {
  [ -f "$CONF" ] || { echo "No cluster configured in $DIR (run: sudo $0 start)." >&2; exit 1; }
  sinfo || { echo "SLURM does not answer; logs in $DIR/log." >&2; exit 1; }
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status  (folder: \$QG_SLURM_DIR, default .slurm)" >&2; exit 2 ;;
esac
