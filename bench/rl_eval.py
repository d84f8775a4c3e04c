"""RL benchmark: train the DQN on the first 9 months of the shipped year, test on the last 3.

The split is chronological (no shuffling, no look-ahead): the policy never sees a test bar while
training. On the held-out bars it is compared with buy-and-hold over exactly the same bars, with
the same fee model (5 bps per unit of position changed). Sharpe is annualised with √8760 (hourly
bars), risk-free 0; max drawdown is a negative fraction. The figures are printed and written to
``bench/results/rl.json`` whatever they are.

Run: ``python bench/rl_eval.py [--episodes N] [--seed S] [--symbols BTCUSDT,ETHUSDT]``
(never with the repository root first on sys.path: its ``operator/`` folder shadows the stdlib).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import write_result
from tradingbot_agents.config import RLAgentSettings
from tradingbot_agents.exchange.simulator.data import klines_dir, load_series
from tradingbot_agents.rl.evaluate import Performance, buy_and_hold, run_policy
from tradingbot_agents.rl.policy import Policy

DEFAULT_SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
TRAIN_FRACTION = 0.75  # 9 of the 12 months


def _row(perf: Performance) -> dict[str, float]:
    return perf.as_dict()


def evaluate(symbols: list[str], episodes: int, seed: int) -> dict[str, object]:
    closes = {s: load_series(klines_dir() / f"{s}-1h.csv.gz").close for s in symbols}
    times = load_series(klines_dir() / f"{symbols[0]}-1h.csv.gz").open_time
    n = len(times)
    cut = int(n * TRAIN_FRACTION)
    settings = RLAgentSettings(seed=seed, train_episodes=episodes)
    train = {s: c[:cut] for s, c in closes.items()}
    started = time.perf_counter()
    policy, report = Policy.train(train, settings)
    train_s = time.perf_counter() - started
    window = settings.window
    per_symbol: dict[str, dict[str, object]] = {}
    for symbol, series in closes.items():
        # The test decisions start at the first held-out bar; the window before it is history.
        test = series[cut - window:]
        rl = run_policy(test, policy.dqn.act, policy.env)
        hold = buy_and_hold(test, policy.env)
        # The same decisions with no fee: how much of the result the costs take.
        gross = run_policy(test, policy.dqn.act, replace(policy.env, fee=0.0))
        in_sample = run_policy(series[:cut], policy.dqn.act, policy.env)
        per_symbol[symbol] = {"rl": _row(rl), "buy_and_hold": _row(hold), "rl_before_fees": _row(gross),
                              "rl_in_sample": _row(in_sample)}
    mean = {side: {k: float(np.mean([per_symbol[s][side][k] for s in symbols]))  # type: ignore[index]
                   for k in ("total_return", "sharpe", "max_drawdown")}
            for side in ("rl", "buy_and_hold", "rl_before_fees", "rl_in_sample")}
    return {
        "algorithm": "DQN (Mnih et al. 2015), numpy MLP, experience replay, target network, Huber, Adam",
        "seed": seed, "episodes": episodes, "episode_bars": settings.episode_bars,
        "hyper_parameters": policy.meta.hyper_parameters | {"window": window, "fee": policy.env.fee},
        "symbols": symbols,
        "train_period_ms": [int(times[0]), int(times[cut - 1])],
        "test_period_ms": [int(times[cut]), int(times[-1])],
        "train_bars": cut, "test_bars": n - cut,
        "train_seconds": round(train_s, 2), "train_steps": report.steps,
        "per_symbol": per_symbol,
        "mean_over_symbols": mean,
        "rl_beats_buy_and_hold_on": [s for s in symbols if per_symbol[s]["rl"]["total_return"]  # type: ignore[index]
                                     > per_symbol[s]["buy_and_hold"]["total_return"]],  # type: ignore[index]
    }


def _print(result: dict[str, object]) -> None:
    print(f"DQN seed {result['seed']}, {result['episodes']} episodes × {result['episode_bars']} bars "
          f"({result['train_steps']} steps, {result['train_seconds']} s); train {result['train_bars']} bars, "
          f"held-out test {result['test_bars']} bars (last 3 months)")
    print(f"{'symbol':<10} {'RL return':>10} {'RL Sharpe':>10} {'RL maxDD':>9} {'trades':>7} | "
          f"{'B&H return':>10} {'B&H Sharpe':>10} {'B&H maxDD':>9}")
    per_symbol: dict[str, dict[str, dict[str, float]]] = result["per_symbol"]  # type: ignore[assignment]
    for symbol, row in per_symbol.items():
        rl, hold = row["rl"], row["buy_and_hold"]
        print(f"{symbol:<10} {rl['total_return']:>10.2%} {rl['sharpe']:>10.2f} {rl['max_drawdown']:>9.2%} "
              f"{int(rl['trades']):>7} | {hold['total_return']:>10.2%} {hold['sharpe']:>10.2f} "
              f"{hold['max_drawdown']:>9.2%}")
    mean: dict[str, dict[str, float]] = result["mean_over_symbols"]  # type: ignore[assignment]
    rl, hold = mean["rl"], mean["buy_and_hold"]
    print(f"{'mean':<10} {rl['total_return']:>10.2%} {rl['sharpe']:>10.2f} {rl['max_drawdown']:>9.2%} "
          f"{'':>7} | {hold['total_return']:>10.2%} {hold['sharpe']:>10.2f} {hold['max_drawdown']:>9.2%}")
    gross, in_sample = mean["rl_before_fees"], mean["rl_in_sample"]
    print(f"RL on the same test bars before fees: mean return {gross['total_return']:.2%}, Sharpe "
          f"{gross['sharpe']:.2f}; in-sample (training bars, with fees): {in_sample['total_return']:.2%}, "
          f"Sharpe {in_sample['sharpe']:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=RLAgentSettings().seed)
    parser.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS))
    args = parser.parse_args(argv if argv is not None else [])
    result = evaluate([s.strip().upper() for s in args.symbols.split(",") if s.strip()], args.episodes, args.seed)
    _print(result)
    path = write_result("rl", result)
    print(f"written to {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
