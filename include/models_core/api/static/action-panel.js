// One registry change, in two steps: Preview (the change made and rolled back: what it
// would do, every gate's figures, the tasks and edges it adds or removes) and Confirm (made
// for real, as the logged-in Airflow user). Changing a field asks for a new preview.

import { postRegistry, segment } from "./registry-api.js";
import { C, ErrorLine, GateTable, PlanDifference, React, h } from "./ui.js";

const text = (name, label, extra = {}) => ({ name, label, kind: "text", ...extra });
const number = (name, label) => ({ name, label, kind: "number" });
const flag = (name, label) => ({ name, label, kind: "flag" });
const jsonObject = (name, label) => ({ name, label, kind: "json" });
const reason = text("reason", "Reason (recorded in the audit trail)");

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
      jsonObject("metric_thresholds", 'Metric thresholds (JSON, e.g. {"flagged": {"max": 50}})')] },
  "deps-add": { title: "Add a dependency", path: (m) => `models/${m}/dependencies/add`,
    fields: [text("upstream", "Upstream model")] },
  "deps-remove": { title: "Remove a dependency", path: (m) => `models/${m}/dependencies/remove`,
    fields: [text("upstream", "Upstream model")] },
};

/** The request body from the form's strings; a field left empty is not sent. */
function body(fields, values) {
  const result = {};
  for (const field of fields) {
    const raw = values[field.name];
    if (field.kind === "flag") {
      result[field.name] = Boolean(raw);
    } else if (raw !== undefined && raw !== "") {
      if (field.kind === "number") {
        result[field.name] = Number(raw);
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
        field.choices.map((choice) => h("option", { key: choice, value: choice }, choice))),
      h(C.NativeSelect.Indicator, null))
    : h(field.kind === "json" ? C.Textarea : C.Input, { id, size: "sm", value: value ?? "", fontFamily: "mono",
      onChange: (e) => onChange(e.target.value), maxW: "32rem" });
  return h(C.Box, null, h(C.Text, { as: "label", htmlFor: id, fontSize: "sm", display: "block" }, field.label), control);
}

function Outcome({ answer, testId }) {
  const { result } = answer;
  return h(
    C.Box, { "data-testid": testId, mt: 3 },
    result && Array.isArray(result.gates) && result.gates.length ? h(GateTable, { gates: result.gates }) : null,
    result && result.forced ? h(C.Text, { color: "orange.fg", fontWeight: "semibold" }, "Forced past failing gates.") : null,
    answer.preview
      ? [h(C.Text, { key: "t", fontWeight: "semibold", mt: 2 }, "This change would alter the cycle DAG:"),
        h(PlanDifference, { key: "p", plan: answer.plan, testId: "preview-plan" })]
      : [h(C.Text, { key: "t", fontWeight: "semibold", mt: 2 },
        "Done. The next DAG parse (within the DAG processor's interval) shows, against the DAG last parsed:"),
      h(PlanDifference, { key: "p", plan: answer.next_parse, testId: "next-parse-plan" })],
  );
}

/** ``action``: a key of ACTIONS; ``version``: the version it acts on, if any; ``initial``: field values. */
export function ActionPanel({ modelId, action, version, initial, onApplied, onClose }) {
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
      const answer = await postRegistry(path, { ...body(spec.fields, values), preview });
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
    h(C.Heading, { size: "sm", mb: 3 }, `${spec.title}: ${modelId}${version ? `@${version}` : ""}`),
    applied
      ? h(Outcome, { answer: applied, testId: "applied" })
      : h(C.Stack, { gap: 3 },
        spec.fields.map((field) => h(Field, { key: field.name, field, value: values[field.name],
          onChange: change(field.name) })),
        h(ErrorLine, { error }),
        error && error.gates ? h(GateTable, { gates: error.gates }) : null,
        previewed ? h(Outcome, { answer: previewed, testId: "preview" }) : null),
    h(C.HStack, { mt: 4, gap: 2 },
      applied ? null : h(C.Button, { size: "sm", variant: "outline", onClick: () => send(true), loading: busy }, "Preview"),
      applied ? null : h(C.Button, { size: "sm", colorPalette: "blue", disabled: !previewed || busy,
        onClick: () => send(false) }, "Confirm"),
      h(C.Button, { size: "sm", variant: "ghost", onClick: onClose }, applied ? "Close" : "Cancel")),
  );
}
