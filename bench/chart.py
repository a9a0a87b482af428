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

    def panel(ax, series, ticks, width, offset, fmt, target, target_label, ylabel, title):
        """Grouped bars: series is [(label, color, [value or None per tick])]."""
        for i, (label, color, values) in enumerate(series):
            points = [(j + (i - offset) * width, y) for j, y in enumerate(values) if y is not None]
            ax.bar([x for x, _ in points], [y for _, y in points], width, label=label, color=color)
            for x, y in points:
                ax.text(x, y, fmt.format(y), ha="center", va="bottom", fontsize=8)
        ax.axhline(target, color="tab:red", linestyle="--", linewidth=1, label=target_label)
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels(ticks)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.margins(y=0.3)  # room for the legend above the tallest bar
        ax.legend(fontsize=8, loc="upper left")

    def ratio(num, den):
        return num / den if num is not None and den else None

    cpu = ["hs13_ecdsa", "hs13_rsa", "resume13", "hs12_ecdsa", "echo_16k"]
    panel(axes[0], [(label, color, [ratio(val(n, side), val(n, "plain")) for n in cpu])
                    for side, label, color in sides],
          ["TLS 1.3\nECDSA", "TLS 1.3\nRSA", "TLS 1.3\nresumed", "TLS 1.2\nECDSA", "echo\nper MB"],
          0.27, 1, "{:.2f}", 0.9, "target 0.9x plain",
          "server CPU per unit / plain OpenSSL's (lower is better)", "Server CPU per handshake and per MB")

    mem = sorted((n for n in rows if n.startswith("idle_kb_")), key=lambda n: int(n.split("_")[-1]))
    panel(axes[1], [(label, color, [val(n, side) for n in mem]) for side, label, color in sides],
          [n.split("_")[-1] + " conns" for n in mem], 0.27, 1, "{:.0f}", 20, "target 20 KB",
          "resident KB per idle connection", "Idle memory")

    groups = [("hs_wall", "handshakes\nper wall s"), ("hs_cpu", "handshakes\nper CPU s"),
              ("mb_cpu", "MB per\nCPU s")]
    panel(axes[2], [(label, color, [ratio(val(g + "_2loops", side), val(g + "_1loop", side)) for g, _ in groups])
                    for side, label, color in sides[:2]],
          [t for _, t in groups], 0.35, 0.5, "{:.2f}", 1.8, "target 1.8x (wall)", "2 loops / 1 loop", "Scale-out")

    fig.suptitle("tlsengine over loopback: figures from the server process's own CPU time and RSS")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: chart.py NETBENCH.csv OUT.png")
    main(sys.argv[1], sys.argv[2])
