"""core.es.first_out: gather, with the first awaitable run at once (its request goes out before the others')."""

from __future__ import annotations

import asyncio

import pytest

from recmatch.core.es import first_out


async def _step(log: list[str], name: str, *, fail: bool = False) -> str:
    log.append(f"{name} sent")  # what a client call does before its first wait: send the request
    await asyncio.sleep(0.01)
    if fail:
        raise RuntimeError(name)
    log.append(f"{name} answered")
    return name


async def test_the_first_is_sent_before_the_others_and_results_keep_their_order() -> None:
    log: list[str] = []
    assert await first_out(_step(log, "search"), _step(log, "holdings"), _step(log, "pipeline")) == (
        "search", "holdings", "pipeline")
    assert log[:3] == ["search sent", "holdings sent", "pipeline sent"]


async def test_gather_would_send_them_in_turn_too_but_only_after_this_task_waits() -> None:
    # What first_out is for: a task created beside a gather runs its first step before gather's children do.
    log: list[str] = []
    beside = asyncio.ensure_future(_step(log, "pipeline"))
    await asyncio.gather(_step(log, "search"), _step(log, "holdings"))
    await beside
    assert log[0] == "pipeline sent"

    log.clear()
    beside = asyncio.ensure_future(_step(log, "pipeline"))
    await first_out(_step(log, "search"), _step(log, "holdings"))
    await beside
    assert log[0] == "search sent"


async def test_when_the_first_fails_the_others_are_cancelled() -> None:
    log: list[str] = []
    with pytest.raises(RuntimeError, match="search"):
        await first_out(_step(log, "search", fail=True), _step(log, "holdings"))
    await asyncio.sleep(0.02)
    assert "holdings answered" not in log


async def test_a_failure_of_another_is_raised_once_the_first_is_done() -> None:
    log: list[str] = []
    with pytest.raises(RuntimeError, match="holdings"):
        await first_out(_step(log, "search"), _step(log, "holdings", fail=True))
    assert "search answered" in log
