"""kibana/recmatch.ndjson is well-formed and only names fields our mappings have; `import_saved_objects` talks to
Kibana's import API the way Kibana expects.

Kibana itself cannot run on the build machines (no Docker, no Kibana package), so the import is tested against a
real HTTP server on 127.0.0.1 that imitates `POST /api/saved_objects/_import`: it insists on the `kbn-xsrf` header and
a multipart `file` of NDJSON, and answers like Kibana does (success, per-object errors, 4xx bodies, 503 while
starting). It stands in for the receiving end only; the saved objects' shape is checked against our mappings here
and follows Kibana's own exported objects.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from recmatch.core.es import load_mapping
from recmatch.ops import kibana

ROOT = Path(__file__).resolve().parents[2]
OBJECTS_PATH = ROOT / "kibana" / "recmatch.ndjson"
RECORDS = "___records___"  # Lens's pseudo-field for "count of documents"
AGGREGATABLE = {"keyword", "integer", "long", "short", "byte", "float", "double", "half_float", "scaled_float",
                "date", "date_nanos", "boolean", "ip"}
NUMERIC = {"integer", "long", "short", "byte", "float", "double", "half_float", "scaled_float"}
BUCKET_OPS_NEEDING = {"date_histogram": {"date", "date_nanos"}, "range": NUMERIC, "terms": AGGREGATABLE}
METRIC_OPS_NEEDING = {"average": NUMERIC, "min": NUMERIC, "max": NUMERIC, "sum": NUMERIC, "median": NUMERIC,
                      "unique_count": AGGREGATABLE, "last_value": AGGREGATABLE}
# `field : value` in KQL, outside quoted strings (quoted strings are removed first).
KQL_FIELD = re.compile(r"([A-Za-z_@][\w.@]*)\s*:")


# -- reading the objects -------------------------------------------------------------------------------------


def _flatten(properties: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            yield from _flatten(spec["properties"], f"{path}.")
        else:
            yield path, spec
        for sub, sub_spec in spec.get("fields", {}).items():  # multi-fields: title.keyword, ...
            yield f"{path}.{sub}", sub_spec


def mapped_fields(index: str) -> dict[str, dict[str, Any]]:
    """Every field path of one of our indices (by its name without prefix), with its mapping."""
    return dict(_flatten(load_mapping(index)["mappings"]["properties"]))


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in OBJECTS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def by_id(objects) -> dict[str, dict[str, Any]]:
    return {saved["id"]: saved for saved in objects}


def _data_view_fields(by_id: dict[str, dict[str, Any]], data_view_id: str) -> tuple[str, dict[str, dict[str, Any]]]:
    title = by_id[data_view_id]["attributes"]["title"]
    assert title.startswith("recmatch-"), title
    return title, mapped_fields(title.removeprefix("recmatch-"))


def _dashboard(objects) -> dict[str, Any]:
    (dashboard,) = [saved for saved in objects if saved["type"] == "dashboard"]
    return dashboard


def _lens_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in json.loads(dashboard["attributes"]["panelsJSON"]) if panel["type"] == "lens"]


def _layers(lens: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return lens["state"]["datasourceStates"]["formBased"]["layers"]


def _layer_data_view(lens: dict[str, Any], layer_id: str) -> str:
    (reference,) = [ref for ref in lens["references"] if ref["name"] == f"indexpattern-datasource-layer-{layer_id}"]
    assert reference["type"] == "index-pattern"
    return reference["id"]


def kql_fields(query: str) -> set[str]:
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)
    return set(KQL_FIELD.findall(without_strings))


# -- the file ------------------------------------------------------------------------------------------------


def test_every_line_is_a_saved_object(objects):
    lines = [line for line in OBJECTS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(lines) == len(objects) >= 6
    for saved in objects:
        assert {"type", "id", "attributes", "references"} <= saved.keys(), saved.get("id")
        assert saved["type"] in {"index-pattern", "dashboard", "search", "lens", "visualization"}
        assert saved["coreMigrationVersion"] and saved["typeMigrationVersion"]
        for name in ("panelsJSON", "optionsJSON"):  # Kibana keeps these as JSON in a string
            if name in saved["attributes"]:
                json.loads(saved["attributes"][name])
        meta = saved["attributes"].get("kibanaSavedObjectMeta")
        if meta:
            json.loads(meta["searchSourceJSON"])


def test_ids_are_unique_and_stable(objects):
    ids = [saved["id"] for saved in objects]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"recmatch-[a-z0-9-]+", saved_id) for saved_id in ids), ids
    assert {"recmatch-candidates", "recmatch-events", "recmatch-snapshots", "recmatch-outbox",
            "recmatch-hiring-signals", "recmatch-dead-deliveries"} <= set(ids)


def test_every_reference_resolves_to_an_object_in_the_file(objects, by_id):
    for saved in objects:
        for reference in saved["references"]:
            target = by_id.get(reference["id"])
            assert target is not None, f"{saved['id']} refers to missing {reference}"
            assert target["type"] == reference["type"], reference
        names = {reference["name"] for reference in saved["references"]}
        meta = saved["attributes"].get("kibanaSavedObjectMeta")
        if meta and "indexRefName" in (source := json.loads(meta["searchSourceJSON"])):
            assert source["indexRefName"] in names
        if saved["type"] == "dashboard":
            for panel in json.loads(saved["attributes"]["panelsJSON"]):
                if "panelRefName" in panel:
                    assert f"{panel['panelIndex']}:{panel['panelRefName']}" in names, panel["panelIndex"]
                    continue
                lens = panel["embeddableConfig"]["attributes"]
                for reference in lens["references"]:
                    assert by_id[reference["id"]]["type"] == reference["type"] == "index-pattern"
                    # Kibana reads a by-value panel's data views from the dashboard's references, prefixed.
                    assert f"{panel['panelIndex']}:{reference['name']}" in names
                for layer_id in _layers(lens):
                    _layer_data_view(lens, layer_id)


def test_data_views_point_at_our_indices_and_time_fields(objects, by_id):
    data_views = {saved["attributes"]["title"]: saved for saved in objects if saved["type"] == "index-pattern"}
    assert set(data_views) == {"recmatch-candidates", "recmatch-events", "recmatch-snapshots", "recmatch-outbox"}
    expected_time = {"recmatch-events": "at", "recmatch-snapshots": "created_at", "recmatch-outbox": "created_at"}
    for title, saved in data_views.items():
        assert saved["attributes"].get("timeFieldName") == expected_time.get(title)
        if title in expected_time:
            _, fields = _data_view_fields(by_id, saved["id"])
            assert fields[expected_time[title]]["type"] == "date"


def test_every_lens_column_names_a_usable_field(objects, by_id):
    for panel in _lens_panels(_dashboard(objects)):
        lens = panel["embeddableConfig"]["attributes"]
        for layer_id, layer in _layers(lens).items():
            title, fields = _data_view_fields(by_id, _layer_data_view(lens, layer_id))
            assert set(layer["columnOrder"]) == set(layer["columns"]), lens["title"]
            for column_id, column in layer["columns"].items():
                where = f"{lens['title']} / {column_id}"
                source = column["sourceField"]
                if column["operationType"] == "count":
                    assert source == RECORDS, where
                else:
                    assert source in fields, f"{where}: {title} has no field {source!r}"
                    needed = {**BUCKET_OPS_NEEDING, **METRIC_OPS_NEEDING}[column["operationType"]]
                    spec = fields[source]
                    assert spec["type"] in needed and spec.get("doc_values", True), f"{where}: {source} is {spec}"
                if column["operationType"] == "terms":
                    assert column["params"]["orderBy"]["columnId"] in layer["columns"], where
                for name in kql_fields(column.get("filter", {}).get("query", "")):
                    assert name in fields, f"{where}: filter names {name!r}, not in {title}"
            for name in kql_fields(lens["state"]["query"]["query"]):
                assert name in fields, f"{lens['title']}: query names {name!r}, not in {title}"


def test_every_visualization_accessor_is_a_column(objects):
    for panel in _lens_panels(_dashboard(objects)):
        lens = panel["embeddableConfig"]["attributes"]
        columns = {column for layer in _layers(lens).values() for column in layer["columns"]}
        visualization = lens["state"]["visualization"]
        if lens["visualizationType"] == "lnsXY":
            for layer in visualization["layers"]:
                used = [layer["xAccessor"], *layer["accessors"], *filter(None, [layer.get("splitAccessor")])]
                assert set(used) <= set(_layers(lens)[layer["layerId"]]["columns"]), lens["title"]
        else:
            assert visualization["metricAccessor"] in columns, lens["title"]


def test_dead_deliveries_search_names_outbox_fields(by_id):
    search = by_id["recmatch-dead-deliveries"]
    (reference,) = search["references"]
    title, fields = _data_view_fields(by_id, reference["id"])
    assert title == "recmatch-outbox"
    attributes = search["attributes"]
    assert attributes["title"] == "Dead deliveries"
    assert attributes["columns"] == ["event", "tenant_id", "attempts", "last_error"]
    for name in [*attributes["columns"], *(field_name for field_name, _ in attributes["sort"])]:
        assert name in fields, name
    query = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]
    assert query["language"] == "kuery" and kql_fields(query["query"]) == {"status"}
    assert '"dead"' in query["query"]


def test_dashboard_shows_the_hiring_signals_the_issue_asks_for(objects, by_id):
    dashboard = _dashboard(objects)
    assert dashboard["id"] == "recmatch-hiring-signals"
    assert dashboard["attributes"]["title"] == "recmatch — hiring signals"
    shown: set[tuple[str, str]] = set()
    filtered_on: set[str] = set()
    for panel in _lens_panels(dashboard):
        lens = panel["embeddableConfig"]["attributes"]
        filtered_on.add(lens["state"]["query"]["query"])
        for layer_id, layer in _layers(lens).items():
            title, _ = _data_view_fields(by_id, _layer_data_view(lens, layer_id))
            for column in layer["columns"].values():
                shown.add((title, f"{column['operationType']}:{column['sourceField']}"))
                filtered_on.add(column.get("filter", {}).get("query", ""))
    assert {
        ("recmatch-events", "date_histogram:at"), ("recmatch-events", "terms:action"),
        ("recmatch-events", "terms:reason"), ("recmatch-events", "terms:features.skills"),
        ("recmatch-events", "terms:features.title"), ("recmatch-snapshots", "range:total"),
        ("recmatch-snapshots", "average:total"), ("recmatch-snapshots", "terms:relaxation"),
    } <= shown
    for action in ("save", "inmail", "export", "dismiss"):
        assert f'action : "{action}"' in filtered_on
    panel_types = {panel["type"] for panel in json.loads(dashboard["attributes"]["panelsJSON"])}
    assert "search" in panel_types  # the dead deliveries, at the bottom


def test_kql_field_reader_ignores_quoted_values():
    assert kql_fields('action : "save" and features.title : "a: b"') == {"action", "features.title"}


# -- another index prefix ------------------------------------------------------------------------------------


def test_objects_for_another_prefix_rename_indices_ids_and_references(objects):
    renamed = kibana.for_prefix(objects, "acme")
    assert objects == kibana.read_objects(OBJECTS_PATH)  # the input is untouched
    by_new_id = {saved["id"]: saved for saved in renamed}
    assert set(by_new_id) == {saved["id"].replace("recmatch-", "acme-", 1) for saved in objects}
    assert by_new_id["acme-events"]["attributes"]["title"] == "acme-events"
    assert by_new_id["acme-hiring-signals"]["attributes"]["title"] == "acme — hiring signals"
    assert by_new_id["acme-dead-deliveries"]["attributes"]["title"] == "Dead deliveries (acme)"
    for saved in renamed:
        for reference in saved["references"]:
            assert reference["id"] in by_new_id
    for panel in _lens_panels(by_new_id["acme-hiring-signals"]):
        for reference in panel["embeddableConfig"]["attributes"]["references"]:
            assert reference["id"] in by_new_id
    assert "recmatch-" not in kibana.to_ndjson(renamed).decode().replace("recmatch — ", "")


def test_default_prefix_sends_the_file_as_is(objects):
    assert kibana.for_prefix(objects, "recmatch") == objects


# -- the import, against a stand-in for Kibana's _import endpoint --------------------------------------------


@dataclass
class FakeKibana:
    """What the stand-in received, and how it should answer."""

    url: str
    mode: str = "success"
    unavailable_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)


def _kibana_handler(state: FakeKibana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", 0))
            payload = self.rfile.read(length)
            target = urlsplit(self.path)
            if state.unavailable_first > 0:
                state.unavailable_first -= 1
                self._answer(503, {"statusCode": 503, "error": "Service Unavailable",
                                   "message": "Kibana server is not ready yet"})
                return
            if not re.fullmatch(r"(/s/[a-z0-9_-]+)?/api/saved_objects/_import", target.path):
                self._answer(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})
                return
            if "kbn-xsrf" not in self.headers:
                self._answer(400, {"statusCode": 400, "error": "Bad Request",
                                   "message": "Request must contain a kbn-xsrf header."})
                return
            if state.mode == "unauthorized":
                self._answer(401, {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"})
                return
            content_type = self.headers.get("Content-Type", "")
            if not content_type.startswith("multipart/form-data"):
                self._answer(415, {"statusCode": 415, "error": "Unsupported Media Type",
                                   "message": "Unsupported Media Type"})
                return
            message = BytesParser(policy=email_policy).parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + payload)
            files = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
            upload = files.get("file")
            if upload is None or not (upload.get_filename() or "").endswith(".ndjson"):
                self._answer(400, {"statusCode": 400, "error": "Bad Request",
                                   "message": "Invalid file extension .txt"})
                return
            objects = [json.loads(line) for line in upload.get_content().splitlines() if line.strip()]
            state.received.append({"path": target.path, "query": parse_qs(target.query), "objects": objects,
                                   "headers": dict(self.headers)})
            if state.mode == "missing_references":
                dashboard = next(saved for saved in objects if saved["type"] == "dashboard")
                self._answer(200, {"success": False, "successCount": len(objects) - 1, "errors": [{
                    "id": dashboard["id"], "type": "dashboard", "title": dashboard["attributes"]["title"],
                    "meta": {"title": dashboard["attributes"]["title"], "icon": "dashboardApp"},
                    "error": {"type": "missing_references",
                              "references": [{"type": "index-pattern", "id": "recmatch-nowhere"}]},
                }]})
                return
            if state.mode == "conflicts":
                self._answer(200, {"success": False, "successCount": 0, "errors": [
                    {"id": saved["id"], "type": saved["type"], "meta": {}, "error": {"type": "conflict"}}
                    for saved in objects]})
                return
            self._answer(200, {"success": True, "successCount": len(objects), "successResults": [
                {"type": saved["type"], "id": saved["id"], "meta": {"title": saved["attributes"].get("title")}}
                for saved in objects]})

    return Handler


@pytest.fixture()
def fake_kibana() -> Iterator[FakeKibana]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = FakeKibana(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _kibana_handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_import_sends_the_file_with_xsrf_and_overwrite(fake_kibana, objects):
    result = kibana.import_saved_objects(url=fake_kibana.url, objects=OBJECTS_PATH)
    (request,) = fake_kibana.received
    assert request["path"] == "/api/saved_objects/_import"
    assert request["query"] == {"overwrite": ["true"]}
    assert request["objects"] == objects
    assert result.imported == [(saved["type"], saved["id"]) for saved in objects]
    assert result.describe() == f"{len(objects)} saved objects imported"


def test_import_for_another_prefix_and_space_with_an_api_key(fake_kibana):
    kibana.import_saved_objects(url=fake_kibana.url + "/", objects=OBJECTS_PATH, prefix="acme", space="ops",
                                api_key="abc==")
    (request,) = fake_kibana.received
    assert request["path"] == "/s/ops/api/saved_objects/_import"
    assert request["headers"]["Authorization"] == "ApiKey abc=="
    titles = {saved["attributes"]["title"] for saved in request["objects"] if saved["type"] == "index-pattern"}
    assert titles == {"acme-candidates", "acme-events", "acme-snapshots", "acme-outbox"}


def test_import_lists_the_objects_kibana_refused(fake_kibana):
    fake_kibana.mode = "missing_references"
    with pytest.raises(kibana.KibanaImportFailed) as failed:
        kibana.import_saved_objects(url=fake_kibana.url, objects=OBJECTS_PATH)
    assert "dashboard recmatch-hiring-signals (recmatch — hiring signals)" in failed.value.detail
    assert "missing references: index-pattern recmatch-nowhere" in failed.value.detail
    assert [error.kind for error in failed.value.errors] == ["missing_references"]


def test_keep_existing_reports_conflicts_as_kept(fake_kibana, objects):
    fake_kibana.mode = "conflicts"
    result = kibana.import_saved_objects(url=fake_kibana.url, objects=OBJECTS_PATH, overwrite=False)
    assert fake_kibana.received[0]["query"] == {"overwrite": ["false"]}
    assert len(result.kept) == len(objects) and result.imported == []
    fake_kibana.received.clear()
    with pytest.raises(kibana.KibanaImportFailed, match="already exists"):
        kibana.import_saved_objects(url=fake_kibana.url, objects=OBJECTS_PATH, overwrite=True)


def test_import_shows_kibanas_message_on_a_4xx(fake_kibana):
    fake_kibana.mode = "unauthorized"
    with pytest.raises(kibana.KibanaImportFailed, match=r"refused the credentials \(401\): Unauthorized"):
        kibana.import_saved_objects(url=fake_kibana.url, objects=OBJECTS_PATH, username="elastic", password="no")
    assert fake_kibana.received == []
    fake_kibana.mode = "success"
    with pytest.raises(kibana.KibanaImportFailed, match=r"404 Not Found\): Not Found"):
        kibana.import_saved_objects(url=fake_kibana.url + "/wrong", objects=OBJECTS_PATH)


def test_import_waits_for_a_starting_kibana(fake_kibana, monkeypatch):
    monkeypatch.setattr(kibana, "RETRY_PAUSE_S", 0.05)
    fake_kibana.unavailable_first = 2
    result = kibana.import_saved_objects(url=fake_kibana.url, objects=OBJECTS_PATH, wait=5)
    assert result.imported
    fake_kibana.unavailable_first = 100
    with pytest.raises(kibana.KibanaUnavailable, match="not ready yet"):
        kibana.import_saved_objects(url=fake_kibana.url, objects=OBJECTS_PATH, wait=0.2)


def test_import_says_when_kibana_is_unreachable():
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there any more
    with pytest.raises(kibana.KibanaUnavailable, match=f"unreachable at http://127.0.0.1:{port}"):
        kibana.import_saved_objects(url=f"http://127.0.0.1:{port}", objects=OBJECTS_PATH)


def test_import_rejects_half_credentials():
    with pytest.raises(kibana.KibanaImportFailed, match="both a Kibana username and password"):
        kibana.import_saved_objects(url="http://127.0.0.1:9", objects=OBJECTS_PATH, username="elastic")
