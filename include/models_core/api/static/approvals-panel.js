// A model's approvals: whether its promotions wait for a second person, and its promotion
// requests, newest first; a PENDING one can be approved or rejected (through the action panel,
// previewed first like every change). The registry decides who may: never the requester.

import { getRegistry, segment } from "./registry-api.js";
import { C, DataTable, Loading, Tag, fmt, h, useLoad, when } from "./ui.js";

function figures(request) {
  return [...request.checks, ...request.gates]
    .map((f) => `${f.name} ${fmt(f.actual)} (${f.threshold}) ${f.passed ? "pass" : "FAIL"}`).join("; ");
}

function decision(request) {
  if (!request.decided_by) {
    return request.status === "PENDING" ? `expires ${when(request.expires_at)}` : "-";
  }
  return `${request.decided_by}, ${when(request.decided_at)}${request.decision_reason ? `: ${request.decision_reason}` : ""}`;
}

/** ``detail`` is the model page's data: when it reloads after a change, so does this panel. */
export function ApprovalsPanel({ modelId, detail, onAction }) {
  const state = useLoad(() => getRegistry(`models/${segment(modelId)}/approvals`, { include_decided: true }),
    [modelId, detail]);
  return h(Loading, { state }, (approvals) => h(C.Box, { "data-testid": "approvals" },
    h(C.HStack, { gap: 3, mb: 2 },
      h(C.Text, { fontSize: "sm", "data-testid": "approval-required" }, approvals.required
        ? "Promotions need a second person's approval: Promote makes a request."
        : "Promotions do not need approval."),
      h(C.Button, { size: "xs", variant: "outline",
        onClick: () => onAction("approvals-required", undefined, { required: !approvals.required }) },
      approvals.required ? "Turn approvals off" : "Require approval")),
    h(DataTable, {
      testId: "approvals-table",
      empty: "No promotion requests.",
      rows: approvals.requests.map((r) => ({ ...r, key: r.id })),
      columns: [
        { label: "request", cell: (r) => `#${r.id}: ${r.version}` },
        { label: "status", cell: (r) => h(Tag, { value: r.status }) },
        { label: "requested", cell: (r) => `${r.requested_by}, ${when(r.requested_at)}` },
        { label: "why", cell: (r) => `${r.reason ?? "-"}${r.forced ? " (forced past failing figures)" : ""}` },
        { label: "figures when requested", cell: (r) => h(C.Text, { fontSize: "xs" }, figures(r)) },
        { label: "decision", cell: (r) => decision(r) },
        { label: "", cell: (r) => (r.status === "PENDING"
          ? h(C.HStack, { gap: 1 },
            h(C.Button, { size: "xs", colorPalette: "green", onClick: () => onAction("approve", r.version) }, "Approve"),
            h(C.Button, { size: "xs", variant: "outline", colorPalette: "red", onClick: () => onAction("reject", r.version) },
              "Reject"))
          : null) },
      ],
    })));
}
