#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The benchmarks' one place for medians and the tables built on them.

usage:
  bench/summarize.py RESULTS.json > RESULTS.md
      opreg-bench JSON (run with --benchmark_repetitions and aggregates) as the markdown
      tables bench/results keeps: medians, with ratios to the baseline strategy
  bench/summarize.py demo RUNS.csv > MEDIANS.csv
      bench/demo.sh's every-run CSV as its medians CSV: one row per implementation, in the
      order the runs first name them; every column's median (req/s, and CPU us per request
      where the runs have it)
  bench/summarize.py ab DIR ROUNDS > table.md
      bench/ab.sh's runs DIR/{A,B}-{1..ROUNDS}.json as the A/B table: medians and B/A

Strategies, backends and their order come from the data: the benchmarks run the strategies
in opreg::strategies' order, whose first entry is the baseline (`opreg-bench --list`).
"""
import csv
import json
import re
import statistics
import sys
from collections import defaultdict

def bench_tables(path):
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

    strategies, backends = [], []  # in the order the benchmarks ran them
    rows = defaultdict(dict)
    pp = {}
    for name, b in med.items():
        m = re.match(r"registry/([^/]+)/([^/]+)(?:/real_time)?(?:/threads:(\d+))?", name)
        r = re.match(r"reactor/([^/]+)/([^/]+)/ping_pong", name)
        if m:
            strategy, scenario, threads = m.group(1), m.group(2), m.group(3) or "1"
            if scenario == "memory":
                rows[("memory", "1")][strategy] = b.get("bytes_per_pending_op")
            else:
                rows[(scenario, threads)][strategy] = b.get("items_per_second")
        elif r:
            strategy = r.group(2)
            pp[(r.group(1), strategy)] = b
            if r.group(1) not in backends:
                backends.append(r.group(1))
        else:
            continue
        if strategy not in strategies:
            strategies.append(strategy)
    baseline = strategies[0] if strategies else None

    if rows:
        print("| scenario | threads | " + " | ".join(strategies) + " |")
        print("|---|---:|" + "---:|" * len(strategies))
        for (scenario, threads) in sorted(rows, key=lambda k: (k[0], int(k[1]))):
            r = rows[(scenario, threads)]
            base = r.get(baseline)
            cells = []
            for s in strategies:
                v = r.get(s)
                if v is None:
                    cells.append("-")
                elif scenario == "memory":
                    cells.append(f"{v:.0f} B")
                else:
                    ratio = f" ({v / base:.1f}x)" if base and s != baseline else ""
                    cells.append(f"{v / 1e6:.2f} M/s{ratio}")
            print(f"| {scenario} | {threads} | " + " | ".join(cells) + " |")
        print("\nitems_per_second (operations armed, or ended ready for cross_thread); "
              f"ratio to {baseline}; "
              "memory: heap bytes per pending op with every (fd, direction) pending.\n")

    if pp:
        print("| reactor ping-pong | " + " | ".join(strategies) + " |")
        print("|---|" + "---:|" * len(strategies))
        for backend in backends:
            cells = []
            for s in strategies:
                b = pp.get((backend, s))
                cell = f"{b['items_per_second'] / 1e3:.0f} k/s" if b and "items_per_second" in b else "-"
                if b and "cpu_ns_per_round_trip" in b:
                    cell += f", {b['cpu_ns_per_round_trip'] / 1e3:.2f} µs"
                cells.append(cell)
            print(f"| {backend} | " + " | ".join(cells) + " |")
        cpu = any("cpu_ns_per_round_trip" in b for b in pp.values())
        print("\nmessages per second bounced over a socketpair on one reactor thread" +
              ("; after the comma, the process's CPU time per round trip (a ping and its pong: "
               "two messages), lower is better" if cpu else "") + ".\n")
    for n, b in med.items():
        if n.startswith("router/"):
            print(f"router: {n}: {b['real_time']:.0f} ns per match (50 routes, /users/123 last but one)")


def demo_medians(runs):
    """The loads' rates (req/s), then what each request cost (CPU microseconds: columns named
    *_cpu_*), are the columns after round and implementation. A cell without a number is a
    run that gave none; a median is over the runs that gave one. A rate with none is 0, as
    it always was; a cost with none is left empty, never 0 (free)."""
    cells = {}  # implementation -> column -> values of each run; insertion order is row order
    with open(runs) as f:
        reader = csv.DictReader(f)
        columns = [k for k in reader.fieldnames if k not in ("round", "implementation")]
        for r in reader:
            cell = cells.setdefault(r["implementation"], {k: [] for k in columns})
            for k, v in cell.items():
                text = (r[k] or "").strip()
                if "_cpu_" in k:
                    try:
                        v.append(float(text))
                    except ValueError:
                        pass
                elif text.isdigit():
                    v.append(int(text))

    def median(k, values):
        if "_cpu_" in k:
            return f"{statistics.median(values):.3f}" if values else ""
        return str(int(statistics.median(values))) if values else "0"

    print("implementation," + ",".join(columns))
    for name, c in cells.items():
        print(",".join([name] + [median(k, c[k]) for k in columns]))


def ab_table(out, rounds):
    rounds = int(rounds)
    runs = {"A": {}, "B": {}}
    ctx = None
    for side in "AB":
        for r in range(1, rounds + 1):
            data = json.load(open(f"{out}/{side}-{r}.json"))
            ctx = ctx or data["context"]
            for bm in data["benchmarks"]:
                v = bm.get("items_per_second", bm.get("bytes_per_pending_op"))
                if v is not None:
                    runs[side].setdefault(bm["name"], []).append(v)
    print(f"machine: {ctx.get('host_name')}, {ctx.get('num_cpus')} CPUs; {rounds} alternating rounds; medians\n")
    print("| benchmark | A | B | B/A | B/A per round |")
    print("|---|---:|---:|---:|---|")
    for name in runs["A"]:
        if name not in runs["B"]:
            continue
        a, b = statistics.median(runs["A"][name]), statistics.median(runs["B"][name])
        mem = "memory" in name
        fmt = (lambda v: f"{v:.0f} B") if mem else (lambda v: f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} k/s")
        per = " ".join(f"{y / x:.2f}" for x, y in zip(runs["A"][name], runs["B"][name]))
        print(f"| {name} | {fmt(a)} | {fmt(b)} | {b / a:.2f} | {per} |")
    print("\nitems per second (memory rows: heap bytes per pending op); B/A above 1 means B is faster "
          "(memory rows: B uses that much more).")


def main(argv):
    commands = {"demo": (demo_medians, 1), "ab": (ab_table, 2)}
    if len(argv) == 1 and argv[0] not in commands and not argv[0].startswith("-"):
        return bench_tables(argv[0])
    if argv and argv[0] in commands and len(argv) == 1 + commands[argv[0]][1]:
        fn, _ = commands[argv[0]]
        return fn(*argv[1:])
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(__doc__)
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
