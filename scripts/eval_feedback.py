"""Does the list get better as the recruiter acts? recmatch learning against no learning and ``more_like_this``.

    python scripts/eval_feedback.py --candidates 100000 --pipelines 200 --seed 1 [--ablate companies]

The setup is ``scripts/eval_relevance.py``'s: the same O*NET taxonomy, candidate pool, pipelines and grades (own
occupation 2, related occupation 1, one less outside the radius unless remote works for both), with the index under
this script's own prefix (``--prefix``, reused when it holds the same pool), deleted at the end unless
``--keep-index``.

A simulated recruiter works each pipeline for ``--rounds`` rounds, once per system, each system on its own list:
in a round they look at the first page (25) of the current list, which never holds a candidate they already acted
on, and act on up to ``--actions`` candidates from the top down: save a relevant one (grade 2), dismiss an
irrelevant one (grade 0) with the true reason ("title" when the candidate's occupation is neither the pipeline's nor
a related one, else "location": a related occupation counts 0 only outside the radius), skip the partly relevant.
After each round, nDCG@25 of the new list (the acted-on candidates are left out of it and of the ideal ranking):

    learning          recmatch's list with ``learning.learned_boosts`` of the pipeline's ``learning.record``-ed
                      examples (saves, dismissals, and the partly relevant passed over above them), excluding the
                      acted-on candidates
    no learning       recmatch's list with the same exclusions and no boosts
    more_like_this    recmatch's list (same exclusions) and a ``more_like_this`` clause: the saved candidates as
                      ``like``, the dismissed as ``unlike`` (documents by _index/_id), over title, skills_text and
                      headline, min_term_freq 1, min_doc_freq 2. ``--mlt-mode combined`` (default) adds
                      ``--mlt-boost`` × its score to the pipeline's (a should clause); ``factor`` multiplies the
                      pipeline's score by ``--mlt-boost`` for candidates it matches; ``alone`` ranks by it only,
                      within the pipeline's filters. The defaults (combined, 0.1, minimum_should_match 10%,
                      max_query_terms 50) were the best of a small grid on the seed-2 pool (combined 0.02–3,
                      factor 1.25–2, alone; minimum_should_match 1/10%/30%/50%; 25/50/100 terms).
    learning - <kind> (``--ablate kind``) learning without that kind of boost

Every list is relaxed the way recmatch relaxes one (the applicable steps, in order, until 125 qualify). At the end,
the added latency of learned boosts: each pipeline's last list with and without its boosts (same exclusions,
same relaxation), interleaved, ES ``took`` and client wall time, p50 ratio.
"""

from __future__ import annotations

import math
import shlex
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from elasticsearch import Elasticsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_relevance import (  # noqa: E402  (a sibling script)
    LIST_SIZE,
    ONET_DIR,
    Candidate,
    EvalPipeline,
    build_pipelines,
    candidate_files,
    ensure_index,
    grades_for,
    load_taxonomy,
    ndcg,
    read_pool,
)

from recmatch.core.config import Settings  # noqa: E402
from recmatch.core.es import IndexNames, make_client  # noqa: E402
from recmatch.indexing.reindex import alias_target  # noqa: E402
from recmatch.ranking.learning import (  # noqa: E402
    FEATURE_KINDS,
    DismissReason,
    LearningState,
    Signal,
    example_of,
    learned_boosts,
    record,
)
from recmatch.ranking.query import LearnedBoosts, applicable_steps, build_query  # noqa: E402
from recmatch.ranking.understand import Understanding, understand  # noqa: E402
from recmatch.text.taxonomy import Taxonomy  # noqa: E402

PAGE = 25
TARGET_VS_NONE = 1.03
MLT_FIELDS = ("title", "skills_text", "headline")
MltMode = Literal["combined", "factor", "alone"]
System = str  # "learning", "no learning", "more_like_this", "learning - <kind>"


@dataclass
class Recruiter:
    """One simulated recruiter on one system's list of one pipeline."""

    acted: dict[str, str] = field(default_factory=dict)  # candidate_id → save | dismiss
    saved: list[str] = field(default_factory=list)
    dismissed: list[str] = field(default_factory=list)
    state: LearningState = field(default_factory=LearningState)


@dataclass(frozen=True)
class Ranked:
    ids: list[str]
    sources: dict[str, dict[str, Any]]
    steps: tuple[str, ...]


@dataclass(frozen=True)
class MltSettings:
    mode: MltMode
    boost: float
    minimum_should_match: str
    max_query_terms: int


def ranked_list(
    es: Elasticsearch,
    index: str,
    understanding: Understanding,
    *,
    boosts: LearnedBoosts | None = None,
    exclude: Mapping[str, str] | None = None,
    rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    steps: tuple[str, ...] | None = None,
) -> tuple[Ranked, int]:
    """A list as recmatch serves it (relaxed until 125 qualify, or with the given steps); and ES took in ms."""
    applicable = applicable_steps(understanding)
    tries = [steps] if steps is not None else [applicable[:taken] for taken in range(len(applicable) + 1)]
    took = 0
    for attempt, relax in enumerate(tries):
        body = build_query(understanding=understanding, boosts=boosts, exclude_ids=list(exclude or ()),
                           relax=relax, size=LIST_SIZE)  # type: ignore[arg-type]
        if rewrite is not None:
            body = rewrite(body)
        response = es.search(index=index, body=body)
        took += response["took"]
        if response["hits"]["total"]["value"] >= LIST_SIZE or attempt == len(tries) - 1:
            hits = response["hits"]["hits"]
            ranked = Ranked(
                ids=[hit["_source"]["candidate_id"] for hit in hits],
                sources={hit["_source"]["candidate_id"]: hit["_source"] for hit in hits},
                steps=tuple(relax),
            )
            return ranked, took
    raise AssertionError("unreachable")


def mlt_rewrite(
    recruiter: Recruiter, *, index: str, settings: MltSettings
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The pipeline's body with a more_like_this clause on the recruiter's saves (and dismissals as unlike)."""

    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        if not recruiter.saved:
            return body  # more_like_this needs something to be like
        clause: dict[str, Any] = {
            "more_like_this": {
                "fields": list(MLT_FIELDS),
                "like": [{"_index": index, "_id": cid} for cid in recruiter.saved],
                "min_term_freq": 1,
                "min_doc_freq": 2,
                "max_query_terms": settings.max_query_terms,
                "minimum_should_match": settings.minimum_should_match,
                "include": False,
                "boost": settings.boost,
            }
        }
        if recruiter.dismissed:
            clause["more_like_this"]["unlike"] = [{"_index": index, "_id": cid} for cid in recruiter.dismissed]
        pipeline_query = body["query"]
        if settings.mode == "alone":
            # Who qualifies stays the pipeline's (filters, exclusions); the order is more_like_this's alone.
            query = {"bool": {"must": [clause], "filter": [pipeline_query]}}
        elif settings.mode == "factor":
            # Like the saved ones (minimum_should_match of their terms): the pipeline's score times ``boost``.
            factor = clause["more_like_this"].pop("boost")
            query = {"function_score": {"query": pipeline_query, "functions": [{"filter": clause, "weight": factor}],
                                        "boost_mode": "multiply"}}
        else:
            query = {"bool": {"must": [pipeline_query], "should": [clause]}}
        return {**body, "query": query}

    return rewrite


def act(
    recruiter: Recruiter,
    ranked: Ranked,
    *,
    grades: Mapping[str, int],
    reason_of: Callable[[str], DismissReason],
    actions: int,
    learn: bool,
) -> None:
    """The recruiter's round: from the top of the first page, save grade 2 and dismiss grade 0, ``actions`` times."""
    done = 0
    passed: list[str] = []
    for candidate_id in ranked.ids[:PAGE]:
        if done == actions:
            break
        grade = grades.get(candidate_id, 0)
        if grade == 1:
            passed.append(candidate_id)
            continue
        if grade == 2:
            recruiter.acted[candidate_id] = "save"
            recruiter.saved.append(candidate_id)
            learned(recruiter, ranked, candidate_id, "save", None, learn)
        else:
            recruiter.acted[candidate_id] = "dismiss"
            recruiter.dismissed.append(candidate_id)
            learned(recruiter, ranked, candidate_id, "dismiss", reason_of(candidate_id), learn)
        done += 1
    for candidate_id in passed:  # shown above what the recruiter acted on, and passed over
        learned(recruiter, ranked, candidate_id, "passed", None, learn)


def learned(recruiter: Recruiter, ranked: Ranked, candidate_id: str, signal: Signal, reason: DismissReason | None,
            learn: bool) -> None:
    """Record one example in the recruiter's learning state (when this system learns)."""
    if learn:
        example = example_of(ranked.sources[candidate_id], signal=signal, reason=reason)
        recruiter.state = record(recruiter.state, example=example)


def remaining_ndcg(ranked: Ranked, grades: Mapping[str, int], acted: Mapping[str, str], k: int) -> float:
    """nDCG@k of a list whose ideal ranking leaves out the candidates already acted on."""
    left = {candidate_id: grade for candidate_id, grade in grades.items() if candidate_id not in acted}
    return ndcg(ranked.ids, left, k)


def p50(values: list[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else math.nan


def main(
    candidates: Annotated[int, typer.Option("--candidates", min=1000, help="pool size")] = 100_000,
    pipelines: Annotated[int, typer.Option("--pipelines", min=1, help="how many pipelines to simulate")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="seeds the pool and the pipelines")] = 1,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="rounds per pipeline")] = 5,
    actions: Annotated[int, typer.Option("--actions", min=1, max=PAGE, help="actions per round")] = 5,
    mlt_mode: Annotated[str, typer.Option("--mlt-mode", help="combined | factor | alone")] = "combined",
    mlt_boost: Annotated[float, typer.Option("--mlt-boost", help="boost (factor: weight) of more_like_this")] = 0.1,
    mlt_msm: Annotated[str, typer.Option("--mlt-msm", help="more_like_this minimum_should_match")] = "10%",
    mlt_terms: Annotated[int, typer.Option("--mlt-terms", help="more_like_this max_query_terms")] = 50,
    ablate: Annotated[list[str] | None, typer.Option("--ablate", help="also run learning without this kind "
                                                     f"of boost ({', '.join(FEATURE_KINDS)}); repeatable")] = None,
    latency_repeats: Annotated[int, typer.Option("--latency-repeats", min=1, help="timed pairs per pipeline")] = 3,
    prefix: Annotated[str, typer.Option("--prefix", help="index prefix of this evaluation")] = "evalfb",
    keep_index: Annotated[bool, typer.Option("--keep-index", help="keep the index for the next run")] = False,
    onet_dir: Annotated[Path, typer.Option("--onet-dir", help="O*NET text files")] = ONET_DIR,
) -> None:
    """Report nDCG@25 per round for recmatch learning, no learning and more_like_this, and the boosts' latency."""
    if mlt_mode not in ("combined", "factor", "alone"):
        raise typer.BadParameter("--mlt-mode is combined, factor or alone")
    command = "python scripts/eval_feedback.py " + shlex.join(sys.argv[1:])
    mlt = MltSettings(mode=mlt_mode, boost=mlt_boost, minimum_should_match=mlt_msm,  # type: ignore[arg-type]
                      max_query_terms=mlt_terms)
    systems: tuple[System, ...] = ("learning", "no learning", "more_like_this")
    for kind in ablate or ():
        if kind not in FEATURE_KINDS:
            raise typer.BadParameter(f"--ablate takes one of {', '.join(FEATURE_KINDS)}")
        systems += (f"learning - {kind}",)
    taxonomy = load_taxonomy(onet_dir)
    source, truth = candidate_files(candidates, seed, onet_dir)
    pool = read_pool(source, truth)
    settings = Settings(index_prefix=prefix)
    es = make_client(settings)
    started = time.perf_counter()
    try:
        ensure_index(es, settings, source, taxonomy, expected=len(pool))
        index = alias_target(es, IndexNames(prefix))
        assert index is not None
        items = build_pipelines(taxonomy=taxonomy, pool=pool, count=pipelines, seed=seed)
        by_occupation: dict[str, list[str]] = defaultdict(list)
        for candidate_id, candidate in pool.items():
            by_occupation[candidate.occupation].append(candidate_id)

        scores: dict[System, list[list[float]]] = {system: [[] for _ in range(rounds + 1)] for system in systems}
        saves: dict[System, list[int]] = {system: [] for system in systems}
        finals: list[tuple[Understanding, Recruiter, tuple[str, ...]]] = []
        for number, item in enumerate(items, 1):
            understanding = understand(pipeline=item.pipeline, taxonomy=taxonomy)
            grades = grades_for(item, taxonomy=taxonomy, pool=pool, by_occupation=by_occupation)
            reason_of = _reasons(item, taxonomy=taxonomy, pool=pool)
            for system in systems:
                recruiter = Recruiter()
                ranked = _list_for(es, index, understanding, system, recruiter, mlt)
                scores[system][0].append(remaining_ndcg(ranked, grades, recruiter.acted, PAGE))
                for turn in range(1, rounds + 1):
                    act(recruiter, ranked, grades=grades, reason_of=reason_of, actions=actions,
                        learn=system.startswith("learning"))
                    ranked = _list_for(es, index, understanding, system, recruiter, mlt)
                    scores[system][turn].append(remaining_ndcg(ranked, grades, recruiter.acted, PAGE))
                saves[system].append(len(recruiter.saved))
                if system == "learning":
                    finals.append((understanding, recruiter, ranked.steps))
            if number % 25 == 0:
                typer.echo(f"{number} / {len(items)} pipelines, {time.perf_counter() - started:.0f} s", err=True)

        latency = _latency(es, index, finals, repeats=latency_repeats)
    finally:
        if not keep_index:
            es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
        es.close()

    typer.echo(f"\n{command}")
    typer.echo(f"{len(pool):,} candidates (seed {seed}), {len(items)} pipelines, {rounds} rounds of up to {actions} "
               f"actions on the first page of {PAGE}; taxonomy: {taxonomy.source}")
    mlt_words = (f"more_like_this: {mlt.mode}, boost {mlt.boost:g}, minimum_should_match {mlt.minimum_should_match}, "
                 f"max_query_terms {mlt.max_query_terms}, min_term_freq 1, min_doc_freq 2, fields "
                 f"{', '.join(MLT_FIELDS)}")
    typer.echo(mlt_words)
    typer.echo("nDCG@25 of the remaining list (acted-on candidates left out of the list and of the ideal ranking)")
    width = max(18, *(len(system) + 2 for system in systems))
    header = f"{'round':<7}" + "".join(f"{system:>{width}}" for system in systems) + f"{'learning/none':>15}"
    typer.echo(header)
    means = {system: [statistics.fmean(values) for values in scores[system]] for system in systems}
    for turn in range(rounds + 1):
        row = f"{turn:<7}" + "".join(f"{means[system][turn]:>{width}.3f}" for system in systems)
        none = means["no learning"][turn]
        row += f"{means['learning'][turn] / none if none else math.inf:>14.2f}x"
        typer.echo(row)
    typer.echo("relevant candidates saved over all rounds (mean per pipeline): " + ", ".join(
        f"{system} {statistics.fmean(saves[system]):.2f}" for system in systems))
    final = {system: means[system][rounds] for system in systems}
    vs_none = final["learning"] / final["no learning"] if final["no learning"] else math.inf
    vs_mlt = final["learning"] / final["more_like_this"] if final["more_like_this"] else math.inf
    typer.echo(f"after {rounds} rounds: learning / no learning {vs_none:.3f}x (target >= {TARGET_VS_NONE}x: "
               f"{'met' if vs_none >= TARGET_VS_NONE else 'MISSED'}), learning / more_like_this {vs_mlt:.3f}x "
               f"(target >= 1: {'met' if vs_mlt >= 1 else 'MISSED'})")
    for system in systems:
        if system.startswith("learning - "):
            typer.echo(f"{system}: {final[system] / final['learning']:.3f}x learning with every kind")
    ceiling = 1 / final["no learning"] if final["no learning"] else math.inf
    typer.echo(f"(the most any system can reach over no learning here is 1 / {final['no learning']:.3f} = "
               f"{ceiling:.3f}x: nDCG is at most 1)")
    typer.echo(f"latency of each pipeline's last list with its learned boosts vs without (same exclusions and "
               f"relaxation, {latency_repeats} interleaved pairs per pipeline): {latency.line()}")
    typer.echo(f"ran in {time.perf_counter() - started:.0f} s")


def _list_for(
    es: Elasticsearch,
    index: str,
    understanding: Understanding,
    system: System,
    recruiter: Recruiter,
    mlt: MltSettings,
) -> Ranked:
    if system.startswith("learning"):
        boosts = learned_boosts(recruiter.state, understanding=understanding)
        if boosts is not None and system.startswith("learning - "):  # an ablation
            kind = system.removeprefix("learning - ")
            boosts = replace(boosts, factors=tuple(f for f in boosts.factors if not f.name.startswith(f"{kind}:")))
        return ranked_list(es, index, understanding, boosts=boosts, exclude=recruiter.acted)[0]
    if system == "more_like_this":
        rewrite = mlt_rewrite(recruiter, index=index, settings=mlt)
        return ranked_list(es, index, understanding, exclude=recruiter.acted, rewrite=rewrite)[0]
    return ranked_list(es, index, understanding, exclude=recruiter.acted)[0]


def _reasons(
    item: EvalPipeline, *, taxonomy: Taxonomy, pool: Mapping[str, Candidate]
) -> Callable[[str], DismissReason]:
    """The truthful reason for dismissing an irrelevant candidate of this pipeline."""
    near = {item.code} | {code for code, _ in taxonomy.related(item.code)}

    def reason_of(candidate_id: str) -> DismissReason:
        # Grade 0 with a related occupation means outside the radius; anything else is the wrong occupation.
        return "location" if pool[candidate_id].occupation in near else "title"

    return reason_of


@dataclass(frozen=True)
class Latency:
    """Per list, without (index 0) and with (index 1) learned boosts."""

    took_ms: tuple[list[float], list[float]]
    wall_ms: tuple[list[float], list[float]]

    def line(self) -> str:
        parts = []
        for name, pair in (("ES took", self.took_ms), ("client wall", self.wall_ms)):
            without, with_ = p50(pair[0]), p50(pair[1])
            mean_without, mean_with = statistics.fmean(pair[0]), statistics.fmean(pair[1])
            parts.append(f"{name} p50 {with_:.1f} vs {without:.1f} ms = {with_ / without:.2f}x "
                         f"(mean {mean_with:.2f} vs {mean_without:.2f} ms = {mean_with / mean_without:.2f}x)")
        return "; ".join(parts)


def _latency(
    es: Elasticsearch, index: str, finals: list[tuple[Understanding, Recruiter, tuple[str, ...]]], *, repeats: int
) -> Latency:
    """ES took and wall time of each pipeline's last list without / with its boosts, interleaved."""
    latency = Latency(took_ms=([], []), wall_ms=([], []))

    def boosts_of(understanding: Understanding, recruiter: Recruiter) -> LearnedBoosts | None:
        return learned_boosts(recruiter.state, understanding=understanding)

    for understanding, recruiter, steps in finals[:5]:  # warm up
        ranked_list(es, index, understanding, boosts=boosts_of(understanding, recruiter), exclude=recruiter.acted,
                    steps=steps)
    for position, (understanding, recruiter, steps) in enumerate(finals):
        boosts = boosts_of(understanding, recruiter)
        for repeat in range(repeats):
            order = (0, 1) if (position + repeat) % 2 == 0 else (1, 0)
            for with_boosts in order:
                started = time.perf_counter()
                _, took_ms = ranked_list(es, index, understanding, boosts=boosts if with_boosts else None,
                                         exclude=recruiter.acted, steps=steps)
                latency.wall_ms[with_boosts].append((time.perf_counter() - started) * 1000)
                latency.took_ms[with_boosts].append(took_ms)
    return latency


app = typer.Typer(add_completion=False)
app.command()(main)

if __name__ == "__main__":
    app()
