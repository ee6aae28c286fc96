// The "Model registry" page of the Airflow UI (a React app plugin): every model, one model
// when the URL says ?model=<id>, the backends with ?view=backends, or the webhooks of the
// registry's events with ?view=webhooks, so each page has a link of its own.

import { BackendsView } from "./backends-view.js";
import { ModelView } from "./model-view.js";
import { ModelsView } from "./models-view.js";
import { C, ReactRouterDOM, h } from "./ui.js";
import { WebhooksView } from "./webhooks-view.js";

function RegistryPage() {
  const [search, setSearch] = ReactRouterDOM.useSearchParams();
  const modelId = search.get("model");
  const hours = Number(search.get("window") ?? (modelId ? 168 : 24));
  const onHours = (value) => {
    const next = new URLSearchParams(search);
    next.set("window", String(value));
    setSearch(next);
  };
  let view;
  if (modelId) {
    view = h(ModelView, { modelId, hours, onHours });
  } else if (search.get("view") === "backends") {
    view = h(BackendsView, null);
  } else if (search.get("view") === "webhooks") {
    view = h(WebhooksView, null);
  } else {
    view = [h(C.Heading, { key: "title", size: "xl" }, "Model registry"), h(ModelsView, { key: "models", hours, onHours })];
  }
  return h(C.Box, { p: 4, "data-testid": "model-registry" }, view);
}

globalThis.AirflowPlugin = RegistryPage;
