rule train:
    """Train one (experiment, algorithm entry, learning rate) run: all of the experiment's seeds, together."""
    output:
        metrics="results/runs/{exp}/{algo}/lr{lr}/metrics.parquet",
        meta="results/runs/{exp}/{algo}/lr{lr}/meta.json",
    params:
        spec=spec_arg,
    threads: threads_per_run()
    resources:
        runtime=train_resource("runtime_min"),
        mem_mb=train_resource("mem_mb"),
        gpu=train_resource("gpu"),
    # On a cluster, `--group-components train=N` bundles N trainings into one job (profiles/slurm).
    group:
        train_group
    log:
        "results/logs/train/{exp}/{algo}/lr{lr}.log",
    benchmark:
        "results/benchmarks/train/{exp}/{algo}/lr{lr}.tsv"
    conda:
        ENV
    shell:
        "python -m ilrepro train --spec {params.spec} --threads {threads}"
        " --metrics {output.metrics} --meta {output.meta} > {log} 2>&1"
