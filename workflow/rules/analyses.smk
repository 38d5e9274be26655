rule analysis:
    """One theory or diagnostic experiment (config `analyses:`) -> a tidy table."""
    output:
        table=L.analysis_file("{name}", "parquet"),
        meta=L.analysis_file("{name}", "json"),
    params:
        spec=analysis_arg,
    threads: threads_per_run()
    resources:
        runtime=analysis_resource("runtime_min"),
        mem_mb=analysis_resource("mem_mb"),
        gpu=analysis_resource("gpu"),
    log:
        L.log("analyses", "{name}"),
    benchmark:
        L.benchmark("analyses", "{name}")
    conda:
        ENV
    shell:
        "logged {log} python -m ilrepro analyse --spec {params.spec} --threads {threads}"
        " --table {output.table} --meta {output.meta}"
