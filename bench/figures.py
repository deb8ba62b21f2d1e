#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The figures the README and docs quote from bench/results, computed from the files there.

A Markdown file marks each quoted figure with its name:

    ... costs <!-- figure registry-op-ns -->22–81 ns<!-- /figure --> against ...

and a table the same way, with the markers on lines of their own. What lies between the
markers must be exactly what the named figure computes from its results file, so that a
figure cannot drift from its data: `--check` (ctest docs.figures) fails on one that does,
and on a marker whose name is unknown; `--write` rewrites every marked figure (after a new
run, point the sources below at its files); `--list` prints each figure, its value and its
source.
"""
import argparse
import csv
import os
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")

# The results files the docs quote. A new run replaces one of these, then `--write`.
DEMO = "2026-12-05-vm.csv"                 # make demo: medians per implementation
DEMO_RUNS = "2026-12-05-vm-runs.csv"       # make demo: every round
BENCH = ["2026-11-26-vm-opreg-bench.md", "2026-11-29-vm-opreg-bench.md"]  # opreg-bench
IDLE = "2026-12-05-vm-idle-memory.md"      # bench/idle_memory.py

# The Markdown files that may quote figures.
DOCS = ["README.md", "docs/findings.md", "docs/contract.md", "docs/reactor.md",
        "bench/README.md", "integrations/http/README.md", "examples/README.md"]

LOADS = ["keepalive_100", "keepalive_1000", "pipelined_16x100"]
STRATEGIES = ["mutex_map", "sharded_map", "tbb_map", "slot_array", "mpsc_queue"]


# ---- reading the results ------------------------------------------------------------------

def demo_rows():
    with open(os.path.join(RESULTS, DEMO), newline="") as f:
        return {r["implementation"]: r for r in csv.DictReader(f)}


def demo_runs():
    with open(os.path.join(RESULTS, DEMO_RUNS), newline="") as f:
        return list(csv.DictReader(f))


def bench_table(name, ratios=False):
    """opreg-bench's registry table: {(scenario, threads): {strategy: value}} (M/s, or B),
    or with `ratios` the ratio to mutex_map each cell prints (from the unrounded rates)."""
    _, rows = next(t for t in md_tables(name) if t[0][0] == "scenario")
    return {(r[0], int(r[1])): {s: (ratio_in(c) if "x)" in c else 1.0) if ratios
                                else float(c.split()[0]) for s, c in zip(STRATEGIES, r[2:])}
            for r in rows}


def bench_lines(name, keep):
    """The lines of opreg-bench's registry table (its head, and the rows `keep` accepts)."""
    with open(os.path.join(RESULTS, name)) as f:
        lines = [l.rstrip("\n") for l in f]
    start = next(i for i, l in enumerate(lines) if l.startswith("| scenario |"))
    out = lines[start:start + 2]
    for l in lines[start + 2:]:
        if not l.startswith("|"):
            break
        cells = [c.strip() for c in l.strip("|").split("|")]
        if keep(cells[0], int(cells[1])):
            out.append(l)
    return out


QUEUES = "2026-11-29-vm-queues.md"          # queue_bench.cpp, pinned
AB = "2026-11-29-vm-ab.md"                  # bench/ab.sh


def md_tables(name):
    """Every Markdown table in a results file: [(header cells, [row cells])], in order."""
    tables, cur = [], None
    with open(os.path.join(RESULTS, name)) as f:
        for line in f:
            if line.startswith("|"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if cur is None:
                    cur = (cells, [])
                    tables.append(cur)
                elif not set("".join(cells)) <= set("-:"):
                    cur[1].append(cells)
            else:
                cur = None
    return tables


def table_with(name, first_header, nth=0):
    """The nth table of a results file whose header starts with first_header, as
    {row name: cells after it}."""
    found = [t for t in md_tables(name) if t[0][0] == first_header][nth]
    return {r[0]: r[1:] for r in found[1]}


def ratio_in(cell):
    return float(re.search(r"\(([\d.]+)x\)", cell).group(1))


def rate_in(cell):
    """A cell's rate in items a second: '30.2 M/s (3.10x)' or '88 k/s' or '10.4 (1.00x)' (M/s)."""
    m = re.match(r"([\d.]+)\s*(M/s|k/s)?", cell)
    return float(m.group(1)) * (1e3 if m.group(2) == "k/s" else 1e6)


def idle_rows():
    """bench/idle_memory.py's table: [(server, bytes per idle connection)], and the count."""
    with open(os.path.join(RESULTS, IDLE)) as f:
        count = int(re.search(r"(\d+) idle keep-alive connections", f.read()).group(1))
    return [(server, int(c[2])) for server, c in table_with(IDLE, "server").items()], count


# ---- formatting ---------------------------------------------------------------------------

def num(x, digits=0):
    """12,345 or 1.23: thousands separated, as the prose writes them."""
    return f"{x:,.{digits}f}"


def span(lo, hi, fmt):
    a, b = fmt(lo), fmt(hi)
    return a if a == b else f"{a}–{b}"


def star(rate, wrk_us):
    # wrk's CPU per request times the rate fills 90% of its core: wrk set the rate
    # (bench/table.sh draws the same line).
    return f"{rate}*" if wrk_us and float(wrk_us) * rate >= 0.9e6 else f"{rate}"


# ---- the figures --------------------------------------------------------------------------

def demo_table():
    rows = demo_rows()
    floor = rows["floor (bare epoll)"]
    out = ["| implementation | req/s keep-alive 100 | req/s 1000 conns | req/s pipelined 16 "
           "| server µs/req keep-alive 100 | µs/req 1000 conns | µs/req pipelined 16 "
           "| µs/req vs floor |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        rates = [star(int(r[l]), r[f"wrk_cpu_us_per_req_{l}"]) for l in LOADS]
        cpu = [float(r[f"server_cpu_us_per_req_{l}"]) for l in LOADS]
        f100 = float(floor["server_cpu_us_per_req_keepalive_100"])
        fpipe = float(floor["server_cpu_us_per_req_pipelined_16x100"])
        out.append(f"| {name} | {' | '.join(rates)} | {cpu[0]:.2f} | {cpu[1]:.2f} | {cpu[2]:.2f} "
                   f"| {cpu[0] / f100:.2f}x ({cpu[2] / fpipe:.2f}x) |")
    return "\n".join(out)


def spread_cells():
    """Each (implementation, load)'s rates over the rounds: (largest deviation from the
    median, as a fraction of it; how many rounds had a rate)."""
    cells = {}
    for r in demo_runs():
        for l in LOADS:
            if r[l]:
                cells.setdefault((r["implementation"], l), []).append(float(r[l]))
    out = {}
    for k, v in cells.items():
        m = statistics.median(v)
        out[k] = (max(abs(x - m) for x in v) / m, len(v))
    return out


def demo_spread():
    devs = sorted(d for d, _ in spread_cells().values())
    return (f"up to ±{devs[-1] * 100:.0f}% around their median (half of them within "
            f"±{statistics.median(devs) * 100:.0f}%)")


def demo_rounds():
    cells = spread_cells()
    rounds = max(n for _, n in cells.values())
    short = sorted(f"{k[0]}, {k[1]}" for k, (_, n) in cells.items() if n < rounds)
    words = {2: "two", 3: "three", 4: "four", 5: "five"}
    text = f"Medians of {words.get(rounds, rounds)} rounds"
    if short:
        text += f" ({len(short)} of {len(cells)} cells had one round fewer: {'; '.join(short)})"
    return text


def cpu_of(name, load):
    return float(demo_rows()[name][f"server_cpu_us_per_req_{load}"])


def strategies_cpu():
    rows = [f"opreg {s}" for s in STRATEGIES]
    parts = []
    for l, where in zip(LOADS, ["at 100 connections", "at 1,000", "pipelined"]):
        v = [cpu_of(r, l) for r in rows]
        digits = 2 if l.startswith("pipelined") else 1
        parts.append(f"{span(min(v), max(v), lambda x: num(x, digits))} µs {where}")
    return f"{parts[0]}, {parts[1]} and {parts[2]}"


def floor_cpu():
    f = "floor (bare epoll)"
    return (f"{cpu_of(f, LOADS[0]):.1f}, {cpu_of(f, LOADS[1]):.1f} and "
            f"{cpu_of(f, LOADS[2]):.2f}")


def single_thread_ns():
    """What one registry operation costs on one thread, every strategy, every opreg-bench run."""
    v = [1e3 / rate for name in BENCH for rate in bench_table(name)[("arm_fire", 1)].values()]
    return f"{span(min(v), max(v), lambda x: num(x))} ns"


def cross_thread(strategy, threads, ratios=False):
    return [bench_table(name, ratios)[("cross_thread", threads)][strategy] for name in BENCH]


def mutex_cross_thread():
    v = [r for t in (2, 4, 8) for r in cross_thread("mutex_map", t)]
    return (f"{span(min(v) * 1e3, max(v) * 1e3, lambda x: num(x) + 'k')} operations a second "
            f"(`cross_thread` at 2, 4 and 8 threads, in both runs), "
            f"{span(1 / max(v), 1 / min(v), lambda x: num(x, 1))} µs each")


def cross_thread_2():
    base = cross_thread("mutex_map", 2)

    def one(s, digits):
        v = cross_thread(s, 2)
        ratios = cross_thread(s, 2, ratios=True)
        return (f"`{s}` {span(min(v), max(v), lambda x: num(x, digits))}M "
                f"({span(min(ratios), max(ratios), lambda x: num(x))}×)")
    return (f"`mutex_map` ends {span(min(base), max(base), lambda x: num(x, 2))}M ops/s, "
            f"{one('slot_array', 0)} and {one('mpsc_queue', 1)}")


def rearm_cost():
    v = [cpu_of("mutex_map + re-register per op", l) / cpu_of("opreg mutex_map", l) - 1
         for l in LOADS]
    return (f"{span(min(v) * 100, max(v) * 100, lambda x: num(x))}% more CPU per request "
            f"({cpu_of('mutex_map + re-register per op', LOADS[0]):.2f} µs against "
            f"`mutex_map`'s {cpu_of('opreg mutex_map', LOADS[0]):.2f} at 100 connections, "
            f"{cpu_of('mutex_map + re-register per op', LOADS[1]):.2f} against "
            f"{cpu_of('opreg mutex_map', LOADS[1]):.2f} at 1,000)")


def nagle_rate():
    r = int(demo_rows()["mutex_map + Nagle + write per part"][LOADS[0]])
    return f"~{num(round(r, -2))} req/s"


def nagle_slowdown():
    rows = demo_rows()
    return f"{int(rows['opreg mutex_map'][LOADS[0]]) / int(rows['mutex_map + Nagle + write per part'][LOADS[0]]):.0f}×"


def nagle_ms():
    r = int(demo_rows()["mutex_map + Nagle + write per part"][LOADS[0]])
    return f"100 connections / {num(r)} req/s is {100 / r * 1e3:.0f} ms"


def pipelined_vs_nginx():
    rows = demo_rows()
    nginx = int(rows["nginx (1 worker)"][LOADS[2]])
    v = [int(r[LOADS[2]]) / nginx for n, r in rows.items()
         if n.startswith("opreg ") and "thread-per-conn" not in n]
    return f"{span(min(v), max(v), lambda x: num(x, 1))}× nginx"


IDLE_NAMES = {"opreg-httpd slot_array": "async, `slot_array`",
              "opreg-httpd mutex_map": "async, `mutex_map`",
              "opreg-httpd mpsc_queue": "async, `mpsc_queue`",
              "opreg-httpd thread-per-conn": "thread-per-conn",
              "nginx (1 worker)": "nginx, 1 worker"}


def per_conn(b):
    return f"{b / 1024:.1f} KiB" if b >= 1024 else f"{b} byte{'s' if b != 1 else ''}"


def idle_table():
    rows, _ = idle_rows()
    out = ["| model | RSS per idle connection |", "|---|---|"]
    out += [f"| {IDLE_NAMES.get(s, s)} | {per_conn(b)} |" for s, b in rows]
    return "\n".join(out)


def idle_source():
    _, count = idle_rows()
    return (f"[`bench/idle_memory.py`](../../bench/idle_memory.py), {num(count)} connections, "
            f"[`bench/results/{IDLE}`](../../bench/results/{IDLE})")


def idle_thread():
    b = dict(idle_rows()[0])["opreg-httpd thread-per-conn"]
    return f"about {b * 10000 / 1e6:.0f} MB of RSS"


def bench_registries():
    return "\n".join(bench_lines(BENCH[-1], lambda s, t: s in ("arm_fire", "memory") or
                                 (s == "cross_thread")))


def arm_fire_ratio():
    return f"{bench_table(BENCH[-1], ratios=True)[('arm_fire', 1)]['slot_array']:.1f}×"


def ping_pong():
    rows = [t for t in md_tables(BENCH[-1]) if t[0][0] == "reactor ping-pong"][0][1]
    v = [rate_in(c) / 1e3 for r in rows for c in r[1:]]
    return f"{span(min(v), max(v), lambda x: num(x))}k messages/s"


def router_ns():
    with open(os.path.join(RESULTS, BENCH[-1])) as f:
        m = re.search(r"router: \S+: (\d+) ns per match", f.read())
    return f"{m.group(1)} ns"


def cross_thread_runs():
    v = cross_thread("mutex_map", 2)
    return f"{v[0]:.2f}M/s in the {BENCH[0][:10]} run and {v[-1]:.2f}M/s here"


def ab_rows(nth):
    return table_with(AB, "benchmark", nth)


def ab_mutex():
    """B/A of the baseline's single-threaded rows (bench/ab.sh's first table)."""
    first = ab_rows(0)
    v = [float(first[f"registry/mutex_map/{b}"][2])
         for b in ("arm_fire", "cross_thread/real_time/threads:1")]
    return f"{span((min(v) - 1) * 100, (max(v) - 1) * 100, num)}%"


def ab_mpsc():
    """B/A of mpsc_queue's 2-thread rows, in the table of 9 rounds."""
    v = [float(c[2]) for k, c in ab_rows(1).items() if k.startswith("registry/mpsc_queue/")]
    return f"{span((min(v) - 1) * 100, (max(v) - 1) * 100, num)}%"


def ab_memory():
    first = ab_rows(0)
    grew = {st: int(first[f"registry/{st}/memory/iterations:1"][1].split()[0]) -
            int(first[f"registry/{st}/memory/iterations:1"][0].split()[0]) for st in STRATEGIES}
    return ", ".join(f"{grew[st]} in `{st}`" for st in STRATEGIES if grew[st] != 0)


def queue_by_value():
    two = table_with(QUEUES, "queue", 0)
    mc, ip = rate_in(two["`moodycamel`"][0]), rate_in(two["`intrusive_pool`"][0])
    return (f"{mc / ip:.1f}x as fast as the pool + intrusive queue "
            f"({mc / 1e6:.0f} against {ip / 1e6:.0f} M/s, one producer)")


def queue_pool():
    clusters = table_with(QUEUES, "queue", 1)
    v = [ratio_in(c) for c in clusters["`moodycamel_pool`"]]
    return f"{span(min(v), max(v), lambda x: num(x, 2))}x"


def queue_one_core():
    one = table_with(QUEUES, "queue", 2)

    def r(row):
        v = [ratio_in(c) for c in one[row]]
        return span(min(v), max(v), lambda x: num(x, 2)) + "x"
    return (f"moodycamel {r('`moodycamel`')}, Boost.Lockfree {r('`boost_lockfree`')}, "
            f"a mutex around a deque {r('`mutex_deque`')}")


def uring_readiness():
    r = [cpu_of("opreg slot_array; io_uring readiness", l) / cpu_of("opreg slot_array", l)
         for l in LOADS]
    return (f"{cpu_of('opreg slot_array; io_uring readiness', LOADS[0]):.2f} µs against "
            f"slot_array's {cpu_of('opreg slot_array', LOADS[0]):.2f} at 100 connections; "
            f"{r[0]:.2f}x, {r[1]:.2f}x and {r[2]:.2f}x its CPU at 100, 1,000 and pipelined")


def pipelined_vs_floor():
    f = cpu_of("floor (bare epoll)", LOADS[2])
    v = [cpu_of(f"opreg {st}", LOADS[2]) / f for st in STRATEGIES]
    return f"{span(min(v), max(v), lambda x: num(x, 1))}×"


def completion_cpu():
    c = [cpu_of("opreg slot_array; io_uring completion", l) for l in LOADS]
    e = [cpu_of("opreg slot_array", l) for l in LOADS]
    f = [cpu_of("floor (bare epoll)", l) for l in LOADS]
    return (f"{c[0] / e[0]:.2f}x, {c[1] / e[1]:.2f}x and {c[2] / e[2]:.2f}x of its epoll CPU at "
            f"100 connections, 1,000 and pipelined: {c[0]:.2f}, {c[1]:.2f} and {c[2]:.2f} µs, "
            f"{c[0] / f[0]:.2f}x and {c[1] / f[1]:.2f}x the floor's at 100 and 1,000 connections "
            f"and {c[2] / f[2]:.2f}x pipelined")


def completion_vs_floors():
    """Completion mode's CPU per request against both floors, every load."""
    c = [cpu_of("opreg slot_array; io_uring completion", l) for l in LOADS]
    u = [cpu_of("floor (bare io_uring)", l) for l in LOADS]
    e = [cpu_of("floor (bare epoll)", l) for l in LOADS]
    return (f"{c[0] / u[0]:.2f}x, {c[1] / u[1]:.2f}x and {c[2] / u[2]:.2f}x the io_uring floor's "
            f"CPU per request at 100 connections, 1,000 and pipelined ({u[0]:.2f}, {u[1]:.2f} and "
            f"{u[2]:.2f} µs), {c[0] / e[0]:.2f}x, {c[1] / e[1]:.2f}x and {c[2] / e[2]:.2f}x the "
            f"epoll floor's; the io_uring floor itself is {u[0] / e[0]:.2f}x, {u[1] / e[1]:.2f}x "
            f"and {u[2] / e[2]:.2f}x the epoll floor's")


def fastapi_row():
    rows = demo_rows()
    f = rows["FastAPI/uvicorn (1 worker)"]
    o = [cpu_of("opreg slot_array", l) for l in LOADS]
    fc = [float(f[f"server_cpu_us_per_req_{l}"]) for l in LOADS]
    return (f"{num(int(f[LOADS[0]]))}, {num(int(f[LOADS[1]]))} and {num(int(f[LOADS[2]]))} req/s "
            f"at 100 connections, 1,000 and pipelined, {fc[0]:.0f}, {fc[1]:.0f} and {fc[2]:.0f} µs "
            f"of CPU a request: {fc[0] / o[0]:.0f}x, {fc[1] / o[1]:.0f}x and {fc[2] / o[2]:.0f}x "
            f"`opreg-httpd`'s")


DEMO_1126 = "2026-11-26-vm.csv"
IDLE_1126 = "2026-11-26-vm-idle-memory.md"


def strategies_1126():
    with open(os.path.join(RESULTS, DEMO_1126), newline="") as f:
        v = [int(r[LOADS[0]]) / 1e3 for r in csv.DictReader(f)
             if r["implementation"] in {f"opreg {st}" for st in STRATEGIES}]
    return f"{span(min(v), max(v), num)}k"


def idle_1126():
    t = table_with(IDLE_1126, "server")
    return (f"nginx adds {num(int(t['nginx (1 worker)'][2]))} bytes of RSS each; `opreg-httpd` "
            f"preallocates its connection pool and registry ("
            f"{int(t['opreg-httpd slot_array'][1]) / 1024:.1f} MiB RSS in all with `slot_array`, "
            f"against nginx's {int(t['nginx (1 worker)'][1]) / 1024:.1f} MiB)")


FIGURES = {
    "demo-table": (demo_table, DEMO),
    "demo-spread": (demo_spread, DEMO_RUNS),
    "demo-rounds": (demo_rounds, DEMO_RUNS),
    "strategies-cpu": (strategies_cpu, DEMO),
    "floor-cpu": (floor_cpu, DEMO),
    "registry-op-ns": (single_thread_ns, " and ".join(BENCH)),
    "mutex-cross-thread": (mutex_cross_thread, " and ".join(BENCH)),
    "cross-thread-2": (cross_thread_2, " and ".join(BENCH)),
    "rearm-cost": (rearm_cost, DEMO),
    "nagle-rate": (nagle_rate, DEMO),
    "nagle-slowdown": (nagle_slowdown, DEMO),
    "nagle-ms": (nagle_ms, DEMO),
    "pipelined-vs-nginx": (pipelined_vs_nginx, DEMO),
    "idle-table": (idle_table, IDLE),
    "idle-source": (idle_source, IDLE),
    "idle-thread-10000": (idle_thread, IDLE),
    "bench-registries": (bench_registries, BENCH[-1]),
    "arm-fire-ratio": (arm_fire_ratio, BENCH[-1]),
    "ping-pong": (ping_pong, BENCH[-1]),
    "router-ns": (router_ns, BENCH[-1]),
    "cross-thread-runs": (cross_thread_runs, " and ".join(BENCH)),
    "ab-mutex": (ab_mutex, AB),
    "ab-mpsc": (ab_mpsc, AB),
    "ab-memory": (ab_memory, AB),
    "queue-by-value": (queue_by_value, QUEUES),
    "queue-pool": (queue_pool, QUEUES),
    "queue-one-core": (queue_one_core, QUEUES),
    "uring-readiness": (uring_readiness, DEMO),
    "completion-cpu": (completion_cpu, DEMO),
    "pipelined-vs-floor": (pipelined_vs_floor, DEMO),
    "completion-vs-floors": (completion_vs_floors, DEMO),
    "fastapi": (fastapi_row, DEMO),
    "strategies-2026-11-26": (strategies_1126, DEMO_1126),
    "idle-2026-11-26": (idle_1126, IDLE_1126),
}

# A figure's name is lower case, so that prose may write the marker's form with NAME in it.
MARK = re.compile(r"<!-- figure ([a-z0-9-]+) -->(\n?)(.*?)(\n?)<!-- /figure -->", re.S)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true",
                      help="exit 1 if a marked figure differs from what it computes")
    mode.add_argument("--write", action="store_true", help="rewrite every marked figure")
    mode.add_argument("--list", action="store_true", help="print every figure and its source")
    a = ap.parse_args()
    values = {name: fn() for name, (fn, _) in FIGURES.items()}
    if a.list:
        for name, (_, source) in FIGURES.items():
            print(f"{name} (bench/results/{source}):\n  " + values[name].replace("\n", "\n  "))
        return 0
    stale, unknown, used = [], [], set()
    for doc in DOCS:
        path = os.path.join(ROOT, doc)
        text = open(path, encoding="utf-8").read()

        def fill(m):
            name, nl, old, _ = m.groups()
            if "<!-- figure " in old:
                unknown.append(f"{doc}: <!-- figure {name} --> has no end before the next figure")
                return m.group(0)
            if name not in values:
                unknown.append(f"{doc}: <!-- figure {name} --> names no figure")
                return m.group(0)
            used.add(name)
            if old != values[name]:
                stale.append(f"{doc}: {name}:\n    quoted:   {old!r}\n    computed: {values[name]!r}")
            return f"<!-- figure {name} -->{nl}{values[name]}{nl}<!-- /figure -->"
        new = MARK.sub(fill, text)
        if a.write and new != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
    unused = [n for n in FIGURES if n not in used]
    for line in unknown + ([] if a.write else stale):
        print(line)
    if unused:
        print(f"figures no document quotes: {', '.join(unused)}")
    ok = not unknown and not unused and (a.write or not stale)
    print(f"figures: {len(used)} of {len(FIGURES)} quoted in {len(DOCS)} files, "
          f"{len(stale)} {'rewritten' if a.write else 'stale'}, {len(unknown)} unknown")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
