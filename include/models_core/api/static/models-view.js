// The models, a page at a time, filtered on the server: each one's PRIMARY, its ACTIVE
// shadows/challengers, their last cycle, key figures over the window, each shadow's evaluation
// against its PRIMARY, and what needs someone: versions in ERROR (and why) and requests
// (promotions, guard changes) waiting for approval.

import { getRegistry } from "./registry-api.js";
import {
  C, DataTable, Loading, React, ReactRouterDOM, Section, Tag, WindowSelect, fmt, h, useLoad, when,
} from "./ui.js";
import { ErrorReason } from "./version-details.js";

const { Link } = ReactRouterDOM;

export function taskLink(last) {
  if (!last) {
    return h(C.Text, { as: "span", color: "fg.muted" }, "no cycle in the window");
  }
  const to = `/dags/detection_models/runs/${encodeURIComponent(last.run_id)}/tasks/${encodeURIComponent(last.task_id)}`;
  return h(C.Link, { asChild: true, fontSize: "sm", title: "open the task instance" },
    h(Link, { to }, h(Tag, { value: last.state }), when(last.cycle_started_at)));
}

function keyFigures(version) {
  const own = Object.entries(version.metrics ?? {}).map(([key, value]) => `${key} ${fmt(value)}`);
  return [`${fmt(version.cycles ?? 0)} cycles`, `${fmt(version.failed ?? 0)} failed`,
    `${fmt(version.outputs_per_cycle)} outputs/cycle`, `p50 ${fmt(version.duration_p50_ms)} ms`, ...own].join(" · ");
}

export function evaluationLine(evaluation) {
  if (!evaluation) {
    return "-";
  }
  return [`coverage ${fmt(evaluation.coverage)}`, `agreement ${fmt(evaluation.agreement)}`,
    `score difference ${fmt(evaluation.score_difference)}`, `duration ratio ${fmt(evaluation.duration_ratio)}`]
    .join(" · ");
}

function Challengers({ versions }) {
  if (!versions.length) {
    return h(C.Text, { color: "fg.muted" }, "none");
  }
  return h(C.Stack, { gap: 2 }, versions.map((v) => h(
    C.Box, { key: v.id, "data-testid": `challenger-${v.version}` },
    h(C.HStack, { gap: 1 }, h(C.Text, { fontWeight: "semibold" }, v.version), h(Tag, { value: v.role }), taskLink(v.last)),
    h(C.Text, { fontSize: "xs" }, `vs PRIMARY: ${evaluationLine(v.evaluation)} (${fmt(v.cycles ?? 0)} cycles)`),
  )));
}

/** The page's registry health, then its drift: asked for once the models are shown, since it
 * reads eight days of their metrics, the page's costliest read. */
function Health({ overview, hours }) {
  const { registry } = overview;
  const models = overview.models.map((m) => m.model_id);
  const drift = useLoad(
    () => (models.length ? getRegistry("drift", { model: models, window_hours: hours }) : Promise.resolve({ findings: [] })),
    [models.join(","), hours],
  );
  const notes = [];
  if (registry.rows_without_class.length) {
    notes.push(`ACTIVE rows without a model class: ${registry.rows_without_class.join(", ")}`);
  }
  for (const [model, count] of Object.entries(registry.primary_failed)) {
    notes.push(`${model}: PRIMARY failed ${count} times in the window`);
  }
  for (const finding of drift.data?.findings ?? []) {
    notes.push(`drift: ${finding.label} ${finding.metric} now ${fmt(finding.now)} (vs ${finding.flagged.join(", ")})`);
  }
  if (drift.error) {
    notes.push(`drift not read: ${drift.error.message}`);
  }
  return notes.length
    ? h(C.Stack, { gap: 1, my: 2, "data-testid": "health" }, notes.map((note) => h(C.Text, { key: note, color: "orange.fg" }, note)))
    : null;
}

/** Versions in ERROR with why, and requests (promotions, guard changes) waiting for a second person. */
function Attention({ model }) {
  if (!model.errors.length && !model.pending_approvals) {
    return h(C.Text, { color: "fg.muted" }, "-");
  }
  return h(C.Stack, { gap: 1 },
    model.pending_approvals ? h(C.Badge, { colorPalette: "orange", "data-testid": "pending-approvals", w: "fit-content" },
      `${model.pending_approvals} request${model.pending_approvals === 1 ? "" : "s"} to approve`) : null,
    model.errors.map((e) => h(C.Box, { key: e.id, "data-testid": `error-${e.version}` },
      h(C.HStack, { gap: 1 }, h(C.Text, { fontWeight: "semibold" }, e.version), h(Tag, { value: "ERROR" }), h(Tag, { value: e.role })),
      h(ErrorReason, { error: e }))));
}

/** ``KEY`` or ``KEY=VALUE``: only models with a version so tagged (``modelreg list --tag``). */
function TagFilter({ onFilter }) {
  const [text, setText] = React.useState("");
  return h(C.HStack, { gap: 2 },
    h(C.Input, { size: "sm", width: "14rem", placeholder: "tag: KEY or KEY=VALUE", value: text, "aria-label": "tag filter",
      onChange: (e) => setText(e.target.value), onKeyDown: (e) => e.key === "Enter" && onFilter(text.trim() || null) }),
    h(C.Button, { size: "sm", variant: "outline", onClick: () => onFilter(text.trim() || null) }, "Filter"));
}

function Choice({ label, value, choices, onChange }) {
  return h(C.NativeSelect.Root, { size: "sm", width: "9rem" },
    h(C.NativeSelect.Field, { value: value ?? "", "aria-label": label, onChange: (e) => onChange(e.target.value || null) },
      h("option", { value: "" }, `any ${label}`),
      choices.map((choice) => h("option", { key: choice, value: choice }, choice))),
    h(C.NativeSelect.Indicator, null));
}

/** The filters the server applies: text in the model id or a description, a status, an ACTIVE
 * role, "needs attention". The tag filter sits with the window, as before. */
function Filters({ filters, onChange }) {
  const [text, setText] = React.useState(filters.q ?? "");
  const set = (change) => onChange({ ...filters, ...change });
  return h(C.HStack, { gap: 3, my: 2, flexWrap: "wrap", "data-testid": "model-filters" },
    h(C.Input, { size: "sm", width: "16rem", placeholder: "search model id or description", value: text,
      "aria-label": "search", onChange: (e) => setText(e.target.value),
      onKeyDown: (e) => e.key === "Enter" && set({ q: text.trim() || null }) }),
    h(Choice, { label: "status", value: filters.status, choices: ["ACTIVE", "DRAFT", "INACTIVE", "ARCHIVED", "ERROR"],
      onChange: (status) => set({ status }) }),
    h(Choice, { label: "role", value: filters.role, choices: ["PRIMARY", "SHADOW", "CHALLENGER"],
      onChange: (role) => set({ role }) }),
    h(C.HStack, { as: "label", gap: 1, fontSize: "sm" },
      h("input", { type: "checkbox", checked: filters.attention, "aria-label": "needs attention only",
        onChange: (e) => set({ attention: e.target.checked }) }),
      "needs attention only"));
}

/** Models come a page at a time, in model id order. */
function Pager({ page, count, onOffset }) {
  const first = page.offset + 1;
  return h(C.HStack, { gap: 3, my: 2, "data-testid": "models-pager" },
    h(C.Button, { size: "xs", variant: "outline", disabled: page.offset === 0,
      onClick: () => onOffset(Math.max(0, page.offset - page.limit)) }, "Previous"),
    h(C.Text, { fontSize: "sm" }, count ? `models ${first}-${page.offset + count}` : "no models on this page"),
    h(C.Button, { size: "xs", variant: "outline", disabled: !page.has_more,
      onClick: () => onOffset(page.offset + page.limit) }, "Next"));
}

const NO_FILTERS = { q: null, status: null, role: null, attention: false };

export function ModelsView({ hours, onHours }) {
  const [tag, setTag] = React.useState(null);
  const [filters, setFilters] = React.useState(NO_FILTERS);
  const [offset, setOffset] = React.useState(0);
  const filtered = (change) => (value) => {
    change(value);
    setOffset(0);
  };
  const state = useLoad(
    () => getRegistry("models", { window_hours: hours, tag, ...filters, attention: filters.attention || null, offset }),
    [hours, tag, filters, offset],
  );
  const anyFilter = tag || filters.q || filters.status || filters.role || filters.attention;
  return h(
    Section, { title: "Models", actions: h(C.HStack, { gap: 4 },
      h(C.Link, { asChild: true, fontSize: "sm" }, h(Link, { to: { search: "?view=backends" } }, "Backends")),
      h(C.Link, { asChild: true, fontSize: "sm" }, h(Link, { to: { search: "?view=webhooks" } }, "Webhooks")),
      h(TagFilter, { onFilter: filtered(setTag) }), h(WindowSelect, { hours, onChange: onHours })) },
    h(Filters, { filters, onChange: filtered(setFilters) }),
    h(Loading, { state }, (overview) => [
      h(Health, { key: "health", overview, hours }),
      h(DataTable, {
        key: "models",
        testId: "models-table",
        empty: tag ? `No model has a version tagged ${tag}.`
          : anyFilter ? "No model matches these filters."
            : "The registry has no versions yet (modelreg register, or Register on a model's page).",
        rows: overview.models.map((model) => ({ ...model, key: model.model_id })),
        columns: [
          { label: "model", cell: (m) => h(C.Box, null,
            h(C.Link, { asChild: true, fontWeight: "semibold" }, h(Link, { to: { search: `?model=${encodeURIComponent(m.model_id)}` } }, m.model_id)),
            h(C.Text, { fontSize: "xs", color: "fg.muted" },
              `${m.versions} version${m.versions === 1 ? "" : "s"}${m.upstream.length ? `; upstream ${m.upstream.join(", ")}` : ""}`),
            m.tagged ? h(C.Text, { fontSize: "xs" }, `tagged ${tag}: ${m.tagged.join(", ")}${
              m.tagged_count > m.tagged.length ? ` and ${m.tagged_count - m.tagged.length} older` : ""}`) : null) },
          { label: "PRIMARY", cell: (m) => (m.primary
            ? h(C.Box, null, h(C.HStack, { gap: 1 }, h(C.Text, { fontWeight: "semibold" }, m.primary.version), taskLink(m.primary.last)),
              h(C.Text, { fontSize: "xs" }, keyFigures(m.primary)))
            : h(C.Text, { color: "red.fg" }, "no ACTIVE PRIMARY")) },
          { label: "SHADOW / CHALLENGER", cell: (m) => h(Challengers, { versions: m.challengers }) },
          { label: "needs attention", cell: (m) => h(Attention, { model: m }) },
        ],
      }),
      h(Pager, { key: "pager", page: overview.page, count: overview.models.length, onOffset: setOffset }),
    ]),
  );
}
