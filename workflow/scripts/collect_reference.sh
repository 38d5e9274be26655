#!/usr/bin/env bash
# Copy a finished run's claims and summary tables into reference/<name>/, with the commit(s) that made
# them, the machine and the wall times (the jobs' own benchmark files), so that a user can compare a run
# of their own:  bash workflow/scripts/collect_reference.sh <run dir> <config name> <reference dir>
set -euo pipefail
run=${1:?run directory (a checkout that ran the config)}; name=${2:?config name, e.g. fmnist_paper}; out=${3:?reference dir}
mkdir -p "$out"
cp "$run/results/claims/$name.csv" "$out/claims.csv" 2>/dev/null || echo "no claims table yet: $run/results/claims/$name.csv"
for s in "$run"/results/*/summary.csv; do
  e=$(basename "$(dirname "$s")"); cp "$s" "$out/$e.summary.csv"
done
python - "$run" "$out" <<'PY'
import csv, json, pathlib, platform, sys
run, out = map(pathlib.Path, sys.argv[1:])
rows = []
for meta in sorted(run.glob("results/runs/*/*/*/meta.json")):
    m = json.loads(meta.read_text())
    rows.append({"run": str(meta.parent.relative_to(run / "results/runs")), "commit": m.get("git_commit") or "",
                 "status": m["status"], "update_path": m.get("update_path", ""), "job_wall_s": round(m["wall_s"], 1),
                 "job_members": m.get("job", {}).get("members", m.get("members")), "cpu": m.get("hardware", "")})
with open(out / "runs.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["run"])
    w.writeheader(); w.writerows(rows)
print(f"{len(rows)} runs listed in {out / 'runs.csv'}")
PY
