#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (localhost), for the SLURM test and for developers.
#   .ci/slurm-up.sh          install slurm-wlm + munge if missing, start munged/slurmctld/slurmd, wait
# Idempotent: a cluster that already answers is left alone. It never overwrites a slurm.conf it did not
# write (a real cluster's), and it needs root (it writes /etc/slurm, /etc/munge and starts daemons).
# Exit status 0: `sinfo` shows the node ready. Otherwise a message on stderr says why not.
set -euo pipefail

MARK="# written by ilrepro .ci/slurm-up.sh"
CONF=/etc/slurm/slurm.conf
say() { echo "slurm-up: $*" >&2; }

node_ready() {  # the node answers and can take jobs
  local state
  state=$(timeout 10 sinfo -h -N -o '%T' 2>/dev/null | head -1) || return 1
  case "$state" in idle*|mixed*|allocated*|completing*) return 0 ;; *) return 1 ;; esac
}

# A cluster that answers is used as it is, unless it is ours and we may bring its config up to date.
if command -v sinfo >/dev/null 2>&1 && node_ready; then
  if [ "$(id -u)" -ne 0 ] || ! grep -qsF "$MARK" "$CONF"; then
    say "a SLURM cluster already answers: $(sinfo -h -N -o '%N %T %c CPUs %m MB' | head -1)"
    exit 0
  fi
fi
if [ "$(id -u)" -ne 0 ]; then
  say "not root: cannot install or start SLURM here"; exit 2
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || { say "no slurmctld/munged and no apt-get to install them"; exit 2; }
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 || { say "apt-get install slurm-wlm munge failed"; exit 2; }
  fi
fi
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  say "$CONF exists and was not written by this script (a real cluster?); not touching it, and no node is ready"
  exit 2
fi

# munge: a key, then the daemon (as root it needs --force)
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  munged --force >/dev/null 2>&1 || { say "munged would not start"; exit 2; }
  sleep 1
  munge -n | unmunge >/dev/null 2>&1 || { say "munge does not work"; exit 2; }
fi

# slurm.conf for one node: this host, all its CPUs, ~80% of its memory, one default partition
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > "$CONF.new" <<CONFEOF
$MARK
ClusterName=ilrepro
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=other Nodes=$host Default=NO MaxTime=INFINITE State=UP
CONFEOF
changed=0
if [ -e "$CONF" ] && cmp -s "$CONF" "$CONF.new"; then rm "$CONF.new"; else mv "$CONF.new" "$CONF"; changed=1; fi

# daemons (only those not running yet): a pid file names a live process of that daemon (after a reboot
# a stale pid file's number may belong to any other process)
running() { local pid; pid=$(cat "/run/$1.pid" 2>/dev/null) && [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; }
if [ "$changed" = 1 ] && running slurmctld; then timeout 20 scontrol reconfigure >/dev/null 2>&1 || true; fi
running slurmctld || slurmctld || { say "slurmctld would not start (see /var/log/slurm/slurmctld.log)"; exit 2; }
running slurmd || slurmd || { say "slurmd would not start (see /var/log/slurm/slurmd.log)"; exit 2; }

for _ in $(seq 60); do
  if node_ready; then
    say "ready: $(sinfo -h -N -o '%N %T %c CPUs %m MB' | head -1)"
    exit 0
  fi
  # a node left DOWN/DRAINED by an earlier run is put back into service
  timeout 10 scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
  sleep 0.5
done
say "the node did not become ready: $(sinfo -h -N -o '%N %T %E' 2>&1 | head -1)"
exit 2
