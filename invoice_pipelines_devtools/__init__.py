"""Development tooling, not the product: the local QuickBooks Online simulator (`qbo_simulator/`),
the stand-ins for services we cannot reach here (`standins/`: Google Vision, SMTP, an SMS
provider), the benchmarks (`bench/`) and the demo (`demo/`, with its QuickBooks part).

`make run`, the tests and the commands that start them (`seed-demo`, `qbo-simulator`, `bench`, in
`cli.py`) use it; nothing the code location loads imports it (invoice_pipelines_tests/devtools/
test_boundary.py), and the container image does not carry it (.dockerignore, deploy/Containerfile),
where those commands say so in one sentence.
"""
