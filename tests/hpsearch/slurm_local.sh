#!/bin/bash
# A private one-node SLURM on localhost (munged + slurmctld + slurmd), everything under DIR.
#
#   tests/hpsearch/slurm_local.sh start DIR   # then: export SLURM_CONF=DIR/slurm.conf; sbatch ...
#   tests/hpsearch/slurm_local.sh stop DIR    # cancels DIR's jobs, stops exactly the daemons start wrote to DIR/*.pid
#
# Needs the Debian packages slurm-wlm and munge, and root (slurmd runs jobs as their user).
# CPUS (default 2) sets the node's CPUs.  Each daemon runs in the foreground in its own session;
# its pid is the one recorded, so stop never touches another SLURM or munge on the machine.
set -u
ACTION=${1:?start or stop}
DIR=$(realpath -m "${2:?state folder}")
export SLURM_CONF=$DIR/slurm.conf
DAEMONS=(slurmd slurmctld munged)  # stop order

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }

write_config() {
  mkdir -p "$DIR/state" "$DIR/spool" && chmod 700 "$DIR"
  dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 status=none && chmod 400 "$DIR/munge.key"
  cat > "$SLURM_CONF" <<EOF
ClusterName=clrnn-test
SlurmctldHost=localhost
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pidfile
SlurmdPidFile=$DIR/slurmd.pidfile
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=10
NodeName=localhost CPUs=${CPUS:-2} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

launch() {  # NAME COMMAND...: in the foreground of its own session, pid to DIR/NAME.pid
  local name=$1; shift
  setsid "$@" > "$DIR/$name.out" 2>&1 < /dev/null &
  echo $! > "$DIR/$name.pid"
}

wait_for() {  # SECONDS COMMAND...: until COMMAND succeeds
  local seconds=$1; shift
  for _ in $(seq "$((seconds * 5))"); do "$@" > /dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

node_idle() { sinfo --noheader --nodes=localhost --format=%t | grep -qx idle; }

start() {
  write_config
  launch munged munged --foreground --force --socket="$DIR/munge.socket" --key-file="$DIR/munge.key" \
    --pid-file="$DIR/munged.pidfile" --seed-file="$DIR/munged.seed" --log-file="$DIR/munged.log"
  wait_for 10 test -S "$DIR/munge.socket" || { echo "munged did not start: $(tail -3 "$DIR"/munged.*)" >&2; return 1; }
  launch slurmctld slurmctld -D -i
  launch slurmd slurmd -D -N localhost
  if ! wait_for 30 node_idle; then
    echo "SLURM did not come up; last lines of its logs:" >&2
    tail -n 5 "$DIR"/slurmctld.log "$DIR"/slurmd.log "$DIR"/*.out >&2
    return 1
  fi
  echo "SLURM up: export SLURM_CONF=$SLURM_CONF"
}

stop() {
  if [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2> /dev/null; then
    scancel --full --quiet --user="$(id -un)" 2> /dev/null  # this controller's jobs only (SLURM_CONF is DIR's)
    wait_for 30 test -z "$(squeue --noheader 2> /dev/null)"
  fi
  for name in "${DAEMONS[@]}"; do
    [ -f "$DIR/$name.pid" ] || continue
    pid=$(cat "$DIR/$name.pid")
    kill -TERM "$pid" 2> /dev/null && wait_for 20 eval "! kill -0 $pid" || kill -KILL "$pid" 2> /dev/null
    rm -f "$DIR/$name.pid"
  done
}

case $ACTION in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
