rule bench:
    """The training-speed benchmark (config `bench:`): updates/s of every algorithm x model x batch size,
    the IL/BP and Z-IL/BP cost ratios, peak memory and the hardware."""
    output:
        **L.bench_files(),
    params:
        cfg=bench_arg(),
        out_dir=lambda w, output: str(Path(output.table).parent),
    log:
        L.log("bench"),
    benchmark:
        L.benchmark("bench")
    conda:
        ENV
    shell:
        "logged {log} python -m ilrepro bench --config {params.cfg} --out-dir {params.out_dir}"


rule performance:
    """Every training job's timing (its meta.json and Snakemake benchmark file) in one table."""
    input:
        meta=all_run_files("meta.json"),
    output:
        L.PERFORMANCE,
    log:
        L.log("performance"),
    conda:
        ENV
    shell:
        "logged {log} python -m ilrepro performance --meta {input.meta} --out {output}"
