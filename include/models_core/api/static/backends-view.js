// The inference backends: each one's health as the health DAG last probed it, whether a
// model task may call it now (the rule the task applies), and the ACTIVE versions calling it.
// Read only: backends are added and removed with `modelreg backends`.

import { getRegistry } from "./registry-api.js";
import { C, DataTable, ErrorLine, Loading, ReactRouterDOM, Section, Tag, fmt, h, useLoad, when } from "./ui.js";

const { Link } = ReactRouterDOM;

function Callers({ callers }) {
  if (!callers.length) {
    return h(C.Text, { as: "span", color: "fg.muted" }, "none");
  }
  return h(C.Stack, { gap: 0 }, callers.map((c) => h(
    C.Link, { key: `${c.model_id}@${c.version}`, asChild: true, fontSize: "sm" },
    h(Link, { to: { search: `?model=${encodeURIComponent(c.model_id)}` } }, `${c.model_id}@${c.version} ${c.role}`))));
}

function Availability({ backend }) {
  return backend.unavailable
    ? h(C.Text, { fontSize: "xs", color: "red.fg", maxW: "24rem" }, `tasks skip: ${backend.unavailable}`)
    : h(C.Badge, { colorPalette: "green" }, "tasks call it");
}

export function BackendsView() {
  const state = useLoad(() => getRegistry("backends"), []);
  return h(C.Box, null,
    h(C.Link, { asChild: true, fontSize: "sm" }, h(Link, { to: { search: "" } }, "← all models")),
    h(Section, { title: "Backends" }, h(Loading, { state }, (overview) => [
      h(C.Text, { key: "note", fontSize: "sm", color: "fg.muted", mb: 2 },
        `As of ${when(overview.at)}; a health sample older than ${fmt(overview.stale_after_seconds)} s is not trusted.`),
      h(DataTable, {
        key: "backends",
        testId: "backends-table",
        empty: "No backends registered (modelreg backends add NAME URL).",
        rows: overview.backends.map((b) => ({ ...b, key: b.name })),
        columns: [
          { label: "backend", cell: (b) => h(C.Box, null, h(C.Text, { fontWeight: "semibold" }, b.name),
            h(C.Text, { fontSize: "xs", color: "fg.muted" }, `${b.base_url}${b.health_path}`)) },
          { label: "health", cell: (b) => h(C.Box, null, b.status ? h(Tag, { value: b.status }) : "never probed",
            b.since ? h(C.Text, { fontSize: "xs" }, `since ${when(b.since)}`) : null) },
          { label: "latency / baseline", cell: (b) => `${fmt(b.latency_ms)} / ${fmt(b.baseline_ms)} ms` },
          { label: "load", cell: (b) => `${b.load_class ?? "-"}${b.active_jobs !== null ? ` (${b.active_jobs} jobs)` : ""}` },
          { label: "last sample", cell: (b) => when(b.last_sample_at) },
          { label: "error", cell: (b) => h(C.Text, { fontSize: "xs" }, b.error ?? "-") },
          { label: "now", cell: (b) => h(Availability, { backend: b }) },
          { label: "ACTIVE versions calling it", cell: (b) => h(Callers, { callers: b.callers }) },
        ],
      }),
      overview.unregistered.map((missing) => h(ErrorLine, { key: missing.name, error: new Error(
        `backend ${missing.name} is not registered, and ${missing.callers.map((c) => `${c.model_id}@${c.version}`)
          .join(", ")} call it: their tasks fail (modelreg backends add ${missing.name} URL)`) })),
    ])));
}
