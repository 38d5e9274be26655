rule train:
    """Train one (experiment, algorithm entry, learning rate) run: all of the experiment's seeds, together."""
    output:
        metrics=L.run_file("{exp}", "{algo}", "{lr}", "metrics.parquet"),
        meta=L.run_file("{exp}", "{algo}", "{lr}", "meta.json"),
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
        L.log("train", "{exp}/{algo}/lr{lr}"),
    benchmark:
        L.run_benchmark("{exp}", "{algo}", "{lr}")
    conda:
        ENV
    shell:
        "logged {log} python -m ilrepro train --spec {params.spec} --threads {threads}"
        " --metrics {output.metrics} --meta {output.meta}"
