// The candidates table's query, shared by the server (over a live study) and the page (over a
// report's embedded points): sort by a column (missing values last), filter by status and by
// text in the mutations, the failure category or the id, and cut one page.
const STATUS_CODES = ['completed', 'hurdle', 'failed', 'pending'];
const COLUMNS = ['id', 'fitness', 'parameters', 'flops', 'steps', 'seconds'];

export function queryTable(p, q) {
  const offset = Math.max(0, Number(q.offset ?? 0) || 0);
  const limit = Math.min(500, Math.max(1, Number(q.limit ?? 50) || 50));
  const text = String(q.text ?? '').toLowerCase();
  const status = q.status ? STATUS_CODES.indexOf(q.status) : -1;
  let idx = p.id.map((_, i) => i);
  if (status >= 0) idx = idx.filter((i) => p.status[i] === status);
  if (text) idx = idx.filter((i) => p.mutations[i].toLowerCase().includes(text) || String(p.id[i]) === text || (p.reason[i] ?? '').includes(text));
  const key = COLUMNS.includes(q.sort) ? q.sort : 'id';
  const column = p[key];
  const sign = q.order === 'desc' ? -1 : 1;
  idx.sort((a, b) => {
    const x = column[a];
    const y = column[b];
    if (x === null || x === undefined) return y === null || y === undefined ? p.id[a] - p.id[b] : 1;
    if (y === null || y === undefined) return -1;
    return sign * (x - y) || p.id[a] - p.id[b];
  });
  const rows = idx.slice(offset, offset + limit).map((i) => ({
    id: p.id[i],
    parent: p.parent[i],
    status: STATUS_CODES[p.status[i]],
    reused: p.reused[i],
    sameAs: p.sameAs?.[i] ?? null,
    fitness: p.fitness[i],
    parameters: p.parameters[i],
    flops: p.flops[i],
    steps: p.steps[i],
    seconds: p.seconds[i],
    reason: p.reason[i],
    mutations: p.mutations[i],
  }));
  return { total: idx.length, rows };
}
