// Calls to the registry API, mounted next to this module (<base>/model-registry/api/), and to
// Airflow's own API. The browser sends Airflow's login cookie itself; changes go as JSON,
// the only body the registry API accepts for them.

const REGISTRY_API = new URL("../api/", import.meta.url);
const AIRFLOW_API = new URL("api/v2/", document.baseURI);

class ApiError extends Error {
  constructor(status, message, gates) {
    super(message);
    this.status = status;
    this.gates = gates ?? null;
  }
}

const ACCESS = { GET: "read", POST: "edit" };

async function call(base, path, method, body, needs = `${ACCESS[method]} access to the detection_models DAG`) {
  const init = { credentials: "same-origin", method };
  if (body !== undefined) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(new URL(path, base), init);
  const answer = await response.json().catch(() => ({}));
  if (response.ok) {
    return answer;
  }
  let message = typeof answer.detail === "string" ? answer.detail : `HTTP ${response.status}`;
  // The registry's own refusals ("modelreg ...": e.g. a permission to force) say what they need;
  // Airflow's ("Forbidden") do not.
  const ownLine = message.startsWith("modelreg ");
  if (response.status === 401) {
    message = `${message}: log in to Airflow again`;
  } else if (response.status === 403 && !ownLine) {
    message = `${message}: this needs ${needs}`;
  }
  throw new ApiError(response.status, message, answer.gates);
}

// An array is the parameter repeated (`model=a&model=b`), as the API's list parameters take it.
const query = (params) => {
  const given = Object.entries(params)
    .filter(([, value]) => value !== undefined && value !== null)
    .flatMap(([key, value]) => (Array.isArray(value) ? value.map((one) => [key, one]) : [[key, value]]));
  return given.length ? `?${new URLSearchParams(given)}` : "";
};

export const segment = encodeURIComponent;

export const getRegistry = (path, params = {}) => call(REGISTRY_API, `${path}${query(params)}`, "GET");

export const postRegistry = (path, body) => call(REGISTRY_API, path, "POST", body);

export const getAirflow = (path, params = {}) => call(AIRFLOW_API, `${path}${query(params)}`, "GET");

// A run of a DAG, made by Airflow's own API as the logged-in user (Airflow decides who may).
export const triggerDag = (dagId, conf) => call(AIRFLOW_API, `dags/${segment(dagId)}/dagRuns`, "POST",
  { logical_date: null, conf }, `permission to trigger the ${dagId} DAG`);
