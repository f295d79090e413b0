"""A plain ``@hydra.main`` app that runs its multirun sweeps on pyexp's launcher.

    python app.py -m hydra/launcher=pyexp model=mlp,transformer lr=0.1,0.01
    python app.py -m hydra/launcher=pyexp hydra.launcher.executor=fork hydra.launcher.jobs=2 seed=range(4)
    python app.py -m hydra/launcher=pyexp seed=range(6) +pyexp.continue=latest   # runs only seeds 4, 5
    python app.py -m hydra/launcher=pyexp +crash=true seed=0,1                     # both fail alone

Each job's result is cached under ``out/app/<timestamp>/<overrides>-<hash>/``
(``result.pkl``, ``log.out``, ``config.json``); Hydra's own ``multirun/`` folders are
written as usual. The config groups come from the repository's top-level ``conf/``.
"""

import math

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="../../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    if cfg.get("crash"):
        import ctypes

        ctypes.string_at(0)  # a segfault: only this job dies
    size = cfg.model.get("hidden_size", cfg.model.get("d_model", 1))
    loss = 1.0 / (1.0 + cfg.lr * math.log(size) * cfg.epochs) + 0.01 * cfg.seed
    print(f"{cfg.model.type} lr={cfg.lr} seed={cfg.seed}: loss={loss:.4f}")
    return loss


if __name__ == "__main__":
    main()
