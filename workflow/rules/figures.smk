rule figure:
    """Execute notebooks/<notebook>.ipynb with papermill on aggregated tables; it writes the figure."""
    input:
        unpack(figure_inputs),
    output:
        pdf=L.figure_file("{fig}", "pdf"),
        png=report(
            L.figure_file("{fig}", "png"),
            caption="../report/figure.rst",
            category=paper_of,
            labels=figure_labels,
        ),
        csv=L.figure_file("{fig}", "csv"),
        notebook=L.figure_file("{fig}", "ipynb"),
    params:
        yaml=figure_params,
    log:
        L.log("figures", "{fig}"),
    conda:
        ENV
    shell:
        "logged {log} papermill {input.notebook} {output.notebook} -y {params.yaml} -k python3 --log-output"
