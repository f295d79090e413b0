"""Quickstart: logistic regression on scikit-learn's bundled breast-cancer data, a 2x2 sweep.

    python examples/quickstart/main.py              # fresh run
    python examples/quickstart/main.py --continue   # resume the latest run
    python examples/quickstart/main.py --report     # only rebuild the report
"""

import matplotlib
import numpy as np

import pyexp
from pyexp import Config, Logger, sweep


def load_data(seed: int):
    from sklearn.datasets import load_breast_cancer  # ships with scikit-learn: no download

    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    split = int(0.8 * len(y))
    return x[:split], y[:split], x[split:], y[split:]


# load_data imports scikit-learn lazily; preloading it lets the fork-server import it once for
# all configs instead of once per config.
@pyexp.experiment(name="logreg", preload=["sklearn.datasets"])
def experiment(config: Config, logger: Logger):
    x_train, y_train, x_test, y_test = load_data(config.seed)
    w = np.zeros(x_train.shape[1])
    b = 0.0
    for epoch in range(config.epochs):
        p = 1.0 / (1.0 + np.exp(-(x_train @ w + b)))
        loss = -np.mean(y_train * np.log(p + 1e-12) + (1 - y_train) * np.log(1 - p + 1e-12))
        w -= config.learning_rate * (x_train.T @ (p - y_train) / len(y_train) + config.l2 * w)
        b -= config.learning_rate * float(np.mean(p - y_train))
        logger.set_global_it(epoch)
        logger.add_scalar("train/loss", float(loss))
        logger.add_scalar("train/accuracy", float(np.mean((p > 0.5) == y_train)))
        if epoch % 25 == 0:
            logger.add_text("weights", f"epoch {epoch}: |w| = {np.linalg.norm(w):.3f}, b = {b:+.3f}")
    accuracy = float(np.mean(((x_test @ w + b) > 0) == y_test))
    logger.add_figure("weights", weight_plot(w), interactive=False)  # shown in the viewer
    print(f"{config.name}: test accuracy {accuracy:.3f}")
    return {"accuracy": accuracy, "final_loss": float(loss)}


def weight_plot(w):
    matplotlib.use("Agg")  # no display needed: the figure is pickled and rendered to PNG
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(np.arange(len(w)), w)
    ax.set_xlabel("feature")
    ax.set_ylabel("weight")
    fig.tight_layout()
    plt.close(fig)
    return fig


@experiment.configs
def configs():
    cfgs = [{"name": "logreg", "seed": 0, "l2": 1e-3}]
    cfgs = sweep(cfgs, [
        {"name": "lr0.1", "learning_rate": 0.1},
        {"name": "lr0.01", "learning_rate": 0.01},
    ])
    return sweep(cfgs, [
        {"name": "e50", "epochs": 50},
        {"name": "e300", "epochs": 300},
    ])


@experiment.report
def report(results, report_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    print(f"\n{'config':<24} {'accuracy':>9} {'final loss':>11}")
    for r in results:
        if r.error:
            print(f"{r.name:<24} failed: {r.error}")
        else:
            print(f"{r.name:<24} {r.result['accuracy']:>9.3f} {r.result['final_loss']:>11.4f}")

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        if r.logger is not None:
            steps, losses = zip(*r.logger.load_scalars("train/loss"))
            ax.plot(steps, losses, label=r.name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(report_dir / "loss.png")
    print(f"\nresults shape {results.shape}; plot saved to {report_dir / 'loss.png'}")
    return results


if __name__ == "__main__":
    experiment.run()
