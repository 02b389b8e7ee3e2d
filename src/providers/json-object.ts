/** The JSON object behind an untrusted parsed value, or undefined for anything else (arrays and null included). */
export function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined
}
