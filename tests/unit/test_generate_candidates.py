"""The candidate generator script: deterministic, well-formed, and bad on purpose when asked."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from recmatch.text.taxonomy import Taxonomy, is_holdout_title

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_candidates.py"
REQUIRED = {"candidate_id": str, "name": str, "title": str}
OPTIONAL = {
    "headline": str, "company": str, "past_titles": list, "location": dict, "skills": list,
    "years_experience": int, "open_to_work": bool, "open_to_remote": bool, "allow_export": bool,
    "profile_url": str, "updated_at": str,
}


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_candidates", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _run(generator: ModuleType, *args: str) -> None:
    result = CliRunner().invoke(generator.app, list(args))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output


def _valid(line: bytes) -> dict[str, Any] | None:
    try:
        candidate = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(candidate, dict):
        return None
    if any(field not in candidate for field in REQUIRED):
        return None
    typed = {**REQUIRED, **OPTIONAL}
    if any(field in candidate and type(candidate[field]) is not kind for field, kind in typed.items()):
        return None
    return candidate


def test_same_seed_gives_identical_output(generator: ModuleType, tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    _run(generator, "--count", "200", "--seed", "42", "--out", str(first))
    _run(generator, "--count", "200", "--seed", "42", "--out", str(second))
    _run(generator, "--count", "200", "--seed", "43", "--out", str(other))
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_gzip_output_is_deterministic_too(generator: ModuleType, tmp_path: Path) -> None:
    first, second, plain = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz", tmp_path / "a.jsonl"
    _run(generator, "--count", "50", "--seed", "5", "--out", str(first))
    _run(generator, "--count", "50", "--seed", "5", "--out", str(second))
    _run(generator, "--count", "50", "--seed", "5", "--out", str(plain))
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()) == plain.read_bytes()


def test_every_line_parses_with_the_candidate_fields(generator: ModuleType, tmp_path: Path) -> None:
    out, truth = tmp_path / "candidates.jsonl", tmp_path / "truth.tsv"
    _run(generator, "--count", "200", "--seed", "7", "--out", str(out), "--truth", str(truth))
    lines = out.read_bytes().splitlines()
    assert len(lines) == 200
    candidates = [_valid(line) for line in lines]
    assert all(candidates)
    assert len({candidate["candidate_id"] for candidate in candidates}) == 200
    for candidate in candidates:
        assert 3 <= len(candidate["skills"]) <= 12
        assert {"name", "country"} <= set(candidate["location"])
        assert candidate["updated_at"].endswith("Z")
        assert not is_holdout_title(candidate["title"])
        assert not any(is_holdout_title(title) for title in candidate["past_titles"])
    codes = dict(line.split("\t") for line in truth.read_text(encoding="utf-8").splitlines())
    assert set(codes) == {candidate["candidate_id"] for candidate in candidates}
    assert set(codes.values()) <= set(Taxonomy.load().codes())


def test_invalid_every_writes_about_that_share_of_bad_lines(generator: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "candidates.jsonl"
    _run(generator, "--count", "200", "--seed", "7", "--out", str(out), "--invalid-every", "10")
    lines = out.read_bytes().splitlines()
    assert len(lines) == 200
    bad = [number for number, line in enumerate(lines, start=1) if _valid(line) is None]
    assert bad == list(range(10, 201, 10))
