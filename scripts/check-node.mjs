// Plain JavaScript on purpose: it must run, and explain itself, on a Node too old for TypeScript.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`Node ${process.versions.node} is too old: the bridge needs Node >= 22.18 (24 LTS recommended).`)
  console.error('On linux x64/arm64, `npm install` provides Node 24 in node_modules/.bin; put that first on PATH.')
  process.exit(1)
}
console.log(`node ${process.versions.node}`)
