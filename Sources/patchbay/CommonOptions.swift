import ArgumentParser
import Foundation
import Logging
import PatchbayServer

struct ConfigOption: ParsableArguments {
    @Option(
        name: .shortAndLong,
        help: ArgumentHelp(
            "Configuration file (YAML); default $PATCHBAY_CONFIG, then ./patchbay.yaml. ${VAR} references are read from the environment.",
            valueName: "file"))
    var config: String?

    /// The file to read: --config, else $PATCHBAY_CONFIG, else ./patchbay.yaml.
    var path: String {
        if let config { return config }
        if let fromEnvironment = ProcessInfo.processInfo.environment["PATCHBAY_CONFIG"], !fromEnvironment.isEmpty { return fromEnvironment }
        return "./patchbay.yaml"
    }

    /// Loads and validates, or prints every problem and exits with status 1.
    func load() throws -> PatchbayConfiguration {
        let config = path
        if self.config == nil, !FileManager.default.fileExists(atPath: config) {
            printError("no configuration: pass --config FILE, set PATCHBAY_CONFIG, or create ./patchbay.yaml (see examples/patchbay.yaml)")
            throw ExitCode(1)
        }
        do {
            return try PatchbayConfiguration.load(path: config)
        } catch let invalid as PatchbayConfiguration.Invalid {
            printError("\(config): \(invalid)")
            throw ExitCode(1)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

struct LoggingOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Least severe log level written to standard error: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    var logLevel: String = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("--log-level: '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
    }

    /// The only place Patchbay chooses a logging backend.
    func bootstrap() -> Logger {
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "patchbay")
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
}

/// Prints one line and flushes, so a pipe or a test reading the output sees it at once.
func printLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
