import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { placeTopSection } from '../../bench/suite/docs-top.ts'
import type { SuiteResults } from '../../bench/suite/results.ts'
import {
  buildSummary, e2eVariant, renderSummaryMarkdown, renderSummarySvg, SUMMARY_MARKER, SUMMARY_TITLE, type Summary, type SummaryRow
} from '../../bench/suite/summary.ts'

const ENV = { date: '2026-11-20T10:00:00.000Z', cpu: 'Test CPU', cores: 2, ramGb: 8, node: 'v24.0.0', postgres: '15.0', quick: false, loadAverage: { start: 0.5, end: 0.7 } }

/**
 * Small results: Oura intake in the format from before --rates (one rate, found in `shapes`), HealthKit with two
 * batch sizes, Kafka, end to end on one node without Kafka (old format) and on three nodes with Kafka (new format).
 * No WHOOP, token refresh or soak files.
 */
function fixture(): SuiteResults {
  return {
    webhooks: {
      oura: {
        environment: { ...ENV, redis: '7.0.0' },
        shapes: [
          { id: 'saturation', kind: 'closed', connections: 100 },
          { id: 'rate', kind: 'open', ratePerSecond: 1000 },
          { id: 'concurrency', kind: 'closed', connections: 50 }
        ],
        summaries: [
          { arm: 'baseline', shape: 'saturation', okPerSecond: 20_000 },
          { arm: 'bridge', shape: 'saturation', okPerSecond: 6000, latency: { p50Ms: 10, p99Ms: 30 }, cpuUsPerWebhook: { server: 120, machine: 250 } },
          { arm: 'bridge', shape: 'rate', okPerSecond: 1000, latency: { p50Ms: 2, p99Ms: 8 } },
          { arm: 'bridge', shape: 'concurrency', okPerSecond: 5000, latency: { p50Ms: 5, p99Ms: 20 } }
        ],
        memory: [{ arm: 'bridge', peakRssMb: 250 }]
      }
    },
    healthkit: {
      environment: { ...ENV, quick: true },
      targets: { batch100P50Ms: 10 },
      batches: [
        { batchSize: 10, ours: { samplesPerSecond: 5000, p50Ms: 2, p99Ms: 6 }, ratio: { median: 0.4 } },
        { batchSize: 1000, ours: { samplesPerSecond: 40_000, p50Ms: 50, p99Ms: 90 }, ratio: { median: 0.7 } }
      ],
      bigUpload: [{ nodeOptions: [], samples: 100_000, peakRssMb: 200 }]
    },
    kafka: { environment: { ...ENV, kafka: '4.2.2' }, throughput: { relay: { eventsPerSecond: 60_000 }, raw: { eventsPerSecond: 90_000 } } },
    e2e: [
      { file: 'webhooks-e2e.json', machine: ENV, notifications: 20_000, endToEndPerSecond: 600, done: 20_000, events: 80_000 },
      {
        file: 'webhooks-e2e-3nodes-redis-kafka.json', machine: ENV, variant: { nodes: 3, redis: true, kafka: true }, kafka: { brokers: ['x'] },
        notifications: 20_000, endToEndPerSecond: 900, eventsPerNotification: 4
      }
    ]
  }
}

const summaryOf = (results: SuiteResults): Summary => buildSummary(results, new Date('2026-11-26T12:00:00.000Z'))

function rowOf(summary: Summary, id: string): SummaryRow {
  const row = summary.rows.find((candidate) => candidate.id === id)
  assert.ok(row !== undefined, `row ${id}`)
  return row
}

const close = (actual: number | null, expected: number): void => {
  assert.ok(actual !== null && Math.abs(actual - expected) < 1e-9 * Math.max(1, Math.abs(expected)), `${actual} ≈ ${expected}`)
}

describe('suite summary rows', () => {
  const summary = summaryOf(fixture())

  test('every row the issue lists is there, in order, once', () => {
    const ids = summary.rows.map((row) => row.id)
    assert.equal(new Set(ids).size, ids.length, 'ids are unique')
    const expected = [
      'intake-oura', 'intake-whoop', 'e2e-no-kafka', 'e2e-kafka', 'three-nodes', 'three-nodes-per-core',
      'p99-oura-concurrent', 'p99-whoop-concurrent', 'p99-oura-1000', 'p99-oura-5000', 'p99-whoop-1000', 'p99-whoop-5000',
      'healthkit-10', 'healthkit-50', 'healthkit-100', 'healthkit-500', 'healthkit-1000',
      'healthkit-samples-per-second', 'healthkit-vs-raw', 'kafka-publish', 'events-per-day-one-node', 'events-per-day-three-nodes',
      'cpu-oura', 'cpu-whoop', 'rss-oura', 'rss-whoop', 'rss-healthkit-upload', 'soak-p99', 'soak-rss', 'rss-soak',
      'token-refresh-p50', 'token-refresh-p99'
    ]
    assert.deepEqual(ids, expected)
  })

  test('throughput rows: per minute, ratio ours ÷ reference, target judged', () => {
    const intake = rowOf(summary, 'intake-oura')
    assert.equal(intake.ours, 360_000)
    assert.equal(intake.reference, 2400)
    assert.equal(intake.ratio, 150)
    assert.equal(intake.ratioText, '150×')
    assert.equal(intake.met, false, '6,000/s is short of 10,000/s')
    assert.equal(intake.oursText, '360,000/min (6,000/s)')
    assert.deepEqual(intake.source, { section: 'Webhook intake (Oura)', file: 'webhooks.json', date: '2026-11-20', quick: false })
    const kafka = rowOf(summary, 'kafka-publish')
    close(kafka.ratio, 60_000 / 2341)
    assert.equal(kafka.met, true)
  })

  test('latency rows: ratio reference ÷ ours, p50 kept, the old single-rate format read from its shapes', () => {
    const concurrent = rowOf(summary, 'p99-oura-concurrent')
    assert.equal(concurrent.ours, 20)
    close(concurrent.ratio, 87 / 20)
    assert.deepEqual(concurrent.latency, { p50Ms: 5, p99Ms: 20 })
    assert.equal(concurrent.met, null, 'no target at 50 concurrent')
    const at1000 = rowOf(summary, 'p99-oura-1000')
    assert.equal(at1000.ours, 8)
    assert.equal(at1000.met, true, 'p99 8 ms ≤ 10 ms')
    assert.equal(at1000.ratio, null, 'the reference reports no fixed-rate latency')
  })

  test('missing results are "not measured", with the reason, never a number', () => {
    for (const id of ['intake-whoop', 'p99-whoop-concurrent', 'e2e-kafka', 'soak-p99', 'rss-soak', 'token-refresh-p99', 'healthkit-50']) {
      const row = rowOf(summary, id)
      assert.equal(row.ours, null, id)
      assert.equal(row.oursText, 'not measured', id)
      assert.equal(row.ratio, null, id)
      assert.equal(row.met, null, id)
      assert.ok((row.notMeasured ?? '').length > 0, `${id} says why`)
    }
    assert.match(rowOf(summary, 'intake-whoop').notMeasured!, /webhooks-whoop\.json/)
    assert.match(rowOf(summary, 'p99-oura-5000').notMeasured!, /--rates 1000,5000/)
  })

  test('end-to-end variants: one node without Kafka, three nodes with it, per core and per day derived', () => {
    assert.equal(rowOf(summary, 'e2e-no-kafka').ours, 36_000)
    assert.equal(rowOf(summary, 'three-nodes').ours, 54_000)
    close(rowOf(summary, 'three-nodes').ratio, 54_000 / 6800)
    assert.equal(rowOf(summary, 'three-nodes-per-core').ours, 27_000)
    assert.equal(rowOf(summary, 'events-per-day-three-nodes').ours, 900 * 86_400)
    assert.equal(rowOf(summary, 'events-per-day-three-nodes').reference, 9.7e6)
    assert.match(rowOf(summary, 'events-per-day-one-node').oursText, /4\.0 stored events each/)
  })

  test('HealthKit: the reference\'s batch table row by row, large-batch throughput judged on its worst size', () => {
    const batch = rowOf(summary, 'healthkit-1000')
    assert.equal(batch.ours, 50)
    close(batch.ratio, 1532 / 50)
    assert.equal(rowOf(summary, 'healthkit-10').source?.quick, true)
    const throughput = rowOf(summary, 'healthkit-samples-per-second')
    assert.equal(throughput.ours, 40_000)
    assert.equal(throughput.met, false)
    const vsRaw = rowOf(summary, 'healthkit-vs-raw')
    assert.equal(vsRaw.ours, 0.7)
    assert.equal(vsRaw.met, true)
  })

  test('RSS in MB (10^6 bytes) against 300 MB', () => {
    close(rowOf(summary, 'rss-oura').ours, 250 * 1.048576)
    assert.equal(rowOf(summary, 'rss-oura').met, true)
  })

  test('a soak file: first → last window, its own verdicts decide "flat"', () => {
    const results = fixture()
    results.soak = {
      machine: ENV, settings: { durationMs: 600_000, ratePerSecond: 300 },
      windows: [{ intakeP99Ms: 5, rssMeanMb: 200 }, { intakeP99Ms: 6, rssMeanMb: 210 }, { intakeP99Ms: 5.5, rssMeanMb: 205 }],
      overall: { rssMaxMb: 220 }, verdict: { rss: 'flat', p99: 'growing' }
    }
    const soak = summaryOf(results)
    assert.equal(rowOf(soak, 'soak-p99').ours, 5.5)
    assert.equal(rowOf(soak, 'soak-p99').met, false)
    assert.equal(rowOf(soak, 'soak-rss').met, true)
    assert.match(rowOf(soak, 'soak-rss').label, /10-minute soak at 300\/s/)
  })

  test('a soak with a warm-up: the rows start at the first window the trend rule fits', () => {
    const results = fixture()
    results.soak = {
      machine: ENV, settings: { durationMs: 120_000, warmupMs: 120_000, timelineMs: 240_000, ratePerSecond: 250 },
      windows: [{ startS: 0, rssMeanMb: 180 }, { startS: 60, rssMeanMb: 200 }, { startS: 120, rssMeanMb: 226 }, { startS: 180, rssMeanMb: 227 }],
      overall: { rssMaxMb: 230 }, verdict: { rss: 'flat', p99: 'flat' }
    }
    const row = rowOf(summaryOf(results), 'soak-rss')
    assert.match(row.oursText, /226 MiB → 227 MiB \(227 MiB\)/)
    assert.match(row.label, /2-minute soak at 250\/s after 2 min of warm-up/)
  })

  test('e2e variants from the file name when the file does not say', () => {
    assert.deepEqual({ ...e2eVariant({ file: 'webhooks-e2e-3nodes-redis-kafka.json' }), results: undefined }, { results: undefined, nodes: 3, kafka: true })
    assert.deepEqual({ ...e2eVariant({ file: 'webhooks-e2e-redis.json' }), results: undefined }, { results: undefined, nodes: 1, kafka: false })
    assert.equal(e2eVariant({ file: 'webhooks-e2e.json', kafka: null }).kafka, false)
  })
})

describe('suite summary rendering', () => {
  const summary = summaryOf(fixture())

  test('Markdown: one table row per summary row, "not measured" where missing, the chart linked', () => {
    const markdown = renderSummaryMarkdown(summary, '<!-- summary:notes -->\nkept\n<!-- /summary:notes -->')
    assert.ok(markdown.startsWith(`## ${SUMMARY_TITLE}\n`))
    assert.equal(markdown.split('\n## ').length, 1, 'no second-level heading inside the section')
    assert.ok(markdown.includes('![') && markdown.includes('](../bench/results/summary.svg)'))
    assert.ok(markdown.includes('| Row | Reference | Ours | Ratio | Target | Met? | Source |'))
    for (const row of summary.rows) assert.ok(markdown.includes(`| ${row.label.replace(/\|/g, '\\|')} |`), row.label)
    const missing = summary.rows.filter((row) => row.ours === null).length
    assert.equal(markdown.match(/\| \*not measured\* \|/g)?.length, missing)
    assert.ok(markdown.includes(`**Not measured** (${missing} of ${summary.rows.length} rows)`))
    assert.ok(markdown.includes('| 360,000/min (6,000/s)'.slice(2)), 'the figure is in the table')
    assert.ok(markdown.includes('| 150× |'))
    assert.ok(markdown.includes('[Webhook intake (Oura)](#webhook-intake-oura)'))
    assert.ok(markdown.includes('kept'), 'the notes block is kept')
    assert.ok(markdown.includes('Test CPU, 2 cores'))
  })

  test('the last whole run is named; a partial run after it (the soak) is listed beside it, not instead of it', () => {
    const step = (id: string, seconds: number): { id: string, title: string, seconds: number, exitCode: number } => ({ id, title: id, seconds, exitCode: 0 })
    const withRuns = summaryOf({
      ...fixture(),
      suiteRun: {
        lastRun: { date: '2026-11-26T09:20:14.676Z', quick: false, steps: [step('healthkit', 119), step('kafka', 154)], loadAverage: 1.56, busyCores: 0.04, quiet: true },
        lastPartialRun: { date: '2026-11-26T09:38:15.237Z', steps: [step('soak-10m', 965)], loadAverage: 0.67, busyCores: 0.03, quiet: true, command: 'npm run bench -- --soak 10m' }
      }
    })
    const markdown = renderSummaryMarkdown(withRuns, '')
    assert.match(markdown, /- Last `npm run bench` on 2026-11-26 09:20 UTC: load average 1\.56 before it, .*healthkit \d+ min, kafka \d+ min$/m)
    assert.match(markdown, /- After it, `npm run bench -- --soak 10m` on 2026-11-26 09:38 UTC: load average 0\.67 before it, .*soak-10m 16 min$/m)
  })

  test('SVG: a document with one bar per figure (reference and ours; p50 and p99 for latencies)', () => {
    const svg = renderSummarySvg(summary)
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'))
    assert.ok(svg.trimEnd().endsWith('</svg>'))
    assert.ok(!svg.includes('NaN') && !svg.includes('undefined') && !svg.includes('Infinity'))
    // Throughput: intake Oura 2, WHOOP 1 (reference), e2e off 2, e2e on 1, three nodes 2, HealthKit 2, Kafka 2.
    assert.equal(svg.match(/class="bar bar-(reference|ours)"/g)?.length, 12 + 8, 'throughput bars plus latency reference bars')
    // Latency: Oura 50 (3), WHOOP 50 (1), Oura 1,000/s (2), HealthKit 10 (3), 50/100/500 (1 each), 1,000 (3), token refresh (1);
    // its reference bars: Oura 50, WHOOP 50, the five HealthKit sizes of the reference's table, token refresh.
    assert.equal(svg.match(/class="bar /g)?.length, 12 + 16)
    assert.equal(svg.match(/class="bar bar-p99"/g)?.length, 4)
    assert.equal(svg.match(/>not measured</g)?.length, 2 + 3 + 4 + 1, 'each group without our figure says so')
    assert.equal(svg.match(/<svg/g)?.length, 1)
    assert.equal(svg.match(/<rect/g)?.length, svg.match(/<\/rect>|<rect[^>]*\/>/g)?.length, 'every rect is closed')
  })
})

describe('the summary section goes to the top of docs/benchmarks.md', () => {
  const docs = '# Benchmarks\n\nIntro.\n\n## HealthKit uploads\n\nhk\n\n<!-- healthkit:notes -->\nhk notes\n<!-- /healthkit:notes -->\n\n## Kafka publishing\n\nkafka\n'
  const render = (notes: string): string => `## ${SUMMARY_TITLE}\n\nthe table\n\n${notes}\n`

  test('inserted after the intro, the other sections untouched', () => {
    const out = placeTopSection(docs, SUMMARY_TITLE, SUMMARY_MARKER, render)
    assert.ok(out.startsWith(`# Benchmarks\n\nIntro.\n\n## ${SUMMARY_TITLE}\n\nthe table\n\n<!-- summary:notes -->\n<!-- /summary:notes -->\n\n## HealthKit uploads\n`))
    assert.ok(out.endsWith('<!-- /healthkit:notes -->\n\n## Kafka publishing\n\nkafka\n'))
  })

  test('moved to the top from elsewhere, its notes kept; a second run changes nothing', () => {
    const elsewhere = `${docs}\n## ${SUMMARY_TITLE}\n\nold table\n\n<!-- summary:notes -->\nmine\n<!-- /summary:notes -->\n`
    const out = placeTopSection(elsewhere, SUMMARY_TITLE, SUMMARY_MARKER, render)
    assert.equal(out.split(`## ${SUMMARY_TITLE}`).length, 2, 'once')
    assert.ok(!out.includes('old table'))
    assert.ok(out.indexOf(SUMMARY_TITLE) < out.indexOf('## HealthKit uploads'))
    assert.ok(out.includes('<!-- summary:notes -->\nmine\n<!-- /summary:notes -->'))
    assert.ok(out.endsWith('## Kafka publishing\n\nkafka\n'))
    assert.equal(placeTopSection(out, SUMMARY_TITLE, SUMMARY_MARKER, render), out)
  })

  test('an empty or missing file gets the usual intro', () => {
    const out = placeTopSection('', SUMMARY_TITLE, SUMMARY_MARKER, render)
    assert.ok(out.startsWith('# Benchmarks\n\n'))
    assert.ok(out.includes(`\n\n## ${SUMMARY_TITLE}\n`))
  })
})
