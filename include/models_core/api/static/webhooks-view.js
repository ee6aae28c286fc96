// The webhooks of the registry's events and their delivery log (status, attempts, HTTP status,
// latency, next attempt, last error), and a form to add one: the page's `modelreg webhooks add`.
// The secret is never entered here: only the name of the sender's environment variable holding it.

import { getRegistry, postRegistry, segment } from "./registry-api.js";
import { C, DataTable, ErrorLine, Loading, React, ReactRouterDOM, Section, Tag, fmt, h, useLoad, when } from "./ui.js";

const { Link } = ReactRouterDOM;
const FIELDS = [
  { key: "name", label: "name", placeholder: "alerts" },
  { key: "url", label: "URL", placeholder: "https://alerts.example.com/registry" },
  { key: "events", label: "events (kinds or actions, comma-separated; empty: all)", placeholder: "state,approval" },
  { key: "secret_env", label: "environment variable holding the secret", placeholder: "WEBHOOK_SECRET_ALERTS" },
];

function AddWebhook({ onAdded }) {
  const [values, setValues] = React.useState({});
  const [error, setError] = React.useState(null);
  const [busy, setBusy] = React.useState(false);
  const send = async () => {
    setBusy(true);
    setError(null);
    try {
      const events = (values.events ?? "").split(",").map((e) => e.trim()).filter(Boolean);
      await postRegistry("webhooks", { name: values.name, url: values.url, secret_env: values.secret_env, events });
      setValues({});
      onAdded();
    } catch (failed) {
      setError(failed);
    } finally {
      setBusy(false);
    }
  };
  return h(C.Stack, { gap: 2, maxW: "36rem", "data-testid": "add-webhook" },
    FIELDS.map((field) => h(C.Box, { key: field.key },
      h(C.Text, { as: "label", fontSize: "sm", htmlFor: `webhook-${field.key}` }, field.label),
      h(C.Input, { id: `webhook-${field.key}`, size: "sm", value: values[field.key] ?? "", placeholder: field.placeholder,
        onChange: (e) => setValues({ ...values, [field.key]: e.target.value }) }))),
    error ? h(ErrorLine, { error }) : null,
    h(C.Button, { size: "sm", colorPalette: "blue", onClick: send, loading: busy, alignSelf: "start" }, "Add webhook"));
}

export function WebhooksView() {
  const [version, setVersion] = React.useState(0);
  const reload = () => setVersion(version + 1);
  const hooks = useLoad(() => getRegistry("webhooks"), [version]);
  const log = useLoad(() => getRegistry("webhooks/deliveries", { limit: 100 }), [version]);
  const remove = async (name) => {
    await postRegistry(`webhooks/${segment(name)}/remove`, {});
    reload();
  };
  return h(C.Box, null,
    h(C.Link, { asChild: true, fontSize: "sm" }, h(Link, { to: { search: "" } }, "← all models")),
    h(Section, { title: "Webhooks" }, h(Loading, { state: hooks }, (overview) => h(DataTable, {
      testId: "webhooks-table",
      empty: "No webhooks (add one below, or modelreg webhooks add NAME URL --secret-env VAR).",
      rows: overview.webhooks.map((w) => ({ ...w, key: w.name })),
      columns: [
        { label: "webhook", cell: (w) => h(C.Box, null, h(C.Text, { fontWeight: "semibold" }, w.name),
          h(C.Text, { fontSize: "xs", color: "fg.muted" }, w.url)) },
        { label: "events", cell: (w) => w.events.join(", ") || "all" },
        { label: "secret in", cell: (w) => `$${w.secret_env}` },
        { label: "delivered / pending / gave up", cell: (w) => `${w.delivered} / ${w.pending} / ${w.gave_up}` },
        { label: "", cell: (w) => h(C.Button, { size: "xs", variant: "ghost", onClick: () => remove(w.name) }, "Remove") },
      ],
    }))),
    h(Section, { title: "Add a webhook" }, h(AddWebhook, { onAdded: reload })),
    h(Section, { title: "Deliveries" }, h(Loading, { state: log }, (answer) => h(DataTable, {
      testId: "deliveries-table",
      empty: "No deliveries yet.",
      rows: answer.deliveries.map((d) => ({ ...d, key: d.id })),
      columns: [
        { label: "webhook", cell: (d) => d.webhook },
        { label: "event", cell: (d) => `${d.model_id} #${d.event_id}` },
        { label: "status", cell: (d) => h(Tag, { value: d.status }) },
        { label: "attempts", cell: (d) => d.attempts },
        { label: "HTTP", cell: (d) => d.last_http_status ?? "-" },
        { label: "latency", cell: (d) => (d.latency_ms === null ? "-" : `${fmt(d.latency_ms)} ms`) },
        { label: "next attempt", cell: (d) => (d.status === "PENDING" ? when(d.next_attempt_at) : "-") },
        { label: "last error", cell: (d) => h(C.Text, { fontSize: "xs" }, d.last_error ?? "-") },
      ],
    }))));
}
