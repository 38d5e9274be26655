rule claims:
    """The papers' claims (config `claims:`) checked against the aggregated results."""
    input:
        claim_tables(),
    output:
        report(
            "results/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
            labels={"table": "claims checked by the pipeline"},
        ),
    params:
        claims=lambda w: shlex.quote(json.dumps(config.get("claims", {}))),
    log:
        "results/logs/claims.log",
    conda:
        ENV
    shell:
        "python -m ilrepro claims --claims {params.claims} --inputs {input} --out {output} > {log} 2>&1"
