"""Relevance of recmatch out of the box against the BM25 query an operator would type, on a pool built from O*NET.

    python scripts/eval_relevance.py --candidates 50000 --pipelines 200 --seed 2      # held-out seed (report)
    python scripts/eval_relevance.py --candidates 50000 --pipelines 200 --seed 1      # tuning seed

1. ``scripts/generate_candidates.py --source onet`` writes the pool (seeded by ``--pool-seed``) and each candidate's
   true occupation; titles for which ``taxonomy.is_holdout_title`` holds are never candidate titles. Candidates are
   indexed with the O*NET import and understood with the taxonomy recmatch ships (what a fresh clone runs).
2. The pool is loaded with ``indexing.reindex`` under its own index prefix (``--prefix``), deleted at the end unless
   ``--keep-index`` (a kept index with the same source is reused by the next run).
3. Pipelines (seeded by ``--seed``: tune on one seed, report on another), one per sampled O*NET occupation that has
   candidates: the title is a held-out title of the occupation (reported incumbents' titles come first in O*NET's
   lists) turned into a variant a recruiter might type: as is, with a seniority word, abbreviated, inverted
   ("Manager, Sales"), upper or lower case, a transposed letter, or a space moved, added or dropped; the location the
   city of one of its candidates, 3–8 skills from its Technology Skills, a radius of 25/50/100 km, remote accepted
   one time in four.
4. Grades: a candidate of the pipeline's occupation 2, of a related occupation (O*NET Related Occupations, any tier)
   1, else 0; lowered by one when the candidate lives outside the radius, unless open to remote and the pipeline
   accepts remote.
5. A second set: ``--nyc`` real business titles from ``../shared/data/nyc_jobs/NYC_Jobs.csv`` (New York, 80 km, no
   skills, no remote), ungraded: how many lists are empty and which share of their top 25 lives outside the radius.

Metrics, per pipeline, then averaged: nDCG@k with gain 2^grade − 1 and the ideal ranking taken over the whole pool;
recall@125 = |top 125 ∩ G2| / min(|G2|, 125) where G2 is the pipeline's grade-2 set (its occupation, inside the
radius or open to remote when remote is accepted), over pipelines whose G2 is not empty; empty lists; and, over the
pipelines that do not accept remote, the share of top-25 candidates outside the radius. recmatch runs
``query.build_query`` relaxed the way a list is (the applicable steps in order until 125 qualify); the baseline runs
``query.baseline_query``: one ``multi_match`` of title and skills over ``title^3, past_titles, headline, skills``,
filtered to the radius, or open to remote when the pipeline accepts remote.
"""

from __future__ import annotations

import csv
import math
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Annotated, Any

import orjson
import typer
from elasticsearch import Elasticsearch
from pydantic import ValidationError

from recmatch.core.config import Settings
from recmatch.core.es import IndexNames, make_client
from recmatch.core.models import CandidateIn, PipelineIn
from recmatch.indexing.reindex import alias_target, reindex
from recmatch.ranking.query import applicable_steps, baseline_query, build_query
from recmatch.ranking.understand import PipelineLocation, Understanding, understand
from recmatch.text.geo import haversine_km
from recmatch.text.normalize import display_skill
from recmatch.text.taxonomy import Taxonomy, import_onet, is_holdout_title, write_taxonomy

REPO_ROOT = Path(__file__).resolve().parents[1]
VAR_DIR = REPO_ROOT / "var" / "eval"
ONET_DIR = REPO_ROOT.parent / "shared" / "data" / "onet"
NYC_JOBS = REPO_ROOT.parent / "shared" / "data" / "nyc_jobs" / "NYC_Jobs.csv"
LIST_SIZE = 125
CUTOFFS = (25, 125)
RADII_KM = (25, 50, 100)
REMOTE_OK_SHARE = 0.25
TARGET_RATIO = 1.6
SYSTEMS = ("recmatch", "bm25")
VARIANTS = ("as is", "seniority", "abbreviated", "inverted", "case", "transposed", "spacing")
ABBREVIATIONS = {
    "manager": "Mgr", "senior": "Sr.", "assistant": "Asst.", "engineer": "Engr", "director": "Dir.",
    "coordinator": "Coord.", "representative": "Rep", "specialist": "Spec.", "administrator": "Admin",
    "technician": "Tech", "supervisor": "Supv", "developer": "Dev", "department": "Dept.", "operations": "Ops",
    "maintenance": "Maint.", "administrative": "Admin", "registered nurse": "RN", "executive": "Exec",
    "marketing": "Mktg", "management": "Mgmt", "information technology": "IT", "human resources": "HR",
}


@dataclass(frozen=True, slots=True)
class Candidate:
    occupation: str
    lat: float | None
    lon: float | None
    open_to_remote: bool
    place: str


@dataclass(frozen=True, slots=True)
class EvalPipeline:
    code: str
    pipeline: PipelineIn
    lat: float
    lon: float
    variant: str


@dataclass
class RunResult:
    ids: list[str]
    steps: tuple[str, ...]
    took_ms: int


# -- data --------------------------------------------------------------------------------------------------------


def load_taxonomy(onet_dir: Path) -> Taxonomy:
    path = VAR_DIR / "taxonomy-onet.json"
    if not path.is_file():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        write_taxonomy(import_onet(onet_dir), path)
    return Taxonomy.load(path)


def title_variant(title: str, rng: Random) -> tuple[str, str]:
    """A way a recruiter might type TITLE, and which kind of variant it is."""
    kind = rng.choice(VARIANTS)
    words = title.split()
    if kind == "seniority":
        return f"{rng.choice(('Senior', 'Sr.', 'Junior', 'Lead', 'Principal'))} {title}", kind
    if kind == "abbreviated":
        lowered = title.lower()
        found = [long for long in ABBREVIATIONS if long in lowered.split() or (" " in long and long in lowered)]
        if found:
            long = rng.choice(sorted(found))
            start = lowered.index(long)
            return title[:start] + ABBREVIATIONS[long] + title[start + len(long):], kind
        return f"Sr. {title}", kind
    if kind == "inverted" and len(words) >= 2:
        return f"{words[-1]}, {' '.join(words[:-1])}", kind
    if kind == "case":
        return (title.upper() if rng.random() < 0.5 else title.lower()), kind
    if kind == "transposed":
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        word = words[longest]
        if len(word) >= 5:
            at = rng.randrange(1, len(word) - 2)
            words[longest] = word[:at] + word[at + 1] + word[at] + word[at + 2:]
            return " ".join(words), kind
    if kind == "spacing":
        if len(words) >= 2 and rng.random() < 0.5:  # a space dropped or moved: "School Cook" -> "schoolcook"
            at = rng.randrange(len(words) - 1)
            left, right = words[at], words[at + 1]
            if rng.random() < 0.5 and len(left) > 3:
                joined = [left[:-1], left[-1] + right]
            else:
                joined = [left + right.lower()]
            return " ".join(words[:at] + joined + words[at + 2:]), kind
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        word = words[longest]
        if len(word) >= 8:  # a space added inside a long word
            at = rng.randrange(3, len(word) - 3)
            words[longest] = word[:at] + " " + word[at:]
            return " ".join(words), kind
    return title, "as is"


def candidate_files(count: int, seed: int, onet_dir: Path) -> tuple[Path, Path]:
    source = VAR_DIR / f"candidates-onet-{count}-s{seed}.jsonl"
    truth = VAR_DIR / f"truth-onet-{count}-s{seed}.tsv"
    if not (source.is_file() and truth.is_file()):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, str(REPO_ROOT / "scripts" / "generate_candidates.py"), "--source", "onet",
            "--onet-dir", str(onet_dir), "--count", str(count), "--seed", str(seed), "--out", str(source),
            "--truth", str(truth),
        ]
        subprocess.run(command, check=True)
    return source, truth


def read_pool(source: Path, truth: Path) -> dict[str, Candidate]:
    occupations = dict(line.rstrip("\n").split("\t") for line in truth.open(encoding="utf-8") if line.strip())
    coordinates: dict[str, tuple[float, float]] = {}
    rows: list[tuple[str, dict[str, Any]]] = []
    with source.open("rb") as handle:
        for line in handle:
            row = orjson.loads(line)
            location = row.get("location") or {}
            if location.get("lat") is not None:
                coordinates[location["name"]] = (location["lat"], location["lon"])
            rows.append((row["candidate_id"], row))
    pool = {}
    for candidate_id, row in rows:
        if candidate_id not in occupations or not _valid(row):
            continue  # rejected by the reindex too
        location = row.get("location") or {}
        lat, lon = coordinates.get(location.get("name", ""), (None, None))
        if location.get("lat") is not None:
            lat, lon = location["lat"], location["lon"]
        pool[candidate_id] = Candidate(
            occupation=occupations[candidate_id],
            lat=lat,
            lon=lon,
            open_to_remote=bool(row.get("open_to_remote")),
            place=location.get("name", ""),
        )
    return pool


def _valid(row: dict[str, Any]) -> bool:
    try:
        CandidateIn.model_validate(row)
    except ValidationError:
        return False
    return True


def ensure_index(es: Elasticsearch, settings: Settings, source: Path, taxonomy: Taxonomy, expected: int) -> str:
    names = IndexNames(settings.index_prefix)
    current = alias_target(es, names)
    if current is not None:
        meta = es.indices.get_mapping(index=current)[current]["mappings"].get("_meta", {})
        if meta.get("source") == str(source) and es.count(index=current)["count"] == expected:
            typer.echo(f"reusing {current}", err=True)
            return names.candidates
    started = time.perf_counter()
    report = reindex(
        es=es, settings=settings, source=source, rejects_path=VAR_DIR / "rejects.jsonl", taxonomy=taxonomy
    )
    typer.echo(f"indexed {report.count:,} candidates into {report.index} in {time.perf_counter() - started:.0f} s",
               err=True)
    return names.candidates


def build_pipelines(
    *, taxonomy: Taxonomy, pool: Mapping[str, Candidate], count: int, seed: int
) -> list[EvalPipeline]:
    rng = Random(seed)
    by_occupation: dict[str, list[str]] = defaultdict(list)
    for candidate_id, candidate in pool.items():
        if candidate.lat is not None:
            by_occupation[candidate.occupation].append(candidate_id)
    variant_rng = Random(f"variants-{seed}")
    eligible = []
    for code in sorted(by_occupation):
        occupation = taxonomy.occupation(code)
        held_out = [title for title in occupation.alt_titles if is_holdout_title(title)]
        if held_out and len(occupation.skills) >= 3:
            eligible.append((code, held_out))
    if len(eligible) < count:
        raise typer.BadParameter(f"only {len(eligible)} occupations have candidates, held-out titles and skills")
    pipelines = []
    for code, held_out in rng.sample(eligible, count):
        resident = pool[rng.choice(by_occupation[code])]
        names = [name for name, _ in taxonomy.skills(code)]
        weights = [weight for _, weight in taxonomy.skills(code)]
        wanted = rng.randint(3, min(8, len(names)))
        chosen: list[str] = []
        while len(chosen) < wanted:  # weighted, without replacement: hot and in-demand skills come up more
            pick = rng.choices(range(len(names)), weights=weights)[0]
            weights[pick] = 0.0
            chosen.append(display_skill(names[pick]))
        title, kind = title_variant(rng.choice(held_out), variant_rng)
        pipeline = PipelineIn(
            title=title,
            locations=[resident.place],
            skills=chosen,
            radius_km=rng.choice(RADII_KM),
            remote_ok=rng.random() < REMOTE_OK_SHARE,
        )
        assert resident.lat is not None and resident.lon is not None
        pipelines.append(EvalPipeline(code=code, pipeline=pipeline, lat=resident.lat, lon=resident.lon, variant=kind))
    return pipelines


def nyc_pipelines(path: Path, count: int, seed: int) -> list[PipelineIn]:
    """COUNT distinct business titles of NYC Jobs postings, each as a New York pipeline (80 km, no skills)."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        titles = sorted({" ".join(row["Business Title"].split()) for row in csv.DictReader(handle)} - {""})
    chosen = Random(f"nyc-{seed}").sample(titles, min(count, len(titles)))
    return [PipelineIn(title=title[:200], locations=["New York, NY"], radius_km=80) for title in chosen]


def outside_share(ids: Sequence[str], pool: Mapping[str, Candidate], places: Sequence[PipelineLocation],
                  k: int = 25) -> tuple[int, int]:
    """(outside the radius of every place, listed) among the top K of a non-remote pipeline's list."""
    outside = 0
    top = ids[:k]
    for candidate_id in top:
        candidate = pool[candidate_id]
        if candidate.lat is None or candidate.lon is None:
            outside += 1
            continue
        if not any(haversine_km(p.lat, p.lon, candidate.lat, candidate.lon) <= p.radius_km for p in places):
            outside += 1
    return outside, len(top)


# -- grading and metrics -----------------------------------------------------------------------------------------


def grades_for(
    item: EvalPipeline, *, taxonomy: Taxonomy, pool: Mapping[str, Candidate], by_occupation: Mapping[str, list[str]]
) -> dict[str, int]:
    """Grade of every candidate that has one above 0."""
    base = {item.code: 2} | {code: 1 for code, _ in taxonomy.related(item.code) if code != item.code}
    grades = {}
    for code, base_grade in base.items():
        for candidate_id in by_occupation.get(code, ()):
            candidate = pool[candidate_id]
            inside = candidate.lat is not None and candidate.lon is not None and (
                haversine_km(item.lat, item.lon, candidate.lat, candidate.lon) <= item.pipeline.radius_km
            )
            grade = base_grade
            if not inside and not (candidate.open_to_remote and item.pipeline.remote_ok):
                grade -= 1
            if grade > 0:
                grades[candidate_id] = grade
    return grades


def dcg(grades: Sequence[int]) -> float:
    return sum((2**grade - 1) / math.log2(position + 2) for position, grade in enumerate(grades))


def ndcg(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    return dcg([grades.get(candidate_id, 0) for candidate_id in ranked[:k]]) / ideal if ideal else 0.0


def recall(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float | None:
    relevant = {candidate_id for candidate_id, grade in grades.items() if grade == 2}
    if not relevant:
        return None
    return len(relevant.intersection(ranked[:k])) / min(len(relevant), k)


# -- runs --------------------------------------------------------------------------------------------------------


def run_recmatch(es: Elasticsearch, index: str, understanding: Understanding) -> RunResult:
    steps = applicable_steps(understanding)
    took = 0
    for taken in range(len(steps) + 1):
        body = build_query(understanding=understanding, relax=steps[:taken], size=LIST_SIZE)
        response = es.search(index=index, body=body)
        took += response["took"]
        if response["hits"]["total"]["value"] >= LIST_SIZE or taken == len(steps):
            ids = [hit["_source"]["candidate_id"] for hit in response["hits"]["hits"]]
            return RunResult(ids=ids, steps=steps[:taken], took_ms=took)
    raise AssertionError("unreachable")


def run_baseline(es: Elasticsearch, index: str, pipeline: PipelineIn, understanding: Understanding) -> RunResult:
    body = baseline_query(title=pipeline.title, skills=pipeline.skills, size=LIST_SIZE, understanding=understanding)
    response = es.search(index=index, body=body)
    return RunResult(ids=[hit["_source"]["candidate_id"] for hit in response["hits"]["hits"]], steps=(),
                     took_ms=response["took"])


def main(
    candidates: Annotated[int, typer.Option("--candidates", min=1000, help="pool size")] = 50_000,
    pipelines: Annotated[int, typer.Option("--pipelines", min=1, help="how many pipelines to judge")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="seeds the pipelines and their title variants")] = 2,
    pool_seed: Annotated[int, typer.Option("--pool-seed", help="seeds the candidate pool")] = 1,
    nyc: Annotated[int, typer.Option("--nyc", min=0, help="NYC Jobs business titles to run (0: none)")] = 300,
    prefix: Annotated[str, typer.Option("--prefix", help="index prefix of this evaluation")] = "evalq",
    keep_index: Annotated[bool, typer.Option("--keep-index", help="keep the index for the next run")] = False,
    onet_dir: Annotated[Path, typer.Option("--onet-dir", help="O*NET text files")] = ONET_DIR,
    show: Annotated[int, typer.Option("--show", help="print this many per-pipeline lines, worst first")] = 0,
) -> None:
    """Report nDCG@25, nDCG@125, recall@125, empty lists and the out-of-radius share of recmatch and of BM25."""
    command = "python scripts/eval_relevance.py " + shlex.join(sys.argv[1:])
    onet_taxonomy = load_taxonomy(onet_dir)  # the truth and the index's occupation codes
    taxonomy = Taxonomy.load()  # what recmatch ships: understands the pipelines
    source, truth = candidate_files(candidates, pool_seed, onet_dir)
    pool = read_pool(source, truth)
    settings = Settings(index_prefix=prefix)
    es = make_client(settings)
    nyc_items = nyc_pipelines(NYC_JOBS, nyc, seed) if nyc and NYC_JOBS.is_file() else []
    try:
        index = ensure_index(es, settings, source, taxonomy, expected=len(pool))
        items = build_pipelines(taxonomy=onet_taxonomy, pool=pool, count=pipelines, seed=seed)
        by_occupation: dict[str, list[str]] = defaultdict(list)
        for candidate_id, candidate in pool.items():
            by_occupation[candidate.occupation].append(candidate_id)

        scores: dict[str, dict[str, list[float]]] = {system: defaultdict(list) for system in SYSTEMS}
        by_variant: dict[str, list[tuple[float, float]]] = defaultdict(list)
        empty: Counter[str] = Counter()
        outside: dict[str, list[int]] = {system: [0, 0] for system in SYSTEMS}
        steps_taken: Counter[str] = Counter()
        unresolved = 0
        took: dict[str, list[int]] = {system: [] for system in SYSTEMS}
        per_pipeline: list[tuple[float, float, EvalPipeline, tuple[str, ...]]] = []
        for item in items:
            grades = grades_for(item, taxonomy=onet_taxonomy, pool=pool, by_occupation=by_occupation)
            understanding = understand(pipeline=item.pipeline, taxonomy=taxonomy)
            ours = run_recmatch(es, index, understanding)
            theirs = run_baseline(es, index, item.pipeline, understanding)
            unresolved += bool(understanding.unresolved_locations)
            steps_taken.update(ours.steps)
            for system, run in (("recmatch", ours), ("bm25", theirs)):
                took[system].append(run.took_ms)
                empty[system] += not run.ids
                for k in CUTOFFS:
                    scores[system][f"nDCG@{k}"].append(ndcg(run.ids, grades, k))
                found = recall(run.ids, grades, LIST_SIZE)
                if found is not None:
                    scores[system][f"recall@{LIST_SIZE}"].append(found)
                if not item.pipeline.remote_ok:
                    far, listed = outside_share(run.ids, pool, understanding.locations)
                    outside[system][0] += far
                    outside[system][1] += listed
            by_variant[item.variant].append((scores["recmatch"]["nDCG@25"][-1], scores["bm25"]["nDCG@25"][-1]))
            per_pipeline.append((scores["recmatch"]["nDCG@25"][-1], scores["bm25"]["nDCG@25"][-1], item, ours.steps))

        nyc_empty: Counter[str] = Counter()
        nyc_outside: dict[str, list[int]] = {system: [0, 0] for system in SYSTEMS}
        nyc_steps: Counter[str] = Counter()
        nyc_empty_titles: list[str] = []
        for pipeline in nyc_items:
            understanding = understand(pipeline=pipeline, taxonomy=taxonomy)
            ours = run_recmatch(es, index, understanding)
            theirs = run_baseline(es, index, pipeline, understanding)
            nyc_steps.update(ours.steps)
            if not ours.ids:
                nyc_empty_titles.append(pipeline.title)
            for system, run in (("recmatch", ours), ("bm25", theirs)):
                nyc_empty[system] += not run.ids
                far, listed = outside_share(run.ids, pool, understanding.locations)
                nyc_outside[system][0] += far
                nyc_outside[system][1] += listed
    finally:
        if not keep_index:
            es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
        es.close()

    def share(counts: list[int]) -> str:
        return f"{counts[0] / counts[1]:.1%}" if counts[1] else "n/a"

    typer.echo(f"\n{command}")
    typer.echo(f"{len(pool):,} candidates (pool seed {pool_seed}), {len(items)} pipelines (seed {seed}), "
               f"understood with the shipped taxonomy: {taxonomy.source} ({len(taxonomy.codes())} occupations)")
    typer.echo(f"{'metric':<26}{'recmatch':>10}{'BM25':>10}{'ratio':>8}")
    for metric in (*(f"nDCG@{k}" for k in CUTOFFS), f"recall@{LIST_SIZE}"):
        ours_mean = statistics.fmean(scores["recmatch"][metric])
        theirs_mean = statistics.fmean(scores["bm25"][metric])
        ratio = ours_mean / theirs_mean if theirs_mean else math.inf
        typer.echo(f"{metric:<26}{ours_mean:>10.3f}{theirs_mean:>10.3f}{ratio:>7.2f}x")
    typer.echo(f"{'empty lists':<26}{empty['recmatch']:>10}{empty['bm25']:>10}   of {len(items)}")
    typer.echo(f"{'top-25 outside radius':<26}{share(outside['recmatch']):>10}{share(outside['bm25']):>10}"
               "   (pipelines not accepting remote)")
    if nyc_items:
        typer.echo(f"NYC Jobs, {len(nyc_items)} business titles, New York 80 km, no skills:")
        typer.echo(f"{'  empty lists':<26}{nyc_empty['recmatch']:>10}{nyc_empty['bm25']:>10}   of {len(nyc_items)}")
        typer.echo(f"{'  top-25 outside radius':<26}{share(nyc_outside['recmatch']):>10}"
                   f"{share(nyc_outside['bm25']):>10}")
        typer.echo("  relaxation: " + ", ".join(f"{name} {n}" for name, n in sorted(nyc_steps.items())))
        for title in nyc_empty_titles:
            typer.echo(f"  empty: {title!r}")
    typer.echo("nDCG@25 by title variant (recmatch / BM25, pipelines): " + "; ".join(
        f"{kind} {statistics.fmean(a for a, _ in rows):.2f}/{statistics.fmean(b for _, b in rows):.2f} ({len(rows)})"
        for kind, rows in sorted(by_variant.items())
    ))
    typer.echo(
        f"recall@{LIST_SIZE}: share of a pipeline's grade-2 candidates (its occupation, inside the radius or open to "
        f"remote when remote is accepted) in the top {LIST_SIZE}, out of at most {LIST_SIZE}; mean over the "
        f"{len(scores['recmatch'][f'recall@{LIST_SIZE}'])} pipelines that have any"
    )
    typer.echo(
        "relaxation: " + ", ".join(f"{name} {n}" for name, n in sorted(steps_taken.items()))
        + f"; pipelines with an unresolved location: {unresolved}"
    )
    typer.echo(
        f"ES took per list (ms, p50): recmatch {statistics.median(took['recmatch']):.0f} "
        f"(all relaxation rounds), BM25 {statistics.median(took['bm25']):.0f}"
    )
    ratio = statistics.fmean(scores["recmatch"]["nDCG@25"]) / statistics.fmean(scores["bm25"]["nDCG@25"])
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    typer.echo(f"target nDCG@25 >= {TARGET_RATIO}x BM25: {verdict} ({ratio:.2f}x)")
    for ours_score, theirs_score, item, steps in sorted(per_pipeline, key=lambda row: row[0] - row[1])[:show]:
        p = item.pipeline
        typer.echo(f"  {ours_score:.2f} vs {theirs_score:.2f}  {item.code} "
                   f"{onet_taxonomy.occupation(item.code).title!r} ← {p.title!r} ({item.variant}) @ {p.locations[0]} "
                   f"r={p.radius_km:g} remote={p.remote_ok} skills={p.skills} steps={list(steps)}")


app = typer.Typer(add_completion=False)
app.command()(main)

if __name__ == "__main__":
    app()
