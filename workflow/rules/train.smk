# One training job per (experiment, algorithm entry): every learning rate x seed of the entry, trained
# together (stacked into one model where the algorithm allows and it pays: ilrepro.train.stack_members),
# writing each learning rate's run files (ilrepro.layout.run_file). A rule per job, because the number of
# outputs (the entry's learning rates) differs from entry to entry; each is named train_<exp>__<algo>.
for _job in ex.jobs(config):

    rule:
        """Train one algorithm entry of an experiment: all of its learning rates x seeds, together."""
        name:
            f"train_{_job.experiment}__{_job.algo}"
        output:
            metrics=_job.files("metrics.parquet"),
            meta=_job.files("meta.json"),
        params:
            spec=job_spec_arg(_job),
        threads: threads_per_run()
        resources:
            runtime=train_resource(_job, "runtime_min"),
            mem_mb=train_resource(_job, "mem_mb"),
            gpu=train_resource(_job, "gpu"),
        # On a cluster, `--group-components train=N` bundles N trainings into one job (profiles/slurm).
        group:
            train_group(_job)
        log:
            L.job_log(_job.experiment, _job.algo),
        benchmark:
            L.job_benchmark(_job.experiment, _job.algo)
        conda:
            ENV
        shell:
            "logged {log} python -m ilrepro train --spec {params.spec} --threads {threads}"
            " --metrics {output.metrics} --meta {output.meta}"
