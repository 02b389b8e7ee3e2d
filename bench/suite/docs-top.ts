/**
 * A section that sits at the top of docs/benchmarks.md, right after the file's intro (the text before the first
 * `## `), whatever order the benchmarks wrote theirs in. Works like bench/lib/docs.ts (replace the section, keep
 * its hand-written block between `<!-- <marker>:notes -->` and `<!-- /<marker>:notes -->`), so the other sections'
 * writers still find and replace theirs: they look for `\n## <their title>\n` and end at the next `\n## `.
 * The rendered section must use `###` or deeper inside, never `## `.
 */

/** The intro bench/lib/docs.ts starts a missing docs/benchmarks.md with. */
export const DEFAULT_INTRO = '# Benchmarks\n\nMeasured performance of the bridge. Each section is written by its benchmark; hand-written notes sit between the notes markers and survive re-runs.\n'

/** Returns `existing` with the section `## <title>` removed from wherever it was and rendered again at the top. */
export function placeTopSection(existing: string, title: string, marker: string, render: (notes: string) => string): string {
  const notesStart = `<!-- ${marker}:notes -->`
  const notesEnd = `<!-- /${marker}:notes -->`
  let text = existing.trim() === '' ? DEFAULT_INTRO : existing
  let notes = `${notesStart}\n${notesEnd}`
  const start = text.indexOf(`\n## ${title}\n`)
  if (start !== -1) {
    const rest = text.slice(start + 1)
    const next = rest.indexOf('\n## ', 3)
    const section = next === -1 ? rest : rest.slice(0, next + 1)
    const from = section.indexOf(notesStart)
    const to = section.indexOf(notesEnd)
    if (from !== -1 && to > from) notes = section.slice(from, to + notesEnd.length)
    text = text.slice(0, start + 1) + (next === -1 ? '' : rest.slice(next + 1))
  }
  const firstSection = text.startsWith('## ') ? 0 : text.indexOf('\n## ')
  const intro = firstSection === -1 ? text : text.slice(0, firstSection)
  const after = firstSection === -1 ? '' : `${text.slice(firstSection).trim()}\n`
  const section = render(notes).trimEnd()
  const head = intro.trimEnd()
  return `${head === '' ? '' : `${head}\n\n`}${section}\n${after === '' ? '' : `\n${after}`}`
}
