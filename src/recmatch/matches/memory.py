"""What one API process remembers between requests about lists: a guess to start early, never an answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recmatch.accounts.holdings import Holdings
from recmatch.matches.rank import Guesses, Ranked
from recmatch.pipelines.service import RecentPipelines

UNSTORED_AT_MOST = timedelta(minutes=1)  # a list served from memory while it is stored: never longer than this


class ListMemory:
    """The pipelines this process saw lately, what their tenants' CRMs held, and the lists it served that are still
    being stored.

    All are per process and only ever shortcuts: a list found here is one this process ranked and is storing
    (another process reads it from the snapshots index once stored); a pipeline found here lets a list that must be
    ranked start searching while the pipeline is read, and is kept only when that read shows the same revision;
    the holdings let that search start while they are read again (``rank.compute_snapshot``).
    """

    def __init__(self, *, recent_size: int = 1024) -> None:
        self.recent = RecentPipelines(recent_size)
        self.held: Guesses[Holdings] = Guesses(recent_size)  # by tenant id
        self.unstored: dict[str, Ranked] = {}  # snapshot id -> the list being stored

    def serving(self, snapshot_id: str, ranked: Ranked) -> None:
        """RANKED is served from now on and is being stored."""
        self.unstored[snapshot_id] = ranked

    def stored(self, snapshot_id: str) -> None:
        """Storing ended (done or given up): the snapshots index answers from now on."""
        self.unstored.pop(snapshot_id, None)

    def being_stored(self, snapshot_id: str) -> Ranked | None:
        """A list this process served and is storing; one whose storing never started or ended (a response that
        failed after the list was ranked runs no background task) is forgotten after UNSTORED_AT_MOST."""
        ranked = self.unstored.get(snapshot_id)
        if ranked is None:
            return None
        if datetime.now(UTC) - ranked.head.created_at > UNSTORED_AT_MOST:
            del self.unstored[snapshot_id]
            return None
        return ranked
