rule figure:
    """Execute notebooks/<notebook>.ipynb with papermill on aggregated tables; it writes the figure."""
    input:
        unpack(figure_inputs),
    output:
        pdf="figures/{fig}.pdf",
        png="figures/{fig}.png",
        csv="figures/{fig}.csv",
        notebook="results/notebooks/{fig}.ipynb",
    params:
        yaml=figure_params,
    log:
        "results/logs/figures/{fig}.log",
    conda:
        ENV
    shell:
        "papermill {input.notebook} {output.notebook} -y {params.yaml} -k python3 --log-output > {log} 2>&1"
