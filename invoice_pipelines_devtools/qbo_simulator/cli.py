"""`invoice-pipelines qbo-simulator`: the simulator as a server of its own (demo, benchmarks)."""

from __future__ import annotations

import argparse
import json
import signal

from invoice_pipelines.cli_args import port, positive_number


def add_commands(sub) -> None:
    p = sub.add_parser("qbo-simulator")
    add_arguments(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=port, default=8765, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument(
        "--time-scale",
        type=positive_number,
        default=1.0,
        help="simulated seconds per real second (60: a minute of rate limits per second)",
    )
    p.add_argument("--data-dir", default=None, help="keep companies, records and tokens here")
    p.add_argument(
        "--company",
        action="append",
        default=[],
        metavar="REALM_ID[:CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN]",
        help="create this company at start unless it exists (repeatable), with these "
        "credentials if given; the credentials are printed in the start-up line",
    )
    p.add_argument("--no-limits", action="store_true", help="switch the rate limits off")


def run_simulator(args: argparse.Namespace) -> int:
    from invoice_pipelines_devtools.qbo_simulator import Limits, QboSimulator

    sim = QboSimulator(
        port=args.port,
        time_scale=args.time_scale,
        data_dir=args.data_dir,
        limits=Limits(enabled=not args.no_limits),
    )
    companies = []
    for spec in args.company:
        realm_id, *credentials = spec.split(":")
        if realm_id in sim.sim.companies:
            continue
        if credentials and len(credentials) != 3:
            raise SystemExit(f"--company {spec}: give REALM_ID or all four parts")
        client_id, client_secret, refresh_token = credentials or (None, None, None)
        company = sim.create_company(
            realm_id,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
        )
        companies.append(company.as_dict())
    print(
        json.dumps(
            {
                "base_url": sim.base_url,
                "discovery_url": sim.discovery_url,
                "token_url": sim.token_url,
                "time_scale": args.time_scale,
                "data_dir": args.data_dir,
                "created_companies": companies,
            }
        ),
        flush=True,
    )

    def _stop(signum, frame):  # SIGTERM saves the data dir like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    sim.serve_forever()
    return 0
