"""`make soak`'s figures: per fault kind, recovery to data and to status `up`
(median, p95, max), faults never recovered; then orphans, crashes, and whether
status agreed with the forwards at the end."""

import statistics

from faults import KINDS


def percentile(xs, q):
    """Nearest rank: the smallest sample with at least q of them at or below it."""
    xs = sorted(xs)
    if not xs:
        return None
    rank = max(1, -(-len(xs) * q // 100))
    return xs[int(rank) - 1]


def figures(samples):
    ok = [x for x in samples if x is not None]
    return {"samples": len(samples), "never": len(samples) - len(ok),
            "median": statistics.median(ok) if ok else None, "p95": percentile(ok, 95), "max": max(ok) if ok else None}


def summarize(soak, meta, final, exit_code, left):
    kinds = {}
    for kind in KINDS:
        faults = [f for f in soak.faults if f.kind == kind]
        applied = [f for f in faults if not f.skipped]
        data = [x for f in applied for x in f.data.values()]
        status = [x for f in applied for x in f.status.values()]
        never = sum(1 for f in applied if any(x is None for x in list(f.data.values()) + list(f.status.values())))
        unnoticed = sum(1 for f in applied for v in f.status_left_up.values() if not v)
        detected = [x for f in applied for x in f.detected.values()]
        refused = sum(x for f in applied for x in f.refused.values())
        kinds[kind] = {"refused_connects": refused, "faults": len(faults), "skipped": len(faults) - len(applied), "never_recovered": never,
                       "data": figures(data), "status": figures(status), "status_never_left_up": unnoticed,
                       "freeze_detected": figures(detected) if kind == "freeze" else None}
    return {
        "meta": meta,
        "kinds": kinds,
        "faults_never_recovered": sum(k["never_recovered"] for k in kinds.values()),
        "orphans": sorted(soak.orphans),
        "zombies": sorted(soak.zombies),
        "ssh_left_after_stop": left,
        "supervisor_crashes": soak.crashes,
        "warren_exit": exit_code,
        "final": final,
        "disagreements": [r for r in final if not r["agree"]],
        "faults": [f.to_json(soak.t0) for f in soak.faults],
    }


def _ms(x):
    return "-" if x is None else f"{x * 1000:.0f}"


def render(result):
    m = result["meta"]
    lines = [f"warren soak ({m['timestamp']}, commit {m['commit']}; seed {m['seed']}; {m['tunnels']} tunnels, "
             f"{m['postgres']} postgres; {m['duration']:.0f} s of faults; keepalive {m['keepalive'][0]} s x "
             f"{m['keepalive'][1]}; {m['cpus']} cores, load {m['loadavg_before']:.2f} before, "
             f"{m['loadavg_after']:.2f} after)"]
    head = ["fault", "faults", "samples", "data med", "p95", "max", "status med", "p95", "max", "never", "refused"]
    body = []
    for kind, k in result["kinds"].items():
        d, s = k["data"], k["status"]
        body.append([kind, str(k["faults"] - k["skipped"]), str(d["samples"]), _ms(d["median"]), _ms(d["p95"]),
                     _ms(d["max"]), _ms(s["median"]), _ms(s["p95"]), _ms(s["max"]), str(k["never_recovered"]),
                     str(k["refused_connects"])])
    widths = [max(len(r[i]) for r in body + [head]) for i in range(len(head))]

    def fmt(cells):
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))

    lines += [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(r) for r in body]
    lines.append("(recovery in ms from the fault's end; never = faults with a tunnel not recovered within "
                 f"{m['recover_timeout']:.0f} s)")
    lines.append("")
    notes = []
    for kind, k in result["kinds"].items():
        if k["skipped"]:
            notes.append(f"{kind}: {k['skipped']} skipped")
        if k["status_never_left_up"] and kind == "target":
            notes.append(f"target: status never left `up` during {k['status_never_left_up']} of "
                         f"{k['status']['samples']} outages")
        if k["freeze_detected"] and k["freeze_detected"]["samples"]:
            notes.append(f"freeze: old ssh gone {_ms(k['freeze_detected']['median'])} ms after the freeze (median)")
    final = result["final"]
    up = sum(1 for r in final if r["state"] == "up")
    passing = sum(1 for r in final if r["passes"])
    lines += [
        f"faults never recovered: {result['faults_never_recovered']}",
        f"orphans: {len(result['orphans'])} ssh not warren's child, {len(result['zombies'])} zombies left unreaped, "
        f"{len(result['ssh_left_after_stop'])} ssh alive after warren stopped (exit {result['warren_exit']})",
        f"supervisor crashes: {len(result['supervisor_crashes'])}",
        f"at the end: {up} of {len(final)} `up` in status, {passing} pass data (psql / echo); "
        f"{len(result['disagreements'])} disagree"
        + ("".join(f"\n  {r['tunnel']} ({r['target']}): status {r['state']}, data "
                   f"{'passes' if r['passes'] else 'fails'}" for r in result["disagreements"])),
    ]
    if notes:
        lines.append("notes: " + "; ".join(notes))
    return "\n".join(lines)
