// A backtest of one version, in two steps like every change on the page: Check (the registry
// API checks the version and the range as the run would, and says how many cycles and tasks)
// and Start (a run of detection_model_backtest, made by Airflow's own API as the logged-in
// user, so Airflow decides who may). Changing a field asks for a new check.

import { getRegistry, segment, triggerDag } from "./registry-api.js";
import { C, ErrorLine, React, ReactRouterDOM, h } from "./ui.js";

const { Link } = ReactRouterDOM;
const CYCLE_MS = 5 * 60 * 1000;

/** The last whole day of 5-minute cycles before now, as the form's starting range (UTC, ISO). */
function lastDay() {
  const end = new Date(Math.floor(Date.now() / CYCLE_MS) * CYCLE_MS - CYCLE_MS);
  const start = new Date(end.getTime() - 287 * CYCLE_MS);
  const iso = (moment) => moment.toISOString().replace(".000Z", "Z");
  return { start: iso(start), end: iso(end) };
}

function RangeField({ name, label, value, onChange }) {
  const id = `backtest-${name}`;
  return h(C.Box, null,
    h(C.Text, { as: "label", htmlFor: id, fontSize: "sm", display: "block" }, label),
    h(C.Input, { id, size: "sm", value, fontFamily: "mono", maxW: "20rem", onChange: (e) => onChange(e.target.value) }));
}

export function BacktestPanel({ modelId, version, onClose }) {
  const [range, setRange] = React.useState(lastDay);
  const [plan, setPlan] = React.useState(null);
  const [run, setRun] = React.useState(null);
  const [error, setError] = React.useState(null);
  const [busy, setBusy] = React.useState(false);

  const act = async (step) => {
    setBusy(true);
    setError(null);
    try {
      await step();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const check = () => act(async () => {
    setPlan(null);
    setPlan(await getRegistry(`models/${segment(modelId)}/versions/${segment(version)}/backtest-plan`, range));
  });
  const start = () => act(async () => setRun(await triggerDag(plan.dag_id, plan.conf)));
  const change = (name) => (value) => {
    setRange({ ...range, [name]: value });
    setPlan(null);
  };

  return h(
    C.Box, { "data-testid": "backtest-panel", borderWidth: "1px", borderRadius: "md", p: 4, my: 4 },
    h(C.Heading, { size: "sm", mb: 3 }, `Backtest over past cycles: ${modelId}@${version}`),
    run
      ? h(C.Text, { "data-testid": "backtest-started", fontWeight: "semibold" },
        `Started ${run.dag_id} run `,
        h(C.Link, { asChild: true }, h(Link, { to: `/dags/${segment(run.dag_id)}/runs/${segment(run.dag_run_id)}` },
          run.dag_run_id)),
        ` as ${run.triggering_user_name}. When it ends, the promotion check shows its evidence beside the live one.`)
      : h(C.Stack, { gap: 3 },
        h(C.Text, { fontSize: "sm" }, "The version runs over the schedule's cycles in the range, fed the upstream "
          + "PRIMARY results stored for each, and is compared with the PRIMARY of each cycle."),
        h(RangeField, { name: "start", label: "First cycle (ISO, UTC)", value: range.start, onChange: change("start") }),
        h(RangeField, { name: "end", label: "Last cycle (ISO, UTC, in the past)", value: range.end,
          onChange: change("end") }),
        h(ErrorLine, { error }),
        plan ? h(C.Text, { "data-testid": "backtest-plan", fontSize: "sm", fontWeight: "semibold" },
          `${plan.cycles} cycles in ${plan.tasks} task${plan.tasks === 1 ? "" : "s"} of up to ${plan.cycles_per_task}: `
          + "the backtest would run.") : null),
    h(C.HStack, { mt: 4, gap: 2 },
      run ? null : h(C.Button, { size: "sm", variant: "outline", onClick: check, loading: busy && !plan }, "Check"),
      run ? null : h(C.Button, { size: "sm", colorPalette: "blue", disabled: !plan || busy, onClick: start },
        "Start backtest"),
      h(C.Button, { size: "sm", variant: "ghost", onClick: onClose }, run ? "Close" : "Cancel")),
  );
}
