"""Evaluation and the final report: SE vs SNR of the model, the SVD bound and OMP (N_RF = Ns),
as a markdown table, JSON, and PNG plots (SE vs SNR; training curves). Matplotlib with the Agg
backend (no display needed)."""

from __future__ import annotations

import json
import os

import torch

from beamkernels.train.sources import chunks


@torch.no_grad()
def predict(model: torch.nn.Module, H: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """F, W of ``model`` (in eval mode) on H, in chunks."""
    was = model.training
    model.eval()
    Fs, Ws = [], []
    for sl in chunks(H.shape[0], batch_size):
        F, W = model(H[sl])
        Fs.append(F)
        Ws.append(W)
    model.train(was)
    return torch.cat(Fs), torch.cat(Ws)


def model_se(model, H, snr_db: float, batch_size: int) -> float:
    from beamkernels.metrics import spectral_efficiency

    F, W = predict(model, H, batch_size)
    return float(spectral_efficiency(H, F, W, snr_db))


@torch.no_grad()
def se_table(model, data: dict, sweep_db, batch_size: int, Ns: int, with_omp: bool) -> dict:
    """Per SNR: model SE, SVD bound, OMP hybrid (N_RF = Ns, Alg. 1 + Alg. 2) when the path
    responses are known (generated data), in bits/s/Hz averaged over samples and subcarriers."""
    from beamkernels.metrics import spectral_efficiency, svd_bound

    H = data["H"]
    F, W = predict(model, H, batch_size)
    rows = []
    omp_F = None
    if with_omp and "At" in data:
        from beamkernels.metrics import omp_combiner, omp_precoder

        F_RF, F_BB = omp_precoder(data["Fopt"], data["At"], Ns)
        omp_F = F_RF.unsqueeze(-3) @ F_BB
    for snr in sweep_db:
        row = {
            "snr_db": float(snr),
            "model": float(spectral_efficiency(H, F, W, snr)),
            "svd_bound": float(svd_bound(H, Ns, snr)),
        }
        if omp_F is not None:
            W_RF, W_BB = omp_combiner(None, data["Ar"], Ns, H=H, F=omp_F, snr_db=snr)
            row["omp"] = float(spectral_efficiency(H, omp_F, W_RF.unsqueeze(-3) @ W_BB, snr))
        row["model_over_bound"] = row["model"] / row["svd_bound"]
        if "omp" in row:
            row["model_over_omp"] = row["model"] / row["omp"]
            row["omp_over_bound"] = row["omp"] / row["svd_bound"]
        rows.append(row)
    return {"rows": rows, "samples": int(H.shape[0])}


def _headline(table: dict, snr_db: float) -> dict | None:
    for r in table["rows"]:
        if abs(r["snr_db"] - snr_db) < 1e-9:
            return r
    return None


def write_report(out: str, cfg_dict: dict, info: dict, table: dict, history: dict) -> dict:
    """report.md, report.json, se_vs_snr.png, training_curves.png in ``out``."""
    os.makedirs(out, exist_ok=True)
    head = _headline(table, cfg_dict["snr_db"])
    report = {"config": cfg_dict, "info": info, "se_vs_snr": table, "headline": head, "history": history}
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    has_omp = any("omp" in r for r in table["rows"])
    lines = [
        f"# Training report: {cfg_dict['model']}",
        "",
        f"- data: {info.get('data', '')}",
        f"- model config: `{json.dumps(cfg_dict['model_config'])}`, {info.get('parameters', '?'):,} parameters (real)",
        f"- loss {cfg_dict['loss']}, optimizer {cfg_dict['optimizer']} lr {cfg_dict['lr']}, schedule {cfg_dict['schedule']}, "
        f"batch {cfg_dict['batch_size']} x {info.get('world_size', 1)} process(es)",
        f"- trained {info.get('steps', 0)} steps ({info.get('epochs_done', 0)} epochs) in {info.get('train_seconds', 0):.0f} s "
        f"on {info.get('device', '?')}{' (stopped by the time budget)' if info.get('stopped_by_budget') else ''}",
        f"- evaluated on {table['samples']} held-out samples, checkpoint: {info.get('evaluated_checkpoint', 'last')}",
    ]
    if head is not None:
        s = f"- **SE at {head['snr_db']:g} dB: {head['model']:.2f} bits/s/Hz = {100 * head['model_over_bound']:.1f}% of the SVD bound ({head['svd_bound']:.2f})"
        if "omp" in head:
            s += f", {100 * head['model_over_omp']:.1f}% of OMP with N_RF = Ns ({head['omp']:.2f})"
        lines.append(s + "**")
    lines += ["", "| SNR (dB) | model | SVD bound | model / bound |" + (" OMP (N_RF = Ns) | model / OMP |" if has_omp else ""),
              "|---:|---:|---:|---:|" + ("---:|---:|" if has_omp else "")]
    for r in table["rows"]:
        line = f"| {r['snr_db']:g} | {r['model']:.3f} | {r['svd_bound']:.3f} | {100 * r['model_over_bound']:.1f}% |"
        if has_omp:
            line += f" {r['omp']:.3f} | {100 * r['model_over_omp']:.1f}% |"
        lines.append(line)
    lines += ["", "SE in bits/s/Hz, averaged over samples and subcarriers (noise variance 1, ||F_k||_F^2 = Ns).",
              "![SE vs SNR](se_vs_snr.png)", "![training curves](training_curves.png)", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))
    plot_se(os.path.join(out, "se_vs_snr.png"), table, cfg_dict["model"])
    plot_curves(os.path.join(out, "training_curves.png"), history, cfg_dict)
    return report


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_se(path: str, table: dict, label: str) -> None:
    plt = _plt()
    snr = [r["snr_db"] for r in table["rows"]]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(snr, [r["svd_bound"] for r in table["rows"]], "k--", label="SVD bound")
    if all("omp" in r for r in table["rows"]):
        ax.plot(snr, [r["omp"] for r in table["rows"]], "s-", label="OMP (N_RF = Ns)")
    ax.plot(snr, [r["model"] for r in table["rows"]], "o-", label=label)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("spectral efficiency (bits/s/Hz)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_curves(path: str, history: dict, cfg_dict: dict) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    if history.get("step_loss"):
        a.plot(range(1, len(history["step_loss"]) + 1), history["step_loss"], lw=0.6, alpha=0.6, label="step")
    if history.get("epoch_loss"):
        ends = history.get("epoch_end_step") or list(range(1, len(history["epoch_loss"]) + 1))
        a.plot(ends, history["epoch_loss"], "o-", label="epoch mean")
    a.set_xlabel("step")
    a.set_ylabel(f"{cfg_dict['loss']} loss")
    a.grid(True, alpha=0.3)
    if a.get_legend_handles_labels()[0]:
        a.legend()
    if history.get("val_se"):
        ends = history.get("epoch_end_step") or list(range(1, len(history["val_se"]) + 1))
        b.plot(ends, history["val_se"], "o-", label="model (validation)")
        if history.get("val_bound"):
            b.axhline(history["val_bound"], color="k", ls="--", label="SVD bound")
    b.set_xlabel("step")
    b.set_ylabel(f"SE at {cfg_dict['snr_db']:g} dB (bits/s/Hz)")
    b.grid(True, alpha=0.3)
    if b.get_legend_handles_labels()[0]:
        b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
