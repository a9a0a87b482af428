#!/usr/bin/python3
"""Draws bench/netbench.png from the CSV netbench writes (bench/run does both).

  /usr/bin/python3 bench/chart.py bench/netbench.csv bench/netbench.png

Three panels: server CPU per unit relative to plain OpenSSL (lower is
better; the issue's 0.9x target is drawn), resident KB per idle connection
(20 KB target), and two loops against one (1.8x target).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    rows = {r["name"]: r for r in csv.DictReader(open(src))}

    def val(name, side):
        v = rows.get(name, {}).get(side, "")
        return float(v) if v else None

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), gridspec_kw={"width_ratios": [5, 2, 2]})
    sides = [("engine", "engine (epoll adapter)", "tab:blue"), ("plain", "plain OpenSSL", "tab:gray"),
             ("node", "Node tls", "tab:green")]

    ax = axes[0]
    cpu = ["hs13_ecdsa", "hs13_rsa", "resume13", "hs12_ecdsa", "echo_16k"]
    labels = ["TLS 1.3\nECDSA", "TLS 1.3\nRSA", "TLS 1.3\nresumed", "TLS 1.2\nECDSA", "echo\nper MB"]
    for i, (side, label, color) in enumerate(sides):
        xs, ys = [], []
        for j, name in enumerate(cpu):
            v, base = val(name, side), val(name, "plain")
            if v is not None and base:
                xs.append(j + (i - 1) * 0.27)
                ys.append(v / base)
        ax.bar(xs, ys, 0.27, label=label, color=color)
        for x, y in zip(xs, ys):
            ax.text(x, y, f"{y:.2f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(0.9, color="tab:red", linestyle="--", linewidth=1, label="target 0.9x plain")
    ax.set_xticks(range(len(cpu)))
    ax.set_xticklabels(labels)
    ax.set_ylabel("server CPU per unit / plain OpenSSL's (lower is better)")
    ax.set_title("Server CPU per handshake and per MB")
    ax.margins(y=0.3)  # room for the legend above the tallest bar
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[1]
    mem = sorted((n for n in rows if n.startswith("idle_kb_")), key=lambda n: int(n.split("_")[-1]))
    for i, (side, label, color) in enumerate(sides):
        xs, ys = [], []
        for j, name in enumerate(mem):
            v = val(name, side)
            if v is not None:
                xs.append(j + (i - 1) * 0.27)
                ys.append(v)
        ax.bar(xs, ys, 0.27, label=label, color=color)
        for x, y in zip(xs, ys):
            ax.text(x, y, f"{y:.0f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(20, color="tab:red", linestyle="--", linewidth=1, label="target 20 KB")
    ax.set_xticks(range(len(mem)))
    ax.set_xticklabels([n.split("_")[-1] + " conns" for n in mem])
    ax.set_ylabel("resident KB per idle connection")
    ax.set_title("Idle memory")
    ax.margins(y=0.3)  # room for the legend above the tallest bar
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[2]
    groups = [("hs_wall", "handshakes\nper wall s"), ("hs_cpu", "handshakes\nper CPU s"),
              ("mb_cpu", "MB per\nCPU s")]
    for i, (side, label, color) in enumerate(sides[:2]):
        xs, ys = [], []
        for j, (g, _) in enumerate(groups):
            one, two = val(g + "_1loop", side), val(g + "_2loops", side)
            if one and two is not None:
                xs.append(j + (i - 0.5) * 0.35)
                ys.append(two / one)
        ax.bar(xs, ys, 0.35, label=label, color=color)
        for x, y in zip(xs, ys):
            ax.text(x, y, f"{y:.2f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(1.8, color="tab:red", linestyle="--", linewidth=1, label="target 1.8x (wall)")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[1] for g in groups])
    ax.set_ylabel("2 loops / 1 loop")
    ax.set_title("Scale-out")
    ax.margins(y=0.3)  # room for the legend above the tallest bar
    ax.legend(fontsize=8, loc="upper left")

    fig.suptitle("tlsengine over loopback: figures from the server process's own CPU time and RSS")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: chart.py NETBENCH.csv OUT.png")
    main(sys.argv[1], sys.argv[2])
