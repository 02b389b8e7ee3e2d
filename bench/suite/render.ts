/**
 * Writes the suite summary from what is in bench/results/: bench/results/summary.json (the rows),
 * bench/results/summary.svg (the chart) and the summary section at the top of docs/benchmarks.md.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { placeTopSection } from './docs-top.ts'
import { loadSuiteResults } from './results.ts'
import { buildSummary, renderSummaryMarkdown, renderSummarySvg, SUMMARY_MARKER, SUMMARY_TITLE, type Summary } from './summary.ts'

export interface RenderPaths {
  resultsDir: string
  docsFile: string
}

export function renderSuiteSummary(paths: RenderPaths, now: Date, warn: (message: string) => void): Summary {
  const summary = buildSummary(loadSuiteResults(paths.resultsDir, warn), now)
  mkdirSync(paths.resultsDir, { recursive: true })
  writeFileSync(`${paths.resultsDir}/summary.json`, `${JSON.stringify(summary, null, 2)}\n`)
  writeFileSync(`${paths.resultsDir}/summary.svg`, renderSummarySvg(summary))
  const existing = existsSync(paths.docsFile) ? readFileSync(paths.docsFile, 'utf8') : ''
  mkdirSync(dirname(paths.docsFile), { recursive: true })
  writeFileSync(paths.docsFile, placeTopSection(existing, SUMMARY_TITLE, SUMMARY_MARKER, (notes) => renderSummaryMarkdown(summary, notes)))
  return summary
}
