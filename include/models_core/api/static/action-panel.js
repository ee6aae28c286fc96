// One registry change, in two steps: Preview (the change made and rolled back: what it
// would do, every gate's figures, the tasks and edges it adds or removes) and Confirm (made
// for real, as the logged-in Airflow user). Changing a field asks for a new preview. On a
// model under approval a promotion, or a change of what guards the model by a user who may
// not govern, becomes a request that another user approves.

import { getRegistry, postRegistry, segment } from "./registry-api.js";
import { C, ErrorLine, GateTable, Loading, PlanDifference, React, h, json, useLoad, when } from "./ui.js";

const text = (name, label, extra = {}) => ({ name, label, kind: "text", ...extra });
const number = (name, label) => ({ name, label, kind: "number" });
const flag = (name, label) => ({ name, label, kind: "flag" });
const jsonObject = (name, label, extra = {}) => ({ name, label, kind: "json", ...extra });
const list = (name, label, extra = {}) => ({ name, label, kind: "list", ...extra });
const choice = (name, label, choices) => ({ name, label, kind: "choice", choices });
const reason = text("reason", "Reason (recorded in the audit trail)");
const version = (path) => (m, v) => `models/${m}/versions/${v}/${path}`;

/** Per action: its title, the API path, its fields (as ``modelreg`` takes them). */
const ACTIONS = {
  register: { title: "Register a version", path: (m) => `models/${m}/versions`,
    fields: [text("version", "Version (MAJOR.MINOR.PATCH)"), jsonObject("params", "Params (JSON object)"),
      text("description", "Description")] },
  activate: { title: "Activate", path: (m, v) => `models/${m}/versions/${v}/activate`,
    fields: [{ name: "role", label: "Role", kind: "choice", choices: ["SHADOW", "CHALLENGER"] }, reason] },
  deactivate: { title: "Deactivate", path: (m, v) => `models/${m}/versions/${v}/deactivate`,
    fields: [reason, flag("force", "Force (allowed for the ACTIVE PRIMARY: its downstream models stop)")] },
  archive: { title: "Archive", path: (m, v) => `models/${m}/versions/${v}/archive`,
    fields: [reason, flag("force", "Force (allowed for the ACTIVE PRIMARY: its downstream models stop)")] },
  promote: { title: "Promote to PRIMARY", path: (m, v) => `models/${m}/versions/${v}/promote`,
    fields: [number("window_hours", "Hours of history the gates look at"),
      flag("keep_previous_as_shadow", "Keep the previous PRIMARY as an ACTIVE SHADOW"),
      flag("force", "Force past failing gates (needs a reason)"), reason] },
  rollback: { title: "Roll back to an earlier PRIMARY", path: (m) => `models/${m}/rollback`,
    fields: [text("to", "Version to restore (empty: the latest earlier PRIMARY never rolled back from)"), reason] },
  gates: { title: "Edit quality gates", path: (m) => `models/${m}/gates`,
    fields: [number("min_cycles", "Minimum cycles"), number("max_failure_rate", "Maximum failure rate (0-1)"),
      number("min_agreement", "Minimum agreement (0-1)"), number("max_duration_ratio", "Maximum duration ratio"),
      number("max_score_difference", "Maximum mean score difference from the PRIMARY"),
      number("min_backtest_cycles", "Backtested cycles required (the evaluation gates must pass on them too)"),
      jsonObject("metric_thresholds", 'Metric thresholds (JSON, e.g. {"flagged": {"max": 50}})'),
      choice("gate_kind", "Decided by (interval: the bound of the 95% interval; point: the estimate)",
        ["", "interval", "point"]), reason] },
  "deps-add": { title: "Add a dependency", path: (m) => `models/${m}/dependencies/add`,
    fields: [text("upstream", "Upstream model")] },
  "deps-remove": { title: "Remove a dependency", path: (m) => `models/${m}/dependencies/remove`,
    fields: [text("upstream", "Upstream model")] },
  tags: { title: "Set tags", path: version("tags/set"),
    fields: [list("tags", "Tags to add or overwrite (KEY=VALUE, comma-separated)"), reason] },
  untag: { title: "Remove tags", path: version("tags/remove"),
    fields: [list("keys", "Tag keys to remove (comma-separated)"), reason] },
  describe: { title: "Describe", path: version("describe"),
    fields: [text("description", "Description (empty removes it)", { empty: "" }), reason] },
  metadata: { title: "Replace the metadata document", path: version("metadata"),
    fields: [jsonObject("metadata", "Metadata (JSON object; replaces the whole document)", { empty: {} }), reason] },
  "stage-checks": { title: "Edit stage checks (before SHADOW/CHALLENGER)", path: (m) => `models/${m}/stage-checks`,
    fields: [list("required_tags", "Required tags (KEY or KEY=VALUE, comma-separated; empty: none)", { empty: [] }),
      flag("require_description", "Require a description"), reason] },
  approvals: { title: "Approval settings", path: (m) => `models/${m}/approvals/settings`,
    fields: [flag("required", "Promotions and guard changes need a second person's approval"),
      list("approvers", "Approvers (Airflow user ids, comma-separated; empty: anyone who may edit the DAG)",
        { empty: [] }),
      number("min_approvals", "Approvals a request needs (never its maker's)"), reason] },
  approve: { title: "Approve request", path: (m) => `models/${m}/requests/approve`, fields: [reason] },
  reject: { title: "Reject request", path: (m) => `models/${m}/requests/reject`,
    fields: [text("reason", "Reason (required: the requester is told why)")] },
  reactivate: { title: "Reactivate (out of ERROR)", path: version("reactivate"),
    fields: [choice("role", "Role", ["", "PRIMARY", "SHADOW", "CHALLENGER"]), reason] },
  policy: { title: "Edit the self-healing policy", path: (m) => `models/${m}/healing-policy`,
    fields: [choice("on_primary_error", "When the PRIMARY breaks", ["alert", "rollback"]),
      number("error_after_failures", "Failed cycles in a row before ERROR"),
      number("max_failure_rate", "Degraded above this failure rate (0-1)"),
      jsonObject("metric_thresholds", 'Degraded outside these metric bounds (JSON, e.g. {"flagged": {"max": 50}})'),
      number("min_cycles", "Cycles in the window before the rules judge"),
      number("window_hours", "Hours the degradation rules look back"),
      number("cooldown_minutes", "Minutes after a PRIMARY change before an automatic rollback"), reason] },
};

/** The request body from the form's strings; a field left empty is not sent (or sends its ``empty``). */
function body(fields, values) {
  const result = {};
  for (const field of fields) {
    const raw = values[field.name];
    if (field.kind === "flag") {
      result[field.name] = Boolean(raw);
    } else if ((raw === undefined || raw === "") && field.empty !== undefined) {
      result[field.name] = field.empty;
    } else if (raw !== undefined && raw !== "") {
      if (field.kind === "number") {
        result[field.name] = Number(raw);
      } else if (field.kind === "list") {
        result[field.name] = raw.split(",").map((item) => item.trim()).filter(Boolean);
      } else if (field.kind === "json") {
        try {
          result[field.name] = JSON.parse(raw);
        } catch (error) {
          throw new Error(`${field.name}: not JSON (${error.message})`);
        }
      } else {
        result[field.name] = raw;
      }
    }
  }
  return result;
}

function Field({ field, value, onChange }) {
  const id = `registry-field-${field.name}`;
  if (field.kind === "flag") {
    return h(C.HStack, { as: "label", gap: 2, fontSize: "sm" },
      h("input", { id, type: "checkbox", checked: Boolean(value), onChange: (e) => onChange(e.target.checked) }),
      field.label);
  }
  const control = field.kind === "choice"
    ? h(C.NativeSelect.Root, { size: "sm", width: "12rem" },
      h(C.NativeSelect.Field, { id, value, onChange: (e) => onChange(e.target.value) },
        field.choices.map((option) => h("option", { key: option, value: option }, option || "(as it was)"))),
      h(C.NativeSelect.Indicator, null))
    : h(field.kind === "json" ? C.Textarea : C.Input, { id, size: "sm", value: value ?? "", fontFamily: "mono",
      onChange: (e) => onChange(e.target.value), maxW: "32rem" });
  return h(C.Box, null, h(C.Text, { as: "label", htmlFor: id, fontSize: "sm", display: "block" }, field.label), control);
}

/** The figures an answer carries: an activation's checks, or a promotion's (an approved one's too)
 * checks and gates. */
function figures(action, result) {
  if (action === "activate") {
    return result;
  }
  const promotion = action === "approve" ? result.promotion : result;
  return promotion && Array.isArray(promotion.gates) ? [...(promotion.checks ?? []), ...promotion.gates] : [];
}

/** The changes of what guards a model: they may become a request on a model under approval. */
const GUARD_ACTIONS = new Set(["gates", "stage-checks", "approvals", "policy"]);

const GUARD_NAMES = { gates: "quality gates", checks: "stage checks", approvals: "approval settings",
  policy: "self-healing policy" };

/** What a request asks for: a promotion of a version, or new values of one of the model's guards. */
export function requestSubject(request) {
  if (request.kind === "promote") {
    return `promotion of ${request.model_id}@${request.version}`;
  }
  const change = request.change ?? {};
  return `guard change: ${GUARD_NAMES[change.guard] ?? change.guard} to ${json(change.values)}`;
}

/** A change that became a request: nothing changes until another user approves it. */
function ApprovalRequested({ request, preview, guard }) {
  const what = guard ? `Changing the ${GUARD_NAMES[guard] ?? guard} of ${request.model_id}` : "This promotion";
  let line;
  if (preview) {
    line = guard
      ? `${what} needs a second person's approval: confirming makes a request; nothing changes until another user `
        + "approves it."
      : "This model's promotions need approval: confirming makes a promotion request; nothing is promoted until "
        + "another user approves it.";
  } else {
    line = guard
      ? `${what} needs a second person's approval: request #${request.id} made by ${request.requested_by}, PENDING `
        + `until ${when(request.expires_at)}. Nothing changes until another user approves it (Approvals, below).`
      : `Promotion request #${request.id} made by ${request.requested_by}: PENDING until ${when(request.expires_at)}. `
        + "Nothing is promoted until another user approves it (Approvals, below).";
  }
  const shown = [...request.checks, ...request.gates];
  return h(C.Box, { "data-testid": "approval-requested", borderWidth: "1px", borderColor: "orange.500",
    bg: "orange.subtle", px: 3, py: 2, borderRadius: "md", my: 2 },
  h(C.Text, { fontWeight: "semibold" }, line),
  shown.length ? h(GateTable, { gates: shown }) : null);
}

/** The line saying what a change did (or, previewed, would do), for the changes whose answer says
 * more than the figures and the plan: a guard set, a decision on a request, a registration. */
function resultLine(action, result, preview) {
  if (GUARD_ACTIONS.has(action) && result.applied) {
    return `${preview ? "Would set" : "Set"} the ${GUARD_NAMES[result.guard] ?? result.guard} of ${result.model_id} `
      + `to ${json(result.values)}.`;
  }
  if (action === "approve" && !result.applied) {
    const so = result.request.approvals.length ? result.request.approvals.join(", ") : "nobody yet";
    return `${preview ? "Approving would record" : "Recorded"} an approval of request #${result.request.id} `
      + `(${requestSubject(result.request)}); approved so far by ${so}. It needs more approvals before it applies.`;
  }
  if (action === "approve" && result.values) {
    return `${preview ? "Approving would apply" : "Approved and applied"} the guard change: ${json(result.values)}.`;
  }
  if (action === "approve") {
    const p = result.promotion;
    return `${preview ? "Approving would make" : "Approved:"} ${p.model_id}@${p.promoted} ${preview ? "" : "is now "}`
      + `the ACTIVE PRIMARY${p.previous ? `; ${p.previous} ${preview ? "would become" : "is now"} ${p.previous_now}` : ""}.`;
  }
  if (action === "reject") {
    return `${preview ? "Would reject" : "Rejected"} request #${result.id} (${requestSubject(result)}): `
      + `${result.decision_reason}.`;
  }
  if (action === "register") {
    return `${preview ? "Would register" : "Registered"} ${result.model_id}@${result.version} as DRAFT`
      + `${result.id === null ? " (its id is given when the change is made)" : ` (id ${result.id})`}.`;
  }
  return null;
}

function Outcome({ action, answer, testId }) {
  const { result } = answer;
  const shown = figures(action, result);
  const requested = (action === "promote" || GUARD_ACTIONS.has(action)) && result.request ? result.request : null;
  const line = requested ? null : resultLine(action, result, answer.preview);
  const forced = action === "approve" ? result.promotion?.forced : action === "promote" && result.forced;
  return h(
    C.Box, { "data-testid": testId, mt: 3 },
    requested ? h(ApprovalRequested, { request: requested, preview: answer.preview,
      guard: GUARD_ACTIONS.has(action) ? result.guard : null }) : null,
    line ? h(C.Text, { "data-testid": "change-result", fontWeight: "semibold" }, line) : null,
    shown.length ? h(GateTable, { gates: shown }) : null,
    forced ? h(C.Text, { color: "orange.fg", fontWeight: "semibold" }, "Forced past failing gates.") : null,
    answer.preview
      ? [h(C.Text, { key: "t", fontWeight: "semibold", mt: 2 }, "This change would alter the cycle DAG:"),
        h(PlanDifference, { key: "p", plan: answer.plan, testId: "preview-plan" })]
      : [h(C.Text, { key: "t", fontWeight: "semibold", mt: 2 },
        "Done. The next DAG parse (within the DAG processor's interval) shows, against the DAG last parsed:"),
      h(PlanDifference, { key: "p", plan: answer.next_parse, testId: "next-parse-plan" })],
  );
}

/** What activating the version would meet now, before anything is previewed (``activate --check``). */
function ActivationReadiness({ modelId, version, role }) {
  const state = useLoad(() => getRegistry(`models/${segment(modelId)}/versions/${segment(version)}/check`,
    { action: "activate", role }), [modelId, version, role]);
  return h(Loading, { state }, (readiness) => h(C.Box, { "data-testid": "readiness" },
    h(C.Text, { fontSize: "sm", fontWeight: "semibold" }, readiness.passed
      ? "The stage checks pass: the activation would go ahead."
      : `The activation would be refused${readiness.problems.length ? `: ${readiness.problems.join("; ")}` : " by its checks"}.`),
    readiness.checks.length ? h(GateTable, { gates: readiness.checks, testId: "readiness-checks" }) : null));
}

/** ``action``: a key of ACTIONS; ``version``: the version it acts on, if any; ``initial``: field values;
 * ``fixed``: body values the form does not show (the request an approval decides). */
export function ActionPanel({ modelId, action, version, initial, fixed, onApplied, onClose }) {
  const spec = ACTIONS[action];
  const [values, setValues] = React.useState(initial ?? {});
  const [previewed, setPreviewed] = React.useState(null);
  const [applied, setApplied] = React.useState(null);
  const [error, setError] = React.useState(null);
  const [busy, setBusy] = React.useState(false);
  const path = spec.path(segment(modelId), version && segment(version));

  const send = async (preview) => {
    setBusy(true);
    setError(null);
    try {
      const answer = await postRegistry(path, { ...body(spec.fields, values), ...(fixed ?? {}), preview });
      if (preview) {
        setPreviewed(answer);
      } else {
        setApplied(answer);
        onApplied();
      }
    } catch (failure) {
      setError(failure);
      setPreviewed(null);
    } finally {
      setBusy(false);
    }
  };
  const change = (name) => (value) => {
    setValues({ ...values, [name]: value });
    setPreviewed(null);
  };

  return h(
    C.Box, { "data-testid": "action-panel", borderWidth: "1px", borderRadius: "md", p: 4, my: 4 },
    h(C.Heading, { size: "sm", mb: 3 }, `${spec.title}${fixed?.request_id ? ` #${fixed.request_id}` : ""}: `
      + `${modelId}${version ? `@${version}` : ""}`),
    applied
      ? h(Outcome, { action, answer: applied, testId: "applied" })
      : h(C.Stack, { gap: 3 },
        action === "activate" ? h(ActivationReadiness, { modelId, version, role: values.role }) : null,
        spec.fields.map((field) => h(Field, { key: field.name, field, value: values[field.name],
          onChange: change(field.name) })),
        h(ErrorLine, { error }),
        error && error.gates ? h(GateTable, { gates: error.gates }) : null,
        previewed ? h(Outcome, { action, answer: previewed, testId: "preview" }) : null),
    h(C.HStack, { mt: 4, gap: 2 },
      applied ? null : h(C.Button, { size: "sm", variant: "outline", onClick: () => send(true), loading: busy }, "Preview"),
      applied ? null : h(C.Button, { size: "sm", colorPalette: "blue", disabled: !previewed || busy,
        onClick: () => send(false) }, "Confirm"),
      h(C.Button, { size: "sm", variant: "ghost", onClick: onClose }, applied ? "Close" : "Cancel")),
  );
}
