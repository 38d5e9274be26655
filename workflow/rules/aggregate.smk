rule aggregate:
    """All runs of one experiment -> one tidy table and a per-(algorithm, lr) summary."""
    input:
        metrics=lambda w: run_files(w.exp, "metrics.parquet"),
        meta=lambda w: run_files(w.exp, "meta.json"),
    output:
        table=L.experiment_file("{exp}", "metrics.parquet"),
        summary=L.experiment_file("{exp}", "summary.csv"),
    log:
        L.log("aggregate", "{exp}"),
    conda:
        ENV
    shell:
        "logged {log} python -m ilrepro aggregate --metrics {input.metrics} --meta {input.meta}"
        " --table {output.table} --summary {output.summary}"
