"""The models page's answer is paginated and filtered on the server: pages in model id order
that together list every model once, and filters on tags, status, ACTIVE role, text and
"needs attention", through Airflow's API app with a reader's login.

The registry is the benchmark's seed (bench/registry_seed.py) at a small size: model N has
team tag ``team_{N % 20}``, a version in ERROR when N % 25 == 0, approvals required when
N % 10 == 0 and a request waiting when N % 20 == 0, and "track quality" in its descriptions
when N % 3 == 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bench.registry_seed import Scale, model_id_of, seed_registry, version_string
from models_core.api.summaries import PAGE_SIZE
from models_core.settings import load_settings
from models_core.store.connections import registry_connection

pytestmark = pytest.mark.integration

MODELS = 30
SCALE = Scale(models=MODELS, versions_per_model=10, active=2, days=1, cycle_minutes=60, output_hours=2)


@pytest.fixture
def seeded(registry) -> None:  # noqa: ARG001 - empties the registry after
    with registry_connection(load_settings()) as conn:
        seed_registry(conn, load_settings().schema, SCALE, end=datetime.now(UTC).replace(second=0, microsecond=0))


def models_page(airflow_api, **params: Any) -> dict[str, Any]:
    answer = airflow_api.client.get("/model-registry/api/models", params=params, headers=airflow_api.headers("victor"))
    assert answer.status_code == 200, answer.text
    return answer.json()


def ids(page: dict[str, Any]) -> list[str]:
    return [m["model_id"] for m in page["models"]]


def models(*numbers: int) -> list[str]:
    return [model_id_of(n) for n in numbers]


def test_pages_list_every_model_once_in_model_id_order(airflow_api, seeded) -> None:  # noqa: ARG001
    pages = [models_page(airflow_api, limit=12, offset=offset) for offset in (0, 12, 24)]
    assert [p["page"]["has_more"] for p in pages] == [True, True, False]
    assert [len(p["models"]) for p in pages] == [12, 12, 6]
    assert sum((ids(p) for p in pages), []) == models(*range(MODELS))
    first = pages[0]
    assert first["page"] == {
        "offset": 0,
        "limit": 12,
        "has_more": True,
        "filters": {"tag": [], "status": None, "role": None, "q": None, "attention": False},
    }
    model = first["models"][1]  # model_00001: a PRIMARY with cycles in the window, a SHADOW, 10 versions
    assert model["versions"] == 10 and model["upstream"] == [model_id_of(0)]
    assert model["primary"]["cycles"] > 0 and model["challengers"][0]["role"] == "SHADOW"
    assert models_page(airflow_api, offset=MODELS)["models"] == []
    default = models_page(airflow_api)
    assert ids(default) == models(*range(PAGE_SIZE)) and default["page"]["has_more"]


def test_filters_choose_models_on_the_server(airflow_api, seeded) -> None:  # noqa: ARG001
    tagged = models_page(airflow_api, tag="team=team_07")
    assert ids(tagged) == models(7, 27)
    # each lists its newest 5 of its 10 tagged versions
    assert all((len(m["tagged"]), m["tagged_count"]) == (5, 10) for m in tagged["models"])
    assert tagged["models"][0]["tagged"] == [version_string(i) for i in (9, 8, 7, 6, 5)]
    assert ids(models_page(airflow_api, status="ERROR")) == models(0, 25)
    assert len(models_page(airflow_api, role="SHADOW", limit=MODELS)["models"]) == MODELS
    assert models_page(airflow_api, role="CHALLENGER")["models"] == []
    # needs attention: a version in ERROR (0, 25) or a request waiting for approval (0, 20)
    assert ids(models_page(airflow_api, attention="true")) == models(0, 20, 25)
    assert ids(models_page(airflow_api, q="Track Quality", limit=MODELS)) == models(*range(0, MODELS, 3))
    assert ids(models_page(airflow_api, q="MODEL_0001")) == models(*range(10, 20))
    # the version filters hold for one version at once: team_07's versions are not in ERROR
    assert models_page(airflow_api, tag="team=team_07", status="ERROR")["models"] == []
    assert ids(models_page(airflow_api, tag="team=team_05", status="ERROR")) == models(25)
    assert ids(models_page(airflow_api, q="track quality", attention="true")) == models(0)
    first = models_page(airflow_api, attention="true", limit=2)
    assert ids(first) == models(0, 20) and first["page"]["has_more"]
    assert ids(models_page(airflow_api, attention="true", limit=2, offset=2)) == models(25)


def test_a_filter_that_matches_nothing_and_bad_filters(airflow_api, seeded) -> None:  # noqa: ARG001
    assert models_page(airflow_api, tag="team=nobody")["models"] == []
    assert models_page(airflow_api, q="%")["models"] == []  # text, not a LIKE pattern
    for params in ({"status": "RUNNING"}, {"role": "LEADER"}, {"limit": 0}, {"offset": -1}):
        answer = airflow_api.client.get(
            "/model-registry/api/models", params=params, headers=airflow_api.headers("victor")
        )
        assert answer.status_code == 422, (params, answer.text)
    # one key twice asks for no version (each has one value per key): refused, not answered from
    # two versions of one model; a value longer than any tag's too
    for tags, says in (
        (["team=team_07", "team=team_08"], "names tag 'team' more than once"),
        (["team=" + "x" * 257], "the value is 257 characters"),
    ):
        answer = airflow_api.client.get(
            "/model-registry/api/models", params={"tag": tags}, headers=airflow_api.headers("victor")
        )
        assert answer.status_code == 422 and says in answer.json()["detail"], answer.text


def test_history_route_lists_the_audit_trail_oldest_first(airflow_api, seeded) -> None:  # noqa: ARG001
    answer = airflow_api.client.get(
        f"/model-registry/api/models/{model_id_of(3)}/history", headers=airflow_api.headers("victor")
    )
    assert answer.status_code == 200, answer.text
    history = answer.json()["history"]
    assert [e["at"] for e in history] == sorted(e["at"] for e in history)
    assert history[0]["action"] == "register" and {e["action"] for e in history} >= {"promote", "archive"}
