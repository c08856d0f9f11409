// Talking to the studio server: JSON in and out, errors turned into plain sentences (the server says what to do).
export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail || error || `the studio answered ${status}`);
    this.status = status;
    this.error = error;
  }
}

export async function api(path, { method = 'GET', json, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, credentials: 'same-origin' };
  if (json !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body !== undefined) init.body = body;
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'offline', 'the studio is not answering: is it still running? (look at the window where you started it)');
  }
  if (res.status === 401) throw new ApiError(401, 'unauthorized', 'this page lost its access: open the link that tlearn studio printed (it ends with ?token=…)');
  const type = res.headers.get('content-type') || '';
  const data = type.includes('application/json') ? await res.json().catch(() => ({})) : null;
  if (!res.ok) throw new ApiError(res.status, data?.error, data?.detail || `the studio answered ${res.status}`);
  return data;
}

/** Query string from an object, skipping empty values. */
export function qs(o) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  return q.toString();
}
