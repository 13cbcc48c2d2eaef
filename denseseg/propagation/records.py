"""The rounds' records as the propagate stage reports them: metrics, table rows and plot rows.

Wall time stays out of all three (it goes to the log): the same params give the
same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from denseseg.anatomy import Anatomy
from denseseg.propagation.rounds import PropagationResult, RoundRecord

LOSS_COLUMNS = ["step", "round", "epoch", "loss"]


def round_metrics(rec: RoundRecord) -> dict:
    """A round's counts and its Dice / ASD (accepted and all predicted images), with the accepted per group."""
    out = {k: v for k, v in rec.as_dict().items() if k not in ("scores", "seconds", "epoch_losses")}
    out["images_accepted"] = rec.n_accepted
    for which in ("accepted", "all"):
        groups = rec.scores.get(which, {})
        out[f"dice_mean_{which}"] = groups.get("all", {}).get("dice_mean", float("nan"))
        out[f"asd_mean_{which}_px"] = groups.get("all", {}).get("asd_mean", float("nan"))
    out["groups"] = {g: v for g, v in rec.scores.get("accepted", {}).items() if g != "all"}
    return out


def round_row(rec: RoundRecord, anatomy: Anatomy) -> dict:
    """A flat row of ``round_metrics`` (per group: ``dice_<group>``, ``asd_<group>_px``) for tables and plots."""
    m = round_metrics(rec)
    row = {k: v for k, v in m.items() if k != "groups"}
    for group in sorted(anatomy.groups):
        scores = m["groups"].get(group, {})
        row[f"dice_{group}"] = scores.get("dice_mean", float("nan"))
        row[f"asd_{group}_px"] = scores.get("asd_mean", float("nan"))
    return row


def loss_rows(
    records: Sequence[RoundRecord], epochs_per_round: Callable[[int], int]
) -> list[tuple[int, int, int, float]]:
    """(step, round, epoch, loss) for the training-loss plot; ``step`` counts epochs over all rounds.

    A round record with ``epoch_losses`` (the mean loss of every epoch) gives
    one row per epoch; one without gives its final ``train_loss`` at its last
    epoch (``epochs_per_round(round)``).
    """
    rows, step = [], 0
    for rec in records:
        per_epoch = list(getattr(rec, "epoch_losses", None) or [])
        if per_epoch:
            for epoch, loss in enumerate(per_epoch, 1):
                rows.append((step + epoch, rec.round, epoch, float(loss)))
            step += len(per_epoch)
        else:
            last = epochs_per_round(rec.round)
            rows.append((step + last, rec.round, last, float(rec.train_loss)))
            step += last
    return rows


def propagation_metrics(
    result: PropagationResult,
    images_in: int,
    seeds_used: int,
    seeds_rejected: int,
    seed_scores: dict | None,
    scored: bool,
    refiner_description: str,
    device: str,
) -> dict:
    """The propagate stage's metrics: counts, the last round's scores (accepted images) and every round's.

    Args:
        result: what ``propagate`` returned.
        images_in: the ingested images.
        seeds_used: the seed images whose annotation was used.
        seeds_rejected: the seed images whose annotation was not.
        seed_scores: the seeds' group scores against truth (None without truth).
        scored: whether the rounds were scored against truth.
        refiner_description: the refiner, in words.
        device: where the network ran.
    """
    last = result.records[-1]
    accepted = last.scores.get("accepted", {}).get("all", {})
    predicted = last.scores.get("all", {}).get("all", {})
    return {
        "refiner": result.refiner,
        "refiner_description": refiner_description,
        "device": device,
        "images_in": images_in,
        "seeds_used": seeds_used,
        "seeds_rejected": seeds_rejected,
        "final_images_accepted": seeds_used + len(result.accepted),
        "final_pseudo_accepted": len(result.accepted),
        "final_images_excluded": len(result.rejected),
        "final_dice_mean": accepted.get("dice_mean", float("nan")),
        "final_asd_mean_px": accepted.get("asd_mean", float("nan")),
        "final_dice_mean_all_predicted": predicted.get("dice_mean", float("nan")),
        "final_groups": last.scores.get("accepted", {}),
        "seed_groups": seed_scores or {},
        "scored_against_truth": scored,
        "rounds": {str(rec.round): round_metrics(rec) for rec in result.records},
    }
