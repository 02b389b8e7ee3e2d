/** Writes one benchmark's section of docs/benchmarks.md, leaving the other sections alone. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'

const ROOT = new URL('../../', import.meta.url)
const DOCS_FILE = new URL('docs/benchmarks.md', ROOT)
const EMPTY_DOCS = '# Benchmarks\n\nMeasured performance of the bridge. Each section is written by its benchmark; hand-written notes sit between the notes markers and survive re-runs.\n'

export const docsFile = DOCS_FILE.pathname

/**
 * Replaces the section `## <title>` (up to the next `## `), or appends it, keeping its hand-written block between
 * `<!-- <marker>:notes -->` and `<!-- /<marker>:notes -->`. `render` gets that block (or empty markers).
 */
export function updateDocsSection(title: string, marker: string, render: (notes: string) => string): void {
  const notesStart = `<!-- ${marker}:notes -->`
  const notesEnd = `<!-- /${marker}:notes -->`
  const existing = existsSync(DOCS_FILE) ? readFileSync(DOCS_FILE, 'utf8') : EMPTY_DOCS
  const start = existing.indexOf(`\n## ${title}\n`)
  let before = existing
  let after = ''
  let notes = `${notesStart}\n${notesEnd}`
  if (start !== -1) {
    const rest = existing.slice(start + 1)
    const next = rest.indexOf('\n## ', 3)
    const section = next === -1 ? rest : rest.slice(0, next + 1)
    after = next === -1 ? '' : rest.slice(next + 1)
    before = existing.slice(0, start + 1)
    const from = section.indexOf(notesStart)
    const to = section.indexOf(notesEnd)
    if (from !== -1 && to > from) notes = section.slice(from, to + notesEnd.length)
  }
  const text = `${before.trimEnd()}\n\n${render(notes)}${after === '' ? '' : `\n${after}`}`
  mkdirSync(new URL('docs/', ROOT), { recursive: true })
  writeFileSync(DOCS_FILE, text)
}
