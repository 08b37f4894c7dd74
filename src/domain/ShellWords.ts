/**
 * The program a string `wake_command` runs, found as `/bin/sh` would find it (for `doctor`, which runs nothing):
 * words split on blanks, single and double quotes and backslashes honoured, `$VAR`/`${VAR}` expanded from the
 * environment, leading `NAME=value` assignments skipped, and `env [-i] [-u NAME] [NAME=value…]` / `exec` looked
 * through. Only the first simple command matters; anything the shell would decide at run time (a command
 * substitution, a glob) is reported as unknowable rather than guessed.
 */
export type Program = { readonly _tag: "Found"; readonly program: string } | { readonly _tag: "Unknown"; readonly why: string }

type Words = { readonly words: ReadonlyArray<string>; readonly dynamic?: string }

const expand = (name: string, env: Readonly<Record<string, string | undefined>>) => env[name] ?? ""

/** Splits the first simple command (up to `;`, `&`, `|`, a newline) into words. */
export const shellWords = (line: string, env: Readonly<Record<string, string | undefined>>): Words => {
  const words: Array<string> = []
  let word = ""
  let inWord = false
  let i = 0
  const variable = (): string | undefined => {
    // at a `$`: read NAME or {NAME}; undefined when it is not a plain variable
    const braced = line[i + 1] === "{"
    const m = (braced ? /^\{([A-Za-z_][A-Za-z0-9_]*)\}/ : /^([A-Za-z_][A-Za-z0-9_]*)/).exec(line.slice(i + 1))
    if (m === null) return undefined
    i += m[0].length
    return expand(m[1]!, env)
  }
  while (i < line.length) {
    const c = line[i]!
    if (c === " " || c === "\t") {
      if (inWord) words.push(word)
      word = ""
      inWord = false
    } else if (c === ";" || c === "&" || c === "|" || c === "\n") {
      break
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1)
      if (end < 0) return { words, dynamic: "an unterminated single quote" }
      word += line.slice(i + 1, end)
      inWord = true
      i = end
    } else if (c === "\"") {
      inWord = true
      i++
      while (i < line.length && line[i] !== "\"") {
        const d = line[i]!
        if (d === "\\" && i + 1 < line.length && "$`\"\\\n".includes(line[i + 1]!)) {
          word += line[i + 1]
          i += 2
          continue
        }
        if (d === "`" || (d === "$" && line[i + 1] === "(")) return { words, dynamic: "a command substitution" }
        if (d === "$") {
          const v = variable()
          if (v === undefined) word += d
          else word += v
          i++
          continue
        }
        word += d
        i++
      }
      if (i >= line.length) return { words, dynamic: "an unterminated double quote" }
    } else if (c === "\\") {
      if (i + 1 < line.length) word += line[i + 1]
      inWord = true
      i++
    } else if (c === "`" || (c === "$" && line[i + 1] === "(")) {
      return { words, dynamic: "a command substitution" }
    } else if (c === "$") {
      const v = variable()
      word += v === undefined ? c : v
      inWord = true
    } else if (c === "*" || c === "?" || c === "[") {
      return { words, dynamic: "a glob" }
    } else {
      word += c
      inWord = true
    }
    i++
  }
  if (inWord) words.push(word)
  return { words }
}

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/

/** The program of a string wake command, as the shell would run it. */
export const programOf = (command: string, env: Readonly<Record<string, string | undefined>>): Program => {
  const { words, dynamic } = shellWords(command, env)
  let k = 0
  const skipAssignments = () => { while (k < words.length && ASSIGNMENT.test(words[k]!)) k++ }
  skipAssignments()
  while (k < words.length && (words[k] === "exec" || words[k] === "env" || words[k] === "command")) {
    const wrapper = words[k++]
    if (wrapper === "env") {
      while (k < words.length && words[k]!.startsWith("-")) k += words[k] === "-u" ? 2 : 1
    }
    skipAssignments()
  }
  const program = words[k]
  if (program !== undefined && program !== "") return { _tag: "Found", program }
  return { _tag: "Unknown", why: dynamic !== undefined ? `it starts with ${dynamic}, which only the shell can resolve at run time` : "it names no program" }
}
