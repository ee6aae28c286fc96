// The "Model outputs" tab of a task instance: what that model version stored for that
// cycle (its first rows, their count, its metrics) and, for a SHADOW/CHALLENGER, its
// evaluation against its PRIMARY. The task's XCom is the reference its result was stored by.

import { evaluationLine } from "./models-view.js";
import { getAirflow, getRegistry, segment } from "./registry-api.js";
import { C, DataTable, Loading, Tag, fmt, h, json, useLoad, when } from "./ui.js";

const DAG_ID = "detection_models";

async function storedResult({ dagId, runId, taskId, mapIndex }) {
  const path = `dags/${segment(dagId)}/dagRuns/${segment(runId)}/taskInstances/${segment(taskId)}/xcomEntries/return_value`;
  let reference;
  try {
    reference = (await getAirflow(path, { map_index: mapIndex ?? -1 })).value;
  } catch (error) {
    if (error.status === 404) {
      return null;
    }
    throw error;
  }
  const ref = typeof reference === "string" ? JSON.parse(reference) : reference;
  if (!ref || ref.version_id === undefined || ref.cycle_started_at === undefined) {
    return null;
  }
  return getRegistry("outputs", { version_id: ref.version_id, cycle: ref.cycle_started_at });
}

function Outputs({ stored }) {
  return h(C.Box, { "data-testid": "task-outputs" },
    h(C.HStack, { gap: 2 },
      h(C.Heading, { size: "md" }, `${stored.model_id}@${stored.version}`), h(Tag, { value: stored.role }),
      h(C.Text, { fontSize: "sm", color: "fg.muted" }, `in this cycle; now ${stored.now}`)),
    h(C.Text, { fontSize: "sm" },
      `cycle ${when(stored.cycle_started_at)}: ${stored.output_count} output rows stored`),
    stored.evaluation ? h(C.Text, { fontSize: "sm" }, `against its PRIMARY: ${evaluationLine(stored.evaluation)}`) : null,
    h(C.Text, { fontSize: "sm", mb: 2 },
      `metrics: ${Object.entries(stored.metrics).map(([k, v]) => `${k}=${fmt(v)}`).join(", ") || "-"}`),
    h(DataTable, {
      testId: "output-rows",
      rows: stored.rows.map((row) => ({ ...row, key: row.seq })),
      columns: [
        { label: "#", cell: (r) => r.seq },
        { label: "input_ref", cell: (r) => h(C.Code, { fontSize: "xs" }, json(r.input_ref)) },
        { label: "outputs", cell: (r) => h(C.Code, { fontSize: "xs" }, json(r.outputs)) },
      ],
    }),
    stored.output_count > stored.rows.length
      ? h(C.Text, { fontSize: "xs", color: "fg.muted" }, `first ${stored.rows.length} of ${stored.output_count} rows`)
      : null);
}

function TaskOutputs(props) {
  const state = useLoad(() => (props.dagId === DAG_ID ? storedResult(props) : Promise.resolve(false)),
    [props.dagId, props.runId, props.taskId, props.mapIndex]);
  return h(C.Box, { p: 4 }, h(Loading, { state }, (stored) => {
    if (stored === false) {
      return h(C.Text, null, `Model outputs are shown for the model tasks of ${DAG_ID}.`);
    }
    if (stored === null) {
      return h(C.Text, { "data-testid": "task-outputs" },
        "This task stored no model result for this cycle (it failed, was skipped, has not run, or is not a model task).");
    }
    return h(Outputs, { stored });
  }));
}

globalThis.AirflowPlugin = TaskOutputs;
