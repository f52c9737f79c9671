"""Probe: how many candidates qualify for each NYC list, and what that costs Elasticsearch.

A list's `took` grows with how many candidates its filters let through, since each one is scored. For each of
PIPELINES NYC job titles (the benchmarks' pipelines), on INDEX, at the relaxation the API would choose: whether the
title reads weakly, how many qualify, how many would if only a title word or one of the title's occupations let
them in (not one of the pipeline's skills alone), the `took` of each body (median of REPEATS) and how many of the
125 listed the two share. It changes nothing; it tells an operator which lists cost most and why.
With --parts it also times each body without each kind of scoring clause (title words, occupations, skills...)
and with none: who qualifies stays the same, so the differences are what scoring those clauses costs.
Usage: python scripts/probe_qualifying.py --index benchm5000000-candidates [--pipelines 50] [--parts]
"""

from __future__ import annotations

import copy
import statistics
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from elasticsearch import Elasticsearch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recmatch.core.config import get_settings  # noqa: E402
from recmatch.core.es import make_client  # noqa: E402
from recmatch.ranking.query import applicable_steps, build_query, count_query  # noqa: E402
from recmatch.ranking.understand import Understanding, understand  # noqa: E402
from recmatch.text.taxonomy import get_taxonomy  # noqa: E402
from scripts.benchkit import nyc_pipelines  # noqa: E402

LIST_SIZE = 125


def relaxation(es: Elasticsearch, index: str, understanding: Understanding) -> list[str]:
    """The fewest relaxation steps with which LIST_SIZE qualify (all of them when none do), as the API picks."""
    steps = applicable_steps(understanding)
    for count in range(len(steps) + 1):
        body = count_query(understanding=understanding, relax=list(steps[:count]))
        if es.search(index=index, body=body)["hits"]["total"]["value"] >= LIST_SIZE:
            return list(steps[:count])
    return list(steps)


def without_skills_in_title_filter(body: dict[str, Any]) -> dict[str, Any] | None:
    """BODY with the title filter's "one of the pipeline's skills" removed (None when it has none): who shares a
    title word or an occupation. Ranking is untouched."""
    narrowed = copy.deepcopy(body)
    query = narrowed["query"]
    while "function_score" in query:
        query = query["function_score"]["query"]
    for clause in query.get("bool", {}).get("filter", []):
        should = clause.get("bool", {}).get("should", [])
        kept = [part for part in should if "skills" not in part.get("terms", {})]
        if len(kept) < len(should) and any("title_norm" in str(part) for part in should):
            clause["bool"]["should"] = kept
            return narrowed
    return None


def qualifying(es: Elasticsearch, index: str, body: dict[str, Any]) -> int:
    query = {"query": body["query"], "size": 0, "track_total_hits": True}
    return int(es.search(index=index, body=query)["hits"]["total"]["value"])


def took(es: Elasticsearch, index: str, body: dict[str, Any], repeats: int) -> tuple[float, list[str]]:
    responses = [es.search(index=index, body=body, request_cache=False) for _ in range(repeats)]
    return statistics.median(r["took"] for r in responses), [hit["_id"] for hit in responses[0]["hits"]["hits"]]


# What a list's scoring clauses cost (--parts): each body again without one kind of optional clause, and with none.
PARTS: dict[str, Any] = {
    "title words (BM25)": lambda clause: "match" in clause,
    "occupations": lambda clause: "'occupation_codes'" in str(clause.get("dis_max", "")),  # not past_occupation_codes
    "past titles": lambda clause: "past_" in str(clause.get("dis_max", "")),
    "skills": lambda clause: "skills" in clause.get("term", {}),
    "title exact/words": lambda clause: "title." in str(clause.get("constant_score", {}).get("_name", "")),
    "seniority": lambda clause: "seniority" in str(clause.get("dis_max", "")),
}


def without(body: dict[str, Any], leave_out: Any) -> dict[str, Any]:
    """BODY with the optional (scoring) clauses LEAVE_OUT picks removed; who qualifies is untouched."""
    narrowed = copy.deepcopy(body)
    query = narrowed["query"]
    while "function_score" in query:
        query = query["function_score"]["query"]
    bool_query = query.get("bool", {})
    bool_query["should"] = [clause for clause in bool_query.get("should", []) if not leave_out(clause)]
    return narrowed


def parts(es: Elasticsearch, index: str, bodies: list[dict[str, Any]], repeats: int) -> None:
    """Median `took` over BODIES, whole and without each kind of scoring clause: where a list's time goes."""
    variants = {"whole body": lambda _: False, **PARTS, "no scoring clause at all": lambda _: True}
    tooks = {name: [] for name in variants}
    for body in bodies:
        for name, leave_out in variants.items():  # alternated body by body, so drift hits them all alike
            tooks[name].append(took(es, index, without(body, leave_out), repeats)[0])
    whole = statistics.median(tooks["whole body"])
    print(f"\n`took` p50 over {len(bodies)} lists on {index}, without each kind of scoring clause:")
    for name, values in tooks.items():
        label = name if name in ("whole body", "no scoring clause at all") else f"without {name}"
        print(f"  {label:<34} {statistics.median(values):6.1f} ms  ({statistics.median(values) / whole:.2f}x)")


def main(
    index: Annotated[str, typer.Option(help="the candidates index or alias")],
    pipelines: Annotated[int, typer.Option(help="distinct NYC job titles")] = 50,
    repeats: Annotated[int, typer.Option(help="searches per body; the median took counts")] = 3,
    with_parts: Annotated[bool, typer.Option("--parts", help="also time each body without each kind of scoring "
                                                              "clause (where a list's time goes)")] = False,
) -> None:
    es = make_client(get_settings())
    taxonomy = get_taxonomy()
    rows, bodies = [], []
    for spec in nyc_pipelines(pipelines):
        understanding = understand(pipeline=spec, taxonomy=taxonomy)
        relax = relaxation(es, index, understanding)
        body = build_query(understanding=understanding, relax=relax)
        narrowed = without_skills_in_title_filter(body)
        ms, listed = took(es, index, body, repeats)
        row = {"title": spec.title, "weak": understanding.weak_title, "relax": relax, "took": ms,
               "qualify": qualifying(es, index, body)}
        if narrowed is not None:
            narrow_ms, narrow_listed = took(es, index, narrowed, repeats)
            row |= {"narrow_took": narrow_ms, "narrow_qualify": qualifying(es, index, narrowed),
                    "shared": len(set(listed) & set(narrow_listed)), "listed": len(listed)}
        rows.append(row)
        bodies.append(body)
    print(f"{'took':>6} {'qualify':>9} {'by words':>9} {'took':>6} {'shared':>6}  weak  relaxation / title")
    for row in sorted(rows, key=lambda r: r["took"]):
        narrow = (f"{row['narrow_qualify']:>9,} {row['narrow_took']:>6.0f} {row['shared']:>3}/{row['listed']:<3}"
                  if "narrow_took" in row else f"{'':>9} {'':>6} {'':>7}")
        print(f"{row['took']:>6.0f} {row['qualify']:>9,} {narrow}  {'yes' if row['weak'] else 'no ':3}  "
              f"{','.join(row['relax']) or '-'} / {row['title'][:60]}")
    loose = [row for row in rows if "narrow_took" in row]
    print(f"\n{len(rows)} lists on {index}: took p50 {statistics.median(r['took'] for r in rows):.0f} ms; "
          f"{sum(r['weak'] for r in rows)} read weakly; {len(loose)} let a skill alone qualify")
    if loose:
        print(f"those {len(loose)}: qualify p50 {statistics.median(r['qualify'] for r in loose):,.0f}, by a title "
              f"word or occupation p50 {statistics.median(r['narrow_qualify'] for r in loose):,.0f}; took p50 "
              f"{statistics.median(r['took'] for r in loose):.0f} ms against "
              f"{statistics.median(r['narrow_took'] for r in loose):.0f} ms; the same 125 listed in "
              f"{sum(r['shared'] == r['listed'] for r in loose)} of {len(loose)}")
    if with_parts:
        parts(es, index, bodies, repeats)


if __name__ == "__main__":
    typer.run(main)
