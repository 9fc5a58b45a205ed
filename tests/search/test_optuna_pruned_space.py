"""The Optuna engine searches the space the exhaustive engine enumerates: what static pruning removed is
never evaluated, and "evaluated" never exceeds the pruned space's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import dse
from dse.space import DIMENSIONS, Space, load_space

SPACE = {
    "name": "pruned",
    "model": "llama-3.1-70b",
    "workload": {"prompt_tokens": 1500, "output_tokens": 300},
    "slo": {"ttft_s": 2.0, "tpot_s": 0.05},
    "choices": {
        "hardware": ["h100-sxm", "l40s"],
        "quant": ["bf16", "fp8", "w4a16"],  # 70B in bf16 fits neither; fp8 not an l40s
        "batch": {"min": 1, "max": 512, "log": True},  # far above what fits
    },
    "objectives": [{"metric": "tpot_s"}, {"metric": "throughput_tokens_per_s_per_device"}],
}


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Space:
    path = tmp_path_factory.mktemp("space") / "space.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    return load_space(path)


def _enumerated(space: Space) -> set[int]:
    return set(space.candidate_ids(*space.codes_of_index(np.arange(space.size))).tolist())


def test_optuna_evaluates_only_candidates_of_the_pruned_space(space: Space, tmp_path: Path) -> None:
    assert len(space.pruned) == 3 and space.size < space.full_size - 3 * len(space.batches)
    statuses: list[dict[str, object]] = []
    found = dse.run(space, out=tmp_path, engine="optuna", trials=60, seed=1, progress=statuses.append)
    ids = found.columns["candidate_id"].tolist()
    assert set(ids) <= _enumerated(space) and len(ids) == len(set(ids))
    assert not np.any(found.columns["batch"] > found.columns["max_batch"])
    counts = found.summary["counts"]
    assert counts["evaluated"] == len(ids) <= counts["after_pruning"] == space.size
    assert statuses and all(s["total"] == space.size and s["evaluated"] <= s["total"] for s in statuses)


def test_optuna_trials_the_pruning_removed_are_told_infeasible(space: Space, tmp_path: Path) -> None:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    found = dse.run(space, out=tmp_path, engine="optuna", trials=60, seed=2)
    journal = JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    trials = optuna.load_study(study_name="pruned", storage=journal).trials
    evaluated = set(found.columns["candidate_id"].tolist())
    pruned = [t for t in trials if t.user_attrs["candidate_id"] is None]
    assert pruned and len(pruned) < len(trials)  # both kinds occur at this seed
    for trial in trials:
        p = trial.params
        codes = dict.fromkeys(DIMENSIONS, 0) | {
            "hardware": space.record.choices.hardware.index(p["hardware"]),
            "numerics": space.numerics_index[(p["quant"], None)],
            "batch": int(np.searchsorted(space.batches, p["batch"])),
        }
        (named,) = space.candidate_ids(*(np.asarray([codes[d]]) for d in DIMENSIONS)).tolist()
        if trial.user_attrs["candidate_id"] is None:  # removed by pruning: not evaluated, infeasible
            assert named not in _enumerated(space) and named not in evaluated
            assert trial.system_attrs["constraints:cost_model"] > 0
        else:  # evaluated as the candidate it names
            assert trial.user_attrs["candidate_id"] == named and named in evaluated
