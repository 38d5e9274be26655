rule bench:
    """The training-speed benchmark (config `bench:`): updates/s of every algorithm x model x batch size,
    the IL/BP and Z-IL/BP cost ratios, peak memory and the hardware."""
    output:
        table="results/bench/bench.csv",
        ratios="results/bench/ratios.csv",
        meta="results/bench/bench.json",
    params:
        cfg=bench_arg(),
    log:
        "results/logs/bench.log",
    benchmark:
        "results/benchmarks/bench.tsv"
    conda:
        ENV
    shell:
        "python -m ilrepro bench --config {params.cfg} --out-dir results/bench > {log} 2>&1"


rule performance:
    """Every training job's timing (its meta.json and Snakemake benchmark file) in one table."""
    input:
        meta=all_run_files("meta.json"),
    output:
        "results/performance.csv",
    log:
        "results/logs/performance.log",
    conda:
        ENV
    shell:
        "python -m ilrepro performance --meta {input.meta} --out {output} > {log} 2>&1"
