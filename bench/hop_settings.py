"""1d. The hop, priced one Celery setting at a time: the bare hop (`bench.hop`)
in a bare Celery app with Celery's defaults, then with each setting celeryconfig.py sets
added alone (bench.kit.hop_apps), then with all of celeryconfig.py, and in marketscan's own
worker (celeryconfig.py and marketscan's signal handlers). One worker per app (prefork,
concurrency 1), all up at once on queues of their own. Each app's run is paired with a
run of the defaults app just before it, so load that drifts over the figure (the machine is
shared) moves both; a setting's cost is the median of its paired differences. Rounds run
every app in turn, starting one app further along each round, x 3 (300 hops a run).
"""

from __future__ import annotations

import celeryconfig
from bench.kit.harness import Bench, say, wait_ready
from bench.kit.hop import hop_seconds
from bench.kit.hop_apps import APPS, VARIANTS, Variant
from bench.kit.report import Row, Table, median, ms, spread
from worker.app import app as project_app

NAME = "hop-settings"
PROJECT = "marketscan worker"


def run(bench: Bench) -> list[Row]:
    hops, rounds = bench.size(300, 150), bench.size(3, 1)
    apps = {**APPS, PROJECT: project_app}
    seconds: dict[str, list[float]] = {name: [] for name in apps}
    paired: dict[str, list[float]] = {name: [] for name in apps}
    with bench.database(NAME) as url:
        env = bench.worker_env(url)
        started = [bench.start_worker(env, "hop-project@bench", wait=False)]
        started += [
            bench.start_worker(
                env, f"hop-{name}@bench", app=f"bench.kit.hop_apps:{name}", wait=False
            )
            for name in APPS
        ]
        for process in started:
            wait_ready(process, timeout_s=180)
        others = [name for name in apps if name != "defaults"]
        for round_number in range(rounds):
            shift = round_number % len(others)
            for name in others[shift:] + others[:shift]:
                seconds["defaults"].append(hop_seconds(apps["defaults"], bench.broker_url, hops))
                seconds[name].append(hop_seconds(apps[name], bench.broker_url, hops))
                paired[name].append(seconds[name][-1] - seconds["defaults"][-1])
            say(f"{NAME} round {round_number + 1}/{rounds} done")
    hop = {name: median(values) for name, values in seconds.items()}
    cost = {name: median(values) for name, values in paired.items() if values}
    bench.tables.append(_table(hop, cost, paired, hops))
    floor = hop["defaults"]
    return [
        Row(
            figure="1d the hop: our Celery settings vs Celery's defaults",
            measured=f"marketscan worker {ms(hop[PROJECT])}; celeryconfig.py on a bare app "
            f"{ms(hop['ours'])}",
            floor=f"Celery's defaults {ms(floor)}; paired difference "
            f"{cost[PROJECT] * 1000:+.2f} ms",
            goal="none set (report; each setting priced in the hop table)",
            met=None,
            detail=f"{hops} hops per run; defaults {spread(seconds['defaults'], 1000, ' ms')}; "
            f"marketscan worker {spread(seconds[PROJECT], 1000, ' ms')}. The worker against "
            f"a bare app with the same settings: {(hop[PROJECT] - hop['ours']) * 1000:+.2f} ms, "
            f"marketscan's own signal handlers (compare with the runs' spread).",
        )
    ]


def _table(
    hop: dict[str, float], cost: dict[str, float], paired: dict[str, list[float]], hops: int
) -> Table:
    promises = {variant.name: variant for variant in VARIANTS}
    rows: list[tuple[str, ...]] = []
    for name in [*APPS, PROJECT]:
        variant = promises.get(name)
        rows.append(
            (
                _setting_label(name, variant),
                ms(hop[name]),
                f"{cost[name] * 1000:+.2f} ms" if name in cost else "",
                ", ".join(f"{value * 1000:+.2f}" for value in paired[name]),
                _in_our_config(variant),
                variant.promise
                if variant
                else "what a page task pays: every setting "
                "and marketscan's signal handlers (task_received marks a page as taken)",
            )
        )
    return Table(
        title="Hop cost per Celery setting",
        header=(
            "setting (on Celery's defaults)",
            "hop",
            "cost vs defaults",
            "paired runs (ms)",
            "in celeryconfig.py",
            "promise it serves",
        ),
        rows=tuple(rows),
        notes=f"`python -m bench --only hop-settings`: {hops} hops per run; hop is the median "
        "of the app's runs, cost the median of its differences from the defaults run just "
        "before each. A cost whose paired runs straddle zero is noise: nothing measurable.",
    )


def _setting_label(name: str, variant: Variant | None) -> str:
    if variant is None:
        return "marketscan's worker (celeryconfig.py + signal handlers)"
    if variant.name == "recovered_queue":
        return "a second queue (task_queues: marketscan + marketscan.recovered)"
    if variant.name == "visibility_timeout":
        return "broker_transport_options visibility_timeout"
    if not variant.settings:
        return {"defaults": "Celery's defaults", "ours": "all of celeryconfig.py"}[name]
    return ", ".join(f"{key}={value!r}" for key, value in variant.settings.items())


def _in_our_config(variant: Variant | None) -> str:
    """Whether celeryconfig.py sets this today: read from the module, so it cannot drift."""
    if variant is None or variant.name in ("defaults", "ours"):
        return "n/a"
    if variant.name == "recovered_queue":
        kept = len(celeryconfig.task_queues) > 1
    elif variant.name == "visibility_timeout":
        kept = "visibility_timeout" in celeryconfig.broker_transport_options
    else:
        kept = all(
            getattr(celeryconfig, key, None) == value for key, value in variant.settings.items()
        )
    return "yes" if kept else "no (dropped)"
