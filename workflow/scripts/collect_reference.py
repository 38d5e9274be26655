"""Keep a finished run as a reference: its claims and summary tables, with the commits, machine and wall
times that made them, in reference/<name>/, so that a user can compare a run of their own
(`ilrepro compare-reference`).

    python workflow/scripts/collect_reference.py --run /path/to/checkout --configfile config/fmnist_paper.yaml --out reference/fmnist

A reference run may have run only part of a config (what fits the machine): the claims whose tables
exist are evaluated (exactly as the pipeline's claims rule does), the others are listed as not run.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from ilrepro.claims import claim_inputs, evaluate_claims
from ilrepro.config import load_merged_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, type=Path, help="the checkout that ran the config (its results/)")
    ap.add_argument("--configfile", required=True)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    config = load_merged_config([args.configfile], base=None)
    args.out.mkdir(parents=True, exist_ok=True)

    ran, not_run = {}, []
    for name, claim in config.get("claims", {}).items():
        if all((args.run / p).exists() for p in claim_inputs({name: claim}).values()):
            ran[name] = claim
        else:
            not_run.append(name)
    inputs = {k: args.run / p for k, p in claim_inputs(ran).items()}
    evaluate_claims(ran, inputs).to_csv(args.out / "claims.csv", index=False)
    (args.out / "claims_not_run.txt").write_text("".join(f"{n}\n" for n in not_run))

    rows = []
    for summary in sorted((args.run / "results").glob("*/summary.csv")):
        shutil.copy(summary, args.out / f"{summary.parent.name}.summary.csv")
    for meta_file in sorted((args.run / "results" / "runs").glob("*/*/*/meta.json")):
        m = json.loads(meta_file.read_text())
        rows.append({
            "run": str(meta_file.parent.relative_to(args.run / "results" / "runs")),
            "status": m["status"], "update_path": m.get("update_path", ""), "git_commit": m.get("git_commit") or "",
            "job_wall_s": round(m["wall_s"], 1), "job_members": m.get("job", {}).get("members", m.get("members")),
            "updates_per_s": round(m["updates_per_s"], 1), "hardware": m.get("hardware", ""), "threads": m.get("threads"),
            "torch": m.get("versions", {}).get("torch", ""),
        })
    pd.DataFrame(rows).to_csv(args.out / "runs.csv", index=False)
    print(f"{len(ran)} claims evaluated, {len(not_run)} not run; {len(rows)} runs listed in {args.out}")


if __name__ == "__main__":
    main()
