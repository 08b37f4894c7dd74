/** Scrubs exact secret values (the token, configured secrets) from text before it is logged or shown. */
import { Redacted } from "effect"

export const redactText = (text: string, secrets: ReadonlyArray<Redacted.Redacted<string>>): string => {
  let out = text
  for (const secret of secrets) {
    const value = Redacted.value(secret)
    if (value.length >= 4) out = out.split(value).join("<redacted>")
  }
  return out
}
