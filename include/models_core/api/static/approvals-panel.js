// A model's approvals: whether its promotions (and changes of what guards it) wait for a second
// person, who may approve and how many must; its requests, newest first, each a promotion or a
// guard change, with the approvals collected so far. A PENDING one can be approved or rejected
// by its id (through the action panel, previewed first like every change). The registry decides
// who may: never the requester, only the named approvers when there are some.

import { requestSubject } from "./action-panel.js";
import { getRegistry, segment } from "./registry-api.js";
import { C, DataTable, Loading, Tag, fmt, h, useLoad, when } from "./ui.js";

function figures(request) {
  return [...request.checks, ...request.gates]
    .map((f) => `${f.name} ${fmt(f.actual)} (${f.threshold}) ${f.passed ? "pass" : "FAIL"}`).join("; ") || "-";
}

function decision(request) {
  if (!request.decided_by) {
    return request.status === "PENDING" ? `expires ${when(request.expires_at)}` : "-";
  }
  return `${request.decided_by}, ${when(request.decided_at)}${request.decision_reason ? `: ${request.decision_reason}` : ""}`;
}

/** Who approves and how many must, as ``modelreg show`` says it. */
function settingLine(approvals) {
  if (!approvals.required) {
    return "Promotions do not need approval; changes of the model's guards apply at once.";
  }
  const who = approvals.approvers.length ? approvals.approvers.join(", ") : "anyone allowed to edit the detection_models DAG";
  return `Promotions and changes of the model's guards need ${approvals.min_approvals} approval(s) from ${who}, `
    + "never the requester: Promote makes a request.";
}

function collected(request, approvals) {
  const so = request.approvals.length ? request.approvals.join(", ") : "none yet";
  return request.status === "PENDING" ? `${so} (${request.approvals.length} of ${approvals.min_approvals})` : so;
}

/** ``detail`` is the model page's data: when it reloads after a change, so does this panel. */
export function ApprovalsPanel({ modelId, detail, onAction }) {
  const state = useLoad(() => getRegistry(`models/${segment(modelId)}/approvals`, { include_decided: true }),
    [modelId, detail]);
  return h(Loading, { state }, (approvals) => h(C.Box, { "data-testid": "approvals" },
    h(C.HStack, { gap: 3, mb: 2 },
      h(C.Text, { fontSize: "sm", "data-testid": "approval-required" }, settingLine(approvals)),
      h(C.Button, { size: "xs", variant: "outline",
        onClick: () => onAction("approvals", undefined, {
          required: approvals.required, approvers: approvals.approvers.join(", "),
          min_approvals: String(approvals.min_approvals) }) },
      "Edit approval settings")),
    h(DataTable, {
      testId: "approvals-table",
      empty: "No requests.",
      rows: approvals.requests.map((r) => ({ ...r, key: r.id })),
      columns: [
        { label: "request", cell: (r) => `#${r.id}` },
        { label: "kind", cell: (r) => h(C.Text, { fontSize: "sm", maxW: "20rem", "data-testid": "request-kind" },
          requestSubject(r)) },
        { label: "status", cell: (r) => h(Tag, { value: r.status }) },
        { label: "requested", cell: (r) => `${r.requested_by}, ${when(r.requested_at)}` },
        { label: "why", cell: (r) => `${r.reason ?? "-"}${r.forced ? " (forced past failing figures)" : ""}` },
        { label: "figures when requested", cell: (r) => h(C.Text, { fontSize: "xs" }, figures(r)) },
        { label: "approved by", cell: (r) => h(C.Text, { fontSize: "sm", "data-testid": "request-approvals" },
          collected(r, approvals)) },
        { label: "decision", cell: (r) => decision(r) },
        { label: "", cell: (r) => (r.status === "PENDING"
          ? h(C.HStack, { gap: 1 },
            h(C.Button, { size: "xs", colorPalette: "green",
              onClick: () => onAction("approve", r.version ?? undefined, {}, { request_id: r.id }) }, "Approve"),
            h(C.Button, { size: "xs", variant: "outline", colorPalette: "red",
              onClick: () => onAction("reject", r.version ?? undefined, {}, { request_id: r.id }) }, "Reject"))
          : null) },
      ],
    })));
}
