# ilrepro: retrain every model of the three papers and regenerate every figure.
#   snakemake --cores 2                         # the default, quick profile (config/config.yaml)
#   snakemake figures/alonso_e2_online.pdf      # one figure and only what it needs
#   snakemake --cores 8 --configfile config/paper.yaml   # paper scale
#   snakemake --profile profiles/slurm --configfile config/paper.yaml   # on a SLURM cluster
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("8.0")

# The rules run the library of this checkout, installed or not.
SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

from ilrepro.config import ConfigError, read_yaml  # noqa: E402

# The quick default, unless the command line names its own config file(s): Snakemake would otherwise
# merge the two, and `--configfile config/tiny.yaml` would still run every default experiment.
if not workflow.overwrite_configfiles:
    try:  # read it first ourselves, so that a YAML error names its file and line
        read_yaml(Path(workflow.basedir) / "config" / "config.yaml")
    except ConfigError as err:
        raise WorkflowError(str(err)) from None

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/analyses.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/bench.smk"


report: "workflow/report/workflow.rst"


# Cheap steps run where snakemake runs, not as cluster jobs.
localrules:
    all,
    aggregate,
    figure,
    claims,
    performance,


rule all:
    input:
        all_figures(),
        CLAIMS,
    default_target: True
