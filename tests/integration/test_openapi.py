"""The registry API's OpenAPI document, and the answers it describes.

The document is fetched as a client generator would: from Airflow's own API app with the
plugin mounted, without a login. It must be valid OpenAPI 3.1, name a model for every route's
answer, body and refusal, declare the bearer login, and point a client at the mount. Real
answers, from a registry with real cycles, approval requests, an ERROR version and backends,
must validate against the schemas the document gives them; and typing them must have changed
nothing on the wire: what a route serves is what its function returns as FastAPI wrote it
before the routes had response models (``jsonable_encoder``), key for key and type for type.
"""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from fastapi.routing import APIRoute
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import TypeAdapter
from registry_helpers import person, run_cycle

from models_core.api.app import create_app
from models_core.backends.catalog import Backend, add_backend
from models_core.events.webhooks import add_webhook
from models_core.registry import changes as c
from models_core.registry.actors import SYSTEM
from models_core.registry.model_registry import ModelRegistry
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

PREFIX = "/model-registry"
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


@pytest.fixture(scope="module")
def document(airflow_api) -> dict[str, Any]:
    """The document as a client generator fetches it: no login."""
    answer = airflow_api.client.get(f"{PREFIX}/openapi.json")
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def routes() -> dict[str, APIRoute]:
    """The registry app's API routes by name (each one's operation id)."""
    return {route.name: route for route in create_app().routes if isinstance(route, APIRoute)}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def schema_name(content: dict[str, Any]) -> str:
    """The component a response or body names; fails on an inline or empty schema."""
    schema = content["application/json"]["schema"]
    assert set(schema) == {"$ref"}, schema
    return schema["$ref"].removeprefix("#/components/schemas/")


class Api:
    """Requests to the registry API whose answers are checked against the document."""

    def __init__(self, airflow_api, document: dict[str, Any]) -> None:
        self.airflow_api = airflow_api
        self.document = document

    def call(
        self,
        method: str,
        template: str,
        user: str | None,
        *,
        path: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        status: int = 200,
        **request: Any,
    ) -> Any:
        """``method`` on the route ``template`` (as the document spells it) as ``user``; its answer,
        after checking it against the schema the document gives it for ``status``."""
        url = PREFIX + template.format(**{key: quote(str(value), safe="") for key, value in (path or {}).items()})
        headers = self.airflow_api.headers(user) if user else {}
        answer = self.airflow_api.client.request(
            method, url, params=params, json=body, headers={**headers, **request.pop("headers", {})}, **request
        )
        assert answer.status_code == status, (method, url, answer.text)
        responses = self.document["paths"][template][method]["responses"]
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        validator = Draft202012Validator(
            {**schema, "components": self.document["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(answer.json())]
        assert not errors, (method, url, errors)
        return answer.json()


@pytest.fixture
def api(airflow_api, document) -> Api:
    return Api(airflow_api, document)


def same_json(served: Any, written: Any, where: str = "answer") -> None:
    """``served`` and ``written`` are the same JSON: the same keys, and the same values of the same types
    (an integer is not a float, a ``+00:00`` time is not a ``Z`` one)."""
    assert type(served) is type(written), (where, served, written)
    if isinstance(served, dict):
        assert served.keys() == written.keys(), (where, sorted(served.keys() ^ written.keys()))
        for key in served:
            same_json(served[key], written[key], f"{where}.{key}")
    elif isinstance(served, list):
        assert len(served) == len(written), (where, served, written)
        for index, (one, other) in enumerate(zip(served, written)):
            same_json(one, other, f"{where}[{index}]")
    else:
        assert served == written, (where, served, written)


def python_times(answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` with each transition's ``at`` as Python writes it (PostgreSQL drops a fraction's trailing zeros)."""
    history = [{**event, "at": datetime.fromisoformat(event["at"]).isoformat()} for event in answer["history"]]
    return {**answer, "history": history}


def assert_served_unchanged(route: APIRoute, raw: Any) -> None:
    """What ``route`` serves of ``raw`` (its response model, as FastAPI applies it) is what FastAPI
    wrote of ``raw`` before the route had a response model. A route that answers the audit trail
    as PostgreSQL wrote it (a :class:`Response`) answers JSON its model takes whole and writes
    back the same."""
    adapter = TypeAdapter(route.response_model)
    if isinstance(raw, Response):
        served = json.loads(raw.body)
        checked = adapter.dump_json(adapter.validate_json(raw.body), exclude_unset=route.response_model_exclude_unset)
        same_json(python_times(served), json.loads(checked), route.name)
        return
    served = adapter.dump_json(
        adapter.validate_python(raw, from_attributes=True), exclude_unset=route.response_model_exclude_unset
    )
    same_json(json.loads(served), json.loads(json.dumps(jsonable_encoder(raw))), route.name)


def call_route(route: APIRoute, actor, **arguments: Any) -> Any:
    """The route's function called as FastAPI calls it, with ``actor`` as the logged-in user when it takes one."""
    if "actor" in inspect.signature(route.endpoint).parameters:
        arguments["actor"] = actor
    return route.endpoint(**arguments)


# ------------------------------------------------------------------ the document


def test_the_document_is_public_valid_openapi_3_1_and_sends_clients_through_the_mount(api, document):
    validate(document)
    assert document["openapi"].startswith("3.1.")
    assert document["servers"] == [{"url": PREFIX}]

    # a generated client: the server's URL, then a path of the document
    assert set(document["paths"]["/api/whoami"]) == {"get"}
    me = api.call("get", "/api/whoami", "uma")
    assert (me["id"], me["kind"]) == ("uma", "person")
    assert api.call("get", "/api/whoami", None, status=401) == {"detail": "Not authenticated"}


def test_every_api_route_is_documented_with_named_answers_bodies_and_refusals(document, routes):
    documented = {(path, method) for path, method, _op in operations(document)}
    api_routes = [route for route in routes.values() if route.path.startswith("/api/")]
    assert documented == {(route.path, method.lower()) for route in api_routes for method in route.methods}
    assert not any(path.startswith("/static") for path, _method in documented)  # the page is not API

    schemas = document["components"]["schemas"]
    tags = {tag["name"] for tag in document["tags"]}
    operation_ids = [op["operationId"] for _path, _method, op in operations(document)]
    assert sorted(operation_ids) == sorted(route.name for route in api_routes)  # unique, readable
    for path, method, op in operations(document):
        answer = schemas[schema_name(op["responses"]["200"]["content"])]
        assert answer.get("properties") or answer.get("anyOf"), (path, method, answer)
        assert answer.get("description"), (path, method, "no docstring")
        assert op["summary"] and op["tags"] and set(op["tags"]) <= tags, (path, method)
        refusals = {code: schema_name(r["content"]) for code, r in op["responses"].items() if code != "200"}
        assert {"401", "403"} <= refusals.keys() and set(refusals.values()) == {"Refusal"}, (path, method)
        if method == "post":
            body = schemas[schema_name(op["requestBody"]["content"])]
            assert body["additionalProperties"] is False and "preview" in body["properties"], (path, body)
            assert {"409", "415", "422"} <= refusals.keys(), (path, method)
    assert schemas["Refusal"]["required"] == ["detail"] and "gates" in schemas["Refusal"]["properties"]


def test_the_bearer_login_is_declared_and_every_operation_asks_for_it(document):
    schemes = document["components"]["securitySchemes"]
    (bearer,) = [name for name, scheme in schemes.items() if scheme == {"type": "http", "scheme": "bearer"}]

    for path, method, op in operations(document):
        assert {bearer: []} in op["security"], (path, method)


# ------------------------------------------------------------------ real answers


@pytest.fixture
def lived_in(registry, chain) -> dict[str, int]:
    """The chain after two real cycles, with what the pages show beyond versions: tags, metadata,
    gates and a healing policy with integer bounds, a promotion request (source) and a guard
    request (middle) waiting, a version in ERROR, a backend with callers and one nobody registered."""
    assert all(run_cycle(BASE + timedelta(minutes=5 * n)).state == "success" for n in range(2))
    alice, uma = person("alice"), person("uma", govern=False)
    with registry_connection(load_settings()) as conn:
        as_alice = ModelRegistry(conn, alice)
        as_alice.annotations.set_tags("source", "1.1.0", {"validated": "true"})
        as_alice.annotations.set_metadata("source", "1.1.0", {"created_by": "ci", "notes": ["free"]})
        as_alice.guards.set_gates("source", "tighter", metric_thresholds={"made": {"max": 10}})
        as_alice.guards.set_healing_policy("source", "flaky", metric_thresholds={"made": {"min": 1}})
        for model_id in ("source", "middle"):
            as_alice.guards.set_approval(model_id, required=True)
        as_alice.lifecycle.promote("source", "1.1.0", window=timedelta(hours=24), force=True, reason="try")
        ModelRegistry(conn, uma).guards.set_gates("middle", "pilot", min_cycles=1)
        add_backend(conn, Backend("gpu-a", "http://127.0.0.1:9"), actor=alice)
        add_webhook(conn, "alerts", "http://127.0.0.1:9/hook", ["state"], "WEBHOOK_SECRET_ALERTS", "alice")
    registry.add_version("loner", "1.0.0")
    registry.add_version("sink", "1.1.0", "SHADOW", status="DRAFT")  # a candidate to backtest
    with registry_connection(load_settings()) as conn:
        ModelRegistry(conn, SYSTEM).lifecycle.mark_error("loner", "1.0.0", "failed 3 cycles")
    registry.execute(
        "UPDATE detection_model_versions SET params = params || %s WHERE id = %s",
        (json.dumps({"backend": "gpu-a"}), chain["source"]),
    )
    registry.execute(
        "UPDATE detection_model_versions SET params = params || %s WHERE id = %s",
        (json.dumps({"backend": "gpu-x"}), chain["middle"]),
    )
    return chain


def test_real_reads_match_their_documented_schemas_and_what_their_routes_return(api, routes, lived_in):
    at = datetime.now(UTC)
    reads = [  # (route, path parameters, query parameters)
        ("list_models", {}, {"window_hours": 24.0}),
        ("list_models", {}, {"tag": ["validated=true"]}),
        ("list_models", {}, {"status": "ERROR", "attention": True, "limit": 1, "offset": 0}),
        ("get_drift", {}, {"model": ["source", "middle"], "window_hours": 24.0}),
        ("get_drift", {}, {"model": ["source"], "window_hours": 48.0}),
        ("show_model", {"model_id": "source"}, {"window_hours": 24.0}),
        ("show_model", {"model_id": "loner"}, {}),
        ("get_metric_trends", {"model_id": "source"}, {"window_hours": 6.0}),
        ("get_primary_at", {"model_id": "source"}, {"at": at}),
        ("get_history", {"model_id": "source"}, {}),
        ("get_plan", {}, {}),
        ("get_cycle_outputs", {}, {"version_id": lived_in["source_shadow"], "cycle": BASE, "limit": 2}),
        ("get_version_metadata", {"model_id": "source", "version": "1.1.0"}, {}),
        ("check_readiness", {"model_id": "source", "version": "2.0.0"}, {"action": "activate"}),
        ("check_readiness", {"model_id": "source", "version": "1.1.0"}, {"action": "promote"}),
        ("get_stage_checks", {"model_id": "source"}, {}),
        (
            "plan_backtest",
            {"model_id": "sink", "version": "1.1.0"},
            {"start": BASE.isoformat(), "end": (BASE + timedelta(minutes=5)).isoformat()},
        ),
        ("list_approvals", {"model_id": "source"}, {"include_decided": True}),
        ("list_approvals", {"model_id": "middle"}, {}),
        ("get_healing_policy", {"model_id": "source"}, {}),
        ("whoami", {}, {}),
        ("list_backends", {}, {}),
        ("list_webhooks", {}, {}),
        ("list_webhook_deliveries", {}, {"webhook": "alerts", "limit": 5}),
    ]
    assert {name for name, _path, _query in reads} == {n for n, r in routes.items() if "GET" in r.methods} - {
        "page_file"
    }

    for name, path, query in reads:
        route = routes[name]
        params = {key: value.isoformat() if isinstance(value, datetime) else value for key, value in query.items()}
        api.call("get", route.path, "victor", path=path, params=params)
        assert_served_unchanged(route, call_route(route, person("victor", govern=False), **path, **query))

    overview = api.call("get", "/api/models", "victor")
    models = {m["model_id"]: m for m in overview["models"]}
    assert models["source"]["primary"]["cycles"] == 2 and models["source"]["pending_approvals"] == 1
    assert models["loner"]["errors"][0]["reason"] == "failed 3 cycles"
    assert "evaluation" not in models["source"]["primary"] and "tagged" not in models["source"]
    shown = api.call("get", "/api/models/{model_id}", "victor", path={"model_id": "source"})
    assert shown["gates"]["metric_thresholds"] == {"made": {"max": 10}}
    assert shown["healing_policy"]["metric_thresholds"] == {"made": {"min": 1}}
    requests = api.call("get", "/api/models/{model_id}/approvals", "victor", path={"model_id": "middle"})["requests"]
    assert requests[0]["change"] == {"guard": "gates", "values": {"min_cycles": 1}}
    backends = api.call("get", "/api/backends", "victor")
    assert (
        backends["unregistered"][0]["name"] == "gpu-x" and backends["backends"][0]["callers"][0]["version"] == "1.0.0"
    )


def test_real_changes_and_refusals_match_their_documented_schemas(api, registry, chain):
    def post(template: str, user: str, body: dict[str, Any], status: int = 200, **path: str) -> Any:
        return api.call("post", f"/api{template}", user, path=path, body=body, status=status)

    version = "/models/{model_id}/versions/{version}"
    refused = post(f"{version}/promote", "alice", {}, 409, model_id="source", version="1.1.0")
    assert {g["name"] for g in refused["gates"]} >= {"min_cycles", "max_failure_rate"}
    post(f"{version}/promote", "victor", {"force": True, "reason": "r"}, 403, model_id="source", version="1.1.0")
    post(f"{version}/promote", None, {}, 401, model_id="source", version="1.1.0")
    post("/models/{model_id}/rollback", "alice", {"colour": "red"}, 422, model_id="source")
    as_text = {"content": "{}", "headers": {"Content-Type": "text/plain"}}
    api.call("post", "/api/models/{model_id}/rollback", "alice", path={"model_id": "source"}, status=415, **as_text)
    api.call("get", "/api/models/{model_id}", "victor", path={"model_id": "nobody"}, status=404)

    assert (
        post("/models/{model_id}/versions", "alice", {"version": "3.0.0", "preview": True}, model_id="source")[
            "result"
        ]["id"]
        is None
    )
    registered = post(
        "/models/{model_id}/versions", "alice", {"version": "3.0.0", "params": {"n": 4}}, model_id="source"
    )
    assert registered["result"]["id"] and "plan" not in registered and registered["next_parse"]
    checks = post(f"{version}/activate", "alice", {"role": "CHALLENGER"}, model_id="source", version="3.0.0")
    assert checks["result"][0]["name"] == "params_schema"
    tags = post(f"{version}/tags/set", "alice", {"tags": ["team=ais", "x=1"]}, model_id="source", version="1.1.0")
    assert tags["result"] == {"team": "ais", "x": "1"}
    post(f"{version}/tags/remove", "alice", {"keys": ["x"]}, model_id="source", version="1.1.0")
    post(f"{version}/describe", "alice", {"description": "five"}, model_id="source", version="1.1.0")
    post(f"{version}/metadata", "alice", {"metadata": {"created_by": "ci"}}, model_id="source", version="1.1.0")
    gates = post("/models/{model_id}/gates", "alice", {"metric_thresholds": {"made": {"max": 10}}}, model_id="source")
    assert gates["result"]["applied"] is True and "request" not in gates["result"]
    post("/models/{model_id}/stage-checks", "alice", {"require_description": False}, model_id="source")
    policy = {"on_primary_error": "rollback", "metric_thresholds": {"made": {"min": 1}}}
    assert post("/models/{model_id}/healing-policy", "alice", policy, model_id="source")["result"]["values"][
        "metric_thresholds"
    ] == {"made": {"min": 1}}
    promoted = post(f"{version}/promote", "alice", {"force": True, "reason": "go"}, model_id="source", version="1.1.0")
    assert promoted["result"]["basis"] == "forced"
    assert post("/models/{model_id}/rollback", "alice", {"reason": "back"}, model_id="source")["result"]["basis"]
    post("/models/{model_id}/dependencies/remove", "alice", {"upstream": "middle"}, model_id="sink")
    post("/models/{model_id}/dependencies/add", "alice", {"upstream": "source", "preview": True}, model_id="sink")
    hook = {
        "name": "alerts",
        "url": "http://127.0.0.1:9/hook",
        "events": ["promote"],
        "secret_env": "WEBHOOK_SECRET_HOOK",
    }
    assert post("/webhooks", "alice", hook)["result"]["events"] == ["promote"]
    post("/webhooks", "alice", {**hook, "events": ["nonsense"]}, 409)
    post("/webhooks", "alice", {**hook, "secret_env": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"}, 422)
    post("/webhooks", "alice", {**hook, "url": "http://u:pw@127.0.0.1:9/hook"}, 409)
    post("/webhooks", "alice", {**hook, "url": "http://169.254.169.254/latest/"}, 409)
    post("/webhooks", "victor", hook, 403)
    post("/webhooks", "uma", hook, 403)  # a user may request promotions, not send the registry's events away
    post("/webhooks/{name}/remove", "uma", {}, 403, name="alerts")
    assert post("/webhooks/{name}/remove", "alice", {}, name="alerts")["result"]["removed"] is True

    approvals = {"required": True, "min_approvals": 2}
    post("/models/{model_id}/approvals/settings", "alice", approvals, model_id="source")
    asked = post(f"{version}/promote", "alice", {"force": True, "reason": "next"}, model_id="source", version="2.0.0")
    assert asked["result"]["promoted"] is None and asked["result"]["request"]["status"] == "PENDING"
    approve, reject = "/models/{model_id}/requests/approve", "/models/{model_id}/requests/reject"
    assert post(approve, "uma", {}, model_id="source")["result"]["applied"] is False  # one of two
    applied = post(approve, "bob", {"preview": True}, model_id="source")
    assert applied["result"]["promotion"]["promoted"] == "2.0.0" and "plan" in applied
    assert post(reject, "bob", {"reason": "no"}, model_id="source")["result"]["status"] == "REJECTED"
    requested = post("/models/{model_id}/gates", "uma", {"min_cycles": 1}, model_id="source")["result"]
    assert requested["applied"] is False and "values" not in requested
    post(approve, "bob", {}, model_id="source")
    guard = post(approve, "carol", {}, model_id="source")["result"]
    assert (guard["guard"], guard["values"]["min_cycles"]) == ("gates", 1)

    registry.add_version("loner", "1.0.0")
    registry.add_version("sink", "1.1.0", "SHADOW", status="DRAFT")  # a candidate to backtest
    with registry_connection(load_settings()) as conn:
        ModelRegistry(conn, SYSTEM).lifecycle.mark_error("loner", "1.0.0", "failed 3 cycles")
    post(f"{version}/reactivate", "alice", {"reason": "fixed"}, model_id="loner", version="1.0.0")
    post("/backends", "alice", {"name": "gpu-a", "url": "http://127.0.0.1:9", "timeout_s": 2})
    assert post("/backends/{name}/remove", "alice", {}, name="gpu-a")["result"] == {"name": "gpu-a", "removed": True}
    post(f"{version}/deactivate", "alice", {}, model_id="source", version="3.0.0")
    post(f"{version}/archive", "alice", {}, model_id="source", version="3.0.0")


def test_previews_of_changes_serve_what_their_routes_return(routes, registry, chain):
    """Middle and sink need approval; sink has a promotion request waiting."""
    registry.add_version("middle", "2.0.0", "SHADOW")
    registry.add_version("sink", "2.0.0", "SHADOW")
    alice = person("alice")
    with registry_connection(load_settings()) as conn:
        for model_id in ("middle", "sink"):
            ModelRegistry(conn, alice).guards.set_approval(model_id, required=True)
        ModelRegistry(conn, alice).lifecycle.promote("sink", "2.0.0", window=timedelta(hours=1), force=True, reason="r")
    on_version = {"model_id": "source", "version": "1.1.0"}
    previews = [  # (route, actor, path parameters, body)
        ("register", alice, {"model_id": "source"}, c.Register(version="3.0.0", params={"n": 2})),
        ("activate", alice, {"model_id": "source", "version": "1.1.0"}, c.Activate(role="CHALLENGER")),
        ("promote", alice, on_version, c.Promote(force=True, reason="r")),
        ("promote", alice, {"model_id": "middle", "version": "2.0.0"}, c.Promote(force=True, reason="r")),
        ("approve", person("uma"), {"model_id": "sink"}, c.Decision()),
        ("reject", person("uma"), {"model_id": "sink"}, c.Decision(reason="no")),
        ("set_gates", alice, {"model_id": "source"}, c.Gates(metric_thresholds={"made": {"max": 10}})),
        ("set_gates", person("uma", govern=False), {"model_id": "middle"}, c.Gates(min_cycles=1)),
        ("set_healing_policy", alice, {"model_id": "source"}, c.HealingPolicy(metric_thresholds={"m": {"min": 1}})),
        ("set_tags", alice, on_version, c.Tags(tags=["team=ais"])),
        ("describe", alice, on_version, c.Describe(description="five")),
        ("register_backend", alice, {}, c.AddBackend(name="gpu-a", url="http://127.0.0.1:9")),
    ]

    for name, actor, path, body in previews:
        raw = call_route(routes[name], actor, **path, body=body.model_copy(update={"preview": True}))
        assert raw["preview"] is True
        assert_served_unchanged(routes[name], raw)
