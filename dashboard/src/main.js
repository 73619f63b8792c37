// The dashboard of one running Cairn job: polls the job's REST API (Flink's shapes) every
// second and renders its graph with per-operator rates and backpressure, the Kafka
// partitions its sources read (offsets and lag), its checkpoint history (table and chart),
// its failures and restarts, and its configuration.

import { h, render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import uPlot from "uplot";

const html = htm.bind(h);
const REFRESH_MS = 1000;

async function get(path) {
  let response;
  try {
    response = await fetch(path, { cache: "no-store", signal: AbortSignal.timeout(5000) });
  } catch {
    throw new Error("the job's server does not answer: the job has ended, or its process is gone");
  }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

// The id Flink's vertex metrics give a Kafka source reader's metric of one partition,
// e.g. `0.KafkaSourceReader.topic.words.partition.2.records-lag` (subtask 0).
const PARTITION_METRIC =
  /^(\d+)\.KafkaSourceReader\.topic\.(.+)\.partition\.(\d+)\.(currentOffset|committedOffset|records-lag)$/;

/** The Kafka partitions a source vertex's subtasks read, one row per partition and subtask
 *  (none for a source that reads no Kafka topic). */
async function partitions(id, vertex) {
  const path = `/jobs/${id}/vertices/${vertex}/metrics`;
  const ids = (await get(path)).map((m) => m.id).filter((m) => PARTITION_METRIC.test(m));
  if (ids.length === 0) return [];
  const rows = {};
  for (const { id: metric, value } of await get(`${path}?get=${ids.join(",")}`)) {
    const [, subtask, topic, partition, name] = metric.match(PARTITION_METRIC);
    const row = rows[`${subtask}.${topic}.${partition}`] ??=
      { topic, partition: Number(partition), subtask: Number(subtask) };
    row[name] = Number(value);
  }
  return Object.values(rows).sort((a, b) =>
    a.topic.localeCompare(b.topic) || a.partition - b.partition || a.subtask - b.subtask);
}

/** Everything the page shows, fetched in one round. */
async function poll(previous) {
  const { jobs } = await get("/jobs");
  const id = jobs[0].id;
  const details = await get(`/jobs/${id}`);
  // Sources are the vertices without inputs.
  const sources = details.plan.nodes.filter((n) => !n.inputs?.length).map((n) => n.id);
  const [checkpoints, exceptions, config, metrics, backpressure, read, marks] = await Promise.all([
    get(`/jobs/${id}/checkpoints`),
    get(`/jobs/${id}/exceptions`),
    get(`/jobs/${id}/config`),
    get(`/jobs/${id}/metrics?get=numRestarts,uptime`),
    Promise.all(details.vertices.map((v) => get(`/jobs/${id}/vertices/${v.id}/backpressure`))),
    Promise.all(sources.map((v) => partitions(id, v))),
    Promise.all(details.vertices.map((v) => watermark(id, v, sources.includes(v.id)))),
  ]);
  const now = Date.now();
  // Records per second in and out, from the change in each vertex's counts since the last
  // round (a restart starts the counts again: no rate then).
  const counts = Object.fromEntries(details.vertices.map((v) =>
    [v.id, [v.metrics["read-records"], v.metrics["write-records"]]]));
  const metric = (name) => Number(metrics.find((m) => m.id === name)?.value ?? 0);
  const restarts = metric("numRestarts");
  // Counts start again with every attempt: no rate across a restart.
  const comparable = previous && previous.restarts === restarts;
  const seconds = comparable ? (now - previous.at) / 1000 : 0;
  const rates = {};
  for (const v of details.vertices) {
    const before = comparable ? previous.counts[v.id] : undefined;
    const rate = (i) => before && seconds > 0 && counts[v.id][i] >= before[i]
      ? (counts[v.id][i] - before[i]) / seconds : null;
    rates[v.id] = { in: rate(0), out: rate(1) };
  }
  return {
    at: now, counts, rates, details, checkpoints, exceptions, config, restarts,
    backpressure: Object.fromEntries(details.vertices.map((v, i) => [v.id, backpressure[i]])),
    partitions: Object.fromEntries(sources.map((v, i) => [v, read[i]])),
    watermarks: Object.fromEntries(details.vertices.map((v, i) => [v.id, marks[i]])),
  };
}

/**
 * A vertex's watermark: the lowest over its subtasks of their input watermark (Flink's
 * `/watermarks`), or for a source, of the watermark it sends on; null when a subtask has
 * none yet.
 */
async function watermark(id, vertex, source) {
  const subtasks = [...Array(vertex.parallelism).keys()];
  const values = source
    ? await get(`/jobs/${id}/vertices/${vertex.id}/metrics?get=${
      subtasks.map((i) => `${i}.currentOutputWatermark`).join(",")}`)
    : await get(`/jobs/${id}/vertices/${vertex.id}/watermarks`);
  if (values.length === 0) return null;
  const lowest = Math.min(...values.map((m) => Number(m.value)));
  // i64::MIN (no watermark yet) reads as about -9.2e18.
  return lowest < -9e18 ? null : lowest;
}

/** A watermark as the node shows it, with its lag behind the wall clock. */
function watermarkText(ms, now) {
  if (ms == null) return "no watermark";
  // i64::MAX: the input has ended.
  if (ms > 9e18) return "watermark: end of input";
  return `watermark ${new Date(ms).toISOString().slice(11, 23)} · lag ${duration(Math.max(0, now - ms))}`;
}

const number = (n) => n == null ? "–" : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M`
  : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : `${Math.round(n)}`;
const bytes = (b) => b == null ? "–" : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB`
  : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`;
const duration = (ms) => ms < 1000 ? `${ms} ms` : ms < 60000 ? `${(ms / 1000).toFixed(1)} s`
  : `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
const time = (ms) => new Date(ms).toLocaleTimeString();

function Header({ data }) {
  const d = data.details;
  const c = data.checkpoints.counts;
  return html`
    <header>
      <h1>${d.name}</h1>
      <span class="id">${d.jid}</span>
      <span class="state ${d.state}" data-testid="state">${d.state}</span>
      <span>up ${duration(d.duration)}</span>
      <span data-testid="restarts">${data.restarts} restart${data.restarts === 1 ? "" : "s"}</span>
      <span>${c.completed} checkpoints${c.failed ? `, ${c.failed} failed` : ""}</span>
    </header>`;
}

// Graph layout: node boxes are 176 px wide (`.node` in app.css), with room for an edge
// label between.
const NODE_WIDTH = 176;
const COLUMN = 260;
const ROW = 140;

/** Columns by depth in the graph (sources first), rows in plan order. */
function layout(nodes) {
  const depth = {};
  for (const n of nodes) {
    depth[n.id] = Math.max(-1, ...(n.inputs ?? []).map((i) => depth[i.id] ?? 0)) + 1;
  }
  const rows = {};
  const at = {};
  for (const n of nodes) {
    const col = depth[n.id];
    rows[col] = (rows[col] ?? 0) + 1;
    at[n.id] = { x: col * COLUMN, y: (rows[col] - 1) * ROW };
  }
  const height = Math.max(...Object.values(rows)) * ROW;
  return { at, width: (Math.max(...Object.values(depth)) + 1) * COLUMN, height };
}

function JobGraph({ data }) {
  const nodes = data.details.plan.nodes;
  const vertices = Object.fromEntries(data.details.vertices.map((v) => [v.id, v]));
  const { at, width, height } = layout(nodes);
  const edges = nodes.flatMap((n) => (n.inputs ?? []).map((i) => ({ from: i.id, to: n.id, how: i.ship_strategy })));
  return html`
    <section class="wide">
      <h2>Job graph</h2>
      <div class="graph" style=${{ width: `${width}px`, height: `${height}px` }}>
        <svg width=${width} height=${height}>
          ${edges.map((e) => {
            const a = at[e.from], b = at[e.to];
            const x1 = a.x + NODE_WIDTH, y1 = a.y + 40, x2 = b.x, y2 = b.y + 40;
            return html`<g>
              <line x1=${x1} y1=${y1} x2=${x2} y2=${y2} stroke="#9aa4b2" stroke-width="2" />
              <text x=${(x1 + x2) / 2} y=${(y1 + y2) / 2 - 6} font-size="10" fill="#6b7585"
                    text-anchor="middle">${e.how}</text>
            </g>`;
          })}
        </svg>
        ${nodes.map((n) => {
          const v = vertices[n.id];
          const bp = data.backpressure[n.id];
          const ratio = Math.max(0, ...(bp?.subtasks ?? []).map((s) => s.ratio));
          return html`
            <div class="node ${bp?.backpressureLevel}" data-testid="node"
                 style=${{ left: `${at[n.id].x}px`, top: `${at[n.id].y}px` }}>
              <div class="uid">${v.name} <span class="muted">×${v.parallelism}</span></div>
              <div class="kind" title=${n.description}>${n.description}</div>
              <div class="rate">${number(data.rates[n.id].in)} in/s · ${number(data.rates[n.id].out)} out/s</div>
              <div class="rate">${number(v.metrics["read-records"])} in · ${number(v.metrics["write-records"])} out</div>
              <div class="rate" data-testid="watermark">${watermarkText(data.watermarks[n.id], data.at)}</div>
              <div class="rate">backpressure ${Math.round(ratio * 100)}%</div>
              <div class="bp"><div style=${{ width: `${Math.round(ratio * 100)}%` }}></div></div>
            </div>`;
        })}
      </div>
    </section>`;
}

/** One table per source vertex that reads Kafka partitions. */
function Partitions({ data }) {
  const names = Object.fromEntries(data.details.vertices.map((v) => [v.id, v.name]));
  const offset = (n) => n ?? "–";
  return Object.entries(data.partitions).filter(([, rows]) => rows.length > 0).map(([vertex, rows]) => html`
    <section class="wide" data-testid="partitions">
      <h2>Kafka partitions of ${names[vertex]}</h2>
      <table>
        <thead><tr><th>topic</th><th>partition</th><th>subtask</th><th>current offset</th><th>committed offset</th><th>lag</th></tr></thead>
        <tbody>
          ${rows.map((r) => html`
            <tr data-testid="partition-row">
              <td>${r.topic}</td>
              <td>${r.partition}</td>
              <td>${r.subtask}</td>
              <td>${offset(r.currentOffset)}</td>
              <td>${offset(r.committedOffset)}</td>
              <td>${offset(r["records-lag"])}</td>
            </tr>`)}
        </tbody>
      </table>
    </section>`);
}

function CheckpointChart({ history }) {
  const box = useRef(null);
  const plot = useRef(null);
  // In trigger order: a slow savepoint may complete after a later checkpoint.
  const points = [...history].sort((a, b) => a.trigger_timestamp - b.trigger_timestamp);
  const series = [
    points.map((c) => c.trigger_timestamp / 1000),
    points.map((c) => c.end_to_end_duration),
    points.map((c) => c.checkpointed_size),
  ];
  useEffect(() => {
    if (!plot.current) {
      plot.current = new uPlot({
        width: Math.max(320, box.current.clientWidth),
        height: 180,
        axes: [
          {},
          { label: "duration (ms)", scale: "ms" },
          { label: "size", scale: "bytes", side: 1, size: 80, grid: { show: false }, values: (u, v) => v.map(bytes) },
        ],
        series: [
          {},
          { label: "duration", scale: "ms", stroke: "#3b6fd8", width: 2, value: (u, v) => v == null ? "–" : `${v} ms` },
          { label: "size", scale: "bytes", stroke: "#2f9e5b", width: 2, value: (u, v) => bytes(v) },
        ],
      }, series, box.current);
    } else {
      plot.current.setData(series);
    }
  });
  useEffect(() => () => plot.current?.destroy(), []);
  return html`<div ref=${box} data-testid="checkpoint-chart"></div>`;
}

function Checkpoints({ data }) {
  const { counts, history, latest } = data.checkpoints;
  return html`
    <section class="wide">
      <h2>Checkpoints</h2>
      <div class="facts">
        <div class="fact"><b data-testid="completed">${counts.completed}</b><span>completed</span></div>
        <div class="fact"><b>${counts.in_progress}</b><span>in progress</span></div>
        <div class="fact"><b>${counts.failed}</b><span>failed</span></div>
        <div class="fact"><b>${latest.completed ? duration(latest.completed.end_to_end_duration) : "–"}</b><span>last duration</span></div>
        <div class="fact"><b>${latest.completed ? bytes(latest.completed.checkpointed_size) : "–"}</b><span>last size</span></div>
      </div>
      <${CheckpointChart} history=${history} />
      <table>
        <thead><tr><th>id</th><th>kind</th><th>triggered</th><th>duration</th><th>stored</th><th>state</th><th>path</th></tr></thead>
        <tbody>
          ${history.map((c) => html`
            <tr data-testid="checkpoint-row">
              <td>${c.id}</td>
              <td>${c.is_savepoint ? "savepoint" : "checkpoint"}</td>
              <td>${time(c.trigger_timestamp)}</td>
              <td>${duration(c.end_to_end_duration)}</td>
              <td>${bytes(c.checkpointed_size)}</td>
              <td>${bytes(c.state_size)}</td>
              <td class="path">${c.external_path ?? "–"}</td>
            </tr>`)}
        </tbody>
      </table>
      ${latest.failed && html`<p class="error">Last failure (checkpoint ${latest.failed.id}): ${latest.failed.failure_message}</p>`}
    </section>`;
}

function Exceptions({ data }) {
  const entries = data.exceptions.exceptionHistory.entries;
  return html`
    <section>
      <h2>Restarts and failures</h2>
      ${entries.length === 0 ? html`<p class="muted">No failures.</p>` : entries.map((e) => html`
        <div class="exception" data-testid="exception">
          <b>${e.taskName}</b> <span class="muted">${time(e.timestamp)}</span>
          <pre>${e.stacktrace}</pre>
        </div>`)}
    </section>`;
}

function Config({ data }) {
  const config = data.config["execution-config"]["user-config"];
  return html`
    <section>
      <h2>Configuration</h2>
      <table class="config">
        <tbody>
          ${Object.entries(config).map(([k, v]) => html`<tr><td>${k}</td><td>${v}</td></tr>`)}
        </tbody>
      </table>
    </section>`;
}

function App() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let previous = null;
    let stopped = false;
    const round = async () => {
      try {
        previous = await poll(previous);
        setData(previous);
        setError(null);
      } catch (e) {
        setError(String(e));
      }
      if (!stopped) setTimeout(round, REFRESH_MS);
    };
    round();
    return () => { stopped = true; };
  }, []);
  if (!data) return html`<p class=${error ? "error" : "muted"}>${error ?? "Loading…"}</p>`;
  return html`
    <${Header} data=${data} />
    ${error && html`<p class="error">${error} (showing the last data)</p>`}
    <main>
      <${JobGraph} data=${data} />
      <${Partitions} data=${data} />
      <${Checkpoints} data=${data} />
      <${Exceptions} data=${data} />
      <${Config} data=${data} />
    </main>`;
}

render(html`<${App} />`, document.getElementById("app"));
