# ilrepro: retrain every model of the three papers and regenerate every figure.
#   snakemake --cores 2                         # the default, quick profile (config/config.yaml)
#   snakemake figures/alonso_e2_online.pdf      # one figure and only what it needs
#   snakemake --cores 8 --configfile config/paper.yaml   # paper scale
from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/analyses.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/bench.smk"


rule all:
    input:
        all_figures(),
    default_target: True
