"""Does learning find what the recruiter wants but never wrote down? Learning vs no learning vs ``more_like_this``.

    python scripts/eval_hidden_intent.py --candidates 100000 --pool-seed 1 --pipelines 60 --seed 11

The pool, taxonomy, pipelines and base grades are ``scripts/eval_relevance.py``'s (``--pool-seed`` seeds the pool,
``--seed`` the pipelines and their hidden preferences, so tuning and reporting can use other pipelines on one pool).
Each pipeline gets one hidden preference, the kinds in turn:

    skill         has a skill of the occupation that 15–50 % of its candidates have and the pipeline does not list
    years         years of experience in the top 30 % of the occupation's candidates
    employer      works at one of 4 of the occupation's employers
    distance      lives within 30 km of the place, on a search of 80 km (not remote)
    open_to_work  is open to work

A candidate's grade is the pipeline's (own occupation 2, related 1, one less outside the radius) when they have the
preference, else 0. A simulated recruiter works each pipeline for ``--rounds`` rounds, once per system on its own
list: they read the first page (25) top-down and act ``--actions`` times — save a candidate of grade 1 or 2 with
the preference; dismiss grade 0 and grade 2 without it with the true reason (the wrong occupation: "title"; outside
the radius: "location"; no preference: skill "skills", years "seniority", distance "location", employer and open to
work "other"); pass over grade 1 without it (partly relevant, not wanted), which learning sees as weak negatives.

    learning          recmatch's list with the pipeline's learned factors, acted-on candidates excluded
    no learning       recmatch's list with the same exclusions
    more_like_this    the same exclusions and eval_feedback's more_like_this clause on the saved (unlike: dismissed)

nDCG@25 of the remaining list (acted-on candidates out of the list and of the ideal ranking) after rounds 1, 3, 5,
overall and per kind; then the p50 latency of each pipeline's last list with its learned factors against without.
"""

from __future__ import annotations

import math
import shlex
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Annotated

import orjson
import typer
from elasticsearch import Elasticsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_feedback import (  # noqa: E402  (sibling scripts)
    PAGE,
    MltSettings,
    Ranked,
    Recruiter,
    learned,
    mlt_rewrite,
    p50,
    ranked_list,
    remaining_ndcg,
)
from eval_relevance import (  # noqa: E402
    ONET_DIR,
    Candidate,
    EvalPipeline,
    build_pipelines,
    candidate_files,
    ensure_index,
    grades_for,
    load_taxonomy,
    read_pool,
)

from recmatch.core.config import Settings  # noqa: E402
from recmatch.core.es import IndexNames, make_client  # noqa: E402
from recmatch.indexing.reindex import alias_target  # noqa: E402
from recmatch.ranking.learning import DismissReason, learned_boosts  # noqa: E402
from recmatch.ranking.understand import Understanding, understand  # noqa: E402
from recmatch.text.geo import haversine_km  # noqa: E402
from recmatch.text.normalize import normalize_skill  # noqa: E402
from recmatch.text.taxonomy import Taxonomy  # noqa: E402

INTENTS = ("skill", "years", "employer", "distance", "open_to_work")
INTENT_REASON: Mapping[str, DismissReason] = {"skill": "skills", "years": "seniority", "employer": "other",
                                              "distance": "location", "open_to_work": "other"}
SYSTEMS = ("learning", "no learning", "more_like_this")
REPORTED_ROUNDS = (1, 3, 5)
TARGETS = {"vs none after 5": 1.5, "vs mlt after 5": 1.2, "vs none after 1": 1.1, "every kind vs none": 1.0}
MIN_WANTED = 15  # a pipeline needs this many candidates of grade > 0 with the preference


@dataclass(frozen=True, slots=True)
class Profile:
    """What the hidden preferences read of a candidate."""

    skills: frozenset[str]
    years: float | None
    company: str | None
    open_to_work: bool


@dataclass(frozen=True)
class HiddenIntent:
    kind: str
    words: str
    wants: Callable[[str], bool]


def read_profiles(source: Path) -> dict[str, Profile]:
    profiles = {}
    with source.open("rb") as handle:
        for line in handle:
            row = orjson.loads(line)
            years = row.get("years_experience")
            profiles[row["candidate_id"]] = Profile(
                skills=frozenset(normalize_skill(s) for s in row.get("skills") or () if isinstance(s, str)),
                years=float(years) if isinstance(years, int | float) else None,
                company=row.get("company") if isinstance(row.get("company"), str) else None,
                open_to_work=row.get("open_to_work") is True,
            )
    return profiles


def hidden_intent(
    kind: str, item: EvalPipeline, *, rng: Random, taxonomy: Taxonomy, pool: Mapping[str, Candidate],
    profiles: Mapping[str, Profile], members: list[str],
) -> HiddenIntent | None:
    """One hidden preference of a kind for a pipeline (None when the occupation cannot carry it)."""
    people = [profiles[cid] for cid in members if cid in profiles]
    if kind == "skill":
        listed = {normalize_skill(skill) for skill in item.pipeline.skills}
        shares = defaultdict(int)
        for person in people:
            for skill in person.skills:
                shares[skill] += 1
        fitting = sorted(skill for skill, n in shares.items()
                         if skill not in listed and 0.15 <= n / len(people) <= 0.5)
        if not fitting:
            return None
        skill = rng.choice(fitting)
        return HiddenIntent(kind, f"has {skill}", lambda cid: skill in profiles[cid].skills)
    if kind == "years":
        years = sorted(person.years for person in people if person.years is not None)
        if not years:
            return None
        least = years[int(0.7 * len(years))]
        return HiddenIntent(kind, f"{least:g}+ years",
                            lambda cid: (profiles[cid].years or 0) >= least)
    if kind == "employer":
        counts = defaultdict(int)
        for person in people:
            if person.company:
                counts[person.company] += 1
        companies = sorted(company for company, n in counts.items() if n >= 3)
        if len(companies) < 6:
            return None
        chosen = frozenset(rng.sample(companies, 4))
        return HiddenIntent(kind, "at " + ", ".join(sorted(chosen)), lambda cid: profiles[cid].company in chosen)
    if kind == "distance":
        def near(cid: str) -> bool:
            candidate = pool[cid]
            return candidate.lat is not None and candidate.lon is not None and haversine_km(
                item.lat, item.lon, candidate.lat, candidate.lon) <= 30
        return HiddenIntent(kind, "within 30 km", near)
    return HiddenIntent(kind, "open to work", lambda cid: profiles[cid].open_to_work)


def act(
    recruiter: Recruiter, ranked: Ranked, *, base: Mapping[str, int], intent: HiddenIntent,
    reason_of: Callable[[str], DismissReason], actions: int, learn: bool,
) -> None:
    """One round on the first page, top-down: save who has the preference (grade 1 or 2), dismiss grade 0 and grade 2
    without it, pass over grade 1 without it."""
    done = 0
    passed: list[str] = []
    for candidate_id in ranked.ids[:PAGE]:
        if done == actions:
            break
        grade = base.get(candidate_id, 0)
        if grade == 1 and not intent.wants(candidate_id):
            passed.append(candidate_id)
            continue
        if grade and intent.wants(candidate_id):
            recruiter.acted[candidate_id] = "save"
            recruiter.saved.append(candidate_id)
            learned(recruiter, ranked, candidate_id, "save", None, learn)
        else:
            reason = reason_of(candidate_id) if grade == 0 else INTENT_REASON[intent.kind]
            recruiter.acted[candidate_id] = "dismiss"
            recruiter.dismissed.append(candidate_id)
            learned(recruiter, ranked, candidate_id, "dismiss", reason, learn)
        done += 1
    for candidate_id in passed:
        learned(recruiter, ranked, candidate_id, "passed", None, learn)


def main(
    candidates: Annotated[int, typer.Option("--candidates", min=1000, help="pool size")] = 100_000,
    pool_seed: Annotated[int, typer.Option("--pool-seed", help="seeds the candidate pool")] = 1,
    pipelines: Annotated[int, typer.Option("--pipelines", min=5, help="pipelines to simulate")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="seeds the pipelines and their hidden preferences")] = 11,
    rounds: Annotated[int, typer.Option("--rounds", min=5, help="rounds per pipeline")] = 5,
    actions: Annotated[int, typer.Option("--actions", min=1, max=PAGE, help="actions per round")] = 5,
    latency_repeats: Annotated[int, typer.Option("--latency-repeats", min=1, help="timed pairs per pipeline")] = 3,
    prefix: Annotated[str, typer.Option("--prefix", help="index prefix of this evaluation")] = "evalhi",
    keep_index: Annotated[bool, typer.Option("--keep-index", help="keep the index for the next run")] = False,
    onet_dir: Annotated[Path, typer.Option("--onet-dir", help="O*NET text files")] = ONET_DIR,
) -> None:
    """Report nDCG@25 against a hidden preference for learning, no learning and more_like_this."""
    command = "python scripts/eval_hidden_intent.py " + shlex.join(sys.argv[1:])
    mlt = MltSettings(mode="combined", boost=0.1, minimum_should_match="10%", max_query_terms=50)
    taxonomy = load_taxonomy(onet_dir)
    source, truth = candidate_files(candidates, pool_seed, onet_dir)
    pool = read_pool(source, truth)
    profiles = read_profiles(source)
    settings = Settings(index_prefix=prefix)
    es = make_client(settings)
    started = time.perf_counter()
    rng = Random(seed)
    by_occupation: dict[str, list[str]] = defaultdict(list)
    for candidate_id, candidate in pool.items():
        by_occupation[candidate.occupation].append(candidate_id)
    try:
        ensure_index(es, settings, source, taxonomy, expected=len(pool))
        index = alias_target(es, IndexNames(prefix))
        assert index is not None
        drawn = build_pipelines(taxonomy=taxonomy, pool=pool, count=min(4 * pipelines, 600), seed=seed)
        works: list[tuple[EvalPipeline, HiddenIntent, dict[str, int], dict[str, int]]] = []
        for item in drawn:
            if len(works) == pipelines:
                break
            kind = INTENTS[len(works) % len(INTENTS)]
            if kind == "distance":
                item = EvalPipeline(code=item.code, lat=item.lat, lon=item.lon, variant=item.variant,
                                    pipeline=item.pipeline.model_copy(update={"radius_km": 80.0, "remote_ok": False}))
            intent = hidden_intent(kind, item, rng=rng, taxonomy=taxonomy, pool=pool, profiles=profiles,
                                   members=by_occupation[item.code])
            if intent is None:
                continue
            base = grades_for(item, taxonomy=taxonomy, pool=pool, by_occupation=by_occupation)
            wanted = {cid: grade for cid, grade in base.items() if intent.wants(cid)}
            if len(wanted) < MIN_WANTED:
                continue
            works.append((item, intent, base, wanted))
        if len(works) < pipelines:
            raise typer.BadParameter(f"only {len(works)} pipelines can carry a hidden preference")

        scores: dict[str, dict[str, list[list[float]]]] = {
            system: defaultdict(lambda: [[] for _ in range(rounds + 1)]) for system in SYSTEMS}
        finals: list[tuple[Understanding, Recruiter, tuple[str, ...]]] = []
        for number, (item, intent, base, wanted) in enumerate(works, 1):
            understanding = understand(pipeline=item.pipeline, taxonomy=taxonomy)
            near = {item.code} | {code for code, _ in taxonomy.related(item.code)}

            def reason_of(cid: str, near: set[str] = near) -> DismissReason:
                return "location" if pool[cid].occupation in near else "title"

            for system in SYSTEMS:
                recruiter = Recruiter()
                ranked = _list_for(es, index, understanding, system, recruiter, mlt)
                for turn in range(1, rounds + 1):
                    act(recruiter, ranked, base=base, intent=intent, reason_of=reason_of, actions=actions,
                        learn=system == "learning")
                    ranked = _list_for(es, index, understanding, system, recruiter, mlt)
                    score = remaining_ndcg(ranked, wanted, recruiter.acted, PAGE)
                    scores[system]["all"][turn].append(score)
                    scores[system][intent.kind][turn].append(score)
                if system == "learning":
                    finals.append((understanding, recruiter, ranked.steps))
            if number % 10 == 0:
                typer.echo(f"{number} / {len(works)} pipelines, {time.perf_counter() - started:.0f} s", err=True)
        latency = _latency(es, index, finals, repeats=latency_repeats)
    finally:
        if not keep_index:
            es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
        es.close()

    typer.echo(f"\n{command}")
    typer.echo(f"{len(pool):,} candidates (pool seed {pool_seed}), {len(works)} pipelines (seed {seed}), {rounds} "
               f"rounds of {actions} actions on the first page of {PAGE}; taxonomy: {taxonomy.source}")
    typer.echo("nDCG@25 against the hidden preference, remaining list (acted-on candidates out of list and ideal)")
    groups = ["all", *INTENTS]
    header = f"{'preference':<14}{'n':>4}" + "".join(
        f"{f'r{turn} ' + name:>16}" for turn in REPORTED_ROUNDS for name in ("learn", "none", "mlt"))
    typer.echo(header)
    mean: dict[tuple[str, str, int], float] = {}
    for group in groups:
        for system in SYSTEMS:
            for turn in REPORTED_ROUNDS:
                values = scores[system][group][turn]
                mean[system, group, turn] = statistics.fmean(values) if values else math.nan
        row = f"{group:<14}{len(scores['learning'][group][rounds]):>4}"
        for turn in REPORTED_ROUNDS:
            row += "".join(f"{mean[system, group, turn]:>16.3f}" for system in SYSTEMS)
        typer.echo(row)
    typer.echo(f"\n{'preference':<14}" + "".join(f"{f'learn/none r{t}':>16}" for t in REPORTED_ROUNDS)
               + "".join(f"{f'learn/mlt r{t}':>16}" for t in REPORTED_ROUNDS))
    for group in groups:
        row = f"{group:<14}"
        row += "".join(f"{_ratio(mean['learning', group, t], mean['no learning', group, t]):>15.2f}x"
                       for t in REPORTED_ROUNDS)
        row += "".join(f"{_ratio(mean['learning', group, t], mean['more_like_this', group, t]):>15.2f}x"
                       for t in REPORTED_ROUNDS)
        typer.echo(row)
    last = max(REPORTED_ROUNDS)
    checks = {
        "vs none after 5": _ratio(mean["learning", "all", last], mean["no learning", "all", last]),
        "vs mlt after 5": _ratio(mean["learning", "all", last], mean["more_like_this", "all", last]),
        "vs none after 1": _ratio(mean["learning", "all", 1], mean["no learning", "all", 1]),
        "every kind vs none": min(_ratio(mean["learning", kind, last], mean["no learning", kind, last])
                                  for kind in INTENTS),
    }
    typer.echo("targets: " + "; ".join(
        f"{name} {value:.2f}x >= {TARGETS[name]}x {'met' if value >= TARGETS[name] else 'MISSED'}"
        for name, value in checks.items()))
    typer.echo(f"latency of each pipeline's last list with its learned factors vs without (same exclusions and "
               f"relaxation, {latency_repeats} interleaved pairs per pipeline): {latency}")
    typer.echo(f"ran in {time.perf_counter() - started:.0f} s")


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def _list_for(es: Elasticsearch, index: str, understanding: Understanding, system: str, recruiter: Recruiter,
              mlt: MltSettings) -> Ranked:
    if system == "learning":
        boosts = learned_boosts(recruiter.state, understanding=understanding)
        return ranked_list(es, index, understanding, boosts=boosts, exclude=recruiter.acted)[0]
    if system == "more_like_this":
        rewrite = mlt_rewrite(recruiter, index=index, settings=mlt)
        return ranked_list(es, index, understanding, exclude=recruiter.acted, rewrite=rewrite)[0]
    return ranked_list(es, index, understanding, exclude=recruiter.acted)[0]


def _latency(es: Elasticsearch, index: str, finals: list[tuple[Understanding, Recruiter, tuple[str, ...]]], *,
             repeats: int) -> str:
    """p50 of ES took and client wall time of each last list, with / without its factors, interleaved."""
    took: tuple[list[float], list[float]] = ([], [])
    wall: tuple[list[float], list[float]] = ([], [])
    for position, (understanding, recruiter, steps) in enumerate(finals):
        boosts = learned_boosts(recruiter.state, understanding=understanding)
        for repeat in range(repeats + 1):
            order = (0, 1) if (position + repeat) % 2 == 0 else (1, 0)
            for with_boosts in order:
                begun = time.perf_counter()
                _, took_ms = ranked_list(es, index, understanding, boosts=boosts if with_boosts else None,
                                         exclude=recruiter.acted, steps=steps)
                if repeat:  # the first pair warms the caches
                    wall[with_boosts].append((time.perf_counter() - begun) * 1000)
                    took[with_boosts].append(took_ms)
    return (f"ES took p50 {p50(took[1]):.1f} vs {p50(took[0]):.1f} ms = {_ratio(p50(took[1]), p50(took[0])):.2f}x; "
            f"client wall p50 {p50(wall[1]):.1f} vs {p50(wall[0]):.1f} ms = "
            f"{_ratio(p50(wall[1]), p50(wall[0])):.2f}x")


app = typer.Typer(add_completion=False)
app.command()(main)

if __name__ == "__main__":
    app()
