#!/usr/bin/env python3
"""Turns opreg-bench JSON (run with --benchmark_repetitions and aggregates) into the
markdown tables bench/results keeps: medians, with ratios to the mutex_map baseline.

usage: bench/summarize.py RESULTS.json > RESULTS.md
"""
import json
import re
import sys
from collections import defaultdict


def main(path):
    data = json.load(open(path))
    ctx = data["context"]
    med = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") not in (None, "median"):
            continue
        name = re.sub(r"_median$", "", b["run_name"] if "run_name" in b else b["name"])
        med[name] = b
    print(f"machine: {ctx.get('host_name', '?')}, {ctx.get('num_cpus')} CPUs at "
          f"{ctx.get('mhz_per_cpu')} MHz, load average {ctx.get('load_avg')}; "
          f"{ctx.get('date')}; medians of the repetitions\n")

    rows = defaultdict(dict)
    for name, b in med.items():
        m = re.match(r"registry/([^/]+)/([^/]+)(?:/real_time)?(?:/threads:(\d+))?", name)
        if not m:
            continue
        strategy, scenario, threads = m.group(1), m.group(2), m.group(3) or "1"
        if scenario == "memory":
            rows[("memory", "1")][strategy] = b.get("bytes_per_pending_op")
        else:
            rows[(scenario, threads)][strategy] = b.get("items_per_second")
    strategies = ["mutex_map", "sharded_map", "tbb_map", "slot_array", "mpsc_queue"]
    print("| scenario | threads | " + " | ".join(strategies) + " |")
    print("|---|---:|" + "---:|" * len(strategies))
    for (scenario, threads) in sorted(rows, key=lambda k: (k[0], int(k[1]))):
        r = rows[(scenario, threads)]
        base = r.get("mutex_map")
        cells = []
        for s in strategies:
            v = r.get(s)
            if v is None:
                cells.append("-")
            elif scenario == "memory":
                cells.append(f"{v:.0f} B")
            else:
                ratio = f" ({v / base:.1f}x)" if base and s != "mutex_map" else ""
                cells.append(f"{v / 1e6:.2f} M/s{ratio}")
        print(f"| {scenario} | {threads} | " + " | ".join(cells) + " |")
    print("\nitems_per_second (operations armed, or ended ready for cross_thread); ratio to mutex_map; "
          "memory: heap bytes per pending op with every (fd, direction) pending.\n")

    pp = {n: b for n, b in med.items() if n.startswith("reactor/")}
    if pp:
        print("| reactor ping-pong | " + " | ".join(strategies) + " |")
        print("|---|" + "---:|" * len(strategies))
        for backend in ("epoll", "io_uring"):
            cells = []
            for s in strategies:
                b = pp.get(f"reactor/{backend}/{s}/ping_pong")
                cells.append(f"{b['items_per_second'] / 1e3:.0f} k/s" if b and "items_per_second" in b else "-")
            print(f"| {backend} | " + " | ".join(cells) + " |")
        print("\nmessages per second bounced over a socketpair on one reactor thread.\n")
    for n, b in med.items():
        if n.startswith("router/"):
            print(f"router: {n}: {b['real_time']:.0f} ns per match (50 routes, /users/123 last but one)")


if __name__ == "__main__":
    main(sys.argv[1])
