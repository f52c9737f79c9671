"""PURE: one declaration per action type; the service, the routes and the widget's tables are derived from it.

Adding an action type is one ``ActionType`` in ``ACTION_TYPES`` (plus its tests): its status and timestamp field,
its monthly quota, the signal the ranking learns from it, the webhook it sends, its request body and the words the
widget uses. The actions index mapping is dynamic for ``*_at`` fields, so a new timestamp needs no mapping change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from recmatch.ranking.learning import DismissReason

__all__ = ["ACTION_TYPES", "Action", "ActionType", "DismissIn", "InMailIn", "Quota", "Webhook", "action_type",
           "by_status", "widget_table"]


class Action(StrEnum):
    save = "save"
    inmail = "inmail"
    export = "export"
    dismiss = "dismiss"


class InMailIn(BaseModel):
    subject: str = Field(min_length=1, max_length=200, description="1–200 characters")
    body: str = Field(min_length=1, max_length=5000, description="1–5000 characters")
    share_prompt: bool = Field(default=True, description="add a link where the candidate can share email and phone")


class DismissIn(BaseModel):
    reason: DismissReason = Field(description="what was wrong: title, location, skills, seniority or other")
    note: str | None = Field(default=None, max_length=500)


@dataclass(frozen=True, slots=True)
class Quota:
    """A monthly allowance per seat: the Settings field that holds it, and what it counts, in words."""

    setting: str
    counted: str  # "exports": "this seat has used its 300 exports for 2026-12"


@dataclass(frozen=True, slots=True)
class Webhook:
    """What the action sends: to which of the tenant's endpoints, as which event."""

    target: Literal["crm", "messaging"]
    event: str


@dataclass(frozen=True, slots=True)
class ActionType:
    """Everything recmatch knows about one kind of action."""

    action: Action
    status: str  # the candidate's status for the pipeline afterwards
    done_at: str  # the timestamp field on the action document
    summary: str  # the route's description
    verb: str  # the widget's button
    done: str  # the widget's badge once done
    said: str  # what the widget announces ("Saved Ada Park")
    short: str  # the action in a sentence ("Export limit reached")
    body: type[BaseModel] | None = None  # the request body, when the action takes one
    quota: Quota | None = None
    webhook: Webhook | None = None
    # A repeat is refused (409) with this sentence instead of answered as `repeated`; {candidate_id} and {day}.
    refuse_repeat: str | None = None
    needs_export_consent: bool = False  # only for candidates who allow their profile to be exported

    @property
    def learning_signal(self) -> str:
        """The signal the ranking learns from (see ranking.learning)."""
        return self.action.value

    @property
    def message(self) -> str:
        """The postMessage the widget sends its parent CRM."""
        return f"recmatch:{self.status}"


ACTION_TYPES: Mapping[Action, ActionType] = {
    spec.action: spec
    for spec in (
        ActionType(
            action=Action.save, status="saved", done_at="saved_at", verb="Save", done="Saved", said="Saved",
            short="Save",
            summary="Save the candidate to the pipeline as a prospect; the CRM receives `prospect.saved`.",
            webhook=Webhook(target="crm", event="prospect.saved"),
        ),
        ActionType(
            action=Action.inmail, status="inmailed", done_at="inmailed_at", verb="InMail", done="InMail sent",
            said="InMail sent to", short="InMail", body=InMailIn,
            refuse_repeat="{candidate_id} was already InMailed for this pipeline on {day}",
            summary="Send an InMail through the messaging webhook, with a link where the candidate can share "
                    "contact details.",
            quota=Quota(setting="inmail_monthly_allowance", counted="InMails"),
            webhook=Webhook(target="messaging", event="inmail.sent"),
        ),
        ActionType(
            action=Action.export, status="exported", done_at="exported_at", verb="Export to CRM", done="Exported",
            said="Exported", short="Export", needs_export_consent=True,
            summary="Export the stub profile to the CRM (`profile.exported`): only if the candidate allows it, "
                    "300 a month.",
            quota=Quota(setting="export_monthly_limit", counted="exports"),
            webhook=Webhook(target="crm", event="profile.exported"),
        ),
        ActionType(
            action=Action.dismiss, status="dismissed", done_at="dismissed_at", verb="Dismiss", done="Dismissed",
            said="Dismissed", short="Dismiss", body=DismissIn,
            summary="Dismiss the candidate with a reason; they leave this pipeline's next lists and the ranking "
                    "learns.",
        ),
    )
}


def action_type(action: Action | str) -> ActionType:
    """The declaration of ACTION; KeyError for an unknown one."""
    return ACTION_TYPES[Action(action)]


def by_status(status: str) -> ActionType | None:
    """The action that leaves a candidate in STATUS, if any."""
    return next((spec for spec in ACTION_TYPES.values() if spec.status == status), None)


def widget_table() -> dict[str, dict[str, Any]]:
    """The widget's ACTIONS table (served in the widget page), in button order."""
    return {
        spec.action.value: {"verb": spec.verb, "done": spec.done, "status": spec.status, "message": spec.message,
                            "said": spec.said, "short": spec.short}
        for spec in ACTION_TYPES.values()
    }
