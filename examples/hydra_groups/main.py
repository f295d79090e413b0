"""A pyexp experiment whose base config is composed from YAML config groups (../../conf).

    python main.py                                     # conf/config.yaml: model=mlp, optimizer=adam
    python main.py model=transformer lr=0.01           # pick a group option, change a value
    python main.py -m model=mlp,transformer lr=0.1,0.01 --executor fork
                                                       # 2 seeds x 2 models x 2 lrs = shape (2, 2, 2)
    python main.py -m model=glob(*) +pyexp.continue=latest

Hydra composes the YAML once per model choice; the lr sweep reuses that composition.
"""

import math

import pyexp
from pyexp import Config, sweep


@pyexp.experiment(name="groups", config_path="../../conf", config_name="config")
def train(config: Config) -> dict:
    size = config.model.get("hidden_size", config.model.get("d_model", 1))
    loss = 1.0 / (1.0 + config.lr * math.log(size) * config.epochs) + 0.01 * config.seed
    return {"loss": loss}


@train.configs
def configs(base: Config):
    # `base` is conf/config.yaml composed with the command line's group choices.
    return sweep([base], [{"name": f"seed{s}", "seed": s} for s in (0, 1)])


@train.report
def report(results, report_dir):
    print("shape", results.shape, "axes", results.axes)
    for r in results:
        print(f"{r.name}: {r.result['loss']:.4f}" if not r.error else f"{r.name}: {r.error}")


if __name__ == "__main__":
    train.run()
