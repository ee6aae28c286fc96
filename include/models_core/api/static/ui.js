// Small building blocks shared by the registry pages. React and Chakra UI are the Airflow
// UI's own, which it puts on globalThis for plugins, so the pages follow its theme.

const { React, ChakraUI: C, ReactRouterDOM } = globalThis;

export { C, React, ReactRouterDOM };
export const h = React.createElement;

/** A number as the CLI shows it (4 significant digits); "-" for nothing. */
export function fmt(value, digits = 4) {
  if (value === null || value === undefined) {
    return "-";
  }
  if (typeof value === "number") {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(digits)));
  }
  return String(value);
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "-");

export const json = (value) => JSON.stringify(value ?? null);

/** Load data with ``load()`` whenever ``deps`` change; ``reload()`` fetches again (the old data
 * stays on screen meanwhile). */
export function useLoad(load, deps) {
  const [state, setState] = React.useState({ data: null, error: null });
  const [round, setRound] = React.useState(0);
  React.useEffect(() => {
    let current = true;
    load().then(
      (data) => current && setState({ data, error: null }),
      (error) => current && setState({ data: null, error }),
    );
    return () => {
      current = false;
    };
  }, [...deps, round]);
  return { ...state, reload: () => setRound((n) => n + 1) };
}

export function ErrorLine({ error }) {
  if (!error) {
    return null;
  }
  return h(
    C.Box,
    { role: "alert", "data-testid": "error-line", borderWidth: "1px", borderColor: "red.500", color: "red.fg",
      bg: "red.subtle", px: 3, py: 2, borderRadius: "md", fontFamily: "mono", fontSize: "sm", my: 2 },
    error.message,
  );
}

export function Loading({ state, children }) {
  if (state.error) {
    return h(ErrorLine, { error: state.error });
  }
  if (!state.data) {
    return h(C.Spinner, { size: "sm" });
  }
  return children(state.data);
}

const STATE_COLORS = { success: "green", failed: "red", upstream_failed: "orange", skipped: "gray",
  ACTIVE: "green", DRAFT: "blue", INACTIVE: "gray", ARCHIVED: "gray", ERROR: "red", PRIMARY: "purple",
  SHADOW: "cyan", CHALLENGER: "orange", PENDING: "orange", APPROVED: "green", REJECTED: "red", EXPIRED: "gray",
  UP: "green", DOWN: "red" };

export function Tag({ value }) {
  if (!value) {
    return h(C.Text, { as: "span", color: "fg.muted" }, "-");
  }
  return h(C.Badge, { colorPalette: STATE_COLORS[value] ?? "gray", variant: "subtle", mr: 1 }, value);
}

/** A table from column specs ``{label, cell: (row) => node}``. */
export function DataTable({ columns, rows, testId, empty = "nothing to show" }) {
  if (!rows.length) {
    return h(C.Text, { color: "fg.muted", "data-testid": testId }, empty);
  }
  return h(
    C.Table.Root,
    { size: "sm", variant: "outline", "data-testid": testId },
    h(C.Table.Header, null,
      h(C.Table.Row, null, columns.map((column) => h(C.Table.ColumnHeader, { key: column.label }, column.label)))),
    h(C.Table.Body, null, rows.map((row, index) => h(
      C.Table.Row, { key: row.key ?? index },
      columns.map((column) => h(C.Table.Cell, { key: column.label, verticalAlign: "top" }, column.cell(row))),
    ))),
  );
}

export function Section({ title, children, actions }) {
  return h(
    C.Box, { as: "section", my: 5 },
    h(C.HStack, { justify: "space-between", mb: 2 }, h(C.Heading, { size: "md" }, title), actions ?? null),
    children,
  );
}

export function WindowSelect({ hours, onChange }) {
  const choices = [[1, "1 hour"], [6, "6 hours"], [24, "24 hours"], [168, "7 days"], [720, "30 days"]];
  return h(
    C.HStack, { gap: 2 },
    h(C.Text, { fontSize: "sm" }, "Window"),
    h(C.NativeSelect.Root, { size: "sm", width: "9rem" },
      h(C.NativeSelect.Field, { value: hours, "aria-label": "window", onChange: (e) => onChange(Number(e.target.value)) },
        choices.map(([value, label]) => h("option", { key: value, value }, label))),
      h(C.NativeSelect.Indicator, null)),
  );
}

/** Every stage check and quality gate: its threshold, what the version has or measured, pass or FAIL. */
export function GateTable({ gates, testId = "gate-table" }) {
  return h(DataTable, {
    testId,
    rows: gates.map((gate) => ({ ...gate, key: gate.name })),
    columns: [
      { label: "gate", cell: (g) => g.name },
      { label: "threshold", cell: (g) => g.threshold },
      { label: "measured", cell: (g) => measured(g) },
      ...(gates.some((g) => g.kind === "interval") ? [{ label: "evidence", cell: (g) => evidence(g) }] : []),
      { label: "result", cell: (g) => h(C.Badge, { colorPalette: g.passed ? "green" : "red" }, g.passed ? "pass" : "FAIL") },
    ],
  });
}

/** A figure as ``modelreg`` prints it; an interval gate's with its 95% interval. */
export function measured(gate) {
  if (gate.kind !== "interval" || gate.actual === null) {
    return fmt(gate.actual);
  }
  return gate.interval ? `${fmt(gate.actual)} (95% ${fmt(gate.interval[0])} to ${fmt(gate.interval[1])})`
    : `${fmt(gate.actual)} (no interval yet)`;
}

/** What an interval gate stands on, and for a failing one how many more cycles would do. */
function evidence(gate) {
  if (gate.kind !== "interval") {
    return "-";
  }
  const more = gate.passed ? "" : gate.more_cycles === null ? "; more would not pass"
    : `; ~${gate.more_cycles} more cycles`;
  return `${gate.inputs} inputs, ${gate.cycles} cycles${more}`;
}

/** Tasks and edges added or removed, as ``modelreg plan`` lists them. */
export function PlanDifference({ plan, testId }) {
  if (plan.plan_error) {
    return h(ErrorLine, { error: new Error(plan.plan_error) });
  }
  const parts = [["tasks_added", "tasks added"], ["tasks_removed", "tasks removed"],
    ["edges_added", "edges added"], ["edges_removed", "edges removed"]];
  return h(
    C.Box, { "data-testid": testId, fontSize: "sm" },
    parts.map(([key, label]) => h(
      C.HStack, { key, align: "start", gap: 2 },
      h(C.Text, { minW: "8rem", color: "fg.muted" }, label),
      h(C.Text, { fontFamily: "mono" }, plan[key].length ? plan[key].join(", ") : "none"),
    )),
  );
}
