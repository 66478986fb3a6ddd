// The server's REST API and WebSocket URLs, with the token the page was
// opened with. The dashboard's own files are served without a token, so the
// page reads ?token= from its URL and passes it on: as a Bearer header to
// fetch, and as ?token= to WebSockets, which cannot carry headers.

const token = new URLSearchParams(location.search).get("token") || "";

// ApiError carries the server's JSON {"error": ...} text and the HTTP
// status; detail is the whole JSON answer (a refused dataset's file, line,
// column and problem).
export class ApiError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail || {};
  }
}

// call sends body as JSON, or as it is when it is FormData (the browser
// sets the multipart Content-Type).
async function call(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  const form = typeof FormData !== "undefined" && body instanceof FormData;
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : form ? body : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  try {
    data = await resp.json();
  } catch {
    // an empty or non-JSON body: the status says enough
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, (data && data.error) || `${method} ${path}: HTTP ${resp.status}`, data);
  }
  return data;
}

export const listDatasets = () => call("GET", "/api/datasets");
export const uploadDataset = (form) => call("POST", "/api/datasets", form);
export const deleteDataset = (name) => call("DELETE", `/api/datasets/${encodeURIComponent(name)}`);
// datasetRows returns a dataset's info and rows (data), those after since
// when given.
export const datasetRows = (name, since) =>
  call("GET", `/api/datasets/${encodeURIComponent(name)}?format=json${since ? `&since=${encodeURIComponent(since)}` : ""}`);
export const listRuns = () => call("GET", "/api/runs");
export const startRun = (request) => call("POST", "/api/runs", request);
export const cancelRun = (id) => call("DELETE", `/api/runs/${encodeURIComponent(id)}`);

// wsURL returns the ws:// or wss:// URL of path on this server, with params
// and the token in its query.
export function wsURL(path, params = {}) {
  const u = new URL(path, location.href);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, String(v));
  }
  if (token) u.searchParams.set("token", token);
  return u.href;
}
