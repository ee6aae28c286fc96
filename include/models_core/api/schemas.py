"""What the registry API answers, as the models its OpenAPI document names (``/openapi.json``).

Each route declares one of these as its response model, so FastAPI checks every answer
against it and a client generated from the document gets named types. The registry code
builds the answers as plain dicts and dataclasses (``modelreg`` in direct database mode
prints the same ones), so each model here mirrors the keys that code writes: a key it
writes only sometimes is a field with a default, and the routes answer with
``response_model_exclude_unset`` so an absent key stays absent. The change bodies are
:mod:`models_core.registry.changes`'s models, shared with ``modelreg``.

Two types keep the answers' JSON what it was before they were typed: :data:`Timestamp`
writes Python's ISO 8601 (``+00:00``, as ``modelreg`` prints it, where pydantic would write
``Z``) and :data:`Number` keeps an integer an integer where the registry stores free JSON.

The audit trail is the one exception to the check: the routes that answer it (a model's page
and its history) pass each :class:`Transition` on as the JSON PostgreSQL writes of its row,
hundreds of them, instead of making Python objects of them, checking and writing them again
(three times the read itself); the tests check those rows against :class:`Transition`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, RootModel, WithJsonSchema

Timestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
#: A metric's bounds, ``{"min": 0.1, "max": 5}`` (either or both).
Bounds = dict[str, Number]
Result = TypeVar("Result")


# ---- figures -----------------------------------------------------------------------------


class CheckFigure(BaseModel):
    """One stage check or quality gate: what it requires, what the version has, whether that passes."""

    name: str = Field(description="`min_cycles`, `metric:<key>`, `tag:<key>`, `description`, `params_schema`, ...")
    threshold: str = Field(description="What it requires, e.g. `>= 12` or `validated=true`.")
    actual: str | Number | None = Field(
        description="A stage check's finding as text; a gate's measured value (null: nothing measured)."
    )
    passed: bool


class GateFigure(CheckFigure):
    """A quality gate, and what decided it."""

    kind: Literal["point", "interval"] = Field(
        description="`point`: the measured value decided; `interval`: the bound of its 95% interval."
    )


class IntervalFigure(GateFigure):
    """A quality gate its 95% interval decided, with the evidence behind it."""

    interval: tuple[float, float] | None = Field(description="The 95% interval (null: too few cycles for one).")
    inputs: int = Field(description="Inputs the version's evaluation compared in the window.")
    cycles: int = Field(description="Distinct cycles those inputs came from.")
    more_cycles: int | None = Field(
        description="Cycles more, at the current rate, until it would pass (0: it passes; "
        "null: more cycles would not make it pass)."
    )


#: A stage check, a point gate or an interval gate: each carries the fields it has.
Figure = IntervalFigure | GateFigure | CheckFigure


class Refusal(BaseModel):
    """Why a request was refused: for the registry's own refusals, the one line ``modelreg`` prints."""

    detail: str = Field(description="`modelreg <command>: ...` for the registry's refusals; Airflow's own otherwise.")
    gates: list[Figure] | None = Field(
        default=None, description="Every stage check and quality gate, when they refused the change."
    )


class Window(BaseModel):
    """The span of time the figures were taken over, ending now."""

    start: Timestamp
    end: Timestamp
    hours: float


class LastOutcome(BaseModel):
    """A version's latest model task in the window, with the DAG run and task to link to."""

    cycle_started_at: Timestamp
    state: str | None = Field(description="The task instance's final state, e.g. `success`, `failed`, `skipped`.")
    run_id: str
    task_id: str


class Evaluation(BaseModel):
    """A SHADOW/CHALLENGER against its PRIMARY on the same inputs (means over the cycles)."""

    coverage: float | None
    agreement: float | None
    score_difference: float | None
    duration_ratio: float | None


class WindowFigures(BaseModel):
    """How one version ran over the window."""

    cycles: int = Field(description="Cycles its task ran in the window.")
    succeeded: int
    failed: int
    skipped: int
    signal: str = Field(
        description="`ok`, `no_signal` (it did not run) or `silent_fault` (it ran and produced nothing)."
    )
    duration_p50_ms: float | None
    outputs_per_cycle: float | None
    metrics: dict[str, float] = Field(description="Each metric's mean over the window, by key.")
    evaluation: Evaluation | None = Field(default=None, description="Absent for a PRIMARY.")


# ---- the models page ---------------------------------------------------------------------


class ActiveVersion(BaseModel):
    """A PRIMARY, SHADOW or CHALLENGER that runs now, with the fields of its :class:`WindowFigures`
    (absent for a version the window's snapshot did not see)."""

    id: int
    version: str
    role: str
    last: LastOutcome | None
    cycles: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    skipped: int | None = None
    signal: str | None = None
    duration_p50_ms: float | None = None
    outputs_per_cycle: float | None = None
    metrics: dict[str, float] | None = None
    evaluation: Evaluation | None = None


class ErroredVersion(BaseModel):
    """A version in ERROR, with the transition that put it there (absent when none is recorded)."""

    id: int
    version: str
    role: str
    reason: str | None = None
    at: Timestamp | None = None
    actor: str | None = None


class ModelSummary(BaseModel):
    """One model on the models page."""

    model_id: str
    upstream: list[str] = Field(description="The models it depends on in the registry.")
    primary: ActiveVersion | None
    challengers: list[ActiveVersion] = Field(description="Its ACTIVE SHADOW and CHALLENGER versions.")
    versions: int = Field(description="How many versions it has, in any status.")
    errors: list[ErroredVersion]
    pending_approvals: int
    tagged: list[str] | None = Field(
        default=None,
        description="With a `tag` filter only: its newest versions (at most 5) that carry every tag asked for.",
    )
    tagged_count: int | None = Field(
        default=None, description="With a `tag` filter only: how many of its versions carry every tag asked for."
    )


class RegistryHealth(BaseModel):
    """Whether the registry and the model code agree, and how the PRIMARYs fared in the window."""

    active_versions: int
    rows_without_class: list[str] = Field(description="ACTIVE versions (`model@version`) no model class declares.")
    classes_without_rows: list[str] = Field(description="Model classes without an ACTIVE version.")
    module_import_errors: list[str]
    primary_failed: dict[str, int] = Field(description="Failed PRIMARY cycles, by model.")
    primary_skipped: dict[str, int] = Field(description="Skipped PRIMARY cycles, by model.")
    primary_skipped_backend_down: dict[str, int] = Field(description="PRIMARY cycles skipped for a backend DOWN.")


class DriftFinding(BaseModel):
    """A metric whose mean per cycle moved beyond the drift band from a day or a week before."""

    label: str = Field(description="`model@version[ROLE]`.")
    version_id: int
    metric: str
    now: float | None
    previous_day: float | None
    previous_7_days_mean: float | None
    flagged: list[str] = Field(description="Which references it drifted from: `previous_day`, `previous_7_days`.")


class PageFilters(BaseModel):
    """The filters a page of models was chosen with, as the request gave them."""

    tag: list[str] = Field(description="`KEY` or `KEY=VALUE` each; a model's one version carries every one.")
    status: str | None
    role: str | None
    q: str | None = Field(description="Text in the model id or a version's description.")
    attention: bool


class Page(BaseModel):
    """Which page of the models this is: models are in model id order."""

    offset: int
    limit: int
    has_more: bool = Field(description="Whether models follow this page (ask with offset + limit).")
    filters: PageFilters


class ModelsOverview(BaseModel):
    """One page of models with their running versions and their figures (``modelreg list``)."""

    window: Window
    models: list[ModelSummary]
    page: Page
    registry: RegistryHealth = Field(description="Of the page's models.")


class DriftReport(BaseModel):
    """The drift of some models (a page's): their metrics' findings that left the band."""

    window: Window
    band: float = Field(description="The relative change that flags a metric (`drift_band`).")
    findings: list[DriftFinding] = Field(description="Flagged findings only.")
    not_computed: str | None = Field(description="Why there are none: a window over 24 hours.")


# ---- guards ------------------------------------------------------------------------------


class QualityGates(BaseModel):
    """What a version must have shown over the window before it becomes the PRIMARY."""

    model_config = ConfigDict(extra="forbid")  # tells the guards apart where any of them may come

    min_cycles: int
    max_failure_rate: float
    min_agreement: float | None
    max_duration_ratio: float | None
    max_score_difference: float | None
    metric_thresholds: dict[str, Bounds] = Field(description="Bounds on metric means, by metric key.")
    min_backtest_cycles: int | None = Field(
        description="Backtested cycles required (null: none), on which the evaluation gates must pass too."
    )
    gate_kind: Literal["interval", "point"] = Field(
        description="`interval`: the evaluation gates pass on the bound of their 95% interval; "
        "`point`: on the estimate."
    )


class StageCheckPolicy(BaseModel):
    """What a version needs before it may run as SHADOW or CHALLENGER."""

    model_config = ConfigDict(extra="forbid")

    required_tags: list[str] = Field(description="`KEY` (the tag must be set) or `KEY=VALUE` each.")
    require_description: bool


class ApprovalPolicy(BaseModel):
    """Whether the model's promotions (and guard changes) wait for other people's approval."""

    model_config = ConfigDict(extra="forbid")

    required: bool
    approvers: list[str] = Field(description="Airflow user ids; empty: anyone who may edit the DAG.")
    min_approvals: int


class SelfHealingPolicy(BaseModel):
    """When a failing version goes to ERROR, and what a broken PRIMARY triggers."""

    model_config = ConfigDict(extra="forbid")

    error_after_failures: int | None = Field(description="Failed cycles in a row; null: the deployment's setting.")
    on_primary_error: str = Field(description="`alert` or `rollback`.")
    max_failure_rate: float | None
    metric_thresholds: dict[str, Bounds]
    min_cycles: int
    window_hours: float
    cooldown_minutes: float


GuardValues = QualityGates | StageCheckPolicy | ApprovalPolicy | SelfHealingPolicy


# ---- approvals ---------------------------------------------------------------------------


class RequestedGuardChange(BaseModel):
    """The guard a request changes and the fields it asks for."""

    guard: str = Field(description="`gates`, `checks`, `approvals` or `policy`.")
    values: dict[str, Any]


class ApprovalRequest(BaseModel):
    """A change waiting for (or decided by) other people: a promotion, or a change of a guard."""

    id: int | None = Field(description="Null in a preview: only a change carried out is given an id.")
    model_id: str
    kind: str = Field(description="`promote` or `guards`.")
    version_id: int | None
    version: str | None
    change: RequestedGuardChange | None
    status: str = Field(description="`PENDING`, `APPROVED`, `REJECTED`, `EXPIRED` or `CANCELLED`.")
    requested_by: str
    requested_by_kind: str
    requested_at: Timestamp
    expires_at: Timestamp
    reason: str | None
    forced: bool
    keep_previous_as_shadow: bool
    window_hours: float | None
    checks: list[Figure]
    gates: list[Figure]
    decided_by: str | None
    decided_at: Timestamp | None
    decision_reason: str | None
    decision_gates: list[Figure] | None
    approvals: list[str] = Field(description="Who approved it so far.")


class ApprovalsOverview(ApprovalPolicy):
    """A model's approval setting and its requests, newest first."""

    requests: list[ApprovalRequest]


class ModelApprovals(ApprovalsOverview):
    """A model's approval setting and its requests waiting (or all of them, with ``include_decided``)."""

    model_id: str


# ---- one model ---------------------------------------------------------------------------


class LatestMetrics(BaseModel):
    """A version's metrics of its latest stored cycle."""

    cycle_started_at: Timestamp
    metrics: dict[str, float]


class ErrorReason(BaseModel):
    """Why a version is in ERROR: the transition that put it there."""

    reason: str | None
    at: Timestamp
    actor: str


class VersionDetail(BaseModel):
    """One version on the model page."""

    id: int
    version: str
    status: str = Field(description="`DRAFT`, `ACTIVE`, `INACTIVE`, `ARCHIVED` or `ERROR`.")
    role: str = Field(description="`PRIMARY`, `SHADOW` or `CHALLENGER`.")
    params: Any = Field(description="A JSON object (rows written before migration 0007 may hold other JSON).")
    description: str | None
    tags: dict[str, str]
    metadata: dict[str, Any]
    latest: LatestMetrics | None
    window: WindowFigures | None
    last: LastOutcome | None
    checks: list[Figure] = Field(description="The model's stage checks against this version now.")
    error: ErrorReason | None = Field(description="Set for a version in ERROR only.")


class Transition(BaseModel):
    """One row of the model's audit trail."""

    id: int
    at: Timestamp = Field(description="ISO 8601 as PostgreSQL writes it: no trailing zeros in a fraction of a second.")
    model_id: str
    version_id: int | None
    version: str | None
    action: str
    from_status: str | None
    to_status: str | None
    from_role: str | None
    to_role: str | None
    actor: str
    actor_kind: str | None
    reason: str | None
    gates: Any = Field(description="The figures the change was made on, as recorded with it.")
    source: str = Field(description="`api` (through the registry) or `sql` (plain SQL).")
    db_user: str
    details: Any
    basis: str | None = Field(description="Why a change into PRIMARY was allowed: `gated`, `forced`, ...")
    request_id: int | None


class ModelPage(BaseModel):
    """A model's page but its audit trail: what the route builds in Python and FastAPI checks."""

    model_id: str
    versions: list[VersionDetail] = Field(description="Newest version first.")
    upstream: list[str]
    downstream: list[str]
    gates: QualityGates
    stage_checks: StageCheckPolicy
    approvals: ApprovalsOverview
    healing_policy: SelfHealingPolicy
    window: Window


class ModelDetail(ModelPage):
    """A model's versions, dependencies, guards and audit trail (``modelreg show`` and ``history``)."""

    history: list[Transition] = Field(description="Oldest first.")


class MetricSeries(BaseModel):
    """One metric of one version over the window."""

    version_id: int
    version: str
    points: list[tuple[Timestamp, float]] = Field(description="`[at, mean]` pairs in time order.")


class MetricTrends(BaseModel):
    """Each metric of a model per version over the window, averaged in buckets (a chart's points)."""

    window: Window
    bucket_seconds: float
    metrics: dict[str, list[MetricSeries]] = Field(description="By metric key.")


class History(BaseModel):
    """A model's audit trail (``modelreg history``)."""

    model_id: str
    history: list[Transition] = Field(description="Oldest first.")


class PrimaryAt(BaseModel):
    """Which version was the model's ACTIVE PRIMARY at a time."""

    model_id: str
    at: Timestamp
    primary: str | None


class VersionMetadata(BaseModel):
    """A version's metadata document (``modelreg meta``)."""

    model_id: str
    version: str
    metadata: dict[str, Any]


class Readiness(BaseModel):
    """Whether an activation or promotion would go ahead now, with every figure (``--check``)."""

    model_id: str
    version: str
    action: str
    passed: bool
    problems: list[str] = Field(description="What no figure can fix, e.g. the version is ARCHIVED.")
    approval_required: bool
    checks: list[Figure]
    gates: list[Figure] = Field(description="The quality gates; promotion only.")


class BacktestConf(BaseModel):
    """The Params of a ``detection_model_backtest`` run."""

    model_id: str
    version: str
    start: str = Field(description="The first cycle time asked for, ISO-8601, UTC.")
    end: str = Field(description="The last cycle time asked for, ISO-8601, UTC.")


class BacktestPlan(BaseModel):
    """The run a backtest would make (``modelreg backtest --check``); triggering it is Airflow's
    ``POST /api/v2/dags/{dag_id}/dagRuns`` with this ``conf``."""

    dag_id: str
    conf: BacktestConf
    cycles: int = Field(description="The schedule's cycles in the range, both ends included.")
    tasks: int = Field(description="Task instances of the run's mapped run_cycles.")
    cycles_per_task: int


class ModelStageChecks(StageCheckPolicy):
    """A model's stage checks (``modelreg checks``)."""

    model_id: str


class ModelHealingPolicy(SelfHealingPolicy):
    """A model's self-healing policy (``modelreg policy``), the defaults where it has none."""

    model_id: str


# ---- the cycle ---------------------------------------------------------------------------


class PlanError(BaseModel):
    """Why the registry describes no plan now (e.g. a dependency cycle)."""

    plan_error: str


class PlanChanges(BaseModel):
    """The model tasks and edges one plan has that another lacks, and back."""

    tasks_added: list[str]
    tasks_removed: list[str]
    edges_added: list[str] = Field(description="`upstream_task >> task` each.")
    edges_removed: list[str]


class PlanChangesSinceParse(PlanChanges):
    """The registry's plan now against the cycle DAG Airflow last parsed."""

    fingerprint: str = Field(description="The plan's fingerprint, as the next parse will record it.")


class NextParse(RootModel[PlanChangesSinceParse | PlanError]):
    """What the next parse of the cycle DAG will change (``modelreg plan``)."""


class PreviewPlan(RootModel[PlanChanges | PlanError]):
    """What a previewed change would do to the cycle DAG."""


class OutputRow(BaseModel):
    """One (input_ref, output) pair a version stored."""

    seq: int
    input_ref: Any
    outputs: Any


class CycleOutputs(BaseModel):
    """What one version stored for one cycle: its first rows, their count, its metrics."""

    model_id: str
    version: str
    cycle_started_at: Timestamp
    role: str | None = Field(description="The role it ran in then; null when it stored no metric.")
    now: str = Field(description="Its status and role now, e.g. `ACTIVE SHADOW`.")
    output_count: int
    rows: list[OutputRow]
    metrics: dict[str, float]
    evaluation: Evaluation | None = Field(description="A SHADOW/CHALLENGER's cycle only.")


# ---- backends and the caller -------------------------------------------------------------


class Backend(BaseModel):
    """A registered backend: where the health DAG probes it."""

    name: str
    base_url: str
    health_path: str
    status_path: str | None
    timeout_s: float


class BackendCaller(BaseModel):
    """An ACTIVE version that calls a backend."""

    model_id: str
    version: str
    role: str


class BackendHealth(Backend):
    """A backend with its health after the last probe (all null when never probed)."""

    status: str | None = Field(description="`UP` or `DOWN`.")
    since: Timestamp | None
    last_sample_at: Timestamp | None
    latency_ms: float | None
    baseline_ms: float | None
    healthy_samples: int | None
    load_class: str | None
    active_jobs: int | None
    error: str | None
    unavailable: str | None = Field(description="Why a task would not call it now; null: it may.")
    callers: list[BackendCaller]


class UnregisteredBackend(BaseModel):
    """A backend ACTIVE versions call that nobody registered (their tasks fail)."""

    name: str
    callers: list[BackendCaller]


class BackendsOverview(BaseModel):
    """Every backend's health and callers (``modelreg backends list``)."""

    at: Timestamp
    stale_after_seconds: float = Field(description="How long a health sample is trusted.")
    backends: list[BackendHealth]
    unregistered: list[UnregisteredBackend]


class Webhook(BaseModel):
    """A receiver of the registry's events (``modelreg webhooks list``), with its deliveries by status."""

    name: str
    url: str
    events: list[str] = Field(description="Kinds or actions it gets; empty: every event.")
    secret_env: str = Field(description="The sender's environment variable holding the secret (never the secret).")
    enabled: bool
    delivered: int
    pending: int
    gave_up: int


class WebhooksOverview(BaseModel):
    """Every webhook of the registry's events."""

    webhooks: list[Webhook]


class Delivery(BaseModel):
    """One event to one webhook: the delivery log's row."""

    id: int
    webhook: str
    event_id: int
    model_id: str
    status: Literal["PENDING", "DELIVERED", "GAVE_UP"]
    attempts: int
    next_attempt_at: Timestamp
    last_error: str | None
    last_http_status: int | None
    latency_ms: float | None
    created_at: Timestamp
    delivered_at: Timestamp | None


class DeliveryLog(BaseModel):
    """The webhook delivery log, newest first (``modelreg webhooks deliveries``)."""

    deliveries: list[Delivery]


class WebhookAdded(BaseModel):
    """A webhook added (or replaced): it gets the events committed from now on."""

    name: str
    url: str
    events: list[str]
    secret_env: str


class WebhookRemoved(BaseModel):
    """A webhook removed with its delivery log."""

    name: str
    removed: bool


class Identity(BaseModel):
    """Who the registry takes the caller for."""

    id: str = Field(description="The auth manager's user id, as the audit trail records it.")
    name: str | None = Field(description="The name the auth manager shows for the user.")
    kind: str = Field(description="`person` for a logged-in user.")
    permissions: list[str] = Field(description="`request`, `approve`, `force`, `govern`, ...")


# ---- what changes answer -----------------------------------------------------------------


class RegisteredVersion(BaseModel):
    """A version just registered, as DRAFT."""

    model_id: str
    version: str
    id: int | None = Field(description="Null in a preview.")
    status: str


class Promotion(BaseModel):
    """A change into PRIMARY: the new PRIMARY, what became of the previous one, and why it was allowed."""

    model_id: str
    promoted: str
    previous: str | None
    previous_now: str | None = Field(description="`ARCHIVED`, `ACTIVE SHADOW` or `INACTIVE`.")
    forced: bool
    basis: str = Field(description="`gated`, `forced`, `approved`, `restore`, ...")
    gates: list[Figure]
    checks: list[Figure]


class PromotionRequested(BaseModel):
    """A promotion of a model under approval: nothing was promoted, a request waits instead."""

    model_id: str
    version: str
    promoted: None
    request: ApprovalRequest


class ReactivatedVersion(BaseModel):
    """A version brought out of ERROR."""

    model_id: str
    version: str
    status: str
    role: str


class GuardChange(BaseModel):
    """A guard changed (``applied``, with its new ``values``) or, on a model under approval, requested."""

    model_id: str
    guard: str = Field(description="`gates`, `checks`, `approvals` or `policy`.")
    applied: bool
    values: GuardValues | None = Field(default=None, description="The guard's values now; when applied.")
    request: ApprovalRequest | None = Field(default=None, description="The request it became; when not applied.")


class ApprovalPending(BaseModel):
    """An approval recorded; the request waits for more."""

    model_id: str
    applied: Literal[False]
    request: ApprovalRequest


class GuardApproved(BaseModel):
    """The last approval a guard change needed: the guard's values now."""

    model_id: str
    applied: Literal[True]
    guard: str
    values: GuardValues


class PromotionApproved(BaseModel):
    """The last approval a promotion needed: the promotion it applied."""

    model_id: str
    applied: Literal[True]
    promotion: Promotion


class BackendRemoved(BaseModel):
    """A backend removed with its health history."""

    name: str
    removed: bool


class ChangeAnswer(BaseModel, Generic[Result]):
    """What every change answers: carried out (with ``next_parse``) or previewed (with ``plan``)."""

    command: str = Field(description="The `modelreg` command the change is.")
    preview: bool
    result: Result
    next_parse: NextParse | None = Field(default=None, description="When carried out: what the next parse changes.")
    plan: PreviewPlan | None = Field(default=None, description="When previewed: what the change would do to the plan.")


class ChangeDone(ChangeAnswer[None]):
    """The answer to a change with nothing more to say than that it was made."""


class RegisterAnswer(ChangeAnswer[RegisteredVersion]):
    """The answer to registering a version."""


class ActivateAnswer(ChangeAnswer[list[Figure]]):
    """The answer to an activation: the stage checks it passed."""


class PromoteAnswer(ChangeAnswer[Promotion | PromotionRequested]):
    """The answer to a promotion: carried out, or a request on a model under approval."""


class RollbackAnswer(ChangeAnswer[Promotion]):
    """The answer to a rollback: the earlier PRIMARY restored."""


class ReactivateAnswer(ChangeAnswer[ReactivatedVersion]):
    """The answer to a reactivation."""


class ApproveAnswer(ChangeAnswer[ApprovalPending | GuardApproved | PromotionApproved]):
    """The answer to an approval: still pending, or the guard change or promotion it applied."""


class RejectAnswer(ChangeAnswer[ApprovalRequest]):
    """The answer to a rejection: the request as decided."""


class GuardChangeAnswer(ChangeAnswer[GuardChange]):
    """The answer to a change of a guard (gates, stage checks, approvals, self-healing policy)."""


class TagsAnswer(ChangeAnswer[dict[str, str]]):
    """The answer to a change of tags: every tag the version has now."""


class AddBackendAnswer(ChangeAnswer[Backend]):
    """The answer to registering a backend."""


class RemoveBackendAnswer(ChangeAnswer[BackendRemoved]):
    """The answer to removing a backend."""


class AddWebhookAnswer(ChangeAnswer[WebhookAdded]):
    """The answer to adding a webhook."""


class RemoveWebhookAnswer(ChangeAnswer[WebhookRemoved]):
    """The answer to removing a webhook."""
