// What a version carries besides its state: tags, metadata (collapsed), its stage checks now,
// and, in ERROR, why it was taken out of service.

import { C, h, when } from "./ui.js";

export function TagList({ tags }) {
  const entries = Object.entries(tags ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) {
    return null;
  }
  return h(C.HStack, { gap: 1, wrap: "wrap", "data-testid": "tags" }, entries.map(([key, value]) => h(
    C.Badge, { key, variant: "outline", fontFamily: "mono" }, `${key}=${value}`)));
}

/** The metadata document, folded to one line until opened. */
export function MetadataDocument({ metadata }) {
  const keys = Object.keys(metadata ?? {});
  if (!keys.length) {
    return null;
  }
  return h("details", { "data-testid": "metadata" },
    h("summary", { style: { cursor: "pointer", fontSize: "var(--chakra-font-sizes-xs)" } }, `metadata: ${keys.join(", ")}`),
    h(C.Code, { display: "block", fontSize: "xs", whiteSpace: "pre-wrap", mt: 1 }, JSON.stringify(metadata, null, 2)));
}

/** The model's stage checks against the version now: what activating it would meet. */
export function StageChecks({ checks }) {
  if (!checks.length) {
    return h(C.Text, { fontSize: "xs", color: "fg.muted" }, "none");
  }
  const failed = checks.filter((c) => !c.passed);
  const detail = checks.map((c) => `${c.name}: needs ${c.threshold}, has ${c.actual}`).join("\n");
  return h(C.Box, { title: detail, "data-testid": "stage-checks" },
    h(C.Badge, { colorPalette: failed.length ? "red" : "green" }, failed.length ? "FAIL" : "pass"),
    failed.map((c) => h(C.Text, { key: c.name, fontSize: "xs" }, `${c.name}: needs ${c.threshold}, has ${c.actual}`)));
}

/** Why a version is in ERROR: the reason recorded when it was moved there, and by whom. */
export function ErrorReason({ error }) {
  if (!error) {
    return null;
  }
  return h(C.Text, { fontSize: "xs", color: "red.fg", "data-testid": "error-reason", maxW: "20rem" },
    `since ${when(error.at)} (${error.actor ?? "-"}): ${error.reason ?? "no reason recorded"}`);
}
