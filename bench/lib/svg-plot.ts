/**
 * Hand-written SVG bar charts (no dependency): panels of horizontal bars on a logarithmic axis, one group of bars
 * per row, one bar per series that has a value. Pure: data in, SVG text out. Every drawn bar is a
 * `<rect class="bar bar-<series>">` with a `<title>` (hover text), so tests and readers can count them.
 */

export interface PlotSeries {
  id: string
  label: string
  /** CSS colour of its bars. */
  color: string
}

export interface PlotBar {
  series: string
  /** In the panel's unit; null: nothing to draw (the group's note says why). */
  value: number | null
}

export interface PlotGroup {
  label: string
  bars: PlotBar[]
  /** Drawn as a dashed tick across the group's bars, e.g. a target. */
  marker?: { value: number, label: string }
  /** Written in the plot area under the drawn bars, e.g. "not measured". */
  note?: string
}

export interface PlotPanel {
  title: string
  /** Axis caption, e.g. "per second, log scale". */
  axisLabel: string
  groups: PlotGroup[]
  /** How a value is written at the end of its bar. */
  format: (value: number) => string
}

export interface BarChart {
  title: string
  subtitle?: string
  series: PlotSeries[]
  panels: PlotPanel[]
}

/** Layout, in px. */
const WIDTH = 980
const LABEL_WIDTH = 290
const VALUE_ROOM = 96
const BAR_HEIGHT = 11
const BAR_GAP = 2
const GROUP_GAP = 9
const PANEL_TITLE_HEIGHT = 28
const AXIS_HEIGHT = 30
const PANEL_GAP = 22
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

const isDrawable = (value: number | null): value is number => value !== null && Number.isFinite(value) && value > 0

/** Whole decades around every positive value (and marker) of the panel: [10^lo, 10^hi], at least one decade wide. */
export function logDomain(values: readonly number[]): { lo: number, hi: number } {
  const positive = values.filter((value) => isDrawable(value))
  if (positive.length === 0) return { lo: 0, hi: 1 }
  const lo = Math.floor(Math.log10(Math.min(...positive)))
  const hi = Math.ceil(Math.log10(Math.max(...positive)))
  return { lo, hi: Math.max(hi, lo + 1) }
}

const fmt = (value: number): string => (Number.isInteger(value) ? String(value) : value.toFixed(1))

function decadeLabel(exponent: number): string {
  const value = 10 ** exponent
  if (exponent >= 6) return `${fmt(value / 1e6)}M`
  if (exponent >= 3) return `${fmt(value / 1e3)}k`
  return exponent >= 0 ? String(value) : String(Number(value.toPrecision(1)))
}

/** Renders the chart; the height follows from the number of bars. */
export function renderBarChart(chart: BarChart): string {
  const body: string[] = []
  const colorOf = new Map(chart.series.map((series) => [series.id, series.color]))
  const plotLeft = LABEL_WIDTH
  const plotWidth = WIDTH - LABEL_WIDTH - VALUE_ROOM
  let y = 0

  body.push(`<text x="16" y="26" font-size="17" font-weight="600">${escapeXml(chart.title)}</text>`)
  y = 34
  if (chart.subtitle !== undefined) {
    body.push(`<text x="16" y="${y + 12}" font-size="12" fill="#555">${escapeXml(chart.subtitle)}</text>`)
    y += 20
  }
  // Legend: one swatch per series.
  let legendX = 16
  for (const series of chart.series) {
    body.push(`<rect x="${legendX}" y="${y + 4}" width="12" height="12" fill="${series.color}"/>`)
    body.push(`<text x="${legendX + 17}" y="${y + 14}" font-size="12">${escapeXml(series.label)}</text>`)
    legendX += 17 + 7 * series.label.length + 24
  }
  y += 26

  for (const panel of chart.panels) {
    y += PANEL_GAP
    body.push(`<text x="16" y="${y + 16}" font-size="15" font-weight="600">${escapeXml(panel.title)}</text>`)
    y += PANEL_TITLE_HEIGHT
    const values = panel.groups.flatMap((group) => [...group.bars.map((bar) => bar.value ?? 0), group.marker?.value ?? 0])
    const domain = logDomain(values)
    const xOf = (value: number): number => plotLeft + plotWidth * (Math.log10(value) - domain.lo) / (domain.hi - domain.lo)
    const top = y
    const rows: string[] = []
    for (const group of panel.groups) {
      const groupTop = y
      const drawn = group.bars.filter((bar) => isDrawable(bar.value))
      const slots = Math.max(1, drawn.length + (group.note === undefined ? 0 : 1))
      const groupHeight = slots * BAR_HEIGHT + (slots - 1) * BAR_GAP
      rows.push(`<text x="${LABEL_WIDTH - 8}" y="${groupTop + groupHeight / 2 + 4}" font-size="12" text-anchor="end">${escapeXml(group.label)}</text>`)
      if (group.note !== undefined) {
        const noteTop = groupTop + drawn.length * (BAR_HEIGHT + BAR_GAP)
        rows.push(`<text class="note" x="${plotLeft + 4}" y="${noteTop + BAR_HEIGHT - 2}" font-size="10" font-style="italic" fill="#b03a2e">${escapeXml(group.note)}</text>`)
      }
      drawn.forEach((bar, i) => {
        const value = bar.value as number
        const barTop = groupTop + i * (BAR_HEIGHT + BAR_GAP)
        // A value at the bottom of the domain still gets a visible stub.
        const width = Math.max(2, xOf(value) - plotLeft)
        const series = chart.series.find((s) => s.id === bar.series)
        const text = `${series?.label ?? bar.series}: ${panel.format(value)}`
        rows.push(`<rect class="bar bar-${escapeXml(bar.series)}" x="${plotLeft}" y="${barTop}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" ` +
          `fill="${colorOf.get(bar.series) ?? '#888'}"><title>${escapeXml(`${group.label}, ${text}`)}</title></rect>`)
        rows.push(`<text x="${(plotLeft + width + 4).toFixed(1)}" y="${barTop + BAR_HEIGHT - 2}" font-size="10" fill="#333">${escapeXml(panel.format(value))}</text>`)
      })
      if (group.marker !== undefined && isDrawable(group.marker.value)) {
        const x = xOf(group.marker.value).toFixed(1)
        rows.push(`<line class="marker" x1="${x}" x2="${x}" y1="${groupTop - 2}" y2="${groupTop + groupHeight + 2}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="3 2">` +
          `<title>${escapeXml(`${group.label}: ${group.marker.label}`)}</title></line>`)
      }
      y += groupHeight + GROUP_GAP
    }
    // Decade grid under the bars, drawn first so the bars sit on top.
    const grid: string[] = []
    for (let exponent = domain.lo; exponent <= domain.hi; exponent++) {
      const x = xOf(10 ** exponent).toFixed(1)
      grid.push(`<line x1="${x}" x2="${x}" y1="${top - 4}" y2="${y}" stroke="#ddd" stroke-width="1"/>`)
      grid.push(`<text x="${x}" y="${y + 14}" font-size="10" fill="#555" text-anchor="middle">${decadeLabel(exponent)}</text>`)
    }
    grid.push(`<text x="${plotLeft + plotWidth / 2}" y="${y + 27}" font-size="11" fill="#555" text-anchor="middle">${escapeXml(panel.axisLabel)}</text>`)
    body.push(...grid, ...rows)
    y += AXIS_HEIGHT
  }
  const height = Math.ceil(y + 12)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT} role="img" ` +
    `aria-label="${escapeXml(chart.title)}">\n<rect width="100%" height="100%" fill="#fff"/>\n${body.join('\n')}\n</svg>\n`
}
