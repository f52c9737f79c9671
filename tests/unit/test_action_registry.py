"""The action-type registry: one declaration per action, from which the service, routes and widget are derived."""

from __future__ import annotations

import json

from recmatch.actions.registry import ACTION_TYPES, Action, DismissIn, InMailIn, action_type, by_status, widget_table
from recmatch.core.config import Settings
from recmatch.ranking.learning import DismissReason


def test_every_action_is_declared_once_with_a_distinct_status_and_timestamp():
    assert list(ACTION_TYPES) == list(Action)
    assert len({spec.status for spec in ACTION_TYPES.values()}) == len(ACTION_TYPES)
    assert len({spec.done_at for spec in ACTION_TYPES.values()}) == len(ACTION_TYPES)
    assert all(spec.done_at.endswith("_at") for spec in ACTION_TYPES.values())


def test_quotas_name_real_settings():
    settings = Settings()
    for spec in ACTION_TYPES.values():
        if spec.quota is not None:
            assert isinstance(getattr(settings, spec.quota.setting), int)


def test_bodies_and_webhooks_are_as_the_api_documents_them():
    assert action_type("inmail").body is InMailIn and action_type("dismiss").body is DismissIn
    assert action_type("save").body is None and action_type("export").body is None
    assert {spec.action: spec.webhook.event for spec in ACTION_TYPES.values() if spec.webhook} == {
        Action.save: "prospect.saved", Action.inmail: "inmail.sent", Action.export: "profile.exported"}
    assert action_type("inmail").webhook.target == "messaging"
    assert action_type("export").needs_export_consent and not action_type("save").needs_export_consent


def test_a_repeated_inmail_is_refused_in_words_other_repeats_are_answered():
    refusal = action_type("inmail").refuse_repeat
    assert refusal.format(candidate_id="c-1", day="2026-12-01") == \
        "c-1 was already InMailed for this pipeline on 2026-12-01"
    assert all(spec.refuse_repeat is None for spec in ACTION_TYPES.values() if spec.action is not Action.inmail)


def test_the_widget_table_is_derived_from_the_declarations_and_is_json():
    table = json.loads(json.dumps(widget_table()))
    assert list(table) == ["save", "inmail", "export", "dismiss"]
    assert table["export"] == {"verb": "Export to CRM", "done": "Exported", "status": "exported",
                               "message": "recmatch:exported", "said": "Exported", "short": "Export"}
    assert by_status("dismissed").action is Action.dismiss and by_status("nothing") is None


def test_dismissal_reasons_are_the_learners():
    assert set(DismissIn.model_json_schema()["properties"]["reason"]["enum"]) == set(DismissReason.__args__)
