"""Registry requests answered in Airflow's Required Actions: one Human-in-the-loop task per approval round.

Two DAGs:

- ``detection_model_approval_sweep`` (every minute, one run at a time) reads the registry's
  PENDING requests and triggers, for each, the run of ``detection_model_approvals`` that
  asks for its next approval; then it ends the waiting rounds that went stale because the
  request was decided, expired or collected an approval elsewhere (the registry page, the CLI).
- ``detection_model_approvals`` (no schedule) has one run per *round*, run id
  ``request_{id}_approval_{n}`` with n the approvals so far plus one, so triggering a round
  twice is harmless. Its ``approve`` task waits in Required Actions, assigned to the
  model's approvers other than the requester and those who approved already, with the
  request's figures in its body; ``sweep_now`` then triggers a sweep, so the next round of
  an N-of-M request opens at once.

Why a sweeper: requests come from the registry API, the page and the CLI (logged in, or in
direct database mode); reading the registry sees them all, and neither the registry nor the
CLI needs to reach Airflow. Why a run per round: a Human-in-the-loop task
takes one answer and N-of-M needs N, each from someone who may still approve. Why the
registry decides: Airflow checks that whoever answers is logged in, may edit this DAG's
required actions and is assigned; the answer is then the registry's ``approve``/``reject``
as that person, so it refuses the requester, a second vote, people outside the approvers
and figures that no longer pass exactly as the page and CLI do. A refusal fails the try
with the registry's message (the task asks again on retry, and again whenever it is
cleared); an answer to a request decided meanwhile is skipped, saying so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from models_core.backends.shadow_concurrency import AirflowPoolsApi
from models_core.cycle.dag_factory import START_DATE, TAGS, default_args
from models_core.errors import ModelRegistryError
from models_core.registry.actors import SYSTEM, Actor, ActorKind, person_permissions
from models_core.registry.approvals import ApprovalRequest
from models_core.registry.guards import ApprovalSetting
from models_core.registry.lifecycle import Promotion
from models_core.registry.model_registry import ModelRegistry
from models_core.settings import Settings, load_settings
from models_core.store.connections import registry_connection

log = logging.getLogger(__name__)

SWEEP_DAG_ID = "detection_model_approval_sweep"
APPROVAL_DAG_ID = "detection_model_approvals"
APPROVE_TASK_ID = "approve"
#: How often the sweep looks for requests: a new request shows in Required Actions within this.
SWEEP_SCHEDULE = "* * * * *"
#: Rounds waiting at once: a waiting task holds no worker slot, so this only bounds the list.
MAX_WAITING_ROUNDS = 500
#: Refused answers each round takes before it stays failed (cleared, it asks again).
REFUSED_ANSWERS_RETRIED = 2
_APPLICATION = "models_core:approvals"


# ---- rounds: pure -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalRound:
    """The ``number``-th approval asked for request ``request_id`` of ``model_id``; the run's conf."""

    request_id: int
    model_id: str
    number: int

    @property
    def run_id(self) -> str:
        return f"request_{self.request_id}_approval_{self.number}"

    def as_conf(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "model_id": self.model_id, "round": self.number}

    @classmethod
    def next_for(cls, request: ApprovalRequest) -> ApprovalRound:
        """The round that asks for the request's next approval."""
        return cls(request.id, request.model_id, len(request.approvals) + 1)

    @classmethod
    def from_conf(cls, conf: dict[str, Any] | None) -> ApprovalRound:
        """The round a run of ``detection_model_approvals`` asks, or a ValueError naming the bad field."""
        conf = conf or {}
        for key, kind in (("request_id", "a positive int"), ("model_id", "a model id"), ("round", "a positive int")):
            value = conf.get(key)
            valid = (
                bool(value) and isinstance(value, str)
                if key == "model_id"
                else isinstance(value, int) and not isinstance(value, bool) and value > 0
            )
            if not valid:
                raise ValueError(
                    f"{APPROVAL_DAG_ID} run conf needs {key!r} ({kind}), got {value!r}: "
                    f"its runs are triggered by {SWEEP_DAG_ID}, one per approval round"
                )
        return cls(conf["request_id"], conf["model_id"], conf["round"])


def closed_reason(request: ApprovalRequest | None, rnd: ApprovalRound) -> str | None:
    """Why the round's request takes no answer any more (decided, expired, gone), or None."""
    if request is None:
        return f"request #{rnd.request_id} of {rnd.model_id} is not in the registry"
    if request.status == "EXPIRED":
        return (
            f"{request.label()} expired at {request.expires_at.isoformat(timespec='seconds')} with "
            f"{len(request.approvals)} approval(s); make the request again"
        )
    if request.status != "PENDING":
        decided = f" by {request.decided_by}" if request.decided_by else ""
        why = f": {request.decision_reason}" if request.decision_reason else ""
        return f"{request.label()} is {request.status}{decided}{why}"
    return None


def stale_reason(request: ApprovalRequest | None, rnd: ApprovalRound) -> str | None:
    """Why the round should not wait for an answer: its request is closed, or its approvals moved on."""
    closed = closed_reason(request, rnd)
    if closed or request is None:
        return closed
    if len(request.approvals) + 1 != rnd.number:
        return (
            f"{request.label()} has {len(request.approvals)} approval(s) now "
            f"({', '.join(request.approvals) or 'none'}): round {rnd.number} is superseded"
        )
    return None


def assignees(request: ApprovalRequest, setting: ApprovalSetting) -> list[str]:
    """Who may answer the request's next round: the named approvers but the requester and those who
    approved (ids compared ignoring case, as the registry does); empty when the model names none."""
    taken = {request.requested_by.casefold(), *(voter.casefold() for voter in request.approvals)}
    return [approver for approver in setting.approvers if approver.casefold() not in taken]


def round_subject(request: ApprovalRequest, rnd: ApprovalRound, setting: ApprovalSetting) -> str:
    """The line Required Actions lists: what is asked, of which model, by whom."""
    what = (
        f"{request.model_id}@{request.version} as PRIMARY"
        if request.kind == "promote"
        else f"a change of {request.model_id}'s {(request.change or {}).get('guard', 'guards')}"
    )
    of = f", approval {rnd.number} of {setting.min_approvals}" if setting.min_approvals > 1 else ""
    return f"Approve {what} (request #{request.id} by {request.requested_by}{of})"


def round_body(request: ApprovalRequest, rnd: ApprovalRound, setting: ApprovalSetting, assigned: list[str]) -> str:
    """The request as Markdown: who asked what and why, the approvals so far, the figures it was made on."""
    if request.kind == "promote":
        asked = f"**{request.requested_by}** asks to promote **{request.model_id}@{request.version}** to PRIMARY"
        if request.keep_previous_as_shadow:
            asked += ", keeping the current PRIMARY as a SHADOW"
    else:
        asked = (
            f"**{request.requested_by}** asks to change **{request.model_id}**'s "
            f"{(request.change or {}).get('guard', 'guards')}"
        )
    lines = [asked + ".", ""]
    if request.reason:
        lines += [f"Reason: {_cell(request.reason)}", ""]
    so_far = ", ".join(request.approvals) or "none yet"
    lines += [
        f"Approval {rnd.number} of {setting.min_approvals} (so far: {so_far}); the request expires at "
        f"{request.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    who = (
        ", ".join(assigned)
        if assigned
        else f"anyone who may edit this DAG's required actions except {request.requested_by}"
    )
    lines += [f"Asked of: {who}.", ""]
    if request.forced:
        lines += ["The requester **forced** it: figures that fail do not stop it.", ""]
    if request.kind == "promote":
        window = f" over the last {request.window_hours:g} h" if request.window_hours else ""
        lines += [
            f"Figures when it was requested{window} (checked again when the last approval is given):",
            "",
            "| | name | required | actual | passed |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {kind} | {_cell(row['name'])} | {_cell(row['threshold'])} | {_cell(row['actual'])} | "
            f"{'yes' if row['passed'] else '**no**'} |"
            for kind, rows in (("check", request.checks), ("gate", request.gates))
            for row in rows
        ]
    else:
        values = (request.change or {}).get("values", {})
        lines += ["| field | new value |", "|---|---|"]
        lines += [f"| {_cell(key)} | {_cell(value)} |" for key, value in sorted(values.items())]
    lines += [
        "",
        "**Approve** records your approval in the model registry as you; the last approval the model "
        "needs applies the change. **Reject** needs a reason, which the requester is told.",
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    """A value as one Markdown table cell (or inline text): one line, pipes escaped."""
    text = "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def responder(user: dict[str, Any] | None) -> Actor:
    """The person who answered, as the registry's actor.

    Airflow authenticated them and checked their right to answer (edit access to this DAG's
    required actions, and the task's assignment) before it recorded the answer; the registry
    checks the rest (not the requester, not twice, among the approvers).
    """
    if not user or not user.get("id"):
        raise AirflowException("the answer names no user; only a person's answer is given to the model registry")
    return Actor(
        str(user["id"]), ActorKind.PERSON, person_permissions(may_edit=True, may_govern=False), name=user.get("name")
    )


def _round_of(context: Any) -> ApprovalRound:
    """The run's round; a run without one (triggered by hand) fails at once: no retry can mend it."""
    try:
        return ApprovalRound.from_conf(context["dag_run"].conf)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None


def _find_request(registry: ModelRegistry, rnd: ApprovalRound) -> ApprovalRequest | None:
    return next(
        (r for r in registry.approvals.requests(rnd.model_id, include_decided=True) if r.id == rnd.request_id), None
    )


def _outcome(
    result: Promotion | dict[str, Any] | ApprovalRequest, actor: Actor, rnd: ApprovalRound, approved: bool
) -> dict[str, Any]:
    """What the answer did in the registry, for the task's XCom and log."""
    outcome: dict[str, Any] = {**rnd.as_conf(), "answer": "approve" if approved else "reject", "by": actor.id}
    if isinstance(result, Promotion):
        outcome.update(
            applied=True, promoted=result.promoted, previous=result.previous, previous_now=result.previous_now
        )
    elif isinstance(result, ApprovalRequest):
        outcome.update(applied=False, status=result.status, approvals=list(result.approvals))
    else:
        outcome.update(applied=True, guard_values=result)
    return outcome


# ---- the approval round ---------------------------------------------------------------------------


class RegistryApprovalOperator(ApprovalOperator):
    """Asks one round of a registry request in Required Actions; the answer is the registry's decision."""

    def execute(self, context: Any) -> Any:
        """Read the request again, skip if the round is stale, else ask the people who may still approve."""
        rnd = _round_of(context)
        with registry_connection(load_settings(), application_name=_APPLICATION) as conn:
            registry = ModelRegistry(conn, SYSTEM)
            request = _find_request(registry, rnd)
            setting = registry.guards.approval(rnd.model_id)
        why = stale_reason(request, rnd)
        if request is None or why is not None:
            raise AirflowSkipException(f"round {rnd.number} not asked: {why}")
        assigned = assignees(request, setting)
        if setting.approvers and not assigned:
            raise AirflowSkipException(
                f"round {rnd.number} not asked: every approver of {rnd.model_id} ({', '.join(setting.approvers)}) "
                f"made or approved {request.label()}; name more (`modelreg approvals set {rnd.model_id} "
                "--approvers ...`), then clear this task, or reject the request"
            )
        remaining = request.expires_at - datetime.now(UTC)
        if remaining <= timedelta(0):
            raise AirflowSkipException(f"round {rnd.number} not asked: {request.label()} has expired")
        self.assigned_users = [{"id": user, "name": user} for user in assigned]
        self.subject = round_subject(request, rnd, setting)
        self.body = round_body(request, rnd, setting, assigned)
        self.response_timeout = remaining
        log.info("asking %s of %s", self.subject, ", ".join(assigned) or "any editor")
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Give the answer to the registry as the person who gave it; say what it did, or fail with why not."""
        rnd = _round_of(context)
        if event.get("error_type") == "timeout":
            with registry_connection(load_settings(), application_name=_APPLICATION) as conn:
                request = _find_request(ModelRegistry(conn, SYSTEM), rnd)
            raise AirflowSkipException(
                f"round {rnd.number} got no answer: {closed_reason(request, rnd) or 'its response time passed'}"
            )
        self.validate_chosen_options(event["chosen_options"])
        self.validate_params_input(event.get("params_input") or {})
        actor = responder(event.get("responded_by_user"))
        approved = event["chosen_options"] == [self.APPROVE]
        reason = str((event.get("params_input") or {}).get("reason") or "").strip() or None
        with registry_connection(load_settings(), application_name=_APPLICATION) as conn:
            registry = ModelRegistry(conn, actor)
            if (why := closed_reason(_find_request(registry, rnd), rnd)) is not None:
                raise AirflowSkipException(f"{actor.id}'s answer was not given to the registry: {why}")
            try:
                result = (
                    registry.approvals.approve(rnd.model_id, reason=reason, request_id=rnd.request_id)
                    if approved
                    else registry.approvals.reject(rnd.model_id, None, reason or "", request_id=rnd.request_id)
                )
            except ModelRegistryError as exc:
                answer = "approval" if approved else "rejection"
                raise AirflowException(
                    f"the model registry refused {actor.id}'s {answer}: {' '.join(str(exc).split())}"
                ) from None
        outcome = _outcome(result, actor, rnd, approved)
        log.warning("request #%d of %s: %s", rnd.request_id, rnd.model_id, outcome)
        super().execute_complete(context, event)
        return outcome


# ---- the sweep ---------------------------------------------------------------------------------------


class ApprovalRoundsApi(AirflowPoolsApi):
    """The task-instance endpoints of Airflow's REST API the sweep needs (same login and errors as the pools')."""

    _PAGE = 100

    def waiting_rounds(self) -> list[tuple[str, ApprovalRound]]:
        """Runs whose ``approve`` task waits for an answer, with the round each asks (from its conf)."""
        waiting = {
            ti["dag_run_id"]
            for ti in self._pages(
                f"/api/v2/dags/{APPROVAL_DAG_ID}/dagRuns/~/taskInstances",
                "task_instances",
                {"task_id": APPROVE_TASK_ID, "state": "awaiting_input"},
            )
        }
        rounds = []
        for run in self._pages(f"/api/v2/dags/{APPROVAL_DAG_ID}/dagRuns", "dag_runs", {"state": "running"}):
            if run["dag_run_id"] not in waiting:
                continue
            try:
                rounds.append((run["dag_run_id"], ApprovalRound.from_conf(run.get("conf"))))
            except ValueError as exc:
                log.warning("run %s of %s is left alone: %s", run["dag_run_id"], APPROVAL_DAG_ID, exc)
        return rounds

    def end_round(self, run_id: str, note: str) -> None:
        """Mark the round's waiting task skipped, with why as its note."""
        self._call(
            "PATCH",
            f"/api/v2/dags/{APPROVAL_DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{APPROVE_TASK_ID}",
            json={"new_state": "skipped", "note": note[:1000]},
        )

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", path, params={**params, "limit": self._PAGE, "offset": len(rows)}).json()
            rows += page[key]
            if len(page[key]) < self._PAGE or len(rows) >= page["total_entries"]:
                return rows


def rounds_to_open() -> list[dict[str, Any]]:
    """Task body: the next round of each PENDING request that has no run yet, as trigger arguments."""
    ti = get_current_context()["ti"]
    with registry_connection(load_settings(), application_name=_APPLICATION) as conn:
        pending = [r for r in ModelRegistry(conn, SYSTEM).approvals.requests() if r.status == "PENDING"]
    rounds = [ApprovalRound.next_for(request) for request in reversed(pending)]  # oldest first
    new = [rnd for rnd in rounds if not ti.get_dr_count(dag_id=APPROVAL_DAG_ID, run_ids=[rnd.run_id])]
    log.info("%d pending request(s); rounds to open: %s", len(pending), [rnd.run_id for rnd in new] or "none")
    return [{"trigger_run_id": rnd.run_id, "conf": rnd.as_conf()} for rnd in new]


def end_stale_rounds() -> dict[str, Any]:
    """Task body: end the waiting rounds of requests decided, expired or approved elsewhere (REST API)."""
    settings = load_settings()
    api = ApprovalRoundsApi.from_connection(settings.airflow_api_conn_id)
    if api is None:
        raise AirflowSkipException(
            f"the Airflow connection {settings.airflow_api_conn_id!r} is not defined, so rounds of requests "
            "decided elsewhere wait in Required Actions until their request expires (an answer to one is not "
            "given to the registry); define it (the API server's URL, and a user allowed to edit task instances "
            f"of {APPROVAL_DAG_ID}) to end them at once"
        )
    try:
        waiting = api.waiting_rounds()
        requests: dict[int, ApprovalRequest] = {}
        with registry_connection(settings, application_name=_APPLICATION) as conn:
            registry = ModelRegistry(conn, SYSTEM)
            for model_id in sorted({rnd.model_id for _, rnd in waiting}):
                requests.update({r.id: r for r in registry.approvals.requests(model_id, include_decided=True)})
        ended = []
        for run_id, rnd in waiting:
            request = requests.get(rnd.request_id)
            if request is not None and request.model_id != rnd.model_id:
                request = None
            if (why := stale_reason(request, rnd)) is not None:
                api.end_round(run_id, f"Ended by {SWEEP_DAG_ID}: {why}.")
                log.warning("ended round %s: %s", run_id, why)
                ended.append({"run_id": run_id, "why": why})
        return {"waiting": len(waiting), "ended": ended}
    finally:
        api.close()


# ---- the DAGs ----------------------------------------------------------------------------------------


def build_sweep_dag(settings: Settings | None = None) -> DAG:
    """Open the next round of every PENDING request, end stale ones; every minute, one run at a time."""
    settings = settings or load_settings()
    with DAG(
        dag_id=SWEEP_DAG_ID,
        schedule=SWEEP_SCHEDULE,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=TAGS + ["approvals"],
        doc_md=(
            "Turns the model registry's PENDING requests (`modelreg approvals list`) into approval rounds of "
            f"`{APPROVAL_DAG_ID}`, one run per round (run id `request_ID_approval_N`, N = approvals so far + 1), "
            "each waiting in **Required Actions** for the model's approvers. Then ends, through the Airflow "
            "connection `airflow_api`, the waiting rounds of requests decided, expired or approved elsewhere "
            "(the registry page, `modelreg`). Reads the registry only; every decision is the registry's."
        ),
        default_args=default_args(
            settings, retries=1, retry_delay=timedelta(seconds=5), execution_timeout=timedelta(minutes=2)
        ),
    ) as dag:
        rounds = task(task_id="find_rounds", multiple_outputs=False)(rounds_to_open)()
        TriggerDagRunOperator.partial(
            task_id="open_round",
            trigger_dag_id=APPROVAL_DAG_ID,
            logical_date=None,
            skip_when_already_exists=True,
            wait_for_completion=False,
            map_index_template="{{ task.trigger_run_id }}",
        ).expand_kwargs(rounds)
        task(task_id="end_stale_rounds", multiple_outputs=False)(end_stale_rounds)()
    return dag


def build_approval_dag(settings: Settings | None = None) -> DAG:
    """One run per approval round of a registry request; its ``approve`` task waits in Required Actions."""
    settings = settings or load_settings()
    with DAG(
        dag_id=APPROVAL_DAG_ID,
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=MAX_WAITING_ROUNDS,
        tags=TAGS + ["approvals"],
        doc_md=(
            "One run per approval round of a model-registry request, triggered by "
            f"`{SWEEP_DAG_ID}`. `approve` waits in **Required Actions**, assigned to the model's approvers other "
            "than the requester and those who approved already (anyone who may answer here when the model "
            "names none). The answer is the registry's approve or reject, as the person who answered: the "
            "registry refuses the requester, a second vote and figures that no longer pass, and the try fails "
            "with its message (the task asks again on retry, or when cleared). An answer to a request decided "
            "meanwhile is skipped. The round waits until the request expires "
            f"(`approval_ttl_hours`, {settings.approval_ttl.total_seconds() / 3600:g} h)."
        ),
        default_args=default_args(settings),
    ) as dag:
        approve = RegistryApprovalOperator(
            task_id=APPROVE_TASK_ID,
            subject="Approve a model registry request",  # the request's own, set when the round is asked
            response_timeout=settings.approval_ttl,  # the request's remaining time, set when the round is asked
            params={
                "reason": Param(
                    None,
                    type=["null", "string"],
                    title="Reason",  # optional: never blocks Approve
                    description="Why: needed to reject (the requester is told), kept with an approval",
                )
            },
            retries=REFUSED_ANSWERS_RETRIED,
            retry_delay=timedelta(seconds=5),
        )
        approve >> TriggerDagRunOperator(
            task_id="sweep_now",
            trigger_dag_id=SWEEP_DAG_ID,
            trigger_run_id="after__{{ run_id }}",
            logical_date=None,
            skip_when_already_exists=True,
            wait_for_completion=False,
        )
    return dag
