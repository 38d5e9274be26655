# ilrepro: retrain every model of the three papers and regenerate every figure.
#   snakemake --cores 2                         # the default, quick profile (config/config.yaml)
#   snakemake figures/alonso_e2_online.pdf      # one figure and only what it needs
#   snakemake --cores 8 --configfile config/paper.yaml   # paper scale
#   snakemake --profile profiles/slurm --configfile config/paper.yaml   # on a SLURM cluster
from snakemake.utils import min_version

min_version("8.0")


# The quick default, unless the command line names its own config file(s): Snakemake would otherwise
# merge the two, and `--configfile config/tiny.yaml` would still run every default experiment.
if not workflow.overwrite_configfiles:

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
        L.CLAIMS,
    default_target: True
