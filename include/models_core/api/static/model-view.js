// One model: its versions (newest first) with their tags, metadata, stage checks and, in
// ERROR, why, and what can be done to each; its approvals, checks and self-healing policy;
// metric trends, which version was PRIMARY at a given time, and the audit history.

import { ActionPanel } from "./action-panel.js";
import { ApprovalsPanel } from "./approvals-panel.js";
import { BacktestPanel } from "./backtest-panel.js";
import { evaluationLine, taskLink } from "./models-view.js";
import { getRegistry, segment } from "./registry-api.js";
import { TrendChart } from "./trend-chart.js";
import {
  C, DataTable, ErrorLine, Loading, React, ReactRouterDOM, Section, Tag, WindowSelect, fmt, h, json, measured, useLoad, when,
} from "./ui.js";
import { ErrorReason, MetadataDocument, StageChecks, TagList } from "./version-details.js";

const { Link } = ReactRouterDOM;

/** The actions a version's row offers, by its state (the registry still decides). */
function versionActions(version) {
  if (version.status === "ERROR") {
    return [["reactivate", "Reactivate"], ["archive", "Archive"]];
  }
  if (version.status === "ACTIVE" && version.role === "PRIMARY") {
    return [["deactivate", "Deactivate"], ["archive", "Archive"]];
  }
  const actions = [["promote", "Promote"], ["backtest", "Backtest"]];
  if (version.status !== "ACTIVE" || version.role !== "SHADOW") {
    actions.push(["activate:SHADOW", "Run as SHADOW"]);
  }
  if (version.status !== "ACTIVE" || version.role !== "CHALLENGER") {
    actions.push(["activate:CHALLENGER", "Run as CHALLENGER"]);
  }
  if (version.status === "ACTIVE") {
    actions.push(["deactivate", "Deactivate"]);
  }
  if (version.status !== "ARCHIVED") {
    actions.push(["archive", "Archive"]);
  }
  return actions;
}

/** What every version's description, tags and metadata can be edited with. */
const EDITS = [["describe", "Describe"], ["tags", "Tag"], ["untag", "Untag"], ["metadata", "Metadata"]];

function VersionsTable({ detail, onAction }) {
  return h(DataTable, {
    testId: "versions-table",
    rows: detail.versions.map((v) => ({ ...v, key: v.id })),
    columns: [
      { label: "version", cell: (v) => h(C.Text, { fontWeight: "semibold" }, v.version) },
      { label: "status / role", cell: (v) => h(C.Box, null,
        h(C.HStack, { gap: 0 }, h(Tag, { value: v.status }), h(Tag, { value: v.role })), h(ErrorReason, { error: v.error })) },
      { label: "params", cell: (v) => h(C.Code, { fontSize: "xs", whiteSpace: "pre-wrap", overflowWrap: "anywhere", maxW: "14rem" },
        json(v.params)) },
      { label: "description, tags, metadata", cell: (v) => h(C.Stack, { gap: 1, maxW: "18rem" },
        h(C.Text, { fontSize: "sm" }, v.description ?? "-"), h(TagList, { tags: v.tags }),
        h(MetadataDocument, { metadata: v.metadata })) },
      { label: "stage checks", cell: (v) => h(StageChecks, { checks: v.checks }) },
      { label: "last cycle", cell: (v) => taskLink(v.last) },
      { label: "in the window", cell: (v) => (v.window
        ? h(C.Box, { fontSize: "xs" },
          h(C.Text, null, `${v.window.cycles} cycles, ${v.window.failed} failed, p50 ${fmt(v.window.duration_p50_ms)} ms`),
          v.window.evaluation ? h(C.Text, null, evaluationLine(v.window.evaluation)) : null)
        : "-") },
      { label: "latest cycle's metrics", cell: (v) => h(C.Text, { fontSize: "xs" },
        Object.entries(v.latest?.metrics ?? {}).filter(([key]) => !key.startsWith("eval_"))
          .map(([key, value]) => `${key}=${fmt(value)}`).join(", ") || "-") },
      { label: "", cell: (v) => h(C.Stack, { gap: 1 },
        h(C.HStack, { gap: 1, wrap: "wrap" }, versionActions(v).map(([action, label]) => h(
          C.Button, { key: action, size: "xs", variant: "outline", onClick: () => onAction(action, v.version) }, label))),
        h(C.HStack, { gap: 1, wrap: "wrap" }, EDITS.map(([action, label]) => h(
          C.Button, { key: action, size: "xs", variant: "ghost", onClick: () => onAction(action, v.version, editing(action, v)) },
          label)))) },
    ],
  });
}

/** An edit starts from what the version has now. */
function editing(action, version) {
  if (action === "describe") {
    return { description: version.description ?? "" };
  }
  return action === "metadata" ? { metadata: JSON.stringify(version.metadata ?? {}, null, 2) } : {};
}

/** The model's settings as the forms take them, so an edit starts from what is set now. */
function settingsForm(name, detail) {
  if (name === "stage-checks") {
    const checks = detail.stage_checks;
    return { required_tags: checks.required_tags.join(", "), require_description: checks.require_description };
  }
  if (name === "policy") {
    const { metric_thresholds: thresholds, ...rest } = detail.healing_policy;
    const form = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== null).map(([k, v]) => [k, String(v)]));
    return { ...form, metric_thresholds: JSON.stringify(thresholds) };
  }
  return {};
}

function checksLine(checks) {
  const tags = checks.required_tags.length ? checks.required_tags.join(", ") : "none";
  return `tags ${tags}; description ${checks.require_description ? "required" : "not required"}; params against `
    + "the class's params_schema, if it declares one";
}

function policyLine(policy) {
  const parts = [`on a broken PRIMARY: ${policy.on_primary_error}`,
    `ERROR after ${policy.error_after_failures ?? "the configured number of"} failed cycles in a row`];
  if (policy.max_failure_rate !== null) {
    parts.push(`degraded above failure rate ${policy.max_failure_rate}`);
  }
  for (const [key, bounds] of Object.entries(policy.metric_thresholds)) {
    parts.push(`degraded if ${key} outside ${json(bounds)}`);
  }
  parts.push(`judged over ${policy.window_hours} h after ${policy.min_cycles} cycles`, `cool-down ${policy.cooldown_minutes} min`);
  return parts.join(" · ");
}

function Trends({ modelId, hours }) {
  const state = useLoad(() => getRegistry(`models/${segment(modelId)}/metrics`, { window_hours: hours }), [modelId, hours]);
  const [chosen, setChosen] = React.useState(null);
  return h(Loading, { state }, (trends) => {
    const keys = Object.keys(trends.metrics);
    if (!keys.length) {
      return h(C.Text, { color: "fg.muted" }, "No metrics stored in this window.");
    }
    const ownFirst = keys.filter((k) => !k.startsWith("eval_") && k !== "cycle_duration_ms" && k !== "output_count");
    const key = keys.includes(chosen) ? chosen : (ownFirst[0] ?? keys[0]);
    return h(C.Box, null,
      h(C.NativeSelect.Root, { size: "sm", width: "18rem", mb: 2 },
        h(C.NativeSelect.Field, { value: key, "aria-label": "metric", onChange: (e) => setChosen(e.target.value) },
          keys.map((k) => h("option", { key: k, value: k }, k))),
        h(C.NativeSelect.Indicator, null)),
      h(TrendChart, { title: `${key} per version`,
        lines: trends.metrics[key].map((line) => ({ label: line.version, points: line.points })) }));
  });
}

function PrimaryAt({ modelId }) {
  const [at, setAt] = React.useState("");
  const [answer, setAnswer] = React.useState(null);
  const [error, setError] = React.useState(null);
  const ask = () => {
    setError(null);
    getRegistry(`models/${segment(modelId)}/primary-at`, { at: new Date(at).toISOString() })
      .then(setAnswer, (failure) => { setAnswer(null); setError(failure); });
  };
  return h(C.Box, null,
    h(C.HStack, { gap: 2 },
      h(C.Input, { type: "datetime-local", step: 1, size: "sm", width: "16rem", value: at, "aria-label": "time",
        onChange: (e) => setAt(e.target.value) }),
      h(C.Button, { size: "sm", variant: "outline", disabled: !at, onClick: ask }, "Which version was PRIMARY?")),
    answer ? h(C.Text, { mt: 2, "data-testid": "primary-at" },
      `${modelId} PRIMARY at ${when(answer.at)}: ${answer.primary ?? "none"}`) : null,
    h(ErrorLine, { error }));
}

/** The model's gates as ``modelreg gates`` names them; a gate not set is left out. */
function gatesLine(gates) {
  const parts = [`min_cycles >= ${gates.min_cycles}`, `max_failure_rate <= ${gates.max_failure_rate}`];
  if (gates.min_agreement !== null) {
    parts.push(`min_agreement >= ${gates.min_agreement}`);
  }
  if (gates.max_duration_ratio !== null) {
    parts.push(`max_duration_ratio <= ${gates.max_duration_ratio}`);
  }
  if (gates.min_backtest_cycles !== null) {
    parts.push(`min_backtest_cycles >= ${gates.min_backtest_cycles}`);
  }
  if (gates.max_score_difference !== null) {
    parts.push(`max_score_difference <= ${gates.max_score_difference}`);
  }
  for (const [key, bounds] of Object.entries(gates.metric_thresholds)) {
    parts.push(`${key} ${json(bounds)}`);
  }
  parts.push(gates.gate_kind === "interval" ? "decided by 95% intervals" : "decided by point figures");
  return parts.join(" · ");
}

function gateFigures(gates) {
  if (!gates) {
    return "-";
  }
  return gates.map((g) => `${g.name} ${measured(g)} (${g.threshold}) ${g.passed ? "pass" : "FAIL"}`).join("; ");
}

function History({ events }) {
  return h(DataTable, {
    testId: "history-table",
    empty: "No recorded transitions.",
    rows: [...events].reverse().map((e) => ({ ...e, key: e.id })),
    columns: [
      { label: "when", cell: (e) => when(e.at) },
      { label: "action", cell: (e) => e.action },
      { label: "version", cell: (e) => e.version ?? "-" },
      { label: "from", cell: (e) => `${e.from_status ?? "-"} ${e.from_role ?? ""}` },
      { label: "to", cell: (e) => `${e.to_status ?? "-"} ${e.to_role ?? ""}` },
      { label: "who", cell: (e) => `${e.actor ?? "-"} (${e.source})` },
      { label: "basis", cell: (e) => `${e.basis ?? "-"}${e.request_id ? ` (request #${e.request_id})` : ""}` },
      { label: "why", cell: (e) => e.reason ?? "-" },
      { label: "gate figures", cell: (e) => h(C.Text, { fontSize: "xs" }, gateFigures(e.gates)) },
    ],
  });
}

/** The open action's panel: a backtest's (a DAG run, checked first) or a registry change's. */
function actionPanel(action, modelId, onApplied, onClose) {
  if (!action) {
    return null;
  }
  if (action.kind === "backtest") {
    return h(BacktestPanel, { key: `backtest:${action.version}`, modelId, version: action.version, onClose });
  }
  return h(ActionPanel, { key: `${action.kind}:${action.version}:${action.fixed?.request_id ?? ""}`, modelId,
    action: action.kind, version: action.version, initial: action.initial, fixed: action.fixed, onApplied, onClose });
}

export function ModelView({ modelId, hours, onHours }) {
  const state = useLoad(() => getRegistry(`models/${segment(modelId)}`, { window_hours: hours }), [modelId, hours]);
  const [action, setAction] = React.useState(null);
  const open = (name, version, initial = {}, fixed = undefined) => {
    const [kind, role] = name.split(":");
    // The promotion's gates look at the CLI's default window, whatever window the page shows.
    setAction({ kind, version, fixed,
      initial: role ? { role } : kind === "promote" ? { window_hours: "168" } : initial });
  };
  return h(C.Box, null,
    h(C.Link, { asChild: true, fontSize: "sm" }, h(Link, { to: { search: "" } }, "← all models")),
    h(C.HStack, { justify: "space-between", mt: 2 },
      h(C.Heading, { size: "lg" }, modelId), h(WindowSelect, { hours, onChange: onHours })),
    h(Loading, { state }, (detail) => [
      h(C.Text, { key: "deps", fontSize: "sm", color: "fg.muted" },
        `upstream: ${detail.upstream.join(", ") || "none"}; downstream: ${detail.downstream.join(", ") || "none"}`),
      h(C.HStack, { key: "actions", gap: 2, my: 3, wrap: "wrap" },
        [["register", "Register a version"], ["rollback", "Roll back"], ["gates", "Edit gates"],
          ["stage-checks", "Edit stage checks"], ["policy", "Edit self-healing"],
          ["deps-add", "Add dependency"], ["deps-remove", "Remove dependency"]].map(([name, label]) => h(
          C.Button, { key: name, size: "sm", variant: "outline", onClick: () => open(name, undefined, settingsForm(name, detail)) },
          label))),
      actionPanel(action, modelId, state.reload, () => setAction(null)),
      h(Section, { key: "versions", title: "Versions" }, h(VersionsTable, { detail, onAction: open })),
      h(C.Text, { key: "gates", fontSize: "sm", "data-testid": "gates" }, `Quality gates: ${gatesLine(detail.gates)}`),
      h(C.Text, { key: "checks", fontSize: "sm", "data-testid": "stage-check-policy" },
        `Stage checks before SHADOW/CHALLENGER: ${checksLine(detail.stage_checks)}`),
      h(C.Text, { key: "policy", fontSize: "sm", "data-testid": "healing-policy" },
        `Self-healing: ${policyLine(detail.healing_policy)}`),
      h(Section, { key: "approvals", title: "Approvals" }, h(ApprovalsPanel, { modelId, detail, onAction: open })),
      h(Section, { key: "trends", title: "Metric trends" }, h(Trends, { modelId, hours })),
      h(Section, { key: "at", title: "PRIMARY at a given time" }, h(PrimaryAt, { modelId })),
      h(Section, { key: "history", title: "Audit history" }, h(History, { events: detail.history })),
    ]));
}
