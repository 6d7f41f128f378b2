// The flow a trace viewer goes through, with the real tsp-typescript-client:
// health, open trace, experiment, poll, outputs, style, tree, states, tooltip, XY.
// Usage: node walk.js <base url> <trace uri> <expected start ns> <expected end ns>
// (TSP_CLIENT_MODULES names the node_modules directory holding the client).
'use strict';
const path = require('path');
const tsp = require(path.join(process.env.TSP_CLIENT_MODULES, 'tsp-typescript-client'));
const { HttpTspClient, Query, QueryHelper } = tsp;

const [baseUrl, uri, wantStart, wantEnd] = process.argv.slice(2);
const CPU_USAGE = 'org.eclipse.tracecompass.analysis.os.linux.core.cpuusage.CpuUsageDataProvider';
const CONTROL_FLOW =
  'org.eclipse.tracecompass.internal.analysis.os.linux.core.threadstatus.ThreadStatusDataProvider';

function check(cond, what) {
  if (!cond) {
    throw new Error('check failed: ' + what);
  }
}

function model(response, what) {
  check(response.isOk(), `${what}: HTTP ${response.getStatusCode()} ${response.getText()}`);
  const m = response.getModel();
  check(m !== undefined, `${what}: no model in ${response.getText()}`);
  return m;
}

async function main() {
  const client = new HttpTspClient(baseUrl);
  const summary = {};

  const health = model(await client.checkHealth(), 'health');
  check(health.status === 'UP', 'health UP');

  const trace = model(await client.openTrace(new Query({ uri, name: 'walked' })), 'open trace');
  check(typeof trace.UUID === 'string', 'trace UUID');
  const again = model(await client.openTrace(new Query({ uri, name: 'walked' })), 'reopen trace');
  check(again.UUID === trace.UUID, 're-opening gives the same UUID');

  let exp = model(
    await client.createExperiment(new Query({ name: 'walked', traces: [trace.UUID] })),
    'create experiment'
  );
  const began = Date.now();
  while (exp.indexingStatus !== 'COMPLETED') {
    check(exp.indexingStatus === 'RUNNING', 'status RUNNING until COMPLETED: ' + exp.indexingStatus);
    check(Date.now() - began < 600000, 'analyses finish');
    await new Promise((r) => setTimeout(r, 200));
    exp = model(await client.fetchExperiment(exp.UUID), 'poll experiment');
  }
  // json-bigint hands timestamps over as bigint, exact past 2^53.
  check(typeof exp.start === 'bigint' && typeof exp.end === 'bigint', 'bigint range');
  check(exp.start === BigInt(wantStart) && exp.end === BigInt(wantEnd),
    `exact range ${exp.start}..${exp.end} vs ${wantStart}..${wantEnd}`);
  summary.start = exp.start.toString();
  summary.end = exp.end.toString();

  const outputs = model(await client.experimentOutputs(exp.UUID), 'outputs');
  summary.outputs = outputs.map((o) => o.id);
  const cf = outputs.find((o) => o.id === CONTROL_FLOW);
  check(cf && cf.type === 'TIME_GRAPH', 'Control Flow listed');
  // CPU usage: fractional values with many digits, as viewers get them.
  const xyOut =
    outputs.find((o) => o.id === CPU_USAGE) || outputs.find((o) => o.type === 'TREE_TIME_XY');
  check(xyOut, 'an XY output listed');

  const styles = model(await client.fetchStyles(exp.UUID, cf.id, new Query({})), 'style');
  check(styles.model && Object.keys(styles.model.styles).length > 0, 'styles');

  const tree = model(
    await client.fetchTimeGraphTree(exp.UUID, cf.id, QueryHelper.timeRangeQuery(exp.start, exp.end)),
    'time graph tree'
  );
  check(tree.status === 'COMPLETED', 'tree COMPLETED');
  const threads = tree.model.entries.filter((e) => e.parentId !== -1);
  check(threads.length > 0, 'thread rows');
  summary.threads = threads.length;
  const ids = threads.map((e) => e.id);

  const nbTimes = 1001;
  const states = model(
    await client.fetchTimeGraphStates(exp.UUID, cf.id,
      QueryHelper.selectionTimeRangeQuery(exp.start, exp.end, nbTimes, ids)),
    'states'
  );
  check(states.status === 'COMPLETED', 'states COMPLETED');
  let nbStates = 0;
  let probe = null;
  for (const row of states.model.rows) {
    check(ids.includes(row.entryId), 'row of a requested entry');
    for (const s of row.states) {
      check(typeof s.start === 'bigint' && typeof s.end === 'bigint', 'bigint state times');
      check(s.start >= exp.start && s.end <= exp.end, 'state within the range');
      nbStates++;
      if (probe === null && s.end > s.start) {
        probe = { id: row.entryId, time: s.start + (s.end - s.start) / 2n };
      }
    }
  }
  check(nbStates > 0 && probe !== null, 'some states');
  summary.states = nbStates;

  const tooltip = model(
    await client.fetchTimeGraphTooltip(exp.UUID, cf.id,
      QueryHelper.selectionTimeQuery([probe.time], [probe.id], {
        requested_element: { elementType: 'state', time: probe.time, duration: 0n },
      })),
    'tooltip'
  );
  check(tooltip.model && typeof tooltip.model.State === 'string', 'tooltip has a State');
  summary.tooltip = tooltip.model;

  const xyTree = model(
    await client.fetchXYTree(exp.UUID, xyOut.id, QueryHelper.timeRangeQuery(exp.start, exp.end)),
    'XY tree'
  );
  const series = xyTree.model.entries.filter((e) => e.hasData).slice(0, 5).map((e) => e.id);
  check(series.length > 0, 'XY entries with data');
  const xy = model(
    await client.fetchXY(exp.UUID, xyOut.id,
      QueryHelper.selectionTimeRangeQuery(exp.start, exp.end, 200, series)),
    'XY'
  );
  check(xy.model.series.length === series.length, 'one series per requested entry');
  for (const s of xy.model.series) {
    check(s.xValues.length === s.yValues.length && s.xValues.length > 0, 'x and y lengths');
  }
  summary.xySeries = xy.model.series.length;
  summary.xyOutput = xyOut.id;

  console.log(JSON.stringify(summary));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
