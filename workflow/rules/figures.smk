rule figure:
    """Execute notebooks/<notebook>.ipynb with papermill on aggregated tables; it writes the figure."""
    input:
        unpack(figure_inputs),
    output:
        pdf="figures/{fig}.pdf",
        png=report(
            "figures/{fig}.png",
            caption="../report/figure.rst",
            category=paper_of,
            labels=figure_labels,
        ),
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
