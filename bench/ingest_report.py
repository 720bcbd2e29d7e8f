"""The results table of ``bench.ingest``, with the ratios to COPY and to
the peer (Label Studio), against issue #15's targets."""

from bench.harness import table

TARGET_SCALING = 1.6  # 2 clients / 1 client: writers do not queue on the chain head
TARGET_OVER_PEER = 1.0  # Workbench's batch rate / Label Studio's, same clients
TARGET_SINGLE_P95_MS = 40.0  # a single case at 8 clients; at 1 client: below the peer's


def report(figures: dict) -> None:
    copy = figures["copy"]
    if "error" in copy:  # keep the rest of the report
        nan = float("nan")
        copy = {
            "cases_only": {"rows": 0, "rows_per_s": nan, "megabytes": nan},
            "cases_write_row": {"rows_per_s": nan},
            "full_footprint": {"cases_per_s": nan, "megabytes": nan},
        }
    copy_rate = copy["cases_only"]["rows_per_s"]
    footprint_rate = copy["full_footprint"]["cases_per_s"]
    peer = figures.get("peer")
    peer_batch = {p["clients"]: p["items_per_s"] for p in peer["batch"]} if peer else {}
    one = figures["batch"][0]["cases_per_s"]
    rows = []
    for phase in figures["batch"]:
        rate, clients = phase["cases_per_s"], phase["clients"]
        checks, wanted = [], []
        if clients == 2:
            checks.append(rate >= TARGET_SCALING * one)
            wanted.append(f">= {TARGET_SCALING}x 1 client ({rate / one:.2f}x)")
        if clients in peer_batch:
            checks.append(rate >= TARGET_OVER_PEER * peer_batch[clients])
            wanted.append(f">= peer ({rate / peer_batch[clients]:.2f}x)")
        rows.append(
            (
                f"batch, {clients} client(s), {phase['cases']:,} cases",
                f"{rate:,.0f} cases/s",
                f"p50 {phase['batch_p50_ms']:,.0f} ms per 1,000",
                ", ".join(wanted),
                ("PASS" if all(checks) else "MISS") if checks else "",
            )
        )
        if clients in peer_batch:
            rows.append(
                (
                    f"  Label Studio import, {clients} client(s)",
                    f"{peer_batch[clients]:,.0f} items/s",
                    "the same items, requests of 1,000",
                    "",
                    "",
                )
            )
    single = figures["single"]
    rows.append(
        (
            f"single, {single['clients']} clients, {single['requests']:,} req",
            f"{single['req_per_s']:,.0f} req/s",
            f"p50 {single['p50_ms']} / p95 {single['p95_ms']} / p99 {single['p99_ms']} ms",
            f"p95 <= {TARGET_SINGLE_P95_MS:.0f} ms",
            "PASS" if single["p95_ms"] <= TARGET_SINGLE_P95_MS else "MISS",
        )
    )
    alone = figures["single_alone"]
    peer_single = peer["single"]["p95_ms"] if peer else None
    rows.append(
        (
            f"single, 1 client, {alone['requests']:,} req",
            f"{alone['req_per_s']:,.0f} req/s",
            f"p50 {alone['p50_ms']} / p95 {alone['p95_ms']} ms",
            "p95 < peer's" if peer else "",
            ("PASS" if alone["p95_ms"] < peer_single else "MISS") if peer else "",
        )
    )
    if peer:
        rows.append(
            (
                "  Label Studio import, 1 item per request",
                f"{peer['single']['req_per_s']:,.0f} req/s",
                f"p50 {peer['single']['p50_ms']} / p95 {peer_single} ms",
                "",
                "",
            )
        )
    rows.append(
        (
            f"COPY reviews_case, {copy['cases_only']['rows']:,} rows",
            f"{copy_rate:,.0f} rows/s",
            f"{copy['cases_only']['megabytes']} MB",
            "",
            "",
        )
    )
    rows.append(
        (
            "COPY reviews_case from Python rows (write_row)",
            f"{copy['cases_write_row']['rows_per_s']:,.0f} rows/s",
            "formatting in psycopg",
            "",
            "",
        )
    )
    rows.append(
        (
            "COPY full footprint (case+events+task+subject)",
            f"{footprint_rate:,.0f} cases/s",
            f"{copy['full_footprint']['megabytes']} MB",
            "",
            "",
        )
    )
    best = max(phase["cases_per_s"] for phase in figures["batch"])
    figures["ratios"] = {
        "batch_best_over_copy_cases": round(best / copy_rate, 3),
        "batch_best_over_copy_footprint": round(best / footprint_rate, 3),
    }
    if len(figures["batch"]) > 1:
        figures["ratios"]["batch_2_over_1"] = round(figures["batch"][1]["cases_per_s"] / one, 3)
    for phase in figures["batch"]:
        if phase["clients"] in peer_batch:
            figures["ratios"][f"batch_{phase['clients']}_over_peer"] = round(
                phase["cases_per_s"] / peer_batch[phase["clients"]], 3
            )
    if peer:
        figures["ratios"]["single_alone_p95_over_peer"] = round(alone["p95_ms"] / peer_single, 3)
    verify = figures["verify"]
    print()
    print(f"server: {figures['server']['command']}; {figures['machine']['cpus']} cores")
    print(table(rows, ("measure", "rate", "detail", "target", "")))
    print()
    ratios = figures["ratios"]
    print(
        f"ingest / COPY: {ratios['batch_best_over_copy_cases']:.1%} of COPY of the case rows, "
        f"{ratios['batch_best_over_copy_footprint']:.1%} of COPY of everything a case writes"
    )
    print(
        f"cases stored {verify['cases_stored']:,} of {verify['cases_submitted']:,} submitted: "
        f"{'OK' if verify['count_ok'] else 'MISMATCH'}; "
        f"trail_verify: {verify['trail_verify_output']}"
    )
