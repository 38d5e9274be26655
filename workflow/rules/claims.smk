rule claims:
    """The papers' claims (config `claims:`) checked against the aggregated results."""
    input:
        claim_tables(),
    output:
        report(
            CLAIMS,
            caption="../report/claims.rst",
            category="Claims",
            labels={"table": "claims checked by the pipeline"},
        ),
    params:
        claims=lambda w: shlex.quote(json.dumps(config.get("claims", {}))),
        inputs=claim_args(),
    log:
        L.log("claims"),
    conda:
        ENV
    shell:
        "logged {log} python -m ilrepro claims --claims {params.claims} --inputs {params.inputs} --out {output}"
