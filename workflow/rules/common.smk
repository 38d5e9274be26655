# Config validation, the run table and helpers shared by every rule. Paths come from ilrepro.layout,
# the one home of the results/ and figures/ layout; resources from ilrepro.costs.
import json
import shlex

# (the Snakefile puts this checkout's src/ first on sys.path: SRC)
from ilrepro import costs  # noqa: E402
from ilrepro import experiments as ex  # noqa: E402
from ilrepro import layout as L  # noqa: E402
from ilrepro.claims import claim_inputs  # noqa: E402
from ilrepro.config import ConfigError, validate_config  # noqa: E402

# The schema that ships in the package (src/ilrepro/schemas/config.schema.yaml, Snakemake's own
# validator, defaults filled in) and the checks a schema cannot express: the same call as the CLI's.
try:
    validate_config(config, notebooks=Path(workflow.basedir) / L.NOTEBOOKS)
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None

ENV = "../../environment.yml"
# this config's claims table: results/claims/<config>.csv (config/config.yaml -> config, paper.yaml -> paper)
CLAIMS = L.claims_file(L.config_name(workflow.configfiles))
# Rules run the library from this checkout, installed or not.
# (Snakemake formats the prefix too, hence the quadrupled braces.)
# `logged LOG CMD...` (workflow/scripts/logged.sh) runs a job's command into its log and, if it fails,
# tells Snakemake's terminal, even when the log could not be written (a full disk).
LOGGED = shlex.quote(str(Path(workflow.basedir) / "workflow" / "scripts" / "logged.sh"))
shell.prefix(f"set -euo pipefail; export PYTHONPATH={shlex.quote(SRC)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; source {LOGGED}; ")


wildcard_constraints:
    exp=r"[A-Za-z][A-Za-z0-9_]*",
    algo=r"[A-Za-z][A-Za-z0-9_]*",
    fig=r"[A-Za-z][A-Za-z0-9_]*",
    name=r"[A-Za-z][A-Za-z0-9_]*",


def run_files(exp, name):
    return [r.file(name) for r in ex.runs(config, exp)]


def job_spec_arg(job):
    return shlex.quote(json.dumps(ex.job_spec(config, job.experiment, job.algo), sort_keys=True))


def figure_cfg(fig):
    figs = config.get("figures", {})
    if fig not in figs:
        raise WorkflowError(f"no figure '{fig}' in the config; known: {', '.join(sorted(figs))}")
    return figs[fig]


def all_figures():
    return [L.figure_file(fig, ext) for fig in config.get("figures", {}) for ext in L.FIGURE_EXTS]


def threads_per_run():
    return int(config.get("defaults", {}).get("threads", 1))


def analysis_arg(wildcards):
    return shlex.quote(json.dumps(ex.analysis_spec(config, wildcards.name), sort_keys=True))


def figure_inputs(w):
    fc = figure_cfg(w.fig)
    exps, anas = fc.get("experiments", []), fc.get("analyses", [])
    return {
        "notebook": L.notebook_file(fc["notebook"]),
        "tables": [L.experiment_file(e, "metrics.parquet") for e in exps],
        "summaries": [L.experiment_file(e, "summary.csv") for e in exps],
        "analysis_tables": [L.analysis_file(a, "parquet") for a in anas],
        "files": list(fc.get("files", [])),
    }


def figure_params(w, input, output):
    fc = figure_cfg(w.fig)
    params = dict(fc.get("params", {}))
    params.update(
        figure=w.fig,
        experiments=list(fc.get("experiments", [])),
        analyses=list(fc.get("analyses", [])),
        tables=list(input.tables),
        summaries=list(input.summaries),
        analysis_tables=list(input.analysis_tables),
        files=list(input.files),
        out_pdf=output.pdf,
        out_png=output.png,
    )
    return shlex.quote(json.dumps(params))


def claim_tables():
    return list(claim_inputs(config.get("claims", {})).values())


def claim_args():
    """The claims' tables as KEY=PATH arguments: the key each check looks its table up by."""
    return " ".join(shlex.quote(f"{k}={v}") for k, v in claim_inputs(config.get("claims", {})).items())


def figure_labels(wildcards):
    """Report labels of a figure, evaluated when the report is built: the paper's claim, what our run
    shows (the claims rows linked to this figure, from this config's claims file) and the config used."""
    import pandas as pd

    fig = wildcards.fig
    shows = "no claim of the config is linked to this figure"
    if Path(CLAIMS).exists():
        rows = pd.read_csv(CLAIMS)
        rows = rows[rows["figure"] == fig]
        if len(rows):
            shows = "; ".join(f"{r.quantity} = {r.value:.4g} ({r.threshold}: {r.result})" for r in rows.itertuples())
    return {
        "figure": fig,
        "paper claims": figure_cfg(fig).get("claim", ""),
        "our run shows": shows,
        "config": ", ".join(str(c) for c in workflow.configfiles) or "config/config.yaml",
    }


def paper_of(wildcards):
    return {"alonso": "Paper A (Alonso et al. 2022)", "zil": "Paper B (Salvatori et al. 2021)",
            "millidge": "Paper C (Millidge et al. 2022)"}.get(wildcards.fig.split("_")[0], "Other")


# Cluster resources (profiles/slurm): one home for the numbers, ilrepro.costs, which `ilrepro plan` also
# sums. Run time in minutes (doubled on each retry, so a job killed at its time limit gets more),
# memory in MB, and one GPU for a job whose config asks for `device: cuda` (`auto` asks for none: it
# uses a GPU where the node it lands on has one).
def _train_spec(job):
    spec = ex.job_spec(config, job.experiment, job.algo)
    return {**spec, "threads": threads_per_run()}


def train_resource(job, key):
    def resource(wildcards, attempt):
        return getattr(costs.train_resources(_train_spec(job), attempt), key)

    return resource


def analysis_resource(key):
    def resource(wildcards, attempt):
        spec = {**ex.analysis_spec(config, wildcards.name), "threads": threads_per_run()}
        return getattr(costs.analysis_resources(spec, attempt), key)

    return resource


def train_group(job):
    """Bundles (profiles/slurm `group-components`): CPU trainings in `train`, GPU ones in `train_gpu`,
    so that a bundle never holds a GPU idle during CPU trainings."""
    return "train_gpu" if costs.train_resources(_train_spec(job)).gpu else "train"


def bench_arg():
    return shlex.quote(json.dumps(config.get("bench", {}), sort_keys=True))


def all_run_files(name):
    return [r.file(name) for r in ex.runs(config)]
