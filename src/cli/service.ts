/** `agent-sidecar service install`: a systemd unit whose stop signal and timeout match the daemon's shutdown. */
import { Console, Effect, FileSystem, Path } from "effect"
import { Command, Flag } from "effect/cli"
import * as NFS from "node:fs"
import { configFlag, loadConfig } from "./shared.ts"

/** systemd's own quoting: a path with spaces, quotes or backslashes is written as a C-style quoted word. */
export const systemdWord = (word: string): string =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `"${word.replace(/\\/g, "\\\\").replace(/"/g, "\\\"")}"`

/** The paths a unit may name: the real files (npm's links resolved), and never npm's npx cache, which npm cleans. */
export const stablePaths = (node: string, bin: string, realpath: (p: string) => string) => {
  const real = { node: realpath(node), bin: realpath(bin) }
  const transient = Object.values(real).find((p) => /[/\\]_npx[/\\]/.test(p))
  return transient === undefined
    ? { ok: true as const, ...real }
    : { ok: false as const, why: `${transient} is in npm's npx cache, which npm may clean; install agent-sidecar (npm i -g agent-sidecar) and run \`agent-sidecar service install\` from the installed command` }
}

export const unitFile = (options: { readonly node: string; readonly bin: string; readonly config: string; readonly workingDirectory: string; readonly user: boolean }) => `[Unit]
Description=agent-sidecar: bridges the local coding agent to its task hub
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
WorkingDirectory=${systemdWord(options.workingDirectory)}
ExecStart=${[options.node, options.bin, "run", "--config", options.config].map(systemdWord).join(" ")}
# Graceful shutdown: SIGTERM stops taking tasks, stops wake commands, persists, closes the hub socket (1000)
# and exits 0 within 5 s; systemd escalates to SIGKILL after TimeoutStopSec. Drain with SIGUSR2.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=15
ExecReload=/bin/kill -USR2 $MAINPID
Restart=on-failure
RestartSec=2
# 78 = invalid config, 75 = another sidecar holds the state: restarting will not help
RestartPreventExitStatus=75 78
UMask=0077
${options.user ? "" : "NoNewPrivileges=true\n"}
[Install]
WantedBy=${options.user ? "default.target" : "multi-user.target"}
`

export const serviceCommand = Command.make("service").pipe(
  Command.withDescription("Manage the daemon as a systemd service"),
  Command.withSubcommands([
    Command.make("install", {
      config: configFlag,
      user: Flag.Boolean("user").pipe(Flag.withDescription("A user unit (~/.config/systemd/user) instead of a system unit"), Flag.withDefault(false)),
      write: Flag.Boolean("write").pipe(Flag.withDescription("Write the unit file instead of printing it"), Flag.withDefault(false))
    }, ({ config, user, write }) => Effect.gen(function*() {
      const path = yield* Path.Path
      yield* loadConfig(config) // refuse to install a unit for a config that does not load
      const absolute = path.resolve(config)
      const fs = yield* FileSystem.FileSystem
      // the bin script that is running now and the Node running it, as real paths
      const paths = stablePaths(process.execPath, path.resolve(process.argv[1] ?? "agent-sidecar"), (p) => NFS.realpathSync(p))
      if (!paths.ok) return yield* Effect.fail(new Error(paths.why))
      const unit = unitFile({
        node: paths.node,
        bin: paths.bin,
        config: absolute,
        workingDirectory: path.dirname(absolute),
        user
      })
      if (!write) return yield* Console.log(unit)
      const target = user
        ? path.join(process.env["HOME"] ?? "~", ".config/systemd/user/agent-sidecar.service")
        : "/etc/systemd/system/agent-sidecar.service"
      yield* fs.makeDirectory(path.dirname(target), { recursive: true })
      yield* fs.writeFileString(target, unit)
      yield* Console.log(`wrote ${target}\nthen: systemctl ${user ? "--user " : ""}daemon-reload && systemctl ${user ? "--user " : ""}enable --now agent-sidecar`)
    })).pipe(Command.withDescription("Print (or --write) a systemd unit for `agent-sidecar run --config PATH`"))
  ])
)
